//! Zero checksum (RFC 9653) with peers that cannot parse its parameter, on
//! the simulated network: the peer below drops every packet whose INIT or
//! INIT ACK carries Zero Checksum Acceptable, as Pion v3.1.56 does. Such a
//! peer must connect in every role, and a peer that parses it must keep
//! zero checksums and connect within a round trip, as before.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use realtimer_netsim::LinkConfig;
use realtimer_sctp::{Packet, SctpConfig};

/// 10 ms on a's uplink, 1 ms on b's: an 11 ms one-way trip, 22 ms RTT.
fn link() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(10))
}

/// Whether the packet's checksum field is zero (RFC 9653 §5.3).
fn zero_checksum(packet: &Bytes) -> bool {
    packet[8..12] == [0; 4]
}

/// Ours (a, zero checksum on) against `b`: `legacy` drops offers of zero
/// checksum; b's own `zero_checksum` setting. Returns the pair once both
/// are up, with what each sent recorded, and the time each took.
fn connect(legacy: bool, b_zero_checksum: bool, connect: [bool; 2]) -> (Pair, [Duration; 2]) {
    let configs = [
        SctpConfig::default(),
        SctpConfig {
            zero_checksum: b_zero_checksum,
            ..SctpConfig::default()
        },
    ];
    let mut p = Pair::with_configs(5, link(), configs, connect);
    let (a, b) = (p.a, p.b);
    p.node_mut(b).drops_zero_checksum_offers = legacy;
    for id in [a, b] {
        p.node_mut(id).sent = Some(Vec::new());
    }
    assert!(
        p.run_until(Duration::from_secs(5), |a, b| a.connected()
            && b.connected()),
        "legacy {legacy}, connect {connect:?}: never connected"
    );
    // Some data both ways, so the checksums of data and SACKs show.
    let messages: Vec<Bytes> = (0..20).map(|i| message(i, 1000)).collect();
    let sent = p.send_from_a(&messages, 1, false, realtimer_sctp::Reliability::Reliable);
    assert_eq!(sent, messages.len());
    assert!(p.run_until(Duration::from_secs(5), |_, b| b.messages.len() == 20));
    assert_eq!(p.node(b).payloads(), messages);
    let took = [a, b].map(|id| {
        p.node(id)
            .connected_at()
            .expect("connected")
            .duration_since(p.start)
    });
    (p, took)
}

fn sent(p: &Pair, id: realtimer_netsim::NodeId) -> &[Bytes] {
    p.node(id).sent.as_deref().unwrap_or_default()
}

#[test]
fn a_peer_that_drops_the_offer_and_sends_its_own_init_connects_within_a_round_trip() {
    // Pion's way: it always sends INIT, whatever its role. Our INIT ACK to
    // it carries no offer, so it never waits for our T1.
    for connect_ours in [true, false] {
        let (p, took) = connect(true, false, [connect_ours, true]);
        for t in took {
            assert!(
                t < Duration::from_millis(100),
                "ours connects: {connect_ours}; took {t:?}"
            );
        }
        for id in [p.a, p.b] {
            for packet in sent(&p, id) {
                assert!(
                    !zero_checksum(packet),
                    "no zero checksum with a legacy peer"
                );
                assert!(Packet::parse(packet).is_ok(), "a CRC32c that checks");
            }
        }
        let acks_with_offer = sent(&p, p.a)
            .iter()
            .filter(|packet| packet[12] == 2 && offers_zero_checksum(packet))
            .count();
        assert_eq!(
            acks_with_offer, 0,
            "our INIT ACK offers nothing it was not offered"
        );
    }
}

#[test]
fn a_listening_peer_that_drops_the_offer_gets_a_plain_init_after_one_t1() {
    let (p, took) = connect(true, false, [true, false]);
    let rto_initial = SctpConfig::default().rto_initial;
    for t in took {
        assert!(
            t > rto_initial && t < rto_initial + Duration::from_millis(100),
            "one T1 and a round trip, took {t:?}"
        );
    }
    let inits: Vec<&Bytes> = sent(&p, p.a).iter().filter(|pk| pk[12] == 1).collect();
    assert_eq!(
        inits.len(),
        2,
        "the first INIT and one plain retransmission"
    );
    assert!(offers_zero_checksum(inits[0]));
    assert!(!offers_zero_checksum(inits[1]));
    for id in [p.a, p.b] {
        assert!(sent(&p, id).iter().all(|packet| !zero_checksum(packet)));
    }
}

#[test]
fn a_peer_that_parses_the_offer_keeps_zero_checksums_and_a_one_round_trip_setup() {
    // Ours on both ends, as any stack that advertises it (libwebrtc's dcsctp).
    for connect_both in [[true, false], [false, true], [true, true]] {
        let (p, took) = connect(false, true, connect_both);
        for t in took {
            assert!(
                t < Duration::from_millis(100),
                "{connect_both:?}: took {t:?}"
            );
        }
        for id in [p.a, p.b] {
            let packets = sent(&p, id);
            let inits = packets.iter().filter(|pk| pk[12] == 1).count();
            assert!(inits <= 1, "no INIT retransmission");
            let zeroed = packets.iter().filter(|pk| zero_checksum(pk)).count();
            assert!(
                zeroed >= 5,
                "{connect_both:?}: only {zeroed} zero checksums"
            );
        }
    }
}

#[test]
fn a_plain_peer_that_parses_the_offer_gets_crc32c_only() {
    // A peer that parses the parameter but does not offer it (zero
    // checksum off): our offer in INIT is harmless, our INIT ACK to it
    // offers nothing, and nobody sends zero checksums.
    for connect_both in [[true, false], [false, true], [true, true]] {
        let (p, took) = connect(false, false, connect_both);
        for t in took {
            assert!(
                t < Duration::from_millis(100),
                "{connect_both:?}: took {t:?}"
            );
        }
        for id in [p.a, p.b] {
            assert!(sent(&p, id).iter().all(|packet| !zero_checksum(packet)));
        }
    }
}
