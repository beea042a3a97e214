//! Splits arbitrary bytes into H.264 access units, in memory and streamed;
//! both must agree, and the units must cover the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_media_files::annexb::{access_units, AnnexBReader};

fuzz_target!(|data: &[u8]| {
    let units: Result<Vec<&[u8]>, _> = access_units(data).collect();
    let streamed: Result<Vec<Vec<u8>>, _> =
        AnnexBReader::with_max_access_unit_len(data, usize::MAX).collect();
    match (units, streamed) {
        (Ok(units), Ok(streamed)) => {
            assert_eq!(units, streamed);
            let covered: usize = units.iter().map(|u| u.len()).sum();
            assert!(covered <= data.len());
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("slice reader {a:?}, streaming reader {b:?}"),
    }
});
