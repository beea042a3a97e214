//! Feeds arbitrary bytes, in chunks of a fuzzer-chosen size, to the TURN
//! stream decoder (RFC 8656 §3.1, §12.5). It must never panic, never offer
//! an empty read buffer, keep its buffer bounded, and return only whole
//! STUN or ChannelData messages; after an error the stream is closed. The
//! bytes it holds unread are the stream's last ones (a data connection's
//! first bytes to its peer after a ConnectionBind, RFC 6062 §5.4).
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_stun::channel_data::ChannelData;
use realtimer_stun::{StreamDecoder, MAX_FRAME_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let mut rest = stream;
    let chunk = usize::from(chunk) * 61 + 1;
    let mut decoder = StreamDecoder::new();
    while !rest.is_empty() {
        let space = decoder.read_buf();
        assert!(!space.is_empty());
        let n = space.len().min(chunk).min(rest.len());
        space[..n].copy_from_slice(&rest[..n]);
        decoder.filled(n);
        rest = &rest[n..];
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    assert!(message.len() <= MAX_FRAME_LEN);
                    match message[0] {
                        0..=3 => {
                            let len = usize::from(u16::from_be_bytes([message[2], message[3]]));
                            assert_eq!(message.len(), 20 + len);
                        }
                        0x40..=0x7F => {
                            assert_eq!(ChannelData::frame_len(message), Some(message.len()));
                            assert!(ChannelData::decode(message).is_ok());
                        }
                        other => panic!("a message starting with {other:#04x}"),
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(decoder.buffered() <= MAX_FRAME_LEN + 8192);
        let fed = &stream[..stream.len() - rest.len()];
        assert_eq!(decoder.unread(), &fed[fed.len() - decoder.buffered()..]);
    }
});
