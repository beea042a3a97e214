//! RFC 9653 zero checksum: negotiated in INIT / INIT ACK (or carried in the
//! cookie), used only when both sides accept it, never on INIT.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_sctp::{Association, Packet, Reliability, SctpConfig, SctpEvent};

/// The checksum field of a packet (RFC 9260 §3.1, little-endian CRC32c).
fn checksum_field(packet: &[u8]) -> u32 {
    u32::from_le_bytes([packet[8], packet[9], packet[10], packet[11]])
}

/// Two associations joined directly; returns them and every packet each
/// sent (index 0: a's), after connecting and moving `messages` from a to b.
fn run(
    zero: [bool; 2],
    connect: [bool; 2],
    messages: usize,
) -> ([Association; 2], [Vec<Bytes>; 2]) {
    let now = Instant::now();
    let mut sides = [0, 1].map(|i| {
        Association::new(
            SctpConfig {
                seed: 7 + i as u64,
                zero_checksum: zero[i],
                ..SctpConfig::default()
            },
            now,
        )
    });
    for i in 0..2 {
        if connect[i] {
            sides[i].connect(now);
        }
    }
    let mut sent: [Vec<Bytes>; 2] = [Vec::new(), Vec::new()];
    let mut queued = false;
    let mut received = 0;
    for _ in 0..10_000 {
        let mut moved = false;
        for from in 0..2 {
            while let Some(p) = sides[from].poll_transmit() {
                sent[from].push(p.clone());
                sides[1 - from].handle_packet(now, &p);
                moved = true;
            }
        }
        while let Some(e) = sides[1].poll_event() {
            received += usize::from(matches!(e, SctpEvent::Message(_)));
        }
        if !queued
            && sides
                .iter()
                .all(|s| s.state() == realtimer_sctp::AssociationState::Established)
        {
            for i in 0..messages {
                let payload = Bytes::from(vec![i as u8; 3000]);
                sides[0]
                    .send(now, 1, 53, payload, false, Reliability::Reliable)
                    .unwrap();
            }
            queued = true;
            moved = true;
        }
        if !moved {
            if queued && received == messages {
                break;
            }
            let later = now + Duration::from_millis(300);
            sides[0].handle_timeout(later);
            sides[1].handle_timeout(later);
        }
    }
    assert_eq!(received, messages, "zero {zero:?} connect {connect:?}");
    (sides, sent)
}

#[test]
fn zero_checksums_flow_only_when_both_sides_accept_them() {
    for connect in [[true, false], [false, true], [true, true]] {
        for zero in [[true, true], [true, false], [false, true], [false, false]] {
            let (_, sent) = run(zero, connect, 20);
            let both = zero[0] && zero[1];
            for (side, packets) in sent.iter().enumerate() {
                let zeroed = packets.iter().filter(|p| checksum_field(p) == 0).count();
                for p in packets {
                    let is_init = p[12] == 1;
                    if is_init || !both {
                        assert!(
                            Packet::parse(p).is_ok(),
                            "a CRC32c that checks ({zero:?} {connect:?} side {side})"
                        );
                    }
                }
                if both {
                    // Everything after the handshake: at least the DATA (a) or SACKs (b).
                    assert!(
                        zeroed >= 10,
                        "side {side} sent {zeroed} zero-checksum packets ({connect:?})"
                    );
                } else {
                    assert_eq!(zeroed, 0, "{zero:?} {connect:?} side {side}");
                }
            }
        }
    }
}

#[test]
fn a_zero_checksum_is_refused_unless_accepted_and_never_on_init() {
    let (_, sent) = run([true, true], [true, false], 1);
    let init = &sent[0][0];
    assert_eq!(init[12], 1, "the first packet is INIT");
    let data = sent[0]
        .iter()
        .rev()
        .find(|p| checksum_field(p) == 0)
        .unwrap();
    assert!(
        Packet::parse(data).is_err(),
        "strict parsing wants the CRC32c"
    );
    assert!(Packet::parse_accepting_zero_checksum(data).is_ok());
    let mut zeroed_init = init.to_vec();
    zeroed_init[8..12].fill(0);
    let zeroed_init = Bytes::from(zeroed_init);
    assert!(Packet::parse_accepting_zero_checksum(&zeroed_init).is_err());
    // A non-zero wrong checksum is refused either way.
    let mut bad = data.to_vec();
    bad[8] = 1;
    assert!(Packet::parse_accepting_zero_checksum(&Bytes::from(bad)).is_err());
}
