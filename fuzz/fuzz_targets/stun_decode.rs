//! Decodes arbitrary bytes as a STUN message; on success, walks every
//! attribute, checks integrity, and re-encodes what it found: none of it may
//! panic, and a re-encoded message must decode to the same attributes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_stun::{IntegrityKey, Message, MessageEncoder};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::decode(data) else {
        return;
    };
    let key = IntegrityKey::from_bytes(b"fuzz");
    let _ = msg.verify_integrity(&key);
    let _: Vec<_> = msg.unknown_comprehension_required().collect();
    for attribute in msg.attributes() {
        let _ = attribute;
    }
    // Re-encode the raw attributes and decode again: same list.
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(&mut buf, msg.class(), msg.method(), msg.transaction_id());
    for raw in msg.raw_attributes() {
        enc.add_raw(raw.attribute_type, raw.value)
            .expect("a decoded message's attributes fit again");
    }
    enc.finish();
    let again = Message::decode(&buf).expect("re-encoded message decodes");
    assert!(again.raw_attributes().eq(msg.raw_attributes()));
    assert_eq!(again.class(), msg.class());
    assert_eq!(again.method(), msg.method());
});
