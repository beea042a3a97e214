//! Whether an Opus packet carries in-band FEC for the packet before it
//! (LBRR, RFC 6716 §2.1.7): only then can a loss be rebuilt from it;
//! decoding "FEC" from a packet without LBRR is loss concealment by
//! another name. Chromium's NetEq asks the same before it splits a
//! packet's FEC off as a secondary packet (`fecPacketsReceived`).

/// True when the first Opus frame of `packet` is SILK or hybrid (CELT
/// frames have no LBRR) and its LBRR flag is set, for either channel.
///
/// RFC 6716 §4.2.3-4.2.4: a SILK frame's range-coded data begins with one
/// VAD flag per 20 ms SILK frame and then the LBRR flag, for the mid
/// channel and then (stereo) the side channel; these are binary symbols of
/// uniform probability, the first the range coder decodes, so they are
/// the most significant bits of the frame's first byte. The first frame's
/// start follows the TOC byte and the frame packing of §3.2. Malformed or
/// truncated packets are `false`, never a panic.
pub fn opus_has_fec(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    let config = toc >> 3;
    // Configs 16-31 are CELT only (§3.1, Table 2).
    if config >= 16 {
        return false;
    }
    // SILK frames of 20 ms in one Opus frame: 10 and 20 ms frames hold
    // one, 40 ms two, 60 ms three (SILK only: configs 0-11, four sizes
    // each; hybrid: 12-15, 10 or 20 ms).
    let silk_frames: u32 = if config < 12 {
        match config % 4 {
            2 => 2,
            3 => 3,
            _ => 1,
        }
    } else {
        1
    };
    let stereo = toc & 0x04 != 0;
    let Some(first) = first_frame(packet) else {
        return false;
    };
    let mid = 0x80u8 >> silk_frames;
    let side = if stereo {
        0x80u8 >> (2 * silk_frames + 1)
    } else {
        0
    };
    first & (mid | side) != 0
}

/// The first byte of the first frame of `packet` (§3.2), if that frame is
/// not empty.
fn first_frame(packet: &[u8]) -> Option<u8> {
    let len = packet.len();
    let (offset, frame_len) = match packet[0] & 0x03 {
        // One frame, or two of equal size.
        0 => (1, len - 1),
        1 => (1, (len - 1) / 2),
        // Two frames, the first's length coded (§3.2.1).
        2 => {
            let (n, size) = frame_length(packet, 1)?;
            (1 + size, n)
        }
        // M frames (§3.2.5): count byte, padding length, then M - 1
        // lengths when VBR.
        _ => {
            let count = *packet.get(1)?;
            let frames = usize::from(count & 0x3f);
            if frames == 0 {
                return None;
            }
            let mut at = 2;
            if count & 0x40 != 0 {
                loop {
                    let b = *packet.get(at)?;
                    at += 1;
                    if b != 255 {
                        break;
                    }
                }
            }
            if count & 0x80 != 0 {
                let (first, size) = frame_length(packet, at)?;
                at += size;
                for _ in 2..frames {
                    at += frame_length(packet, at)?.1;
                }
                (at, first)
            } else {
                (at, len.saturating_sub(at) / frames)
            }
        }
    };
    if frame_len == 0 {
        return None;
    }
    packet.get(offset).copied()
}

/// A frame length coded at `at` (§3.2.1: one byte below 252, else two)
/// and the bytes it took.
fn frame_length(packet: &[u8], at: usize) -> Option<(usize, usize)> {
    let b0 = usize::from(*packet.get(at)?);
    if b0 < 252 {
        return Some((b0, 1));
    }
    let b1 = usize::from(*packet.get(at + 1)?);
    Some((b0 + 4 * b1, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lbrr_flags_are_read_for_silk_and_hybrid_only() {
        // SILK wideband 20 ms (config 9), mono, code 0: VAD then LBRR.
        let toc = 9 << 3;
        assert!(opus_has_fec(&[toc, 0b0100_0000, 1, 2]));
        assert!(!opus_has_fec(&[toc, 0b1000_0000, 1, 2]));
        // 60 ms (config 11): three VAD flags, then LBRR.
        assert!(opus_has_fec(&[11 << 3, 0b0001_0000, 1]));
        assert!(!opus_has_fec(&[11 << 3, 0b0100_0000, 1]));
        // Stereo: the side channel's LBRR after the mid's two flags.
        assert!(opus_has_fec(&[toc | 0x04, 0b0001_0000, 1]));
        // Hybrid fullband 20 ms (config 15).
        assert!(opus_has_fec(&[15 << 3, 0b0100_0000]));
        // CELT (config 31) never.
        assert!(!opus_has_fec(&[31 << 3, 0xff, 0xff]));
        // Code 2: the first frame after its length; code 3 VBR with
        // padding: after the count, the padding length and one length.
        assert!(opus_has_fec(&[toc | 2, 1, 0b0100_0000, 0]));
        assert!(opus_has_fec(&[
            toc | 3,
            0b1100_0010,
            1,
            1,
            0b0100_0000,
            0,
            0
        ]));
        // Truncated or empty: false.
        for bad in [
            &[][..],
            &[toc],
            &[toc | 2, 252],
            &[toc | 3, 0x80 | 2, 5],
            &[toc | 3, 0],
        ] {
            assert!(!opus_has_fec(bad), "{bad:?}");
        }
    }
}
