//! A Rust PeerConnection and a page in headless Chromium, for the media
//! tests (tests/chromium_media.rs) and benchmarks (benches/chromium_media.rs,
//! which include this file and page_server's): the page is served from
//! http://localhost with a WebSocket for signaling, and
//! tests/browser/dc-interop.mjs opens it. With an [`Impairment`], every
//! packet between the two goes through an impaired relay (see
//! realtimer_test_support::impaired_relay).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::StreamExt;
use realtimer::codecs::source::Tone;
use realtimer::{
    Codec, MediaError, PeerConnection, PeerConnectionConfig, PeerConnectionEvent, TrackLocal,
    TrackRemote,
};
use realtimer_signaling::{Handled, PeerSession};
use realtimer_test_support::impaired_relay::{self, ImpairedRelay, Impairment};
use realtimer_test_support::session::apply;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::page_server;

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Chromium is here; prints that `what` was skipped if not.
pub(crate) fn have_chromium(what: &str) -> bool {
    let here = std::path::Path::new(CHROMIUM).exists();
    if !here {
        println!("skipped {what}: {CHROMIUM} is not installed");
    }
    here
}

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// The page's end of a run: its socket, and node's exit.
pub(crate) struct Page {
    from_page: mpsc::UnboundedReceiver<Value>,
    to_page: mpsc::UnboundedSender<Value>,
    node: tokio::task::JoinHandle<std::io::Result<std::process::Output>>,
}

/// Serves `html`, starts Chromium on `?query` through dc-interop.mjs,
/// and connects to the page's socket.
pub(crate) async fn open_page(html: &'static str, query: &str) -> Page {
    let (port, mut sock_rx) = page_server::serve(html).await;
    let url = format!("http://localhost:{port}/?{query}");
    let node = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("dc-interop.mjs")
            .arg(url)
            .current_dir(browser_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
    });
    let socket = tokio::time::timeout(Duration::from_secs(90), sock_rx.recv())
        .await
        .expect("the page connects within 90 s")
        .unwrap();
    let (ws_tx, mut ws_rx) = socket.split();
    let to_page = page_server::json_sender(ws_tx);
    let (in_tx, from_page) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws_rx.next().await {
            if let Message::Text(text) = msg {
                if let Ok(v) = serde_json::from_str(&text) {
                    let _ = in_tx.send(v);
                }
            }
        }
    });
    Page {
        from_page,
        to_page,
        node,
    }
}

/// Our end of a run with the page.
pub(crate) struct Connected {
    pub pc: PeerConnection,
    pub session: PeerSession,
    /// Tracks the page sends.
    pub tracks: mpsc::UnboundedReceiver<TrackRemote>,
    /// The page's own messages (not signaling).
    pub messages: mpsc::UnboundedReceiver<Value>,
    pub to_page: mpsc::UnboundedSender<Value>,
    pub node: tokio::task::JoinHandle<std::io::Result<std::process::Output>>,
    /// The relay every packet goes through, once our first UDP candidate
    /// started it (with an impairment only).
    pub relay: Arc<Mutex<Option<ImpairedRelay>>>,
}

impl Connected {
    /// Adds `tracks`, waits for the page's `ready` and sends it our offer.
    pub(crate) async fn offer_tracks(&mut self, tracks: &[&TrackLocal]) {
        for track in tracks {
            self.pc.add_track((*track).clone()).await.unwrap();
        }
        message(&mut self.messages, "ready").await;
        self.to_page
            .send(self.session.offer().await.unwrap().to_value())
            .unwrap();
    }
}

/// A PeerConnection on loopback whose signaling with the page runs in a
/// task: descriptions and candidates are applied and answered there,
/// tracks go to `tracks`, the page's own messages to `messages`. With
/// `impairment`, the page learns only a relay in front of our first UDP
/// candidate, and we learn none of the page's (its checks through the
/// relay are peer-reflexive to us).
pub(crate) async fn connect(
    page: Page,
    codecs: Option<Vec<Codec>>,
    impairment: Option<Impairment>,
) -> Connected {
    let mut config = PeerConnectionConfig::default().with_loopback(true);
    config.interfaces = vec!["127.0.0.1".parse().unwrap()];
    if let Some(codecs) = codecs {
        config.rtc.codecs = codecs;
    }
    let pc = PeerConnection::new(config).await.unwrap();
    let session = PeerSession::new(pc.clone());
    let mut events = pc.events().unwrap();
    let (tracks_tx, tracks) = mpsc::unbounded_channel();
    let (messages_tx, messages) = mpsc::unbounded_channel();
    let Page {
        mut from_page,
        to_page,
        node,
    } = page;
    let relay = Arc::new(Mutex::new(None::<ImpairedRelay>));
    let (task_session, out, task_relay) = (session.clone(), to_page.clone(), relay.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                m = from_page.recv() => {
                    let Some(mut m) = m else { break };
                    if impairment.is_some() {
                        if m["type"] == "candidate" {
                            continue;
                        }
                        if let Some(sdp) = m["sdp"].as_str() {
                            let kept: Vec<&str> = sdp
                                .split_inclusive('\n')
                                .filter(|l| !l.starts_with("a=candidate"))
                                .collect();
                            m["sdp"] = Value::from(kept.concat());
                        }
                    }
                    match apply(&task_session, &m).await {
                        Some(Handled::Reply(reply)) => { let _ = out.send(reply.to_value()); }
                        Some(_) => {}
                        None => { let _ = messages_tx.send(m); }
                    }
                }
                e = events.recv() => match e {
                    Some(PeerConnectionEvent::IceCandidate(c)) => {
                        let c = match (impairment, c) {
                            (None, c) => c,
                            (Some(_), None) => None,
                            (Some(imp), Some(mut c)) => {
                                let Some(ours) = impaired_relay::candidate_address(&c.candidate)
                                else { continue };
                                if task_relay.lock().unwrap().is_some() {
                                    continue;
                                }
                                let r = impaired_relay::start(ours, imp).await;
                                c.candidate = impaired_relay::candidate_via(&c.candidate, r.address)
                                    .unwrap();
                                *task_relay.lock().unwrap() = Some(r);
                                Some(c)
                            }
                        };
                        let _ = out.send(PeerSession::candidate(c).to_value());
                    }
                    Some(PeerConnectionEvent::Track(t)) => { let _ = tracks_tx.send(t); }
                    Some(_) => {}
                    None => break,
                },
            }
        }
    });
    Connected {
        pc,
        session,
        tracks,
        messages,
        to_page,
        node,
        relay,
    }
}

/// The next message of the page of `kind`, within 90 s.
pub(crate) async fn message(messages: &mut mpsc::UnboundedReceiver<Value>, kind: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let m = messages.recv().await.expect("the page's socket is open");
            if m["type"] == kind {
                return m;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the page's {kind} within 90 s"))
}

/// What node printed, once it exited (the page's result is in it).
pub(crate) async fn node_output(
    node: tokio::task::JoinHandle<std::io::Result<std::process::Output>>,
) {
    let output = tokio::time::timeout(Duration::from_secs(60), node)
        .await
        .expect("node exits within 60 s of the result")
        .unwrap()
        .expect("node runs");
    println!("{}", String::from_utf8_lossy(&output.stdout));
}

/// Writes a 440 Hz tone (mono, 10 ms at a time) to each of `tracks`
/// until one of them is gone; before negotiation it is dropped.
pub(crate) fn spawn_tone(tracks: Vec<TrackLocal>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tone = Tone::new(440.0, 48_000, 1);
        let mut pcm = vec![0i16; 480];
        let mut clock = tokio::time::interval(Duration::from_millis(10));
        loop {
            clock.tick().await;
            tone.fill(&mut pcm);
            for track in &tracks {
                match track.write_audio(&pcm, 1).await {
                    Ok(()) | Err(MediaError::NotNegotiated) => {}
                    Err(_) => return,
                }
            }
        }
    })
}

/// Our codecs with RED (RFC 2198) of Opus first, as Chromium offers it.
pub(crate) fn codecs_with_red() -> Vec<Codec> {
    let red = Codec::new(63, "red", 48_000, Some(2)).with_fmtp("111/111");
    [vec![red], Codec::defaults()].concat()
}

/// Our audio track playing into the jitter page (media-bench.html
/// `?case=jitter`, which plays it and reports its inbound-rtp audio
/// statistics), every packet through an impaired relay.
pub(crate) struct AudioToPage {
    pub pc: PeerConnection,
    /// The track the page plays (the tone goes to it).
    pub track: TrackLocal,
    pub relay: Arc<Mutex<Option<ImpairedRelay>>>,
    pub page: PageEnd,
}

/// The page's side of a run once connected: its messages, and node.
pub(crate) struct PageEnd {
    messages: mpsc::UnboundedReceiver<Value>,
    to_page: mpsc::UnboundedSender<Value>,
    node: tokio::task::JoinHandle<std::io::Result<std::process::Output>>,
}

/// Opens the jitter page (`html`, media-bench.html) and offers it an
/// audio track through `impairment`, with `codecs` (ours by default).
pub(crate) async fn audio_to_page(
    html: &'static str,
    codecs: Option<Vec<Codec>>,
    impairment: Impairment,
) -> AudioToPage {
    let page = open_page(html, "case=jitter").await;
    let mut connected = connect(page, codecs, Some(impairment)).await;
    let track = TrackLocal::new(realtimer::MediaKind::Audio, "rust", "tone");
    connected.offer_tracks(&[&track]).await;
    let Connected {
        pc,
        messages,
        to_page,
        node,
        relay,
        ..
    } = connected;
    AudioToPage {
        pc,
        track,
        relay,
        page: PageEnd {
            messages,
            to_page,
            node,
        },
    }
}

impl PageEnd {
    /// Ends the jitter page's run: its inbound-rtp audio statistics
    /// (`inbound`) and codec, taken while `tone` still plays; then checks
    /// that nothing on the page failed.
    pub(crate) async fn finish_jitter(mut self, tone: tokio::task::JoinHandle<()>) -> Value {
        self.to_page
            .send(serde_json::json!({"type": "done"}))
            .unwrap();
        let stats = message(&mut self.messages, "stats").await;
        tone.abort();
        let result = message(&mut self.messages, "result").await;
        node_output(self.node).await;
        assert_eq!(
            result["failed"],
            serde_json::json!([]),
            "the page: {result}"
        );
        stats
    }
}
