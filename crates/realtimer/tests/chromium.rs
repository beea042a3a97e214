//! Interop with headless Chromium and Firefox ESR: the test serves the page
//! (tests/browser/dc-interop.html) and a WebSocket for signaling from
//! http://localhost, runs tests/browser/dc-interop.mjs (playwright-core for
//! Chromium, puppeteer-core over WebDriver BiDi for Firefox),
//! and our PeerConnection answers the page's cases: echo, channel
//! parameters (`__dcinfo__`), the photo transfer both ways, a channel
//! opened by Rust and closed by Rust, close from the browser.
//!
//! The mDNS case runs the same page in a network namespace of its own with
//! a veth link inside (Chromium does mDNS on no loopback interface): both
//! sides hide their host address behind a `.local` name and must resolve
//! the other's, Chromium with its own mDNS client, we with ours.
#![allow(clippy::print_stdout)]

use realtimer_test_support::netns::{ip, is_root, Namespaces};

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::extract::ws::Message;
use bytes::Bytes;
use futures_util::StreamExt;
use realtimer::{
    ChannelData, DataChannel, DataChannelInit, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent,
};
use realtimer_signaling::{Handled, PeerSession};
use realtimer_test_support::session::apply;
use serde_json::{json, Value};
use tokio::sync::mpsc;

mod page_server;

const PAGE: &str = include_str!("../../../tests/browser/dc-interop.html");

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

fn pattern(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + seed) & 255) as u8).collect()
}

/// Our side of every channel: echo, `__dcinfo__`, the photo protocol.
async fn serve_channel(dc: DataChannel, ws: mpsc::UnboundedSender<Value>) {
    let mut photo: Option<(usize, Vec<u8>)> = None;
    while let Some(m) = dc.recv().await {
        match m {
            ChannelData::Text(t) if t == "__dcinfo__" => {
                let info = json!({
                    "label": dc.label(), "protocol": dc.protocol(), "id": dc.id(),
                    "ordered": dc.ordered(), "maxRetransmits": dc.max_retransmits(),
                    "maxPacketLifeTime": dc.max_packet_life_time(), "negotiated": dc.negotiated(),
                });
                dc.send_text(info.to_string()).await.unwrap();
            }
            ChannelData::Text(t) if dc.label() == "photo" && t == "__sendphoto__" => {
                let img = pattern(700_000, 11);
                dc.set_buffered_amount_low_threshold(256 * 1024).await;
                dc.send_text(img.len().to_string()).await.unwrap();
                for chunk in img.chunks(64_000) {
                    if dc.buffered_amount() > 1024 * 1024 {
                        dc.wait_buffered_amount_at_most(256 * 1024).await;
                    }
                    dc.send_binary(Bytes::copy_from_slice(chunk)).await.unwrap();
                }
            }
            ChannelData::Text(t) if dc.label() == "photo" && photo.is_none() => {
                let n: usize = t.parse().unwrap();
                photo = Some((n, Vec::with_capacity(n)));
            }
            ChannelData::Binary(b) if photo.is_some() => {
                let (n, buf) = photo.as_mut().unwrap();
                buf.extend_from_slice(&b);
                if buf.len() >= *n {
                    let ok = *buf == pattern(*n, 3);
                    let reply = if ok {
                        format!("ok {n}")
                    } else {
                        "bad photo".into()
                    };
                    dc.send_text(reply).await.unwrap();
                    photo = None;
                }
            }
            other => {
                if let Err(e) = dc.send(other).await {
                    println!("echo failed on {}: {e}", dc.label());
                }
            }
        }
    }
    let _ = ws.send(json!({"type": "closed", "label": dc.label()}));
}

/// Where the peers meet: loopback, or the veth link of the mDNS namespace
/// with both sides' host addresses hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Loopback,
    Mdns,
}

/// Our and Chromium's address in the mDNS namespace.
const MDNS_HOST: &str = "10.88.0.1";

/// The browser the page runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Browser {
    Chromium,
    Firefox,
}

impl Browser {
    fn path(self) -> &'static str {
        match self {
            Browser::Chromium => "/usr/bin/chromium",
            Browser::Firefox => "/usr/bin/firefox-esr",
        }
    }
}

async fn run(browser_offers: bool, mode: Mode) {
    run_in(Browser::Chromium, browser_offers, mode).await;
}

async fn run_in(browser: Browser, browser_offers: bool, mode: Mode) {
    // scripts/test installs both browsers; a developer may have neither.
    if !std::path::Path::new(browser.path()).exists() {
        println!("skipped: {} is not installed", browser.path());
        return;
    }
    let (port, mut sock_rx) = page_server::serve(PAGE).await;

    let role = if browser_offers {
        "offerer"
    } else {
        "answerer"
    };
    let url = format!("http://localhost:{port}/?role={role}");
    let node = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("dc-interop.mjs")
            .arg(url)
            .args((mode == Mode::Mdns).then_some("--mdns"))
            .args((browser == Browser::Firefox).then_some("--firefox"))
            .current_dir(browser_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
    });

    let mut config = PeerConnectionConfig::default().with_loopback(true);
    config.interfaces = vec!["127.0.0.1".parse().unwrap()];
    if mode == Mode::Mdns {
        config.interfaces = vec![MDNS_HOST.parse().unwrap()];
        config.rtc.ice.mdns_host_candidates = true;
    }
    let pc = PeerConnection::new(config).await.unwrap();
    let mut browser_candidates = Vec::new();
    let mut events = pc.events().unwrap();
    let session = PeerSession::new(pc.clone());
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
    let from_rust = pc
        .create_data_channel("from-rust", DataChannelInit::default())
        .await
        .unwrap();

    let socket = tokio::time::timeout(Duration::from_secs(60), sock_rx.recv())
        .await
        .expect("the page connects")
        .unwrap();
    let (ws_tx, mut ws_rx) = socket.split();
    let out_tx = page_server::json_sender(ws_tx);
    tokio::spawn(serve_channel(neg, out_tx.clone()));

    let result = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            tokio::select! {
                msg = ws_rx.next() => {
                    let Some(Ok(Message::Text(text))) = msg else {
                        match msg { Some(Ok(_)) => continue, _ => return None }
                    };
                    let m: Value = serde_json::from_str(&text).unwrap();
                    if m["type"] == "candidate" {
                        browser_candidates.push(m["candidate"].as_str().unwrap_or("").to_owned());
                    }
                    if let Some(handled) = apply(&session, &m).await {
                        if let Handled::Reply(reply) = handled {
                            out_tx.send(reply.to_value()).unwrap();
                        }
                        continue;
                    }
                    match m["type"].as_str().unwrap_or("") {
                        "ready" => {
                            out_tx.send(session.offer().await.unwrap().to_value()).unwrap();
                        }
                        "rust-channel-ready" => {
                            let dc = from_rust.clone();
                            tokio::spawn(async move {
                                dc.send_text("ping from rust ✓").await.unwrap();
                                let echoed = dc.recv().await;
                                assert_eq!(echoed, Some(ChannelData::Text("ping from rust ✓".into())));
                                dc.close().await;
                            });
                        }
                        "result" => return Some(m),
                        _ => {}
                    }
                }
                e = events.recv() => match e {
                    Some(PeerConnectionEvent::IceCandidate(c)) => {
                        out_tx.send(PeerSession::candidate(c).to_value()).unwrap();
                    }
                    Some(PeerConnectionEvent::DataChannel(dc)) => {
                        tokio::spawn(serve_channel(dc, out_tx.clone()));
                    }
                    Some(_) => {}
                    None => return None,
                },
            }
        }
    })
    .await
    .expect("the page finished in time");
    let output = node.await.unwrap().expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    let result = result.expect("a result from the page");
    println!("passed: {}", result["passed"]);
    assert_eq!(result["failed"], json!([]), "failed cases");
    assert_eq!(result["passed"].as_array().map(Vec::len), Some(14));
    if mode == Mode::Mdns {
        check_mdns_pair(&pc, &browser_candidates, &result["pair"]).await;
    }
    pc.close().await;
}

/// Both sides hid their host address and found the other's: Chromium
/// offered only `.local` names, and on each side the selected pair's remote
/// end is a host candidate (a name that resolved), not a peer-reflexive
/// one learned from the other's checks.
async fn check_mdns_pair(pc: &PeerConnection, browser_candidates: &[String], page_pair: &Value) {
    let hosts: Vec<_> = browser_candidates
        .iter()
        .filter(|c| c.contains(" typ host"))
        .collect();
    println!("Chromium's host candidates: {hosts:?}; its selected pair: {page_pair}");
    assert!(!hosts.is_empty() && hosts.iter().all(|c| c.contains(".local ")));
    // Chromium's checks may reach us before its name resolves (the pair
    // is peer-reflexive until then): wait for the answer, a few seconds.
    let mut tries = 0;
    let (local, remote) = loop {
        let stats = pc.get_stats().await.unwrap();
        let pair = stats.selected_candidate_pair().expect("a selected pair");
        let local = stats.candidate(&pair.local_candidate_id).unwrap().clone();
        let remote = stats.candidate(&pair.remote_candidate_id).unwrap().clone();
        tries += 1;
        if remote.candidate_type == "host" || tries == 50 {
            break (local, remote);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "our selected pair: {} -> {} ({})",
        local.address, remote.address, remote.candidate_type
    );
    assert!(local.address.ends_with(".local"));
    assert_eq!(
        (remote.candidate_type.as_str(), remote.address.as_str()),
        ("host", MDNS_HOST)
    );
    assert_eq!(
        page_pair["remote"]["type"], "host",
        "Chromium resolved our name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_offers_rust_answers() {
    run(true, Mode::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_offers_chromium_answers() {
    run(false, Mode::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_offers_rust_answers() {
    run_in(Browser::Firefox, true, Mode::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_offers_firefox_answers() {
    run_in(Browser::Firefox, false, Mode::Loopback).await;
}

/// Creates `rt-mdns-<pid>` with loopback up and a veth link inside it (a
/// multicast-capable link no packet leaves), runs `chromium_mdns_peer` in
/// it, and deletes it. Needs root.
#[test]
fn chromium_and_rust_resolve_each_others_mdns_names() {
    if !is_root() || !std::path::Path::new("/usr/bin/chromium").exists() {
        println!("skipped: needs root (a network namespace) and /usr/bin/chromium");
        return;
    }
    let ns = format!("rt-mdns-{}", std::process::id());
    let _namespace = Namespaces::create(std::slice::from_ref(&ns));
    // A veth pair with both ends inside: a multicast-capable link that
    // leads nowhere (no dummy driver in every kernel).
    let link = [
        "link", "add", "mdns0", "type", "veth", "peer", "name", "mdns1",
    ];
    ip(&[&["-n", ns.as_str()][..], &link[..]].concat());
    let address = format!("{MDNS_HOST}/24");
    ip(&["-n", &ns, "addr", "add", &address, "dev", "mdns0"]);
    ip(&["-n", &ns, "link", "set", "mdns0", "up"]);
    ip(&["-n", &ns, "link", "set", "mdns1", "up"]);
    ip(&["-n", &ns, "route", "add", "default", "dev", "mdns0"]);
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "chromium_mdns_peer", "--ignored", "--nocapture"])
        .env("REALTIMER_MDNS_NETNS", "1")
        .output()
        .unwrap();
    println!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the page's cases and the mDNS checks pass in the namespace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by chromium_and_rust_resolve_each_others_mdns_names in a namespace"]
async fn chromium_mdns_peer() {
    if std::env::var_os("REALTIMER_MDNS_NETNS").is_none() {
        println!("nothing to do outside the namespace");
        return;
    }
    run(true, Mode::Mdns).await;
}
