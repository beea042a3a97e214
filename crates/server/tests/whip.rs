//! WHIP and WHEP on `serve`'s forwarding unit: a Rust publisher's video
//! reaches a Rust viewer through a room; every route refuses what RFC
//! 9725 says it must.

use std::time::Duration;

use bytes::Bytes;
use realtimer::{
    MediaKind, PeerConnection, PeerConnectionEvent, PeerConnectionState, RtpPacket,
    SessionDescription, TrackLocal,
};
use realtimer_server::sfu::SfuSettings;
use realtimer_server::ServerConfig;
use realtimer_signaling::whip::{WhipClient, WhipResponse};
use realtimer_test_support::pair;
use realtimer_test_support::serve;
use realtimer_test_support::server::start_server;
use tokio::time::timeout;

fn sfu_server(token: Option<&str>) -> std::net::SocketAddr {
    start_server(ServerConfig {
        sfu: Some(SfuSettings {
            token: token.map(str::to_owned),
            ..SfuSettings::default()
        }),
        ..ServerConfig::default()
    })
}

/// A connection with one video track that offers to `url` by WHIP or
/// WHEP and trickles its candidates there.
async fn connect(url: &str, track: &TrackLocal) -> (PeerConnection, WhipClient) {
    let pc = PeerConnection::new(pair::config(None)).await.unwrap();
    pc.add_track(track.clone()).await.unwrap();
    let offer = pc.create_offer().await.unwrap();
    pc.set_local_description(offer.clone()).await.unwrap();
    let mut client = WhipClient::new(url, None).unwrap();
    let answer = client.offer(&offer.sdp).await.unwrap();
    pc.set_remote_description(SessionDescription::answer(answer))
        .await
        .unwrap();
    (pc, client)
}

/// Trickles `pc`'s candidates to the session; hands its tracks to `tracks`.
fn pump(
    pc: &PeerConnection,
    client: WhipClient,
    tracks: tokio::sync::mpsc::UnboundedSender<realtimer::TrackRemote>,
) {
    let mut events = pc.events().unwrap();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                PeerConnectionEvent::IceCandidate(Some(c)) => {
                    let mid = c.sdp_mid.clone().unwrap_or_else(|| "0".into());
                    client.trickle(&mid, &[c.candidate]).await.unwrap();
                }
                PeerConnectionEvent::Track(t) => {
                    let _ = tracks.send(t);
                }
                _ => {}
            }
        }
    });
}

/// 30 frames a second for 20 s of 2-packet VP8 frames, a keyframe every
/// 15; each payload ends in `[7, 7]`.
fn send_video(camera: TrackLocal) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sequence = 0u16;
        for frame in 0u32..600 {
            let tag = if frame % 15 == 0 { 0x00 } else { 0x01 };
            for i in 0..2u8 {
                sequence = sequence.wrapping_add(1);
                let packet = RtpPacket {
                    payload_type: 96,
                    sequence_number: sequence,
                    timestamp: frame * 3000,
                    marker: i == 1,
                    ssrc: 0,
                    payload: Bytes::from(vec![if i == 0 { 0x10 } else { 0x00 }, tag, 7, 7]),
                };
                let _ = camera.write_rtp(packet).await;
            }
            tokio::time::sleep(Duration::from_millis(33)).await;
        }
    })
}

/// A publisher by WHIP at `url`, connected and sending video.
async fn publish(url: &str) -> (PeerConnection, tokio::task::JoinHandle<()>) {
    let camera = TrackLocal::new(MediaKind::Video, "publisher", "camera");
    let (publisher, whip) = connect(url, &camera).await;
    let (no_tracks, _) = tokio::sync::mpsc::unbounded_channel();
    pump(&publisher, whip, no_tracks);
    timeout(
        Duration::from_secs(30),
        publisher.wait_for_connection_state(PeerConnectionState::Connected),
    )
    .await
    .expect("the publisher connects to the unit");
    (publisher, send_video(camera))
}

/// A viewer by WHEP at `url` (its offer's video section receives; it
/// sends nothing): its connection and session, and the first `count`
/// packets of the room's video.
async fn watch(url: &str, count: usize) -> (PeerConnection, WhipClient, Vec<RtpPacket>) {
    let unused = TrackLocal::new(MediaKind::Video, "viewer", "unused");
    let (viewer, whep) = connect(url, &unused).await;
    let (tracks_tx, mut tracks) = tokio::sync::mpsc::unbounded_channel();
    pump(&viewer, whep.clone(), tracks_tx);
    let track = timeout(Duration::from_secs(30), tracks.recv())
        .await
        .expect("a track event")
        .unwrap();
    assert_eq!(track.kind(), MediaKind::Video);
    let mut received = Vec::new();
    timeout(Duration::from_secs(30), async {
        while received.len() < count {
            let p = track.read_rtp().await.expect("RTP");
            received.push(p);
        }
    })
    .await
    .expect("packets forwarded to the viewer");
    (viewer, whep, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_publishers_video_reaches_a_whep_viewer() {
    let server = sfu_server(None);
    let (publisher, sender) = publish(&format!("http://{server}/whip/stage")).await;
    let (viewer, mut whep, received) = watch(&format!("http://{server}/whep/stage"), 40).await;
    // Starts on a keyframe; sequence numbers run on without a gap (no
    // loss on loopback); the payload is the publisher's, untouched.
    assert_eq!(&received[0].payload[..2], &[0x10, 0x00]);
    for w in received.windows(2) {
        assert_eq!(w[1].sequence_number, w[0].sequence_number.wrapping_add(1));
    }
    assert!(received.iter().all(|p| p.payload[2..] == [7, 7]));

    // DELETE ends the session; a second DELETE finds none.
    let session = whep.session().unwrap().to_owned();
    whep.delete().await.unwrap();
    let again = whep
        .request(hyper_method("DELETE"), &session, None, "")
        .await
        .unwrap();
    assert_eq!(again.status, 404);
    sender.abort();
    publisher.close().await;
    viewer.close().await;
}

/// Rooms placed through Redis (two `serve` processes): a room lives on the
/// node its first participant reached; a WHEP viewer that asks the other
/// node is redirected (307) there and gets the publisher's video; once the
/// home node dies, the room is placed again on the node a new publisher
/// reaches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_lives_on_one_node_of_a_redis_cluster() {
    let (_redis, redis_url) = serve::start_redis();
    let mut cluster = serve::Cluster::start(&redis_url, 2, 900, &["--sfu-udp", "127.0.0.1:0"]);
    let (one, two) = (cluster.address(0), cluster.address(1));
    let (publisher, sender) = publish(&format!("http://{one}/whip/stage")).await;

    // Asked of node two, a new session in "stage" is sent to node one; a
    // room nobody is in yet is placed on the node asked.
    let asked = WhipClient::new(&format!("http://{two}/whep/stage"), None).unwrap();
    let sdp = Some("application/sdp");
    let redirect = send(&asked, "POST", "/whep/stage", sdp, "v=0\r\n").await;
    assert_eq!(redirect.status, 307, "{redirect:?}");
    assert_eq!(
        redirect.location.as_deref(),
        Some(format!("http://{one}/whep/stage").as_str())
    );
    let elsewhere = send(&asked, "POST", "/whep/other", sdp, "v=0\r\n").await;
    assert_eq!(
        elsewhere.status, 400,
        "placed on node two, then refused as SDP"
    );

    // The client follows the redirect: the viewer watches on node one.
    let (viewer, _whep, received) = watch(&format!("http://{two}/whep/stage"), 20).await;
    assert!(received.iter().all(|p| p.payload[2..] == [7, 7]));
    sender.abort();
    publisher.close().await;
    viewer.close().await;

    // Node one dies without a word; after its node key expires (0.9 s), a
    // publisher reaching node two gets the room there.
    cluster.nodes[0].0.crash();
    let placed_again = timeout(Duration::from_secs(10), async {
        loop {
            let r = send(&asked, "POST", "/whip/stage", sdp, "v=0\r\n").await;
            if r.status != 307 {
                return r.status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the room is placed again within 10 s");
    assert_eq!(placed_again, 400, "placed on node two, then refused as SDP");
    let (publisher, sender) = publish(&format!("http://{two}/whip/stage")).await;
    sender.abort();
    publisher.close().await;
}

fn hyper_method(m: &str) -> realtimer_signaling::whip::Method {
    m.parse().unwrap()
}

async fn send(
    client: &WhipClient,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> WhipResponse {
    client
        .request(hyper_method(method), path, content_type, body)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_what_the_rfc_says() {
    let server = sfu_server(None);
    let c = WhipClient::new(&format!("http://{server}/whip/r"), None).unwrap();
    let sdp = Some("application/sdp");
    // Not SDP, garbage, an SDP that does not parse, an oversized one.
    assert_eq!(
        send(&c, "POST", "/whip/r", Some("text/plain"), "v=0")
            .await
            .status,
        415
    );
    assert_eq!(send(&c, "POST", "/whip/r", None, "v=0").await.status, 415);
    assert_eq!(send(&c, "POST", "/whip/r", sdp, "hello").await.status, 400);
    assert_eq!(
        send(&c, "POST", "/whep/r", sdp, "v=0\r\nm=garbage\r\n")
            .await
            .status,
        400
    );
    let huge = format!("v=0\r\n{}", "a=x\r\n".repeat(20_000));
    assert_eq!(send(&c, "POST", "/whip/r", sdp, &huge).await.status, 413);
    // Other methods on the endpoint.
    for m in ["GET", "PUT"] {
        assert_eq!(send(&c, m, "/whip/r", None, "").await.status, 405, "{m}");
        assert_eq!(send(&c, m, "/whep/r", None, "").await.status, 405, "{m}");
    }
    // Unknown sessions on every session route of both protocols.
    let frag = Some("application/trickle-ice-sdpfrag");
    for p in ["/whip/r/0000", "/whep/r/0000"] {
        assert_eq!(send(&c, "PATCH", p, frag, "a=mid:0\r\n").await.status, 404);
        assert_eq!(send(&c, "DELETE", p, None, "").await.status, 404);
    }

    // A real session: trickle takes candidates, refuses a restart and
    // another media type; a WHIP session is not a WHEP one.
    let track = TrackLocal::new(MediaKind::Video, "s", "v");
    let pc = PeerConnection::new(pair::config(None)).await.unwrap();
    pc.add_track(track).await.unwrap();
    let offer = pc.create_offer().await.unwrap();
    let mut whip = c.clone();
    whip.offer(&offer.sdp).await.unwrap();
    let session = whip.session().unwrap().to_owned();
    assert!(session.starts_with("/whip/r/"), "{session}");
    let candidate = "a=candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host";
    let ok = send(
        &c,
        "PATCH",
        &session,
        frag,
        &format!("a=mid:0\r\n{candidate}\r\n"),
    )
    .await;
    assert_eq!(ok.status, 204, "{}", ok.body);
    let restart = "a=ice-ufrag:zzzz\r\na=ice-pwd:0123456789012345678901\r\na=mid:0\r\n";
    assert_eq!(send(&c, "PATCH", &session, frag, restart).await.status, 422);
    assert_eq!(
        send(&c, "PATCH", &session, sdp, "a=mid:0\r\n").await.status,
        415
    );
    let as_whep = session.replacen("/whip/", "/whep/", 1);
    assert_eq!(send(&c, "DELETE", &as_whep, None, "").await.status, 404);
    assert_eq!(send(&c, "DELETE", &session, None, "").await.status, 200);
    pc.close().await;

    // With a token: none or a wrong one is 401 with a Bearer challenge.
    let guarded = sfu_server(Some("s3cret"));
    let anonymous = WhipClient::new(&format!("http://{guarded}/whip/r"), None).unwrap();
    let r = send(&anonymous, "POST", "/whip/r", sdp, "v=0").await;
    assert_eq!(r.status, 401);
    let wrong = WhipClient::new(&format!("http://{guarded}/whip/r"), Some("nope")).unwrap();
    assert_eq!(
        send(&wrong, "POST", "/whip/r", sdp, "v=0").await.status,
        401
    );
    let right = WhipClient::new(&format!("http://{guarded}/whip/r"), Some("s3cret")).unwrap();
    assert_eq!(
        send(&right, "POST", "/whip/r", sdp, "hello").await.status,
        400
    );
}
