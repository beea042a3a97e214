//! RTP and RTCP parsing and writing against webrtc-rs's `rtp` and `rtcp`
//! crates in the same run: nanoseconds per packet (median of 5 rounds,
//! ours and theirs alternating) and the ratio theirs / ours.
//!
//! `cargo bench -p realtimer-rtp`
#![allow(clippy::disallowed_methods, clippy::print_stdout)] // a benchmark reads the clock and prints its figures

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use realtimer_rtp::rtcp::{CompoundPacket, Nack, ReceiverReport, ReportBlock, RtcpPacket};
use realtimer_rtp::{Extension, RtpHeader, RtpPacket};
use webrtc_util::marshal::{Marshal, Unmarshal};

const ROUNDS: usize = 5;
const ITERATIONS: u32 = 200_000;

/// A Chromium video packet: 3 one-byte extensions, 1,200 bytes of payload.
fn video_header() -> RtpHeader {
    RtpHeader {
        marker: true,
        payload_type: 96,
        sequence_number: 4321,
        timestamp: 90_000,
        ssrc: 0x1234_5678,
        csrcs: vec![],
        extensions: vec![
            Extension {
                id: 2,
                data: vec![1, 2, 3],
            },
            Extension {
                id: 3,
                data: vec![0, 5],
            },
            Extension {
                id: 4,
                data: b"0".to_vec(),
            },
        ],
    }
}

fn their_video_packet() -> rtp::packet::Packet {
    let h = video_header();
    rtp::packet::Packet {
        header: rtp::header::Header {
            version: 2,
            marker: h.marker,
            payload_type: h.payload_type,
            sequence_number: h.sequence_number,
            timestamp: h.timestamp,
            ssrc: h.ssrc,
            extension: true,
            extension_profile: 0xBEDE,
            extensions: h
                .extensions
                .iter()
                .map(|e| rtp::header::Extension {
                    id: e.id,
                    payload: Bytes::from(e.data.clone()),
                })
                .collect(),
            ..Default::default()
        },
        payload: Bytes::from(vec![7u8; 1200]),
    }
}

fn report_and_nack() -> [RtcpPacket<'static>; 2] {
    let block = ReportBlock {
        ssrc: 9,
        fraction_lost: 3,
        cumulative_lost: 40,
        extended_highest_sequence: 70_000,
        jitter: 30,
        last_sr: 5,
        delay_since_last_sr: 6,
    };
    [
        RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: 1,
            reports: vec![block, block],
        }),
        RtcpPacket::Nack(Nack::from_lost(1, 9, [100, 101, 105, 130, 131])),
    ]
}

fn their_report_and_nack() -> Vec<Box<dyn rtcp::packet::Packet + Send + Sync>> {
    let block = rtcp::reception_report::ReceptionReport {
        ssrc: 9,
        fraction_lost: 3,
        total_lost: 40,
        last_sequence_number: 70_000,
        jitter: 30,
        last_sender_report: 5,
        delay: 6,
    };
    vec![
        Box::new(rtcp::receiver_report::ReceiverReport { ssrc: 1, reports: vec![block.clone(), block], profile_extensions: Bytes::new() }),
        Box::new(rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 9,
            nacks: rtcp::transport_feedbacks::transport_layer_nack::nack_pairs_from_sequence_numbers(&[100, 101, 105, 130, 131]),
        }),
    ]
}

/// Median nanoseconds per call of `f` over ROUNDS rounds.
fn time(f: &mut dyn FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn compare(name: &str, ours: &mut dyn FnMut(), theirs: &mut dyn FnMut()) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        a.push(time(ours));
        b.push(time(theirs));
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (us, them) = (a[1], b[1]);
    println!("{name:<34} {us:>9.1} {them:>11.1} {:>7.2}", them / us);
}

fn main() {
    println!(
        "{:<34} {:>9} {:>11} {:>7}",
        "ns per packet", "ours", "webrtc-rs", "ratio"
    );

    let mut wire = Vec::new();
    video_header()
        .write_packet(&[7u8; 1200], 0, &mut wire)
        .unwrap();
    let wire_bytes = Bytes::from(wire.clone());
    compare(
        "RTP parse (3 extensions, 1200 B)",
        &mut || {
            let p = RtpPacket::parse(black_box(&wire)).unwrap();
            black_box((
                p.ssrc(),
                p.sequence_number(),
                p.extensions().and_then(|e| e.get(3)),
                p.payload().len(),
            ));
        },
        &mut || {
            let p = rtp::packet::Packet::unmarshal(&mut black_box(wire_bytes.clone())).unwrap();
            black_box((
                p.header.ssrc,
                p.header.sequence_number,
                p.header.get_extension(3),
                p.payload.len(),
            ));
        },
    );

    let header = video_header();
    let payload = vec![7u8; 1200];
    let mut out = Vec::with_capacity(1300);
    let theirs = their_video_packet();
    compare(
        "RTP write (3 extensions, 1200 B)",
        &mut || {
            out.clear();
            black_box(&header)
                .write_packet(black_box(&payload), 0, &mut out)
                .unwrap();
            black_box(out.len());
        },
        &mut || {
            black_box(black_box(&theirs).marshal().unwrap());
        },
    );

    let mut compound = Vec::new();
    for p in report_and_nack() {
        p.write(&mut compound).unwrap();
    }
    let compound_bytes = Bytes::from(compound.clone());
    compare(
        "RTCP parse (RR 2 blocks + NACK)",
        &mut || {
            for p in CompoundPacket::new(black_box(&compound)) {
                black_box(p.unwrap());
            }
        },
        &mut || {
            black_box(rtcp::packet::unmarshal(&mut black_box(compound_bytes.clone())).unwrap());
        },
    );

    let packets = report_and_nack();
    let theirs = their_report_and_nack();
    compare(
        "RTCP write (RR 2 blocks + NACK)",
        &mut || {
            out.clear();
            for p in black_box(&packets) {
                p.write(&mut out).unwrap();
            }
            black_box(out.len());
        },
        &mut || {
            black_box(rtcp::packet::marshal(black_box(&theirs)).unwrap());
        },
    );
}
