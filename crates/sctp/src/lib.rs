//! SCTP for WebRTC data channels: RFC 9260 carried over DTLS (RFC 8261),
//! with partial reliability (RFC 3758) and stream reset (RFC 6525), sans-IO.
//!
//! - [`Association`]: the state machine. Packets from DTLS go in with
//!   [`Association::handle_packet`], packets for DTLS come out of
//!   [`Association::poll_transmit`], messages and state changes out of
//!   [`Association::poll_event`]; time comes from the caller.
//! - [`Packet`] and its [`Chunk`]s: the wire format, parsed from and written
//!   to bytes with the CRC32c checksum.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod association;
mod chunk;
mod config;
mod error;
mod packet;
mod param;
mod queue;
mod recv;
mod send;
mod tsn;

pub use association::{Association, AssociationState, CloseReason, SctpEvent};
pub use chunk::{
    Chunk, DataChunk, ForwardTsn, ForwardTsnStream, GapAckBlock, Init, ReConfig, Sack,
    CHUNK_HEADER_LEN, DATA_HEADER_LEN,
};
pub use config::SctpConfig;
pub use error::{ChunkType, ParseError};
pub use packet::{CommonHeader, Packet, COMMON_HEADER_LEN};
pub use param::{Param, ReconfigParam, EDMID_DTLS};
pub use recv::Message;
pub use send::{Reliability, SendError, SenderStats};
