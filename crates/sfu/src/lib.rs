//! realtimer's selective forwarding unit (SFU): rooms of participants,
//! each with one peer connection ([`realtimer_proto::Rtc`]) to the
//! server, every connection on the same UDP port(s). What one participant
//! publishes goes to every other participant of its room without being
//! decoded: SRTP is unprotected once (by the publisher's connection) and
//! protected once per subscriber (by each subscriber's connection).
//!
//! Like every core of realtimer, [`Sfu`] is sans-IO: datagrams and
//! `now: Instant` in; [`realtimer_proto::Transmit`]s, [`SfuEvent`]s and
//! the next timeout out. The caller owns the socket, the clock and the
//! signaling channel (the server's `/ws` and WHIP/WHEP routes).
//!
//! Per subscriber and track, the SSRC is the subscriber connection's own
//! (one per transceiver), and sequence numbers and timestamps are
//! rewritten ([`StreamRewriter`]) so a pause, a mute or a change of source
//! shows no gap (RFC 7667 §3.7). Video starts and resumes on a keyframe
//! ([`starts_keyframe`]); the publisher is asked for one (PLI, RFC 4585
//! §6.3.1) when a subscriber joins or asks. Lost packets a subscriber
//! NACKs are sent again from its connection's own buffer (RFC 4585
//! §6.2.1); what the server lost from the publisher, its connection
//! NACKs upstream. When a subscriber's send-side estimate cannot carry
//! audio and video, its video is paused before its audio suffers.
//!
//! Each room's dominant speaker is found from the audio levels its
//! publishers send (RFC 6464, [`SpeakerDetector`]) and announced
//! ([`SfuEvent::ActiveSpeaker`]).
//!
//! Limits ([`Limits`]): participants per room, tracks per participant and
//! bitrate per publisher, each refused with an [`SfuError`] variant.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod error;
mod forward;
mod keyframe;
mod meter;
mod participant;
mod rewrite;
mod sfu;
mod speaker;

use std::fmt;
use std::net::SocketAddr;

use realtimer_proto::{
    Certificate, ChannelData, IceCandidateInit, MediaKind, MediaRef, PeerConnectionState,
    RtcConfig, SessionDescription,
};

pub use error::{LimitError, SfuError};
pub use keyframe::starts_keyframe;
pub use meter::BitrateMeter;
pub use rewrite::StreamRewriter;
pub use sfu::{Sfu, SfuStats};
pub use speaker::{SpeakerConfig, SpeakerDetector};

/// A participant of some room of an [`Sfu`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "participant {}", self.0)
    }
}

/// A published track: its publisher and the transceiver it arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId {
    /// Who publishes it.
    pub participant: ParticipantId,
    /// The transceiver on the publisher's connection.
    pub media: MediaRef,
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A token (RFC 8830 §2): it is the `a=msid` track id at the
        // subscribers.
        write!(f, "{}-{}", self.participant.0, self.media.index())
    }
}

/// What the server accepts of each participant and room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most participants in one room.
    pub participants_per_room: usize,
    /// Most tracks one participant publishes.
    pub tracks_per_participant: usize,
    /// Most bit/s one publisher sends (all its tracks, over a second)
    /// before its video is held.
    pub bitrate_per_publisher: u64,
}

impl Default for Limits {
    /// 50 per room, 4 tracks each, 8 Mbit/s per publisher (a 1080p
    /// simulcast camera with audio sends about 4).
    fn default() -> Self {
        Limits {
            participants_per_room: 50,
            tracks_per_participant: 4,
            bitrate_per_publisher: 8_000_000,
        }
    }
}

/// How an [`Sfu`] makes its connections.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The local addresses every connection gathers host candidates on
    /// (the shared socket's).
    pub local_addresses: Vec<SocketAddr>,
    /// The connections' settings; each gets its own seed from
    /// [`SfuConfig::seed`].
    pub rtc: RtcConfig,
    /// The DTLS certificate all connections present (cheap to share).
    pub certificate: Certificate,
    /// The limits.
    pub limits: Limits,
    /// Seeds the connections' randomness (ICE credentials, SSRCs).
    pub seed: u64,
    /// How each room's dominant speaker is chosen
    /// ([`SfuEvent::ActiveSpeaker`]).
    pub speaker: SpeakerConfig,
}

impl SfuConfig {
    /// Connections on `local_addresses` with `certificate`, default
    /// settings and limits.
    pub fn new(local_addresses: Vec<SocketAddr>, certificate: Certificate) -> SfuConfig {
        SfuConfig {
            local_addresses,
            rtc: RtcConfig::default(),
            certificate,
            limits: Limits::default(),
            seed: 0,
            speaker: SpeakerConfig::default(),
        }
    }
}

/// What the caller signals to participants or needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SfuEvent {
    /// A local ICE candidate for the participant (`None`: the end).
    IceCandidate(ParticipantId, Option<IceCandidateInit>),
    /// Tracks came or went: send this offer to the participant and hand
    /// its answer to [`Sfu::handle_answer`].
    Offer(ParticipantId, SessionDescription),
    /// The participant's connection changed state.
    ConnectionState(ParticipantId, PeerConnectionState),
    /// A participant joined `room` (told to the room, the newcomer too).
    ParticipantJoined {
        /// The room.
        room: String,
        /// Who.
        participant: ParticipantId,
    },
    /// A participant left `room`, by [`Sfu::leave`] or because its
    /// connection failed or closed (told to those still in the room).
    ParticipantLeft {
        /// The room.
        room: String,
        /// Who.
        participant: ParticipantId,
    },
    /// Who speaks in `room` changed (RFC 6464 audio levels): told to
    /// the room.
    ActiveSpeaker {
        /// The room.
        room: String,
        /// The loudest voice now; `None`: silence.
        participant: Option<ParticipantId>,
    },
    /// A participant published a track in `room`.
    TrackPublished {
        /// The room.
        room: String,
        /// The track.
        track: TrackId,
        /// Audio or video.
        kind: MediaKind,
        /// The `a=msid` stream ids the publisher gave.
        stream_ids: Vec<String>,
    },
    /// A participant's track is gone (it left).
    TrackUnpublished {
        /// The room.
        room: String,
        /// The track.
        track: TrackId,
    },
    /// A participant hit a limit while publishing (too many tracks, too
    /// many bits): what was over is not forwarded.
    LimitExceeded(LimitError),
    /// A participant's data-channel message, already sent on to the rest
    /// of its room.
    Message(ParticipantId, ChannelData),
    /// The participant's connection failed or closed: it left its room.
    Left(ParticipantId),
}
