//! The media pipeline's CPU beside the codec's, at 720p30 (issue 15: the
//! CPU a frame costs outside encode and decode at most 5% of the codec's
//! own). 300 frames of the test pattern at 1280x720:
//!
//! - codec: VP8 encode at 2.5 Mbit/s (realtime, as `write_video_frame`
//!   sets it up) and decode of the same frames, in this thread, unpaced;
//! - pipeline: those encoded frames through a loopback pair at 30 fps,
//!   `write_sample` to `read_sample` (packetization, SRTP, UDP, the
//!   estimator and pacer, the frame buffer, both drivers), this process'
//!   CPU for the run;
//! - idle: the same pair connected for as long, sending nothing (what of
//!   the pipeline's CPU is its timers);
//! - whole: raw frames in, `write_video_frame` to `read_video_frame`, at
//!   30 fps: codec and pipeline together, a check on the two above.
//!
//! Prints CPU ms a frame of each (to the ns: the process CPU clock), the
//! pipeline's wakeups a frame (voluntary context switches), the
//! pipeline's over the codec's, and
//! the CPU wait and load average (the machine may be shared).
//! `cargo bench -p realtimer --bench pipeline`.
// A benchmark measures wall-clock time and reports on stdout.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::time::{Duration, Instant};

use realtimer::codecs::source::TestPattern;
use realtimer::codecs::{video_decoder, video_encoder, I420Frame, VideoCodec, VideoEncoderConfig};
use realtimer::{MediaKind, Sample};
use realtimer_test_support::cpu::{
    context_switches, cpu_wait_seconds, load_average, process_cpu_seconds,
};
use realtimer_test_support::pair::{config, connect_track};

const FRAMES: usize = 300;
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const BITRATE: u32 = 2_500_000;
const FRAME: Duration = Duration::from_nanos(33_333_333);

/// What `f`'s run cost this process.
struct Cost {
    cpu: f64,
    /// Seconds its threads waited for a CPU.
    wait: f64,
    /// Context switches of its threads.
    switches: u64,
}

/// `f`'s output and what its run cost this process.
async fn measured<T>(f: impl std::future::Future<Output = T>) -> (T, Cost) {
    let (cpu0, wait0, switches0) = (
        process_cpu_seconds(),
        cpu_wait_seconds(),
        context_switches(),
    );
    let out = f.await;
    let cost = Cost {
        cpu: process_cpu_seconds() - cpu0,
        wait: cpu_wait_seconds() - wait0,
        switches: context_switches().saturating_sub(switches0),
    };
    (out, cost)
}

/// The codec alone: encodes `frames`, decodes what came out; the encoded
/// frames, and the CPU seconds of encoding and of decoding.
fn codec_alone(frames: &[I420Frame]) -> (Vec<(Vec<u8>, bool)>, f64, f64) {
    let mut config = VideoEncoderConfig::new(WIDTH, HEIGHT);
    config.bitrate_bps = BITRATE;
    let mut encoder = video_encoder(VideoCodec::Vp8, &config).unwrap();
    let cpu0 = process_cpu_seconds();
    let encoded: Vec<(Vec<u8>, bool)> = frames
        .iter()
        .enumerate()
        .filter_map(|(i, f)| encoder.encode(f, i as u64 * 3000).unwrap())
        .map(|e| (e.data, e.keyframe))
        .collect();
    let encode = process_cpu_seconds() - cpu0;
    let mut decoder = video_decoder(VideoCodec::Vp8).unwrap();
    let cpu0 = process_cpu_seconds();
    for (data, _) in &encoded {
        decoder.decode(data).unwrap();
    }
    (encoded, encode, process_cpu_seconds() - cpu0)
}

/// `write_sample` of `encoded` at 30 fps to `read_sample` on a loopback
/// pair; the frames read.
async fn pipeline(encoded: &[(Vec<u8>, bool)]) -> usize {
    let (a, b, local, remote) = connect_track(config(None), MediaKind::Video).await;
    let reader = tokio::spawn(async move {
        let mut read = 0;
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_secs(2), remote.read_sample()).await
        {
            read += 1;
        }
        read
    });
    let mut clock = tokio::time::interval(FRAME);
    for (data, _) in encoded {
        clock.tick().await;
        local
            .write_sample(Sample::new(data.clone(), FRAME))
            .await
            .unwrap();
    }
    let read = reader.await.unwrap();
    a.close().await;
    b.close().await;
    read
}

/// A connected pair with a video track that sends nothing for as long as
/// the pipeline run takes: the timers' share (ICE consent, RTCP, the
/// pacer) of what the pipeline costs a frame.
async fn idle() {
    let (a, b, _local, _remote) = connect_track(config(None), MediaKind::Video).await;
    tokio::time::sleep(FRAME * FRAMES as u32).await;
    a.close().await;
    b.close().await;
}

/// Raw frames through `write_video_frame` at 30 fps to
/// `read_video_frame`; the pictures decoded.
async fn whole(frames: &[I420Frame]) -> usize {
    let (a, b, local, remote) = connect_track(config(None), MediaKind::Video).await;
    let reader = tokio::spawn(async move {
        let mut read = 0;
        while let Ok(Ok(Some(_))) =
            tokio::time::timeout(Duration::from_secs(2), remote.read_video_frame()).await
        {
            read += 1;
        }
        read
    });
    let mut clock = tokio::time::interval(FRAME);
    for frame in frames {
        clock.tick().await;
        local.write_video_frame(frame, FRAME).await.unwrap();
    }
    let read = reader.await.unwrap();
    a.close().await;
    b.close().await;
    read
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut pattern = TestPattern::new(WIDTH, HEIGHT);
    let frames: Vec<I420Frame> = (0..FRAMES).map(|_| pattern.next_frame()).collect();
    let load0 = load_average();
    let wait0 = cpu_wait_seconds();
    let t0 = Instant::now();
    let (encoded, encode, decode) = codec_alone(&frames);
    let codec_wait = cpu_wait_seconds() - wait0;
    let bytes: usize = encoded.iter().map(|(d, _)| d.len()).sum();
    let (read, pipe) = rt.block_on(measured(pipeline(&encoded)));
    let (pictures, whole) = rt.block_on(measured(whole(&frames)));
    let ((), idle) = rt.block_on(measured(idle()));
    let n = encoded.len() as f64;
    let ms = |s: f64| s * 1e3 / n;
    let codec = encode + decode;
    println!(
        "{FRAMES} frames {WIDTH}x{HEIGHT} VP8 at {} kbit/s ({} encoded, {:.0} kbit/s out), {:.0} s in all",
        BITRATE / 1000,
        encoded.len(),
        bytes as f64 * 8.0 / (n / 30.0) / 1e3,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "  codec alone: encode {:.2} + decode {:.2} = {:.2} CPU ms a frame (waited {codec_wait:.2} s for a CPU)",
        ms(encode),
        ms(decode),
        ms(codec)
    );
    println!(
        "  pipeline (write_sample -> read_sample, 30 fps, {read} frames read): {:.3} CPU ms a frame, {:.1} wakeups (voluntary context switches) a frame (waited {:.2} s)",
        ms(pipe.cpu),
        pipe.switches as f64 / n,
        pipe.wait
    );
    println!(
        "  pipeline / codec: {:.1}%; of the pipeline, {:.3} ms a frame is a connected pair idling as long (timers, {:.1} wakeups a frame), {:.1}% of the codec",
        100.0 * pipe.cpu / codec.max(1e-9),
        ms(idle.cpu),
        idle.switches as f64 / n,
        100.0 * idle.cpu / codec.max(1e-9)
    );
    println!(
        "  whole (write_video_frame -> read_video_frame, {pictures} pictures): {:.2} CPU ms a frame (waited {:.2} s); codec + pipeline {:.2}",
        ms(whole.cpu),
        whole.wait,
        ms(codec + pipe.cpu)
    );
    println!("  load average before {load0}, after {}", load_average());
}
