//! SCTP for WebRTC data channels: RFC 9260 carried over DTLS (RFC 8261),
//! with partial reliability (RFC 3758) and stream reset (RFC 6525), sans-IO.
//!
//! This module level holds the wire format: [`Packet`] and its [`Chunk`]s,
//! parsed from and written to bytes with the CRC32c checksum.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod chunk;
mod error;
mod packet;
mod param;

pub use chunk::{
    Chunk, DataChunk, ForwardTsn, ForwardTsnStream, GapAckBlock, Init, ReConfig, Sack,
    CHUNK_HEADER_LEN, DATA_HEADER_LEN,
};
pub use error::{ChunkType, ParseError};
pub use packet::{CommonHeader, Packet, COMMON_HEADER_LEN};
pub use param::{Param, ReconfigParam};
