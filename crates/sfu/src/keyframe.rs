//! Whether an RTP payload starts a keyframe, without decoding it: a
//! subscriber can only start (or resume) a video stream on one.

/// Whether `payload` of codec `codec` (its `a=rtpmap` name) is the first
/// packet of a keyframe. VP8: S set on partition 0 and the frame tag's P
/// bit clear (RFC 7741 §4.2, RFC 6386 §9.1). H.264: an IDR slice or SPS in
/// a single NAL unit, an aggregation (STAP-A) or the first fragment of a
/// FU-A (RFC 6184 §5.6-5.8). Other codecs are not looked into: every
/// packet counts as a start (the keyframe request still goes out).
pub fn starts_keyframe(codec: &str, payload: &[u8]) -> bool {
    if codec.eq_ignore_ascii_case("VP8") {
        let Ok((descriptor, len)) = realtimer_rtp::payload::vp8::Vp8Descriptor::parse(payload)
        else {
            return false;
        };
        descriptor.starts_frame()
            && payload
                .get(len..)
                .is_some_and(realtimer_rtp::payload::vp8::is_keyframe)
    } else if codec.eq_ignore_ascii_case("H264") {
        let Some(&header) = payload.first() else {
            return false;
        };
        let key = |nal_type: u8| matches!(nal_type, 5 | 7);
        match header & 0x1F {
            // STAP-A: 16-bit sizes, then NAL units.
            24 => {
                let mut rest = &payload[1..];
                while rest.len() > 2 {
                    let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    if rest.get(2).is_some_and(|h| key(h & 0x1F)) {
                        return true;
                    }
                    rest = rest.get(2 + size..).unwrap_or(&[]);
                }
                false
            }
            // FU-A: the start bit and the fragmented unit's type.
            28 => payload
                .get(1)
                .is_some_and(|fu| fu & 0x80 != 0 && key(fu & 0x1F)),
            nal_type => key(nal_type),
        }
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::starts_keyframe;

    #[test]
    fn tells_vp8_and_h264_keyframes() {
        // VP8: X=0, S=1, PID=0; frame tag with P=0 (key) and P=1 (delta).
        assert!(starts_keyframe("VP8", &[0x10, 0x00, 0x01]));
        assert!(!starts_keyframe("VP8", &[0x10, 0x01, 0x01]));
        // Not the start of the frame.
        assert!(!starts_keyframe("VP8", &[0x00, 0x00]));
        assert!(!starts_keyframe("vp8", &[]));
        // H.264: IDR, non-IDR, STAP-A with an SPS, FU-A start of an IDR.
        assert!(starts_keyframe("H264", &[0x65, 0]));
        assert!(!starts_keyframe("H264", &[0x41, 0]));
        assert!(starts_keyframe("H264", &[0x78, 0, 2, 0x67, 0]));
        assert!(!starts_keyframe("H264", &[0x78, 0, 2, 0x41, 0, 0xFF, 0xFF]));
        assert!(starts_keyframe("H264", &[0x7C, 0x85, 0]));
        assert!(!starts_keyframe("H264", &[0x7C, 0x05, 0]));
        assert!(starts_keyframe("opus", &[1]));
    }
}
