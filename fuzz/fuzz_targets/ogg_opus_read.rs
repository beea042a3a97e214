//! Reads arbitrary bytes as Ogg pages and as an Ogg Opus file; the packets
//! of a file that reads must write back to pages that read the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_media_files::ogg::{OggOpusReader, OggPacketReader, OggPageReader, OggStreamWriter};

fuzz_target!(|data: &[u8]| {
    let mut pages = OggPageReader::new(data);
    while let Ok(Some(_)) = pages.next_page() {}

    let mut packets = OggPacketReader::new(data, 1 << 16);
    let mut read = Vec::new();
    while let Ok(Some(packet)) = packets.next_packet() {
        read.push(packet.data);
    }
    let mut writer = OggStreamWriter::new(Vec::new(), 1);
    for packet in &read {
        writer.write_packet(packet, 0).expect("a Vec takes bytes");
    }
    writer.flush_page(true).expect("a Vec takes bytes");
    let bytes = writer.into_inner();
    let mut again = OggPacketReader::new(&bytes[..], 1 << 16);
    for packet in &read {
        let got = again
            .next_packet()
            .expect("our own pages read")
            .expect("as many packets");
        assert_eq!(&got.data, packet);
    }

    if let Ok(mut opus) = OggOpusReader::with_max_packet_len(data, 1 << 16) {
        while let Ok(Some(_)) = opus.next_packet() {}
    }
});
