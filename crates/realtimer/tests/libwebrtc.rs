//! Interop with libwebrtc (Node's @roamhq/wrtc, through
//! /work/shared/interop/libwebrtc-peer): its `--mode test` runs its 13
//! cases against our PeerConnection echoing, in a loopback-only network
//! namespace (run-netns.sh). The outer test copies the peer folder to a
//! temp dir, `npm ci`s it and runs relay + libwebrtc + this test binary's
//! `echo_peer_for_libwebrtc` inside the namespace.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtimer::{
    ChannelData, DataChannel, DataChannelInit, IceCandidateInit, PeerConnection,
    PeerConnectionConfig, PeerConnectionEvent, SessionDescription,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const PEER_DIR: &str = "/work/shared/interop/libwebrtc-peer";

async fn echo(dc: DataChannel) {
    while let Some(m) = dc.recv().await {
        let reply = match m {
            ChannelData::Text(t) if t == "__dcinfo__" => ChannelData::Text(
                json!({"dcinfo": {
                    "label": dc.label(), "protocol": dc.protocol(), "ordered": dc.ordered(),
                    "maxRetransmits": dc.max_retransmits(),
                    "maxPacketLifeTime": dc.max_packet_life_time(),
                    "negotiated": dc.negotiated(), "id": dc.id(),
                }})
                .to_string(),
            ),
            other => other,
        };
        // Back-pressure instead of overrunning the send buffer.
        if dc.buffered_amount() > 4 * 1024 * 1024 {
            dc.wait_buffered_amount_at_most(1024 * 1024).await;
        }
        if let Err(e) = dc.send(reply).await {
            println!("echo on {}: {e}", dc.label());
        }
    }
}

/// Our echo peer; runs only inside the namespace (REALTIMER_WRTC_URL set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by libwebrtc_tests_rust_echo inside a network namespace"]
async fn echo_peer_for_libwebrtc() {
    let Ok(url) = std::env::var("REALTIMER_WRTC_URL") else {
        println!("nothing to do: REALTIMER_WRTC_URL is not set");
        return;
    };
    let offerer = std::env::var("REALTIMER_WRTC_ROLE").as_deref() == Ok("offerer");
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        while let Some(v) = out_rx.recv().await {
            if ws_tx
                .send(Message::Text(v.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut config = PeerConnectionConfig::default().with_loopback(true);
    config.interfaces = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    let pc = PeerConnection::new(config).await.unwrap();
    let mut events = pc.events().unwrap();
    let neg = pc
        .create_data_channel(
            "negotiated",
            DataChannelInit {
                negotiated: true,
                id: Some(5),
                ..DataChannelInit::default()
            },
        )
        .await
        .unwrap();
    tokio::spawn(echo(neg));
    if offerer {
        let control = pc
            .create_data_channel("control", DataChannelInit::default())
            .await
            .unwrap();
        tokio::spawn(echo(control));
        let offer = pc.create_offer().await.unwrap();
        pc.set_local_description(offer.clone()).await.unwrap();
        out_tx
            .send(json!({"type": "offer", "sdp": offer.sdp}))
            .unwrap();
    }
    loop {
        tokio::select! {
            msg = ws_rx.next() => {
                let Some(Ok(msg)) = msg else { break };
                let Message::Text(text) = msg else { continue };
                let Ok(m) = serde_json::from_str::<Value>(&text) else { continue };
                match m["type"].as_str().unwrap_or("") {
                    "offer" => {
                        let sdp = m["sdp"].as_str().unwrap_or("").to_owned();
                        pc.set_remote_description(SessionDescription::offer(sdp)).await.unwrap();
                        let answer = pc.create_answer().await.unwrap();
                        pc.set_local_description(answer.clone()).await.unwrap();
                        out_tx.send(json!({"type": "answer", "sdp": answer.sdp})).unwrap();
                    }
                    "answer" => {
                        let sdp = m["sdp"].as_str().unwrap_or("").to_owned();
                        pc.set_remote_description(SessionDescription::answer(sdp)).await.unwrap();
                    }
                    "candidate" => {
                        let c = m["candidate"].as_str().unwrap_or("");
                        let init = (!c.is_empty()).then(|| IceCandidateInit {
                            candidate: c.to_owned(),
                            sdp_mid: m["sdpMid"].as_str().map(str::to_owned),
                            sdp_m_line_index: m["sdpMLineIndex"].as_u64().map(|i| i as u16),
                            username_fragment: None,
                        });
                        if let Err(e) = pc.add_ice_candidate(init).await {
                            println!("addIceCandidate({c}): {e}");
                        }
                    }
                    "bye" | "peer-left" => break,
                    _ => {}
                }
            }
            e = events.recv() => match e {
                Some(PeerConnectionEvent::IceCandidate(Some(c))) => {
                    out_tx.send(json!({"type": "candidate", "candidate": c.candidate,
                        "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_m_line_index})).unwrap();
                }
                Some(PeerConnectionEvent::DataChannel(dc)) => { tokio::spawn(echo(dc)); }
                Some(_) => {}
                None => break,
            },
        }
    }
    pc.close().await;
}

fn run_round(dir: &Path, rust_role: &str) -> (usize, usize, String) {
    let test_role = if rust_role == "offerer" {
        "answerer"
    } else {
        "offerer"
    };
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        r#"set -u
node relay.js --port 0 --exit-when-empty --timeout 180 > relay.out 2>&1 &
for i in $(seq 100); do grep -q RELAY relay.out && break; sleep 0.1; done
URL=$(sed -n 's/^RELAY //p' relay.out)/room
REALTIMER_WRTC_URL=$URL REALTIMER_WRTC_ROLE={rust_role} {exe} --exact echo_peer_for_libwebrtc --ignored --nocapture > rust.out 2>&1 &
RUST=$!
node peer-wrtc.js --url $URL --role {test_role} --mode test --timeout 150
kill $RUST 2>/dev/null; wait $RUST 2>/dev/null
true"#,
        exe = exe.display()
    );
    let out = std::process::Command::new("./run-netns.sh")
        .args(["bash", "-c", &script])
        .current_dir(dir)
        .output()
        .expect("run-netns.sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = stdout
        .lines()
        .rev()
        .find_map(|l| {
            let (p, rest) = l.split_once(" passed, ")?;
            let f = rest.strip_suffix(" failed")?;
            Some((p.trim().parse().ok()?, f.trim().parse().ok()?))
        })
        .unwrap_or((0, usize::MAX));
    (summary.0, summary.1, stdout)
}

#[test]
fn libwebrtc_tests_rust_echo() {
    let have_root = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !Path::new(PEER_DIR).exists() || !have_root {
        println!("skipped: no {PEER_DIR} or no network namespaces");
        return;
    }
    let dir = std::env::temp_dir().join(format!("realtimer-wrtc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let status = std::process::Command::new("cp")
        .args(["-r", PEER_DIR])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let npm = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(npm.success(), "npm ci");
    let mut report = Vec::new();
    for rust_role in ["answerer", "offerer"] {
        let (passed, failed, out) = run_round(&dir, rust_role);
        println!("--- rust {rust_role}:\n{out}");
        report.push((rust_role, passed, failed));
    }
    std::thread::sleep(Duration::from_millis(100));
    let _ = std::fs::remove_dir_all(&dir);
    println!("{report:?}");
    for (role, passed, failed) in report {
        assert_eq!((passed, failed), (13, 0), "rust as {role}");
    }
}
