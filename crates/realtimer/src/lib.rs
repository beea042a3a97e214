//! WebRTC for Rust: a browser-shaped `PeerConnection` for data channels
//! and media tracks (RTP forwarded, never encoded here).
//!
//! Two layers, as in quinn:
//! - [`Rtc`], the sans-IO core: one owner, `&mut self`, time from the
//!   caller. It composes the ICE agent, DTLS, the data channels (SCTP +
//!   DCEP) and SRTP media, demultiplexes datagrams by first byte (RFC 7983)
//!   and does JSEP (RFC 8829) with audio, video and data sections.
//! - `PeerConnection`, `DataChannel`, `TrackLocal` and `TrackRemote`, a
//!   thin tokio driver with the RTCPeerConnection / RTCDataChannel /
//!   MediaStreamTrack API.
//!
//! ICE servers are given as in a browser's RTCConfiguration:
//!
//! ```no_run
//! # async fn f() -> Result<(), realtimer::RtcError> {
//! use realtimer::{IceTransportPolicy, PeerConnection, PeerConnectionConfig};
//! let config = PeerConnectionConfig::default()
//!     .with_stun_server("stun:stun.example.org")
//!     // RFC 7065: UDP by default, `?transport=tcp`, or TLS with `turns:`.
//!     .with_turn_server("turns:turn.example.org:5349", "user", "password")
//!     // iceTransportPolicy "relay": only TURN relayed candidates.
//!     .with_ice_transport_policy(IceTransportPolicy::Relay);
//! let pc = PeerConnection::new(config).await?;
//! # Ok(()) }
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod channel;
mod error;
mod event;
mod jsep;
mod media;
mod pc;
mod rtc;
mod stats;

pub use channel::{ChannelRef, DataChannelInfo, DataChannelInit, DataChannelState};
pub use error::RtcError;
pub use event::{PeerConnectionState, RtcEvent, Transmit};
pub use jsep::{IceCandidateInit, SdpType, SessionDescription, SignalingState};
pub use media::{
    Codec, Direction, Feedback, KeyframeRequest, MediaKind, MediaRef, RtpPacket, TrackInfo,
    MAX_NACKED,
};
pub use pc::{
    BundlePolicy, DataChannel, DataChannelEvent, IceServer, IceTransportPolicy, PeerConnection,
    PeerConnectionConfig, PeerConnectionEvent, PeerConnectionEvents, RtpSender, TrackLocal,
    TrackRemote, UdpMux,
};
pub use realtimer_datachannel::{ChannelData, SctpConfig};
pub use realtimer_dtls::{Certificate, Fingerprint};
pub use realtimer_ice::{IceConfig, IceConnectionState, IceGatheringState};
pub use rtc::{Rtc, RtcConfig};
pub use stats::{
    CandidatePairStats, CandidateStats, DataChannelStats, InboundRtpStats, OutboundRtpStats,
    PeerConnectionStats, SctpTransportStats, StatsReport, TransportStats,
};
