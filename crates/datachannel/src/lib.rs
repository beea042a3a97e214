//! WebRTC data channels over SCTP, sans-IO: the Data Channel Establishment
//! Protocol (RFC 8832) and channel semantics (RFC 8831).
//!
//! [`DataChannels`] owns the SCTP [`Association`] of one peer connection.
//! SCTP packets go in and out through it (the caller wraps them in DTLS);
//! channels are created, used and closed through it; what happens comes out
//! of [`DataChannels::poll_event`].
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod channels;
mod dcep;

pub use channels::{
    ChannelData, ChannelError, ChannelInfo, ChannelInit, ChannelState, DataChannelEvent,
    DataChannels, DtlsRole,
};
pub use dcep::{ChannelType, DcepError, DcepMessage, OpenMessage, MAX_LABEL_LEN};
pub use realtimer_sctp::{Association, SctpConfig};

/// Payload protocol identifiers (RFC 8831 §8, RFC 8832 §8.1).
pub mod ppid {
    /// DCEP messages.
    pub const DCEP: u32 = 50;
    /// A UTF-8 string.
    pub const STRING: u32 = 51;
    /// Binary data.
    pub const BINARY: u32 = 53;
    /// An empty string (sent as one zero byte).
    pub const STRING_EMPTY: u32 = 56;
    /// Empty binary data (sent as one zero byte).
    pub const BINARY_EMPTY: u32 = 57;
}
