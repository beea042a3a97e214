//! The codelab's Socket.IO protocol at the wire level, with the official npm
//! clients: socket.io-client 2.5 (Socket.IO v4 / Engine.IO v3, what the
//! codelab serves) and 4.x (Socket.IO v5 / Engine.IO v4).

use realtimer_test_support::{node, server};

use realtimer_server::ServerConfig;

fn url() -> String {
    format!("http://{}", server::start_server(ServerConfig::default()))
}

#[test]
fn codelab_protocol_with_socket_io_client_2() {
    node::run_node("socketio-wire.mjs", &[&url(), "v2"]);
}

#[test]
fn codelab_protocol_with_socket_io_client_4() {
    node::run_node("socketio-wire.mjs", &[&url(), "v4"]);
}

#[test]
fn codelab_protocol_with_clients_2_and_4_in_one_room() {
    node::run_node("socketio-wire.mjs", &[&url(), "mixed"]);
}

#[test]
fn bad_input_over_socket_io_is_refused_and_the_server_stays_up() {
    node::run_node("socketio-wire.mjs", &[&url(), "bad"]);
}

/// One raw Engine.IO v4 WebSocket client that sends `create or join` the
/// moment it reads the Socket.IO CONNECT packet, as our page client (and
/// socket.io-client's emit buffer) does; true if `created` comes back.
async fn join_right_after_connect(addr: std::net::SocketAddr, room: String) -> bool {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
        return false;
    };
    let mut connected = false;
    let deadline = tokio::time::Duration::from_secs(10);
    let read = async {
        while let Some(Ok(message)) = ws.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let text = text.as_str();
            if text.starts_with('0') {
                ws.send(Message::text("40")).await.ok()?;
            } else if text.starts_with("40") && !connected {
                connected = true;
                let event = serde_json::json!(["create or join", room]);
                ws.send(Message::text(format!("42{event}"))).await.ok()?;
            } else if text.starts_with("42[\"created\"") {
                return Some(());
            } else if text == "2" {
                ws.send(Message::text("3")).await.ok()?;
            }
        }
        None
    };
    tokio::time::timeout(deadline, read)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// socketioxide sends CONNECT before it runs the connect handler (in a task
/// of its own): an event the client sends right after CONNECT must still
/// find its handler. Many clients at once keep the runtime busy, which is
/// when a late handler lost the event (the flaky UC5 call: a tab's
/// `create or join` vanished, so no `ready` and no offer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_right_after_connect_is_never_lost() {
    let addr = server::start_server(ServerConfig::default());
    let clients: Vec<_> = (0..400)
        .map(|i| tokio::spawn(join_right_after_connect(addr, format!("race-{i}"))))
        .collect();
    let mut lost = 0;
    for client in clients {
        if !client.await.unwrap() {
            lost += 1;
        }
    }
    assert_eq!(
        lost, 0,
        "{lost} of 400 clients got no answer to create or join"
    );
}

/// Reads Engine.IO text packets until one starts with `prefix` (5 s).
async fn packet_starting_with(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    prefix: &str,
) -> String {
    use futures_util::StreamExt;
    let read = async {
        while let Some(Ok(message)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                if text.starts_with(prefix) {
                    return text.as_str().to_owned();
                }
            }
        }
        panic!("closed before a packet starting with {prefix:?}");
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .expect("no such packet in time")
}

/// A client past `max_clients` gets CONNECT_ERROR with the reason; the ones
/// already connected keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_the_limit_gets_connect_error() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let mut config = ServerConfig::default();
    config.rooms.max_clients = 1;
    let addr = server::start_server(config);
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let mut first = tokio_tungstenite::connect_async(&url).await.unwrap().0;
    packet_starting_with(&mut first, "0").await;
    first.send(Message::text("40")).await.unwrap();
    packet_starting_with(&mut first, "40").await;

    let mut second = tokio_tungstenite::connect_async(&url).await.unwrap().0;
    packet_starting_with(&mut second, "0").await;
    second.send(Message::text("40")).await.unwrap();
    let refused = packet_starting_with(&mut second, "44").await;
    assert!(refused.contains("too many clients"), "{refused}");

    first
        .send(Message::text(r#"42["create or join","r"]"#))
        .await
        .unwrap();
    packet_starting_with(&mut first, r#"42["created","r""#).await;
}
