//! What the examples of this folder share: logging, and the signaling
//! loop that joins a room of `realtimer serve` and drives a
//! `PeerConnection` through it (the web app's convention: the room's
//! creator offers once the other side is there; messages are
//! `{type: offer|answer|candidate|bye}`, `docs/signaling.md`).
//!
//! Each example is one file at the top of `examples/`; `README.md` there
//! lists them.

use std::future::Future;

use realtimer::{PeerConnection, PeerConnectionEvent, RtcError};
use realtimer_signaling::{ClientOptions, RoomEnd, RoomError, RoomPeer};
use tokio::sync::mpsc;
use tracing::{info, warn};

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
                    // Refused before `to` has a remote description (W3C
                    // InvalidStateError): `negotiate` sees to the order.
                    if let Err(e) = to.add_ice_candidate(c).await {
                        warn!("addIceCandidate: {e}");
                    }
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

/// Joins the room of `args` on its server and drives `pc` through it
/// ([`RoomPeer`]: offers when this side created the room and the other
/// side arrived, answers otherwise, trickles candidates both ways).
/// Every other event of `pc` goes to `on_event`.
///
/// Returns when the other side says bye or leaves, when `until`
/// completes (then this side says bye), or on Ctrl-C. Closes `pc` before
/// returning.
pub async fn run_in_room(
    args: &RoomArgs,
    pc: PeerConnection,
    on_event: impl FnMut(PeerConnectionEvent),
    until: impl Future<Output = ()>,
) -> Result<RoomEnd, RoomError> {
    let room = RoomPeer::join(
        &ws_url(&args.server),
        &args.room,
        &ClientOptions::default(),
        pc,
    )
    .await?;
    let until_or_ctrl_c = async {
        tokio::select! {
            () = until => {}
            _ = tokio::signal::ctrl_c() => info!("interrupted"),
        }
    };
    room.run(on_event, until_or_ctrl_c).await
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
