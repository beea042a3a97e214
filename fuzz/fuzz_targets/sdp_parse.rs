//! Parse arbitrary bytes as SDP; whatever parses must serialize and parse back
//! to the same model, and serializing again must give the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_sdp::{Limits, SessionDescription};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(sd) = SessionDescription::parse_bytes(data, &limits) {
        let text = sd.to_string();
        // Serializing may add a `\r` per line, so re-parse with room for it.
        let roomy = Limits::default().with_max_bytes(2 * limits.max_bytes());
        let again = SessionDescription::parse_with_limits(&text, &roomy)
            .unwrap_or_else(|e| panic!("serialized SDP does not parse: {e}\n{text}"));
        assert_eq!(again, sd, "parse(serialize(x)) != x\n{text}");
        assert_eq!(again.to_string(), text);
    }
});
