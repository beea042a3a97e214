//! VP9 over RTP (RFC 9628): the payload descriptor (§4.2), a packetizer
//! (non-flexible mode, one spatial layer: what a single encoder gives) and
//! a depacketizer that takes every mode browsers send (flexible, layer
//! indices, scalability structure).

use super::Depacketizer;
use crate::ParseError;

/// The VP9 payload descriptor (RFC 9628 §4.2), the fields a receiver
/// needs to find pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp9Descriptor {
    /// P: the frame refers to an earlier one (not a keyframe on its own).
    pub inter_picture: bool,
    /// F: flexible mode.
    pub flexible: bool,
    /// B: the payload starts a layer frame.
    pub begins: bool,
    /// E: the payload ends a layer frame.
    pub ends: bool,
    /// The 7- or 15-bit picture ID (I).
    pub picture_id: Option<u16>,
    /// The spatial layer (SID of the layer indices, L), 0 without them.
    pub spatial_id: u8,
    /// The temporal layer (TID of the layer indices, L), 0 without them.
    pub temporal_id: u8,
}

impl Vp9Descriptor {
    /// Parses the descriptor at the start of `payload`; returns it and its
    /// length.
    pub fn parse(payload: &[u8]) -> Result<(Self, usize), ParseError> {
        let truncated = |offset| ParseError::Truncated {
            offset,
            expected: "VP9 payload descriptor",
        };
        let byte = |at: usize| payload.get(at).copied().ok_or(truncated(at));
        let first = byte(0)?;
        let (has_id, has_layers, has_ss) =
            (first & 0x80 != 0, first & 0x20 != 0, first & 0x02 != 0);
        let mut d = Self {
            inter_picture: first & 0x40 != 0,
            flexible: first & 0x10 != 0,
            begins: first & 0x08 != 0,
            ends: first & 0x04 != 0,
            ..Self::default()
        };
        let mut at = 1;
        if has_id {
            let b = byte(at)?;
            if b & 0x80 != 0 {
                d.picture_id = Some(u16::from(b & 0x7F) << 8 | u16::from(byte(at + 1)?));
                at += 2;
            } else {
                d.picture_id = Some(u16::from(b));
                at += 1;
            }
        }
        if has_layers {
            let b = byte(at)?;
            d.temporal_id = b >> 5;
            d.spatial_id = (b >> 1) & 0x07;
            // TL0PICIDX follows in non-flexible mode only.
            at += if d.flexible { 1 } else { 2 };
        }
        if d.flexible && d.inter_picture {
            // Up to three P_DIFF bytes, N set on all but the last.
            for i in 0..3 {
                let b = byte(at)?;
                at += 1;
                if b & 0x01 == 0 {
                    break;
                }
                if i == 2 {
                    return Err(ParseError::Malformed {
                        offset: at - 1,
                        what: "VP9 reference list (more than 3 P_DIFF)",
                    });
                }
            }
        }
        if has_ss {
            // §4.2.1: N_S|Y|G, then sizes, then the picture group.
            let b = byte(at)?;
            at += 1;
            let spatial_layers = usize::from(b >> 5) + 1;
            if b & 0x10 != 0 {
                at += 4 * spatial_layers;
            }
            if b & 0x08 != 0 {
                let groups = byte(at)?;
                at += 1;
                for _ in 0..groups {
                    let references = usize::from((byte(at)? >> 2) & 0x03);
                    at += 1 + references;
                }
            }
        }
        // Fields skipped without being read (TL0PICIDX, sizes, reference
        // indices) must be there too.
        if at > payload.len() {
            return Err(truncated(at));
        }
        Ok((d, at))
    }

    /// Whether this payload begins a picture: B on the lowest spatial layer.
    pub fn starts_frame(&self) -> bool {
        self.begins && self.spatial_id == 0
    }
}

/// Whether a VP9 frame is a key frame, from its uncompressed header (VP9
/// bitstream specification §6.2: frame_marker, profile, show_existing_frame,
/// frame_type 0 for KEY_FRAME). `frame` is the bitstream, descriptor
/// removed.
pub fn is_keyframe(frame: &[u8]) -> bool {
    let Some(&b) = frame.first() else {
        return false;
    };
    if b >> 6 != 2 {
        return false;
    }
    let profile = (b >> 5 & 1) | (b >> 3 & 2);
    // Profile 3 has a reserved zero bit before show_existing_frame.
    let shift = if profile == 3 { 1 } else { 0 };
    let show_existing = b >> (3 - shift) & 1;
    let frame_type = b >> (2 - shift) & 1;
    show_existing == 0 && frame_type == 0
}

/// Splits VP9 frames into payloads with a descriptor carrying a 15-bit
/// picture ID, non-flexible, no layer indices (RFC 9628 §4.2; one spatial
/// and temporal layer, as one libvpx encoder gives).
#[derive(Debug, Clone, Default)]
pub struct Vp9Packetizer {
    picture_id: u16,
}

/// Descriptor length the packetizer writes: flags, then M + 15-bit ID.
const DESCRIPTOR_LEN: usize = 3;

impl Vp9Packetizer {
    /// A packetizer whose first picture ID is `picture_id` (15 bits).
    pub fn new(picture_id: u16) -> Self {
        Self {
            picture_id: picture_id & 0x7FFF,
        }
    }

    /// Appends the payloads of `frame`, each at most `max_payload` bytes
    /// (at least 4), to `out`; the caller sends them with one timestamp
    /// and the marker bit on the last. P is set unless the frame is a key
    /// frame.
    pub fn packetize(&mut self, frame: &[u8], max_payload: usize, out: &mut Vec<Vec<u8>>) {
        let id = self.picture_id;
        let inter = if is_keyframe(frame) { 0 } else { 0x40 };
        super::split_after_descriptor::<DESCRIPTOR_LEN>(frame, max_payload, out, |first, last| {
            let begins = if first { 0x08 } else { 0 };
            let ends = if last { 0x04 } else { 0 };
            [
                0x80 | inter | begins | ends,
                0x80 | (id >> 8) as u8,
                id as u8,
            ]
        });
        self.picture_id = (id + 1) & 0x7FFF;
    }
}

/// Strips VP9 payload descriptors (RFC 9628 §4.2).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vp9Depacketizer;

impl Depacketizer for Vp9Depacketizer {
    fn depacketize(&mut self, payload: &[u8], frame: &mut Vec<u8>) -> Result<bool, ParseError> {
        let (descriptor, len) = Vp9Descriptor::parse(payload)?;
        frame.extend_from_slice(&payload[len..]);
        Ok(descriptor.starts_frame())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_the_frame_and_marks_its_ends() {
        // A profile 0 key frame header (10 0 0 0 0 ..) then inter (.. 0 1 ..).
        let key: Vec<u8> = std::iter::once(0x80)
            .chain((0..3000u32).map(|i| i as u8))
            .collect();
        assert!(is_keyframe(&key));
        assert!(!is_keyframe(&[0x84, 0]));
        assert!(!is_keyframe(&[0x88, 0]), "show_existing_frame");
        let mut p = Vp9Packetizer::new(0x7FFF);
        let mut out = Vec::new();
        p.packetize(&key, 1200, &mut out);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|p| p.len() <= 1200));
        let (d0, _) = Vp9Descriptor::parse(&out[0]).unwrap();
        let (d2, _) = Vp9Descriptor::parse(&out[2]).unwrap();
        assert!(d0.begins && !d0.ends && !d0.inter_picture && d0.starts_frame());
        assert!(!d2.begins && d2.ends);
        assert_eq!(d0.picture_id, Some(0x7FFF));
        let mut frame = Vec::new();
        for payload in &out {
            Vp9Depacketizer.depacketize(payload, &mut frame).unwrap();
        }
        assert_eq!(frame, key);
        let mut next = Vec::new();
        p.packetize(&[0x84, 1], 1200, &mut next);
        let (d, _) = Vp9Descriptor::parse(&next[0]).unwrap();
        assert_eq!((d.picture_id, d.inter_picture), (Some(0), true));
    }

    #[test]
    fn a_descriptor_cut_inside_skipped_fields_is_truncated() {
        // Found by the media_frames fuzz target: layer indices in
        // non-flexible mode announce a TL0PICIDX the payload lacks.
        for cut in [
            &[0x20u8, 0x00][..],
            &[0xA0, 0x01, 0x00],
            &[0x02, 0x10, 0, 0],
        ] {
            assert!(
                matches!(Vp9Descriptor::parse(cut), Err(ParseError::Truncated { .. })),
                "{cut:?}"
            );
            assert!(Vp9Depacketizer.depacketize(cut, &mut Vec::new()).is_err());
        }
    }

    #[test]
    fn parses_flexible_layers_and_scalability_structure() {
        // I, P, L, F, B, V; 7-bit ID 5; TID 1 SID 0; two P_DIFFs; SS with
        // one layer's size and one group of one reference.
        let d = [
            0xF8 | 0x02,
            5,
            0x20,
            0x03,
            0x04,
            0x18,
            0x02,
            0x80,
            0x01,
            0x68,
            1,
            0x04,
            1,
            0xAA,
        ];
        let (desc, len) = Vp9Descriptor::parse(&d).unwrap();
        assert_eq!(len, d.len() - 1);
        assert_eq!(
            (
                desc.picture_id,
                desc.temporal_id,
                desc.spatial_id,
                desc.flexible
            ),
            (Some(5), 1, 0, true)
        );
        assert!(desc.starts_frame());
        // Spatial layer 1 begins a layer frame, not a picture.
        let (upper, _) = Vp9Descriptor::parse(&[0x28 | 0x10, 0x02]).unwrap();
        assert!(upper.begins && !upper.starts_frame());
        for bad in [
            &[][..],
            &[0x80],
            &[0x80, 0x80],
            &[0x50, 1, 1, 1],
            &[0x02, 0x10, 0],
        ] {
            assert!(Vp9Descriptor::parse(bad).is_err(), "{bad:?}");
        }
    }
}
