//! The picture size of a VP8 or VP9 keyframe, read from the frame's own
//! header, for the container headers of a recording (IVF and WebM name
//! the width and height up front; RTP does not carry them).
//!
//! - VP8 (RFC 6386 §9.1): a keyframe's 10-byte uncompressed chunk, the
//!   start code `9d 01 2a` and two 14-bit sizes.
//! - VP9 (VP9 Bitstream Specification v0.6, §6.2 `uncompressed_header`,
//!   §6.2.1 `frame_sync_code`, §6.2.2 `color_config`, §6.2.3
//!   `frame_size`): the sizes follow the sync code and the color config,
//!   whose length depends on the profile and color space. A superframe
//!   (Annex B) starts with its first frame, so its header is read as is.
//!
//! Both read bytes a remote peer sent: a short or malformed header is a
//! typed error, never a panic (fuzz target `frame_size`).

/// Why a frame header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameHeaderError {
    /// The frame ends inside its header.
    #[error("the frame ends inside its header ({len} bytes)")]
    Truncated {
        /// The frame's length.
        len: usize,
    },
    /// VP9 §6.2: `frame_marker` must be 2.
    #[error("VP9 frame_marker is {0}, not 2")]
    FrameMarker(u8),
    /// The keyframe's sync code (VP8 `9d 01 2a`, VP9 `49 83 42`) is wrong.
    #[error("the keyframe's start code is wrong")]
    SyncCode,
    /// VP9 §6.2, §6.2.2: a `reserved_zero` bit is set.
    #[error("a VP9 reserved bit is set")]
    ReservedBit,
}

/// A keyframe's picture size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSize {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// The size of a VP8 keyframe (RFC 6386 §9.1); `Ok(None)` for an
/// interframe, which has none.
pub fn vp8_keyframe_size(frame: &[u8]) -> Result<Option<FrameSize>, FrameHeaderError> {
    let truncated = FrameHeaderError::Truncated { len: frame.len() };
    let tag = *frame.first().ok_or(truncated)?;
    // §9.1: bit 0 of the frame tag is 0 for a keyframe.
    if tag & 1 != 0 {
        return Ok(None);
    }
    let header = frame.get(..10).ok_or(truncated)?;
    if header[3..6] != [0x9d, 0x01, 0x2a] {
        return Err(FrameHeaderError::SyncCode);
    }
    // The top two bits of each size are the scaling mode.
    let width = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
    let height = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
    Ok(Some(FrameSize {
        width: width.into(),
        height: height.into(),
    }))
}

/// VP9 §6.2: `frame_type` 0 is `KEY_FRAME`.
const VP9_KEY_FRAME: u32 = 0;
/// VP9 §7.2.2: color space 7 is `CS_RGB`.
const VP9_CS_RGB: u32 = 7;

/// The size of a VP9 keyframe from its uncompressed header (VP9 §6.2);
/// `Ok(None)` for a frame that is not a keyframe or that only shows an
/// earlier frame (`show_existing_frame`).
pub fn vp9_keyframe_size(frame: &[u8]) -> Result<Option<FrameSize>, FrameHeaderError> {
    let mut bits = BitReader::new(frame);
    let marker = bits.read(2)?;
    if marker != 2 {
        return Err(FrameHeaderError::FrameMarker(marker as u8));
    }
    let profile_low = bits.read(1)?;
    let profile_high = bits.read(1)?;
    let profile = (profile_high << 1) | profile_low;
    if profile == 3 && bits.read(1)? != 0 {
        return Err(FrameHeaderError::ReservedBit);
    }
    let show_existing_frame = bits.read(1)?;
    if show_existing_frame == 1 {
        return Ok(None);
    }
    let frame_type = bits.read(1)?;
    let _show_frame = bits.read(1)?;
    let _error_resilient_mode = bits.read(1)?;
    if frame_type != VP9_KEY_FRAME {
        return Ok(None);
    }
    // §6.2.1 frame_sync_code.
    if bits.read(24)? != 0x49_83_42 {
        return Err(FrameHeaderError::SyncCode);
    }
    // §6.2.2 color_config.
    if profile >= 2 {
        let _ten_or_twelve_bit = bits.read(1)?;
    }
    let color_space = bits.read(3)?;
    if color_space != VP9_CS_RGB {
        let _color_range = bits.read(1)?;
        if profile == 1 || profile == 3 {
            let _subsampling = bits.read(2)?;
            if bits.read(1)? != 0 {
                return Err(FrameHeaderError::ReservedBit);
            }
        }
    } else if (profile == 1 || profile == 3) && bits.read(1)? != 0 {
        return Err(FrameHeaderError::ReservedBit);
    }
    // §6.2.3 frame_size: each size minus 1 in 16 bits.
    let width = bits.read(16)? + 1;
    let height = bits.read(16)? + 1;
    Ok(Some(FrameSize { width, height }))
}

/// Reads bits most significant first (VP9 §4.9, `f(n)`).
struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, bit: 0 }
    }

    /// The next `n` (at most 32) bits as a number.
    fn read(&mut self, n: usize) -> Result<u32, FrameHeaderError> {
        let mut value = 0u32;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.bit / 8)
                .ok_or(FrameHeaderError::Truncated {
                    len: self.data.len(),
                })?;
            let bit = (byte >> (7 - self.bit % 8)) & 1;
            value = (value << 1) | u32::from(bit);
            self.bit += 1;
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_and_interframe() {
        // A keyframe's frame tag (bit 0 clear), the start code, 640x480.
        let frame = [
            0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, 0x00,
        ];
        let size = FrameSize {
            width: 640,
            height: 480,
        };
        assert_eq!(vp8_keyframe_size(&frame), Ok(Some(size)));
        let mut inter = frame;
        inter[0] |= 1;
        assert_eq!(vp8_keyframe_size(&inter), Ok(None));
        assert_eq!(
            vp8_keyframe_size(&frame[..5]),
            Err(FrameHeaderError::Truncated { len: 5 })
        );
        let mut bad = frame;
        bad[4] = 0;
        assert_eq!(vp8_keyframe_size(&bad), Err(FrameHeaderError::SyncCode));
    }

    /// Bits written most significant first, padded with zeros.
    fn pack(fields: &[(u32, usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut bit = 0;
        for &(value, n) in fields {
            for i in (0..n).rev() {
                if bit % 8 == 0 {
                    out.push(0);
                }
                let last = out.len() - 1;
                out[last] |= (((value >> i) & 1) as u8) << (7 - bit % 8);
                bit += 1;
            }
        }
        out.extend_from_slice(&[0; 4]);
        out
    }

    /// A keyframe header: marker, profile bits, show_existing, frame_type,
    /// show_frame, error_resilient, sync code, then `color` and the sizes.
    fn vp9_keyframe(profile: u32, color: &[(u32, usize)], w: u32, h: u32) -> Vec<u8> {
        let mut fields = vec![(2, 2), (profile & 1, 1), (profile >> 1, 1)];
        if profile == 3 {
            fields.push((0, 1));
        }
        fields.extend([(0, 1), (0, 1), (1, 1), (0, 1), (0x49_83_42, 24)]);
        fields.extend_from_slice(color);
        fields.extend([(w - 1, 16), (h - 1, 16)]);
        pack(&fields)
    }

    #[test]
    fn vp9_keyframe_sizes_by_profile_and_color_space() {
        // The first bytes of libvpx's 320x240 keyframes (ffmpeg 5's
        // libvpx-vp9): 4:2:0 (profile 0), and RGB (profile 1, CS_RGB).
        let yuv420 = [0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf6];
        let rgb = [0xa2, 0x49, 0x83, 0x42, 0xe0, 0x13, 0xf0, 0x0e, 0xf6];
        let size = |width, height| Ok(Some(FrameSize { width, height }));
        assert_eq!(vp9_keyframe_size(&yuv420), size(320, 240));
        assert_eq!(vp9_keyframe_size(&rgb), size(320, 240));
        // Profile 0, BT.601 (1), studio range.
        let p0 = vp9_keyframe(0, &[(1, 3), (0, 1)], 1280, 720);
        assert_eq!(vp9_keyframe_size(&p0), size(1280, 720));
        // Profile 1: subsampling bits and a reserved bit follow the range.
        let p1 = vp9_keyframe(1, &[(2, 3), (1, 1), (0, 2), (0, 1)], 640, 360);
        assert_eq!(vp9_keyframe_size(&p1), size(640, 360));
        // Profile 2: the bit depth bit comes first.
        let p2 = vp9_keyframe(2, &[(1, 1), (1, 3), (0, 1)], 1920, 1080);
        assert_eq!(vp9_keyframe_size(&p2), size(1920, 1080));
        // Profile 3, RGB: only the reserved bit.
        let p3 = vp9_keyframe(3, &[(1, 1), (7, 3), (0, 1)], 65_536, 1);
        assert_eq!(vp9_keyframe_size(&p3), size(65_536, 1));
        let p3_reserved = vp9_keyframe(3, &[(1, 1), (7, 3), (1, 1)], 2, 2);
        assert_eq!(
            vp9_keyframe_size(&p3_reserved),
            Err(FrameHeaderError::ReservedBit)
        );
    }

    #[test]
    fn vp9_other_frames_and_bad_headers() {
        // An interframe (frame_type 1) and show_existing_frame have no size.
        assert_eq!(
            vp9_keyframe_size(&pack(&[(2, 2), (0, 2), (0, 1), (1, 1)])),
            Ok(None)
        );
        assert_eq!(
            vp9_keyframe_size(&pack(&[(2, 2), (0, 2), (1, 1)])),
            Ok(None)
        );
        assert_eq!(
            vp9_keyframe_size(&[0x02]),
            Err(FrameHeaderError::FrameMarker(0))
        );
        assert_eq!(
            vp9_keyframe_size(&[0x82, 0x49, 0x83]),
            Err(FrameHeaderError::Truncated { len: 3 })
        );
        assert_eq!(
            vp9_keyframe_size(&[0x82, 0x49, 0x83, 0x43, 0, 0, 0, 0]),
            Err(FrameHeaderError::SyncCode)
        );
        assert_eq!(
            vp9_keyframe_size(&[]),
            Err(FrameHeaderError::Truncated { len: 0 })
        );
    }
}
