//! Feeds arbitrary datagrams, some re-signed with the right keys, to a
//! running ICE agent: no input may panic it.
#![no_main]

use realtimer_test_support::garbage::ice as garbage;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Virtual time: any fixed origin will do.
    #[allow(clippy::disallowed_methods)]
    let start = std::time::Instant::now();
    garbage::drive(data, start);
});
