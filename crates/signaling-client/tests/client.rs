//! The Rust signaling client against the real server, over `ws://` and
//! `wss://`: rooms, relayed offer/answer/candidates, full, left, errors.

use std::time::Duration;

use futures_util::StreamExt;
use realtimer_server::{ServerConfig, TlsConfig};
use realtimer_signaling::{
    ClientError, ClientOptions, ErrorCode, SignalingClient, SignalingEvent, SignalingEvents,
};
use realtimer_test_support::certificate::TestCertificate;
use realtimer_test_support::{ports, server};
use serde_json::json;

async fn next(events: &mut SignalingEvents) -> SignalingEvent {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("no event within 5 s")
        .expect("connection closed")
}

#[tokio::test]
async fn native_peers_meet_in_a_room_and_exchange_offer_answer_candidates() {
    let addr = server::start_server(ServerConfig::default());
    let url = format!("ws://{addr}/ws");

    let (a, mut a_events) = SignalingClient::connect(&url, "native").await.unwrap();
    let a_id = a_events.id().to_owned();
    assert!(a_events.created(), "the first member creates the room");
    let (b, mut b_events) = SignalingClient::connect(&url, "native").await.unwrap();
    let b_id = b_events.id().to_owned();
    assert!(!b_events.created(), "the second joins it");
    assert!(matches!(
        next(&mut b_events).await,
        SignalingEvent::Ready { .. }
    ));
    assert!(matches!(
        next(&mut a_events).await,
        SignalingEvent::Join { .. }
    ));
    assert!(matches!(
        next(&mut a_events).await,
        SignalingEvent::Ready { .. }
    ));

    let offer = json!({"type": "offer", "sdp": "v=0\r\n"});
    a.send(offer.clone()).await.unwrap();
    for i in 0..10 {
        a.send(json!({"type": "candidate", "candidate": format!("candidate:{i}"), "sdpMid": "0"}))
            .await
            .unwrap();
    }
    assert_eq!(
        next(&mut b_events).await,
        SignalingEvent::Message {
            from: a_id.clone(),
            data: offer
        }
    );
    for i in 0..10 {
        // The stream interface works as well as `next()`.
        let event = tokio::time::timeout(Duration::from_secs(5), StreamExt::next(&mut b_events))
            .await
            .unwrap()
            .unwrap();
        let SignalingEvent::Message { data, .. } = event else {
            panic!("expected a candidate, got {event:?}");
        };
        assert_eq!(data["candidate"], format!("candidate:{i}"));
    }
    let answer = json!({"type": "answer", "sdp": "v=0\r\n"});
    b.send(answer.clone()).await.unwrap();
    assert_eq!(
        next(&mut a_events).await,
        SignalingEvent::Message {
            from: b_id.clone(),
            data: answer
        }
    );
    b.ping().await.unwrap();
    assert_eq!(next(&mut b_events).await, SignalingEvent::Pong);

    // A third is refused; dropping A's sender closes it and B is told.
    let full = SignalingClient::connect(&url, "native").await;
    assert!(
        matches!(&full, Err(ClientError::RoomFull { room }) if room == "native"),
        "{full:?}"
    );
    drop(a);
    assert_eq!(
        next(&mut b_events).await,
        SignalingEvent::Left {
            room: "native".into(),
            id: a_id
        }
    );
    // A's event stream ends with its connection.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while a_events.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "A's events did not end");
}

#[tokio::test]
async fn refusals_arrive_as_error_events_and_leave_then_join_works() {
    let config = ServerConfig {
        rooms: realtimer_server::RoomsConfig {
            max_message_bytes: 100,
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let addr = server::start_server(config);
    let url = format!("ws://{addr}/ws");
    let (a, mut events) = SignalingClient::connect(&url, "one").await.unwrap();
    assert!(events.created());
    a.send(json!("x".repeat(200))).await.unwrap();
    assert!(matches!(
        next(&mut events).await,
        SignalingEvent::Error {
            code: ErrorCode::MessageTooLarge,
            ..
        }
    ));
    a.leave().await.unwrap();
    a.join("two").await.unwrap();
    assert_eq!(
        next(&mut events).await,
        SignalingEvent::Created {
            room: "two".into(),
            id: events.id().to_owned()
        }
    );
}

#[tokio::test]
async fn connecting_to_nothing_or_a_bad_room_is_an_error() {
    let port = ports::free_tcp_port();
    let result = SignalingClient::connect(&format!("ws://127.0.0.1:{port}/ws"), "r").await;
    assert!(
        matches!(result, Err(ClientError::Unreachable { .. })),
        "{result:?}"
    );
    let result = SignalingClient::connect(&format!("http://127.0.0.1:{port}/ws"), "r").await;
    assert!(
        matches!(result, Err(ClientError::InvalidUrl { .. })),
        "{result:?}"
    );

    let addr = server::start_server(ServerConfig::default());
    let result = SignalingClient::connect(&format!("ws://{addr}/ws"), "bad\nname").await;
    assert!(
        matches!(
            result,
            Err(ClientError::Refused {
                code: ErrorCode::BadRoomName,
                ..
            })
        ),
        "{result:?}"
    );
}

/// `wss://` against serve's HTTPS with a test CA: two peers meet and
/// relay; a client that does not trust the CA cannot connect.
#[tokio::test]
async fn wss_with_a_test_certificate() {
    let cert = TestCertificate::new();
    let addr = server::start_server(ServerConfig {
        tls: Some(TlsConfig {
            cert: cert.cert.clone(),
            key: cert.key.clone(),
        }),
        ..ServerConfig::default()
    });
    let url = format!("wss://localhost:{}/ws", addr.port());
    let options = ClientOptions::trusting_pem(&cert.ca_pem).unwrap();
    let (a, _a_events) = SignalingClient::connect_with(&url, "secure", &options)
        .await
        .unwrap();
    let (_b, mut b_events) = SignalingClient::connect_with(&url, "secure", &options)
        .await
        .unwrap();
    assert!(matches!(
        next(&mut b_events).await,
        SignalingEvent::Ready { .. }
    ));
    a.send(json!({"type": "bye"})).await.unwrap();
    assert!(matches!(
        next(&mut b_events).await,
        SignalingEvent::Message { data, .. } if data == json!({"type": "bye"})
    ));

    let other = TestCertificate::new();
    let untrusted = ClientOptions::trusting_pem(&other.ca_pem).unwrap();
    let result = SignalingClient::connect_with(&url, "secure2", &untrusted).await;
    assert!(
        matches!(result, Err(ClientError::Unreachable { .. })),
        "{result:?}"
    );
}
