//! Errors, named after the DOMExceptions a browser throws for the same call.

use realtimer_datachannel::ChannelError;

/// Why a call was refused (W3C webrtc-pc names the same failures).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcError {
    /// InvalidStateError: the call is not allowed in the current state
    /// (signaling state, channel state, closed connection).
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// The description is not valid SDP, or lacks what WebRTC needs.
    /// `line` is 1-based; 0 when the problem is not tied to one line.
    #[error("invalid SDP at line {line}: {message}")]
    InvalidSdp {
        /// The offending line (1-based), or 0.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// InvalidModificationError: the SDP given to `set_local_description`
    /// is not the one `create_offer`/`create_answer` produced.
    #[error("invalid modification: {0}")]
    InvalidModification(String),
    /// OperationError: the operation failed (an ICE candidate that cannot be
    /// added, a certificate that cannot be made...).
    #[error("operation failed: {0}")]
    OperationError(String),
    /// TypeError: an argument is not acceptable (both maxPacketLifeTime and
    /// maxRetransmits, a label too long...).
    #[error("type error: {0}")]
    TypeError(String),
    /// SyntaxError: an ICE server URL does not parse, or an ICE server has
    /// no URL (W3C webrtc-pc §4.4.1.6, "validate the ICE servers").
    #[error("syntax error: {0}")]
    SyntaxError(String),
    /// InvalidAccessError: a `turn:` or `turns:` server without a username
    /// or credential (W3C webrtc-pc §4.4.1.6).
    #[error("invalid access: {0}")]
    InvalidAccess(String),
    /// A send queue is full: poll the transmits, then try again.
    #[error("the send queue is full")]
    QueueFull,
    /// The data channel layer refused a send or a channel.
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

impl RtcError {
    pub(crate) fn state(msg: impl Into<String>) -> Self {
        RtcError::InvalidState(msg.into())
    }

    pub(crate) fn sdp(line: usize, msg: impl Into<String>) -> Self {
        RtcError::InvalidSdp {
            line,
            message: msg.into(),
        }
    }
}

impl From<realtimer_sdp::ParseError> for RtcError {
    fn from(e: realtimer_sdp::ParseError) -> Self {
        RtcError::InvalidSdp {
            line: e.line,
            message: e.kind.to_string(),
        }
    }
}
