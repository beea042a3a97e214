//! The forwarding unit with headless Chromium (fake camera and
//! microphone; `tests/browser/sfu.mjs`): four tabs of the group-call page
//! in one room, and the broadcast page publishing by WHIP to a Rust WHEP
//! viewer.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use realtimer::{
    MediaKind, PeerConnection, PeerConnectionEvent, PeerConnectionState, SessionDescription,
    TrackLocal,
};
use realtimer_server::sfu::SfuSettings;
use realtimer_server::ServerConfig;
use realtimer_signaling::whip::WhipClient;
use realtimer_test_support::server::start_server;
use realtimer_test_support::{node, pair};
use tokio::time::timeout;

fn sfu_server() -> std::net::SocketAddr {
    start_server(ServerConfig {
        sfu: Some(SfuSettings::default()),
        ..ServerConfig::default()
    })
}

/// A room name of this run.
fn room(case: &str) -> String {
    format!("{case}-{}", std::process::id())
}

#[test]
fn four_tabs_decode_each_other_and_one_leaves() {
    let server = sfu_server();
    // localhost, not 127.0.0.1: a secure context, so getUserMedia works.
    let url = format!("http://localhost:{}/", server.port());
    let out = node::run_node("sfu.mjs", &[&url, &room("group4"), "group4"]);
    assert!(!out.contains("FAIL"), "{out}");
}

/// A 440 Hz tone at -12 dBFS, 48 kHz mono 16-bit WAV, `seconds` long
/// (Chromium loops it as its fake microphone).
fn tone_wav(seconds: u32) -> Vec<u8> {
    let rate = 48_000u32;
    let samples = rate * seconds;
    let mut wav = Vec::with_capacity(44 + 2 * samples as usize);
    let data_len = 2 * samples;
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(2 * rate).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    let amplitude = f64::from(i16::MAX) * 10f64.powf(-12.0 / 20.0);
    for n in 0..samples {
        let phase = 2.0 * std::f64::consts::PI * 440.0 * f64::from(n) / f64::from(rate);
        wav.extend_from_slice(&((amplitude * phase.sin()) as i16).to_le_bytes());
    }
    wav
}

/// Two tabs whose fake microphones play a tone: the one whose track is
/// enabled is announced speaking (RFC 6464 levels read by the unit) to
/// both, then the other once they swap.
#[test]
fn the_tab_that_talks_is_announced_speaking() {
    let server = sfu_server();
    let url = format!("http://localhost:{}/", server.port());
    let dir = std::env::temp_dir().join(format!("realtimer-speaker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tone = dir.join("tone.wav");
    std::fs::write(&tone, tone_wav(2)).unwrap();
    let out = node::run_node_with_env(
        "sfu.mjs",
        &[&url, &room("speaker"), "speaker"],
        &[("TONE", tone.to_str().unwrap())],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.contains("FAIL"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chromium_whip_publisher_reaches_a_rust_whep_viewer() {
    let server = sfu_server();
    let url = format!("http://localhost:{}/", server.port());
    let room = room("whip");
    let mut publisher = Command::new("node")
        .args(["sfu.mjs", &url, &room, "whip", "60"])
        .current_dir(node::browser_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run node (scripts/test installs it)");
    let stdout = publisher.stdout.take().unwrap();
    // The page prints "publishing" once its video goes out.
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line == "publishing" || line.contains(" failed");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    assert_eq!(
        lines.last().map(String::as_str),
        Some("publishing"),
        "{lines:?}"
    );

    // A Rust viewer: its offer's video section receives the page's camera.
    let viewer = PeerConnection::new(pair::config(None)).await.unwrap();
    viewer
        .add_track(TrackLocal::new(MediaKind::Video, "viewer", "unused"))
        .await
        .unwrap();
    let mut events = viewer.events().unwrap();
    let offer = viewer.create_offer().await.unwrap();
    viewer.set_local_description(offer.clone()).await.unwrap();
    let mut whep = WhipClient::new(&format!("http://{server}/whep/{room}"), None).unwrap();
    let answer = whep.offer(&offer.sdp).await.unwrap();
    viewer
        .set_remote_description(SessionDescription::answer(answer))
        .await
        .unwrap();
    let track = timeout(Duration::from_secs(60), async {
        loop {
            match events.recv().await {
                Some(PeerConnectionEvent::IceCandidate(Some(c))) => {
                    let mid = c.sdp_mid.clone().unwrap_or_else(|| "0".into());
                    whep.trickle(&mid, &[c.candidate]).await.unwrap();
                }
                Some(PeerConnectionEvent::Track(t)) => return t,
                Some(_) => {}
                None => panic!("the viewer's events ended"),
            }
        }
    })
    .await
    .expect("the page's video reaches the viewer");
    timeout(
        Duration::from_secs(60),
        viewer.wait_for_connection_state(PeerConnectionState::Connected),
    )
    .await
    .expect("the viewer connects");
    let mut packets = 0;
    timeout(Duration::from_secs(60), async {
        while packets < 100 {
            track.read_rtp().await.expect("RTP");
            packets += 1;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("100 RTP packets of the page's video; got {packets}"));
    whep.delete().await.unwrap();
    viewer.close().await;
    // Closing its stdin ends the page's publishing; the script closes
    // the browser and exits.
    drop(publisher.stdin.take());
    let _ = publisher.wait();
}
