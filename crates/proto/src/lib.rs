//! The sans-IO core of realtimer's WebRTC peer connection: [`Rtc`].
//!
//! `Rtc` composes the ICE agent (RFC 8445), DTLS (RFC 6347), the data
//! channels (SCTP + DCEP, RFC 8831/8832) and SRTP media (RFC 3711/5764)
//! behind one `&mut self` owner, demultiplexes datagrams by first byte
//! (RFC 7983 §7) and does JSEP (RFC 8829) with audio, video and data
//! sections. It owns no socket, no clock and no task: every input carries
//! the time (`now: Instant`) from the caller, every output is a value the
//! caller polls. The same connection therefore runs on tokio (the
//! `realtimer` crate's `PeerConnection`), on a simulated network
//! (`realtimer-netsim`, in this crate's tests) or under a fuzzer.
//!
//! # Driving an `Rtc`
//!
//! As with quinn-proto's `Connection`, the caller repeats one loop:
//!
//! 1. **Inputs**, in any order, each with the current time:
//!    [`Rtc::add_local_address`] for every local socket (before
//!    [`Rtc::set_local_description`]), [`Rtc::handle_receive`] for every
//!    datagram received, [`Rtc::handle_timeout`] once the instant returned
//!    by [`Rtc::poll_timeout`] has passed, and the application's calls
//!    (descriptions, candidates, channels, [`Rtc::send`],
//!    [`Rtc::write_rtp`], [`Rtc::close`]).
//! 2. **Outputs**, after every input: call [`Rtc::poll_transmit`] until it
//!    returns `None` and send each [`Transmit`] from its `source` to its
//!    `destination`; call [`Rtc::poll_event`] until it returns `None` and
//!    act on each [`RtcEvent`] (signal candidates, deliver messages and
//!    RTP, open a TURN connection, resolve an mDNS name and answer with
//!    the matching `Rtc` call).
//! 3. **Timer**, last: [`Rtc::poll_timeout`] says when to call
//!    [`Rtc::handle_timeout`] next (`None`: no timer, e.g. once closed).
//!    Read it after draining the outputs, since every input and every poll
//!    may move it earlier.
//!
//! # When the caller forgets
//!
//! Nothing is corrupted and nothing panics; output is late or dropped:
//! - Outputs not drained stay queued until the next poll. Datagrams of the
//!   ICE and DTLS handshakes are retransmitted by their own timers; past
//!   [`MAX_MEDIA_QUEUE`] waiting SRTP datagrams [`Rtc::write_rtp`] fails
//!   with [`RtcError::QueueFull`] and NACK answers are skipped.
//! - Events not drained: past [`MAX_RTP_EVENTS`] waiting RTP packets, newer
//!   ones are counted as discarded ([`InboundRtpStats`]), not queued. Other
//!   events (channel messages included) wait in order.
//! - A timer not honoured: retransmissions, consent checks (RFC 7675),
//!   RTCP reports and NACKs happen when `handle_timeout` finally comes,
//!   and a connection left without time long enough fails on consent
//!   expiry like one whose peer vanished.
//! - `handle_timeout` called early is harmless: nothing that is not due
//!   runs.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod channel;
mod error;
mod event;
mod jsep;
mod rtc;
mod stats_report;
mod track;

pub use channel::{ChannelRef, DataChannelInfo, DataChannelInit, DataChannelState};
pub use error::{
    AccessError, ArgumentError, IceServerUrlError, JsepCall, ModificationError, OperationError,
    RtcError, SdpError, StateError,
};
pub use event::{PeerConnectionState, RtcEvent, Transmit};
pub use jsep::{IceCandidateInit, SdpType, SessionDescription, SignalingState};
pub use realtimer_bwe::{Bitrate, BweConfig};
pub use realtimer_datachannel::{ChannelData, ChannelError, SctpConfig};
pub use realtimer_dtls::{Certificate, Fingerprint};
pub use realtimer_ice::{IceConfig, IceConnectionState, IceGatheringState};
pub use realtimer_rtp::AudioLevel;
pub use rtc::{
    payload_len, LayerTarget, RemoteLayer, Rtc, RtcConfig, SendLayerInit, MAX_MEDIA_QUEUE,
    MAX_RTP_EVENTS, SRTP_PROFILES,
};
pub use stats_report::{
    CandidatePairStats, CandidateStats, DataChannelStats, InboundRtpStats, OutboundRtpStats,
    PeerConnectionStats, SctpTransportStats, StatsReport, TransportStats,
};
pub use track::{
    Codec, Direction, Feedback, KeyframeRequest, MediaKind, MediaRef, RtpPacket, SenderClock,
    TrackInfo, MAX_NACKED,
};
