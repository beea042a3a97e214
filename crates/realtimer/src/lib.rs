//! WebRTC for Rust: a browser-shaped `PeerConnection` for data channels
//! and media tracks: RTP packets, samples (whole encoded frames,
//! packetized by the negotiated codec) or, with the `codecs` feature, raw
//! frames and PCM encoded and decoded here.
//!
//! Two layers, as in quinn:
//! - [`Rtc`], the sans-IO core (crate `realtimer-proto`, re-exported here;
//!   its docs say in which order to drive it): one owner, `&mut self`, time from the
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

mod pc;

#[cfg(feature = "codecs")]
pub use pc::{AudioFrame, MediaError, VideoFrame, DEFAULT_VIDEO_BITRATE};
pub use pc::{
    BundlePolicy, DataChannel, DataChannelEvent, IceServer, IceTransportPolicy, PeerConnection,
    PeerConnectionConfig, PeerConnectionEvent, PeerConnectionEvents, RtpSender, Sample, TrackLocal,
    TrackRemote, UdpMux,
};
/// The codecs (feature `codecs`): [`codecs::I420Frame`], the test pattern
/// and tone sources, and the encoders and decoders the tracks use.
#[cfg(feature = "codecs")]
pub use realtimer_codecs as codecs;
/// The sans-IO media pipeline under the tracks' sample API.
pub use realtimer_media::{
    AudioJitterStats, FrameBufferStats, LipSync, PayloadFormat, ReceivedFrame,
};
// The sans-IO core, re-exported so that `realtimer::Rtc` and the types the
// PeerConnection API shares with it keep their paths.
pub use realtimer_proto::{
    AccessError, ArgumentError, ChannelError, IceServerUrlError, JsepCall, ModificationError,
    OperationError, SdpError, StateError,
};
pub use realtimer_proto::{Bitrate, BweConfig};
pub use realtimer_proto::{
    CandidatePairStats, CandidateStats, Certificate, ChannelData, ChannelRef, Codec,
    DataChannelInfo, DataChannelInit, DataChannelState, DataChannelStats, Direction, Feedback,
    Fingerprint, IceCandidateInit, IceConfig, IceConnectionState, IceGatheringState,
    InboundRtpStats, KeyframeRequest, LayerTarget, MediaKind, MediaRef, OutboundRtpStats,
    PeerConnectionState, PeerConnectionStats, Rtc, RtcConfig, RtcError, RtcEvent, RtpPacket,
    SctpConfig, SctpTransportStats, SdpType, SendLayerInit, SenderClock, SessionDescription,
    SignalingState, StatsReport, TrackInfo, Transmit, TransportStats, MAX_NACKED,
};
