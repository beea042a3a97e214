//! Data channel descriptions shared by the core and the async API.

use std::fmt;

use realtimer_datachannel::ChannelInit;

use crate::error::{ArgumentError, RtcError};

/// Names one data channel of an [`crate::Rtc`] for its whole life, before
/// its SCTP stream id is known (W3C: `id` is null until the DTLS role is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelRef(pub(crate) u32);

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel#{}", self.0)
    }
}

/// RTCDataChannelInit (W3C webrtc-pc §6.2), every field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataChannelInit {
    /// Deliver in order (default true).
    pub ordered: bool,
    /// maxPacketLifeTime in milliseconds: retransmit for at most this long.
    pub max_packet_life_time: Option<u16>,
    /// maxRetransmits: retransmit at most this many times.
    pub max_retransmits: Option<u16>,
    /// The sub-protocol name.
    pub protocol: String,
    /// Negotiated by the application: both sides create the channel with
    /// the same `id`, no DCEP (RFC 8832) exchange.
    pub negotiated: bool,
    /// The stream id; required when `negotiated`, ignored otherwise.
    pub id: Option<u16>,
    /// RFC 8831 §6.4 priority (256 is "low", the browsers' default).
    pub priority: u16,
}

impl Default for DataChannelInit {
    fn default() -> Self {
        DataChannelInit {
            ordered: true,
            max_packet_life_time: None,
            max_retransmits: None,
            protocol: String::new(),
            negotiated: false,
            id: None,
            priority: 256,
        }
    }
}

impl DataChannelInit {
    /// W3C webrtc-pc §6.1 createDataChannel steps: the TypeErrors.
    pub(crate) fn validate(&self, label: &str) -> Result<ChannelInit, RtcError> {
        if label.len() > 65535 {
            return Err(ArgumentError::LabelTooLong { len: label.len() }.into());
        }
        if self.protocol.len() > 65535 {
            return Err(ArgumentError::ProtocolTooLong {
                len: self.protocol.len(),
            }
            .into());
        }
        if self.max_packet_life_time.is_some() && self.max_retransmits.is_some() {
            return Err(ArgumentError::BothReliabilityLimits.into());
        }
        let negotiated = match (self.negotiated, self.id) {
            (true, None) => return Err(ArgumentError::NegotiatedWithoutId.into()),
            (true, Some(65535)) => return Err(ArgumentError::ReservedId.into()),
            (true, Some(id)) => Some(id),
            (false, _) => None,
        };
        Ok(ChannelInit {
            ordered: self.ordered,
            max_packet_lifetime: self.max_packet_life_time,
            max_retransmits: self.max_retransmits,
            protocol: self.protocol.clone(),
            negotiated,
            priority: self.priority,
        })
    }
}

/// RTCDataChannelState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataChannelState {
    /// Not open yet.
    Connecting,
    /// Messages flow.
    Open,
    /// Closing: queued data drains, then the streams reset.
    Closing,
    /// Closed.
    Closed,
}

impl DataChannelState {
    /// The W3C string value.
    pub fn as_str(self) -> &'static str {
        match self {
            DataChannelState::Connecting => "connecting",
            DataChannelState::Open => "open",
            DataChannelState::Closing => "closing",
            DataChannelState::Closed => "closed",
        }
    }
}

impl fmt::Display for DataChannelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a data channel is: the RTCDataChannel attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataChannelInfo {
    /// The label.
    pub label: String,
    /// The sub-protocol.
    pub protocol: String,
    /// The SCTP stream id, once known.
    pub id: Option<u16>,
    /// In-order delivery.
    pub ordered: bool,
    /// maxRetransmits.
    pub max_retransmits: Option<u16>,
    /// maxPacketLifeTime, in milliseconds.
    pub max_packet_life_time: Option<u16>,
    /// Negotiated by the application.
    pub negotiated: bool,
    /// Priority.
    pub priority: u16,
}

impl DataChannelInfo {
    pub(crate) fn from_init(label: &str, init: &ChannelInit) -> Self {
        DataChannelInfo {
            label: label.to_owned(),
            protocol: init.protocol.clone(),
            id: init.negotiated,
            ordered: init.ordered,
            max_retransmits: init.max_retransmits,
            max_packet_life_time: init.max_packet_lifetime,
            negotiated: init.negotiated.is_some(),
            priority: init.priority,
        }
    }

    pub(crate) fn from_remote(info: &realtimer_datachannel::ChannelInfo) -> Self {
        DataChannelInfo {
            label: info.label.clone(),
            protocol: info.protocol.clone(),
            id: Some(info.id),
            ordered: info.ordered,
            max_retransmits: info.max_retransmits,
            max_packet_life_time: info.max_packet_lifetime,
            negotiated: info.negotiated,
            priority: info.priority,
        }
    }
}
