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
    Feedback, IceCandidateInit, MediaKind, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent, PeerConnectionState, RtcError, SessionDescription, TrackLocal,
    TrackRemote,
};
use realtimer_server::client::{ClientError, SignalingClient, SignalingEvent, SignalingSender};
use serde_json::{json, Value};
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
    /// Signaling failed.
    #[error("signaling: {0}")]
    Signaling(#[from] ClientError),
    /// The peer connection refused something.
    #[error("peer connection: {0}")]
    Rtc(#[from] RtcError),
    /// The room is full.
    #[error("room {0:?} is full")]
    Full(String),
    /// The server refused a request.
    #[error("the server refused: {0}")]
    Refused(String),
    /// The connection's event stream was taken before the echo loop.
    #[error("the connection's events were taken")]
    EventsTaken,
    /// The connection state went to failed.
    #[error("the connection failed")]
    ConnectionFailed,
}

/// The `/ws` URL of a server's base URL.
fn ws_url(server: &str) -> String {
    let base = server.trim_end_matches('/');
    let base = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| base.to_owned());
    format!("{base}/ws")
}

/// Runs the echo peer until the other side hangs up, the room empties,
/// or Ctrl-C.
pub(crate) async fn run(args: EchoArgs) -> Result<(), EchoError> {
    let url = ws_url(&args.server);
    let (signaling, mut room) = SignalingClient::connect(&url, &args.room).await?;
    info!(%url, room = %args.room, id = room.id(), "joining");
    let pc =
        PeerConnection::new(PeerConnectionConfig::default().with_loopback(args.loopback)).await?;
    let mut pc_events = pc.events().ok_or(EchoError::EventsTaken)?;
    // One track of each kind to send back on: added before any offer, so
    // the peer's offer reuses these transceivers (RFC 8829 §5.10) and our
    // own offer carries both.
    let audio = TrackLocal::new(MediaKind::Audio, "echo", "echo-audio");
    let video = TrackLocal::new(MediaKind::Video, "echo", "echo-video");
    pc.add_track(audio.clone()).await?;
    pc.add_track(video.clone()).await?;
    // Each is given to the first remote track of its kind.
    let (mut audio, mut video) = (Some(audio), Some(video));
    let mut initiator = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result = loop {
        tokio::select! {
            event = room.next() => {
                let Some(event) = event else {
                    break Ok(());
                };
                match event {
                    SignalingEvent::Created { .. } => {
                        initiator = true;
                        info!("created the room; waiting for the other side");
                    }
                    SignalingEvent::Joined { .. } => info!("joined the room"),
                    SignalingEvent::Ready { .. } if initiator => {
                        info!("the other side is here: offering");
                        let offer = pc.create_offer().await?;
                        pc.set_local_description(offer.clone()).await?;
                        signaling.send(json!({"type": "offer", "sdp": offer.sdp})).await?;
                    }
                    SignalingEvent::Message { data, .. } => {
                        if is_bye(&data) {
                            info!("the other side hung up");
                            break Ok(());
                        }
                        if let Err(e) = handle_message(&pc, &signaling, &data).await {
                            warn!("signaling message refused: {e}");
                        }
                    }
                    SignalingEvent::Left { .. } => {
                        info!("the other side left");
                        break Ok(());
                    }
                    SignalingEvent::Full { room } => break Err(EchoError::Full(room)),
                    SignalingEvent::Error { code, message } => {
                        break Err(EchoError::Refused(format!("{code}: {message}")));
                    }
                    other => debug!(?other, "signaling event"),
                }
            }
            event = pc_events.recv() => {
                let Some(event) = event else { break Ok(()) };
                match event {
                    PeerConnectionEvent::IceCandidate(Some(c)) => {
                        signaling.send(json!({
                            "type": "candidate",
                            "candidate": c.candidate,
                            "sdpMid": c.sdp_mid,
                            "sdpMLineIndex": c.sdp_m_line_index,
                        })).await?;
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
                let _ = signaling.send(json!({"type": "bye"})).await;
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

/// The page's hang-up: `{type: "bye"}` (or the codelab's bare `"bye"`).
fn is_bye(data: &Value) -> bool {
    data.as_str() == Some("bye") || data.get("type").and_then(Value::as_str) == Some("bye")
}

/// An offer, answer or candidate from the other side.
async fn handle_message(
    pc: &PeerConnection,
    signaling: &SignalingSender,
    data: &Value,
) -> Result<(), EchoError> {
    let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
    match text("type").as_deref() {
        Some("offer") => {
            info!("offer received: answering");
            let sdp = text("sdp").unwrap_or_default();
            pc.set_remote_description(SessionDescription::offer(sdp))
                .await?;
            let answer = pc.create_answer().await?;
            pc.set_local_description(answer.clone()).await?;
            signaling
                .send(json!({"type": "answer", "sdp": answer.sdp}))
                .await?;
        }
        Some("answer") => {
            info!("answer received");
            let sdp = text("sdp").unwrap_or_default();
            pc.set_remote_description(SessionDescription::answer(sdp))
                .await?;
        }
        Some("candidate") => {
            let candidate = IceCandidateInit {
                candidate: text("candidate").unwrap_or_default(),
                sdp_mid: text("sdpMid"),
                sdp_m_line_index: data
                    .get("sdpMLineIndex")
                    .and_then(Value::as_u64)
                    .and_then(|i| u16::try_from(i).ok()),
                username_fragment: text("usernameFragment"),
            };
            pc.add_ice_candidate(Some(candidate)).await?;
        }
        other => debug!(?other, "message ignored"),
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls() {
        assert_eq!(ws_url("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(ws_url("https://h.example/"), "wss://h.example/ws");
    }

    #[test]
    fn bye_in_both_forms() {
        assert!(is_bye(&json!("bye")));
        assert!(is_bye(&json!({"type": "bye"})));
        assert!(!is_bye(&json!({"type": "offer"})));
    }
}
