//! Transport-wide congestion control: arbitrary bytes behind an RTPFB FMT 15
//! header parse or fail without panicking, and what parses writes back to
//! the same feedback; arbitrary arrivals (sequence numbers and time steps)
//! never panic the feedback generator, and what it builds writes and
//! parses back.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use realtimer_rtp::rtcp::{CompoundPacket, RtcpPacket};
use realtimer_rtp::{FeedbackConfig, TransportFeedbackGenerator};

fuzz_target!(|data: &[u8]| {
    let mut packet = vec![0x8f, 205];
    let words = (data.len() / 4) as u16;
    packet.extend_from_slice(&words.to_be_bytes());
    packet.extend_from_slice(&data[..usize::from(words) * 4]);
    if let Some(Ok(RtcpPacket::TransportFeedback(f))) = CompoundPacket::new(&packet).next() {
        let mut out = Vec::new();
        f.write(&mut out).expect("parsed feedback writes");
        let again = CompoundPacket::new(&out).next();
        assert_eq!(again, Some(Ok(RtcpPacket::TransportFeedback(f))));
    }
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let config = FeedbackConfig {
        interval: Duration::from_millis(50),
        max_packets: 64,
    };
    let mut generator = TransportFeedbackGenerator::new(config, 1, 2);
    for step in data.chunks_exact(4) {
        now += Duration::from_micros(u64::from(step[0]) * 997);
        generator.on_packet(now, u16::from_be_bytes([step[1], step[2]]));
        if step[3] & 1 == 1 {
            while let Some(f) = generator.poll_feedback(now) {
                let mut out = Vec::new();
                f.write(&mut out).expect("generated feedback writes");
                let again = CompoundPacket::new(&out).next();
                assert_eq!(again, Some(Ok(RtcpPacket::TransportFeedback(f))));
            }
        }
    }
});
