//! Property tests: what the writers produce parses back to the same values,
//! and arbitrary bytes never panic the parsers.

use proptest::prelude::*;
use realtimer_rtp::rtcp::{CompoundPacket, Nack, ReceiverReport, ReportBlock, RtcpPacket};
use realtimer_rtp::{header_len, Extension, RtpHeader, RtpPacket};

fn extension() -> impl Strategy<Value = Extension> {
    (1u8..=255, proptest::collection::vec(any::<u8>(), 0..40))
        .prop_map(|(id, data)| Extension { id, data })
}

fn header() -> impl Strategy<Value = RtpHeader> {
    (
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u32>(), 0..=15),
        proptest::collection::vec(extension(), 0..5),
    )
        .prop_map(
            |(marker, payload_type, sequence_number, timestamp, ssrc, csrcs, extensions)| {
                RtpHeader {
                    marker,
                    payload_type,
                    sequence_number,
                    timestamp,
                    ssrc,
                    csrcs,
                    extensions,
                }
            },
        )
}

proptest! {
    #[test]
    fn rtp_round_trip(h in header(), payload in proptest::collection::vec(any::<u8>(), 0..64), padding in any::<u8>()) {
        let mut out = Vec::new();
        h.write_packet(&payload, padding, &mut out).unwrap();
        let p = RtpPacket::parse(&out).unwrap();
        prop_assert_eq!(p.to_header(), h);
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert_eq!(p.padding_len(), padding);
        prop_assert_eq!(header_len(&out).unwrap(), p.header_len());
    }

    #[test]
    fn rtcp_round_trip(
        ssrc in any::<u32>(),
        blocks in proptest::collection::vec((any::<u32>(), any::<u8>(), -0x80_0000i32..0x80_0000, any::<u32>()), 0..=31),
        lost in proptest::collection::vec(any::<u16>(), 0..50),
    ) {
        let reports = blocks
            .into_iter()
            .map(|(ssrc, fraction_lost, cumulative_lost, jitter)| ReportBlock { ssrc, fraction_lost, cumulative_lost, jitter, ..Default::default() })
            .collect();
        let nack = Nack::from_lost(ssrc, 1, lost.iter().copied());
        let packets = [RtcpPacket::ReceiverReport(ReceiverReport { ssrc, reports }), RtcpPacket::Nack(nack)];
        let mut out = Vec::new();
        for p in &packets {
            p.write(&mut out).unwrap();
        }
        let parsed: Vec<_> = CompoundPacket::new(&out).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(&parsed[..], &packets[..]);
        // Every lost sequence number is named again.
        let RtcpPacket::Nack(nack) = &parsed[1] else { unreachable!() };
        let named: std::collections::HashSet<u16> = nack.lost().collect();
        prop_assert!(lost.iter().all(|s| named.contains(s)));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = RtpPacket::parse(&data) {
            let _ = p.to_header();
            let _ = p.extensions().map(|e| e.iter().count());
        }
        for p in CompoundPacket::new(&data).flatten() {
            p.write(&mut Vec::new()).unwrap();
        }
    }
}
