//! The signaling wire of `realtimer serve` and a Rust client for it
//! (`docs/signaling.md` describes the protocols):
//!
//! - [`ws`]: the plain WebSocket JSON protocol at `/ws`, its requests
//!   ([`SignalingRequest`]), events ([`SignalingEvent`]) and refusal codes
//!   ([`ErrorCode`]). The server serializes these same types.
//! - [`codelab`]: the event names of the classic WebRTC codelab's
//!   Socket.IO protocol, which the server's Socket.IO front speaks.
//! - [`session`]: what two peers relay to each other through a room
//!   (`{type: offer|answer|candidate|bye}`, as the web app and the
//!   libwebrtc test peer send it), and, with the `peer` feature,
//!   [`PeerSession`], which drives a `realtimer::PeerConnection` from them.
//! - [`client`] (feature `client`, on by default): [`SignalingClient`],
//!   an async client for `/ws` over `ws://` and `wss://` (rustls).
//! - [`RoomPeer`] (features `client` and `peer`): a `PeerConnection` in
//!   a room, run by the web app's convention (the room's creator offers
//!   when the other side arrives), as the CLI's peers and the examples do.
//! - [`whip`] (feature `client`): [`whip::WhipClient`], the client half
//!   of WHIP (RFC 9725) and WHEP over `http://`.
//!
//! ```no_run
//! # async fn run() -> Result<(), realtimer_signaling::ClientError> {
//! use realtimer_signaling::{SessionMessage, SignalingClient, SignalingEvent};
//! let (sender, mut events) = SignalingClient::connect("wss://example.org/ws", "room1").await?;
//! // The room's creator calls once the other side is there.
//! while let Some(event) = events.next().await {
//!     match event {
//!         SignalingEvent::Ready { .. } if events.created() => {
//!             let offer = SessionMessage::Offer { sdp: "v=0\r\n".into() };
//!             sender.send(offer.to_value()).await?;
//!         }
//!         SignalingEvent::Message { data, .. } => match SessionMessage::from_value(&data) {
//!             Some(SessionMessage::Bye) => break,
//!             Some(message) => println!("the other side says {message:?}"),
//!             None => {}
//!         },
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![allow(clippy::print_stdout)] // in the doc example only

#[cfg(feature = "client")]
pub mod client;
pub mod codelab;
#[cfg(feature = "peer")]
mod peer;
#[cfg(all(feature = "client", feature = "peer"))]
mod room;
pub mod session;
pub mod sfu;
#[cfg(feature = "client")]
pub mod whip;
pub mod ws;

#[cfg(feature = "client")]
pub use client::{ClientError, ClientOptions, SignalingClient, SignalingEvents, SignalingSender};
#[cfg(feature = "peer")]
pub use peer::{Handled, PeerSession, MAX_HELD_CANDIDATES};
#[cfg(all(feature = "client", feature = "peer"))]
pub use room::{RoomEnd, RoomError, RoomEvent, RoomPeer};
pub use session::SessionMessage;
pub use ws::{ErrorCode, SignalingEvent, SignalingRequest};
