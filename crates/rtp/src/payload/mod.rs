//! Payload formats: codec frames split into RTP payloads and joined back.
//!
//! - [`vp8`]: RFC 7741 (payload descriptor, packetizer, depacketizer).
//! - [`vp9`]: RFC 9628 (payload descriptor, packetizer, depacketizer).
//! - [`h264`]: RFC 6184, packetization mode 1 (single NAL unit, STAP-A,
//!   FU-A), frames as Annex B byte streams.
//! - Opus (RFC 7587 §4.2) needs no module: one Opus packet is one payload.
//!
//! [`FrameAssembler`] joins the payloads of one frame (one RTP timestamp,
//! up to the marker bit) and drops frames with a gap.

pub mod h264;
pub mod vp8;
pub mod vp9;

use crate::{ParseError, RtpPacket};

/// Turns one RTP payload into codec bytes.
pub trait Depacketizer {
    /// Appends the codec bytes of `payload` to `frame`; returns whether
    /// the payload starts a frame (so a frame whose first packet was lost
    /// is known to be broken).
    fn depacketize(&mut self, payload: &[u8], frame: &mut Vec<u8>) -> Result<bool, ParseError>;
}

/// Splits `frame` into payloads of at most `max_payload` bytes, each the
/// descriptor `descriptor(first, last)` gives followed by the next part
/// of the frame (the VP8 and VP9 way, RFC 7741 §4.2, RFC 9628 §4.2); an
/// empty frame still makes one payload.
fn split_after_descriptor<const N: usize>(
    frame: &[u8],
    max_payload: usize,
    out: &mut Vec<Vec<u8>>,
    descriptor: impl Fn(bool, bool) -> [u8; N],
) {
    let chunk = max_payload.saturating_sub(N).max(1);
    let count = frame.len().div_ceil(chunk).max(1);
    let parts = frame
        .chunks(chunk)
        .chain(frame.is_empty().then_some(&[][..]));
    for (i, part) in parts.enumerate() {
        let mut payload = Vec::with_capacity(N + part.len());
        payload.extend_from_slice(&descriptor(i == 0, i + 1 == count));
        payload.extend_from_slice(part);
        out.push(payload);
    }
}

/// A whole frame out of a [`FrameAssembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The RTP timestamp of its packets.
    pub timestamp: u32,
    /// The codec bytes.
    pub data: Vec<u8>,
}

/// Joins RTP payloads into frames: the packets of one timestamp, in
/// sequence, from one that starts a frame to one with the marker bit.
/// A gap in sequence numbers, a frame without its start, or one larger than
/// the limit is dropped whole; the next frame starts afresh.
#[derive(Debug)]
pub struct FrameAssembler<D> {
    depacketizer: D,
    max_frame: usize,
    data: Vec<u8>,
    timestamp: Option<u32>,
    next_seq: Option<u16>,
    /// The current frame is missing a packet, its start, or is too large.
    broken: bool,
}

impl<D: Depacketizer> FrameAssembler<D> {
    /// An assembler of frames of at most `max_frame` bytes.
    pub fn new(depacketizer: D, max_frame: usize) -> Self {
        Self {
            depacketizer,
            max_frame,
            data: Vec::new(),
            timestamp: None,
            next_seq: None,
            broken: false,
        }
    }

    /// Adds a packet, in arrival order; returns the frame it completes.
    pub fn push(&mut self, packet: &RtpPacket<'_>) -> Option<Frame> {
        let (seq, timestamp) = (packet.sequence_number(), packet.timestamp());
        let continues = self.next_seq == Some(seq);
        self.next_seq = Some(seq.wrapping_add(1));
        let first = self.timestamp != Some(timestamp);
        if first {
            self.data.clear();
            self.timestamp = Some(timestamp);
            self.broken = false;
        } else if !continues {
            self.broken = true;
        }
        if !self.broken {
            match self
                .depacketizer
                .depacketize(packet.payload(), &mut self.data)
            {
                Ok(starts) if first && !starts => self.broken = true,
                Ok(_) => self.broken = self.data.len() > self.max_frame,
                Err(_) => self.broken = true,
            }
        }
        if !packet.marker() {
            return None;
        }
        // The frame ends here whatever its state; a late packet of it
        // would start a new one and be dropped as headless.
        let done = !std::mem::replace(&mut self.broken, true);
        done.then(|| Frame {
            timestamp,
            data: std::mem::take(&mut self.data),
        })
    }
}
