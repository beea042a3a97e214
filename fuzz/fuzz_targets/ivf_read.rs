//! Reads arbitrary bytes as an IVF file; every frame read must write back
//! to a file that reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_media_files::ivf::{IvfReader, IvfWriter};

fuzz_target!(|data: &[u8]| {
    // A small frame limit keeps a lying size field cheap.
    let Ok(mut reader) = IvfReader::with_max_frame_len(data, 1 << 16) else {
        return;
    };
    let header = *reader.header();
    let frames: Vec<_> = reader.by_ref().map_while(Result::ok).collect();
    let mut writer = IvfWriter::new(Vec::new(), header).expect("a Vec takes bytes");
    for frame in &frames {
        writer
            .write_frame(frame.timestamp, &frame.data)
            .expect("a Vec takes bytes");
    }
    let bytes = writer.into_inner();
    let again: Vec<_> = IvfReader::new(&bytes[..])
        .expect("our own header reads")
        .map(|f| f.expect("our own frames read"))
        .collect();
    assert_eq!(again, frames);
});
