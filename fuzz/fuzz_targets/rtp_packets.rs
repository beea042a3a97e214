//! Parses arbitrary bytes as an RTP packet and as an RTCP compound packet;
//! what parses must write back to packets that parse to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_rtp::rtcp::CompoundPacket;
use realtimer_rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = RtpPacket::parse(data) {
        let header = packet.to_header();
        let mut out = Vec::new();
        // Every parsed extension element fits the two-byte form, so writing
        // cannot fail.
        header
            .write_packet(packet.payload(), packet.padding_len(), &mut out)
            .expect("a parsed header writes");
        let again = RtpPacket::parse(&out).expect("our own RTP parses");
        assert_eq!(again.to_header(), header);
        assert_eq!(again.payload(), packet.payload());
    }
    let mut out = Vec::new();
    let parsed: Vec<_> = CompoundPacket::new(data).map_while(Result::ok).collect();
    for packet in &parsed {
        packet.write(&mut out).expect("a parsed RTCP packet writes");
    }
    let again: Vec<_> = CompoundPacket::new(&out)
        .collect::<Result<_, _>>()
        .expect("our own RTCP parses");
    assert_eq!(again.len(), parsed.len());
});
