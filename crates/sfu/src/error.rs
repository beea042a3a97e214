//! What the forwarding unit refuses, and why.

use realtimer_proto::RtcError;

use crate::ParticipantId;

/// Why an operation of [`crate::Sfu`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    /// A limit of [`crate::Limits`].
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// No participant with this id (it left, or never joined).
    #[error("no {0}")]
    UnknownParticipant(ParticipantId),
    /// The participant's connection refused the call (a bad description,
    /// the wrong signaling state...).
    #[error(transparent)]
    Rtc(#[from] RtcError),
}

/// A limit of [`crate::Limits`] was reached; each says which and its
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The room has [`crate::Limits::participants_per_room`] already.
    #[error("room {room:?} is full: {limit} participants")]
    RoomFull {
        /// The room.
        room: String,
        /// The limit.
        limit: usize,
    },
    /// The participant offered more tracks than
    /// [`crate::Limits::tracks_per_participant`]; the extra ones are not
    /// forwarded.
    #[error("{participant} publishes more than {limit} tracks")]
    TooManyTracks {
        /// Who.
        participant: ParticipantId,
        /// The limit.
        limit: usize,
    },
    /// The participant sends more than
    /// [`crate::Limits::bitrate_per_publisher`]: its video is not
    /// forwarded until it is back under (audio still is).
    #[error("{participant} sends {bitrate} bit/s, over the limit of {limit}")]
    BitrateExceeded {
        /// Who.
        participant: ParticipantId,
        /// What it sent over the last second.
        bitrate: u64,
        /// The limit.
        limit: u64,
    },
}
