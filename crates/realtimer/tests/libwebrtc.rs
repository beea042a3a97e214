//! Interop with native peers over tests/peers/js's JSON signaling relay:
//! libwebrtc (Node's @roamhq/wrtc) and werift run peer-wrtc.js's 13 cases
//! against our PeerConnection echoing, and we run the same cases against
//! them echoing; Pion v3 (tests/peers/pion, Go) echoes while we test. Each
//! round runs in a loopback-only network namespace (run-netns.sh): the
//! outer test copies the peer folder to a temp dir, `npm ci`s it (builds
//! the Go peer) and runs relay + the other peer + this test binary's
//! `echo_peer_for_libwebrtc` or `tester_peer_for_libwebrtc` inside it.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtimer::{
    ChannelData, DataChannel, DataChannelInit, MediaKind, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent, PeerConnectionState, TrackLocal, TrackRemote,
};
use realtimer_signaling::{Handled, PeerSession, SessionMessage};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;
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
/// `on_channel` and incoming tracks to `on_track`. The task ends on
/// `bye`/`peer-left` or when signaling closes.
/// Messages sent on the returned sender go to the remote peer.
async fn signaling(
    pc: &PeerConnection,
    url: &str,
    offerer: bool,
    on_channel: impl Fn(DataChannel) + Send + 'static,
    on_track: impl Fn(TrackRemote) + Send + 'static,
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
                    Some(PeerConnectionEvent::Track(track)) => on_track(track),
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

/// Prints how long the negotiated channel (it opens with the SCTP
/// association) took: `SETUP_MS` from the start of signaling (both
/// processes' start-up, ICE, DTLS and SCTP), `SCTP_MS` from the connection
/// state `connected` (ICE and DTLS done; polled every millisecond), the
/// SCTP handshake alone, which is what zero checksum's negotiation changes.
fn report_setup_time(pc: &PeerConnection, neg: &DataChannel, started: Instant) {
    let (pc, neg) = (pc.clone(), neg.clone());
    tokio::spawn(async move {
        while pc.connection_state() != PeerConnectionState::Connected {
            if pc.connection_state() == PeerConnectionState::Closed {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let connected = Instant::now();
        if neg.wait_open().await {
            println!("SETUP_MS {:.1}", started.elapsed().as_secs_f64() * 1e3);
            println!("SCTP_MS {:.1}", connected.elapsed().as_secs_f64() * 1e3);
        }
    });
}

/// Our echo peer; runs only inside the namespace (REALTIMER_WRTC_URL set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the *_tests_rust_echo tests inside a network namespace"]
async fn echo_peer_for_libwebrtc() {
    let Some((url, offerer)) = env_peer() else {
        return;
    };
    let (pc, neg, control) = wrtc_shaped_peer(offerer).await;
    report_setup_time(&pc, &neg, Instant::now());
    tokio::spawn(echo(neg));
    if let Some(control) = control {
        tokio::spawn(echo(control));
    }
    let (_tx, task) = signaling(
        &pc,
        &url,
        offerer,
        |dc| {
            tokio::spawn(echo(dc));
        },
        |_| {},
    )
    .await;
    let ended = task.await;
    pc.close().await;
    fail_on_panic(ended);
}

/// A panic in a spawned task (the signaling loop's `unwrap`s) fails the
/// test that spawned it: tokio catches it and returns it from `await`, so
/// without this the test would report `ok`. Tokio's hook has printed it.
fn fail_on_panic(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// Our tester: peer-wrtc.js's cases (those in REALTIMER_WRTC_CASES, a comma
/// list, when set) against a peer echoing; runs only inside the namespace
/// (REALTIMER_WRTC_URL set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the rust_tests_*_echo tests inside a network namespace"]
async fn tester_peer_for_libwebrtc() {
    let Some((url, offerer)) = env_peer() else {
        return;
    };
    let cases = std::env::var("REALTIMER_WRTC_CASES").ok();
    let (pc, neg, _control) = wrtc_shaped_peer(offerer).await;
    report_setup_time(&pc, &neg, Instant::now());
    let (tx, task) = signaling(
        &pc,
        &url,
        offerer,
        |dc| {
            println!("remote channel (ignored by tester) {}", dc.label());
        },
        |_| {},
    )
    .await;
    let (_passed, failed) = wrtc_cases::Tester::new(pc.clone(), neg)
        .run(|name| {
            cases
                .as_deref()
                .is_none_or(|c| c.split(',').any(|w| w == name))
        })
        .await;
    let _ = tx.send(SessionMessage::Bye.to_value());
    tokio::time::sleep(Duration::from_millis(200)).await;
    if !task.is_finished() {
        task.abort();
    }
    let ended = task.await;
    pc.close().await;
    if ended.as_ref().is_err_and(|e| e.is_cancelled()) {
        // Aborted above: still running, so it never panicked.
    } else {
        fail_on_panic(ended);
    }
    assert_eq!(failed, 0);
}

/// Our media echo peer for GStreamer (it offers): one local track of each
/// kind sends back the RTP of the first remote track of that kind, as
/// `realtimer echo` does; runs only inside the namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by gstreamer_sends_vp8_and_opus_and_records_our_echo inside a network namespace"]
async fn media_echo_peer() {
    let Some((url, offerer)) = env_peer() else {
        return;
    };
    let mut config = PeerConnectionConfig::default().with_loopback(true);
    config.interfaces = vec!["127.0.0.1".parse().unwrap()];
    let pc = PeerConnection::new(config).await.unwrap();
    let locals = [MediaKind::Audio, MediaKind::Video]
        .map(|kind| TrackLocal::new(kind, "echo", &format!("echo-{kind}")));
    for local in &locals {
        pc.add_track(local.clone()).await.unwrap();
    }
    let locals = std::sync::Mutex::new(locals.map(Some));
    let (_tx, task) = signaling(
        &pc,
        &url,
        offerer,
        |_| {},
        move |remote| {
            let slot = usize::from(remote.kind() != MediaKind::Audio);
            let Some(local) = locals.lock().unwrap()[slot].take() else {
                return;
            };
            tokio::spawn(async move {
                let mut echoed = 0u64;
                while let Some(packet) = remote.read_rtp().await {
                    if local.write_rtp(packet).await.is_err() {
                        break;
                    }
                    echoed += 1;
                }
                println!("{} RTP packets of {} echoed", echoed, remote.kind());
            });
        },
    )
    .await;
    let ended = task.await;
    pc.close().await;
    fail_on_panic(ended);
}

/// GStreamer's webrtcbin (tests/peers/gstreamer/peer.py) offers VP8 video
/// and Opus audio (its audio section `bundle-only` with port 0, RFC 8843
/// §6); our media echo peer answers and sends both back; the recording
/// webrtcbin makes of what it receives from us must decode whole with
/// ffmpeg and hold a VP8 and an Opus stream of a few seconds. libnice
/// gathers no loopback address, so the namespace gets a veth pair whose
/// address (10.99.0.1) it uses; nothing leaves the namespace.
#[test]
fn gstreamer_sends_vp8_and_opus_and_records_our_echo() {
    let Some(dir) = prepare("gstreamer", Peer::Libwebrtc) else {
        return;
    };
    let peer = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/peers/gstreamer/peer.py"
    );
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        r#"set -u
ip link add gst0 type veth peer name gst1; ip addr add 10.99.0.1/24 dev gst0
ip link set gst0 up; ip link set gst1 up
node relay.js --port 0 --exit-when-empty --timeout 120 > relay.out 2>&1 &
for i in $(seq 100); do grep -q RELAY relay.out && break; sleep 0.1; done
URL=$(sed -n 's/^RELAY //p' relay.out)/room
REALTIMER_WRTC_URL=$URL REALTIMER_WRTC_ROLE=answerer {exe} --exact media_echo_peer --ignored --nocapture > other.out 2>&1 &
OTHER=$!
/usr/bin/python3 {peer} --url $URL --out $PWD/echo.mkv --seconds 6 --timeout 90 2>&1
echo "FOREGROUND_EXIT $?"
for i in $(seq 50); do kill -0 $OTHER 2>/dev/null || break; sleep 0.1; done
kill $OTHER 2>/dev/null; wait $OTHER; echo "BACKGROUND_EXIT $?"
echo "--- background peer's output:"; cat other.out
ffprobe -v error -show_entries stream=codec_name:format=duration -of compact echo.mkv
ffmpeg -v error -i echo.mkv -f null - && echo DECODED"#,
        exe = exe.display()
    );
    let out = std::process::Command::new("./run-netns.sh")
        .args(["bash", "-c", &script])
        .current_dir(&dir.js.0)
        .output()
        .expect("run-netns.sh runs");
    let output = String::from_utf8_lossy(&out.stdout);
    println!("{output}{}", String::from_utf8_lossy(&out.stderr));
    for line in ["FOREGROUND_EXIT 0", "BACKGROUND_EXIT 0", "DECODED"] {
        assert!(output.lines().any(|l| l == line), "no {line:?}");
    }
    for codec in ["codec_name=vp8", "codec_name=opus"] {
        assert!(output.contains(codec), "the recording has no {codec}");
    }
    let duration: f64 = output
        .lines()
        .find_map(|l| l.strip_prefix("format|duration="))
        .and_then(|d| d.trim().parse().ok())
        .expect("a duration");
    assert!(duration > 2.0, "recorded {duration} s");
}

/// The other peer of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// libwebrtc in Node (@roamhq/wrtc), peer-wrtc.js.
    Libwebrtc,
    /// werift 0.25 (TypeScript), peer-wrtc.js `--stack werift`.
    Werift,
    /// Pion v3.1 (Go), tests/peers/pion: echoes only.
    Pion,
}

impl Peer {
    /// The cases this peer can pass (`None`: all 13), with why the others
    /// are left out; docs/interop.md lists the same.
    fn cases(self) -> Option<&'static str> {
        match self {
            Peer::Libwebrtc => None,
            // werift 0.25.2 sends an empty message as a DATA chunk with no
            // user data (RFC 8831 §6.6 wants PPID 56/57 and one byte), which
            // stalls the association; it takes at most 64 KiB; it reports
            // ordered = true for channels the other side opened unordered.
            Peer::Werift => Some(
                "text,binary-1,binary-64000,negotiated-5,protocol-chat,photo,ordered-burst,close",
            ),
            // Pion v3.1.56 writes no a=max-message-size and keeps a 64 KiB
            // send limit; it reports ordered = true for an unordered
            // maxRetransmits-0 channel the other side opened.
            Peer::Pion => Some(
                "text,text-empty,binary-0,binary-1,binary-64000,negotiated-5,protocol-chat,photo,ordered-burst,lifetime-1000,close",
            ),
        }
    }

    /// The command line of this peer in `mode` (echo or test) and `role`.
    fn command(self, mode: &str, role: &str, pion: &Path) -> String {
        let cases = self
            .cases()
            .map(|c| format!(" --cases {c}"))
            .unwrap_or_default();
        match self {
            Peer::Libwebrtc => {
                format!("node peer-wrtc.js --url $URL --role {role} --mode {mode} --timeout 150{cases}")
            }
            Peer::Werift => format!(
                "node peer-wrtc.js --stack werift --url $URL --role {role} --mode {mode} --timeout 150{cases}"
            ),
            Peer::Pion => {
                assert_eq!(mode, "echo", "the Pion peer only echoes");
                format!("{} --url $URL --role {role} --timeout 150", pion.display())
            }
        }
    }
}

/// Which side runs peer-wrtc.js's cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tester {
    Other,
    Rust,
}

/// What a round printed and its tester's `N passed, N failed`.
struct Round {
    passed: usize,
    /// `usize::MAX` when there was no summary, or our peer's process
    /// failed (a panic included: its output is in `output`).
    failed: usize,
    /// Our peer's setup time (`SETUP_MS`) and SCTP handshake time
    /// (`SCTP_MS`), when it connected.
    setup_ms: Option<(f64, f64)>,
    output: String,
}

/// One round in a fresh loopback-only namespace: relay, the other peer and
/// this binary's ignored peer test.
fn run_round(dir: &PeerFolder, peer: Peer, rust_role: &str, tester: Tester) -> Round {
    let other_role = if rust_role == "offerer" {
        "answerer"
    } else {
        "offerer"
    };
    let exe = std::env::current_exe().unwrap();
    let cases = peer
        .cases()
        .map(|c| format!("REALTIMER_WRTC_CASES={c} "))
        .unwrap_or_default();
    let rust = |test: &str| {
        format!(
            "{cases}REALTIMER_WRTC_URL=$URL REALTIMER_WRTC_ROLE={rust_role} {} --exact {test} --ignored --nocapture",
            exe.display()
        )
    };
    let (background, foreground) = match tester {
        Tester::Other => (
            format!("{} > other.out 2>&1", rust("echo_peer_for_libwebrtc")),
            peer.command("test", other_role, &dir.pion),
        ),
        Tester::Rust => (
            format!(
                "{} > other.out 2>&1",
                peer.command("echo", other_role, &dir.pion)
            ),
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
echo "FOREGROUND_EXIT $?"
# Our echo peer ends by itself on the tester's bye; the other is stopped.
for i in $(seq 50); do kill -0 $OTHER 2>/dev/null || break; sleep 0.1; done
kill $OTHER 2>/dev/null; wait $OTHER; echo "BACKGROUND_EXIT $?"
echo "--- background peer's output:"; cat other.out
true"#
    );
    let out = std::process::Command::new("./run-netns.sh")
        .args(["bash", "-c", &script])
        .current_dir(&dir.js.0)
        .output()
        .expect("run-netns.sh runs");
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    let (passed, mut failed) = output
        .lines()
        .rev()
        .find_map(|l| {
            let (p, rest) = l.split_once(" passed, ")?;
            let f = rest.strip_suffix(" failed")?;
            Some((p.trim().parse().ok()?, f.trim().parse().ok()?))
        })
        .unwrap_or((0, usize::MAX));
    // Our peer's process: the foreground when we test, else the background.
    let ours = match tester {
        Tester::Other => "BACKGROUND_EXIT 0",
        Tester::Rust => "FOREGROUND_EXIT 0",
    };
    if !output.lines().any(|l| l == ours) {
        failed = usize::MAX;
    }
    let figure = |key: &str| {
        output
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
    };
    let setup_ms = figure("SETUP_MS ").zip(figure("SCTP_MS "));
    Round {
        passed,
        failed,
        setup_ms,
        output,
    }
}

/// The peers' folder, installed, and the Pion peer when built.
struct PeerFolder {
    js: PeerDir,
    pion: std::path::PathBuf,
}

/// The peers, installed; `None` (with a reason printed) when network
/// namespaces are not available.
fn prepare(tag: &str, peer: Peer) -> Option<PeerFolder> {
    let have_root = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_root {
        println!("skipped: no network namespaces");
        return None;
    }
    let js = wrtc_peer::install(tag).unwrap_or_else(|| panic!("no {PEER_DIR}"));
    let pion = js.0.join("pionpeer");
    if peer == Peer::Pion {
        wrtc_peer::build_pion(&pion);
    }
    Some(PeerFolder { js, pion })
}

/// The cases with `peer` in both roles; every case must pass.
fn both_roles(peer: Peer, tester: Tester) {
    let tag = format!("{peer:?}-{tester:?}").to_lowercase();
    let Some(dir) = prepare(&tag, peer) else {
        return;
    };
    let mut report = Vec::new();
    for rust_role in ["answerer", "offerer"] {
        let round = run_round(&dir, peer, rust_role, tester);
        println!(
            "--- {peer:?} with {tester:?} testing, rust {rust_role}:\n{}",
            round.output
        );
        report.push((rust_role, round.passed, round.failed, round.setup_ms));
    }
    std::thread::sleep(Duration::from_millis(100));
    println!(
        "{peer:?}, {tester:?} tests: (rust role, passed, failed, (setup ms, SCTP ms)) {report:?}"
    );
    let want = peer.cases().map_or(13, |c| c.split(',').count());
    for (role, passed, failed, _) in report {
        assert_eq!((passed, failed), (want, 0), "rust as {role}");
    }
}

/// libwebrtc runs the 13 cases; we echo.
#[test]
fn libwebrtc_tests_rust_echo() {
    both_roles(Peer::Libwebrtc, Tester::Other);
}

/// We run the same 13 cases; libwebrtc echoes (`--mode echo`).
#[test]
fn rust_tests_libwebrtc_echo() {
    both_roles(Peer::Libwebrtc, Tester::Rust);
}

/// werift runs the cases it can pass; we echo.
#[test]
fn werift_tests_rust_echo() {
    both_roles(Peer::Werift, Tester::Other);
}

/// We run the cases werift can pass; werift echoes.
#[test]
fn rust_tests_werift_echo() {
    both_roles(Peer::Werift, Tester::Rust);
}

/// We run the cases Pion can pass; Pion echoes (it opens with our default
/// configuration: zero checksum stays on, see realtimer_sctp's connect).
#[test]
fn rust_tests_pion_echo() {
    both_roles(Peer::Pion, Tester::Rust);
}
