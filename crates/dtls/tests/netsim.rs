//! DTLS on the simulated network: handshakes in both roles, data, SRTP keys,
//! authentication failures, loss, fragmentation, close and timeouts.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::{cert, wall, Pair, PairConfig};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509Name, X509};
use realtimer_dtls::{Certificate, DtlsConfig, DtlsError, DtlsEvent, DtlsState, SrtpProfile};
use realtimer_netsim::{seed_from_env_or, LinkConfig, Loss};

#[test]
fn both_roles_connect_and_exchange_data_both_ways() {
    let mut pair = Pair::new(PairConfig::new(seed_from_env_or(1)));
    assert!(pair.run_handshake(Duration::from_secs(5)));
    // One round trip is 20 ms; a full handshake takes two.
    let connected = pair.client().connected_at().unwrap();
    assert_eq!(connected - pair.start, Duration::from_millis(80));
    for node in [pair.client(), pair.server()] {
        let Some(DtlsEvent::Connected { cipher_suite, .. }) = node.connected_event() else {
            panic!("no Connected event");
        };
        assert_eq!(cipher_suite, "ECDHE-ECDSA-AES128-GCM-SHA256");
        assert!(node.input_errors.is_empty(), "{:?}", node.input_errors);
        assert_eq!(node.dtls.poll_timeout(), None);
    }

    for i in 0..20u8 {
        pair.client_mut().dtls.send(&[i; 1100]).unwrap();
        pair.server_mut().dtls.send(&[i; 7]).unwrap();
    }
    pair.net.run_for(Duration::from_secs(1));
    let to_server = pair.server().received();
    let to_client = pair.client().received();
    assert_eq!(to_server.len(), 20);
    assert_eq!(to_client.len(), 20);
    for i in 0..20u8 {
        assert_eq!(&to_server[usize::from(i)][..], &[i; 1100][..]);
        assert_eq!(&to_client[usize::from(i)][..], &[i; 7][..]);
    }
    // Every datagram, handshake and data, fits the default MTU.
    for node in [pair.client(), pair.server()] {
        assert!(node.sent.iter().all(|(_, d)| d.len() <= 1200));
    }
}

#[test]
fn srtp_keying_material_matches_and_follows_the_offer() {
    let mut config = PairConfig::new(2);
    let mut pair = Pair::new(PairConfig::new(2));
    assert!(pair.run_handshake(Duration::from_secs(5)));
    let keys = |pair: &Pair| {
        let srtp = |n: &common::DtlsNode| match n.connected_event() {
            Some(DtlsEvent::Connected { srtp, .. }) => srtp.clone().unwrap(),
            _ => panic!("not connected"),
        };
        (srtp(pair.client()), srtp(pair.server()))
    };
    let (c, s) = keys(&pair);
    assert_eq!(c.profile, SrtpProfile::AeadAes128Gcm);
    assert_eq!(s.profile, SrtpProfile::AeadAes128Gcm);
    assert_eq!(c.client_write_key, s.client_write_key);
    assert_eq!(c.server_write_key, s.server_write_key);
    assert_eq!(c.client_write_salt, s.client_write_salt);
    assert_eq!(c.server_write_salt, s.server_write_salt);
    assert_eq!(
        (c.client_write_key.len(), c.client_write_salt.len()),
        (16, 12)
    );
    assert_ne!(c.client_write_key, c.server_write_key);
    assert_eq!(c.local(), s.remote());
    assert_eq!(c.remote(), s.local());
    assert!(
        !format!("{c:?}").contains("key: ["),
        "keys stay out of Debug"
    );

    // A client offering only AES-CM gets AES-CM with its 112-bit salts.
    config.client = config
        .client
        .with_srtp_profiles(vec![SrtpProfile::Aes128CmSha1_80]);
    let mut pair = Pair::new(config);
    assert!(pair.run_handshake(Duration::from_secs(5)));
    let (c, s) = keys(&pair);
    assert_eq!(c.profile, SrtpProfile::Aes128CmSha1_80);
    assert_eq!(s.profile, SrtpProfile::Aes128CmSha1_80);
    assert_eq!(c, SrtpKeys::swap_role(&s));
    assert_eq!(
        (c.server_write_key.len(), c.server_write_salt.len()),
        (16, 14)
    );

    // No profiles on one side: connected, without SRTP.
    let mut config = PairConfig::new(3);
    config.server = config.server.with_srtp_profiles(vec![]);
    let mut pair = Pair::new(config);
    assert!(pair.run_handshake(Duration::from_secs(5)));
    assert!(matches!(
        pair.client().connected_event(),
        Some(DtlsEvent::Connected { srtp: None, .. })
    ));
}

/// Compares keying material from both sides (which differ only in `role`).
struct SrtpKeys;
impl SrtpKeys {
    fn swap_role(m: &realtimer_dtls::SrtpKeyingMaterial) -> realtimer_dtls::SrtpKeyingMaterial {
        let mut m = m.clone();
        m.role = match m.role {
            realtimer_dtls::Role::Client => realtimer_dtls::Role::Server,
            realtimer_dtls::Role::Server => realtimer_dtls::Role::Client,
        };
        m
    }
}

#[test]
fn a_fingerprint_mismatch_fails_with_the_typed_error() {
    let impostor = cert().fingerprint().clone();
    // The client expects another server certificate.
    let mut config = PairConfig::new(4);
    config.client_expects = Some(impostor.clone());
    let server_fp = config.server.certificate.fingerprint().clone();
    let mut pair = Pair::new(config);
    assert!(!pair.run_handshake(Duration::from_secs(5)));
    assert_eq!(pair.client().dtls.state(), DtlsState::Failed);
    assert_eq!(
        pair.client().failure(),
        Some(&DtlsError::FingerprintMismatch {
            expected: impostor.clone(),
            actual: Some(server_fp),
        })
    );
    // The server hears OpenSSL's handshake_failure alert and fails too.
    assert_eq!(
        pair.server().failure(),
        Some(&DtlsError::AlertReceived { description: 40 })
    );

    // The server expects another client certificate.
    let mut config = PairConfig::new(5);
    config.server_expects = Some(impostor.clone());
    let client_fp = config.client.certificate.fingerprint().clone();
    let mut pair = Pair::new(config);
    assert!(!pair.run_handshake(Duration::from_secs(5)));
    assert_eq!(
        pair.server().failure(),
        Some(&DtlsError::FingerprintMismatch {
            expected: impostor,
            actual: Some(client_fp),
        })
    );
    assert_eq!(
        pair.client().failure(),
        Some(&DtlsError::AlertReceived { description: 40 })
    );
    let message = pair.server().failure().unwrap().to_string();
    assert!(message.contains("but its SDP says sha-256"), "{message}");

    // The right certificate under another hash function is accepted.
    let mut config = PairConfig::new(6);
    let der = config.server.certificate.to_der().unwrap();
    config.client_expects = Some(
        realtimer_dtls::fingerprint_of_der(realtimer_dtls::HashFunction::Sha512, &der).unwrap(),
    );
    let mut pair = Pair::new(config);
    assert!(pair.run_handshake(Duration::from_secs(5)));
}

#[test]
fn the_handshake_completes_under_30_percent_loss() {
    let base = seed_from_env_or(100);
    for seed in base..base + 12 {
        let mut config = PairConfig::new(seed);
        config.link = LinkConfig::default()
            .delay(Duration::from_millis(25))
            .loss(Loss::Independent(0.3));
        // Default timers; a longer deadline than the default 30 s, which a
        // few seeds in a hundred need at 30% loss each way.
        config.client = config
            .client
            .with_handshake_timeout(Duration::from_secs(60));
        config.server = config
            .server
            .with_handshake_timeout(Duration::from_secs(60));
        let mut pair = Pair::new(config);
        assert!(
            pair.run_handshake(Duration::from_secs(60)),
            "seed {seed}: client {:?} server {:?}",
            pair.client().failure(),
            pair.server().failure()
        );
        // Data flows afterwards (each message sent until one gets through).
        for _ in 0..20 {
            pair.client_mut().dtls.send(b"ping").unwrap();
            pair.net.run_for(Duration::from_millis(100));
        }
        assert!(!pair.server().received().is_empty(), "seed {seed}");
    }
}

#[test]
fn retransmissions_double_from_one_second_and_the_handshake_times_out() {
    let mut config = PairConfig::new(7);
    config.link = LinkConfig::default().loss(Loss::Independent(1.0));
    let mut pair = Pair::new(config);
    assert!(!pair.run_handshake(Duration::from_secs(60)));
    let client = pair.client();
    assert_eq!(
        client.failure(),
        Some(&DtlsError::HandshakeTimeout(Duration::from_secs(30)))
    );
    let times: Vec<u64> = client
        .sent
        .iter()
        .map(|(t, _)| (*t - pair.start).as_secs())
        .collect();
    // The ClientHello at 0 s, then 1 s and 2 s apart (capped at 2 s).
    let expected: Vec<u64> = [0, 1].into_iter().chain((3..30).step_by(2)).collect();
    assert_eq!(times, expected);
    // Resent as it was, but with a fresh record sequence number.
    let (first, sixth) = (&client.sent[0].1, &client.sent[5].1);
    assert_eq!(first[..5], sixth[..5]);
    assert_eq!(first[11..], sixth[11..]);
    assert_eq!(&sixth[5..11], &[0, 0, 0, 0, 0, 5]);
    let failed_at = client
        .events
        .iter()
        .find_map(|(t, e)| matches!(e, DtlsEvent::Failed(_)).then_some(*t))
        .unwrap();
    assert_eq!(failed_at - pair.start, Duration::from_secs(30));
    assert_eq!(client.dtls.poll_timeout(), None);
}

/// An RSA-4096 certificate padded with 150 subject alternative names: a
/// Certificate message of several kilobytes.
fn large_certificate() -> Certificate {
    let rsa = Rsa::generate(4096).unwrap();
    let key = PKey::from_rsa(rsa).unwrap();
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_text("CN", "WebRTC").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    let secs = i64::try_from(
        wall()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::from_unix(secs).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::from_unix(secs + 86_400).unwrap())
        .unwrap();
    let mut san = SubjectAlternativeName::new();
    for i in 0..150 {
        san.dns(&format!("host-{i:03}.a-rather-long-subdomain.example.org"));
    }
    let san = san.build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    Certificate::from_openssl(b.build(), key).unwrap()
}

#[test]
fn a_large_certificate_flight_is_fragmented_to_the_mtu() {
    let big = large_certificate();
    assert!(big.to_der().unwrap().len() > 6000);
    for (seed, loss) in [(8, 0.0), (9, 0.2)] {
        let mut config = PairConfig::new(seed);
        // The link drops any datagram over 1200 bytes (IP MTU 1228 with
        // the IPv4 and UDP headers).
        config.link = LinkConfig::default()
            .delay(Duration::from_millis(10))
            .mtu(1228)
            .loss(Loss::Independent(loss));
        config.server = DtlsConfig::new(big.clone());
        config.client = DtlsConfig::new(large_certificate());
        let mut pair = Pair::new(config);
        let ok = pair.run_handshake(Duration::from_secs(30));
        assert!(
            ok,
            "loss {loss}: client {:?} {:?} sent {:?}; server {:?} {:?} sent {:?}",
            pair.client().failure(),
            pair.client().input_errors,
            pair.client()
                .sent
                .iter()
                .map(|(t, d)| ((*t - pair.start).as_millis(), d.len()))
                .collect::<Vec<_>>(),
            pair.server().failure(),
            pair.server().input_errors,
            pair.server()
                .sent
                .iter()
                .map(|(t, d)| ((*t - pair.start).as_millis(), d.len()))
                .collect::<Vec<_>>(),
        );
        for node in [pair.client(), pair.server()] {
            assert!(node.sent.iter().all(|(_, d)| d.len() <= 1200));
            let Some(DtlsEvent::Connected { cipher_suite, .. }) = node.connected_event() else {
                panic!("not connected");
            };
            assert_eq!(cipher_suite, "ECDHE-RSA-AES128-GCM-SHA256");
        }
        // The server's first flight alone took several full datagrams.
        let first_flight = pair
            .server()
            .sent
            .iter()
            .filter(|(t, _)| *t == pair.server().sent[0].0)
            .count();
        assert!(first_flight >= 6, "{first_flight} datagrams");
        assert_eq!(
            pair.net
                .stats()
                .dropped
                .get(realtimer_netsim::DropCause::Mtu),
            0
        );
    }

    // A smaller MTU fragments further.
    let mut config = PairConfig::new(10);
    config.link = LinkConfig::default().mtu(628);
    config.server = DtlsConfig::new(big).with_mtu(600);
    config.client = config.client.with_mtu(600);
    let mut pair = Pair::new(config);
    assert!(pair.run_handshake(Duration::from_secs(5)));
    assert!(pair.server().sent.iter().all(|(_, d)| d.len() <= 600));
}

#[test]
fn close_notify_reaches_the_peer() {
    let mut pair = Pair::new(PairConfig::new(11));
    assert!(pair.run_handshake(Duration::from_secs(5)));
    pair.client_mut().dtls.close();
    assert_eq!(pair.client().dtls.state(), DtlsState::Closed);
    assert_eq!(pair.client_mut().dtls.send(b"x"), Err(DtlsError::Closed));
    pair.net.run_for(Duration::from_secs(1));
    assert_eq!(pair.server().dtls.state(), DtlsState::Closed);
    assert!(matches!(
        pair.server().events.last(),
        Some((_, DtlsEvent::Closed))
    ));
    assert_eq!(pair.server_mut().dtls.send(b"x"), Err(DtlsError::Closed));
    // The server answered with its own close_notify; the client, already
    // closed, refuses it without fuss.
    assert_eq!(pair.client().input_errors, vec![DtlsError::Closed]);
    pair.client_mut().dtls.close(); // idempotent
}

#[test]
fn sending_before_connecting_and_oversized_data_are_refused() {
    let mut pair = Pair::new(PairConfig::new(12));
    assert_eq!(
        pair.client_mut().dtls.send(b"early"),
        Err(DtlsError::NotConnected)
    );
    assert!(pair.run_handshake(Duration::from_secs(5)));
    assert_eq!(
        pair.client_mut().dtls.send(&vec![0; 16385]),
        Err(DtlsError::MessageTooLarge {
            len: 16385,
            max: 16384
        })
    );
    assert_eq!(pair.client_mut().dtls.send(b""), Ok(()));
    assert!(pair.client_mut().dtls.send(&vec![1; 16384]).is_ok());
}

#[test]
fn a_connection_ignores_non_dtls_and_forged_records() {
    let mut pair = Pair::new(PairConfig::new(13));
    assert!(pair.run_handshake(Duration::from_secs(5)));
    let now = pair.net.now();
    let server = &mut pair.server_mut().dtls;
    assert_eq!(
        server.handle_input(now, &[0, 1, 0, 0]),
        Err(DtlsError::NotDtls(0))
    );
    assert_eq!(server.handle_input(now, &[]), Err(DtlsError::NotDtls(0)));
    assert!(matches!(
        server.handle_input(now, &vec![23; 70_000]),
        Err(DtlsError::DatagramTooLarge { .. })
    ));
    // Application data records with a forged epoch-1 header: bad MAC,
    // dropped silently (RFC 6347 §4.1.2.7).
    let mut forged = vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 99, 0, 40];
    forged.extend([0xab; 40]);
    assert_eq!(server.handle_input(now, &forged), Ok(()));
    assert_eq!(server.state(), DtlsState::Connected);
    pair.client_mut().dtls.send(b"still here").unwrap();
    pair.net.run_for(Duration::from_secs(1));
    assert_eq!(pair.server().received().len(), 1);
}

/// Not a check: handshake failures and times over many seeds at 30% loss
/// with the default timers (`cargo nextest run -p realtimer-dtls
/// --run-ignored all loss_statistics --no-capture`).
#[test]
#[ignore]
fn loss_statistics() {
    let (mut fails, mut total, runs) = (0u32, Duration::ZERO, 300u32);
    for seed in 0..u64::from(runs) {
        let mut config = PairConfig::new(seed);
        config.link = LinkConfig::default()
            .delay(Duration::from_millis(25))
            .loss(Loss::Independent(0.3));
        let mut pair = Pair::new(config);
        if pair.run_handshake(Duration::from_secs(30)) {
            total += pair.client().connected_at().unwrap() - pair.start;
        } else {
            fails += 1;
        }
    }
    eprintln!(
        "{fails} of {runs} failed; mean {:?}",
        total / (runs - fails)
    );
}
