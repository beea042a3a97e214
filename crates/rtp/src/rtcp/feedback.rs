//! Feedback messages (RFC 4585 §6.1): generic NACK, PLI, and FIR
//! (RFC 5104 §4.3.1).

use super::{packet_type, write_packet, Body};
use crate::{be16, be32, ParseError, WriteError};

/// Reads the two SSRCs every feedback message starts with (RFC 4585 §6.1).
fn parse_ssrcs(body: &Body<'_>) -> Result<(u32, u32), ParseError> {
    let ssrcs = body.get(0..8, "feedback sender and media SSRCs")?;
    Ok((be32(ssrcs, 0), be32(ssrcs, 4)))
}

/// The feedback control information after the SSRCs, in `entry`-byte units.
fn fci<'a>(body: &Body<'a>, entry: usize) -> Result<std::slice::ChunksExact<'a, u8>, ParseError> {
    let fci = &body.data[8..];
    if fci.len() % entry != 0 {
        return Err(ParseError::Malformed {
            offset: body.at + 8,
            what: "feedback control information length",
        });
    }
    Ok(fci.chunks_exact(entry))
}

/// Writes a feedback message with format `fmt`: the SSRCs, then `fci`.
fn write_feedback(
    out: &mut Vec<u8>,
    fmt: u8,
    pt: u8,
    ssrcs: [u32; 2],
    fci: impl FnOnce(&mut Vec<u8>),
) -> Result<(), WriteError> {
    write_packet(out, usize::from(fmt), pt, |out| {
        out.extend_from_slice(&ssrcs[0].to_be_bytes());
        out.extend_from_slice(&ssrcs[1].to_be_bytes());
        fci(out);
        Ok(())
    })
}

/// Picture loss indication (RFC 4585 §6.3.1): the receiver lost part of a
/// picture and asks for a key frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pli {
    /// Who asks.
    pub sender_ssrc: u32,
    /// The stream that lost a picture.
    pub media_ssrc: u32,
}

impl Pli {
    /// FMT of a PLI in a PSFB packet.
    pub const FORMAT: u8 = 1;

    pub(super) fn parse(body: Body<'_>) -> Result<Self, ParseError> {
        let (sender_ssrc, media_ssrc) = parse_ssrcs(&body)?;
        Ok(Self {
            sender_ssrc,
            media_ssrc,
        })
    }

    /// Appends the packet to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        write_feedback(
            out,
            Self::FORMAT,
            packet_type::PSFB,
            [self.sender_ssrc, self.media_ssrc],
            |_| {},
        )
    }
}

/// One FIR entry (RFC 5104 §4.3.1.1): a stream and a command sequence
/// number that the sender increments for each new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FirEntry {
    /// The stream asked for a key frame.
    pub ssrc: u32,
    /// The command sequence number.
    pub sequence_number: u8,
}

/// Full intra request (RFC 5104 §4.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fir {
    /// Who asks.
    pub sender_ssrc: u32,
    /// The requests (the header's media SSRC is 0, RFC 5104 §4.3.1.2).
    pub entries: Vec<FirEntry>,
}

impl Fir {
    /// FMT of a FIR in a PSFB packet.
    pub const FORMAT: u8 = 4;

    pub(super) fn parse(body: Body<'_>) -> Result<Self, ParseError> {
        let (sender_ssrc, _) = parse_ssrcs(&body)?;
        let entries = fci(&body, 8)?
            .map(|e| FirEntry {
                ssrc: be32(e, 0),
                sequence_number: e[4],
            })
            .collect();
        Ok(Self {
            sender_ssrc,
            entries,
        })
    }

    /// Appends the packet to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        write_feedback(
            out,
            Self::FORMAT,
            packet_type::PSFB,
            [self.sender_ssrc, 0],
            |out| {
                for e in &self.entries {
                    out.extend_from_slice(&e.ssrc.to_be_bytes());
                    out.extend_from_slice(&[e.sequence_number, 0, 0, 0]);
                }
            },
        )
    }
}

/// One generic NACK entry (RFC 4585 §6.2.1): packet `pid` is lost, and
/// packet `pid + i + 1` too when bit `i` of `blp` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NackPair {
    /// The first lost packet.
    pub pid: u16,
    /// Bitmask of the 16 packets after it that are lost too.
    pub blp: u16,
}

impl NackPair {
    /// The lost sequence numbers this entry names, in order.
    pub fn lost(&self) -> impl Iterator<Item = u16> {
        let Self { pid, blp } = *self;
        std::iter::once(pid).chain(
            (0..16u16)
                .filter(move |i| blp & (1 << i) != 0)
                .map(move |i| pid.wrapping_add(i + 1)),
        )
    }
}

/// Generic NACK (RFC 4585 §6.2.1): the receiver asks for these packets
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nack {
    /// Who asks.
    pub sender_ssrc: u32,
    /// The stream that lost packets.
    pub media_ssrc: u32,
    /// The lost packets.
    pub pairs: Vec<NackPair>,
}

impl Nack {
    /// FMT of a generic NACK in an RTPFB packet.
    pub const FORMAT: u8 = 1;

    /// Packs lost sequence numbers, given in the order they were sent
    /// (wrapping at 65535), into as few entries as that order allows.
    pub fn from_lost(
        sender_ssrc: u32,
        media_ssrc: u32,
        lost: impl IntoIterator<Item = u16>,
    ) -> Self {
        let mut pairs: Vec<NackPair> = Vec::new();
        for seq in lost {
            match pairs.last_mut() {
                Some(last) if (1..=16).contains(&seq.wrapping_sub(last.pid)) => {
                    last.blp |= 1 << (seq.wrapping_sub(last.pid) - 1);
                }
                Some(last) if last.pid == seq => {}
                _ => pairs.push(NackPair { pid: seq, blp: 0 }),
            }
        }
        Self {
            sender_ssrc,
            media_ssrc,
            pairs,
        }
    }

    /// Every lost sequence number named, in the order of the entries.
    pub fn lost(&self) -> impl Iterator<Item = u16> + '_ {
        self.pairs.iter().flat_map(NackPair::lost)
    }

    pub(super) fn parse(body: Body<'_>) -> Result<Self, ParseError> {
        let (sender_ssrc, media_ssrc) = parse_ssrcs(&body)?;
        let pairs = fci(&body, 4)?
            .map(|e| NackPair {
                pid: be16(e, 0),
                blp: be16(e, 2),
            })
            .collect();
        Ok(Self {
            sender_ssrc,
            media_ssrc,
            pairs,
        })
    }

    /// Appends the packet to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        write_feedback(
            out,
            Self::FORMAT,
            packet_type::RTPFB,
            [self.sender_ssrc, self.media_ssrc],
            |out| {
                for p in &self.pairs {
                    out.extend_from_slice(&p.pid.to_be_bytes());
                    out.extend_from_slice(&p.blp.to_be_bytes());
                }
            },
        )
    }
}
