//! Interop with native peers over tests/peers/js's JSON signaling relay:
//! libwebrtc (Node's @roamhq/wrtc) and werift run peer-wrtc.js's 13 cases
//! against our PeerConnection echoing, and we run the same cases against
//! them echoing; Pion v3 (tests/peers/pion, Go) echoes while we test. Each
//! round runs in a loopback-only network namespace (run-netns.sh): the
//! outer test copies the peer folder to a temp dir, `npm ci`s it (builds
//! the Go peer) and runs relay + the other peer + this test binary's
//! `echo_peer_for_libwebrtc` or `tester_peer_for_libwebrtc` inside it.
//! The `*_relayed` rounds also start `realtimer serve` in the namespace
//! and make the other peer relay-only through its TURN server; GStreamer's
//! rounds carry audio and video both ways.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtimer::{
    ChannelData, DataChannel, DataChannelInit, MediaKind, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent, PeerConnectionState, RtpPacket, TrackLocal, TrackRemote,
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
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("signaling at {url:?}: {e}"));
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

/// A tester's end: says bye to the peer, gives the signaling task 200 ms
/// to end, stops it if it has not, and closes `pc`; a panic in the task
/// (before it was stopped) fails the test as `fail_on_panic` does.
async fn say_bye(
    pc: &PeerConnection,
    tx: &mpsc::UnboundedSender<Value>,
    task: tokio::task::JoinHandle<()>,
) {
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
}

/// What the ignored entry points rely on: a signaling task that panicked
/// makes `fail_on_panic` panic with the task's message, so the entry
/// point's process fails (and nextest prints it) instead of saying `ok`.
#[tokio::test]
async fn a_panicking_signaling_task_fails_the_entry_point() {
    let ended = tokio::spawn(async { panic!("the signaling task broke") }).await;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fail_on_panic(ended)))
        .expect_err("it fails");
    assert_eq!(
        caught.downcast_ref::<&str>(),
        Some(&"the signaling task broke")
    );
    let ended = tokio::spawn(async {}).await;
    fail_on_panic(ended);
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
    let relayed = check_relayed(&pc).await;
    say_bye(&pc, &tx, task).await;
    assert_eq!(failed, 0);
    assert!(relayed, "the peer's packets did not come through the relay");
}

/// When REALTIMER_WRTC_RELAY_PORTS (`first-last`) is set, the peer is
/// relay-only through `realtimer serve`'s TURN, whose relayed addresses
/// take ports in that range (outside the kernel's ephemeral 32768-60999,
/// where host candidates are): the selected pair's remote candidate must
/// be on one of them (type `relay`, or `prflx` when the peer's check came
/// before its candidate). Prints `RELAYED type address:port`; true when
/// there is nothing to check.
async fn check_relayed(pc: &PeerConnection) -> bool {
    let Ok(range) = std::env::var("REALTIMER_WRTC_RELAY_PORTS") else {
        return true;
    };
    let (first, last) = range.split_once('-').expect("first-last");
    let ports = first.parse::<u16>().unwrap()..=last.parse::<u16>().unwrap();
    let stats = pc.get_stats().await.unwrap();
    let Some(pair) = stats.selected_candidate_pair() else {
        println!("RELAYED: no selected pair");
        return false;
    };
    let remote = stats.candidate(&pair.remote_candidate_id).unwrap();
    println!(
        "RELAYED {} {}:{} ({} bytes received on the pair)",
        remote.candidate_type, remote.address, remote.port, pair.bytes_received
    );
    ports.contains(&remote.port) && pair.bytes_received > 0
}

/// A PeerConnection on IPv4 loopback with an audio and a video track of
/// ours (stream `stream`), added before any offer or answer.
async fn media_peer(stream: &str) -> (PeerConnection, [TrackLocal; 2]) {
    let mut config = PeerConnectionConfig::default().with_loopback(true);
    config.interfaces = vec!["127.0.0.1".parse().unwrap()];
    let pc = PeerConnection::new(config).await.unwrap();
    let locals = [MediaKind::Audio, MediaKind::Video]
        .map(|kind| TrackLocal::new(kind, stream, &format!("{stream}-{kind}")));
    for local in &locals {
        pc.add_track(local.clone()).await.unwrap();
    }
    (pc, locals)
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
    let (pc, locals) = media_peer("echo").await;
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

/// What a media tester sent on one track and what came back on the
/// peer's track of the same kind.
struct Echoed {
    kind: MediaKind,
    sent: Vec<bytes::Bytes>,
    got: Vec<bytes::Bytes>,
}

impl Echoed {
    /// Prints the check's line; passes when every frame that came back is
    /// one we sent, byte for byte, and at most `missing` of ours did not.
    fn check(&self, what: &str, missing: usize) -> bool {
        let exact = self.got.iter().filter(|g| self.sent.contains(g)).count();
        let ok = exact == self.got.len() && exact + missing >= self.sent.len();
        println!(
            "{} {}: {} of {} {what} came back, {exact} byte-exact",
            if ok { "PASS" } else { "FAIL" },
            self.kind,
            self.got.len(),
            self.sent.len()
        );
        ok
    }
}

/// The first remote track of each kind (audio, video) once `pc` is
/// connected, or a panic after 60 s.
async fn connected_with_tracks(
    pc: &PeerConnection,
    remotes: &mut mpsc::UnboundedReceiver<TrackRemote>,
) -> [TrackRemote; 2] {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut audio, mut video) = (None, None);
    while audio.is_none() || video.is_none() {
        match tokio::time::timeout_at(deadline, remotes.recv()).await {
            Ok(Some(r)) if r.kind() == MediaKind::Audio => audio = audio.or(Some(r)),
            Ok(Some(r)) => video = video.or(Some(r)),
            _ => panic!("the peer's tracks never came"),
        }
    }
    while pc.connection_state() != PeerConnectionState::Connected {
        assert!(Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    [audio.unwrap(), video.unwrap()]
}

/// Our media tester against a peer that echoes RTP (Pion's `--media`,
/// werift's `--mode media-echo`):
/// an Opus and a VP8 track of ours send numbered packets for 3 s (audio
/// every 20 ms, video 30 frames a second of 3 packets, the last with the
/// marker); the remote track of each kind must bring back, byte-exact and
/// under our negotiated payload type, all but a few of them (the first ones
/// may reach the peer before it reads). Prints one line per check and
/// `N passed, N failed`; runs only inside the namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by rust_sends_media_to_*_echo inside a network namespace"]
async fn media_tester_peer() {
    let Some((url, offerer)) = env_peer() else {
        return;
    };
    let (pc, locals) = media_peer("tester").await;
    let (remote_tx, mut remote_rx) = mpsc::unbounded_channel();
    let (tx, task) = signaling(
        &pc,
        &url,
        offerer,
        |_| {},
        move |remote| {
            let _ = remote_tx.send(remote);
        },
    )
    .await;
    let remotes = connected_with_tracks(&pc, &mut remote_rx).await;
    // Our sender and the peer's track of a kind share the section's
    // negotiated codecs.
    let payload_type = |kind: MediaKind, name: &str| {
        remotes
            .iter()
            .find(|r| r.kind() == kind)
            .and_then(|r| {
                r.info()
                    .codecs
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(name))
            })
            .unwrap_or_else(|| panic!("no {name} negotiated"))
            .payload_type
    };
    let kinds = [
        (MediaKind::Audio, payload_type(MediaKind::Audio, "opus")),
        (MediaKind::Video, payload_type(MediaKind::Video, "VP8")),
    ];
    let readers: Vec<_> = remotes
        .into_iter()
        .map(|remote| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Ok(Some(p)) =
                    tokio::time::timeout(Duration::from_secs(2), remote.read_rtp()).await
                {
                    got.push(p);
                }
                (remote.kind(), got)
            })
        })
        .collect();
    let numbered = |kind: MediaKind, i: u32, len: usize| {
        let mut payload = vec![u8::from(kind == MediaKind::Video)];
        payload.extend_from_slice(&i.to_be_bytes());
        payload.extend((0..len).map(|j| (j as u32 * 31 + i) as u8));
        bytes::Bytes::from(payload)
    };
    let mut sent = [Vec::new(), Vec::new()];
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for step in 0u32..300 {
        tick.tick().await;
        if step % 2 == 0 {
            let i = step / 2;
            let payload = numbered(MediaKind::Audio, i, 120);
            let packet = RtpPacket {
                payload_type: kinds[0].1,
                sequence_number: i as u16,
                timestamp: i * 960,
                marker: i == 0,
                ssrc: 0,
                payload: payload.clone(),
            };
            locals[0].write_rtp(packet).await.unwrap();
            sent[0].push(payload);
        }
        if step % 3 == 0 {
            let frame = step / 3;
            for part in 0..3 {
                let i = frame * 3 + part;
                let payload = numbered(MediaKind::Video, i, 900);
                let packet = RtpPacket {
                    payload_type: kinds[1].1,
                    sequence_number: i as u16,
                    timestamp: frame * 3000,
                    marker: part == 2,
                    ssrc: 0,
                    payload: payload.clone(),
                };
                locals[1].write_rtp(packet).await.unwrap();
                sent[1].push(payload);
            }
        }
    }
    let mut passed = 0;
    for reader in readers {
        let (kind, got) = reader.await.unwrap();
        let slot = usize::from(kind == MediaKind::Video);
        let want_pt = kinds[slot].1;
        let other_types = got.iter().filter(|p| p.payload_type != want_pt).count();
        let echoed = Echoed {
            kind,
            sent: std::mem::take(&mut sent[slot]),
            got: got.into_iter().map(|p| p.payload).collect(),
        };
        let what = format!("packets ({other_types} not of payload type {want_pt})");
        if echoed.check(&what, 10) && other_types == 0 {
            passed += 1;
        }
    }
    let failed = 2 - passed;
    println!("{passed} passed, {failed} failed");
    say_bye(&pc, &tx, task).await;
    assert_eq!((passed, failed), (2, 0));
}

/// Our sample tester against a peer that answers our offer of Opus and
/// VP8 and sends back, payloaded anew, the frames it receives (GStreamer's
/// `--role answerer`): 4 s of our own encoder's output (the test pattern
/// in VP8 at 320x240, 30 fps; a 440 Hz tone in 20 ms Opus packets) go out
/// through `write_sample`; every frame and packet `read_sample` gives back
/// must be one we sent, byte for byte, and all but a few of ours must come
/// back. Prints one line per check and `N passed, N failed`; runs only
/// inside the namespace.
#[cfg(feature = "codecs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by gstreamer_answers_our_vp8_and_opus_and_sends_them_back inside a network namespace"]
async fn sample_tester_peer() {
    use realtimer::codecs::opus::{OpusEncoder, OpusEncoderConfig};
    use realtimer::codecs::source::{TestPattern, Tone};
    use realtimer::codecs::{video_encoder, VideoCodec, VideoEncoderConfig};
    use realtimer::Sample;

    let Some((url, offerer)) = env_peer() else {
        return;
    };
    let (pc, [audio, video]) = media_peer("tester").await;
    let (remote_tx, mut remote_rx) = mpsc::unbounded_channel();
    let (tx, task) = signaling(
        &pc,
        &url,
        offerer,
        |_| {},
        move |remote| {
            let _ = remote_tx.send(remote);
        },
    )
    .await;
    let remotes = connected_with_tracks(&pc, &mut remote_rx).await;
    for (local, name) in [(&audio, "opus"), (&video, "VP8")] {
        let codec = local.codec().expect("a codec negotiated").name;
        assert!(
            codec.eq_ignore_ascii_case(name),
            "{name} wanted, {codec} negotiated"
        );
    }
    // Read until 3 s pass without a frame (30 s for the first).
    let readers = remotes.map(|remote| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            let mut wait = Duration::from_secs(30);
            while let Ok(Some(f)) = tokio::time::timeout(wait, remote.read_sample()).await {
                got.push(f.data);
                wait = Duration::from_secs(3);
            }
            got
        })
    });
    let mut opus = OpusEncoder::new(&OpusEncoderConfig {
        channels: 2,
        bitrate_bps: 64_000,
        frame_ms: 20,
        inband_fec: false,
        expected_loss_percent: 0,
        dtx: false,
    })
    .unwrap();
    let mut tone = Tone::new(440.0, 48_000, 2);
    let mut pcm = vec![0i16; opus.frame_samples() * 2];
    let mut vp8 = video_encoder(VideoCodec::Vp8, &VideoEncoderConfig::new(320, 240)).unwrap();
    let mut pattern = TestPattern::new(320, 240);
    let (mut sent_audio, mut sent_video) = (Vec::new(), Vec::new());
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for step in 0u64..400 {
        tick.tick().await;
        if step % 2 == 0 {
            tone.fill(&mut pcm);
            let packet = bytes::Bytes::from(opus.encode(&pcm).unwrap());
            audio
                .write_sample(Sample::new(packet.clone(), Duration::from_millis(20)))
                .await
                .unwrap();
            sent_audio.push(packet);
        }
        if step % 3 == 0 {
            if video.take_keyframe_request() {
                vp8.request_keyframe();
            }
            let frame = pattern.next_frame();
            if let Some(encoded) = vp8.encode(&frame, step / 3 * 3000).unwrap() {
                let data = bytes::Bytes::from(encoded.data);
                video
                    .write_sample(Sample::new(data.clone(), Duration::from_millis(30)))
                    .await
                    .unwrap();
                sent_video.push(data);
            }
        }
    }
    let [got_audio, got_video] = readers;
    let echoed = [
        Echoed {
            kind: MediaKind::Audio,
            sent: sent_audio,
            got: got_audio.await.unwrap(),
        },
        Echoed {
            kind: MediaKind::Video,
            sent: sent_video,
            got: got_video.await.unwrap(),
        },
    ];
    // The first packets may reach the peer before its branch is linked.
    let passed = [
        echoed[0].check("Opus packets", 10),
        echoed[1].check("VP8 frames", 5),
    ]
    .iter()
    .filter(|ok| **ok)
    .count();
    println!("{passed} passed, {} failed", 2 - passed);
    say_bye(&pc, &tx, task).await;
    assert_eq!(passed, 2);
}

/// GStreamer's webrtcbin (tests/peers/gstreamer/peer.py) offers VP8 video
/// and Opus audio (its audio section `bundle-only` with port 0, RFC 8843
/// §6); our media echo peer answers and sends both back; the recording
/// webrtcbin makes of what it receives from us must decode whole with
/// ffmpeg and hold a VP8 and an Opus stream of a few seconds.
#[test]
fn gstreamer_sends_vp8_and_opus_and_records_our_echo() {
    let Some(output) = gstreamer_round(
        "gstreamer-media",
        "--seconds 6",
        ("media_echo_peer", "answerer"),
        Side::Gstreamer,
    ) else {
        return;
    };
    for line in ["FOREGROUND_EXIT 0", "BACKGROUND_EXIT 0"] {
        assert!(output.lines().any(|l| l == line), "no {line:?}");
    }
    let duration: f64 = output
        .lines()
        .find_map(|l| l.strip_prefix("format|duration="))
        .and_then(|d| d.trim().parse().ok())
        .expect("a duration");
    assert!(duration > 2.0, "recorded {duration} s");
    assert_recording(&output, 30, 50);
}

/// The other direction: we offer Opus and VP8 of our own encoders
/// (`sample_tester_peer`, through `write_sample`), webrtcbin answers (its
/// answer goes to `crates/sdp/tests/fixtures/gstreamer/` when
/// REALTIMER_INTEROP_SDP_DIR is set), records what it receives and sends
/// the frames back payloaded anew; every frame we read back must be one of
/// ours byte for byte, and the recording must decode with ffmpeg, nearly
/// every frame we sent in it (4 s: 200 Opus packets, about 133 VP8 frames).
#[cfg(feature = "codecs")]
#[test]
fn gstreamer_answers_our_vp8_and_opus_and_sends_them_back() {
    let answer = std::env::var("REALTIMER_INTEROP_SDP_DIR")
        .map(|dir| format!(" --answer-out {dir}/gstreamer-answer-audio-video.sdp"))
        .unwrap_or_default();
    let Some(output) = gstreamer_round(
        "gstreamer-answer",
        &format!("--role answerer --seconds 30{answer}"),
        ("sample_tester_peer", "offerer"),
        Side::Rust,
    ) else {
        return;
    };
    for line in [
        "FOREGROUND_EXIT 0",
        "BACKGROUND_EXIT 0",
        "2 passed, 0 failed",
    ] {
        assert!(output.lines().any(|l| l == line), "no {line:?}");
    }
    assert_recording(&output, 100, 150);
}

/// Who runs in the foreground of a GStreamer round (its exit ends it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Gstreamer,
    Rust,
}

/// One round with GStreamer's peer (`gst_args` added to its command line)
/// and this binary's ignored `rust` test in `role`, in a namespace; then
/// ffprobe counts the frames of the recording webrtcbin made and ffmpeg
/// decodes it. Returns what the round printed; `None` when namespaces are
/// not available. libnice gathers no loopback address, so the namespace
/// gets a veth pair whose address (10.99.0.1) it uses; nothing leaves the
/// namespace.
fn gstreamer_round(
    tag: &str,
    gst_args: &str,
    (rust, role): (&str, &str),
    foreground: Side,
) -> Option<String> {
    let dir = prepare(tag, Peer::Libwebrtc)?;
    let peer = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/peers/gstreamer/peer.py"
    );
    let exe = std::env::current_exe().unwrap();
    let dump = sdp_dump(tag);
    let gst = format!(
        "/usr/bin/python3 {peer} --url $URL --out $PWD/recording.mkv --timeout 90 {gst_args}"
    );
    let ours = format!(
        "REALTIMER_WRTC_URL=$URL REALTIMER_WRTC_ROLE={role} {} --exact {rust} --ignored --nocapture",
        exe.display()
    );
    let (background, foreground) = match foreground {
        Side::Gstreamer => (ours, gst),
        Side::Rust => (gst, ours),
    };
    let script = format!(
        r#"set -u
{VETH_SETUP}
node relay.js --port 0 --exit-when-empty --timeout 120{dump} > relay.out 2>&1 &
{RELAY_URL}
{background} > other.out 2>&1 &
OTHER=$!
{foreground} 2>&1
echo "FOREGROUND_EXIT $?"
for i in $(seq 100); do kill -0 $OTHER 2>/dev/null || break; sleep 0.1; done
kill $OTHER 2>/dev/null; wait $OTHER; echo "BACKGROUND_EXIT $?"
echo "--- background peer's output:"; cat other.out
ffprobe -v error -count_frames -show_entries stream=codec_name,nb_read_frames:format=duration -of compact recording.mkv
ffmpeg -v error -i recording.mkv -f null - && echo DECODED"#
    );
    let out = std::process::Command::new("./run-netns.sh")
        .args(["bash", "-c", &script])
        .current_dir(&dir.js.0)
        .output()
        .expect("run-netns.sh runs");
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{output}{}", String::from_utf8_lossy(&out.stderr));
    Some(output)
}

/// The recording decoded whole, with at least `video` VP8 frames and
/// `audio` Opus packets (ffprobe's `stream|codec_name=..|nb_read_frames=..`).
fn assert_recording(output: &str, video: u64, audio: u64) {
    assert!(output.lines().any(|l| l == "DECODED"), "not decoded");
    for (codec, least) in [("vp8", video), ("opus", audio)] {
        let frames: u64 = output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("stream|codec_name={codec}|nb_read_frames=")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("the recording has no {codec}"));
        assert!(
            frames >= least,
            "{frames} {codec} frames recorded, {least} wanted"
        );
    }
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
    /// aiortc (Python), tests/peers/aiortc: echoes only.
    Aiortc,
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
            Peer::Aiortc => None,
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
                let media = match mode {
                    "echo" => "",
                    "media-echo" => " --media",
                    _ => panic!("the Pion peer only echoes"),
                };
                format!(
                    "{} --url $URL --role {role} --timeout 150{media}",
                    pion.display()
                )
            }
            Peer::Aiortc => {
                assert_eq!(mode, "echo", "the aiortc peer only echoes");
                format!("python3 {AIORTC_PEER} --url $URL --role {role} --timeout 150")
            }
        }
    }

    /// Shell lines that prepare the namespace for this peer: aiortc (as
    /// libnice) gathers no loopback address, so it gets a veth pair whose
    /// address (10.99.0.1) it uses; nothing leaves the namespace.
    fn namespace_setup(self) -> &'static str {
        match self {
            Peer::Aiortc => VETH_SETUP,
            _ => "",
        }
    }
}

/// The aiortc peer (run with the `python3` on PATH, which has aiortc).
const AIORTC_PEER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/peers/aiortc/peer.py"
);

/// relay.js's `--dump` argument when REALTIMER_INTEROP_SDP_DIR is set: the
/// offers and answers of the round go to that folder's `tag` subfolder
/// (how `crates/sdp/tests/fixtures/` was captured).
fn sdp_dump(tag: &str) -> String {
    std::env::var("REALTIMER_INTEROP_SDP_DIR")
        .map(|dir| format!(" --dump {dir}/{}", tag.to_lowercase()))
        .unwrap_or_default()
}

/// Shell lines that wait for the relay started just before them to print
/// where it listens and set `URL` to its room. Node may take many seconds
/// to start on a loaded machine: a fixed 10 s wait once handed the peers
/// `/room`, and ours panicked on `Url(NoHostName)`. The wait is now 120 s
/// and, if the relay never says, the round stops with relay.out.
const RELAY_URL: &str = r#"for i in $(seq 1200); do grep -q '^RELAY ws://.*:[0-9][0-9]*$' relay.out && break; sleep 0.1; done
URL=$(sed -n 's/^RELAY \(ws:.*\)$/\1/p' relay.out)
if [ -z "$URL" ]; then echo "the relay never said where it listens:"; cat relay.out; exit 1; fi
URL=$URL/room"#;

/// A veth pair with 10.99.0.1 for peers that gather no loopback address.
const VETH_SETUP: &str =
    "ip link add gst0 type veth peer name gst1; ip addr add 10.99.0.1/24 dev gst0
ip link set gst0 up; ip link set gst1 up";

/// Which side runs peer-wrtc.js's cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tester {
    Other,
    Rust,
    /// Our media tester (`media_tester_peer`) against the peer's media echo.
    RustMedia,
    /// We run the cases; the peer echoes relay-only through `realtimer
    /// serve`'s TURN (the iceServers of its GET /api/ice-servers), and the
    /// selected pair must be on a relayed address (`check_relayed`).
    RustRelayed,
}

/// The ports `realtimer serve` takes relayed addresses on in a relayed
/// round: outside the kernel's ephemeral range (32768-60999), so no host
/// candidate has one.
const RELAY_PORTS: &str = "20000-20999";

/// Shell lines that start `realtimer serve` (STUN/TURN on loopback,
/// relays to loopback allowed, relayed ports in RELAY_PORTS) and set
/// `ICE` to the iceServers list of its GET /api/ice-servers (TURN REST
/// credentials for this run) as JSON; the round stops with serve's output
/// when it does not come up.
fn serve_turn() -> String {
    let binary = realtimer_test_support::serve::realtimer_binary();
    format!(
        r#"REALTIMER_LOG=info {} serve --listen 127.0.0.1:0 --stun-listen 127.0.0.1:0 --relay-ports {RELAY_PORTS} --relay-allow 127.0.0.1/8 > serve.out 2>&1 &
for i in $(seq 1200); do grep -q 'HTTP server listening on ' serve.out && break; sleep 0.1; done
BASE=$(sed -n 's/.*HTTP server listening on \(http[^ ]*\).*/\1/p' serve.out | head -1)
ICE=$(python3 -c 'import json, sys, urllib.request; print(json.dumps(json.load(urllib.request.urlopen(sys.argv[1] + "/api/ice-servers"))["iceServers"]))' "$BASE")
if [ -z "$ICE" ]; then echo "realtimer serve gave no ICE servers:"; cat serve.out; exit 1; fi
echo "ICE $ICE""#,
        binary.display()
    )
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

/// A round's foreground peer is stopped after this long (exit 124), so a
/// round that hangs still prints both peers' output before nextest's
/// limit for the whole test (two rounds) ends it silently. A round takes
/// 3–9 s on a quiet machine.
const ROUND_LIMIT_S: u32 = 75;

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
        Tester::RustMedia => (
            format!(
                "{} > other.out 2>&1",
                peer.command("media-echo", other_role, &dir.pion)
            ),
            format!("{} 2>&1", rust("media_tester_peer")),
        ),
        Tester::RustRelayed => (
            format!(
                "{} --ice-servers \"$ICE\" --relay > other.out 2>&1",
                peer.command("echo", other_role, &dir.pion)
            ),
            format!(
                "REALTIMER_WRTC_RELAY_PORTS={RELAY_PORTS} {} 2>&1",
                rust("tester_peer_for_libwebrtc")
            ),
        ),
    };
    let mut setup = peer.namespace_setup().to_owned();
    if tester == Tester::RustRelayed {
        setup = format!("{setup}\n{}", serve_turn());
    }
    let dump = sdp_dump(&format!("{peer:?}-{tester:?}-rust-{rust_role}"));
    // Single-quoted for `bash -c`: the command sees the exported URL and ICE.
    let foreground = format!("'{}'", foreground.replace('\'', r"'\''"));
    let script = format!(
        r#"set -u
{setup}
node relay.js --port 0 --exit-when-empty --timeout 180{dump} > relay.out 2>&1 &
{RELAY_URL}
{background} &
OTHER=$!
export URL ICE="${{ICE:-}}"
timeout --kill-after=5 {ROUND_LIMIT_S} bash -c {foreground} 2>&1
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
        Tester::Rust | Tester::RustMedia | Tester::RustRelayed => "FOREGROUND_EXIT 0",
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
    let want = match tester {
        Tester::RustMedia => 2,
        _ => peer.cases().map_or(13, |c| c.split(',').count()),
    };
    for (role, passed, failed, _) in report {
        assert_eq!((passed, failed), (want, 0), "rust as {role}");
    }
}

/// libwebrtc runs the 13 cases; we echo (FULL=1 only: the reverse runs
/// by default).
#[test]
fn libwebrtc_tests_rust_echo() {
    if !realtimer_test_support::full_matrix("libwebrtc_tests_rust_echo") {
        return;
    }
    both_roles(Peer::Libwebrtc, Tester::Other);
}

/// We run the same 13 cases; libwebrtc echoes (`--mode echo`).
#[test]
fn rust_tests_libwebrtc_echo() {
    both_roles(Peer::Libwebrtc, Tester::Rust);
}

/// werift runs the cases it can pass; we echo (FULL=1 only: the reverse
/// runs by default).
#[test]
fn werift_tests_rust_echo() {
    if !realtimer_test_support::full_matrix("werift_tests_rust_echo") {
        return;
    }
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

/// We run all 13 cases; aiortc echoes. aiortc comes from pip: when
/// `scripts/test` could not install it (no network) it says so in
/// REALTIMER_SKIP_AIORTC and this test skips loudly; otherwise a missing
/// aiortc fails it.
#[test]
fn rust_tests_aiortc_echo() {
    if aiortc_installed() {
        both_roles(Peer::Aiortc, Tester::Rust);
    }
}

/// The TURN cell of aiortc 1.16: as libwebrtc's, all 13 cases.
#[test]
fn rust_tests_aiortc_echo_relayed() {
    if aiortc_installed() {
        both_roles(Peer::Aiortc, Tester::RustRelayed);
    }
}

/// False, with a loud line, when `scripts/test` could not install aiortc
/// (it says why in REALTIMER_SKIP_AIORTC).
fn aiortc_installed() -> bool {
    if let Ok(why) = std::env::var("REALTIMER_SKIP_AIORTC") {
        println!("!!! SKIPPED: {why} !!!");
        return false;
    }
    true
}

/// Audio and video with Pion: our Opus and VP8 tracks' RTP comes back
/// through Pion's own tracks (`--media`), both roles.
#[test]
fn rust_sends_media_to_pion_echo() {
    both_roles(Peer::Pion, Tester::RustMedia);
}

/// The TURN cell of libwebrtc: it echoes relay-only through `realtimer
/// serve`'s TURN (UDP and TCP URLs offered), we run the 13 cases on the
/// relayed pair.
#[test]
fn rust_tests_libwebrtc_echo_relayed() {
    both_roles(Peer::Libwebrtc, Tester::RustRelayed);
}

/// The TURN cell of Pion v3.1.56: as libwebrtc's, its 11 cases.
#[test]
fn rust_tests_pion_echo_relayed() {
    both_roles(Peer::Pion, Tester::RustRelayed);
}

/// The TURN cell of werift 0.25.2: as libwebrtc's, its 8 cases.
#[test]
fn rust_tests_werift_echo_relayed() {
    both_roles(Peer::Werift, Tester::RustRelayed);
}

/// Audio and video with werift: our Opus and VP8 tracks' RTP comes back
/// through werift's senders of the same transceivers (peer-wrtc.js
/// `--mode media-echo`), both roles.
#[test]
fn rust_sends_media_to_werift_echo() {
    both_roles(Peer::Werift, Tester::RustMedia);
}
