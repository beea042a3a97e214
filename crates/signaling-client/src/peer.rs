//! [`PeerSession`]: the offer/answer/candidate exchange of
//! [`SessionMessage`]s applied to a `realtimer::PeerConnection`, whatever
//! carries the messages (a room of `realtimer serve`, another relay, a
//! channel in a test).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use realtimer::{IceCandidateInit, PeerConnection, RtcError, SessionDescription, StateError};
use tracing::{debug, warn};

use crate::session::SessionMessage;

/// Candidates held for a description that has not come yet (see
/// [`Handled::Held`]): more than any browser trickles for one session,
/// and a bound on what the other side can make us keep.
pub const MAX_HELD_CANDIDATES: usize = 128;

/// What [`PeerSession::handle`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Handled {
    /// Applied; send this back (the answer to an offer).
    Reply(SessionMessage),
    /// Applied; nothing to send.
    Applied,
    /// A candidate that came before any remote description: held, and
    /// added as soon as a description is set (addIceCandidate itself
    /// refuses it then, with InvalidStateError, W3C webrtc-pc §4.4.1.6;
    /// a relay may deliver one side's candidates ahead of its offer).
    Held,
    /// The other side hung up.
    Bye,
}

/// A candidate's line for the log.
fn describe(candidate: &Option<IceCandidateInit>) -> &str {
    candidate
        .as_ref()
        .map_or("end of candidates", |c| c.candidate.as_str())
}

/// Drives a [`PeerConnection`] from the other side's messages.
///
/// The caller moves messages: each one received goes to
/// [`PeerSession::handle`] (and its [`Handled::Reply`] back to the other
/// side), and each `PeerConnectionEvent::IceCandidate` of the connection
/// goes out as [`PeerSession::candidate`]. The side that calls sends
/// [`PeerSession::offer`] first. Messages are handled one at a time, in
/// the order they came; clones share the held candidates.
#[derive(Debug, Clone)]
pub struct PeerSession {
    pc: PeerConnection,
    /// Candidates that came before a remote description, oldest first,
    /// at most [`MAX_HELD_CANDIDATES`].
    /// `None` is the end of candidates.
    held: Arc<Mutex<VecDeque<Option<IceCandidateInit>>>>,
}

impl PeerSession {
    /// A session for `pc`.
    pub fn new(pc: PeerConnection) -> Self {
        Self {
            pc,
            held: Arc::default(),
        }
    }

    /// The connection it drives.
    pub fn peer_connection(&self) -> &PeerConnection {
        &self.pc
    }

    /// createOffer and setLocalDescription (RFC 8829 §5.2); the offer to
    /// send.
    pub async fn offer(&self) -> Result<SessionMessage, RtcError> {
        let offer = self.pc.create_offer().await?;
        self.pc.set_local_description(offer.clone()).await?;
        Ok(SessionMessage::Offer { sdp: offer.sdp })
    }

    /// Applies a message of the other side: an offer is set and answered
    /// (RFC 8829 §5.3), an answer set, a candidate added (an empty one
    /// ends the candidates; one before any description is
    /// [`Handled::Held`]).
    ///
    /// An error is the connection's own (W3C webrtc-pc's exceptions):
    /// a description it refused, or a candidate it cannot add (one of an
    /// unknown section, or a candidate before any description when
    /// [`MAX_HELD_CANDIDATES`] are held already).
    pub async fn handle(&self, message: SessionMessage) -> Result<Handled, RtcError> {
        match message {
            SessionMessage::Offer { sdp } => {
                self.pc
                    .set_remote_description(SessionDescription::offer(sdp))
                    .await?;
                self.add_held().await;
                let answer = self.pc.create_answer().await?;
                self.pc.set_local_description(answer.clone()).await?;
                Ok(Handled::Reply(SessionMessage::Answer { sdp: answer.sdp }))
            }
            SessionMessage::Answer { sdp } => {
                self.pc
                    .set_remote_description(SessionDescription::answer(sdp))
                    .await?;
                self.add_held().await;
                Ok(Handled::Applied)
            }
            SessionMessage::Candidate {
                candidate,
                sdp_mid,
                sdp_m_line_index,
                username_fragment,
            } => {
                let init = (!candidate.is_empty()).then_some(IceCandidateInit {
                    candidate,
                    sdp_mid,
                    sdp_m_line_index,
                    username_fragment,
                });
                self.add_candidate(init).await
            }
            SessionMessage::Bye => Ok(Handled::Bye),
        }
    }

    /// addIceCandidate, or held when there is no remote description yet.
    async fn add_candidate(&self, init: Option<IceCandidateInit>) -> Result<Handled, RtcError> {
        let refused = match self.pc.add_ice_candidate(init.clone()).await {
            Ok(()) => return Ok(Handled::Applied),
            Err(e) => e,
        };
        let RtcError::InvalidState(StateError::NoRemoteDescription) = refused else {
            return Err(refused);
        };
        {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            if held.len() >= MAX_HELD_CANDIDATES {
                return Err(refused);
            }
            debug!(
                candidate = describe(&init),
                "a candidate before the description: held"
            );
            held.push_back(init);
        }
        // A description set meanwhile (by a clone) finds the candidate.
        if self.pc.remote_description().is_some() {
            self.add_held().await;
        }
        Ok(Handled::Held)
    }

    /// Adds the held candidates, now that a remote description is set. A
    /// candidate refused now (an unknown section) is logged: the
    /// description that came was applied, which is what the caller asked.
    async fn add_held(&self) {
        let held: Vec<_> = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for init in held {
            let what = describe(&init).to_owned();
            if let Err(e) = self.pc.add_ice_candidate(init).await {
                warn!(candidate = what, "a held candidate refused: {e}");
            }
        }
    }

    /// The message that trickles a local candidate (`None`: the end of
    /// candidates, sent as an empty one).
    pub fn candidate(candidate: Option<IceCandidateInit>) -> SessionMessage {
        match candidate {
            Some(c) => SessionMessage::Candidate {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_m_line_index: c.sdp_m_line_index,
                username_fragment: c.username_fragment,
            },
            None => SessionMessage::Candidate {
                candidate: String::new(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            },
        }
    }
}
