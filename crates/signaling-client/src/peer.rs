//! [`PeerSession`]: the offer/answer/candidate exchange of
//! [`SessionMessage`]s applied to a `realtimer::PeerConnection`, whatever
//! carries the messages (a room of `realtimer serve`, another relay, a
//! channel in a test).

use realtimer::{IceCandidateInit, PeerConnection, RtcError, SessionDescription};

use crate::session::SessionMessage;

/// What [`PeerSession::handle`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Handled {
    /// Applied; send this back (the answer to an offer).
    Reply(SessionMessage),
    /// Applied; nothing to send.
    Applied,
    /// The other side hung up.
    Bye,
}

/// Drives a [`PeerConnection`] from the other side's messages.
///
/// The caller moves messages: each one received goes to
/// [`PeerSession::handle`] (and its [`Handled::Reply`] back to the other
/// side), and each `PeerConnectionEvent::IceCandidate` of the connection
/// goes out as [`PeerSession::candidate`]. The side that calls sends
/// [`PeerSession::offer`] first.
#[derive(Debug, Clone)]
pub struct PeerSession {
    pc: PeerConnection,
}

impl PeerSession {
    /// A session for `pc`.
    pub fn new(pc: PeerConnection) -> Self {
        Self { pc }
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
    /// ends the candidates).
    pub async fn handle(&self, message: SessionMessage) -> Result<Handled, RtcError> {
        match message {
            SessionMessage::Offer { sdp } => {
                self.pc
                    .set_remote_description(SessionDescription::offer(sdp))
                    .await?;
                let answer = self.pc.create_answer().await?;
                self.pc.set_local_description(answer.clone()).await?;
                Ok(Handled::Reply(SessionMessage::Answer { sdp: answer.sdp }))
            }
            SessionMessage::Answer { sdp } => {
                self.pc
                    .set_remote_description(SessionDescription::answer(sdp))
                    .await?;
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
                self.pc.add_ice_candidate(init).await?;
                Ok(Handled::Applied)
            }
            SessionMessage::Bye => Ok(Handled::Bye),
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
