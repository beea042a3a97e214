//! Parse arbitrary text as a trickled ICE candidate; whatever parses must
//! display and parse back to the same candidate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_sdp::Candidate;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = s.parse::<Candidate>() {
        let text = c.to_string();
        let again: Candidate = text
            .parse()
            .unwrap_or_else(|e| panic!("displayed candidate does not parse: {e}\n{text}"));
        assert_eq!(again, c, "{text}");
        let attr = format!("a={}", c.to_attribute_string());
        assert_eq!(attr.parse::<Candidate>().ok(), Some(c));
    }
});
