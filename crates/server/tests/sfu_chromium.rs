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
