//! The SCTP packet: common header, chunks, CRC32c (RFC 9260 §3.1, §6.8).

use bytes::{BufMut, Bytes};

use crate::chunk::Chunk;
use crate::error::ParseError;

/// Length of the common header.
pub const COMMON_HEADER_LEN: usize = 12;
/// The most chunks one packet may carry before parsing refuses it; a
/// 1200-byte packet holds at most 75 of the smallest useful ones.
const MAX_CHUNKS: usize = 128;
/// RFC 9260 §3.2: the INIT chunk type.
const INIT: u8 = 1;

/// RFC 9260 §3.1: ports and the verification tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommonHeader {
    /// Source port (WebRTC: 5000 unless `a=sctp-port` says otherwise).
    pub source_port: u16,
    /// Destination port.
    pub destination_port: u16,
    /// The receiver's Initiate Tag (0 in a packet with INIT).
    pub verification_tag: u32,
}

/// A parsed packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The common header.
    pub header: CommonHeader,
    /// The chunks, in order.
    pub chunks: Vec<Chunk>,
}

impl Packet {
    /// Parses a packet and checks its CRC32c. Payloads borrow `data`
    /// (cheap `Bytes` slices, no copy).
    pub fn parse(data: &Bytes) -> Result<Self, ParseError> {
        Self::parse_with(data, false)
    }

    /// [`Packet::parse`], also accepting a checksum of zero in place of
    /// the CRC32c, as an endpoint that sent Zero Checksum Acceptable must
    /// (RFC 9653 §5.3). A packet whose first chunk is INIT must still carry
    /// the CRC32c (RFC 9653 §5.2: INIT is sent before anything is known).
    pub fn parse_accepting_zero_checksum(data: &Bytes) -> Result<Self, ParseError> {
        Self::parse_with(data, true)
    }

    fn parse_with(data: &Bytes, accept_zero: bool) -> Result<Self, ParseError> {
        if data.len() < COMMON_HEADER_LEN {
            return Err(ParseError::TooShort(data.len()));
        }
        let received = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        let zero_ok = accept_zero && received == 0 && data.get(COMMON_HEADER_LEN) != Some(&INIT);
        if !zero_ok {
            let computed = checksum(data);
            if received != computed {
                return Err(ParseError::BadChecksum { received, computed });
            }
        }
        let header = CommonHeader {
            source_port: u16::from_be_bytes([data[0], data[1]]),
            destination_port: u16::from_be_bytes([data[2], data[3]]),
            verification_tag: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        };
        let mut chunks = Vec::new();
        let mut offset = COMMON_HEADER_LEN;
        while offset < data.len() {
            if chunks.len() == MAX_CHUNKS {
                return Err(ParseError::TooMany(MAX_CHUNKS));
            }
            let (chunk, next) = Chunk::parse(data, offset)?;
            chunks.push(chunk);
            offset = next;
        }
        Ok(Packet { header, chunks })
    }

    /// The encoded length.
    pub fn encoded_len(&self) -> usize {
        COMMON_HEADER_LEN + self.chunks.iter().map(Chunk::padded_len).sum::<usize>()
    }

    /// Writes the packet at the end of `out`, CRC32c included.
    pub fn write(&self, out: &mut Vec<u8>) {
        self.write_with(out, false);
    }

    /// Writes the packet with a checksum of zero (RFC 9653 §5.2), for a
    /// peer that sent Zero Checksum Acceptable for the method in use.
    /// Packets with INIT always get the CRC32c.
    pub fn write_zero_checksum(&self, out: &mut Vec<u8>) {
        self.write_with(out, true);
    }

    fn write_with(&self, out: &mut Vec<u8>, zero_checksum: bool) {
        let start = out.len();
        out.reserve(self.encoded_len());
        out.put_u16(self.header.source_port);
        out.put_u16(self.header.destination_port);
        out.put_u32(self.header.verification_tag);
        out.put_u32(0);
        for chunk in &self.chunks {
            chunk.write(out);
        }
        let has_init = matches!(self.chunks.first(), Some(Chunk::Init(_)));
        if !zero_checksum || has_init {
            let crc = checksum(&out[start..]);
            out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
        }
    }

    /// The packet as bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write(&mut out);
        Bytes::from(out)
    }
}

/// RFC 9260 Appendix A: CRC32c over the packet with the checksum field
/// zeroed, stored little-endian.
fn checksum(packet: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&packet[..8]);
    let crc = crc32c::crc32c_append(crc, &[0; 4]);
    crc32c::crc32c_append(crc, &packet[12..])
}
