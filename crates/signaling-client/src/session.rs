//! What two peers relay to each other through a room: the web app's
//! (`web/js/room-peer.js`) and the libwebrtc test peer's JSON messages.
//!
//! ```text
//! {"type":"offer","sdp":"v=0..."}
//! {"type":"answer","sdp":"v=0..."}
//! {"type":"candidate","candidate":"candidate:...","sdpMid":"0","sdpMLineIndex":0}
//! {"type":"bye"}            (the codelab's pages send the bare string "bye")
//! ```
//!
//! An empty `candidate` is the end of candidates, as browsers signal it
//! (W3C webrtc-pc §4.8.1.2).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message of the offer/answer exchange (RFC 8829 §3), relayed
/// verbatim by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum SessionMessage {
    /// An offer's SDP.
    Offer {
        /// The session description.
        sdp: String,
    },
    /// An answer's SDP.
    Answer {
        /// The session description.
        sdp: String,
    },
    /// A trickled ICE candidate (RFC 8838), or the end of them when
    /// `candidate` is empty.
    Candidate {
        /// The `candidate:...` line, without `a=`.
        candidate: String,
        /// The media section's `a=mid`.
        #[serde(rename = "sdpMid", default)]
        sdp_mid: Option<String>,
        /// The media section's index.
        #[serde(rename = "sdpMLineIndex", default)]
        sdp_m_line_index: Option<u16>,
        /// The ICE ufrag the candidate belongs to.
        #[serde(
            rename = "usernameFragment",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        username_fragment: Option<String>,
    },
    /// The other side hung up.
    Bye,
}

impl SessionMessage {
    /// Reads a relayed message: one of the tagged objects above, or the
    /// codelab's bare `"bye"`. `None` for anything else (other programs
    /// relay their own messages through rooms too).
    pub fn from_value(value: &Value) -> Option<SessionMessage> {
        if value.as_str() == Some("bye") {
            return Some(SessionMessage::Bye);
        }
        SessionMessage::deserialize(value).ok()
    }

    /// The message as JSON, to relay.
    pub fn to_value(&self) -> Value {
        // A tagged enum of strings and integers always serializes.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The message as a JSON text frame.
    pub fn to_text(&self) -> String {
        self.to_value().to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_web_apps_messages() {
        let candidate = json!({
            "type": "candidate",
            "candidate": "candidate:1 1 udp 2122260223 10.0.0.1 50000 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        });
        let parsed = SessionMessage::from_value(&candidate).unwrap();
        assert_eq!(
            parsed,
            SessionMessage::Candidate {
                candidate: "candidate:1 1 udp 2122260223 10.0.0.1 50000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            }
        );
        assert_eq!(parsed.to_value(), candidate);
        let offer = SessionMessage::Offer {
            sdp: "v=0\r\n".into(),
        };
        assert_eq!(offer.to_value(), json!({"type": "offer", "sdp": "v=0\r\n"}));
    }

    #[test]
    fn bye_in_both_forms_and_other_messages_are_not_ours() {
        assert_eq!(
            SessionMessage::from_value(&json!("bye")),
            Some(SessionMessage::Bye)
        );
        assert_eq!(
            SessionMessage::from_value(&json!({"type": "bye"})),
            Some(SessionMessage::Bye)
        );
        assert_eq!(
            SessionMessage::from_value(&json!({"type": "peer-left"})),
            None
        );
        assert_eq!(SessionMessage::from_value(&json!({"type": "offer"})), None);
        assert_eq!(SessionMessage::from_value(&json!(42)), None);
    }
}
