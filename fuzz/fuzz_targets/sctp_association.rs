//! Feeds arbitrary packets (with the right tag and checksum) to an
//! established SCTP association: no input may panic it.
#![no_main]

use realtimer_test_support::garbage::sctp as garbage;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    #[allow(clippy::disallowed_methods)]
    let start = std::time::Instant::now();
    garbage::drive(data, start);
});
