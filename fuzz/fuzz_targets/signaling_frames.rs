//! The signaling server's fronts fed frames a hostile client chooses, as
//! they meet them after the WebSocket layer:
//! - Socket.IO: the text goes through Engine.IO's packet parser (protocol
//!   3 or 4) and, for a message, socketioxide's Socket.IO parser; an event
//!   reaches the hub through `socketio::handle_event` with the argument
//!   socketioxide would extract;
//! - `/ws`: the text goes to the front's JSON request handler.
//!
//! Four clients share one hub. Nothing may panic, and every event the hub
//! queues for a client must encode as JSON that realtimer-signaling's
//! client parses back to an event of the same type.
//!
//! Input: frames `[head][len][bytes; len]`. Head bits 0-1 pick the client,
//! bit 2 the front (Socket.IO, `/ws`), bit 3 the Engine.IO protocol.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_server::{socketio, ws, ClientId, Hub, Outbound, RoomsConfig};
use realtimer_signaling::codelab::CodelabEvent;
use realtimer_signaling::SignalingEvent;
use socketioxide_core::packet::PacketData;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_core::Str;
use socketioxide_parser_common::CommonParser;
use tokio::sync::mpsc::Receiver;

/// A Socket.IO frame from `client`, as socketioxide hands its events on.
fn socket_io(hub: &Hub, client: ClientId, text: String, v3: bool) {
    let protocol = if v3 {
        engineioxide_core::ProtocolVersion::V3
    } else {
        engineioxide_core::ProtocolVersion::V4
    };
    let Ok(engineioxide_core::Packet::Message(message)) =
        engineioxide_core::Packet::parse(protocol, text)
    else {
        return;
    };
    let parser = CommonParser;
    let state = ParserState::default();
    let Ok(packet) = parser.decode_str(&ParseConfig::default(), &state, Str::from(message)) else {
        return;
    };
    let (PacketData::Event(mut value, _) | PacketData::BinaryEvent(mut value, _)) = packet.inner
    else {
        return;
    };
    let Some(event) = parser
        .read_event(&value)
        .ok()
        .and_then(|name| CodelabEvent::ALL.into_iter().find(|e| e.name() == name))
    else {
        return;
    };
    let data = parser
        .decode_value::<serde_json::Value>(&mut value, true)
        .map_err(|e| e.to_string());
    socketio::handle_event(hub, client, event, data);
}

/// Every event queued for a client encodes and parses back.
fn drain(outbound: &mut Receiver<Outbound>) {
    while let Ok(event) = outbound.try_recv() {
        if let Outbound::Event(event) = event {
            let text = serde_json::to_string(&event).expect("hub events encode");
            let back: SignalingEvent = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{text} does not parse back: {e}"));
            // The same kind of event (its data may differ in a float's
            // last digit: serde_json's default parser does not round-trip).
            let again = serde_json::to_value(&back).expect("parsed events encode");
            let first: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(first["type"], again["type"], "{text} changed its type");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let config = RoomsConfig {
        max_rooms: 4,
        max_clients: 8,
        max_room_name: 32,
        max_message_bytes: 256,
        ..RoomsConfig::default()
    };
    let hub = Hub::new(config);
    #[allow(clippy::disallowed_methods)]
    let now = std::time::Instant::now();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let Ok((id, _, outbound)) = hub.connect(None, now) else {
            panic!("four clients fit in eight");
        };
        clients.push((id, outbound));
    }
    let mut rest = data;
    while let [head, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let text = String::from_utf8_lossy(&tail[..n]).into_owned();
        rest = &tail[n..];
        let id = &clients[usize::from(head & 3)].0;
        if head & 4 == 0 {
            socket_io(&hub, *id, text, head & 8 != 0);
        } else {
            let _ = ws::handle_text(&hub, *id, &text);
        }
        for (_, outbound) in clients.iter_mut() {
            drain(outbound);
        }
    }
    for (id, _) in &clients {
        hub.disconnect(*id);
    }
    assert_eq!(hub.stats().clients, 0, "every client is gone");
});
