//! VP8 over RTP (RFC 7741): the payload descriptor (§4.2), a packetizer
//! and a depacketizer.

use super::Depacketizer;
use crate::ParseError;

/// The VP8 payload descriptor (RFC 7741 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    /// N: the frame is not a reference for other frames.
    pub non_reference: bool,
    /// S: this payload starts a VP8 partition.
    pub start: bool,
    /// PID: the partition index.
    pub partition: u8,
    /// The 7- or 15-bit picture ID.
    pub picture_id: Option<u16>,
    /// TL0PICIDX.
    pub tl0_pic_idx: Option<u8>,
    /// TID and the Y (layer sync) bit.
    pub temporal: Option<(u8, bool)>,
    /// KEYIDX.
    pub key_idx: Option<u8>,
}

impl Vp8Descriptor {
    /// Parses the descriptor at the start of `payload`; returns it and its
    /// length.
    pub fn parse(payload: &[u8]) -> Result<(Self, usize), ParseError> {
        let truncated = |offset| ParseError::Truncated {
            offset,
            expected: "VP8 payload descriptor",
        };
        let &first = payload.first().ok_or(truncated(0))?;
        let mut d = Self {
            non_reference: first & 0x20 != 0,
            start: first & 0x10 != 0,
            partition: first & 0x07,
            ..Self::default()
        };
        let mut at = 1;
        if first & 0x80 != 0 {
            let &ext = payload.get(at).ok_or(truncated(at))?;
            at += 1;
            if ext & 0x80 != 0 {
                let &b = payload.get(at).ok_or(truncated(at))?;
                if b & 0x80 != 0 {
                    let &low = payload.get(at + 1).ok_or(truncated(at + 1))?;
                    d.picture_id = Some(u16::from(b & 0x7F) << 8 | u16::from(low));
                    at += 2;
                } else {
                    d.picture_id = Some(u16::from(b));
                    at += 1;
                }
            }
            if ext & 0x40 != 0 {
                d.tl0_pic_idx = Some(*payload.get(at).ok_or(truncated(at))?);
                at += 1;
            }
            if ext & 0x30 != 0 {
                let &b = payload.get(at).ok_or(truncated(at))?;
                if ext & 0x20 != 0 {
                    d.temporal = Some((b >> 6, b & 0x20 != 0));
                }
                if ext & 0x10 != 0 {
                    d.key_idx = Some(b & 0x1F);
                }
                at += 1;
            }
        }
        Ok((d, at))
    }

    /// Whether this payload begins a frame: S set on partition 0.
    pub fn starts_frame(&self) -> bool {
        self.start && self.partition == 0
    }
}

/// Whether a VP8 frame is a key frame (RFC 6386 §9.1: the P bit of the
/// frame tag is 0). `frame` is the VP8 bitstream, descriptor removed.
pub fn is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x01 == 0)
}

/// The width and height of a VP8 key frame, from the start of its
/// bitstream (RFC 6386 §9.1: the 3-byte frame tag, the start code
/// 0x9d 0x01 0x2a, then 14-bit width and height, little-endian, each
/// with 2 bits of scaling above); `None` for an inter frame or too few
/// bytes. The first packet of a frame holds it.
pub fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    if !is_keyframe(frame) {
        return None;
    }
    match frame.get(3..10)? {
        [0x9d, 0x01, 0x2a, w0, w1, h0, h1] => Some((
            u16::from_le_bytes([*w0, *w1]) & 0x3FFF,
            u16::from_le_bytes([*h0, *h1]) & 0x3FFF,
        )),
        _ => None,
    }
}

/// Splits VP8 frames into payloads with a descriptor carrying a 15-bit
/// picture ID, as browsers send (RFC 7741 §4.2).
#[derive(Debug, Clone, Default)]
pub struct Vp8Packetizer {
    picture_id: u16,
}

/// Descriptor length the packetizer writes: X, I, then M + 15-bit ID.
const DESCRIPTOR_LEN: usize = 4;

impl Vp8Packetizer {
    /// A packetizer whose first picture ID is `picture_id` (15 bits).
    pub fn new(picture_id: u16) -> Self {
        Self {
            picture_id: picture_id & 0x7FFF,
        }
    }

    /// Appends the payloads of `frame`, each at most `max_payload` bytes
    /// (at least 5), to `out`; the caller sends them with one timestamp
    /// and the marker bit on the last.
    pub fn packetize(&mut self, frame: &[u8], max_payload: usize, out: &mut Vec<Vec<u8>>) {
        let id = self.picture_id;
        super::split_after_descriptor::<DESCRIPTOR_LEN>(frame, max_payload, out, |first, _| {
            let start = if first { 0x10 } else { 0 };
            [0x80 | start, 0x80, 0x80 | (id >> 8) as u8, id as u8]
        });
        self.picture_id = (id + 1) & 0x7FFF;
    }
}

/// Strips VP8 payload descriptors (RFC 7741 §4.2).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vp8Depacketizer;

impl Depacketizer for Vp8Depacketizer {
    fn depacketize(&mut self, payload: &[u8], frame: &mut Vec<u8>) -> Result<bool, ParseError> {
        let (descriptor, len) = Vp8Descriptor::parse(payload)?;
        frame.extend_from_slice(&payload[len..]);
        Ok(descriptor.starts_frame())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::FrameAssembler;
    use crate::{RtpHeader, RtpPacket};

    #[test]
    fn parses_descriptors() {
        // Chromium: X, I with 15-bit picture ID 0x1234, S on partition 0.
        let (d, len) = Vp8Descriptor::parse(&[0x90, 0x80, 0x92, 0x34, 0x9d]).unwrap();
        assert_eq!(len, 4);
        assert!(d.starts_frame());
        assert_eq!(d.picture_id, Some(0x1234));
        // 7-bit ID, TL0PICIDX, TID 2 with Y, KEYIDX 5.
        let (d, len) = Vp8Descriptor::parse(&[0xa3, 0xf0, 0x11, 0x07, 0xa5]).unwrap();
        assert_eq!(len, 5);
        assert_eq!((d.non_reference, d.start, d.partition), (true, false, 3));
        assert_eq!(d.picture_id, Some(0x11));
        assert_eq!(d.tl0_pic_idx, Some(7));
        assert_eq!(d.temporal, Some((2, true)));
        assert_eq!(d.key_idx, Some(5));
        // No extension: one byte.
        assert_eq!(Vp8Descriptor::parse(&[0x10, 0]).unwrap().1, 1);
        for bad in [
            &[][..],
            &[0x80],
            &[0x80, 0x80],
            &[0x80, 0x80, 0x80],
            &[0x80, 0x40],
            &[0x80, 0x20],
        ] {
            assert!(Vp8Descriptor::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn packets(payloads: &[Vec<u8>], first_seq: u16, timestamp: u32) -> Vec<Vec<u8>> {
        payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let header = RtpHeader {
                    payload_type: 96,
                    sequence_number: first_seq.wrapping_add(i as u16),
                    timestamp,
                    marker: i + 1 == payloads.len(),
                    ..Default::default()
                };
                let mut out = Vec::new();
                header.write_packet(p, 0, &mut out).unwrap();
                out
            })
            .collect()
    }

    #[test]
    fn frames_round_trip_and_gaps_drop_a_frame() {
        let key: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8 & 0xFE).collect();
        let delta: Vec<u8> = (0..500u32).map(|i| i as u8 | 1).collect();
        assert!(is_keyframe(&key) && !is_keyframe(&delta));
        let mut packetizer = Vp8Packetizer::new(0x7FFF);
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        packetizer.packetize(&key, 1200, &mut a);
        packetizer.packetize(&delta, 1200, &mut b);
        packetizer.packetize(&delta, 1200, &mut c);
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|p| p.len() <= 1200));
        // The picture ID wraps at 15 bits.
        assert_eq!(Vp8Descriptor::parse(&b[0]).unwrap().0.picture_id, Some(0));

        let mut assembler = FrameAssembler::new(Vp8Depacketizer, 1 << 20);
        let mut frames = Vec::new();
        let a = packets(&a, 65534, 0);
        let c = packets(&c, 2, 6000);
        let b = packets(&b, 1, 3000);
        for p in a.iter().chain(&b).chain(&c) {
            frames.extend(assembler.push(&RtpPacket::parse(p).unwrap()));
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].data, key);
        assert_eq!((frames[1].timestamp, &frames[1].data), (3000, &delta));

        // Losing the middle packet of a key frame drops it; the next frame
        // still comes through.
        let mut assembler = FrameAssembler::new(Vp8Depacketizer, 1 << 20);
        let got: Vec<_> = [&a[0], &a[2], &b[0]]
            .into_iter()
            .filter_map(|p| assembler.push(&RtpPacket::parse(p).unwrap()))
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].timestamp, 3000);
        // Losing the first packet: the frame has no start.
        let mut assembler = FrameAssembler::new(Vp8Depacketizer, 1 << 20);
        assert!([&a[1], &a[2]]
            .into_iter()
            .all(|p| assembler.push(&RtpPacket::parse(p).unwrap()).is_none()));
        // Too large for the limit.
        let mut assembler = FrameAssembler::new(Vp8Depacketizer, 2000);
        assert!(a
            .iter()
            .all(|p| assembler.push(&RtpPacket::parse(p).unwrap()).is_none()));
    }

    #[test]
    fn keyframe_size_reads_the_key_frame_header() {
        // A 1280x720 key frame's first bytes (frame tag, start code, sizes
        // with scale bits set, which are not part of the size).
        let key = [0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x45, 0xd0, 0x42];
        assert_eq!(keyframe_size(&key), Some((1280, 720)));
        let mut inter = key;
        inter[0] |= 1;
        assert_eq!(keyframe_size(&inter), None);
        assert_eq!(keyframe_size(&key[..9]), None);
        let mut wrong = key;
        wrong[4] = 0;
        assert_eq!(keyframe_size(&wrong), None);
    }
}
