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
    ChannelData, DataChannel, DataChannelInit, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent,
};
use realtimer_signaling::{Handled, PeerSession, SessionMessage};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

mod wrtc_cases;

use realtimer_test_support::libwebrtc::{self as wrtc_peer, PeerDir, PEER_DIR};
use realtimer_test_support::session::apply;

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

/// Our side of peer-wrtc.js's signaling: connects to the relay, sends our
/// offer when `offerer` (the caller creates channels first), answers an
/// offer, trickles candidates both ways and hands incoming channels to
/// `on_channel`. The task ends on `bye`/`peer-left` or when signaling closes.
/// Messages sent on the returned sender go to the remote peer.
async fn signaling(
    pc: &PeerConnection,
    url: &str,
    offerer: bool,
    on_channel: impl Fn(DataChannel) + Send + 'static,
) -> (mpsc::UnboundedSender<Value>, tokio::task::JoinHandle<()>) {
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
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
    let mut events = pc.events().unwrap();
    let session = PeerSession::new(pc.clone());
    if offerer {
        out_tx
            .send(session.offer().await.unwrap().to_value())
            .unwrap();
    }
    let tx = out_tx.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                msg = ws_rx.next() => {
                    let Some(Ok(msg)) = msg else { break };
                    let Message::Text(text) = msg else { continue };
                    let Ok(m) = serde_json::from_str::<Value>(&text) else { continue };
                    match apply(&session, &m).await {
                        Some(Handled::Reply(reply)) => {
                            let _ = tx.send(reply.to_value());
                        }
                        Some(Handled::Bye) => break,
                        // relay.js says when the other peer's socket closed.
                        None if m["type"] == "peer-left" => break,
                        _ => {}
                    }
                }
                e = events.recv() => match e {
                    Some(PeerConnectionEvent::IceCandidate(Some(c))) => {
                        let _ = tx.send(PeerSession::candidate(Some(c)).to_value());
                    }
                    Some(PeerConnectionEvent::DataChannel(dc)) => on_channel(dc),
                    Some(_) => {}
                    None => break,
                },
            }
        }
    });
    (out_tx, task)
}

/// A PeerConnection on loopback with peer-wrtc.js's channels: the
/// negotiated id 5 on both roles, "control" on the offerer.
async fn wrtc_shaped_peer(offerer: bool) -> (PeerConnection, DataChannel, Option<DataChannel>) {
    let mut config = PeerConnectionConfig::default().with_loopback(true);
    config.interfaces = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    let pc = PeerConnection::new(config).await.unwrap();
    let neg = pc
        .create_data_channel(
            "negotiated",
            DataChannelInit {
                negotiated: true,
                id: Some(wrtc_cases::NEGOTIATED_ID),
                ..DataChannelInit::default()
            },
        )
        .await
        .unwrap();
    let control = if offerer {
        Some(
            pc.create_data_channel("control", DataChannelInit::default())
                .await
                .unwrap(),
        )
    } else {
        None
    };
    (pc, neg, control)
}

fn env_peer() -> Option<(String, bool)> {
    let Ok(url) = std::env::var("REALTIMER_WRTC_URL") else {
        println!("nothing to do: REALTIMER_WRTC_URL is not set");
        return None;
    };
    let offerer = std::env::var("REALTIMER_WRTC_ROLE").as_deref() == Ok("offerer");
    Some((url, offerer))
}

/// Our echo peer; runs only inside the namespace (REALTIMER_WRTC_URL set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by libwebrtc_tests_rust_echo inside a network namespace"]
async fn echo_peer_for_libwebrtc() {
    let Some((url, offerer)) = env_peer() else {
        return;
    };
    let (pc, neg, control) = wrtc_shaped_peer(offerer).await;
    tokio::spawn(echo(neg));
    if let Some(control) = control {
        tokio::spawn(echo(control));
    }
    let (_tx, task) = signaling(&pc, &url, offerer, |dc| {
        tokio::spawn(echo(dc));
    })
    .await;
    let _ = task.await;
    pc.close().await;
}

/// Our tester: peer-wrtc.js's 13 cases against libwebrtc echoing; runs only
/// inside the namespace (REALTIMER_WRTC_URL set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by rust_tests_libwebrtc_echo inside a network namespace"]
async fn tester_peer_for_libwebrtc() {
    let Some((url, offerer)) = env_peer() else {
        return;
    };
    let (pc, neg, _control) = wrtc_shaped_peer(offerer).await;
    let (tx, task) = signaling(&pc, &url, offerer, |dc| {
        println!("remote channel (ignored by tester) {}", dc.label());
    })
    .await;
    let (_passed, failed) = wrtc_cases::Tester::new(pc.clone(), neg).run_all().await;
    let _ = tx.send(SessionMessage::Bye.to_value());
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.abort();
    pc.close().await;
    assert_eq!(failed, 0);
}

/// Which side runs peer-wrtc.js's cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tester {
    Libwebrtc,
    Rust,
}

/// One round in a fresh loopback-only namespace: relay, libwebrtc and this
/// binary's ignored peer test; returns the tester's `N passed, N failed`
/// and everything printed.
fn run_round(dir: &Path, rust_role: &str, tester: Tester) -> (usize, usize, String) {
    let wrtc_role = if rust_role == "offerer" {
        "answerer"
    } else {
        "offerer"
    };
    let exe = std::env::current_exe().unwrap();
    let rust = |test: &str| {
        format!(
            "REALTIMER_WRTC_URL=$URL REALTIMER_WRTC_ROLE={rust_role} {} --exact {test} --ignored --nocapture",
            exe.display()
        )
    };
    let (background, foreground) = match tester {
        Tester::Libwebrtc => (
            format!("{} > other.out 2>&1", rust("echo_peer_for_libwebrtc")),
            format!("node peer-wrtc.js --url $URL --role {wrtc_role} --mode test --timeout 150"),
        ),
        Tester::Rust => (
            format!("node peer-wrtc.js --url $URL --role {wrtc_role} --mode echo --timeout 150 --quiet > other.out 2>&1"),
            format!("{} 2>&1", rust("tester_peer_for_libwebrtc")),
        ),
    };
    let script = format!(
        r#"set -u
node relay.js --port 0 --exit-when-empty --timeout 180 > relay.out 2>&1 &
for i in $(seq 100); do grep -q RELAY relay.out && break; sleep 0.1; done
URL=$(sed -n 's/^RELAY //p' relay.out)/room
{background} &
OTHER=$!
{foreground}
sleep 0.5; kill $OTHER 2>/dev/null; wait $OTHER 2>/dev/null
true"#
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

/// The libwebrtc peer, installed; `None` (with a reason printed) when the
/// peer or network namespaces are not available.
fn prepare(tag: &str) -> Option<PeerDir> {
    let have_root = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_root {
        println!("skipped: no network namespaces");
        return None;
    }
    let dir = wrtc_peer::install(tag);
    if dir.is_none() {
        println!("skipped: no {PEER_DIR}");
    }
    dir
}

fn both_roles(tester: Tester) {
    let Some(dir) = prepare(if tester == Tester::Rust { "rt" } else { "lt" }) else {
        return;
    };
    let mut report = Vec::new();
    for rust_role in ["answerer", "offerer"] {
        let (passed, failed, out) = run_round(&dir.0, rust_role, tester);
        println!("--- {tester:?} tests, rust {rust_role}:\n{out}");
        report.push((rust_role, passed, failed));
    }
    std::thread::sleep(Duration::from_millis(100));
    println!("{report:?}");
    for (role, passed, failed) in report {
        assert_eq!((passed, failed), (13, 0), "rust as {role}");
    }
}

/// libwebrtc runs the 13 cases; we echo.
#[test]
fn libwebrtc_tests_rust_echo() {
    both_roles(Tester::Libwebrtc);
}

/// We run the same 13 cases; libwebrtc echoes (`--mode echo`).
#[test]
fn rust_tests_libwebrtc_echo() {
    both_roles(Tester::Rust);
}
