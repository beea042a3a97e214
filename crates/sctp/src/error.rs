//! Parse errors with what and where.

use std::fmt;

/// A chunk type number (RFC 9260 §3.2, RFC 3758, RFC 6525).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkType(pub u8);

impl ChunkType {
    /// DATA.
    pub const DATA: ChunkType = ChunkType(0);
    /// INIT.
    pub const INIT: ChunkType = ChunkType(1);
    /// INIT ACK.
    pub const INIT_ACK: ChunkType = ChunkType(2);
    /// SACK.
    pub const SACK: ChunkType = ChunkType(3);
    /// HEARTBEAT.
    pub const HEARTBEAT: ChunkType = ChunkType(4);
    /// HEARTBEAT ACK.
    pub const HEARTBEAT_ACK: ChunkType = ChunkType(5);
    /// ABORT.
    pub const ABORT: ChunkType = ChunkType(6);
    /// SHUTDOWN.
    pub const SHUTDOWN: ChunkType = ChunkType(7);
    /// SHUTDOWN ACK.
    pub const SHUTDOWN_ACK: ChunkType = ChunkType(8);
    /// ERROR.
    pub const ERROR: ChunkType = ChunkType(9);
    /// COOKIE ECHO.
    pub const COOKIE_ECHO: ChunkType = ChunkType(10);
    /// COOKIE ACK.
    pub const COOKIE_ACK: ChunkType = ChunkType(11);
    /// SHUTDOWN COMPLETE.
    pub const SHUTDOWN_COMPLETE: ChunkType = ChunkType(14);
    /// RE-CONFIG (RFC 6525).
    pub const RE_CONFIG: ChunkType = ChunkType(130);
    /// FORWARD TSN (RFC 3758).
    pub const FORWARD_TSN: ChunkType = ChunkType(192);

    fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "DATA",
            1 => "INIT",
            2 => "INIT ACK",
            3 => "SACK",
            4 => "HEARTBEAT",
            5 => "HEARTBEAT ACK",
            6 => "ABORT",
            7 => "SHUTDOWN",
            8 => "SHUTDOWN ACK",
            9 => "ERROR",
            10 => "COOKIE ECHO",
            11 => "COOKIE ACK",
            14 => "SHUTDOWN COMPLETE",
            130 => "RE-CONFIG",
            192 => "FORWARD TSN",
            _ => return None,
        })
    }
}

impl fmt::Debug for ChunkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "ChunkType({})", self.0),
        }
    }
}

impl fmt::Display for ChunkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why bytes are not a well-formed SCTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Shorter than the 12-byte common header.
    #[error("packet of {0} bytes is shorter than the 12-byte common header")]
    TooShort(usize),
    /// The CRC32c does not match (RFC 9260 §6.8).
    #[error("checksum mismatch: packet says {received:#010x}, computed {computed:#010x}")]
    BadChecksum {
        /// In the packet.
        received: u32,
        /// Over the packet.
        computed: u32,
    },
    /// A chunk header is cut short.
    #[error("chunk header truncated at offset {offset}")]
    TruncatedChunkHeader {
        /// Offset in the packet.
        offset: usize,
    },
    /// A chunk's length is below its header or past the packet's end.
    #[error("{chunk} at offset {offset}: length {length} is invalid")]
    BadChunkLength {
        /// The chunk type.
        chunk: ChunkType,
        /// Offset in the packet.
        offset: usize,
        /// Its declared length.
        length: u16,
    },
    /// A chunk's value is malformed.
    #[error("{chunk}: {what}")]
    BadChunk {
        /// The chunk type.
        chunk: ChunkType,
        /// What is wrong.
        what: &'static str,
    },
    /// A parameter is malformed.
    #[error("parameter {param_type:#06x}: {what}")]
    BadParam {
        /// The parameter type.
        param_type: u16,
        /// What is wrong.
        what: &'static str,
    },
    /// More chunks or parameters than we accept in one packet.
    #[error("more than {0} chunks or parameters in one packet")]
    TooMany(usize),
}
