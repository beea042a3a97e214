//! Feeds arbitrary datagrams to a server-role DTLS connection, fresh or
//! after a real ClientHello (so the input meets the state that waits for
//! the client's second flight), with timeouts in between: nothing may
//! panic, and queues stay within their limits.
//!
//! Input: a flag byte (bit 0: start with the real ClientHello), then
//! datagrams as `[len: u16 big-endian][bytes]`; a zero length advances the
//! clock by one second and handles the timeout.
#![no_main]
#![allow(clippy::disallowed_methods)] // one clock reading: the origin of virtual time

use std::sync::OnceLock;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use realtimer_dtls::{Certificate, Dtls, DtlsConfig, Role};

struct Fixture {
    server: Certificate,
    client_fingerprint: realtimer_dtls::Fingerprint,
    client_hello: Vec<Bytes>,
    origin: Instant,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let wall = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let server = Certificate::generate(wall).expect("certificate");
        let client = Certificate::generate(wall).expect("certificate");
        let origin = Instant::now();
        let client_fingerprint = client.fingerprint().clone();
        let mut dtls = Dtls::new(
            DtlsConfig::new(client),
            Role::Client,
            server.fingerprint().clone(),
            origin,
        )
        .expect("client");
        let client_hello = std::iter::from_fn(|| dtls.poll_transmit()).collect();
        Fixture {
            server,
            client_fingerprint,
            client_hello,
            origin,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let config = DtlsConfig::new(f.server.clone()).with_queue_limits(64, 64);
    let Ok(mut dtls) = Dtls::new(config, Role::Server, f.client_fingerprint.clone(), f.origin)
    else {
        return;
    };
    let mut now = f.origin;
    if flags & 1 == 1 {
        for d in &f.client_hello {
            let _ = dtls.handle_input(now, d);
        }
    }
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        if len == 0 {
            now += Duration::from_secs(1);
            dtls.handle_timeout(now);
        } else {
            let take = len.min(rest.len());
            let _ = dtls.handle_input(now, &rest[..take]);
            rest = &rest[take..];
        }
        let mut sent = 0;
        while dtls.poll_transmit().is_some() {
            sent += 1;
        }
        assert!(sent <= 64, "transmit queue over its limit");
        while dtls.poll_event().is_some() {}
        let _ = dtls.poll_timeout();
        let _ = dtls.send(b"x");
    }
    dtls.close();
});
