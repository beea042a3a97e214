//! What the codecs cost at 720p30 (and Opus at 20 ms): CPU time per frame
//! to encode and to decode, the reference for the media pipeline's own cost
//! (issue 15's goal: the pipeline outside the codec at most 5% of this).
//!
//! CPU time is summed over the process's threads from
//! `/proc/self/task/*/schedstat` (nanoseconds on a CPU), so time spent
//! waiting for a CPU on a shared machine does not count; that wait is
//! printed too. Median of 3 rounds of 150 frames (5 s of video) each, the
//! test pattern at 1280x720 and 2.5 Mbit/s.
//!
//! `cargo bench -p realtimer-codecs --bench codec_cost`
#![allow(clippy::disallowed_methods, clippy::print_stdout)] // a benchmark reads the clock and prints its figures

use std::fs;
use std::hint::black_box;

use realtimer_codecs::opus::{OpusDecoder, OpusEncoder, OpusEncoderConfig};
use realtimer_codecs::source::{TestPattern, Tone};
use realtimer_codecs::{video_decoder, video_encoder, I420Frame, VideoCodec, VideoEncoderConfig};

const ROUNDS: usize = 3;
const FRAMES: usize = 150;
const AUDIO_PACKETS: usize = 1_500;

/// Nanoseconds this process's threads have run and waited to run.
fn cpu_and_wait_ns() -> (u64, u64) {
    let mut total = (0, 0);
    for task in fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(stat) = fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let mut fields = stat
            .split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0));
        total.0 += fields.next().unwrap_or(0);
        total.1 += fields.next().unwrap_or(0);
    }
    total
}

/// Runs `work` and returns its CPU and wait time in nanoseconds. Threads a
/// codec starts and ends inside count only while they live; libvpx and
/// OpenH264 keep theirs for the encoder's life.
fn measure(work: impl FnOnce()) -> (u64, u64) {
    let (cpu0, wait0) = cpu_and_wait_ns();
    work();
    let (cpu1, wait1) = cpu_and_wait_ns();
    (cpu1.saturating_sub(cpu0), wait1.saturating_sub(wait0))
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let config = VideoEncoderConfig {
        bitrate_bps: 2_500_000,
        ..VideoEncoderConfig::new(1280, 720)
    };
    let mut pattern = TestPattern::new(1280, 720);
    let frames: Vec<I420Frame> = (0..FRAMES).map(|_| pattern.next_frame()).collect();
    println!("codec   encode ms/frame  decode ms/frame  kbit/s  CPU waited (shared machine)");
    for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
        let (mut enc, mut dec, mut waited, mut bytes) = (vec![], vec![], 0, 0);
        for _ in 0..ROUNDS {
            let mut encoder = video_encoder(codec, &config).expect("encoder");
            let mut encoded = Vec::with_capacity(FRAMES);
            let (cpu, wait) = measure(|| {
                for (i, frame) in frames.iter().enumerate() {
                    let out = encoder.encode(frame, i as u64 * 3_000).expect("encode");
                    encoded.push(out.map(|f| f.data).unwrap_or_default());
                }
            });
            enc.push(cpu / FRAMES as u64);
            waited += wait;
            bytes = encoded.iter().map(Vec::len).sum::<usize>();
            let mut decoder = video_decoder(codec).expect("decoder");
            let (cpu, wait) = measure(|| {
                for frame in encoded.iter().filter(|f| !f.is_empty()) {
                    black_box(decoder.decode(frame).expect("decode"));
                }
            });
            dec.push(cpu / FRAMES as u64);
            waited += wait;
        }
        println!(
            "{:<7} {:>15.2}  {:>15.2}  {:>6}  {:.1} s",
            format!("{codec:?}"),
            median(enc) as f64 / 1e6,
            median(dec) as f64 / 1e6,
            bytes * 8 * 30 / FRAMES / 1_000,
            waited as f64 / 1e9,
        );
    }

    let opus = OpusEncoderConfig {
        channels: 1,
        bitrate_bps: 32_000,
        frame_ms: 20,
        inband_fec: true,
        expected_loss_percent: 10,
        dtx: false,
    };
    let (mut enc, mut dec, mut waited) = (vec![], vec![], 0);
    for _ in 0..ROUNDS {
        let mut encoder = OpusEncoder::new(&opus).expect("encoder");
        let mut tone = Tone::new(440.0, 48_000, 1);
        let mut pcm = vec![0i16; encoder.frame_samples()];
        let input: Vec<Vec<i16>> = (0..AUDIO_PACKETS)
            .map(|_| {
                tone.fill(&mut pcm);
                pcm.clone()
            })
            .collect();
        let mut packets = Vec::with_capacity(AUDIO_PACKETS);
        let (cpu, wait) = measure(|| {
            for pcm in &input {
                packets.push(encoder.encode(pcm).expect("encode"));
            }
        });
        enc.push(cpu / AUDIO_PACKETS as u64);
        waited += wait;
        let mut decoder = OpusDecoder::new(1).expect("decoder");
        let mut out = Vec::with_capacity(960);
        let (cpu, wait) = measure(|| {
            for p in &packets {
                out.clear();
                decoder.decode(p, &mut out).expect("decode");
            }
        });
        dec.push(cpu / AUDIO_PACKETS as u64);
        waited += wait;
    }
    println!(
        "Opus 20 ms mono 32 kbit/s: encode {:.3} ms/packet, decode {:.3} ms/packet, CPU waited {:.1} s",
        median(enc) as f64 / 1e6,
        median(dec) as f64 / 1e6,
        waited as f64 / 1e9,
    );
}
