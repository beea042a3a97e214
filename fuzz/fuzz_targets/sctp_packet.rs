//! Parses arbitrary bytes as an SCTP packet; what parses must write back to
//! bytes that parse to the same packet.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use realtimer_sctp::Packet;

fuzz_target!(|data: &[u8]| {
    // Most inputs fail the checksum; seal them so the chunk parsers run too.
    let mut sealed = data.to_vec();
    if sealed.len() >= 12 {
        sealed[8..12].fill(0);
        let crc = crc32c::crc32c(&sealed);
        sealed[8..12].copy_from_slice(&crc.to_le_bytes());
    }
    for input in [Bytes::copy_from_slice(data), Bytes::from(sealed)] {
        if let Ok(packet) = Packet::parse(&input) {
            let again = Packet::parse(&packet.to_bytes()).expect("our own packets parse");
            assert_eq!(again, packet);
        }
    }
});
