//! Our answer to the real offer of every stack in the SDP fixtures
//! (`crates/sdp/tests/fixtures/<peer>/offer-*.sdp`: Chromium, Firefox,
//! libwebrtc, Pion, werift, aiortc, GStreamer; data-only and with media):
//! each is accepted as the remote description, and the answer has one
//! section per offered one, with the offer's mids in order, all in one
//! BUNDLE group (RFC 8829 §5.3.1, RFC 8843 §7.3).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::Pair;
use realtimer_netsim::LinkConfig;
use realtimer_proto::SessionDescription;

/// The `a=mid` values of `sdp`'s sections, in order.
fn mids(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=mid:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_captured_offer_of_every_peer_is_answered_section_for_section() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sdp/tests/fixtures");
    let mut answered = Vec::new();
    for peer in [
        "chromium",
        "firefox",
        "libwebrtc",
        "pion",
        "werift",
        "aiortc",
        "gstreamer",
    ] {
        let mut files: Vec<_> = std::fs::read_dir(fixtures.join(peer))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("offer") && n.ends_with(".sdp"))
            })
            .collect();
        files.sort();
        for file in files {
            let offer = std::fs::read_to_string(&file).unwrap();
            let name = format!("{peer}/{}", file.file_name().unwrap().to_string_lossy());
            let mut p = Pair::new(7, LinkConfig::default().delay(Duration::from_millis(5)));
            let b = p.b;
            let answer = p.with(b, |rtc, now| {
                rtc.set_remote_description(now, SessionDescription::offer(offer.clone()))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                rtc.create_answer()
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
            });
            let offered = mids(&offer);
            assert!(!offered.is_empty(), "{name}: no sections");
            assert_eq!(mids(&answer.sdp), offered, "{name}: {}", answer.sdp);
            let bundle = format!("a=group:BUNDLE {}\r\n", offered.join(" "));
            assert!(answer.sdp.contains(&bundle), "{name}: {}", answer.sdp);
            answered.push(name);
        }
    }
    // Two per peer at least (data-only and media), GStreamer's media only.
    assert!(answered.len() >= 20, "{answered:?}");
    for peer in ["firefox", "libwebrtc", "pion", "werift", "aiortc"] {
        let of_peer = answered.iter().filter(|n| n.starts_with(peer)).count();
        assert!(of_peer >= 2, "{peer}: {answered:?}");
    }
}
