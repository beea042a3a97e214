//! Chunks (RFC 9260 §3.2, §3.3; RFC 3758 §3.2; RFC 6525 §3.1).

use bytes::{BufMut, Bytes};

use crate::error::{ChunkType, ParseError};
use crate::param::{Param, ReconfigParam};

/// Type, flags and length.
pub const CHUNK_HEADER_LEN: usize = 4;
/// A DATA chunk's header: the chunk header and TSN, stream, SSN, PPID.
pub const DATA_HEADER_LEN: usize = 16;

/// A DATA chunk (RFC 9260 §3.3.1): one fragment of a user message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataChunk {
    /// Transmission sequence number.
    pub tsn: u32,
    /// Stream identifier.
    pub stream: u16,
    /// Stream sequence number (the same for every fragment of a message).
    pub ssn: u16,
    /// Payload protocol identifier (WebRTC: RFC 8831 §8).
    pub ppid: u32,
    /// U: deliver without regard to order.
    pub unordered: bool,
    /// B: the first fragment.
    pub beginning: bool,
    /// E: the last fragment.
    pub ending: bool,
    /// I: ask for an immediate SACK (RFC 7053).
    pub immediate: bool,
    /// The user data of this fragment.
    pub payload: Bytes,
}

/// INIT and INIT ACK (RFC 9260 §3.3.2, §3.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    /// The tag the peer must put in every packet to us.
    pub initiate_tag: u32,
    /// Advertised receiver window credit.
    pub a_rwnd: u32,
    /// Number of outbound streams.
    pub outbound_streams: u16,
    /// Maximum inbound streams.
    pub inbound_streams: u16,
    /// The first TSN the sender will use.
    pub initial_tsn: u32,
    /// Optional and variable-length parameters.
    pub params: Vec<Param>,
}

/// A gap ack block: TSNs cum_tsn+start ..= cum_tsn+end were received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapAckBlock {
    /// Offset of the first TSN of the block from the cumulative TSN ack.
    pub start: u16,
    /// Offset of the last TSN of the block.
    pub end: u16,
}

/// SACK (RFC 9260 §3.3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sack {
    /// Every TSN up to this one has arrived.
    pub cumulative_tsn_ack: u32,
    /// Receiver window credit.
    pub a_rwnd: u32,
    /// Blocks received beyond the cumulative TSN.
    pub gap_blocks: Vec<GapAckBlock>,
    /// TSNs received more than once since the last SACK.
    pub duplicate_tsns: Vec<u32>,
}

/// One stream's new SSN in a FORWARD TSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardTsnStream {
    /// The stream.
    pub stream: u16,
    /// The largest SSN skipped on it.
    pub ssn: u16,
}

/// FORWARD TSN (RFC 3758 §3.2): the receiver moves its cumulative TSN here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardTsn {
    /// The new cumulative TSN.
    pub new_cumulative_tsn: u32,
    /// Ordered streams whose skipped messages move their SSN.
    pub streams: Vec<ForwardTsnStream>,
}

/// RE-CONFIG (RFC 6525 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReConfig {
    /// One or two parameters.
    pub params: Vec<ReconfigParam>,
}

/// One chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Chunk {
    /// DATA.
    Data(DataChunk),
    /// INIT.
    Init(Init),
    /// INIT ACK.
    InitAck(Init),
    /// SACK.
    Sack(Sack),
    /// HEARTBEAT with its Heartbeat Info parameter, raw.
    Heartbeat(Bytes),
    /// HEARTBEAT ACK echoing the Heartbeat Info.
    HeartbeatAck(Bytes),
    /// ABORT; T set when the tag is reflected; error causes raw.
    Abort {
        /// T bit.
        reflected_tag: bool,
        /// Error causes.
        causes: Bytes,
    },
    /// SHUTDOWN.
    Shutdown {
        /// Cumulative TSN ack.
        cumulative_tsn_ack: u32,
    },
    /// SHUTDOWN ACK.
    ShutdownAck,
    /// SHUTDOWN COMPLETE.
    ShutdownComplete {
        /// T bit.
        reflected_tag: bool,
    },
    /// ERROR with its causes, raw.
    Error(Bytes),
    /// COOKIE ECHO.
    CookieEcho(Bytes),
    /// COOKIE ACK.
    CookieAck,
    /// FORWARD TSN.
    ForwardTsn(ForwardTsn),
    /// RE-CONFIG.
    ReConfig(ReConfig),
    /// A chunk type we do not know; its top two bits say what to do with
    /// it (RFC 9260 §3.2).
    Unknown {
        /// The type.
        chunk_type: ChunkType,
        /// The flags.
        flags: u8,
        /// The value.
        value: Bytes,
    },
}

fn be16(v: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([v[at], v[at + 1]])
}

fn be32(v: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]])
}

impl Chunk {
    /// The chunk type.
    pub fn chunk_type(&self) -> ChunkType {
        match self {
            Chunk::Data(_) => ChunkType::DATA,
            Chunk::Init(_) => ChunkType::INIT,
            Chunk::InitAck(_) => ChunkType::INIT_ACK,
            Chunk::Sack(_) => ChunkType::SACK,
            Chunk::Heartbeat(_) => ChunkType::HEARTBEAT,
            Chunk::HeartbeatAck(_) => ChunkType::HEARTBEAT_ACK,
            Chunk::Abort { .. } => ChunkType::ABORT,
            Chunk::Shutdown { .. } => ChunkType::SHUTDOWN,
            Chunk::ShutdownAck => ChunkType::SHUTDOWN_ACK,
            Chunk::ShutdownComplete { .. } => ChunkType::SHUTDOWN_COMPLETE,
            Chunk::Error(_) => ChunkType::ERROR,
            Chunk::CookieEcho(_) => ChunkType::COOKIE_ECHO,
            Chunk::CookieAck => ChunkType::COOKIE_ACK,
            Chunk::ForwardTsn(_) => ChunkType::FORWARD_TSN,
            Chunk::ReConfig(_) => ChunkType::RE_CONFIG,
            Chunk::Unknown { chunk_type, .. } => *chunk_type,
        }
    }

    /// Parses the chunk at `offset`; returns it and the next chunk's offset.
    pub(crate) fn parse(data: &Bytes, offset: usize) -> Result<(Chunk, usize), ParseError> {
        if data.len() - offset < CHUNK_HEADER_LEN {
            return Err(ParseError::TruncatedChunkHeader { offset });
        }
        let chunk_type = ChunkType(data[offset]);
        let flags = data[offset + 1];
        let length = be16(data, offset + 2);
        let end = offset + usize::from(length);
        if usize::from(length) < CHUNK_HEADER_LEN || end > data.len() {
            return Err(ParseError::BadChunkLength {
                chunk: chunk_type,
                offset,
                length,
            });
        }
        let start = offset + CHUNK_HEADER_LEN;
        let v = &data[start..end];
        let bad = |what| ParseError::BadChunk {
            chunk: chunk_type,
            what,
        };
        let need = |n: usize| {
            if v.len() < n {
                Err(bad("value too short"))
            } else {
                Ok(())
            }
        };
        let chunk = match chunk_type {
            ChunkType::DATA => {
                need(12)?;
                Chunk::Data(DataChunk {
                    tsn: be32(v, 0),
                    stream: be16(v, 4),
                    ssn: be16(v, 6),
                    ppid: be32(v, 8),
                    immediate: flags & 0x08 != 0,
                    unordered: flags & 0x04 != 0,
                    beginning: flags & 0x02 != 0,
                    ending: flags & 0x01 != 0,
                    payload: data.slice(start + 12..end),
                })
            }
            ChunkType::INIT | ChunkType::INIT_ACK => {
                need(16)?;
                let init = Init {
                    initiate_tag: be32(v, 0),
                    a_rwnd: be32(v, 4),
                    outbound_streams: be16(v, 8),
                    inbound_streams: be16(v, 10),
                    initial_tsn: be32(v, 12),
                    params: Param::parse_all(data, start + 16, end)?,
                };
                if chunk_type == ChunkType::INIT {
                    Chunk::Init(init)
                } else {
                    Chunk::InitAck(init)
                }
            }
            ChunkType::SACK => {
                need(12)?;
                let gaps = usize::from(be16(v, 8));
                let dups = usize::from(be16(v, 10));
                if v.len() < 12 + 4 * gaps + 4 * dups {
                    return Err(bad("gap blocks or duplicate TSNs past the chunk's end"));
                }
                let gap_blocks = (0..gaps)
                    .map(|i| GapAckBlock {
                        start: be16(v, 12 + 4 * i),
                        end: be16(v, 14 + 4 * i),
                    })
                    .collect();
                let at = 12 + 4 * gaps;
                let duplicate_tsns = (0..dups).map(|i| be32(v, at + 4 * i)).collect();
                Chunk::Sack(Sack {
                    cumulative_tsn_ack: be32(v, 0),
                    a_rwnd: be32(v, 4),
                    gap_blocks,
                    duplicate_tsns,
                })
            }
            ChunkType::HEARTBEAT => Chunk::Heartbeat(data.slice(start..end)),
            ChunkType::HEARTBEAT_ACK => Chunk::HeartbeatAck(data.slice(start..end)),
            ChunkType::ABORT => Chunk::Abort {
                reflected_tag: flags & 1 != 0,
                causes: data.slice(start..end),
            },
            ChunkType::SHUTDOWN => {
                need(4)?;
                Chunk::Shutdown {
                    cumulative_tsn_ack: be32(v, 0),
                }
            }
            ChunkType::SHUTDOWN_ACK => Chunk::ShutdownAck,
            ChunkType::SHUTDOWN_COMPLETE => Chunk::ShutdownComplete {
                reflected_tag: flags & 1 != 0,
            },
            ChunkType::ERROR => Chunk::Error(data.slice(start..end)),
            ChunkType::COOKIE_ECHO => Chunk::CookieEcho(data.slice(start..end)),
            ChunkType::COOKIE_ACK => Chunk::CookieAck,
            ChunkType::FORWARD_TSN => {
                need(4)?;
                let streams = v[4..]
                    .chunks_exact(4)
                    .map(|c| ForwardTsnStream {
                        stream: be16(c, 0),
                        ssn: be16(c, 2),
                    })
                    .collect();
                Chunk::ForwardTsn(ForwardTsn {
                    new_cumulative_tsn: be32(v, 0),
                    streams,
                })
            }
            ChunkType::RE_CONFIG => Chunk::ReConfig(ReConfig {
                params: ReconfigParam::parse_all(data, start, end)?,
            }),
            _ => Chunk::Unknown {
                chunk_type,
                flags,
                value: data.slice(start..end),
            },
        };
        // The last chunk's padding may be left out of the packet.
        let next = (end + 3) & !3;
        Ok((chunk, next.min(data.len())))
    }

    fn value_len(&self) -> usize {
        match self {
            Chunk::Data(d) => 12 + d.payload.len(),
            Chunk::Init(i) | Chunk::InitAck(i) => {
                16 + i.params.iter().map(Param::padded_len).sum::<usize>()
            }
            Chunk::Sack(s) => 12 + 4 * s.gap_blocks.len() + 4 * s.duplicate_tsns.len(),
            Chunk::Heartbeat(v)
            | Chunk::HeartbeatAck(v)
            | Chunk::Error(v)
            | Chunk::CookieEcho(v) => v.len(),
            Chunk::Abort { causes, .. } => causes.len(),
            Chunk::Shutdown { .. } => 4,
            Chunk::ShutdownAck | Chunk::ShutdownComplete { .. } | Chunk::CookieAck => 0,
            Chunk::ForwardTsn(f) => 4 + 4 * f.streams.len(),
            Chunk::ReConfig(r) => r.params.iter().map(ReconfigParam::padded_len).sum(),
            Chunk::Unknown { value, .. } => value.len(),
        }
    }

    /// The chunk's length on the wire, padding included.
    pub fn padded_len(&self) -> usize {
        (CHUNK_HEADER_LEN + self.value_len() + 3) & !3
    }

    fn flags(&self) -> u8 {
        match self {
            Chunk::Data(d) => {
                u8::from(d.immediate) << 3
                    | u8::from(d.unordered) << 2
                    | u8::from(d.beginning) << 1
                    | u8::from(d.ending)
            }
            Chunk::Abort { reflected_tag, .. } | Chunk::ShutdownComplete { reflected_tag } => {
                u8::from(*reflected_tag)
            }
            Chunk::Unknown { flags, .. } => *flags,
            _ => 0,
        }
    }

    /// Writes the chunk, padded to 4 bytes.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u8(self.chunk_type().0);
        out.put_u8(self.flags());
        out.put_u16((CHUNK_HEADER_LEN + self.value_len()) as u16);
        match self {
            Chunk::Data(d) => {
                out.put_u32(d.tsn);
                out.put_u16(d.stream);
                out.put_u16(d.ssn);
                out.put_u32(d.ppid);
                out.put_slice(&d.payload);
            }
            Chunk::Init(i) | Chunk::InitAck(i) => {
                out.put_u32(i.initiate_tag);
                out.put_u32(i.a_rwnd);
                out.put_u16(i.outbound_streams);
                out.put_u16(i.inbound_streams);
                out.put_u32(i.initial_tsn);
                i.params.iter().for_each(|p| p.write(out));
            }
            Chunk::Sack(s) => {
                out.put_u32(s.cumulative_tsn_ack);
                out.put_u32(s.a_rwnd);
                out.put_u16(s.gap_blocks.len() as u16);
                out.put_u16(s.duplicate_tsns.len() as u16);
                for g in &s.gap_blocks {
                    out.put_u16(g.start);
                    out.put_u16(g.end);
                }
                s.duplicate_tsns.iter().for_each(|t| out.put_u32(*t));
            }
            Chunk::Heartbeat(v)
            | Chunk::HeartbeatAck(v)
            | Chunk::Error(v)
            | Chunk::CookieEcho(v) => out.put_slice(v),
            Chunk::Abort { causes, .. } => out.put_slice(causes),
            Chunk::Shutdown { cumulative_tsn_ack } => out.put_u32(*cumulative_tsn_ack),
            Chunk::ShutdownAck | Chunk::ShutdownComplete { .. } | Chunk::CookieAck => {}
            Chunk::ForwardTsn(f) => {
                out.put_u32(f.new_cumulative_tsn);
                for s in &f.streams {
                    out.put_u16(s.stream);
                    out.put_u16(s.ssn);
                }
            }
            Chunk::ReConfig(r) => r.params.iter().for_each(|p| p.write(out)),
            Chunk::Unknown { value, .. } => out.put_slice(value),
        }
        let padded = start + self.padded_len();
        out.resize(padded, 0);
    }
}
