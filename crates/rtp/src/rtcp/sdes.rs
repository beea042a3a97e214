//! Source description and goodbye packets (RFC 3550 §6.5, §6.6).

use super::{packet_type, write_packet, Body};
use crate::{be32, ParseError, WriteError};

/// One SDES item (RFC 3550 §6.5): a type and up to 255 bytes of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// The item type ([`SdesItem::CNAME`] = 1, NAME = 2, ...).
    pub kind: u8,
    /// The item's text (UTF-8 by the RFC; not checked).
    pub value: &'a [u8],
}

impl SdesItem<'_> {
    /// RFC 3550 §6.5.1: the canonical end-point identifier.
    pub const CNAME: u8 = 1;
}

/// The items describing one source (RFC 3550 §6.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    /// Its items.
    pub items: Vec<SdesItem<'a>>,
}

impl<'a> SdesChunk<'a> {
    /// The CNAME item's value, if any.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items
            .iter()
            .find(|i| i.kind == SdesItem::CNAME)
            .map(|i| i.value)
    }
}

/// A source description packet (RFC 3550 §6.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDescription<'a> {
    /// One chunk per source (at most 31).
    pub chunks: Vec<SdesChunk<'a>>,
}

impl<'a> SourceDescription<'a> {
    /// The packet every compound packet carries (RFC 3550 §6.1): the CNAME
    /// of one source.
    pub fn cname(ssrc: u32, cname: &'a str) -> Self {
        Self {
            chunks: vec![SdesChunk {
                ssrc,
                items: vec![SdesItem {
                    kind: SdesItem::CNAME,
                    value: cname.as_bytes(),
                }],
            }],
        }
    }

    pub(super) fn parse(body: Body<'a>, count: u8) -> Result<Self, ParseError> {
        let mut at = 0;
        let mut chunks = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let ssrc = be32(body.get(at..at + 4, "SDES chunk SSRC")?, 0);
            at += 4;
            let mut items = Vec::new();
            loop {
                let kind = body.get(at..at + 1, "SDES item or end")?[0];
                if kind == 0 {
                    // RFC 3550 §6.5: a null item ends the list; the chunk is
                    // padded with nulls to a 32-bit boundary.
                    at = (at + 4) & !3;
                    break;
                }
                let len = usize::from(body.get(at + 1..at + 2, "SDES item length")?[0]);
                let value = body.get(at + 2..at + 2 + len, "SDES item text")?;
                items.push(SdesItem { kind, value });
                at += 2 + len;
            }
            chunks.push(SdesChunk { ssrc, items });
        }
        Ok(Self { chunks })
    }

    /// Appends the packet to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        write_packet(out, self.chunks.len(), packet_type::SDES, |out| {
            for chunk in &self.chunks {
                let start = out.len();
                out.extend_from_slice(&chunk.ssrc.to_be_bytes());
                for item in &chunk.items {
                    let len = u8::try_from(item.value.len()).map_err(|_| WriteError::Invalid {
                        what: "SDES item over 255 bytes",
                    })?;
                    if item.kind == 0 {
                        return Err(WriteError::Invalid {
                            what: "SDES item type 0",
                        });
                    }
                    out.extend_from_slice(&[item.kind, len]);
                    out.extend_from_slice(item.value);
                }
                // At least one null byte ends the items, then pad to 32 bits.
                out.push(0);
                pad_to_word(out, start);
            }
            Ok(())
        })
    }
}

/// Appends zeros until `out` is a whole number of 32-bit words past `start`.
fn pad_to_word(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    out.resize(start + len.next_multiple_of(4), 0);
}

/// A goodbye packet (RFC 3550 §6.6): these sources leave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bye<'a> {
    /// The sources leaving (at most 31).
    pub ssrcs: Vec<u32>,
    /// Why, if said (at most 255 bytes).
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    pub(super) fn parse(body: Body<'a>, count: u8) -> Result<Self, ParseError> {
        let end = 4 * usize::from(count);
        let ssrcs = body.get(0..end, "BYE sources")?;
        let reason = match body.data.get(end) {
            Some(&len) => Some(body.get(end + 1..end + 1 + usize::from(len), "BYE reason")?),
            None => None,
        };
        Ok(Self {
            ssrcs: ssrcs.chunks_exact(4).map(|s| be32(s, 0)).collect(),
            reason,
        })
    }

    /// Appends the packet to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        write_packet(out, self.ssrcs.len(), packet_type::BYE, |out| {
            for ssrc in &self.ssrcs {
                out.extend_from_slice(&ssrc.to_be_bytes());
            }
            if let Some(reason) = self.reason {
                let start = out.len();
                let len = u8::try_from(reason.len()).map_err(|_| WriteError::Invalid {
                    what: "BYE reason over 255 bytes",
                })?;
                out.push(len);
                out.extend_from_slice(reason);
                pad_to_word(out, start);
            }
            Ok(())
        })
    }
}
