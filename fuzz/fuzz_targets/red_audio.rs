//! Arbitrary RED (RFC 2198) payloads, as a peer that negotiated `red`
//! sends them, split by `parse_red` and fed to the audio jitter buffer as
//! `play_audio` does (the primary, then the redundant copies): it must
//! never panic, hold more packets than its bound, or hand out a block
//! that is not a slice of the payload; nor `opus_has_fec`, which the
//! buffer asks of each packet, on any payload.
#![no_main]
#![allow(clippy::disallowed_methods)] // one start time for the virtual clock

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use realtimer_media::{
    opus_has_fec, parse_red, AudioJitterBuffer, AudioJitterConfig, MAX_REDUNDANT_BLOCKS,
};

fuzz_target!(|data: &[u8]| {
    let config = AudioJitterConfig {
        max_packets: 32,
        ..AudioJitterConfig::default()
    };
    let mut buffer = AudioJitterBuffer::new(config);
    let mut now = Instant::now();
    let mut rest = data;
    // Each packet: seq (2), timestamp step (1), length (1), payload.
    let (mut seq, mut timestamp) = (0u16, 0u32);
    while rest.len() >= 4 {
        seq = seq.wrapping_add(u16::from_be_bytes([rest[0], rest[1]]) % 4);
        timestamp = timestamp.wrapping_add(u32::from(rest[2]) * 240);
        let len = usize::from(rest[3]).min(rest.len() - 4);
        let payload = Bytes::copy_from_slice(&rest[4..4 + len]);
        rest = &rest[4 + len..];
        now += Duration::from_millis(20);
        // In-band FEC is looked for in whatever arrives.
        let _ = opus_has_fec(&payload);
        if let Ok(red) = parse_red(&payload) {
            assert!(red.redundant.len() <= MAX_REDUNDANT_BLOCKS);
            let total: usize =
                red.redundant.iter().map(|b| b.data.len()).sum::<usize>() + red.primary.data.len();
            assert!(total <= payload.len());
            buffer.insert(now, seq, timestamp, red.primary.data);
            for block in red.redundant {
                buffer.insert_redundant(now, timestamp, block.timestamp_offset, block.data);
            }
        }
        assert!(buffer.len() <= 32);
        let _ = buffer.pull(now);
    }
});
