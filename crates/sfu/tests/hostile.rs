//! A hostile participant floods the unit's shared port with ICE checks
//! from fresh source addresses: the unit routes datagrams only by
//! addresses its participant's ICE agent took as candidates, so what it
//! keeps per participant stays bounded (`SfuStats::routed_addresses`).
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use realtimer_proto::{Certificate, IceConfig, MediaKind, Rtc, RtcConfig};
use realtimer_sfu::{Sfu, SfuConfig};
use realtimer_stun::attributes::{IceControlling, Priority, Username};
use realtimer_stun::{Class, IntegrityKey, MessageEncoder, Method, TransactionId};

/// The value of SDP attribute `name` (`a=name:value`).
fn sdp_attribute<'a>(sdp: &'a str, name: &str) -> &'a str {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=")?.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no a={name} in\n{sdp}"))
        .trim()
}

/// An ICE connectivity check (RFC 8445 §7.2.2) signed with `password`.
fn check(username: &str, password: &str, n: u32) -> Vec<u8> {
    let mut id = [7u8; 12];
    id[..4].copy_from_slice(&n.to_be_bytes());
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId::new(id),
    );
    enc.add(&Username(username)).unwrap();
    enc.add(&Priority(1_862_270_975)).unwrap();
    enc.add(&IceControlling(42)).unwrap();
    enc.add_message_integrity(&IntegrityKey::short_term(password).unwrap())
        .unwrap();
    enc.add_fingerprint().unwrap();
    buf
}

#[test]
fn a_check_flood_from_fresh_addresses_grows_no_routing_past_the_candidate_bound() {
    let now = Instant::now();
    let sfu_address: SocketAddr = "10.0.0.100:3478".parse().unwrap();
    let cert = Certificate::generate(SystemTime::now()).unwrap();
    let mut sfu = Sfu::new(SfuConfig::new(vec![sfu_address], cert.clone()));
    let id = sfu.join(now, "flood").unwrap();
    let mut peer = Rtc::new(RtcConfig::default().with_seed(3), cert, now);
    peer.add_local_address(now, "10.0.0.1:5000".parse().unwrap());
    peer.add_transceiver(MediaKind::Audio, realtimer_proto::Direction::RecvOnly)
        .unwrap();
    let offer = peer.create_offer().unwrap();
    peer.set_local_description(now, offer.clone()).unwrap();
    let answer = sfu.handle_offer(now, id, offer).unwrap();
    let username = format!(
        "{}:{}",
        sdp_attribute(&answer.sdp, "ice-ufrag"),
        peer.local_ufrag()
    );
    let password = sdp_attribute(&answer.sdp, "ice-pwd").to_owned();
    let from = |n: u32| -> SocketAddr {
        let [_, a, b, c] = n.to_be_bytes();
        SocketAddr::from(([10, a, b, c.max(1)], 40_000 + (n % 1000) as u16))
    };

    // The right ufrag with the wrong password, from 2,000 addresses:
    // nothing is learnt (before, each one was routed to the participant).
    for n in 0..2_000 {
        let datagram = check(&username, "not-the-password-at-all", n);
        sfu.handle_receive(now, from(n + 1), sfu_address, &datagram);
        while sfu.poll_transmit().is_some() {}
    }
    assert_eq!(sfu.stats().routed_addresses, 0);

    // Valid checks from 2,000 more: each one the agent takes becomes a
    // peer-reflexive candidate, up to its bound, and is answered.
    let mut answered = 0;
    for n in 2_000..4_000 {
        let datagram = check(&username, &password, n);
        sfu.handle_receive(now, from(n + 1), sfu_address, &datagram);
        while let Some(t) = sfu.poll_transmit() {
            if t.destination == from(n + 1) {
                answered += 1;
            }
        }
    }
    let bound = IceConfig::default().max_remote_candidates as u64;
    let routed = sfu.stats().routed_addresses;
    assert!(
        routed > 0 && routed <= bound,
        "{routed} routed addresses (bound {bound})"
    );
    assert!(answered > 0, "no valid check was answered");

    // Leaving forgets them all.
    sfu.leave(now, id).unwrap();
    assert_eq!(sfu.stats().routed_addresses, 0);
}
