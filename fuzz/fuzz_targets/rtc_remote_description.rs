//! Feeds arbitrary text to `Rtc::set_remote_description` as an offer (and,
//! if taken, answers it with a track of each kind), then as an answer to
//! our audio/video/data offer: the JSEP code reading the peer's media
//! sections (codecs, extmap, ssrc, msid, BUNDLE) may refuse, never panic.
//!
//! Input: the SDP text (lossy UTF-8); half of it is also tried with
//! Chromium's offer's session part in front, to reach the media code.
#![no_main]
#![allow(clippy::disallowed_methods)] // one clock reading: the origin of virtual time

use std::sync::OnceLock;
use std::time::{Duration, Instant, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use realtimer_proto::{Certificate, MediaKind, Rtc, RtcConfig, SessionDescription};

const CHROMIUM_SESSION: &str =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n";

fn fixture() -> &'static (Certificate, Instant) {
    static FIXTURE: OnceLock<(Certificate, Instant)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let wall = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        (
            Certificate::generate(wall).expect("certificate"),
            Instant::now(),
        )
    })
}

fn rtc() -> Rtc {
    let (certificate, now) = fixture();
    Rtc::new(RtcConfig::default().with_seed(7), certificate.clone(), *now)
}

fuzz_target!(|data: &[u8]| {
    let now = fixture().1;
    let text = String::from_utf8_lossy(data);
    for sdp in [text.to_string(), format!("{CHROMIUM_SESSION}{text}")] {
        let mut answerer = rtc();
        if answerer
            .set_remote_description(now, SessionDescription::offer(sdp.clone()))
            .is_ok()
        {
            let _ = answerer.add_track(MediaKind::Audio, "s", "a");
            let _ = answerer.add_track(MediaKind::Video, "s", "v");
            if let Ok(answer) = answerer.create_answer() {
                let _ = answerer.set_local_description(now, answer);
            }
        }
        let mut offerer = rtc();
        let _ = offerer.add_track(MediaKind::Video, "s", "v");
        let _ = offerer.add_track(MediaKind::Audio, "s", "a");
        if let Ok(offer) = offerer.create_offer() {
            let _ = offerer.set_local_description(now, offer);
            let _ = offerer.set_remote_description(now, SessionDescription::answer(sdp));
        }
    }
});
