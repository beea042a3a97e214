//! What the examples of this folder share: logging, and the signaling
//! loop that joins a room of `realtimer serve` and drives a
//! `PeerConnection` through it (the web app's convention: the room's
//! creator offers once the other side is there; messages are
//! `{type: offer|answer|candidate|bye}`, `docs/signaling.md`).
//!
//! Each example is one file at the top of `examples/`; `README.md` there
//! lists them.

use std::future::Future;

use realtimer::{PeerConnection, PeerConnectionEvent, PeerConnectionState, RtcError};
use realtimer_signaling::{
    ClientError, ErrorCode, Handled, PeerSession, SessionMessage, SignalingClient, SignalingEvent,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Logs to stderr at `info` (or as `REALTIMER_LOG` / `RUST_LOG` say), so
/// that stdout stays for what an example prints.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REALTIMER_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The options of every example that joins a room of `realtimer serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct RoomArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The room to join.
    #[arg(long)]
    pub room: String,
    /// Offer loopback candidates too (the other end on this host, with no
    /// other network).
    #[arg(long)]
    pub loopback: bool,
}

impl RoomArgs {
    /// A connection configured as these options say.
    pub async fn peer_connection(&self) -> Result<PeerConnection, RtcError> {
        PeerConnection::new(realtimer::PeerConnectionConfig::default().with_loopback(self.loopback))
            .await
    }
}

/// For two connections in one process: passes each ICE candidate of
/// `from` to `to` as it is found (trickle ICE, RFC 8838), and every other
/// event of `from` to the returned receiver.
pub fn trickle(
    from: &PeerConnection,
    to: &PeerConnection,
) -> mpsc::UnboundedReceiver<PeerConnectionEvent> {
    let mut events = from.events().expect("the events of a new connection");
    let to = to.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                PeerConnectionEvent::IceCandidate(c) => {
                    let _ = to.add_ice_candidate(c).await;
                }
                other => {
                    let _ = tx.send(other);
                }
            }
        }
    });
    rx
}

/// For two connections in one process: one offer/answer exchange (JSEP,
/// RFC 8829). Each description reaches the other side before its own
/// side starts gathering, so that no candidate arrives before the
/// description it belongs to (addIceCandidate needs a remote description,
/// as in browsers).
pub async fn negotiate(
    offerer: &PeerConnection,
    answerer: &PeerConnection,
) -> Result<(), RtcError> {
    let offer = offerer.create_offer().await?;
    answerer.set_remote_description(offer.clone()).await?;
    offerer.set_local_description(offer).await?;
    let answer = answerer.create_answer().await?;
    offerer.set_remote_description(answer.clone()).await?;
    answerer.set_local_description(answer).await
}

/// Why a room peer stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// Signaling failed: the server unreachable, the room full...
    #[error("signaling: {0}")]
    Signaling(#[from] ClientError),
    /// The peer connection refused a description or a call.
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
    /// The connection's event stream was already taken.
    #[error("the connection's events were taken")]
    EventsTaken,
    /// The connection state went to failed.
    #[error("the connection failed")]
    ConnectionFailed,
}

/// The `/ws` URL of a server's base URL (`http://HOST:PORT` →
/// `ws://HOST:PORT/ws`, `https://` → `wss://`).
pub fn ws_url(server: &str) -> String {
    let base = server.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}/ws")
}

/// Joins the room of `args` on its server and drives `pc`
/// through the room: offers when this side created the room and the
/// other side arrived, answers otherwise, and trickles candidates both
/// ways. Every other event of `pc` goes to `on_event`.
///
/// Returns when the other side says bye or leaves, when `until`
/// completes (then this side says bye), or on Ctrl-C. Closes `pc` before
/// returning.
pub async fn run_in_room(
    args: &RoomArgs,
    pc: PeerConnection,
    mut on_event: impl FnMut(PeerConnectionEvent),
    until: impl Future<Output = ()>,
) -> Result<(), RoomError> {
    let (url, room) = (ws_url(&args.server), args.room.as_str());
    let (signaling, mut members) = SignalingClient::connect(&url, room).await?;
    let caller = members.created();
    info!(%url, room, caller, "in the room");
    let mut pc_events = pc.events().ok_or(RoomError::EventsTaken)?;
    let session = PeerSession::new(pc.clone());
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c, until);
    let result = loop {
        tokio::select! {
            event = members.next() => match event {
                None => break Ok(()),
                Some(SignalingEvent::Ready { .. }) if caller => {
                    info!("the other side is here: offering");
                    signaling.send(session.offer().await?.to_value()).await?;
                }
                Some(SignalingEvent::Message { data, .. }) => {
                    let Some(message) = SessionMessage::from_value(&data) else {
                        debug!(%data, "not a session message");
                        continue;
                    };
                    match session.handle(message).await {
                        Ok(Handled::Reply(reply)) => signaling.send(reply.to_value()).await?,
                        Ok(Handled::Applied) => {}
                        Ok(Handled::Bye) => {
                            info!("the other side hung up");
                            break Ok(());
                        }
                        // A candidate of an address family we do not use.
                        Err(e) => warn!("message refused: {e}"),
                    }
                }
                Some(SignalingEvent::Left { .. }) => {
                    info!("the other side left");
                    break Ok(());
                }
                Some(SignalingEvent::Error { code, message }) => {
                    break Err(RoomError::Refused { code, message });
                }
                Some(other) => debug!(?other, "signaling"),
            },
            event = pc_events.recv() => match event {
                None => break Ok(()),
                Some(PeerConnectionEvent::IceCandidate(candidate)) => {
                    signaling.send(PeerSession::candidate(candidate).to_value()).await?;
                }
                Some(PeerConnectionEvent::ConnectionStateChange(state)) => {
                    info!(%state, "connection");
                    if state == PeerConnectionState::Failed {
                        break Err(RoomError::ConnectionFailed);
                    }
                    on_event(PeerConnectionEvent::ConnectionStateChange(state));
                }
                Some(other) => on_event(other),
            },
            () = &mut until => {
                info!("done: hanging up");
                signaling.send(SessionMessage::Bye.to_value()).await?;
                break Ok(());
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
    // Let the bye and the leave reach the server before the socket drops.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    result
}

#[cfg(test)]
mod tests {
    use super::ws_url;

    #[test]
    fn ws_urls() {
        assert_eq!(ws_url("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(ws_url("https://h.example/"), "wss://h.example/ws");
    }
}

/// The Rust blocks of the guide's library page, compiled and run as doc
/// tests (`cargo test --doc -p realtimer-examples`).
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide/library.md")]
pub struct GuideLibraryPage;
