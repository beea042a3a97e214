//! An in-process pair of connections on loopback, for tests and the
//! benchmarks (which include this file): connected the way
//! /work/shared/bench/libwebrtc's bench-core.js connects its pair.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use realtimer::{
    Certificate, DataChannel, DataChannelInit, IceCandidateInit, PeerConnection,
    PeerConnectionConfig, PeerConnectionEvent, PeerConnectionEvents, SignalingState,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Loopback candidates on 127.0.0.1 only, with `certificate` when given
/// (benchmarks reuse one to leave key generation out of what they time).
pub fn config(certificate: Option<&Certificate>) -> PeerConnectionConfig {
    let mut c = PeerConnectionConfig::default().with_loopback(true);
    c.certificate = certificate.cloned();
    c.interfaces = vec!["127.0.0.1".parse().unwrap()];
    c
}

/// Trickles `events`' candidates to `to`; hands out incoming channels.
pub fn pump(
    events: PeerConnectionEvents,
    to: PeerConnection,
    channels: mpsc::UnboundedSender<DataChannel>,
) {
    pump_recording(events, to, channels, None);
}

/// [`pump`], also recording each candidate line in `candidates`.
pub fn pump_recording(
    mut events: PeerConnectionEvents,
    to: PeerConnection,
    channels: mpsc::UnboundedSender<DataChannel>,
    candidates: Option<Arc<Mutex<Vec<String>>>>,
) {
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            match e {
                PeerConnectionEvent::IceCandidate(c) => {
                    if let (Some(c), Some(seen)) = (&c, &candidates) {
                        seen.lock().unwrap().push(c.candidate.clone());
                    }
                    add_candidate(&to, c).await;
                }
                PeerConnectionEvent::DataChannel(dc) => {
                    let _ = channels.send(dc);
                }
                _ => {}
            }
        }
    });
}

/// Adds `candidate` to `to`; one refused is added again for up to 2 s.
/// The pumps do not order candidates after descriptions as one signaling
/// channel would: after an ICE restart, the answerer's new candidates can
/// reach the offerer before the answer that makes their ufrag known, and
/// are refused then.
async fn add_candidate(to: &PeerConnection, candidate: Option<IceCandidateInit>) {
    if to.add_ice_candidate(candidate.clone()).await.is_ok() {
        return;
    }
    let to = to.clone();
    tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if to.add_ice_candidate(candidate.clone()).await.is_ok() {
                break;
            }
        }
    });
}

/// A connected pair and the two ends of its channel.
#[derive(Debug)]
pub struct Connected {
    /// The offerer.
    pub a: PeerConnection,
    /// The answerer.
    pub b: PeerConnection,
    /// The offerer's end of the channel.
    pub dc_a: DataChannel,
    /// The answerer's end of the channel.
    pub dc_b: DataChannel,
    /// From just before the first `PeerConnection::new` to the offerer's
    /// channel open (bench-core.js `openOffererMs`).
    pub open_offerer: Duration,
}

/// bench-core.js `connectPair`: two PCs, one channel, offer/answer, until
/// both ends of the channel are open.
#[allow(clippy::disallowed_methods)] // the open time is wall time
pub async fn connect_pair(
    label: &str,
    init: DataChannelInit,
    certificate: Option<&Certificate>,
) -> Connected {
    let t0 = Instant::now();
    let a = PeerConnection::new(config(certificate)).await.unwrap();
    let b = PeerConnection::new(config(certificate)).await.unwrap();
    let (a_tx, _a_rx) = mpsc::unbounded_channel();
    let (b_tx, mut b_rx) = mpsc::unbounded_channel();
    pump(a.events().unwrap(), b.clone(), a_tx);
    pump(b.events().unwrap(), a.clone(), b_tx);
    let dc_a = a.create_data_channel(label, init).await.unwrap();
    negotiate(&a, &b).await;
    let open_a = async {
        assert!(dc_a.wait_open().await, "offerer channel closed");
        t0.elapsed()
    };
    let open_b = async {
        let dc = b_rx.recv().await.expect("datachannel event");
        assert!(dc.wait_open().await, "answerer channel closed");
        dc
    };
    let (open_offerer, dc_b) = timeout(Duration::from_secs(15), async {
        tokio::join!(open_a, open_b)
    })
    .await
    .expect("data channel open within 15 s");
    Connected {
        a,
        b,
        dc_a,
        dc_b,
        open_offerer,
    }
}

/// Trickles candidates both ways between `a` and `b`, and echoes every
/// message on the channels either receives.
pub fn trickle_and_echo(a: &PeerConnection, b: &PeerConnection) {
    for (from, to) in [(a, b), (b, a)] {
        let mut events = from.events().unwrap();
        let to = to.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                match e {
                    PeerConnectionEvent::IceCandidate(c) => {
                        add_candidate(&to, c).await;
                    }
                    PeerConnectionEvent::DataChannel(dc) => {
                        tokio::spawn(async move {
                            while let Some(m) = dc.recv().await {
                                let _ = dc.send(m).await;
                            }
                        });
                    }
                    _ => {}
                }
            }
        });
    }
}

/// `a` offers, `b` answers. The remote description goes first, so
/// trickled candidates find it there (bench-core.js queues them instead).
pub async fn negotiate(a: &PeerConnection, b: &PeerConnection) {
    let offer = a.create_offer().await.unwrap();
    b.set_remote_description(offer.clone()).await.unwrap();
    a.set_local_description(offer).await.unwrap();
    assert_eq!(a.signaling_state(), SignalingState::HaveLocalOffer);
    let answer = b.create_answer().await.unwrap();
    a.set_remote_description(answer.clone()).await.unwrap();
    b.set_local_description(answer).await.unwrap();
    assert_eq!(b.signaling_state(), SignalingState::Stable);
}

/// Closes the offerer's channel, then both connections.
pub async fn close(p: Connected) {
    p.dc_a.close().await;
    p.a.close().await;
    p.b.close().await;
}

/// Trickles `from`'s candidates to `to`; hands out the tracks it gets.
pub fn pump_tracks(
    from: &PeerConnection,
    to: PeerConnection,
    tracks: mpsc::UnboundedSender<realtimer::TrackRemote>,
) {
    let mut events = from.events().unwrap();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            match e {
                PeerConnectionEvent::IceCandidate(c) => {
                    add_candidate(&to, c).await;
                }
                PeerConnectionEvent::Track(t) => {
                    let _ = tracks.send(t);
                }
                _ => {}
            }
        }
    });
}

/// A pair on loopback where the offerer `a` (configured `offerer`) sends
/// one track of `kind` to the answerer `b`: both ends, once connected.
pub async fn connect_track(
    offerer: PeerConnectionConfig,
    kind: realtimer::MediaKind,
) -> (
    PeerConnection,
    PeerConnection,
    realtimer::TrackLocal,
    realtimer::TrackRemote,
) {
    connect_track_to(offerer, config(None), kind).await
}

/// [`connect_track`] with the answerer configured `answerer` too.
pub async fn connect_track_to(
    offerer: PeerConnectionConfig,
    answerer: PeerConnectionConfig,
    kind: realtimer::MediaKind,
) -> (
    PeerConnection,
    PeerConnection,
    realtimer::TrackLocal,
    realtimer::TrackRemote,
) {
    let local = realtimer::TrackLocal::new(kind, "stream", &format!("{kind}"));
    let (a, b, remote) = connect_local_track(offerer, answerer, local.clone()).await;
    (a, b, local, remote)
}

/// A pair on loopback where the offerer `a` sends `local` (a plain or
/// simulcast track) to the answerer `b`: both ends and `b`'s track, once
/// connected.
pub async fn connect_local_track(
    offerer: PeerConnectionConfig,
    answerer: PeerConnectionConfig,
    local: realtimer::TrackLocal,
) -> (PeerConnection, PeerConnection, realtimer::TrackRemote) {
    let a = PeerConnection::new(offerer).await.unwrap();
    let b = PeerConnection::new(answerer).await.unwrap();
    let (tracks_tx, mut tracks) = mpsc::unbounded_channel();
    pump_tracks(&a, b.clone(), mpsc::unbounded_channel().0);
    pump_tracks(&b, a.clone(), tracks_tx);
    a.add_track(local).await.unwrap();
    negotiate(&a, &b).await;
    let remote = timeout(Duration::from_secs(10), tracks.recv())
        .await
        .expect("track event within 10 s")
        .unwrap();
    timeout(Duration::from_secs(20), async {
        a.wait_for_connection_state(realtimer::PeerConnectionState::Connected)
            .await;
        b.wait_for_connection_state(realtimer::PeerConnectionState::Connected)
            .await;
    })
    .await
    .expect("connected within 20 s");
    (a, b, remote)
}
