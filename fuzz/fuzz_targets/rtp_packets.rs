//! Parses arbitrary bytes as an RTP packet and as an RTCP compound packet;
//! what parses must write back to packets that parse to the same values.
//! RTP payloads also go through the VP8 and H.264 depacketizers, and
//! every extension element through the audio level reader (RFC 6464),
//! whose level must write back to the same byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_rtp::payload::h264::{nal_units, H264Depacketizer};
use realtimer_rtp::payload::vp8::Vp8Depacketizer;
use realtimer_rtp::payload::Depacketizer;
use realtimer_rtp::rtcp::CompoundPacket;
use realtimer_rtp::{AudioLevel, RtpPacket};

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
        for (_, element) in packet.extensions().into_iter().flat_map(|e| e.iter()) {
            if let Some(level) = AudioLevel::parse(element) {
                assert_eq!(level.to_byte(), element[0]);
            }
        }
        // The payload as VP8 and as H.264.
        let mut frame = Vec::new();
        let _ = Vp8Depacketizer.depacketize(packet.payload(), &mut frame);
        let _ = H264Depacketizer.depacketize(packet.payload(), &mut frame);
    }
    let _ = nal_units(data).count();
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
