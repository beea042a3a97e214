//! Drives a connected DTLS pair whose server uses realtimer's own record
//! layer: the client sends real records, which the input replays,
//! truncates, corrupts or mixes with arbitrary bytes before they reach the
//! server. Nothing may panic, queues stay within their limits, and every
//! piece of application data the server accepts is one the client sent.
//!
//! Input: operations `[op: u8][len: u8][bytes; len]`:
//! - op % 5 == 0: the client sends `bytes` (delivered untouched);
//! - 1: deliver `bytes` as a datagram;
//! - 2: deliver the last client record with byte `len` flipped;
//! - 3: replay the last client record;
//! - 4: deliver the last client record cut to `len` bytes.
#![no_main]
#![allow(clippy::disallowed_methods)] // one clock reading: the origin of virtual time

use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use realtimer_dtls::{Certificate, Dtls, DtlsConfig, DtlsEvent, Role};

/// A connected pair; the handshake runs on every input (the connection
/// state cannot be cloned).
fn connected_pair(now: Instant) -> Option<(Dtls, Dtls)> {
    let wall = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let (c, s) = (
        Certificate::generate(wall).ok()?,
        Certificate::generate(wall).ok()?,
    );
    let (cf, sf) = (c.fingerprint().clone(), s.fingerprint().clone());
    let mut client = Dtls::new(DtlsConfig::new(c), Role::Client, sf, now).ok()?;
    let config = DtlsConfig::new(s).with_queue_limits(64, 64);
    let mut server = Dtls::new(config, Role::Server, cf, now).ok()?;
    for _ in 0..16 {
        while let Some(d) = client.poll_transmit() {
            let _ = server.handle_input(now, &d);
        }
        while let Some(d) = server.poll_transmit() {
            let _ = client.handle_input(now, &d);
        }
    }
    while client.poll_event().is_some() {}
    while server.poll_event().is_some() {}
    (server.uses_own_record_layer()).then_some((client, server))
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let Some((mut client, mut server)) = connected_pair(now) else {
        return;
    };
    let mut sent: Vec<Bytes> = Vec::new();
    let mut last: Option<Bytes> = None;
    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(take);
        rest = next;
        let datagram: Option<Bytes> = match op % 5 {
            0 => {
                if client.send(bytes).is_ok() && !bytes.is_empty() {
                    sent.push(Bytes::copy_from_slice(bytes));
                }
                last = client.poll_transmit();
                last.clone()
            }
            1 => Some(Bytes::copy_from_slice(bytes)),
            2 => last.as_ref().map(|l| {
                let mut v = l.to_vec();
                if let Some(b) = v.get_mut(usize::from(*len) % l.len().max(1)) {
                    *b ^= 1;
                }
                Bytes::from(v)
            }),
            3 => last.clone(),
            _ => last
                .as_ref()
                .map(|l| l.slice(..usize::from(*len).min(l.len()))),
        };
        if let Some(d) = datagram {
            let _ = server.handle_input(now, &d);
        }
        let mut transmits = 0;
        while server.poll_transmit().is_some() {
            transmits += 1;
        }
        assert!(transmits <= 64, "transmit queue over its limit");
        while let Some(event) = server.poll_event() {
            if let DtlsEvent::ApplicationData(d) = event {
                let at = sent.iter().position(|s| *s == d);
                assert!(at.is_some(), "accepted data the client never sent");
                // Each record is accepted once, in the order sent or later.
                sent.drain(..=at.unwrap_or(0));
            }
        }
    }
});
