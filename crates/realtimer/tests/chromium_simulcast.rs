//! Chromium's simulcast reaches us as three layers of one track (RFC
//! 8853): headless Chromium (tests/browser/chromium-video-peer.mjs with
//! SIMULCAST=1) offers its fake camera at 1280x720 with sendEncodings q,
//! h and f (a quarter, a half, full size); our PeerConnection answers,
//! and the track's packets are told apart by the rid our core learned for
//! each SSRC. Each layer's VP8 key frames must have its resolution, and no
//! SSRC but the three layers' may carry video. Chromium's per-layer stats
//! and availableOutgoingBitrate are printed as they came.
//!
//! The other way, our `TrackLocal::simulcast` offers three VP8 layers of
//! the test pattern (each encoded at its `layer_targets` bitrate) and
//! Chromium (ANSWER=1) answers and decodes what it receives: Chromium
//! answers without simulcast, so it gets the first layer as a plain
//! stream and the other layers pause.
#![allow(clippy::print_stdout, clippy::disallowed_methods)] // a test on the wall clock

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use realtimer::codecs::source::TestPattern;
use realtimer::codecs::{video_encoder, VideoCodec, VideoEncoderConfig};
use realtimer::{
    IceGatheringState, MediaKind, PeerConnection, PeerConnectionConfig, PeerConnectionEvent,
    Sample, SendLayerInit, SessionDescription, TrackLocal,
};
use realtimer_rtp::payload::vp8::{keyframe_size, Vp8Descriptor};
use realtimer_test_support::node::browser_dir;
use serde_json::Value;
use tokio::sync::mpsc;

/// Within this long of the answer all three layers must have sent a key
/// frame (Chromium ramps in a few seconds; the machine may be loaded).
const LIMIT: Duration = Duration::from_secs(90);

/// The size of each key frame per SSRC, and the bytes of each SSRC.
#[derive(Debug, Default)]
struct Seen {
    keyframes: BTreeMap<u32, BTreeSet<(u16, u16)>>,
    bytes: BTreeMap<u32, u64>,
}

/// tests/browser/chromium-video-peer.mjs with `env` set: the process, its
/// stdin, and its JSON lines (others printed).
fn chromium_peer(env: (&str, &str)) -> (Child, ChildStdin, mpsc::UnboundedReceiver<Value>) {
    let mut node = Command::new("node")
        .arg("chromium-video-peer.mjs")
        .env(env.0, env.1)
        .current_dir(browser_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node (scripts/test installs it)");
    let stdout = node.stdout.take().unwrap();
    let stdin = node.stdin.take().unwrap();
    let (lines_tx, lines) = mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str(&line) {
                Ok(v) => {
                    if lines_tx.send(v).is_err() {
                        break;
                    }
                }
                Err(_) => println!("node: {line}"),
            }
        }
    });
    (node, stdin, lines)
}

/// A loopback-only PeerConnection, ICE gathered once its description is
/// set.
async fn loopback_peer() -> PeerConnection {
    let mut config = PeerConnectionConfig::default().with_loopback(true);
    config.interfaces = vec!["127.0.0.1".parse().unwrap()];
    PeerConnection::new(config).await.unwrap()
}

/// `pc`'s local description once ICE gathered (no trickle).
async fn gathered_description(pc: &PeerConnection) -> String {
    let gathered = Instant::now();
    while pc.ice_gathering_state() != IceGatheringState::Complete {
        assert!(gathered.elapsed() < Duration::from_secs(10), "gathering");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pc.local_description().unwrap().sdp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_simulcast_arrives_as_three_layers_with_their_sizes() {
    let (mut node, mut stdin, mut lines) = chromium_peer(("SIMULCAST", "1"));
    let offer = tokio::time::timeout(Duration::from_secs(60), lines.recv())
        .await
        .expect("Chromium's offer in time")
        .expect("an offer line");
    let offer = offer["offer"].as_str().expect("offer").to_owned();
    assert!(offer.contains("a=simulcast:send q;h;f"), "{offer}");

    let pc = loopback_peer().await;
    let mut events = pc.events().unwrap();
    pc.set_remote_description(SessionDescription::offer(offer))
        .await
        .unwrap();
    let answer = pc.create_answer().await.unwrap();
    pc.set_local_description(answer).await.unwrap();
    let answer = gathered_description(&pc).await;
    assert!(answer.contains("a=simulcast:recv q;h;f"), "{answer}");
    writeln!(stdin, "{}", serde_json::json!({ "answer": answer })).unwrap();
    let answered = Instant::now();

    let track = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Some(PeerConnectionEvent::Track(t)) => return t,
                Some(_) => {}
                None => panic!("connection gone"),
            }
        }
    })
    .await
    .expect("a track");
    assert_eq!(track.info().rids, ["q", "h", "f"]);
    tokio::spawn(async move { while events.recv().await.is_some() {} });

    let seen = Arc::new(Mutex::new(Seen::default()));
    let reader = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(p) = track.read_rtp().await {
                let mut seen = seen.lock().unwrap();
                *seen.bytes.entry(p.ssrc).or_default() += p.payload.len() as u64;
                let Ok((d, len)) = Vp8Descriptor::parse(&p.payload) else {
                    continue;
                };
                if let Some(size) = d
                    .starts_frame()
                    .then(|| keyframe_size(&p.payload[len..]))
                    .flatten()
                {
                    seen.keyframes.entry(p.ssrc).or_default().insert(size);
                }
            }
        })
    };

    let expected: BTreeMap<&str, (u16, u16)> =
        [("q", (320, 180)), ("h", (640, 360)), ("f", (1280, 720))].into();
    let mut by_rid: BTreeMap<String, BTreeSet<(u16, u16)>> = BTreeMap::new();
    let mut chromium = Vec::new();
    while answered.elapsed() < LIMIT {
        tokio::time::sleep(Duration::from_secs(1)).await;
        while let Ok(line) = lines.try_recv() {
            if let Some(stats) = line.get("stats") {
                chromium.push(stats.clone());
            }
        }
        let report = pc.get_stats().await.unwrap();
        let rids: BTreeMap<u32, String> = report
            .inbound_rtp
            .iter()
            .filter_map(|s| Some((s.ssrc, s.rid.clone()?)))
            .collect();
        by_rid = {
            let seen = seen.lock().unwrap();
            seen.keyframes
                .iter()
                .filter_map(|(ssrc, sizes)| Some((rids.get(ssrc)?.clone(), sizes.clone())))
                .collect()
        };
        if expected
            .iter()
            .all(|(rid, size)| by_rid.get(*rid).is_some_and(|s| s.contains(size)))
        {
            break;
        }
    }
    let took = answered.elapsed();
    drop(stdin);
    for stats in &chromium {
        println!("chromium {stats}");
    }
    let report = pc.get_stats().await.unwrap();
    for s in &report.inbound_rtp {
        println!(
            "inbound ssrc {} rid {:?}: {} packets, {} bytes, {} lost",
            s.ssrc, s.rid, s.packets_received, s.bytes_received, s.packets_lost
        );
    }
    println!("key frames by rid after {took:?}: {by_rid:?}");
    for (rid, size) in &expected {
        assert!(
            by_rid.get(*rid).is_some_and(|s| s.contains(size)),
            "layer {rid}: no {size:?} key frame within {LIMIT:?}: {by_rid:?}"
        );
    }
    // Every layer's SSRC is one our core named by its rid; none other
    // carried video.
    let ssrcs: BTreeSet<u32> = seen.lock().unwrap().bytes.keys().copied().collect();
    let named: BTreeSet<u32> = report
        .inbound_rtp
        .iter()
        .filter(|s| s.rid.is_some())
        .map(|s| s.ssrc)
        .collect();
    assert_eq!(named.len(), 3, "{:?}", report.inbound_rtp);
    assert!(ssrcs.is_subset(&named), "{ssrcs:?} vs {named:?}");
    pc.close().await;
    reader.abort();
    let _ = node.wait();
}

/// Our layers: rid, size, the most bitrate worth giving it.
const OUR_LAYERS: [(&str, (u32, u32), u64); 3] = [
    ("q", (160, 96), 150_000),
    ("h", (320, 180), 500_000),
    ("f", (640, 360), 1_200_000),
];

/// Chromium receives our simulcast track: we offer three VP8 layers of
/// the test pattern, each encoded at the bitrate `layer_targets` gives it
/// (nothing on a paused layer), and Chromium must decode frames of one of
/// our layers' sizes. Chromium (here) answers without `a=simulcast`: then
/// it must decode the first layer, and the others must be paused and
/// unsent. What Chromium's answer says of simulcast, the targets over time
/// and Chromium's inbound stats are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_receives_our_simulcast_layers() {
    let (mut node, mut stdin, mut lines) = chromium_peer(("ANSWER", "1"));
    let pc = loopback_peer().await;
    let layers: Vec<SendLayerInit> = OUR_LAYERS
        .iter()
        .map(|(rid, _, max)| SendLayerInit::new(rid, *max))
        .collect();
    let track = TrackLocal::simulcast(MediaKind::Video, "rust", "pattern", &layers);
    pc.add_track(track.clone()).await.unwrap();
    let offer = pc.create_offer().await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let offer = gathered_description(&pc).await;
    assert!(offer.contains("a=simulcast:send q;h;f"), "{offer}");
    writeln!(stdin, "{}", serde_json::json!({ "offer": offer })).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let line = lines.recv().await.expect("Chromium's answer");
            if let Some(a) = line.get("answer") {
                return a.as_str().expect("answer").to_owned();
            }
        }
    })
    .await
    .expect("Chromium's answer in time");
    let simulcast_lines: Vec<&str> = answer
        .lines()
        .filter(|l| l.starts_with("a=simulcast") || l.starts_with("a=rid"))
        .collect();
    println!("Chromium's answer: {simulcast_lines:?}");
    let chromium_takes_layers = answer.contains("a=simulcast:recv");
    pc.set_remote_description(SessionDescription::answer(answer))
        .await
        .unwrap();
    let answered = Instant::now();

    // One encoder a layer, at its target; every layer's key frame when
    // Chromium asks for one.
    let sender = {
        let track = track.clone();
        tokio::spawn(async move {
            let mut encoders: Vec<_> = OUR_LAYERS
                .iter()
                .map(|(_, (w, h), _)| {
                    let encoder = video_encoder(VideoCodec::Vp8, &VideoEncoderConfig::new(*w, *h))
                        .expect("VP8 encoder");
                    (encoder, TestPattern::new(*w, *h))
                })
                .collect();
            let frame_time = Duration::from_nanos(33_333_333);
            let mut clock = tokio::time::interval(frame_time);
            for n in 0u64.. {
                clock.tick().await;
                let targets = track.layer_targets();
                let keyframe = track.take_keyframe_request();
                for (i, (encoder, pattern)) in encoders.iter_mut().enumerate() {
                    let rid = OUR_LAYERS[i].0;
                    // Before the first estimate: the lowest layer only.
                    let bitrate = match targets.iter().find(|t| t.rid == rid) {
                        Some(t) => t.bitrate,
                        None => (i == 0).then_some(OUR_LAYERS[0].2),
                    };
                    let Some(bitrate) = bitrate else { continue };
                    encoder.set_bitrate(bitrate as u32).unwrap();
                    if keyframe {
                        encoder.request_keyframe();
                    }
                    let frame = pattern.next_frame();
                    let Some(encoded) = encoder.encode(&frame, n * 3000).unwrap() else {
                        continue;
                    };
                    let sample = Sample::new(encoded.data, frame_time);
                    if track.write_sample_layer(rid, sample).await.is_err() {
                        return;
                    }
                }
            }
        })
    };

    let sizes: BTreeSet<(u64, u64)> = OUR_LAYERS
        .iter()
        .map(|(_, (w, h), _)| (u64::from(*w), u64::from(*h)))
        .collect();
    let mut decoded = 0;
    let mut size = None;
    let mut targets_seen = BTreeSet::new();
    while answered.elapsed() < LIMIT && decoded < 60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        targets_seen.insert(format!("{:?}", track.layer_targets()));
        while let Ok(line) = lines.try_recv() {
            let Some(stats) = line.get("stats") else {
                continue;
            };
            println!("chromium inbound {}", stats["inbounds"]);
            let best = stats["inbounds"]
                .as_array()
                .into_iter()
                .flatten()
                .max_by_key(|s| s["framesDecoded"].as_u64().unwrap_or(0));
            if let Some(s) = best {
                decoded = s["framesDecoded"].as_u64().unwrap_or(0);
                size = s["frameWidth"].as_u64().zip(s["frameHeight"].as_u64());
            }
        }
    }
    let took = answered.elapsed();
    drop(stdin);
    sender.abort();
    let report = pc.get_stats().await.unwrap();
    for s in &report.outbound_rtp {
        println!(
            "outbound ssrc {} rid {:?}: {} packets, {} bytes",
            s.ssrc, s.rid, s.packets_sent, s.bytes_sent
        );
    }
    println!("layer targets seen: {targets_seen:?}");
    println!("Chromium decoded {decoded} frames of {size:?} within {took:?}");
    assert!(
        decoded >= 60,
        "Chromium decoded {decoded} frames within {LIMIT:?}"
    );
    let size = size.expect("Chromium's frame size");
    assert!(sizes.contains(&size), "{size:?} is none of our layers'");
    if !chromium_takes_layers {
        // Chromium answered without simulcast (its answer of today): it
        // gets the first layer as a plain stream, and the targets pause
        // the others, so nothing is encoded or sent on them.
        let (w, h) = OUR_LAYERS[0].1;
        assert_eq!(size, (u64::from(w), u64::from(h)), "the first layer");
        let targets = track.layer_targets();
        assert!(
            targets[0].bitrate.is_some() && targets[1..].iter().all(|t| t.bitrate.is_none()),
            "{targets:?}"
        );
        let sending: Vec<u64> = report
            .outbound_rtp
            .iter()
            .filter(|s| s.packets_sent > 0)
            .map(|s| s.packets_sent)
            .collect();
        assert_eq!(sending.len(), 1, "{:?}", report.outbound_rtp);
    }
    pc.close().await;
    let _ = node.wait();
}
