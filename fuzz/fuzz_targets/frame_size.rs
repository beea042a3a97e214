//! Reads arbitrary bytes as a VP8 and as a VP9 frame header, as `realtimer
//! record` does with a peer's keyframes: an error or a size, never a
//! panic; a VP9 size is at most 65536 each way (16 bits plus one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_media_files::frame_size::{vp8_keyframe_size, vp9_keyframe_size};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(size)) = vp8_keyframe_size(data) {
        assert!(size.width < 1 << 14 && size.height < 1 << 14);
    }
    if let Ok(Some(size)) = vp9_keyframe_size(data) {
        assert!((1..=1 << 16).contains(&size.width));
        assert!((1..=1 << 16).contains(&size.height));
    }
});
