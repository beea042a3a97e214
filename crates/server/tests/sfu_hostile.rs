//! Hostile clients against a live room of the forwarding unit: garbage,
//! malformed and oversized frames on `/ws` get clear `sfu-error` frames
//! (or, past the frame limit, a clean close), and the room goes on for
//! everyone else.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtimer_server::sfu::SfuSettings;
use realtimer_server::ServerConfig;
use realtimer_test_support::server::start_server;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open(addr: SocketAddr) -> Ws {
    let (mut ws, _) = connect_async(format!("ws://{addr}/ws")).await.unwrap();
    assert_eq!(next(&mut ws).await["type"], "welcome");
    ws
}

/// The next text frame as JSON; `None` once the server closed.
async fn frame(ws: &mut Ws) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("no frame within 20 s");
        match frame {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn next(ws: &mut Ws) -> Value {
    frame(ws).await.expect("the server closed the connection")
}

/// The next frame of `kind`, skipping the room's other events.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let f = next(ws).await;
        if f["type"] == kind {
            return f;
        }
    }
}

async fn join(ws: &mut Ws, room: &str) -> u64 {
    ws.send(Message::text(
        json!({"type": "sfu-join", "room": room}).to_string(),
    ))
    .await
    .unwrap();
    let joined = next_of(ws, "sfu-joined").await;
    joined["participant"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_ws_gets_errors_and_the_room_lives_on() {
    let addr = start_server(ServerConfig {
        sfu: Some(SfuSettings::default()),
        ..ServerConfig::default()
    });
    let mut member = open(addr).await;
    let member_id = join(&mut member, "hostile").await;
    let mut hostile = open(addr).await;
    // Before joining: requests that need a call are refused as such.
    hostile
        .send(Message::text(r#"{"type":"sfu-offer","sdp":"v=0"}"#))
        .await
        .unwrap();
    let refused = next_of(&mut hostile, "sfu-error").await;
    assert_eq!(refused["code"], "not-joined", "{refused}");
    let hostile_id = join(&mut hostile, "hostile").await;
    assert_eq!(
        next_of(&mut member, "sfu-participant-joined").await["participant"],
        hostile_id
    );

    let big_sdp = "a".repeat(70 * 1024);
    // A frame that is not JSON at all is the rooms protocol's to refuse:
    // its `error` frame, and the connection goes on.
    hostile
        .send(Message::text(r#"{"type":"sfu-offer","sdp":"#))
        .await
        .unwrap();
    let error = next_of(&mut hostile, "error").await;
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{error}"
    );
    let cases: [(String, &str); 5] = [
        // An unknown sfu- request.
        (r#"{"type":"sfu-explode"}"#.to_owned(), "malformed"),
        // A field of the wrong type.
        (
            r#"{"type":"sfu-mute","muted":"yes"}"#.to_owned(),
            "malformed",
        ),
        // An SDP over the limit (64 KiB).
        (
            json!({"type": "sfu-offer", "sdp": big_sdp}).to_string(),
            "bad-description",
        ),
        // An offer that is no SDP.
        (
            json!({"type": "sfu-offer", "sdp": "v=0\r\nm=garbage\r\n"}).to_string(),
            "bad-description",
        ),
        // A second join on the same connection.
        (
            json!({"type": "sfu-join", "room": "other"}).to_string(),
            "already-joined",
        ),
    ];
    for (text, code) in &cases {
        hostile.send(Message::text(text.clone())).await.unwrap();
        let error = next_of(&mut hostile, "sfu-error").await;
        assert_eq!(error["code"], *code, "{text:.80} -> {error}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
    // Still in the call: a valid request is served.
    hostile
        .send(Message::text(
            json!({"type": "sfu-mute", "muted": true}).to_string(),
        ))
        .await
        .unwrap();
    // A frame over the WebSocket limit (1 MiB) ends the connection
    // cleanly: the hostile participant leaves the room.
    let _ = hostile
        .send(Message::text("x".repeat(2 * 1024 * 1024)))
        .await;
    while frame(&mut hostile).await.is_some() {}
    assert_eq!(
        next_of(&mut member, "sfu-participant-left").await["participant"],
        hostile_id
    );
    // The room goes on: a newcomer joins it and the member sees it.
    let mut newcomer = open(addr).await;
    let newcomer_id = join(&mut newcomer, "hostile").await;
    assert_eq!(
        next_of(&mut member, "sfu-participant-joined").await["participant"],
        newcomer_id
    );
    assert_ne!(newcomer_id, member_id);
}
