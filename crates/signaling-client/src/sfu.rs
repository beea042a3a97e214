//! Group calls through the server's forwarding unit (SFU) on `/ws`
//! (`docs/sfu.md`): the client holds one peer connection to the server,
//! which forwards what it publishes to the rest of the room and sends it
//! the others' tracks. The frames share `/ws` with the two-peer rooms of
//! [`crate::ws`]; theirs are tagged `sfu-...`, so the two never mix.
//!
//! The protocol is versioned: a client says which version it speaks in
//! [`SfuRequest::SfuJoin`]; the server refuses one it does not know with
//! [`SfuErrorCode::UnsupportedVersion`] and says the version spoken in
//! [`SfuEvent::SfuJoined`]. Version 2 adds [`SfuEvent::SfuRedirect`]:
//! servers whose rooms are placed across nodes send a client of version 2
//! to its room's node; a client of version 1 joins where it is.

use serde::{Deserialize, Serialize};

/// The version of the protocol this crate speaks.
pub const SFU_PROTOCOL_VERSION: u32 = 2;

/// The oldest version servers of this crate still speak.
pub const SFU_OLDEST_VERSION: u32 = 1;

fn first_version() -> u32 {
    1
}

/// A trickled ICE candidate as browsers write it
/// (`RTCIceCandidate.toJSON()`, W3C webrtc-pc §4.8.2); an empty
/// `candidate` is the end of candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SfuCandidate {
    /// The `candidate:...` line, without `a=`.
    pub candidate: String,
    /// The media section's `a=mid`.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// The media section's index.
    #[serde(rename = "sdpMLineIndex", default)]
    pub sdp_m_line_index: Option<u16>,
    /// The ICE ufrag the candidate belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// A frame a client of the forwarding unit sends on `/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SfuRequest {
    /// Join `room`'s group call (one per connection). Then send an
    /// [`SfuRequest::SfuOffer`] with what you publish.
    SfuJoin {
        /// The room (1–128 bytes of UTF-8, no control characters).
        room: String,
        /// The protocol version the client speaks (1 when absent).
        #[serde(default = "first_version")]
        version: u32,
    },
    /// Our offer: what we publish (answered by [`SfuEvent::SfuAnswer`]).
    SfuOffer {
        /// The SDP.
        sdp: String,
    },
    /// Our answer to the server's [`SfuEvent::SfuOffer`].
    SfuAnswer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled candidate of ours; `null` (or an empty `candidate`) is
    /// the end of them.
    SfuCandidate {
        /// The candidate.
        candidate: Option<SfuCandidate>,
    },
    /// Hold (`true`) or release what we publish.
    SfuMute {
        /// Held.
        muted: bool,
    },
    /// Leave the call (the WebSocket stays open).
    SfuLeave,
}

/// A frame the server sends to a client of the forwarding unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SfuEvent {
    /// You are in the call as `participant`, with those already there.
    SfuJoined {
        /// The room.
        room: String,
        /// Your id (the `a=msid` stream id of your tracks at the others).
        participant: u64,
        /// The others already in the room.
        participants: Vec<u64>,
        /// The server's protocol version.
        version: u32,
    },
    /// The server's answer to your offer.
    SfuAnswer {
        /// The SDP.
        sdp: String,
    },
    /// Tracks came or went: answer with [`SfuRequest::SfuAnswer`].
    SfuOffer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled candidate of the server (`null`: the end).
    SfuCandidate {
        /// The candidate.
        candidate: Option<SfuCandidate>,
    },
    /// Someone joined the room.
    SfuParticipantJoined {
        /// Who.
        participant: u64,
    },
    /// Someone left the room (their tracks go in the next offer).
    SfuParticipantLeft {
        /// Who.
        participant: u64,
    },
    /// A participant published a track; it reaches you in an offer, in
    /// a stream whose id is the participant's.
    SfuTrackPublished {
        /// Who publishes it.
        participant: u64,
        /// The track's id at the server (`participant-transceiver`).
        track: String,
        /// `audio` or `video`.
        kind: String,
    },
    /// A published track is gone.
    SfuTrackUnpublished {
        /// Who published it.
        participant: u64,
        /// The track's id at the server.
        track: String,
    },
    /// Who speaks now (the loudest voice over the last window, from the
    /// RFC 6464 audio levels the publishers send); `null`: nobody.
    SfuActiveSpeaker {
        /// The speaker.
        participant: Option<u64>,
    },
    /// (Version 2.) The room lives on another node of the deployment:
    /// open `/ws` at `url` (that node's base URL, `http[s]://HOST[:PORT]`;
    /// the WebSocket is `ws[s]://HOST[:PORT]/ws`) and join again there.
    /// Answers an [`SfuRequest::SfuJoin`] instead of
    /// [`SfuEvent::SfuJoined`].
    SfuRedirect {
        /// The room.
        room: String,
        /// The room's node's base URL.
        url: String,
    },
    /// Your connection to the server changed state
    /// (`RTCPeerConnectionState` names).
    SfuConnectionState {
        /// The state.
        state: String,
    },
    /// A request was refused, or a limit reached.
    SfuError {
        /// Why, for programs.
        code: SfuErrorCode,
        /// Why, in words.
        message: String,
    },
}

/// Why the forwarding unit refused a request (`docs/sfu.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SfuErrorCode {
    /// The server runs no forwarding unit (`serve` without `--sfu`).
    SfuDisabled,
    /// Not JSON, an unknown `sfu-...` type, or wrong field types.
    Malformed,
    /// The client speaks a version the server does not.
    UnsupportedVersion,
    /// The room name is empty, too long or has control characters.
    BadRoomName,
    /// `sfu-join` on a connection already in a call.
    AlreadyJoined,
    /// A request other than `sfu-join` before joining.
    NotJoined,
    /// The room has as many participants as it takes.
    RoomFull,
    /// More tracks than a participant may publish; the extra ones are not
    /// forwarded.
    TooManyTracks,
    /// The publisher sends more than it may; its video is held.
    BitrateExceeded,
    /// The SDP or candidate could not be used.
    BadDescription,
    /// The server's forwarding unit stopped.
    Unavailable,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_as_documented() {
        let join: SfuRequest = serde_json::from_str(r#"{"type":"sfu-join","room":"r"}"#).unwrap();
        assert_eq!(
            join,
            SfuRequest::SfuJoin {
                room: "r".into(),
                version: 1
            }
        );
        let candidate: SfuRequest = serde_json::from_str(
            r#"{"type":"sfu-candidate","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"u"}}"#,
        )
        .unwrap();
        let SfuRequest::SfuCandidate { candidate: Some(c) } = candidate else {
            panic!("{candidate:?}");
        };
        assert_eq!(c.sdp_mid.as_deref(), Some("0"));
        assert_eq!(c.sdp_m_line_index, Some(0));
        assert!(
            serde_json::from_str::<SfuRequest>(r#"{"type":"sfu-mute","muted":true,"x":1}"#)
                .is_err()
        );
        let event = SfuEvent::SfuActiveSpeaker {
            participant: Some(3),
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"sfu-active-speaker","participant":3}"#
        );
        let error: SfuEvent =
            serde_json::from_str(r#"{"type":"sfu-error","code":"new-code","message":"m"}"#)
                .unwrap();
        assert!(matches!(
            error,
            SfuEvent::SfuError {
                code: SfuErrorCode::Unknown,
                ..
            }
        ));
    }
}
