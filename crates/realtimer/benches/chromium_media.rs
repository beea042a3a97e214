//! Media against headless Chromium, measured in the same run
//! (tests/browser/media-bench.html):
//!
//! - Glass to glass: our test pattern (VP8, 320x240, 29.5 fps) stamped with
//!   the wall clock when each frame is drawn, sent to the page, its counter
//!   read at display (`requestVideoFrameCallback`'s expected display time);
//!   against the same pattern drawn, stamped and sent from Chromium to
//!   Chromium inside the page at the same time. The page's clock is mapped
//!   on ours by the ping with the least round trip. Prints p50/p95 of each
//!   and the ratio.
//! - Audio jitter buffer: our tone (Opus) sent to the page and to one of
//!   our PeerConnections through two relays that impair RTP alike (5% loss,
//!   0..=50 ms uniform FIFO jitter, one seed: the n-th packet of each has
//!   the same fate). Prints each receiver's mean added delay
//!   (`jitterBufferDelay / jitterBufferEmittedCount`), target, concealed
//!   share and concealment events a minute; then again with RED (RFC 2198)
//!   sent to both.
//!
//! The run's load average and CPU wait of this process are printed: the
//! machine may be shared. `cargo bench -p realtimer --bench chromium_media`
//! (`-- g2g` or `-- jitter` for one of them).
// A benchmark measures wall-clock time and reports on stdout.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use realtimer::codecs::source::TestPattern;
use realtimer::{
    AudioJitterStats, Codec, MediaError, MediaKind, PeerConnection, PeerConnectionEvent,
    TrackLocal, TrackRemote,
};
use realtimer_test_support::cpu::{cpu_wait_seconds, load_average};
use realtimer_test_support::impaired_relay::{self, ImpairedRelay, Impairment};
use realtimer_test_support::pair::{config, negotiate};
use serde_json::{json, Value};
use tokio::sync::mpsc;

#[allow(dead_code)]
#[path = "../tests/chromium_page/mod.rs"]
mod chromium_page;
#[allow(dead_code)]
#[path = "../tests/page_server/mod.rs"]
mod page_server;

use chromium_page::{
    audio_to_page, codecs_with_red, connect, have_chromium, message, node_output, open_page,
    spawn_tone, AudioToPage, Connected,
};

const PAGE: &str = include_str!("../../../tests/browser/media-bench.html");
/// Frames measured on each path, after the first `SKIP` shown.
const FRAMES: usize = 300;
const SKIP: usize = 60;
/// Seconds of audio each receiver plays.
const AUDIO_SECONDS: u64 = 40;
const IMPAIRMENT: Impairment = Impairment {
    loss: 0.05,
    burst: 1,
    jitter: Duration::from_millis(50),
    seed: 15,
};

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1e3
}

/// The `p`-th percentile (0..=100) of `sorted`.
fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Our clock minus the page's, in ms, from the ping with the least round
/// trip (its midpoint is when the page read its clock, to half of it).
async fn clock_offset(
    to_page: &mpsc::UnboundedSender<Value>,
    messages: &mut mpsc::UnboundedReceiver<Value>,
) -> (f64, f64) {
    let mut best = (f64::INFINITY, 0.0);
    for _ in 0..30 {
        let t0 = epoch_ms();
        to_page.send(json!({"type": "ping", "t": t0})).unwrap();
        let pong = message(messages, "pong").await;
        let t1 = epoch_ms();
        let page = pong["page"].as_f64().unwrap();
        if t1 - t0 < best.0 {
            best = (t1 - t0, (t0 + t1) / 2.0 - page);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (best.1, best.0)
}

async fn glass_to_glass() {
    if !have_chromium("glass to glass") {
        return;
    }
    let page = open_page(PAGE, &format!("case=g2g&frames={FRAMES}&skip={SKIP}")).await;
    let mut connected = connect(page, None, None).await;
    let video = TrackLocal::new(MediaKind::Video, "rust", "pattern");
    connected.offer_tracks(&[&video]).await;
    let Connected {
        pc,
        mut messages,
        to_page,
        node,
        ..
    } = connected;
    let (offset, rtt) = clock_offset(&to_page, &mut messages).await;
    println!("clock: ours minus the page's {offset:.2} ms (ping round trip {rtt:.2} ms)");
    let drawn = Arc::new(Mutex::new(HashMap::<u32, f64>::new()));
    let stamps = drawn.clone();
    let pattern = tokio::spawn(async move {
        let mut pattern = TestPattern::new(320, 240);
        // 29.5 fps, as the page's own pattern: the frames' phase against
        // the display's 60 Hz sweeps, so no run keeps a lucky or unlucky one.
        let period = Duration::from_secs_f64(1.0 / 29.5);
        let mut clock = tokio::time::interval(period);
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            clock.tick().await;
            let counter = pattern.next_counter();
            let frame = pattern.next_frame();
            stamps.lock().unwrap().insert(counter, epoch_ms());
            match video.write_video_frame(&frame, period).await {
                Ok(()) | Err(MediaError::NotNegotiated) => {}
                Err(_) => break,
            }
        }
    });
    let (wait0, load0) = (cpu_wait_seconds(), load_average());
    let g2g = tokio::time::timeout(Duration::from_secs(120), message(&mut messages, "g2g"))
        .await
        .expect("the page's figures within 120 s");
    pattern.abort();
    let result = message(&mut messages, "result").await;
    node_output(node).await;
    assert_eq!(result["failed"], json!([]), "the page: {result}");
    let mut chromium: Vec<f64> = g2g["chromium"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let drawn = std::mem::take(&mut *drawn.lock().unwrap());
    let mut ours: Vec<f64> = g2g["rust"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let counter = p[0].as_u64()? as u32;
            let shown = p[1].as_f64()? + offset;
            Some(shown - drawn.get(&counter)?)
        })
        .collect();
    chromium.sort_by(f64::total_cmp);
    ours.sort_by(f64::total_cmp);
    assert!(!ours.is_empty() && !chromium.is_empty());
    println!(
        "glass to glass, {} frames each (320x240 VP8, 29.5 fps; display time from requestVideoFrameCallback):",
        ours.len().min(chromium.len())
    );
    let (o50, o95) = (percentile(&ours, 50), percentile(&ours, 95));
    let (c50, c95) = (percentile(&chromium, 50), percentile(&chromium, 95));
    println!("  realtimer -> Chromium: p50 {o50:.1} ms, p95 {o95:.1} ms");
    println!("  Chromium -> Chromium:  p50 {c50:.1} ms, p95 {c95:.1} ms");
    println!(
        "  ratio realtimer / Chromium: p50 {:.2}, p95 {:.2}",
        o50 / c50,
        o95 / c95
    );
    println!(
        "  Chromium's receivers, ms a frame: from realtimer {}; from Chromium {}",
        g2g["stats"]["rust"], g2g["stats"]["chromium"]
    );
    println!(
        "  load average before {load0}, after {}; this process waited {:.2} s for a CPU",
        load_average(),
        cpu_wait_seconds() - wait0
    );
    pc.close().await;
}

/// Two of our PeerConnections, `a` sending `track` to `b` through an
/// impaired relay: `b` learns only the relay in front of `a`'s first UDP
/// candidate, `a` none of `b`'s. Returns the track `b` receives.
async fn impaired_pair(
    track: TrackLocal,
    codecs: Option<Vec<Codec>>,
    impairment: Impairment,
) -> (PeerConnection, PeerConnection, TrackRemote, ImpairedRelay) {
    let mut c = config(None);
    if let Some(codecs) = codecs {
        c.rtc.codecs = codecs;
    }
    let a = PeerConnection::new(c.clone()).await.unwrap();
    let b = PeerConnection::new(c).await.unwrap();
    a.add_track(track).await.unwrap();
    let (relay_tx, mut relay_rx) = mpsc::unbounded_channel();
    let (mut a_events, mut b_events) = (a.events().unwrap(), b.events().unwrap());
    let to = b.clone();
    tokio::spawn(async move {
        let mut started = false;
        while let Some(e) = a_events.recv().await {
            if let PeerConnectionEvent::IceCandidate(Some(mut c)) = e {
                let Some(ours) = impaired_relay::candidate_address(&c.candidate) else {
                    continue;
                };
                if started {
                    continue;
                }
                started = true;
                let relay = impaired_relay::start(ours, impairment).await;
                c.candidate = impaired_relay::candidate_via(&c.candidate, relay.address).unwrap();
                let _ = relay_tx.send(relay);
                let _ = to.add_ice_candidate(Some(c)).await;
            }
        }
    });
    let (track_tx, mut track_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(e) = b_events.recv().await {
            if let PeerConnectionEvent::Track(t) = e {
                let _ = track_tx.send(t);
            }
        }
    });
    negotiate(&a, &b).await;
    let remote = tokio::time::timeout(Duration::from_secs(30), track_rx.recv())
        .await
        .expect("the track within 30 s")
        .unwrap();
    let relay = relay_rx.recv().await.unwrap();
    (a, b, remote, relay)
}

/// A receiver's figures: mean added delay and target (ms), concealed
/// share of the samples played (%), concealment events a minute.
fn figures(
    delay: f64,
    target: f64,
    emitted: f64,
    concealed: f64,
    events: f64,
    seconds: f64,
) -> String {
    let total = emitted + concealed;
    format!(
        "delay {:.1} ms (target {:.1} ms), concealed {:.2}% of samples, {:.1} concealment events/min",
        delay / emitted.max(1.0) * 1e3,
        target / emitted.max(1.0) * 1e3,
        100.0 * concealed / total.max(1.0),
        events * 60.0 / seconds
    )
}

async fn jitter_buffers(red: bool) {
    if !have_chromium("jitter buffers") {
        return;
    }
    let codecs = red.then(codecs_with_red);
    let AudioToPage {
        pc,
        track: to_chromium,
        relay,
        page,
    } = audio_to_page(PAGE, codecs.clone(), IMPAIRMENT).await;
    let to_rust = TrackLocal::new(MediaKind::Audio, "rust", "tone");
    let (a, b, remote, rust_relay) = impaired_pair(to_rust.clone(), codecs, IMPAIRMENT).await;
    let (wait0, load0) = (cpu_wait_seconds(), load_average());
    let tone = spawn_tone(vec![to_chromium, to_rust]);
    let played = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        while start.elapsed() < Duration::from_secs(AUDIO_SECONDS) {
            if remote.play_audio().await.unwrap().is_none() {
                break;
            }
        }
        remote.audio_stats().await.unwrap_or_default()
    });
    let ours: AudioJitterStats = played.await.unwrap();
    let stats = page.finish_jitter(tone).await;
    let i = &stats["inbound"];
    let f = |k: &str| i[k].as_f64().unwrap_or(0.0);
    let counts = |r: &ImpairedRelay| {
        let c = &r.counts;
        (
            c.rtp.load(std::sync::atomic::Ordering::Relaxed),
            c.dropped.load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    let chromium_relay = relay.lock().unwrap().as_ref().map(counts);
    println!(
        "audio jitter buffers, {AUDIO_SECONDS} s of Opus{}: 5% loss, 0..=50 ms jitter (FIFO), same draws for both",
        if red { " in RED" } else { "" }
    );
    println!(
        "  realtimer: {} (relay: {:?} RTP, dropped); {ours:?}",
        figures(
            ours.jitter_buffer_delay,
            ours.jitter_buffer_target_delay,
            ours.jitter_buffer_emitted_count as f64,
            ours.concealed_samples as f64,
            ours.concealment_events as f64,
            AUDIO_SECONDS as f64,
        ),
        counts(&rust_relay)
    );
    let total = f("totalSamplesReceived");
    println!(
        "  Chromium ({}): {} (relay: {chromium_relay:?} RTP, dropped); {i}",
        stats["codec"].as_str().unwrap_or("?"),
        figures(
            f("jitterBufferDelay"),
            f("jitterBufferTargetDelay"),
            f("jitterBufferEmittedCount"),
            f("concealedSamples"),
            f("concealmentEvents"),
            total / 48_000.0,
        )
    );
    println!(
        "  load average before {load0}, after {}; this process waited {:.2} s for a CPU",
        load_average(),
        cpu_wait_seconds() - wait0
    );
    a.close().await;
    b.close().await;
    pc.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wants =
        |name: &str| !args.iter().any(|a| !a.starts_with('-')) || args.iter().any(|a| a == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if wants("g2g") {
            glass_to_glass().await;
        }
        if wants("jitter") {
            jitter_buffers(false).await;
            jitter_buffers(true).await;
        }
    });
}
