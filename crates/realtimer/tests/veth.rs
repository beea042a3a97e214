//! Rust ↔ Rust across two network namespaces joined by a veth pair: the
//! test creates `rt-a-<pid>` (10.77.0.1/24) and `rt-b-<pid>` (10.77.0.2/24),
//! runs this binary's ignored `veth_peer` in each (`ip netns exec`), and the
//! two signal over TCP on the veth addresses. Nothing leaves the namespaces;
//! they are deleted on drop, even when the test fails. Needs root.
//!
//! `a_path_change_is_survived_by_ice_restart` moves the offerer's address
//! mid-call (the two then signal over a Unix socket, which no address
//! change touches): ICE restart must bring the call back without losing
//! or reordering one reliable message.
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use realtimer::{
    ChannelData, DataChannel, DataChannelInit, IceConnectionState, PeerConnection,
    PeerConnectionConfig, PeerConnectionEvent,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

const ADDR_A: &str = "10.77.0.1";
const ADDR_B: &str = "10.77.0.2";
const SIGNAL_PORT: u16 = 7700;
const MESSAGES: usize = 200;
/// The offerer's address after the path change.
const ADDR_A_MOVED: &str = "10.77.0.3";
/// Messages sent across a path change, one every [`PACE`]; the address
/// moves after [`MOVE_AFTER`] of them.
const PATH_CHANGE_MESSAGES: usize = 400;
const MOVE_AFTER: usize = 100;
const PACE: Duration = Duration::from_millis(20);

use realtimer_signaling::{Handled, PeerSession, SessionMessage};
use realtimer_test_support::netns::{ip, is_root, Namespaces};
use realtimer_test_support::session::apply;

/// `rt-a<tag>-<pid>` and `rt-b<tag>-<pid>` with the veth pair between them.
fn veth_namespaces(tag: &str) -> Namespaces {
    let pid = std::process::id();
    let (a, b) = (format!("rt-a{tag}-{pid}"), format!("rt-b{tag}-{pid}"));
    let ns = Namespaces::create(&[a.clone(), b.clone()]);
    // Both ends are created inside the namespaces: the root namespace
    // never sees them.
    ip(&[
        "-n", &a, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", &b,
    ]);
    for (n, dev, addr) in [(&a, "veth-a", ADDR_A), (&b, "veth-b", ADDR_B)] {
        ip(&["-n", n, "addr", "add", &format!("{addr}/24"), "dev", dev]);
        ip(&["-n", n, "link", "set", dev, "up"]);
    }
    ns
}

/// What a run of the two peers tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Host candidates by address, signaling over TCP.
    Plain,
    /// Host candidates by `.local` name only.
    Mdns,
    /// The offerer's address moves mid-call; signaling over a Unix socket.
    PathChange,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Mdns => "mdns",
            Mode::PathChange => "path-change",
        }
    }

    fn from_env() -> Mode {
        match std::env::var("REALTIMER_VETH_MODE").as_deref() {
            Ok("mdns") => Mode::Mdns,
            Ok("path-change") => Mode::PathChange,
            _ => Mode::Plain,
        }
    }
}

fn spawn_peer(ns: &str, role: &str, mode: Mode, socket: &str) -> Child {
    let exe = std::env::current_exe().unwrap();
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args(["--exact", "veth_peer", "--ignored", "--nocapture"])
        .env("REALTIMER_VETH_ROLE", role)
        .env("REALTIMER_VETH_MODE", mode.name())
        .env("REALTIMER_VETH_SOCKET", socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec runs")
}

/// Waits for `child` up to `limit`, killing it past that; its output.
fn finish(mut child: Child, limit: Duration) -> (bool, String) {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    let ok = loop {
        waited += step;
        match child.try_wait().unwrap() {
            Some(status) => break status.success(),
            None if waited > limit => {
                let _ = child.kill();
                break false;
            }
            None => std::thread::sleep(step),
        }
    };
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (ok, text)
}

#[test]
fn rust_to_rust_across_veth_namespaces() {
    across_veth(Mode::Plain);
}

/// Both sides hide their host addresses behind `.local` names
/// (`mdns_host_candidates`) and find each other's with multicast DNS over
/// the veth link, as two browsers on a LAN do.
#[test]
fn rust_to_rust_across_veth_with_mdns_names_only() {
    across_veth(Mode::Mdns);
}

/// The network path changes under a connected peer: mid-call the
/// offerer's address moves from 10.77.0.1 to 10.77.0.3 (as a laptop's
/// does when it changes networks). The answerer's consent checks go
/// unanswered, it reports `disconnected` and asks for an ICE restart over
/// signaling; the offerer restarts (RFC 8445 §9, new credentials; its host
/// candidates listed again, so the new address is offered), and every one
/// of the reliable, ordered messages sent before, during and after the
/// outage is echoed back once and in order.
#[test]
fn a_path_change_is_survived_by_ice_restart() {
    across_veth(Mode::PathChange);
}

fn across_veth(mode: Mode) {
    if !is_root() {
        println!("skipped: creating network namespaces and a veth pair needs root");
        return;
    }
    let tag = match mode {
        Mode::Plain => "",
        Mode::Mdns => "m",
        Mode::PathChange => "p",
    };
    let ns = veth_namespaces(tag);
    let socket = std::env::temp_dir().join(format!("{}.sock", ns.names[0]));
    let _ = std::fs::remove_file(&socket);
    let socket = socket.to_str().unwrap().to_owned();
    let answerer = spawn_peer(&ns.names[1], "answerer", mode, &socket);
    let offerer = spawn_peer(&ns.names[0], "offerer", mode, &socket);
    let (offerer_ok, offerer_out) = finish(offerer, Duration::from_secs(120));
    let (answerer_ok, answerer_out) = finish(answerer, Duration::from_secs(10));
    drop(ns);
    let _ = std::fs::remove_file(&socket);
    println!("--- offerer (10.77.0.1):\n{offerer_out}\n--- answerer (10.77.0.2):\n{answerer_out}");
    assert!(offerer_ok, "offerer failed");
    assert!(answerer_ok, "answerer failed");
    let sent = match mode {
        Mode::PathChange => PATH_CHANGE_MESSAGES,
        _ => MESSAGES,
    };
    assert!(offerer_out.contains(&format!("echoed {sent} messages")));
}

/// Line-delimited JSON over one stream's two halves: a sender for
/// outgoing lines and a receiver of parsed incoming ones.
fn json_lines(
    rd: impl AsyncRead + Unpin + Send + 'static,
    mut wr: impl AsyncWrite + Unpin + Send + 'static,
) -> (mpsc::UnboundedSender<Value>, mpsc::UnboundedReceiver<Value>) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Value>();
    let (in_tx, in_rx) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        while let Some(v) = out_rx.recv().await {
            if wr.write_all(format!("{v}\n").as_bytes()).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(rd).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str(&l) {
                if in_tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    (out_tx, in_rx)
}

async fn echo(dc: DataChannel) {
    while let Some(m) = dc.recv().await {
        if dc.send(m).await.is_err() {
            break;
        }
    }
}

/// Connects by `connect`, retrying for 10 s while the other side starts.
async fn connect_retrying<T, F: std::future::Future<Output = std::io::Result<T>>>(
    what: &str,
    mut connect: impl FnMut() -> F,
) -> T {
    let mut tries = 0;
    loop {
        match connect().await {
            Ok(s) => break s,
            Err(_) if tries < 200 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("signaling connect {what}: {e}"),
        }
    }
}

/// The signaling stream: the offerer listens, the answerer connects. Over
/// TCP on the veth addresses, or (path change) over a Unix socket, which
/// does not depend on the addresses that move.
async fn signaling(
    offerer: bool,
    mode: Mode,
) -> (mpsc::UnboundedSender<Value>, mpsc::UnboundedReceiver<Value>) {
    let accept_limit = Duration::from_secs(20);
    if mode == Mode::PathChange {
        let path = std::env::var("REALTIMER_VETH_SOCKET").unwrap();
        let stream = if offerer {
            let listener = UnixListener::bind(&path).unwrap();
            let accepted = timeout(accept_limit, listener.accept());
            accepted.await.expect("answerer connects").unwrap().0
        } else {
            connect_retrying(&path, || UnixStream::connect(&path)).await
        };
        let (rd, wr) = stream.into_split();
        return json_lines(rd, wr);
    }
    let signal_addr = SocketAddr::new(ADDR_A.parse().unwrap(), SIGNAL_PORT);
    let stream = if offerer {
        let listener = TcpListener::bind(signal_addr).await.unwrap();
        let accepted = timeout(accept_limit, listener.accept());
        accepted.await.expect("answerer connects").unwrap().0
    } else {
        let what = signal_addr.to_string();
        connect_retrying(&what, || TcpStream::connect(signal_addr)).await
    };
    let (rd, wr) = stream.into_split();
    json_lines(rd, wr)
}

/// The `i`th message the offerer sends: text and binary in turn, binary
/// ones of up to 15 KB (several SCTP chunks).
fn message(i: usize, local: IpAddr) -> ChannelData {
    if i % 2 == 0 {
        ChannelData::Text(format!("message {i} from {local}"))
    } else {
        ChannelData::Binary(Bytes::from(vec![i as u8; 1 + (i % 50) * 300]))
    }
}

/// One side; runs only inside its namespace (REALTIMER_VETH_ROLE set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by rust_to_rust_across_veth_namespaces inside a namespace"]
async fn veth_peer() {
    let Ok(role) = std::env::var("REALTIMER_VETH_ROLE") else {
        println!("nothing to do: REALTIMER_VETH_ROLE is not set");
        return;
    };
    let offerer = role == "offerer";
    let mode = Mode::from_env();
    let (mdns, path_change) = (mode == Mode::Mdns, mode == Mode::PathChange);
    let (local, remote): (IpAddr, IpAddr) = if offerer {
        (ADDR_A.parse().unwrap(), ADDR_B.parse().unwrap())
    } else {
        (ADDR_B.parse().unwrap(), ADDR_A.parse().unwrap())
    };
    let (tx, mut rx) = signaling(offerer, mode).await;

    let mut config = PeerConnectionConfig::default();
    if !path_change {
        config.interfaces = vec![local];
    }
    // Else every interface's addresses (the namespace has the veth and
    // loopback), listed again at an ICE restart.
    config.rtc.ice.mdns_host_candidates = mdns;
    let pc = PeerConnection::new(config).await.unwrap();
    let mut events = pc.events().unwrap();
    let session = PeerSession::new(pc.clone());
    let chat = if offerer {
        let dc = pc
            .create_data_channel("chat", DataChannelInit::default())
            .await
            .unwrap();
        tx.send(session.offer().await.unwrap().to_value()).unwrap();
        Some(dc)
    } else {
        None
    };
    let signaling = tokio::spawn({
        let tx = tx.clone();
        let pc = pc.clone();
        async move {
            // An ICE restart we asked for: its offer goes out at the
            // `negotiationneeded` it fires (the first one, for the
            // channel, came before the first offer was sent).
            let mut restarting = false;
            loop {
                tokio::select! {
                    m = rx.recv() => {
                        let Some(m) = m else { break };
                        match apply(&session, &m).await {
                            Some(Handled::Reply(reply)) => {
                                let _ = tx.send(reply.to_value());
                            }
                            Some(Handled::Bye) => break,
                            Some(_) => {}
                            None if m["type"] == "restart-ice" && !restarting => {
                                restart(offerer, &pc, &tx, &mut restarting).await;
                            }
                            None => {}
                        }
                    }
                    e = events.recv() => match e {
                        Some(PeerConnectionEvent::IceCandidate(Some(c))) => {
                            println!("local candidate {}", c.candidate);
                            if mdns {
                                assert!(c.candidate.contains(".local ") && !c.candidate.contains(&local.to_string()),
                                    "the host address stays hidden: {}", c.candidate);
                            }
                            let _ = tx.send(PeerSession::candidate(Some(c)).to_value());
                        }
                        Some(PeerConnectionEvent::DataChannel(dc)) => {
                            println!("remote channel {}", dc.label());
                            tokio::spawn(echo(dc));
                        }
                        Some(PeerConnectionEvent::ConnectionStateChange(s)) => {
                            println!("connectionState {}", s.as_str());
                        }
                        Some(PeerConnectionEvent::IceConnectionStateChange(s)) => {
                            println!("iceConnectionState {}", s.as_str());
                            let lost = matches!(s, IceConnectionState::Disconnected | IceConnectionState::Failed);
                            if path_change && lost && !restarting {
                                restart(offerer, &pc, &tx, &mut restarting).await;
                            }
                            if s == IceConnectionState::Connected {
                                restarting = false;
                            }
                        }
                        Some(PeerConnectionEvent::NegotiationNeeded) if restarting => {
                            let offer = session.offer().await.unwrap();
                            println!("ICE restart offer sent");
                            let _ = tx.send(offer.to_value());
                        }
                        Some(_) => {}
                        None => break,
                    },
                }
            }
        }
    });

    let Some(dc) = chat else {
        // The answerer echoes until the offerer says bye.
        timeout(Duration::from_secs(110), signaling)
            .await
            .expect("bye within 110 s")
            .unwrap();
        pc.close().await;
        return;
    };
    assert!(
        timeout(Duration::from_secs(20), dc.wait_open())
            .await
            .expect("channel opens within 20 s"),
        "channel closed instead of opening"
    );
    println!("channel open");
    let sent = if path_change {
        send_across_a_path_change(&dc, local).await
    } else {
        for i in 0..MESSAGES {
            dc.send(message(i, local)).await.unwrap();
            let got = timeout(Duration::from_secs(5), dc.recv())
                .await
                .expect("echo within 5 s");
            assert_eq!(got, Some(message(i, local)), "echo of message {i}");
        }
        MESSAGES
    };
    let stats = pc.get_stats().await.unwrap();
    let pair = stats.selected_candidate_pair().expect("a selected pair");
    let remote_candidate = stats.candidate(&pair.remote_candidate_id).unwrap();
    let l = &stats.candidate(&pair.local_candidate_id).unwrap().address;
    let r = &remote_candidate.address;
    println!("selected pair {l} -> {r}");
    // A host candidate, not a peer-reflexive one learned from the peer's
    // checks: the peer's name resolved here.
    assert_eq!(remote_candidate.candidate_type, "host");
    if mdns {
        // Stats show our candidate by its name, the peer's by the address
        // its name resolved to.
        assert!(l.ends_with(".local"), "local {l}");
        assert_eq!(r, &remote.to_string());
    } else if path_change {
        // The restart offered the new address and the pair uses it.
        assert_eq!((l.as_str(), r), (ADDR_A_MOVED, &remote.to_string()));
    } else {
        assert_eq!((l, r), (&local.to_string(), &remote.to_string()));
    }
    println!("echoed {sent} messages");
    let _ = tx.send(SessionMessage::Bye.to_value());
    tokio::time::sleep(Duration::from_millis(100)).await;
    signaling.abort();
    pc.close().await;
}

/// An ICE restart: the offerer restarts (its offer follows at
/// `negotiationneeded`), the answerer asks the offerer for one.
async fn restart(
    offerer: bool,
    pc: &PeerConnection,
    tx: &mpsc::UnboundedSender<Value>,
    restarting: &mut bool,
) {
    if offerer {
        println!("restarting ICE");
        pc.restart_ice().await.unwrap();
        *restarting = true;
    } else {
        println!("asking the offerer for an ICE restart");
        let _ = tx.send(serde_json::json!({"type": "restart-ice"}));
    }
}

/// Sends [`PATH_CHANGE_MESSAGES`] reliable, ordered messages, one every
/// [`PACE`], moving this namespace's address from [`ADDR_A`] to
/// [`ADDR_A_MOVED`] after [`MOVE_AFTER`] of them, and checks that every
/// echo comes back once and in order; how many were echoed.
async fn send_across_a_path_change(dc: &DataChannel, local: IpAddr) -> usize {
    let reader = tokio::spawn({
        let dc = dc.clone();
        async move {
            for i in 0..PATH_CHANGE_MESSAGES {
                let got = timeout(Duration::from_secs(60), dc.recv()).await;
                let got = got.unwrap_or_else(|_| panic!("no echo of message {i} within 60 s"));
                assert_eq!(got, Some(message(i, local)), "echo of message {i}");
                if (i + 1) % 100 == 0 {
                    println!("{} echoes back in order", i + 1);
                }
            }
        }
    });
    for i in 0..PATH_CHANGE_MESSAGES {
        dc.send(message(i, local)).await.unwrap();
        if i + 1 == MOVE_AFTER {
            // The test moves its own namespace's address (the process
            // runs as root inside it): the old one is gone at once, as
            // when a laptop changes networks.
            ip(&["addr", "del", &format!("{ADDR_A}/24"), "dev", "veth-a"]);
            ip(&[
                "addr",
                "add",
                &format!("{ADDR_A_MOVED}/24"),
                "dev",
                "veth-a",
            ]);
            println!("address moved to {ADDR_A_MOVED} after {MOVE_AFTER} messages");
        }
        tokio::time::sleep(PACE).await;
    }
    println!("sent {PATH_CHANGE_MESSAGES} messages");
    timeout(Duration::from_secs(90), reader)
        .await
        .expect("every echo within 90 s")
        .unwrap();
    PATH_CHANGE_MESSAGES
}
