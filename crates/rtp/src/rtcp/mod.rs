//! RTCP packets (RFC 3550 §6): a compound packet is iterated packet by
//! packet with [`CompoundPacket`]; each packet is an [`RtcpPacket`].
//!
//! ```
//! use realtimer_rtp::rtcp::{CompoundPacket, Pli, RtcpPacket};
//! let mut buf = Vec::new();
//! RtcpPacket::Pli(Pli { sender_ssrc: 1, media_ssrc: 2 }).write(&mut buf).unwrap();
//! let packets: Vec<_> = CompoundPacket::new(&buf).collect::<Result<_, _>>().unwrap();
//! assert_eq!(packets, vec![RtcpPacket::Pli(Pli { sender_ssrc: 1, media_ssrc: 2 })]);
//! ```

mod ccfb;
mod feedback;
mod remb;
mod report;
mod sdes;
mod twcc;

pub use ccfb::{CongestionControlFeedback, PacketMetric, StreamReport, MAX_METRICS_PER_STREAM};
pub use feedback::{Fir, FirEntry, Nack, NackPair, Pli};
pub use remb::Remb;
pub use report::{ReceiverReport, ReportBlock, SenderReport, MAX_REPORT_BLOCKS};
pub use sdes::{Bye, SdesChunk, SdesItem, SourceDescription};
pub use twcc::{PacketArrival, TransportFeedback, DELTA_TICK_MICROS, REFERENCE_TIME_MICROS};

use crate::{be16, ParseError, WriteError};

/// RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1).
pub mod packet_type {
    /// Sender report.
    pub const SR: u8 = 200;
    /// Receiver report.
    pub const RR: u8 = 201;
    /// Source description.
    pub const SDES: u8 = 202;
    /// Goodbye.
    pub const BYE: u8 = 203;
    /// Application-defined.
    pub const APP: u8 = 204;
    /// Transport-layer feedback (generic NACK, transport-cc).
    pub const RTPFB: u8 = 205;
    /// Payload-specific feedback (PLI, FIR, REMB).
    pub const PSFB: u8 = 206;
}

/// RFC 3550 §6.4.1: the 5-bit count field (RC, SC) or feedback format (FMT).
const MAX_COUNT: usize = 31;

/// One RTCP packet of a compound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpPacket<'a> {
    /// RFC 3550 §6.4.1.
    SenderReport(SenderReport),
    /// RFC 3550 §6.4.2.
    ReceiverReport(ReceiverReport),
    /// RFC 3550 §6.5.
    SourceDescription(SourceDescription<'a>),
    /// RFC 3550 §6.6.
    Bye(Bye<'a>),
    /// RFC 4585 §6.3.1: picture loss indication.
    Pli(Pli),
    /// RFC 5104 §4.3.1: full intra request.
    Fir(Fir),
    /// RFC 4585 §6.2.1: generic NACK.
    Nack(Nack),
    /// draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1.
    TransportFeedback(TransportFeedback),
    /// RFC 8888 §3.1: congestion control feedback.
    CongestionControlFeedback(CongestionControlFeedback),
    /// draft-alvestrand-rmcat-remb-03 §2.2: receiver estimated maximum
    /// bitrate.
    Remb(Remb),
    /// Any other packet (APP, XR, other application feedback...), whole.
    Other {
        /// The packet type.
        packet_type: u8,
        /// The 5-bit count or format field.
        format: u8,
        /// The whole packet, header included (padding too, if any).
        bytes: &'a [u8],
    },
}

impl<'a> RtcpPacket<'a> {
    /// Appends the packet to `out` (RFC 3550 §6.4.1 common header, length in
    /// 32-bit words minus one).
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        match self {
            Self::SenderReport(p) => p.write(out),
            Self::ReceiverReport(p) => p.write(out),
            Self::SourceDescription(p) => p.write(out),
            Self::Bye(p) => p.write(out),
            Self::Pli(p) => p.write(out),
            Self::Fir(p) => p.write(out),
            Self::Nack(p) => p.write(out),
            Self::TransportFeedback(p) => p.write(out),
            Self::CongestionControlFeedback(p) => p.write(out),
            Self::Remb(p) => p.write(out),
            Self::Other { bytes, .. } => {
                out.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    fn parse(
        header: Header,
        packet: &'a [u8],
        body: &'a [u8],
        at: usize,
    ) -> Result<Self, ParseError> {
        let body = Body {
            data: body,
            at: at + 4,
        };
        Ok(match (header.packet_type, header.count) {
            (packet_type::SR, count) => Self::SenderReport(SenderReport::parse(body, count)?),
            (packet_type::RR, count) => Self::ReceiverReport(ReceiverReport::parse(body, count)?),
            (packet_type::SDES, count) => {
                Self::SourceDescription(SourceDescription::parse(body, count)?)
            }
            (packet_type::BYE, count) => Self::Bye(Bye::parse(body, count)?),
            (packet_type::RTPFB, Nack::FORMAT) => Self::Nack(Nack::parse(body)?),
            (packet_type::RTPFB, TransportFeedback::FORMAT) => {
                Self::TransportFeedback(TransportFeedback::parse(body)?)
            }
            (packet_type::RTPFB, CongestionControlFeedback::FORMAT) => {
                Self::CongestionControlFeedback(CongestionControlFeedback::parse(body)?)
            }
            (packet_type::PSFB, Remb::FORMAT) if Remb::is_remb(&body) => {
                Self::Remb(Remb::parse(body)?)
            }
            (packet_type::PSFB, Pli::FORMAT) => Self::Pli(Pli::parse(body)?),
            (packet_type::PSFB, Fir::FORMAT) => Self::Fir(Fir::parse(body)?),
            (packet_type, format) => Self::Other {
                packet_type,
                format,
                bytes: packet,
            },
        })
    }
}

/// The common header's fields that select how to read the body.
#[derive(Clone, Copy)]
struct Header {
    count: u8,
    packet_type: u8,
}

/// A packet's body (after the 4-byte header, padding removed) and its offset
/// in the compound packet, for error offsets.
#[derive(Clone, Copy)]
struct Body<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Body<'a> {
    /// The body's bytes `range`, or a truncation error naming `expected`.
    fn get(
        &self,
        range: std::ops::Range<usize>,
        expected: &'static str,
    ) -> Result<&'a [u8], ParseError> {
        let start = range.start;
        self.data.get(range).ok_or(ParseError::Truncated {
            offset: self.at + start,
            expected,
        })
    }
}

/// Iterates the packets of an RTCP compound packet (RFC 3550 §6.1). After
/// an error the iteration ends: the rest of the datagram cannot be framed.
#[derive(Debug, Clone)]
pub struct CompoundPacket<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> CompoundPacket<'a> {
    /// Starts iterating `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn next_packet(&mut self) -> Result<RtcpPacket<'a>, ParseError> {
        let at = self.at;
        let rest = &self.data[at..];
        if rest.len() < 4 {
            return Err(ParseError::Truncated {
                offset: at,
                expected: "RTCP header",
            });
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(ParseError::Version {
                offset: at,
                version,
            });
        }
        let len = (usize::from(be16(rest, 2)) + 1) * 4;
        let packet = rest.get(..len).ok_or(ParseError::Truncated {
            offset: at,
            expected: "as many bytes as the RTCP length field says",
        })?;
        // RFC 3550 §6.4.1: the last byte counts the padding, itself included.
        let padding = if rest[0] & 0x20 != 0 {
            let count = packet[len - 1];
            if count == 0 || usize::from(count) > len - 4 {
                return Err(ParseError::Padding {
                    offset: at + len - 1,
                    count,
                });
            }
            usize::from(count)
        } else {
            0
        };
        let header = Header {
            count: rest[0] & 0x1F,
            packet_type: rest[1],
        };
        self.at += len;
        RtcpPacket::parse(header, packet, &packet[4..len - padding], at)
    }
}

impl<'a> Iterator for CompoundPacket<'a> {
    type Item = Result<RtcpPacket<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.data.len() {
            return None;
        }
        let next = self.next_packet();
        if next.is_err() {
            self.at = self.data.len();
        }
        Some(next)
    }
}

/// Writes one packet: the common header with `count` (RC, SC or FMT) and
/// `packet_type`, then what `body` appends (a multiple of 4 bytes), then
/// the length field.
fn write_packet(
    out: &mut Vec<u8>,
    count: usize,
    packet_type: u8,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), WriteError>,
) -> Result<(), WriteError> {
    if count > MAX_COUNT {
        return Err(WriteError::TooMany {
            what: "RTCP items (report blocks, chunks, sources)",
            count,
            max: MAX_COUNT,
        });
    }
    let start = out.len();
    out.extend_from_slice(&[0x80 | count as u8, packet_type, 0, 0]);
    if let Err(e) = body(out) {
        out.truncate(start);
        return Err(e);
    }
    debug_assert_eq!((out.len() - start) % 4, 0, "RTCP bodies are 32-bit aligned");
    let Ok(words) = u16::try_from((out.len() - start) / 4 - 1) else {
        out.truncate(start);
        return Err(WriteError::Invalid {
            what: "RTCP packet over 256 KiB",
        });
    };
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests;
