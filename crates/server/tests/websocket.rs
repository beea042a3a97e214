//! The WebSocket JSON front (`/ws`, docs/signaling.md) and raw garbage on
//! the Socket.IO endpoint, with tokio-tungstenite.

use realtimer_test_support::server;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtimer_server::ServerConfig;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open(addr: SocketAddr) -> (Ws, String) {
    let (mut ws, _) = connect_async(format!("ws://{addr}/ws")).await.unwrap();
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    let id = welcome["id"].as_str().unwrap().to_owned();
    (ws, id)
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no frame within 5 s")
            .expect("socket closed")
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

#[tokio::test]
async fn websocket_rooms_created_joined_ready_full_message_left() {
    let addr = server::start_server(ServerConfig::default());
    let (mut a, a_id) = open(addr).await;
    let (mut b, b_id) = open(addr).await;
    let (mut c, _) = open(addr).await;

    send(&mut a, json!({"type": "join", "room": "r1"})).await;
    assert_eq!(
        next(&mut a).await,
        json!({"type": "created", "room": "r1", "id": a_id})
    );
    send(&mut b, json!({"type": "join", "room": "r1"})).await;
    assert_eq!(next(&mut a).await, json!({"type": "join", "room": "r1"}));
    assert_eq!(
        next(&mut b).await,
        json!({"type": "joined", "room": "r1", "id": b_id})
    );
    assert_eq!(next(&mut a).await, json!({"type": "ready", "room": "r1"}));
    assert_eq!(next(&mut b).await, json!({"type": "ready", "room": "r1"}));
    send(&mut c, json!({"type": "join", "room": "r1"})).await;
    assert_eq!(next(&mut c).await, json!({"type": "full", "room": "r1"}));

    let offer = json!({"type": "offer", "sdp": "v=0\r\n"});
    send(&mut a, json!({"type": "message", "data": offer})).await;
    assert_eq!(
        next(&mut b).await,
        json!({"type": "message", "from": a_id, "data": offer})
    );
    send(&mut b, json!({"type": "ping"})).await;
    assert_eq!(next(&mut b).await, json!({"type": "pong"}));

    drop(a);
    assert_eq!(
        next(&mut b).await,
        json!({"type": "left", "room": "r1", "id": a_id})
    );
    send(&mut c, json!({"type": "join", "room": "r1"})).await;
    assert_eq!(next(&mut b).await, json!({"type": "join", "room": "r1"}));
}

#[tokio::test]
async fn websocket_bad_input_gets_errors_and_the_connection_survives() {
    let addr = server::start_server(ServerConfig::default());
    let (mut a, _) = open(addr).await;
    let cases: Vec<(Message, &str)> = vec![
        (Message::text("{not json"), "malformed"),
        (Message::text("[1,2,3]"), "malformed"),
        (Message::text(r#"{"type":"launch"}"#), "malformed"),
        (Message::text(r#"{"type":"join","room":42}"#), "malformed"),
        (Message::binary(vec![0u8; 10]), "malformed"),
        (
            Message::text(json!({"type":"join","room":"x".repeat(10_000)}).to_string()),
            "bad-room-name",
        ),
        (
            Message::text(r#"{"type":"join","room":""}"#),
            "bad-room-name",
        ),
        (
            Message::text(r#"{"type":"message","data":1}"#),
            "not-in-room",
        ),
    ];
    for (frame, code) in cases {
        a.send(frame).await.unwrap();
        let reply = next(&mut a).await;
        assert_eq!(reply["type"], "error");
        assert_eq!(reply["code"], code, "{reply}");
    }
    send(&mut a, json!({"type": "join", "room": "big"})).await;
    assert_eq!(next(&mut a).await["type"], "created");
    let big = json!({"type": "message", "data": "y".repeat(100 * 1024)});
    send(&mut a, big).await;
    assert_eq!(next(&mut a).await["code"], "message-too-large");

    // Past the frame limit the connection is closed; the server stays up.
    let huge = "z".repeat(2 * 1024 * 1024);
    let _ = a.send(Message::text(huge)).await;
    let (mut b, _) = open(addr).await;
    send(&mut b, json!({"type": "ping"})).await;
    assert_eq!(next(&mut b).await["type"], "pong");
}

#[tokio::test]
async fn websocket_join_flood_is_rate_limited_and_other_rooms_work() {
    let addr = server::start_server(ServerConfig::default());
    let (mut flooder, _) = open(addr).await;
    for i in 0..1000 {
        send(
            &mut flooder,
            json!({"type": "join", "room": format!("f{i}")}),
        )
        .await;
    }
    let mut rate_limited = false;
    for _ in 0..300 {
        let reply = next(&mut flooder).await;
        if reply["code"] == "rate-limited" {
            rate_limited = true;
            break;
        }
    }
    assert!(rate_limited);
    let (mut a, _) = open(addr).await;
    let (mut b, _) = open(addr).await;
    send(&mut a, json!({"type": "join", "room": "calm"})).await;
    assert_eq!(next(&mut a).await["type"], "created");
    send(&mut b, json!({"type": "join", "room": "calm"})).await;
    assert_eq!(next(&mut b).await["type"], "joined");
    send(&mut a, json!({"type": "message", "data": "hi"})).await;
    assert_eq!(next(&mut a).await["type"], "join");
    assert_eq!(next(&mut a).await["type"], "ready");
    assert_eq!(next(&mut b).await["type"], "ready");
    assert_eq!(next(&mut b).await["data"], "hi");
}

#[tokio::test]
async fn engine_io_garbage_closes_only_that_connection() {
    let addr = server::start_server(ServerConfig::default());
    for garbage in [
        "42[",
        "4garbage",
        "42[\"message\"",
        "9",
        "",
        "42[1,2]",
        "40{{{",
    ] {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (mut ws, _) = connect_async(url).await.unwrap();
        let _open = ws.next().await;
        ws.send(Message::text("40")).await.unwrap();
        let _connected = ws.next().await;
        let _ = ws.send(Message::text(garbage)).await;
        let _ = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
    }
    // A huge Engine.IO frame past the payload limit.
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = connect_async(url).await.unwrap();
    let _ = ws
        .send(Message::text(format!(
            "42[\"message\",\"{}\"]",
            "q".repeat(2 << 20)
        )))
        .await;
    // The server still answers a well-behaved client.
    let (mut ok, _) = open(addr).await;
    send(&mut ok, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ok).await["type"], "pong");
    let page = reqwest_like_get(addr, "/").await;
    assert!(page.contains("realtimer"));
}

/// A minimal HTTP/1.1 GET (no client library needed for one request).
async fn reqwest_like_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}
