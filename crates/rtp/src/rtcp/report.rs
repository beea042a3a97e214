//! Sender and receiver reports (RFC 3550 §6.4).

use super::{packet_type, write_packet, Body};
use crate::{be32, ParseError, WriteError};

/// RFC 3550 §6.4.1: the RC field is 5 bits.
pub const MAX_REPORT_BLOCKS: usize = 31;

const BLOCK_LEN: usize = 24;

/// A reception report block (RFC 3550 §6.4.1): what one receiver saw of one
/// source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Packets lost since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Packets lost since the start: expected minus received, a signed
    /// 24-bit value (duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Cycles of the sequence number (high 16 bits) and the highest
    /// sequence number received (low 16 bits).
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in timestamp units (RFC 3550 §6.4.1, A.8).
    pub jitter: u32,
    /// The middle 32 bits of the NTP timestamp of the last SR received
    /// from this source (0 if none).
    pub last_sr: u32,
    /// Delay since that SR, in units of 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> Self {
        // Sign-extend the 24-bit cumulative count.
        let cumulative_lost = (i32::from_be_bytes([b[4], b[5], b[6], b[7]]) << 8) >> 8;
        Self {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost,
            extended_highest_sequence: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        // Clamp to the signed 24-bit range the field holds.
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32 & 0xFF_FFFF;
        out.extend_from_slice(&(u32::from(self.fraction_lost) << 24 | lost).to_be_bytes());
        for v in [
            self.extended_highest_sequence,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Reads `count` report blocks from `body` starting at `offset`.
fn parse_blocks(body: Body<'_>, offset: usize, count: u8) -> Result<Vec<ReportBlock>, ParseError> {
    let end = offset + BLOCK_LEN * usize::from(count);
    let blocks = body.get(offset..end, "report blocks")?;
    Ok(blocks
        .chunks_exact(BLOCK_LEN)
        .map(ReportBlock::parse)
        .collect())
}

fn write_blocks(blocks: &[ReportBlock], out: &mut Vec<u8>) {
    for block in blocks {
        block.write(out);
    }
}

/// A sender report (RFC 3550 §6.4.1). Profile-specific extensions after the
/// report blocks are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderReport {
    /// The sender.
    pub ssrc: u32,
    /// Wallclock time of the report as a 64-bit NTP timestamp.
    pub ntp_time: u64,
    /// The same instant in the RTP timestamp units of the sender's stream.
    pub rtp_time: u32,
    /// Packets sent since the start.
    pub packet_count: u32,
    /// Payload octets sent since the start.
    pub octet_count: u32,
    /// Reception reports (at most [`MAX_REPORT_BLOCKS`]).
    pub reports: Vec<ReportBlock>,
}

impl SenderReport {
    pub(super) fn parse(body: Body<'_>, count: u8) -> Result<Self, ParseError> {
        let info = body.get(0..24, "sender info")?;
        Ok(Self {
            ssrc: be32(info, 0),
            ntp_time: u64::from(be32(info, 4)) << 32 | u64::from(be32(info, 8)),
            rtp_time: be32(info, 12),
            packet_count: be32(info, 16),
            octet_count: be32(info, 20),
            reports: parse_blocks(body, 24, count)?,
        })
    }

    /// Appends the packet to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        write_packet(out, self.reports.len(), packet_type::SR, |out| {
            out.extend_from_slice(&self.ssrc.to_be_bytes());
            out.extend_from_slice(&self.ntp_time.to_be_bytes());
            for v in [self.rtp_time, self.packet_count, self.octet_count] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            write_blocks(&self.reports, out);
            Ok(())
        })
    }
}

/// A receiver report (RFC 3550 §6.4.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverReport {
    /// The receiver.
    pub ssrc: u32,
    /// Reception reports (at most [`MAX_REPORT_BLOCKS`]).
    pub reports: Vec<ReportBlock>,
}

impl ReceiverReport {
    pub(super) fn parse(body: Body<'_>, count: u8) -> Result<Self, ParseError> {
        Ok(Self {
            ssrc: be32(body.get(0..4, "receiver SSRC")?, 0),
            reports: parse_blocks(body, 4, count)?,
        })
    }

    /// Appends the packet to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        write_packet(out, self.reports.len(), packet_type::RR, |out| {
            out.extend_from_slice(&self.ssrc.to_be_bytes());
            write_blocks(&self.reports, out);
            Ok(())
        })
    }
}
