//! The RTP fixed header (RFC 3550 §5.1), CSRCs, extensions and padding.

use std::ops::Range;

use crate::extension::write_extensions;
use crate::{be16, be32, Extension, Extensions, ParseError, WriteError};

/// RFC 3550 §5.1: the CC field is 4 bits.
pub const MAX_CSRCS: usize = 15;

/// Size of the fixed header.
const FIXED_LEN: usize = 12;

/// Checks the version and returns the length of the header: fixed part,
/// CSRCs and header extension, without looking at padding. SRTP uses this
/// on packets whose padding is still encrypted (RFC 3711 §3.1).
pub fn header_len(packet: &[u8]) -> Result<usize, ParseError> {
    header_and_extensions(packet).map(|(len, _)| len)
}

fn header_and_extensions(packet: &[u8]) -> Result<(usize, Option<Extensions<'_>>), ParseError> {
    let Some(&first) = packet.first() else {
        return Err(ParseError::Truncated {
            offset: 0,
            expected: "RTP header",
        });
    };
    let version = first >> 6;
    if version != 2 {
        return Err(ParseError::Version { offset: 0, version });
    }
    let csrc_end = FIXED_LEN + 4 * usize::from(first & 0x0F);
    if packet.len() < csrc_end {
        return Err(ParseError::Truncated {
            offset: packet.len().min(FIXED_LEN),
            expected: "RTP fixed header and CSRCs",
        });
    }
    if first & 0x10 == 0 {
        return Ok((csrc_end, None));
    }
    let (extensions, end) = Extensions::parse(packet, csrc_end)?;
    Ok((end, Some(extensions)))
}

/// A parsed RTP packet borrowing its datagram (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    data: &'a [u8],
    header_len: usize,
    padding: u8,
    extensions: Option<Extensions<'a>>,
}

impl<'a> RtpPacket<'a> {
    /// Parses and checks a whole RTP packet: version 2, CSRCs and extension
    /// within the packet, and padding (RFC 3550 §5.1: the last byte counts
    /// the padding bytes, itself included) within what follows the header.
    pub fn parse(data: &'a [u8]) -> Result<Self, ParseError> {
        let (header_len, extensions) = header_and_extensions(data)?;
        let padding = if data[0] & 0x20 != 0 {
            let offset = data.len() - 1;
            let count = data[offset];
            if count == 0 || usize::from(count) > data.len() - header_len {
                return Err(ParseError::Padding { offset, count });
            }
            count
        } else {
            0
        };
        Ok(Self {
            data,
            header_len,
            padding,
            extensions,
        })
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The marker bit (RFC 3550 §5.1; e.g. last packet of a video frame).
    pub fn marker(&self) -> bool {
        self.data[1] & 0x80 != 0
    }

    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.data[1] & 0x7F
    }

    /// The sequence number.
    pub fn sequence_number(&self) -> u16 {
        be16(self.data, 2)
    }

    /// The RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        be32(self.data, 4)
    }

    /// The synchronization source.
    pub fn ssrc(&self) -> u32 {
        be32(self.data, 8)
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let data = self.data;
        let count = usize::from(data[0] & 0x0F);
        (0..count).map(move |i| be32(data, FIXED_LEN + 4 * i))
    }

    /// The header extension block, if the X bit is set.
    pub fn extensions(&self) -> Option<Extensions<'a>> {
        self.extensions
    }

    /// The length of the header (fixed part, CSRCs, extension).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The number of padding bytes at the end (0 without the P bit).
    pub fn padding_len(&self) -> u8 {
        self.padding
    }

    /// Where the payload is in the datagram (padding excluded).
    pub fn payload_range(&self) -> Range<usize> {
        self.header_len..self.data.len() - usize::from(self.padding)
    }

    /// The payload (padding excluded).
    pub fn payload(&self) -> &'a [u8] {
        &self.data[self.payload_range()]
    }

    /// An owned copy of the header, to change and write again. Elements of
    /// an extension block in a form RFC 8285 does not define are dropped.
    pub fn to_header(&self) -> RtpHeader {
        RtpHeader {
            marker: self.marker(),
            payload_type: self.payload_type(),
            sequence_number: self.sequence_number(),
            timestamp: self.timestamp(),
            ssrc: self.ssrc(),
            csrcs: self.csrcs().collect(),
            extensions: self
                .extensions
                .iter()
                .flat_map(|e| e.iter())
                .map(|(id, data)| Extension {
                    id,
                    data: data.to_vec(),
                })
                .collect(),
        }
    }
}

/// An RTP header to write (RFC 3550 §5.1, extensions per RFC 8285).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// The marker bit.
    pub marker: bool,
    /// The 7-bit payload type.
    pub payload_type: u8,
    /// The sequence number.
    pub sequence_number: u16,
    /// The RTP timestamp.
    pub timestamp: u32,
    /// The synchronization source.
    pub ssrc: u32,
    /// Contributing sources (at most [`MAX_CSRCS`]).
    pub csrcs: Vec<u32>,
    /// Header extension elements; written in the one-byte form when they
    /// all fit it, otherwise in the two-byte form.
    pub extensions: Vec<Extension>,
}

impl RtpHeader {
    /// Appends the header to `out`, with the P bit set when `padding` > 0.
    pub fn write(&self, padding: bool, out: &mut Vec<u8>) -> Result<(), WriteError> {
        if self.csrcs.len() > MAX_CSRCS {
            return Err(WriteError::TooMany {
                what: "CSRCs",
                count: self.csrcs.len(),
                max: MAX_CSRCS,
            });
        }
        if self.payload_type > 0x7F {
            return Err(WriteError::Invalid {
                what: "payload type",
            });
        }
        let first = 0x80
            | u8::from(padding) << 5
            | u8::from(!self.extensions.is_empty()) << 4
            | self.csrcs.len() as u8;
        out.push(first);
        out.push(u8::from(self.marker) << 7 | self.payload_type);
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for csrc in &self.csrcs {
            out.extend_from_slice(&csrc.to_be_bytes());
        }
        if !self.extensions.is_empty() {
            write_extensions(&self.extensions, out)?;
        }
        Ok(())
    }

    /// Appends a whole packet to `out`: header, payload and `padding` bytes
    /// of padding (RFC 3550 §5.1: zeros, then the count in the last byte).
    pub fn write_packet(
        &self,
        payload: &[u8],
        padding: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        self.write(padding > 0, out)?;
        out.extend_from_slice(payload);
        if padding > 0 {
            out.resize(out.len() + usize::from(padding) - 1, 0);
            out.push(padding);
        }
        Ok(())
    }
}

/// In-place rewriting of an RTP packet's fixed header, for forwarding a
/// stream under another SSRC, payload type or numbering.
#[derive(Debug)]
pub struct RtpPacketMut<'a> {
    data: &'a mut [u8],
}

impl<'a> RtpPacketMut<'a> {
    /// Checks the version and that the fixed header is present.
    pub fn new(data: &'a mut [u8]) -> Result<Self, ParseError> {
        header_len(data)?;
        Ok(Self { data })
    }

    /// Sets the marker bit.
    pub fn set_marker(&mut self, marker: bool) {
        self.data[1] = self.data[1] & 0x7F | u8::from(marker) << 7;
    }

    /// Sets the payload type (the low 7 bits of `pt`).
    pub fn set_payload_type(&mut self, pt: u8) {
        self.data[1] = self.data[1] & 0x80 | pt & 0x7F;
    }

    /// Sets the sequence number.
    pub fn set_sequence_number(&mut self, seq: u16) {
        self.data[2..4].copy_from_slice(&seq.to_be_bytes());
    }

    /// Sets the RTP timestamp.
    pub fn set_timestamp(&mut self, timestamp: u32) {
        self.data[4..8].copy_from_slice(&timestamp.to_be_bytes());
    }

    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.data[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Opus packet as Chromium sends it: one-byte extensions ssrc-audio-level
    /// (id 1), abs-send-time (id 2), transport-wide-cc (id 3), mid (id 4).
    const CHROMIUM_OPUS: [u8; 32] = [
        0x90, 0x6f, 0x1a, 0x2b, 0x00, 0x01, 0xe2, 0x40, 0x12, 0x34, 0x56, 0x78, // fixed
        0xbe, 0xde, 0x00, 0x03, // one-byte form, 3 words
        0x10, 0xff, // audio level
        0x22, 0x01, 0x02, 0x03, // abs-send-time
        0x31, 0x00, 0x05, // transport-cc seq 5
        0x40, b'0', // mid "0"
        0x00, // padding to 12 bytes
        0xfc, 0xff, 0xfe, 0x01, // payload
    ];

    #[test]
    fn parses_a_chromium_opus_packet() {
        let p = RtpPacket::parse(&CHROMIUM_OPUS).unwrap();
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 111);
        assert_eq!(p.sequence_number(), 0x1a2b);
        assert_eq!(p.timestamp(), 123_456);
        assert_eq!(p.ssrc(), 0x1234_5678);
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.payload(), &[0xfc, 0xff, 0xfe, 0x01]);
        let ext = p.extensions().unwrap();
        assert_eq!(ext.get(1), Some(&[0xff][..]));
        assert_eq!(ext.get(2), Some(&[1, 2, 3][..]));
        assert_eq!(ext.get(3), Some(&[0, 5][..]));
        assert_eq!(ext.get(4), Some(&b"0"[..]));
        // Written again from the owned header: the same packet.
        let mut out = Vec::new();
        p.to_header()
            .write_packet(p.payload(), 0, &mut out)
            .unwrap();
        assert_eq!(out, CHROMIUM_OPUS);
    }

    #[test]
    fn round_trip_with_csrcs_and_padding() {
        let header = RtpHeader {
            marker: true,
            payload_type: 96,
            sequence_number: 65535,
            timestamp: u32::MAX,
            ssrc: 7,
            csrcs: vec![1, 2, 3],
            extensions: vec![Extension {
                id: 100,
                data: vec![1, 2],
            }],
        };
        let mut out = Vec::new();
        header.write_packet(b"vp8 frame", 7, &mut out).unwrap();
        let p = RtpPacket::parse(&out).unwrap();
        assert_eq!(p.padding_len(), 7);
        assert_eq!(p.payload(), b"vp8 frame");
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(p.to_header(), header);
        assert_eq!(header_len(&out).unwrap(), p.header_len());
    }

    #[test]
    fn rewrites_in_place() {
        let mut data = CHROMIUM_OPUS;
        let mut p = RtpPacketMut::new(&mut data).unwrap();
        p.set_ssrc(0xdead_beef);
        p.set_payload_type(100);
        p.set_marker(true);
        p.set_sequence_number(9);
        p.set_timestamp(10);
        let p = RtpPacket::parse(&data).unwrap();
        assert_eq!(
            (
                p.ssrc(),
                p.payload_type(),
                p.marker(),
                p.sequence_number(),
                p.timestamp()
            ),
            (0xdead_beef, 100, true, 9, 10)
        );
        assert_eq!(p.payload(), &CHROMIUM_OPUS[28..]);
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert!(matches!(
            RtpPacket::parse(&[]),
            Err(ParseError::Truncated { .. })
        ));
        assert!(matches!(
            RtpPacket::parse(&[0x80; 11]),
            Err(ParseError::Truncated { .. })
        ));
        let mut v1 = CHROMIUM_OPUS;
        v1[0] = 0x50;
        assert!(matches!(
            RtpPacket::parse(&v1),
            Err(ParseError::Version { version: 1, .. })
        ));
        // CC = 15 but no CSRCs.
        let mut cc = [0u8; 20];
        cc[0] = 0x8F;
        assert!(RtpPacket::parse(&cc).is_err());
        // Padding count 0, and padding larger than the payload.
        let mut pad = [0u8; 16];
        pad[0] = 0xA0;
        assert!(matches!(
            RtpPacket::parse(&pad),
            Err(ParseError::Padding { count: 0, .. })
        ));
        pad[15] = 5;
        assert!(matches!(
            RtpPacket::parse(&pad),
            Err(ParseError::Padding { count: 5, .. })
        ));
        pad[15] = 4;
        assert_eq!(RtpPacket::parse(&pad).unwrap().payload(), &[] as &[u8]);
        // Every truncation of a good packet fails or parses without panicking.
        for n in 0..CHROMIUM_OPUS.len() {
            let _ = RtpPacket::parse(&CHROMIUM_OPUS[..n]);
        }
        assert!(RtpPacketMut::new(&mut [0x80; 4]).is_err());
    }

    #[test]
    fn writer_limits() {
        let too_many = RtpHeader {
            csrcs: vec![0; 16],
            ..Default::default()
        };
        assert!(matches!(
            too_many.write(false, &mut Vec::new()),
            Err(WriteError::TooMany { .. })
        ));
        let bad_pt = RtpHeader {
            payload_type: 128,
            ..Default::default()
        };
        assert!(bad_pt.write(false, &mut Vec::new()).is_err());
    }
}
