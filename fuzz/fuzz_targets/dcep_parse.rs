//! Parses arbitrary bytes as a DCEP message; what parses must write back to
//! the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_datachannel::DcepMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = DcepMessage::parse(data) {
        let again = DcepMessage::parse(&message.to_bytes()).expect("our own DCEP parses");
        assert_eq!(again, message);
    }
});
