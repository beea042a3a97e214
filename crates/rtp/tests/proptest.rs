//! Property tests: what the writers produce parses back to the same values,
//! and arbitrary bytes never panic the parsers.

use proptest::prelude::*;
use realtimer_rtp::payload::h264::{nal_units, H264Depacketizer, H264Packetizer};
use realtimer_rtp::payload::vp8::{Vp8Depacketizer, Vp8Packetizer};
use realtimer_rtp::payload::{Depacketizer, FrameAssembler};
use realtimer_rtp::rtcp::{
    CompoundPacket, CongestionControlFeedback, Nack, PacketArrival, PacketMetric, ReceiverReport,
    ReportBlock, RtcpPacket, StreamReport, TransportFeedback,
};
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

fn arrival() -> impl Strategy<Value = PacketArrival> {
    prop_oneof![
        Just(PacketArrival::NotReceived),
        (0i16..=255).prop_map(|delta| PacketArrival::Received { delta }),
        any::<i16>().prop_map(|delta| PacketArrival::Received { delta }),
    ]
}

fn metric() -> impl Strategy<Value = Option<PacketMetric>> {
    proptest::option::of(
        (0u8..4, 0u16..0x2000).prop_map(|(ecn, arrival_time_offset)| PacketMetric {
            ecn,
            arrival_time_offset,
        }),
    )
}

proptest! {
    /// What we write, we and webrtc-rs's parser (after pion/rtcp) read
    /// back the same: statuses, and deltas in µs.
    #[test]
    fn transport_feedback_round_trip(
        base_sequence in any::<u16>(),
        reference_time in 0u32..0x100_0000,
        feedback_count in any::<u8>(),
        packets in proptest::collection::vec(arrival(), 1..400),
    ) {
        use webrtc_util::marshal::Unmarshal;
        let f = TransportFeedback { sender_ssrc: 1, media_ssrc: 2, base_sequence, reference_time, feedback_count, packets };
        let mut out = Vec::new();
        f.write(&mut out).unwrap();
        let parsed: Vec<_> = CompoundPacket::new(&out).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(&parsed[..], &[RtcpPacket::TransportFeedback(f.clone())][..]);
        let theirs = rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc::unmarshal(&mut &out[..]).unwrap();
        prop_assert_eq!(theirs.base_sequence_number, base_sequence);
        prop_assert_eq!(usize::from(theirs.packet_status_count), f.packets.len());
        prop_assert_eq!(theirs.reference_time, reference_time);
        let ours: Vec<i64> = f.packets.iter().filter_map(|p| match p {
            PacketArrival::Received { delta } => Some(i64::from(*delta) * 250),
            PacketArrival::NotReceived => None,
        }).collect();
        let deltas: Vec<i64> = theirs.recv_deltas.iter().map(|d| d.delta).collect();
        prop_assert_eq!(deltas, ours);
    }

    #[test]
    fn congestion_control_feedback_round_trip(
        reports in proptest::collection::vec((any::<u32>(), any::<u16>(), proptest::collection::vec(metric(), 0..40)), 0..4),
        report_timestamp in any::<u32>(),
    ) {
        let f = CongestionControlFeedback {
            sender_ssrc: 5,
            reports: reports.into_iter().map(|(ssrc, begin_sequence, metrics)| StreamReport { ssrc, begin_sequence, metrics }).collect(),
            report_timestamp,
        };
        let mut out = Vec::new();
        f.write(&mut out).unwrap();
        let parsed: Vec<_> = CompoundPacket::new(&out).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(&parsed[..], &[RtcpPacket::CongestionControlFeedback(f)][..]);
    }

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
        let mut frame = Vec::new();
        let _ = Vp8Depacketizer.depacketize(&data, &mut frame);
        let _ = H264Depacketizer.depacketize(&data, &mut frame);
        let _ = nal_units(&data).count();
    }

    /// Frames split by the packetizers, sent in order, come back whole.
    #[test]
    fn payload_round_trip(
        frames in proptest::collection::vec(proptest::collection::vec(1u8..=255, 1..4000), 1..5),
        mtu in 20usize..1200,
    ) {
        let mut vp8 = FrameAssembler::new(Vp8Depacketizer, 1 << 20);
        let mut h264 = FrameAssembler::new(H264Depacketizer, 1 << 20);
        let mut packetizer = Vp8Packetizer::new(7);
        let (mut vp8_seq, mut h264_seq) = (65530u16, 0u16);
        for (i, frame) in frames.iter().enumerate() {
            let timestamp = 3000 * i as u32;
            let mut payloads = Vec::new();
            packetizer.packetize(frame, mtu, &mut payloads);
            prop_assert_eq!(send(&mut vp8, &payloads, &mut vp8_seq, timestamp), Some(frame.clone()));
            // As an Annex B access unit: one IDR NAL unit (no zero bytes).
            let access_unit: Vec<u8> = [0, 0, 0, 1, 0x65].into_iter().chain(frame.iter().copied()).collect();
            let mut payloads = Vec::new();
            H264Packetizer.packetize(&access_unit, mtu, &mut payloads);
            prop_assert_eq!(send(&mut h264, &payloads, &mut h264_seq, timestamp), Some(access_unit));
        }
    }
}

/// Sends `payloads` as one frame's packets; returns what the assembler made.
fn send<D: Depacketizer>(
    assembler: &mut FrameAssembler<D>,
    payloads: &[Vec<u8>],
    seq: &mut u16,
    timestamp: u32,
) -> Option<Vec<u8>> {
    let mut got = None;
    for (k, payload) in payloads.iter().enumerate() {
        let header = RtpHeader {
            sequence_number: *seq,
            timestamp,
            marker: k + 1 == payloads.len(),
            ..Default::default()
        };
        *seq = seq.wrapping_add(1);
        let mut packet = Vec::new();
        header.write_packet(payload, 0, &mut packet).unwrap();
        got = assembler
            .push(&RtpPacket::parse(&packet).unwrap())
            .map(|f| f.data);
    }
    got
}
