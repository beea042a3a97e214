//! `RtcConfig::transport_cc` off: neither offered nor accepted, and
//! packets leave as written (no pacer), as with a peer without it.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Pair;
use realtimer_netsim::LinkConfig;
use realtimer_proto::{MediaKind, RtcConfig, RtcEvent, RtpPacket, SessionDescription};

const TRANSPORT_CC: &str = "transport-wide-cc-extensions-01";

#[test]
fn without_transport_cc_nothing_is_offered_answered_or_paced() {
    let mut config = RtcConfig::default();
    config.transport_cc = false;
    let mut p = Pair::with_config(71, LinkConfig::default(), config.clone());
    let b = p.b;
    let answer = p.with(b, |rtc, now| {
        let offer = include_str!("../../sdp/tests/fixtures/chromium/offer-simulcast.sdp");
        rtc.set_remote_description(now, SessionDescription::offer(offer))
            .unwrap();
        rtc.create_answer().unwrap().sdp
    });
    assert!(!answer.contains(TRANSPORT_CC), "{answer}");
    let mut p = Pair::with_config(72, LinkConfig::default(), config);
    let a = p.a;
    let sender = p.with(a, |rtc, _| {
        rtc.add_track(MediaKind::Video, "s", "cam").unwrap()
    });
    let offer = p.with(a, |rtc, _| rtc.create_offer().unwrap().sdp);
    assert!(!offer.contains(TRANSPORT_CC), "{offer}");
    p.negotiate();
    assert!(p.run_until(Duration::from_secs(10), |x, y| x.connected()
        && y.connected()));
    // 100 packets of 1,000 bytes at once: unpaced, all arrive within one
    // link delay (paced at the 300 kbit/s start they would take ~1 s).
    p.with(a, |rtc, now| {
        for seq in 0..100u16 {
            let packet = RtpPacket {
                payload_type: 96,
                sequence_number: seq,
                timestamp: 0,
                marker: false,
                ssrc: 0,
                payload: Bytes::from(vec![1u8; 1000]),
            };
            rtc.write_rtp(now, sender, &packet).unwrap();
        }
    });
    let rtp = |n: &common::RtcNode| {
        n.events
            .iter()
            .filter(|(_, e)| matches!(e, RtcEvent::Rtp(..)))
            .count()
    };
    assert!(p.run_until(Duration::from_millis(50), |_, y| rtp(y) == 100));
    assert_eq!(p.with(a, |rtc, _| rtc.available_outgoing_bitrate()), None);
}

#[test]
fn each_estimate_comes_with_a_target_for_every_sending_track() {
    let mut p = Pair::new(73, LinkConfig::default().delay(Duration::from_millis(10)));
    let a = p.a;
    let audio = p.with(a, |rtc, _| {
        rtc.add_track(MediaKind::Audio, "s", "mic").unwrap()
    });
    let video = p.with(a, |rtc, _| {
        rtc.add_track(MediaKind::Video, "s", "cam").unwrap()
    });
    p.negotiate();
    assert!(p.run_until(Duration::from_secs(10), |x, y| x.connected()
        && y.connected()));
    for seq in 0..60u16 {
        p.with(a, |rtc, now| {
            let packet = |pt: u8, len: usize| RtpPacket {
                payload_type: pt,
                sequence_number: seq,
                timestamp: u32::from(seq) * 3000,
                marker: true,
                ssrc: 0,
                payload: Bytes::from(vec![1u8; len]),
            };
            rtc.write_rtp(now, audio, &packet(111, 100)).unwrap();
            rtc.write_rtp(now, video, &packet(96, 1000)).unwrap();
        });
        p.run_until(Duration::from_millis(33), |_, _| false);
    }
    let events: Vec<&RtcEvent> = p.node(a).events.iter().map(|(_, e)| e).collect();
    let estimates: Vec<usize> = (0..events.len())
        .filter(|&i| matches!(events[i], RtcEvent::BandwidthEstimate(_)))
        .collect();
    assert!(!estimates.is_empty(), "no estimate");
    for i in estimates {
        let RtcEvent::BandwidthEstimate(total) = events[i] else {
            unreachable!()
        };
        let targets: Vec<_> = events[i + 1..]
            .iter()
            .map_while(|e| match e {
                RtcEvent::TargetBitrate(m, bps) => Some((*m, *bps)),
                _ => None,
            })
            .collect();
        let medias: Vec<_> = targets.iter().map(|(m, _)| *m).collect();
        assert_eq!(medias, [audio, video], "after {total}: {targets:?}");
        assert!(targets.iter().map(|(_, b)| b).sum::<u64>() <= *total);
        // Audio first, at most 64 kbit/s; video the rest.
        assert!(targets[0].1 <= 64_000, "{targets:?}");
    }
}
