//! The signaling load generator (`benches/signaling_load`): what it sends
//! is the protocol's JSON, it reads frames and stamps back as both servers
//! write them, and a small run against an in-process server delivers every
//! message through both fronts.

#[path = "../benches/signaling_load/main.rs"]
#[allow(dead_code)]
mod load;

use bytes::BytesMut;
use load::front::{Front, Incoming};
use load::payload::{stamp, Payloads, Role, Stamp};
use load::Phase;

#[test]
fn messages_are_json_of_the_asked_size_and_carry_their_stamp() {
    for front in [Front::Sio, Front::Ws] {
        let framing = front.framing();
        let payloads = Payloads::new(framing, 4000, 200, 10);
        let mut buf = BytesMut::new();
        for (n, size) in [(0, 4000), (1, 200), (10, 4000)] {
            let frame = payloads.message(&mut buf, 4321, Role::B, n, 987_654_321);
            let text = std::str::from_utf8(&frame).unwrap();
            let message = text.strip_prefix(framing.open).unwrap();
            let message = &message[..message.len() - framing.close.len()];
            let value: serde_json::Value = serde_json::from_str(message).unwrap();
            assert_eq!(value["t"], 987_654_321u64);
            assert_eq!(
                value["type"],
                if n % 10 == 0 { "answer" } else { "candidate" }
            );
            assert!(
                message.len().abs_diff(size) <= size / 10,
                "{n}: {} bytes",
                message.len()
            );
            // The whole frame is the protocol's JSON.
            let _: serde_json::Value = serde_json::from_str(text.trim_start_matches("42")).unwrap();
            // As relayed: Node keeps the key order, serde_json sorts the keys.
            let want = Some(Stamp {
                room: 4321,
                from: Role::B,
                t_ns: 987_654_321,
            });
            assert_eq!(stamp(text), want);
            assert_eq!(stamp(&serde_json::to_string(&value).unwrap()), want);
        }
    }
}

#[test]
fn a_reused_buffer_hands_out_each_message_whole() {
    let payloads = Payloads::new(Front::Sio.framing(), 3000, 200, 10);
    let mut buf = BytesMut::new();
    let first = payloads.message(&mut buf, 1, Role::A, 0, 1);
    let second = payloads.message(&mut buf, 1, Role::A, 1, 2);
    assert_eq!(stamp(std::str::from_utf8(&first).unwrap()).unwrap().t_ns, 1);
    assert_eq!(
        stamp(std::str::from_utf8(&second).unwrap()).unwrap().t_ns,
        2
    );
}

#[test]
fn frames_are_classified_as_each_front_writes_them() {
    let sio = [
        (
            r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#,
            Incoming::Open,
        ),
        (r#"40{"sid":"y"}"#, Incoming::Connected),
        (r#"44{"message":"server full"}"#, Incoming::Refused),
        ("2", Incoming::Ping),
        ("1", Incoming::Closed),
        ("41", Incoming::Closed),
        (r#"42["created","r",  "id"]"#, Incoming::Created),
        (r#"42["join","r"]"#, Incoming::Other),
        (r#"42["joined","r","id"]"#, Incoming::Joined),
        (r#"42["ready"]"#, Incoming::Ready),
        (r#"42["full","r"]"#, Incoming::Refused),
        (r#"42["message",{"t":1}]"#, Incoming::Message),
        (
            r#"42["log",["Message from server:","Client said: ",{"t":1}]]"#,
            Incoming::Log,
        ),
    ];
    for (frame, want) in sio {
        assert_eq!(Front::Sio.classify(frame), want, "{frame}");
    }
    let ws = [
        (r#"{"type":"welcome","id":"x"}"#, Incoming::Connected),
        (
            r#"{"type":"created","room":"r","id":"x"}"#,
            Incoming::Created,
        ),
        (r#"{"type":"joined","room":"r","id":"x"}"#, Incoming::Joined),
        (r#"{"type":"ready","room":"r"}"#, Incoming::Ready),
        (r#"{"type":"full","room":"r"}"#, Incoming::Refused),
        (
            r#"{"type":"error","code":"rate-limited","message":"m"}"#,
            Incoming::Refused,
        ),
        (
            r#"{"type":"message","from":"x","data":{"t":1}}"#,
            Incoming::Message,
        ),
        (r#"{"type":"left","room":"r","id":"x"}"#, Incoming::Other),
    ];
    for (frame, want) in ws {
        assert_eq!(Front::Ws.classify(frame), want, "{frame}");
    }
    assert_eq!(Front::Sio.join("r-1"), r#"42["create or join","r-1"]"#);
    assert_eq!(Front::Ws.join("r-1"), r#"{"type":"join","room":"r-1"}"#);
}

/// Serves realtimer's signaling on a loopback port from a thread of its own.
fn server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            realtimer_server::serve(listener, realtimer_server::ServerConfig::default()).await
        })
    });
    addr
}

#[test]
fn a_small_run_relays_every_message_through_both_fronts() {
    let addr = server();
    for front in [Front::Sio, Front::Ws] {
        let phases = vec![
            Phase::Connect,
            Phase::Join,
            Phase::Relay {
                msgs: 3,
                interval_ms: 20,
            },
            Phase::Relay {
                msgs: 11,
                interval_ms: 0,
            },
        ];
        let result = load::run(load::Config::new(addr.to_string(), front, 20, phases));
        assert_eq!(result.error, None, "{front:?}");
        let [connect, join, paced, burst] = &result.phases[..] else {
            panic!("{front:?}: {} phases", result.phases.len());
        };
        assert_eq!(connect.latency_ms.n, 20, "{front:?}: every client connects");
        assert_eq!(join.latency_ms.n, 10, "{front:?}: every room gets ready");
        for (relay, msgs) in [(paced, 3), (burst, 11)] {
            assert_eq!(
                (relay.expected, relay.received),
                (20 * msgs, 20 * msgs),
                "{front:?} {}",
                relay.name
            );
            assert_eq!(relay.latency_ms.n as u64, relay.received);
            assert!(relay.latency_ms.p50 > 0.0 && relay.latency_ms.max < 10_000.0);
        }
        for phase in &result.phases {
            let misses = (
                phase.failed,
                phase.errors,
                phase.foreign,
                phase.echoed,
                phase.closed,
            );
            assert_eq!(
                misses,
                (0, 0, 0, 0, 0),
                "{front:?} {}: {:?}",
                phase.name,
                phase.notes
            );
        }
        // The codelab's `log` echo of each relayed message: Socket.IO only.
        let logs: u64 = result.phases.iter().map(|p| p.log_events).sum();
        assert_eq!(
            logs > 0,
            front == Front::Sio,
            "{front:?}: {logs} log events"
        );
    }
}
