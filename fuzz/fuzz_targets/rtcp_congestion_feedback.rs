//! RFC 8888 congestion control feedback (RTPFB FMT 11) and REMB (PSFB FMT
//! 15): arbitrary bytes behind either header parse or fail without
//! panicking, and what parses writes back to packets that parse the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_rtp::rtcp::{CompoundPacket, RtcpPacket};

fuzz_target!(|data: &[u8]| {
    let words = (data.len() / 4) as u16;
    for header in [[0x8b, 205], [0x8f, 206]] {
        let mut packet = header.to_vec();
        packet.extend_from_slice(&words.to_be_bytes());
        packet.extend_from_slice(&data[..usize::from(words) * 4]);
        match CompoundPacket::new(&packet).next() {
            Some(Ok(p @ (RtcpPacket::CongestionControlFeedback(_) | RtcpPacket::Remb(_)))) => {
                let mut out = Vec::new();
                p.write(&mut out).expect("parsed feedback writes");
                let again = CompoundPacket::new(&out).next().expect("one packet");
                let again = again.expect("our own feedback parses");
                if let (RtcpPacket::Remb(a), RtcpPacket::Remb(b)) = (&p, &again) {
                    // The mantissa keeps 18 bits: a saturated rate comes back lower.
                    assert_eq!(a.ssrcs, b.ssrcs);
                    assert!(b.bitrate <= a.bitrate);
                } else {
                    assert_eq!(again, p);
                }
            }
            _ => {}
        }
    }
});
