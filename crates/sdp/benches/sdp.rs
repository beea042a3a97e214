//! Parse and serialize real Chromium offers with realtimer-sdp and with
//! webrtc-rs's `sdp` crate, in the same run.
//!
//! `cargo bench -p realtimer-sdp --bench sdp -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::io::Cursor;

use criterion::{criterion_main, Criterion, Throughput};
use realtimer_sdp::{Candidate, SessionDescription};

const FIXTURES: [(&str, &str); 2] = [
    (
        "chromium_offer_av_data",
        include_str!("../tests/fixtures/chromium/offer-audio-video-data.sdp"),
    ),
    (
        "chromium_offer_av_data_gathered",
        include_str!("../tests/fixtures/chromium/offer-audio-video-data-gathered.sdp"),
    ),
];

fn bench_sdp(c: &mut Criterion) {
    for (name, text) in FIXTURES {
        let ours = SessionDescription::parse(text).expect("realtimer-sdp parses the fixture");
        let theirs = sdp::SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
            .expect("webrtc-rs sdp parses the fixture");

        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function("parse/realtimer", |b| {
            b.iter(|| SessionDescription::parse(black_box(text)))
        });
        g.bench_function("parse/webrtc-rs", |b| {
            b.iter(|| {
                sdp::SessionDescription::unmarshal(&mut Cursor::new(black_box(text).as_bytes()))
            })
        });
        g.bench_function("serialize/realtimer", |b| {
            b.iter(|| black_box(&ours).to_sdp_string())
        });
        let mut buf = String::with_capacity(16 * 1024);
        g.bench_function("serialize_into/realtimer", |b| {
            b.iter(|| {
                buf.clear();
                black_box(&ours)
                    .write_to(&mut buf)
                    .expect("write to String");
                buf.len()
            })
        });
        g.bench_function("serialize/webrtc-rs", |b| {
            b.iter(|| black_box(&theirs).marshal())
        });
        g.finish();
    }

    let line = "candidate:3373287030 1 udp 2122194687 127.0.0.1 35178 typ host generation 0 ufrag ULT3 network-id 3 network-cost 50";
    c.bench_function("candidate/parse/realtimer", |b| {
        b.iter(|| black_box(line).parse::<Candidate>())
    });
}

// The macro defines an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench_sdp);
}
criterion_main!(group::benches);
