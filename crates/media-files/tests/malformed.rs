//! Readers meet bytes written by anyone: arbitrary bytes and damaged files
//! give errors or fewer frames, never a panic (the fuzz targets go further).

use proptest::collection::vec;
use proptest::prelude::*;
use realtimer_media_files::annexb::{access_units, AnnexBReader, AnnexBWriter};
use realtimer_media_files::ivf::{Fourcc, IvfHeader, IvfReader, IvfWriter};
use realtimer_media_files::ogg::{OggOpusReader, OggOpusWriter, OpusHead};

/// Reads `data` with every reader, to the end or the first error.
fn read_all(data: &[u8]) {
    if let Ok(reader) = IvfReader::with_max_frame_len(data, 1 << 16) {
        reader.take_while(Result::is_ok).for_each(drop);
    }
    if let Ok(reader) = OggOpusReader::with_max_packet_len(data, 1 << 16) {
        reader.take_while(Result::is_ok).for_each(drop);
    }
    access_units(data).take_while(Result::is_ok).for_each(drop);
    AnnexBReader::with_max_access_unit_len(data, 1 << 16)
        .take_while(Result::is_ok)
        .for_each(drop);
}

/// A small valid file of each kind, back to back.
fn valid_files() -> Vec<Vec<u8>> {
    let mut ivf = IvfWriter::new(Vec::new(), IvfHeader::new(Fourcc::Vp8, 64, 48, 90_000)).unwrap();
    for i in 0..5u8 {
        ivf.write_frame(u64::from(i) * 3_000, &[i; 40]).unwrap();
    }
    let mut ogg = OggOpusWriter::new(Vec::new(), &OpusHead::for_recording(1), 1).unwrap();
    for i in 0..8 {
        ogg.write_packet(&[31 << 3, 1, 2, 3], i * 960 + (i / 4) * 4_800)
            .unwrap();
    }
    let mut h264 = AnnexBWriter::new(Vec::new());
    h264.write_nal_units([
        &[0x67u8, 0x42, 0xC0, 0x1F][..],
        &[0x68, 0xCE],
        &[0x65, 0x88, 0x84],
    ])
    .unwrap();
    h264.write_nal_units([&[0x41u8, 0x9A, 0x02][..]]).unwrap();
    vec![
        ivf.into_inner(),
        ogg.finish().unwrap(),
        h264.finish().unwrap(),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..2_048)) {
        read_all(&data);
    }

    #[test]
    fn damaged_files_never_panic(
        which in 0usize..3,
        damage in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut file = valid_files().swap_remove(which);
        for (at, byte) in damage {
            let i = at.index(file.len());
            file[i] = byte;
        }
        read_all(&file);
        read_all(&file[..cut.index(file.len() + 1)]);
    }
}
