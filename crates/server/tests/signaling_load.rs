//! The signaling load generator's framing and stamps
//! (`benches/signaling_load`): what it sends is the protocol's JSON, and it
//! reads frames and stamps back as both servers write them.

#[path = "../benches/signaling_load/front.rs"]
#[allow(dead_code)]
mod front;
#[path = "../benches/signaling_load/payload.rs"]
mod payload;

use bytes::BytesMut;
use front::{Front, Incoming};
use payload::{stamp, Payloads, Role, Stamp};

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
