//! `realtimer echo`: a Rust peer that joins a room of `realtimer serve`
//! (the web app's video call page, `web/call.html`) and sends each of the
//! other side's tracks back to it as its own (the first of each kind: one
//! local track per kind, so two sources never share an SSRC), forwarding
//! keyframe requests (PLI/FIR) upstream; NACKs are answered by the
//! connection. No codec is needed: RTP payloads are forwarded as they
//! came, with our SSRC.
//!
//! The flow is the page's (`web/js/room-peer.js`): whoever created the
//! room offers on `ready`; messages are `{type: offer|answer|candidate|bye}`.

use std::time::Duration;

use clap::Args;
use realtimer::{
    Feedback, MediaKind, PeerConnection, PeerConnectionConfig, PeerConnectionEvent,
    PeerConnectionState, RtcError, TrackLocal, TrackRemote,
};
use realtimer_signaling::{
    ClientError, ErrorCode, Handled, PeerSession, SessionMessage, SignalingClient, SignalingEvent,
};
use tracing::{debug, info, warn};

/// `realtimer echo` options.
#[derive(Debug, Args)]
pub(crate) struct EchoArgs {
    /// The server's base URL (`http://HOST:PORT` or `https://...`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The room to join.
    #[arg(long)]
    room: String,
    /// Offer loopback host candidates too (for a browser on this host
    /// without other interfaces).
    #[arg(long)]
    loopback: bool,
}

/// Why the echo peer stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EchoError {
    /// Signaling failed (the server unreachable, the room full...).
    #[error("signaling: {0}")]
    Signaling(#[from] ClientError),
    /// The peer connection refused something.
    #[error("peer connection: {0}")]
    Rtc(#[from] RtcError),
    /// The server refused a request once in the room.
    #[error("the server refused: {code}: {message}")]
    Refused {
        /// Why, for programs.
        code: ErrorCode,
        /// Why, in words.
        message: String,
    },
    /// The connection's event stream was taken before the echo loop.
    #[error("the connection's events were taken")]
    EventsTaken,
    /// The connection state went to failed.
    #[error("the connection failed")]
    ConnectionFailed,
}

/// Runs the echo peer until the other side hangs up, the room empties,
/// or Ctrl-C.
pub(crate) async fn run(args: EchoArgs) -> Result<(), EchoError> {
    let (url, _) = crate::peer::server_urls(&args.server);
    let (signaling, mut room) = SignalingClient::connect(&url, &args.room).await?;
    // By the page's convention the room's creator offers on `ready`.
    let initiator = room.created();
    if initiator {
        info!(%url, room = %args.room, id = room.id(), "created the room; waiting for the other side");
    } else {
        info!(%url, room = %args.room, id = room.id(), "joined the room");
    }
    let pc =
        PeerConnection::new(PeerConnectionConfig::default().with_loopback(args.loopback)).await?;
    let mut pc_events = pc.events().ok_or(EchoError::EventsTaken)?;
    let session = PeerSession::new(pc.clone());
    // One track of each kind to send back on: added before any offer, so
    // the peer's offer reuses these transceivers (RFC 8829 §5.10) and our
    // own offer carries both.
    let audio = TrackLocal::new(MediaKind::Audio, "echo", "echo-audio");
    let video = TrackLocal::new(MediaKind::Video, "echo", "echo-video");
    pc.add_track(audio.clone()).await?;
    pc.add_track(video.clone()).await?;
    // Each is given to the first remote track of its kind.
    let (mut audio, mut video) = (Some(audio), Some(video));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result = loop {
        tokio::select! {
            event = room.next() => {
                let Some(event) = event else {
                    break Ok(());
                };
                match event {
                    SignalingEvent::Ready { .. } if initiator => {
                        info!("the other side is here: offering");
                        signaling.send(session.offer().await?.to_value()).await?;
                    }
                    SignalingEvent::Message { data, .. } => {
                        let Some(message) = SessionMessage::from_value(&data) else {
                            debug!(%data, "message ignored");
                            continue;
                        };
                        debug!(?message, "from the other side");
                        match session.handle(message).await {
                            Ok(Handled::Reply(reply)) => signaling.send(reply.to_value()).await?,
                            Ok(Handled::Applied) => {}
                            Ok(Handled::Bye) => {
                                info!("the other side hung up");
                                break Ok(());
                            }
                            Err(e) => warn!("signaling message refused: {e}"),
                        }
                    }
                    SignalingEvent::Left { .. } => {
                        info!("the other side left");
                        break Ok(());
                    }
                    SignalingEvent::Error { code, message } => {
                        break Err(EchoError::Refused { code, message });
                    }
                    other => debug!(?other, "signaling event"),
                }
            }
            event = pc_events.recv() => {
                let Some(event) = event else { break Ok(()) };
                match event {
                    PeerConnectionEvent::IceCandidate(Some(c)) => {
                        signaling.send(PeerSession::candidate(Some(c)).to_value()).await?;
                    }
                    PeerConnectionEvent::ConnectionStateChange(state) => {
                        info!(%state, "connection");
                        if state == PeerConnectionState::Failed {
                            break Err(EchoError::ConnectionFailed);
                        }
                    }
                    PeerConnectionEvent::Track(remote) => {
                        let local = match remote.kind() {
                            MediaKind::Audio => audio.take(),
                            _ => video.take(),
                        };
                        let (kind, mid) = (remote.kind(), remote.info().mid.clone());
                        match local {
                            Some(local) => {
                                info!(%kind, %mid, "echoing a track");
                                tokio::spawn(echo(remote, local));
                            }
                            None => warn!(%kind, %mid, "another track of this kind: not echoed"),
                        }
                    }
                    _ => {}
                }
            }
            _ = &mut ctrl_c => {
                info!("interrupted: hanging up");
                let _ = signaling.send(SessionMessage::Bye.to_value()).await;
                break Ok(());
            }
        }
    };
    pc.close().await;
    let _ = signaling.leave().await;
    // Let the leave reach the server before the connection drops.
    tokio::time::sleep(Duration::from_millis(50)).await;
    info!("done");
    result
}

/// Sends `remote`'s packets back on `local`, and `local`'s keyframe
/// requests to `remote`'s sender, until the connection goes. Loss on the
/// way back is repaired by the connection, which answers the receiver's
/// NACKs from what it sent.
async fn echo(remote: TrackRemote, local: TrackLocal) {
    let feedback = {
        let (remote, local) = (remote.clone(), local.clone());
        tokio::spawn(async move {
            while let Some(feedback) = local.feedback().await {
                debug!(?feedback, "feedback from the receiver: asking upstream");
                let sent = match feedback {
                    Feedback::Keyframe(_) => remote.request_keyframe().await,
                    _ => Ok(()),
                };
                if sent.is_err() {
                    break;
                }
            }
        })
    };
    let mut forwarded = 0u64;
    while let Some(packet) = remote.read_rtp().await {
        if local.write_rtp(packet).await.is_err() {
            break;
        }
        forwarded += 1;
        if forwarded == 1 || forwarded % 1000 == 0 {
            info!(kind = %remote.kind(), forwarded, "RTP packets echoed");
        }
    }
    feedback.abort();
}
