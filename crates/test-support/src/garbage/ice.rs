//! Feeds arbitrary bytes to a running agent: shared by the `ice_agent` fuzz
//! target and the property test in `crates/ice/tests/garbage.rs`.
//!
//! Raw bytes rarely get past MESSAGE-INTEGRITY, so some chunks are
//! re-signed: decoded as STUN and re-encoded with the right key, as a request
//! to us or as a response to the last request we sent. That takes the
//! fuzzer into the request and response handlers.
//!
//! When the first byte says so, the agent also has TURN servers, one over
//! UDP and one over TCP (its connection opened at once): chunks from them
//! reach the TURN client (responses re-signed with the long-term key for
//! realm [`TURN_REALM`], Data indications, ChannelData), and application
//! data goes out through [`IceAgent::send_data`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use realtimer_ice::{IceAgent, IceConfig, IceCredentials, IceEvent, Transport, TurnServer};
use realtimer_stun::attributes::{Priority, Username};
use realtimer_stun::{
    AttributeType, Class, IntegrityKey, Message, MessageEncoder, PasswordAlgorithm,
};

const LOCAL: &str = "127.0.0.1:5000";
const REMOTE_PWD: &str = "remote-password-0123456789";
const TURN_UDP: &str = "127.0.0.1:3478";
const TURN_TCP: &str = "127.0.0.1:3479";
/// The TCP connection's local address.
const TURN_TCP_LOCAL: &str = "127.0.0.1:7000";
/// The realm a fuzzed 401 must name for re-signed TURN responses to pass.
pub const TURN_REALM: &str = "realm";
const TURN_USER: &str = "user";
const TURN_PASSWORD: &str = "pass";

/// Runs the agent through `data`: each chunk is `[flags, len, bytes...]`.
pub fn drive(data: &[u8], start: Instant) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let addr = |a: &str| -> SocketAddr { a.parse().unwrap_or_else(|_| unreachable!()) };
    let turn_servers = if first & 2 == 2 {
        vec![
            TurnServer::udp(addr(TURN_UDP), TURN_USER, TURN_PASSWORD),
            TurnServer::udp(addr(TURN_TCP), TURN_USER, TURN_PASSWORD)
                .with_transport(Transport::Tcp),
        ]
    } else {
        Vec::new()
    };
    let config = IceConfig {
        allow_loopback: true,
        seed: u64::from(first),
        turn_servers,
        relay_only: first & 4 == 4,
        ..IceConfig::default()
    };
    let mut agent = IceAgent::new(config, first & 1 == 1);
    let local = addr(LOCAL);
    let mut now = start;
    agent.gather(now, &[local]);
    agent.set_remote_credentials(IceCredentials {
        ufrag: "rmte".into(),
        pwd: REMOTE_PWD.into(),
    });
    if let Ok(c) =
        realtimer_sdp::Candidate::parse("candidate:1 1 udp 2130706431 127.0.0.1 6000 typ host")
    {
        let _ = agent.add_remote_candidate(now, &c);
    }
    let sources: [SocketAddr; 5] = [
        addr("127.0.0.1:6000"),
        addr("127.0.0.1:6001"),
        addr("[::1]:6000"),
        addr(TURN_UDP),
        addr(TURN_TCP),
    ];
    let local_key = IntegrityKey::from_bytes(agent.local_credentials().pwd.as_bytes());
    let remote_key = IntegrityKey::from_bytes(REMOTE_PWD.as_bytes());
    let turn_key =
        IntegrityKey::long_term(TURN_USER, TURN_REALM, TURN_PASSWORD, PasswordAlgorithm::Md5)
            .unwrap_or_else(|_| unreachable!());
    let username = format!("{}:rmte", agent.local_credentials().ufrag);
    let mut last_request = None;
    let mut signed = Vec::new();
    while rest.len() >= 2 {
        let flags = rest[0];
        let len = usize::from(rest[1]).min(rest.len() - 2);
        let chunk = &rest[2..2 + len];
        rest = &rest[2 + len..];
        let source = sources[usize::from(flags >> 5) % sources.len()];
        let destination = if source == addr(TURN_TCP) {
            addr(TURN_TCP_LOCAL)
        } else {
            local
        };
        let datagram: &[u8] = match flags & 3 {
            1 => resign(chunk, None, Some(&username), &local_key, &mut signed),
            2 => resign(chunk, last_request, None, &remote_key, &mut signed),
            3 => resign(chunk, last_request, None, &turn_key, &mut signed),
            _ => chunk,
        };
        let _ = agent.handle_receive_data(now, source, destination, datagram);
        now += Duration::from_millis(u64::from(flags & 0x1c) * 16);
        agent.handle_timeout(now);
        if flags & 0x1c == 0x1c {
            let _ = agent.send_data(chunk);
        }
        let mut record = |contents: &[u8]| {
            if let Ok(m) = Message::decode(contents) {
                if m.class() == Class::Request {
                    last_request = Some(m.transaction_id());
                }
            }
        };
        while let Some(t) = agent.poll_transmit() {
            record(&t.contents);
        }
        while let Some(t) = agent.poll_turn_stream() {
            record(&t.contents);
        }
        while let Some(event) = agent.poll_event() {
            if let IceEvent::OpenTurnConnection { server, .. } = event {
                if flags & 0x80 == 0 {
                    agent.turn_connected(now, server, addr(TURN_TCP_LOCAL));
                } else {
                    agent.turn_disconnected(now, server);
                }
            }
        }
        let _ = agent.poll_timeout();
    }
}

/// Re-encodes a STUN message with MESSAGE-INTEGRITY and FINGERPRINT; as a
/// response to `respond_to` when given.
fn resign<'a>(
    chunk: &'a [u8],
    respond_to: Option<realtimer_stun::TransactionId>,
    username: Option<&str>,
    key: &IntegrityKey,
    out: &'a mut Vec<u8>,
) -> &'a [u8] {
    let Ok(message) = Message::decode(chunk) else {
        return chunk;
    };
    out.clear();
    let (class, tid) = match respond_to {
        Some(tid) if message.class() != Class::ErrorResponse => (Class::SuccessResponse, tid),
        Some(tid) => (Class::ErrorResponse, tid),
        None => (Class::Request, message.transaction_id()),
    };
    let mut enc = MessageEncoder::new(out, class, message.method(), tid);
    if let Some(username) = username {
        // A request gets past the ufrag check with our USERNAME, and past
        // the PRIORITY check unless it brings its own.
        if enc.add(&Username(username)).is_err() {
            return chunk;
        }
        if !message.contains(AttributeType::PRIORITY) && enc.add(&Priority(1)).is_err() {
            return chunk;
        }
    }
    for raw in message.raw_attributes() {
        if raw.attribute_type == AttributeType::USERNAME && username.is_some() {
            continue;
        }
        if enc.add_raw(raw.attribute_type, raw.value).is_err() {
            return chunk;
        }
    }
    if enc.add_message_integrity(key).is_err() || enc.add_fingerprint().is_err() {
        return chunk;
    }
    out
}
