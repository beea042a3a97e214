//! The forwarding unit's signaling as a hostile client writes it:
//! - a `/ws` text frame through `sfu::ws::parse`, which tells the unit's
//!   `sfu-...` frames from the rooms' and reads them; a frame read as a
//!   request must encode to JSON that reads back to the same request;
//! - a WHIP/WHEP PATCH body through the trickle fragment's readers
//!   (`a=ice-ufrag`, `a=mid`, `a=candidate`, `a=end-of-candidates`);
//! - an `sfu-...` event frame as a client of realtimer-signaling reads it.
//!
//! Nothing may panic. Input: the first byte picks the reader, the rest is
//! the text (lossy UTF-8, as the WebSocket and HTTP layers hand it on).
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_server::sfu::{whip, ws};
use realtimer_signaling::sfu::{SfuEvent, SfuRequest};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 3 {
        0 => {
            if let Some(Ok(request)) = ws::parse(&text) {
                let json = serde_json::to_string(&request).expect("a request encodes");
                let again: SfuRequest = serde_json::from_str(&json).expect("and reads back");
                assert_eq!(again, request);
            }
        }
        1 => {
            let _ = whip::ice_ufrag(&text);
            for candidate in whip::fragment_candidates(&text).into_iter().flatten() {
                assert!(candidate.candidate.starts_with("candidate:"));
            }
        }
        _ => {
            if let Ok(event) = serde_json::from_str::<SfuEvent>(&text) {
                let json = serde_json::to_string(&event).expect("an event encodes");
                let _: SfuEvent = serde_json::from_str(&json).expect("and reads back");
            }
        }
    }
});
