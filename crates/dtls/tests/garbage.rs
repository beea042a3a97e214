//! No input panics a connection: random datagrams, and mutated real
//! handshake datagrams, at every stage.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::cert;
use proptest::prelude::*;
use realtimer_dtls::{Dtls, DtlsConfig, DtlsState, Role};

/// A client and a server moved forward by hand on a perfect link; returns
/// them and every datagram each sent.
fn handshake(now: Instant) -> (Dtls, Dtls, Vec<Bytes>) {
    let (cc, sc) = (cert(), cert());
    let (cf, sf) = (cc.fingerprint().clone(), sc.fingerprint().clone());
    let mut client = Dtls::new(DtlsConfig::new(cc), Role::Client, sf, now).unwrap();
    let mut server = Dtls::new(DtlsConfig::new(sc), Role::Server, cf, now).unwrap();
    let mut seen = Vec::new();
    loop {
        let mut moved = false;
        while let Some(d) = client.poll_transmit() {
            server.handle_input(now, &d).unwrap();
            seen.push(d);
            moved = true;
        }
        while let Some(d) = server.poll_transmit() {
            client.handle_input(now, &d).unwrap();
            seen.push(d);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    (client, server, seen)
}

fn drain(d: &mut Dtls) {
    while d.poll_transmit().is_some() {}
    while d.poll_event().is_some() {}
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_datagrams_never_panic(
        datagrams in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..1500),
                // DTLS-looking: a plausible record header, random body.
                (20u8..=25, any::<u16>(), any::<[u8; 6]>(), prop::collection::vec(any::<u8>(), 0..600))
                    .prop_map(|(t, epoch, seq, body)| {
                        let mut d = vec![t, 0xfe, 0xfd];
                        d.extend(epoch.to_be_bytes());
                        d.extend(seq);
                        d.extend(u16::try_from(body.len()).unwrap().to_be_bytes());
                        d.extend(body);
                        d
                    }),
            ],
            1..12,
        ),
        mutate_at in any::<prop::sample::Index>(),
        flip in any::<u8>(),
    ) {
        let now = Instant::now();
        // Fresh server and client mid-handshake.
        let sc = cert();
        let cc = cert();
        let mut server = Dtls::new(DtlsConfig::new(sc.clone()), Role::Server, cc.fingerprint().clone(), now).unwrap();
        let mut client = Dtls::new(DtlsConfig::new(cc), Role::Client, sc.fingerprint().clone(), now).unwrap();
        for d in &datagrams {
            let _ = server.handle_input(now, d);
            let _ = client.handle_input(now, d);
            drain(&mut server);
            drain(&mut client);
        }
        server.handle_timeout(now + Duration::from_secs(1));
        client.handle_timeout(now + Duration::from_secs(1));

        // A connected pair keeps working after garbage.
        let (mut client, mut server, seen) = handshake(now);
        prop_assert_eq!(client.state(), DtlsState::Connected);
        drain(&mut client);
        drain(&mut server);
        for d in &datagrams {
            let _ = server.handle_input(now, d);
            drain(&mut server);
        }
        // A real handshake datagram with one byte changed, replayed.
        let mut mutated = seen[mutate_at.index(seen.len())].to_vec();
        let i = mutate_at.index(mutated.len());
        mutated[i] ^= flip | 1;
        let _ = client.handle_input(now, &mutated);
        drain(&mut client);
        if client.state() == DtlsState::Connected && server.state() == DtlsState::Connected {
            client.send(b"after").unwrap();
            let d = client.poll_transmit().unwrap();
            server.handle_input(now, &d).unwrap();
            prop_assert_eq!(
                server.poll_event(),
                Some(realtimer_dtls::DtlsEvent::ApplicationData(Bytes::from_static(b"after")))
            );
        }
    }
}
