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

use clap::Args;
use realtimer::{
    Feedback, MediaKind, PeerConnection, PeerConnectionConfig, PeerConnectionEvent, TrackLocal,
    TrackRemote,
};
use realtimer_signaling::{ClientOptions, RoomError, RoomPeer};
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

/// Runs the echo peer until the other side hangs up, the room empties,
/// or Ctrl-C.
pub(crate) async fn run(args: EchoArgs) -> Result<(), RoomError> {
    let (url, _) = crate::peer::server_urls(&args.server);
    let pc =
        PeerConnection::new(PeerConnectionConfig::default().with_loopback(args.loopback)).await?;
    // One track of each kind to send back on: added before any offer, so
    // the peer's offer reuses these transceivers (RFC 8829 §5.10) and our
    // own offer carries both.
    let audio = TrackLocal::new(MediaKind::Audio, "echo", "echo-audio");
    let video = TrackLocal::new(MediaKind::Video, "echo", "echo-video");
    pc.add_track(audio.clone()).await?;
    pc.add_track(video.clone()).await?;
    let room = RoomPeer::join(&url, &args.room, &ClientOptions::default(), pc).await?;
    // By the page's convention the room's creator offers on `ready`
    // (the wrtc test waits for these words).
    if room.created() {
        info!(room = %args.room, "created the room; waiting for the other side");
    } else {
        info!(room = %args.room, "joined the room");
    }
    // Each is given to the first remote track of its kind.
    let (mut audio, mut video) = (Some(audio), Some(video));
    let on_event = |event| {
        if let PeerConnectionEvent::Track(remote) = event {
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
    };
    let end = room.run(on_event, crate::peer::ctrl_c()).await?;
    info!(?end, "done");
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
