//! No datagram from the network makes a running agent panic.
#![allow(clippy::disallowed_methods)]

use realtimer_test_support::garbage::ice as garbage;

use std::time::Instant;

use proptest::prelude::*;
use proptest::strategy::ValueTree;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_datagrams_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        garbage::drive(&data, Instant::now());
    }
}

/// Structured garbage: valid STUN with random attributes, re-signed.
#[test]
fn signed_requests_and_responses_with_random_attributes() {
    use realtimer_stun::{AttributeType, Class, MessageEncoder, Method, TransactionId};
    let start = Instant::now();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(
        (
            any::<u8>(),
            proptest::collection::vec(
                (
                    prop_oneof![0u16..0x40, 0x8028u16..0x802B],
                    proptest::collection::vec(any::<u8>(), 0..24),
                ),
                0..6,
            ),
        ),
        1..12,
    );
    for _ in 0..500 {
        let chunks = strategy.new_tree(&mut runner).unwrap().current();
        let mut data = vec![1u8];
        for (flags, attributes) in chunks {
            let mut msg = Vec::new();
            let mut enc = MessageEncoder::new(
                &mut msg,
                Class::Request,
                Method::BINDING,
                TransactionId::new([flags; 12]),
            );
            for (t, v) in &attributes {
                let _ = enc.add_raw(AttributeType(*t), v);
            }
            enc.finish();
            if msg.len() > 255 {
                continue;
            }
            data.push((flags & !3) | (1 + (flags & 1)));
            data.push(msg.len() as u8);
            data.extend_from_slice(&msg);
        }
        garbage::drive(&data, start);
    }
}
