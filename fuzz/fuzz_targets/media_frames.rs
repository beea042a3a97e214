//! Arbitrary RTP packets (sequence number, timestamp, marker, payload,
//! arrival time) into the receive frame buffer of each payload format
//! (VP8, VP9 and H.264 descriptors parsed from peer bytes): it must
//! never panic, hold more than its bound, or hand out a frame over its
//! size limit.
#![no_main]
#![allow(clippy::disallowed_methods)] // one start time for the virtual clock

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use realtimer_media::{FrameBuffer, FrameBufferConfig, PayloadFormat};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let format = [
        PayloadFormat::Opus,
        PayloadFormat::Vp8,
        PayloadFormat::Vp9,
        PayloadFormat::H264 {
            packetization_mode: 1,
        },
    ][usize::from(selector % 4)];
    let config = FrameBufferConfig {
        max_packets: 64,
        max_frame_bytes: 4_096,
        ..FrameBufferConfig::for_format(format)
    };
    let mut buffer = FrameBuffer::new(format, config);
    let mut now = Instant::now();
    // Each packet: seq (2), timestamp (1), flags (1: marker, time step), length (1), payload.
    while rest.len() >= 5 {
        let seq = u16::from_be_bytes([rest[0], rest[1]]);
        let timestamp = u32::from(rest[2]) * 3_000;
        let marker = rest[3] & 1 != 0;
        now += Duration::from_millis(u64::from(rest[3] >> 1) * 4);
        let len = usize::from(rest[4]).min(rest.len() - 5);
        let payload = Bytes::copy_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
        buffer.insert(now, seq, timestamp, marker, payload);
        assert!(buffer.len() <= 64);
        while let Some(frame) = buffer.poll_frame(now) {
            assert!(frame.data.len() <= 4_096);
        }
        let _ = buffer.poll_keyframe_request(now);
        let _ = buffer.poll_timeout();
    }
});
