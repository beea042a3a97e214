//! Chromium's simulcast reaches us as three layers of one track (RFC
//! 8853): headless Chromium (tests/browser/chromium-video-peer.mjs with
//! SIMULCAST=1) offers its fake camera at 1280x720 with sendEncodings q,
//! h and f (a quarter, a half, full size); our PeerConnection answers,
//! and the track's packets are told apart by the rid our core learned for
//! each SSRC. Each layer's VP8 key frames must have its resolution, and no
//! SSRC but the three layers' may carry video. Chromium's per-layer stats
//! and availableOutgoingBitrate are printed as they came.
#![allow(clippy::print_stdout, clippy::disallowed_methods)] // a test on the wall clock

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use realtimer::{
    IceGatheringState, PeerConnection, PeerConnectionConfig, PeerConnectionEvent,
    SessionDescription,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_simulcast_arrives_as_three_layers_with_their_sizes() {
    let mut node = Command::new("node")
        .arg("chromium-video-peer.mjs")
        .env("SIMULCAST", "1")
        .current_dir(browser_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node (scripts/test installs it)");
    let stdout = node.stdout.take().unwrap();
    let mut stdin = node.stdin.take().unwrap();
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<Value>();
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
    let offer = tokio::time::timeout(Duration::from_secs(60), lines.recv())
        .await
        .expect("Chromium's offer in time")
        .expect("an offer line");
    let offer = offer["offer"].as_str().expect("offer").to_owned();
    assert!(offer.contains("a=simulcast:send q;h;f"), "{offer}");

    let mut config = PeerConnectionConfig::default().with_loopback(true);
    config.interfaces = vec!["127.0.0.1".parse().unwrap()];
    let pc = PeerConnection::new(config).await.unwrap();
    let mut events = pc.events().unwrap();
    pc.set_remote_description(SessionDescription::offer(offer))
        .await
        .unwrap();
    let answer = pc.create_answer().await.unwrap();
    pc.set_local_description(answer).await.unwrap();
    let gathered = Instant::now();
    while pc.ice_gathering_state() != IceGatheringState::Complete {
        assert!(gathered.elapsed() < Duration::from_secs(10), "gathering");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answer = pc.local_description().unwrap().sdp;
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
