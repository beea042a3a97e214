//! Feeds arbitrary bytes to a running agent: shared by the `ice_agent` fuzz
//! target and the property test in `tests/garbage.rs`.
//!
//! Raw bytes rarely get past MESSAGE-INTEGRITY, so some chunks are
//! re-signed: decoded as STUN and re-encoded with the right key, as a request
//! to us or as a response to the last request we sent. That takes the
//! fuzzer into the request and response handlers.

#![allow(unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use realtimer_ice::{IceAgent, IceConfig, IceCredentials};
use realtimer_stun::attributes::{Priority, Username};
use realtimer_stun::{AttributeType, Class, IntegrityKey, Message, MessageEncoder};

const LOCAL: &str = "127.0.0.1:5000";
const REMOTE_PWD: &str = "remote-password-0123456789";

/// Runs the agent through `data`: each chunk is `[flags, len, bytes...]`.
pub fn drive(data: &[u8], start: Instant) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let config = IceConfig {
        allow_loopback: true,
        seed: u64::from(first),
        ..IceConfig::default()
    };
    let mut agent = IceAgent::new(config, first & 1 == 1);
    let local: SocketAddr = LOCAL.parse().unwrap_or_else(|_| unreachable!());
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
    let sources: [SocketAddr; 3] = [
        "127.0.0.1:6000".parse().unwrap_or(local),
        "127.0.0.1:6001".parse().unwrap_or(local),
        "[::1]:6000".parse().unwrap_or(local),
    ];
    let local_key = IntegrityKey::from_bytes(agent.local_credentials().pwd.as_bytes());
    let remote_key = IntegrityKey::from_bytes(REMOTE_PWD.as_bytes());
    let username = format!("{}:rmte", agent.local_credentials().ufrag);
    let mut last_request = None;
    let mut signed = Vec::new();
    while rest.len() >= 2 {
        let flags = rest[0];
        let len = usize::from(rest[1]).min(rest.len() - 2);
        let chunk = &rest[2..2 + len];
        rest = &rest[2 + len..];
        let source = sources[usize::from(flags >> 6) % sources.len()];
        let datagram: &[u8] = match flags & 3 {
            1 => resign(chunk, None, Some(&username), &local_key, &mut signed),
            2 => resign(chunk, last_request, None, &remote_key, &mut signed),
            _ => chunk,
        };
        let _ = agent.handle_receive(now, source, local, datagram);
        now += Duration::from_millis(u64::from(flags & 0x3c) * 8);
        agent.handle_timeout(now);
        while let Some(t) = agent.poll_transmit() {
            if let Ok(m) = Message::decode(&t.contents) {
                if m.class() == Class::Request {
                    last_request = Some(m.transaction_id());
                }
            }
        }
        while agent.poll_event().is_some() {}
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
