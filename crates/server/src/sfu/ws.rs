//! The forwarding unit's group calls on `/ws` (`docs/sfu.md`): the
//! `sfu-...` frames of [`realtimer_signaling::sfu`], beside the two-peer
//! rooms' frames on the same WebSocket. One [`SfuCall`] per connection
//! holds its participant, turns requests into commands to the unit and
//! the unit's events (its own and its room's) into frames.

use realtimer_proto::{IceCandidateInit, SessionDescription};
use realtimer_sfu::{LimitError, ParticipantId, SfuError, SfuEvent};
use realtimer_signaling::sfu::{
    SfuCandidate, SfuErrorCode, SfuEvent as Frame, SfuRequest, SFU_OLDEST_VERSION,
    SFU_PROTOCOL_VERSION,
};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::placement::{Placed, Placement};
use super::whip::{MAX_ROOM_NAME, MAX_SDP};
use super::{SfuCommandError, SfuService, PARTICIPANT_EVENTS};

/// Reads a text frame of `/ws` if it is one of the unit's (its `type`
/// starts with `sfu-`): the request, or the refusal to send back. `None`
/// for every other frame, which the rooms' protocol handles.
pub fn parse(text: &str) -> Option<Result<SfuRequest, Frame>> {
    #[derive(Deserialize)]
    struct Tagged<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    // The cheap test first: most frames are the rooms' relayed messages.
    if !text.contains("\"sfu-") {
        return None;
    }
    let tagged: Tagged = serde_json::from_str(text).ok()?;
    if !tagged.kind.starts_with("sfu-") {
        return None;
    }
    Some(
        serde_json::from_str(text)
            .map_err(|e| error(SfuErrorCode::Malformed, format!("not a valid request: {e}"))),
    )
}

fn error(code: SfuErrorCode, message: impl Into<String>) -> Frame {
    Frame::SfuError {
        code,
        message: message.into(),
    }
}

/// What the unit refused, as a frame.
fn refusal(e: SfuCommandError) -> Frame {
    let code = match &e {
        SfuCommandError::Stopped => SfuErrorCode::Unavailable,
        SfuCommandError::Sfu(SfuError::Limit(limit)) => limit_code(limit),
        SfuCommandError::Sfu(SfuError::UnknownParticipant(_)) => SfuErrorCode::NotJoined,
        SfuCommandError::Sfu(_) => SfuErrorCode::BadDescription,
    };
    error(code, e.to_string())
}

fn limit_code(limit: &LimitError) -> SfuErrorCode {
    match limit {
        LimitError::RoomFull { .. } => SfuErrorCode::RoomFull,
        LimitError::TooManyTracks { .. } => SfuErrorCode::TooManyTracks,
        LimitError::BitrateExceeded { .. } => SfuErrorCode::BitrateExceeded,
        _ => SfuErrorCode::Unknown,
    }
}

fn candidate_frame(c: Option<IceCandidateInit>) -> Option<SfuCandidate> {
    c.map(|c| SfuCandidate {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_m_line_index: c.sdp_m_line_index,
        username_fragment: c.username_fragment,
    })
}

/// A room name as `/ws` takes them: 1–128 bytes, no control characters.
fn valid_room(room: &str) -> bool {
    !room.is_empty() && room.len() <= MAX_ROOM_NAME && !room.chars().any(char::is_control)
}

/// One `/ws` connection's part in a group call.
#[derive(Debug)]
pub struct SfuCall {
    service: Option<SfuService>,
    /// Where rooms live, when nodes share them through Redis.
    placement: Option<Placement>,
    /// The participant, once joined.
    participant: Option<ParticipantId>,
    events: Option<mpsc::Receiver<SfuEvent>>,
}

impl SfuCall {
    /// A connection not in a call yet; `service` is `None` when the server
    /// runs no forwarding unit (every request is refused).
    pub fn new(service: Option<SfuService>) -> SfuCall {
        SfuCall {
            service,
            placement: None,
            participant: None,
            events: None,
        }
    }

    /// Joins are placed through Redis: a client of protocol version 2 or
    /// later whose room lives on another node is sent there
    /// ([`Frame::SfuRedirect`]).
    pub fn with_placement(mut self, placement: Option<Placement>) -> SfuCall {
        self.placement = placement;
        self
    }

    /// Handles a request; returns the frame to answer with, if any.
    pub async fn handle(&mut self, request: SfuRequest) -> Option<Frame> {
        let Some(service) = self.service.clone() else {
            return Some(error(
                SfuErrorCode::SfuDisabled,
                "this server runs no forwarding unit",
            ));
        };
        if let SfuRequest::SfuJoin { room, version } = request {
            return Some(self.join(&service, room, version).await);
        }
        let Some(participant) = self.participant else {
            return Some(error(SfuErrorCode::NotJoined, "join a call first"));
        };
        let result = match request {
            SfuRequest::SfuJoin { .. } => return None,
            SfuRequest::SfuOffer { sdp } | SfuRequest::SfuAnswer { sdp } if sdp.len() > MAX_SDP => {
                return Some(error(
                    SfuErrorCode::BadDescription,
                    format!("SDP over {MAX_SDP} bytes"),
                ))
            }
            SfuRequest::SfuOffer { sdp } => {
                return Some(
                    match service
                        .offer(participant, SessionDescription::offer(sdp))
                        .await
                    {
                        Ok(answer) => Frame::SfuAnswer { sdp: answer.sdp },
                        Err(e) => refusal(e),
                    },
                )
            }
            SfuRequest::SfuAnswer { sdp } => {
                service
                    .answer(participant, SessionDescription::answer(sdp))
                    .await
            }
            SfuRequest::SfuCandidate { candidate } => {
                let candidate =
                    candidate
                        .filter(|c| !c.candidate.is_empty())
                        .map(|c| IceCandidateInit {
                            candidate: c.candidate,
                            sdp_mid: c.sdp_mid,
                            sdp_m_line_index: c.sdp_m_line_index,
                            username_fragment: c.username_fragment,
                        });
                service.candidate(participant, candidate).await
            }
            SfuRequest::SfuMute { muted } => service.mute(participant, muted).await,
            SfuRequest::SfuLeave => {
                self.participant = None;
                self.events = None;
                service.leave(participant).await
            }
        };
        result.err().map(refusal)
    }

    async fn join(&mut self, service: &SfuService, room: String, version: u32) -> Frame {
        if !(SFU_OLDEST_VERSION..=SFU_PROTOCOL_VERSION).contains(&version) {
            return error(
                SfuErrorCode::UnsupportedVersion,
                format!(
                    "this server speaks versions {SFU_OLDEST_VERSION} to {SFU_PROTOCOL_VERSION}, not {version}"
                ),
            );
        }
        if self.participant.is_some() {
            return error(SfuErrorCode::AlreadyJoined, "already in a call");
        }
        if !valid_room(&room) {
            return error(
                SfuErrorCode::BadRoomName,
                "a room name is 1-128 bytes without control characters",
            );
        }
        if let Some(placement) = self.placement.as_ref().filter(|_| version >= 2) {
            if let Placed::Elsewhere { url } = placement.place(&room).await {
                return Frame::SfuRedirect { room, url };
            }
        }
        let (events, receiver) = mpsc::channel(PARTICIPANT_EVENTS);
        match service.join_room(&room, events, true).await {
            Ok(joined) => {
                self.participant = Some(joined.participant);
                self.events = Some(receiver);
                Frame::SfuJoined {
                    room,
                    participant: joined.participant.0,
                    participants: joined.others.iter().map(|p| p.0).collect(),
                    version,
                }
            }
            Err(e) => refusal(e),
        }
    }

    /// The next frame the unit has for this connection; pending while it
    /// is in no call.
    pub async fn next(&mut self) -> Frame {
        loop {
            let Some(events) = &mut self.events else {
                return std::future::pending().await;
            };
            let Some(event) = events.recv().await else {
                self.events = None;
                self.participant = None;
                return error(SfuErrorCode::Unavailable, "the forwarding unit stopped");
            };
            if let Some(frame) = self.frame(event) {
                return frame;
            }
        }
    }

    /// The frame an event of the unit becomes for this connection.
    fn frame(&mut self, event: SfuEvent) -> Option<Frame> {
        let me = self.participant?;
        Some(match event {
            SfuEvent::IceCandidate(_, c) => Frame::SfuCandidate {
                candidate: candidate_frame(c),
            },
            SfuEvent::Offer(_, offer) => Frame::SfuOffer { sdp: offer.sdp },
            SfuEvent::ConnectionState(_, state) => Frame::SfuConnectionState {
                state: state.to_string(),
            },
            SfuEvent::ParticipantJoined { participant, .. } if participant != me => {
                Frame::SfuParticipantJoined {
                    participant: participant.0,
                }
            }
            SfuEvent::ParticipantLeft { participant, .. } => Frame::SfuParticipantLeft {
                participant: participant.0,
            },
            SfuEvent::TrackPublished { track, kind, .. } => Frame::SfuTrackPublished {
                participant: track.participant.0,
                track: track.to_string(),
                kind: kind.to_string(),
            },
            SfuEvent::TrackUnpublished { track, .. } => Frame::SfuTrackUnpublished {
                participant: track.participant.0,
                track: track.to_string(),
            },
            SfuEvent::ActiveSpeaker { participant, .. } => Frame::SfuActiveSpeaker {
                participant: participant.map(|p| p.0),
            },
            SfuEvent::LimitExceeded(limit) => error(limit_code(&limit), limit.to_string()),
            SfuEvent::Left(_) => {
                self.participant = None;
                self.events = None;
                return None;
            }
            _ => return None,
        })
    }

    /// The connection closed: its participant leaves.
    pub async fn close(&mut self) {
        self.events = None;
        if let (Some(service), Some(participant)) = (&self.service, self.participant.take()) {
            let _ = service.leave(participant).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_units_frames_from_the_rooms() {
        assert!(parse(r#"{"type":"join","room":"sfu-x"}"#).is_none());
        assert!(parse(r#"{"type":"message","data":{"type":"sfu-offer"}}"#).is_none());
        assert!(matches!(
            parse(r#"{"type":"sfu-join","room":"r"}"#),
            Some(Ok(SfuRequest::SfuJoin { .. }))
        ));
        assert!(matches!(
            parse(r#"{"type":"sfu-nonsense"}"#),
            Some(Err(Frame::SfuError {
                code: SfuErrorCode::Malformed,
                ..
            }))
        ));
        assert!(parse(r#"{"type":"sfu-join""#).is_none(), "not JSON");
    }
}
