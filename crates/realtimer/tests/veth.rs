//! Rust ↔ Rust across two network namespaces joined by a veth pair: the
//! test creates `rt-a-<pid>` (10.77.0.1/24) and `rt-b-<pid>` (10.77.0.2/24),
//! runs this binary's ignored `veth_peer` in each (`ip netns exec`), and the
//! two signal over TCP on the veth addresses. Nothing leaves the namespaces;
//! they are deleted on drop, even when the test fails. Needs root.
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use realtimer::{
    ChannelData, DataChannel, DataChannelInit, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

const ADDR_A: &str = "10.77.0.1";
const ADDR_B: &str = "10.77.0.2";
const SIGNAL_PORT: u16 = 7700;
const MESSAGES: usize = 200;

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

fn spawn_peer(ns: &str, role: &str, mdns: bool) -> Child {
    let exe = std::env::current_exe().unwrap();
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args(["--exact", "veth_peer", "--ignored", "--nocapture"])
        .env("REALTIMER_VETH_ROLE", role)
        .env("REALTIMER_VETH_MDNS", if mdns { "1" } else { "" })
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
    across_veth(false);
}

/// Both sides hide their host addresses behind `.local` names
/// (`mdns_host_candidates`) and find each other's with multicast DNS over
/// the veth link, as two browsers on a LAN do.
#[test]
fn rust_to_rust_across_veth_with_mdns_names_only() {
    across_veth(true);
}

fn across_veth(mdns: bool) {
    if !is_root() {
        println!("skipped: creating network namespaces and a veth pair needs root");
        return;
    }
    let ns = veth_namespaces(if mdns { "m" } else { "" });
    let answerer = spawn_peer(&ns.names[1], "answerer", mdns);
    let offerer = spawn_peer(&ns.names[0], "offerer", mdns);
    let (offerer_ok, offerer_out) = finish(offerer, Duration::from_secs(60));
    let (answerer_ok, answerer_out) = finish(answerer, Duration::from_secs(10));
    drop(ns);
    println!("--- offerer (10.77.0.1):\n{offerer_out}\n--- answerer (10.77.0.2):\n{answerer_out}");
    assert!(offerer_ok, "offerer failed");
    assert!(answerer_ok, "answerer failed");
    assert!(offerer_out.contains(&format!("echoed {MESSAGES} messages")));
}

/// Line-delimited JSON over one TCP stream: a sender for outgoing lines and
/// a receiver of parsed incoming ones.
fn tcp_signaling(
    stream: TcpStream,
) -> (mpsc::UnboundedSender<Value>, mpsc::UnboundedReceiver<Value>) {
    let (rd, mut wr) = stream.into_split();
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

/// One side; runs only inside its namespace (REALTIMER_VETH_ROLE set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by rust_to_rust_across_veth_namespaces inside a namespace"]
async fn veth_peer() {
    let Ok(role) = std::env::var("REALTIMER_VETH_ROLE") else {
        println!("nothing to do: REALTIMER_VETH_ROLE is not set");
        return;
    };
    let offerer = role == "offerer";
    let mdns = std::env::var("REALTIMER_VETH_MDNS").is_ok_and(|v| v == "1");
    let (local, remote): (IpAddr, IpAddr) = if offerer {
        (ADDR_A.parse().unwrap(), ADDR_B.parse().unwrap())
    } else {
        (ADDR_B.parse().unwrap(), ADDR_A.parse().unwrap())
    };
    let signal_addr = SocketAddr::new(ADDR_A.parse().unwrap(), SIGNAL_PORT);
    let stream = if offerer {
        let listener = TcpListener::bind(signal_addr).await.unwrap();
        timeout(Duration::from_secs(20), listener.accept())
            .await
            .expect("answerer connects")
            .unwrap()
            .0
    } else {
        let mut tries = 0;
        loop {
            match TcpStream::connect(signal_addr).await {
                Ok(s) => break s,
                Err(_) if tries < 200 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("signaling connect {signal_addr}: {e}"),
            }
        }
    };
    let (tx, mut rx) = tcp_signaling(stream);

    let mut config = PeerConnectionConfig::default();
    config.interfaces = vec![local];
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
        async move {
            loop {
                tokio::select! {
                    m = rx.recv() => {
                        let Some(m) = m else { break };
                        match apply(&session, &m).await {
                            Some(Handled::Reply(reply)) => {
                                let _ = tx.send(reply.to_value());
                            }
                            Some(Handled::Bye) => break,
                            _ => {}
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
                        Some(_) => {}
                        None => break,
                    },
                }
            }
        }
    });

    let Some(dc) = chat else {
        // The answerer echoes until the offerer says bye.
        timeout(Duration::from_secs(50), signaling)
            .await
            .expect("bye within 50 s")
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
    for i in 0..MESSAGES {
        let m = if i % 2 == 0 {
            ChannelData::Text(format!("message {i} from {local}"))
        } else {
            ChannelData::Binary(Bytes::from(vec![i as u8; 1 + i * 300]))
        };
        dc.send(m.clone()).await.unwrap();
        let got = timeout(Duration::from_secs(5), dc.recv())
            .await
            .expect("echo within 5 s");
        assert_eq!(got, Some(m), "echo of message {i}");
    }
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
    } else {
        assert_eq!((l, r), (&local.to_string(), &remote.to_string()));
    }
    println!("echoed {MESSAGES} messages");
    let _ = tx.send(SessionMessage::Bye.to_value());
    tokio::time::sleep(Duration::from_millis(100)).await;
    signaling.abort();
    pc.close().await;
}
