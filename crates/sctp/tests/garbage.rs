//! No packet makes an established association panic.
#![allow(clippy::disallowed_methods)]

use realtimer_test_support::garbage::sctp as garbage;

use std::time::Instant;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_packets_never_panic(data in proptest::collection::vec(any::<u8>(), 0..800)) {
        garbage::drive(&data, Instant::now());
    }

    #[test]
    fn plausible_chunks_never_panic(chunks in proptest::collection::vec((any::<u8>(), prop_oneof![Just(0u8), Just(3), Just(6), Just(7), Just(10), Just(130), Just(192), any::<u8>()], any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 1..8)) {
        // Well-framed chunks of the types the association handles.
        let mut data = Vec::new();
        for (flags, chunk_type, chunk_flags, value) in chunks {
            let mut body = vec![chunk_type, chunk_flags];
            body.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
            body.extend_from_slice(&value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
            data.push(flags);
            data.extend_from_slice(&(body.len() as u16).to_be_bytes());
            data.extend_from_slice(&body);
        }
        garbage::drive(&data, Instant::now());
    }
}
