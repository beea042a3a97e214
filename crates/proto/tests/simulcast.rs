//! Simulcast (RFC 8853) in the `Rtc` core: Chromium's offer of three
//! rids answered; two cores on the simulated network, one sending three
//! layers of one track, the other telling them apart by rid, repairing
//! each layer's loss over its RTX stream, and asking one layer for a
//! keyframe.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use common::Pair;
use realtimer_netsim::LinkConfig;
use realtimer_proto::{
    ArgumentError, Feedback, KeyframeRequest, MediaKind, MediaRef, RtcConfig, RtcError, RtcEvent,
    RtpPacket, SendLayerInit, SessionDescription, StateError,
};

const CHROMIUM_SIMULCAST_OFFER: &str =
    include_str!("../../sdp/tests/fixtures/chromium/offer-simulcast.sdp");

const RIDS: [&str; 3] = ["q", "h", "f"];

fn layers() -> Vec<SendLayerInit> {
    vec![
        SendLayerInit::new("q", 150_000),
        SendLayerInit::new("h", 500_000),
        SendLayerInit::new("f", 1_500_000),
    ]
}

#[test]
fn chromiums_three_rids_are_answered_as_received_layers() {
    let mut p = Pair::new(61, LinkConfig::default());
    let b = p.b;
    let answer = p.with(b, |rtc, now| {
        rtc.set_remote_description(now, SessionDescription::offer(CHROMIUM_SIMULCAST_OFFER))
            .unwrap();
        rtc.create_answer().unwrap().sdp
    });
    for line in [
        "a=recvonly",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "a=rid:q recv",
        "a=rid:h recv",
        "a=rid:f recv",
        "a=simulcast:recv q;h;f",
    ] {
        assert!(answer.contains(&format!("{line}\r\n")), "{line}: {answer}");
    }
    let info = p
        .node(b)
        .events
        .iter()
        .find_map(|(_, e)| match e {
            RtcEvent::Track(_, info) => Some(info.clone()),
            _ => None,
        })
        .expect("track event");
    assert_eq!(info.rids, RIDS);
}

/// a sends one video track as three layers to b (RTX on both); returns
/// the two transceivers once connected.
fn simulcast_call(seed: u64, link: LinkConfig) -> (Pair, MediaRef, MediaRef) {
    let mut config = RtcConfig::default();
    config.send_rtx = true;
    let mut p = Pair::with_config(seed, link, config);
    let a = p.a;
    let sender = p.with(a, |rtc, _| {
        rtc.add_simulcast_track(MediaKind::Video, "s", "cam", &layers())
            .unwrap()
    });
    let offer = p.with(a, |rtc, _| rtc.create_offer().unwrap().sdp);
    assert!(offer.contains("a=simulcast:send q;h;f\r\n"), "{offer}");
    assert!(offer.contains("a=rid:f send\r\n"), "{offer}");
    // No SSRC announced: the receiver learns each layer's from its rid.
    assert!(!offer.contains("a=ssrc:"), "{offer}");
    p.negotiate();
    let receiver = p
        .node(p.b)
        .events
        .iter()
        .find_map(|(_, e)| match e {
            RtcEvent::Track(r, info) => {
                assert_eq!(info.rids, RIDS);
                Some(*r)
            }
            _ => None,
        })
        .expect("track event");
    assert!(p.run_until(Duration::from_secs(10), |x, y| x.connected()
        && y.connected()));
    (p, sender, receiver)
}

/// Packet `seq` of layer `layer`: its payload names both.
fn layer_packet(layer: usize, seq: u16) -> RtpPacket {
    RtpPacket {
        payload_type: 96,
        sequence_number: seq,
        timestamp: 3000 * u32::from(seq),
        marker: true,
        ssrc: 0,
        payload: Bytes::from(format!("{}:{seq}:{}", RIDS[layer], "x".repeat(100 * layer))),
    }
}

/// Writes `count` packets on each layer, 33 ms apart.
fn send_layers(p: &mut Pair, sender: MediaRef, count: u16) {
    let a = p.a;
    for seq in 1..=count {
        p.with(a, |rtc, now| {
            for (layer, rid) in RIDS.iter().enumerate() {
                rtc.write_rtp_layer(now, sender, rid, &layer_packet(layer, seq))
                    .unwrap();
            }
        });
        p.run_until(Duration::from_millis(33), |_, _| false);
    }
}

/// What b received on `receiver`: by the rid its core says the SSRC has,
/// the sequence numbers whose payload named that rid.
fn by_rid(p: &mut Pair, receiver: MediaRef) -> BTreeMap<String, BTreeSet<u16>> {
    let b = p.b;
    let packets: Vec<RtpPacket> = p
        .node(b)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            RtcEvent::Rtp(r, pkt) if *r == receiver => Some(pkt.clone()),
            _ => None,
        })
        .collect();
    let mut out: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    p.with(b, |rtc, _| {
        for pkt in packets {
            let rid = rtc.remote_rid(receiver, pkt.ssrc).expect("a known layer");
            let text = String::from_utf8_lossy(&pkt.payload).into_owned();
            assert!(text.starts_with(&format!("{rid}:")), "{rid}: {text}");
            out.entry(rid.to_owned())
                .or_default()
                .insert(pkt.sequence_number);
        }
    });
    out
}

#[test]
fn three_layers_of_one_track_arrive_told_apart_by_rid() {
    let (mut p, sender, receiver) =
        simulcast_call(62, LinkConfig::default().delay(Duration::from_millis(5)));
    let (a, b) = (p.a, p.b);
    send_layers(&mut p, sender, 30);
    p.run_until(Duration::from_millis(300), |_, _| false);
    let got = by_rid(&mut p, receiver);
    let all: BTreeSet<u16> = (1..=30).collect();
    for rid in RIDS {
        assert_eq!(got.get(rid), Some(&all), "{rid}");
    }
    // Three SSRCs, each a layer's, and each one's RTX SSRC learned later.
    let remote = p.with(b, |rtc, _| rtc.remote_layers(receiver));
    let ssrcs: BTreeSet<u32> = remote.iter().filter_map(|l| l.ssrc).collect();
    assert_eq!(ssrcs.len(), 3, "{remote:?}");
    assert_eq!(
        remote.iter().map(|l| l.rid.as_str()).collect::<Vec<_>>(),
        RIDS
    );
    // Per-layer stats on both ends, by rid, under the same SSRCs.
    let sent = p.with(a, |rtc, now| rtc.stats(now)).outbound_rtp;
    let received = p.with(b, |rtc, now| rtc.stats(now)).inbound_rtp;
    for rid in RIDS {
        let out = sent
            .iter()
            .find(|s| s.rid.as_deref() == Some(rid))
            .expect(rid);
        let inb = received
            .iter()
            .find(|s| s.rid.as_deref() == Some(rid))
            .expect(rid);
        assert_eq!(out.ssrc, inb.ssrc);
        assert_eq!((out.packets_sent, inb.packets_received), (30, 30));
    }
    // A keyframe for one layer: its PLI names that layer's SSRC, and a
    // hears it as a keyframe request for the track.
    p.with(b, |rtc, _| {
        rtc.request_layer_keyframe(receiver, "h").unwrap()
    });
    let pli = RtcEvent::Feedback(sender, Feedback::Keyframe(KeyframeRequest::Pli));
    assert!(p.run_until(Duration::from_secs(1), |x, _| x
        .events
        .iter()
        .any(|(_, e)| *e == pli)));
    // Targets: the track's estimate split lowest first, never more.
    let (targets, total) = p.with(a, |rtc, _| {
        (
            rtc.layer_targets(sender),
            rtc.target_bitrate(sender).unwrap(),
        )
    });
    assert_eq!(targets.len(), 3);
    assert!(targets[0].bitrate.is_some(), "{targets:?}");
    let given: u64 = targets.iter().filter_map(|t| t.bitrate).sum();
    assert!(given <= total, "{targets:?} > {total}");
    // A rid the track does not have is refused.
    let unknown = p.with(a, |rtc, now| {
        rtc.write_rtp_layer(now, sender, "x", &layer_packet(0, 31))
    });
    assert!(
        matches!(
            unknown,
            Err(RtcError::TypeError(ArgumentError::UnknownRid { .. }))
        ),
        "{unknown:?}"
    );
}

#[test]
fn each_layers_loss_is_repaired_on_its_own_rtx_stream() {
    let lan = LinkConfig::default().delay(Duration::from_millis(10));
    let (mut p, sender, receiver) = simulcast_call(63, lan.clone());
    let a = p.a;
    let host = p.net.node_host(a);
    p.net
        .set_uplink(host, lan.loss(realtimer_netsim::Loss::Independent(0.05)));
    send_layers(&mut p, sender, 100);
    p.run_until(Duration::from_secs(2), |_, _| false);
    let got = by_rid(&mut p, receiver);
    let all: BTreeSet<u16> = (1..=100).collect();
    for rid in RIDS {
        assert_eq!(got.get(rid), Some(&all), "{rid}");
    }
    let sent = p.with(a, |rtc, now| rtc.stats(now)).outbound_rtp;
    let repaired: Vec<u64> = sent.iter().map(|s| s.retransmitted_packets_sent).collect();
    assert!(repaired.iter().all(|r| *r > 0), "{repaired:?}");
    // The RTX SSRCs became known from the repaired rid.
    let remote = p.with(p.b, |rtc, _| rtc.remote_layers(receiver));
    assert!(remote.iter().all(|l| l.rtx_ssrc.is_some()), "{remote:?}");
}

#[test]
fn a_peer_without_simulcast_gets_the_first_layer_as_a_plain_stream() {
    let mut p = Pair::new(64, LinkConfig::default().delay(Duration::from_millis(5)));
    let (a, b) = (p.a, p.b);
    let sender = p.with(a, |rtc, _| {
        rtc.add_simulcast_track(MediaKind::Video, "s", "cam", &layers())
            .unwrap()
    });
    let offer = p.with(a, |rtc, _| rtc.create_offer().unwrap());
    p.with(a, |rtc, now| {
        rtc.set_local_description(now, offer.clone()).unwrap()
    });
    // b's answer as a peer that knows no simulcast writes it: no rid
    // extensions, no a=rid, no a=simulcast.
    let answer = p.with(b, |rtc, now| {
        rtc.set_remote_description(now, offer).unwrap();
        let answer = rtc.create_answer().unwrap();
        rtc.set_local_description(now, answer.clone()).unwrap();
        answer.sdp
    });
    let plain: String = answer
        .split_inclusive("\r\n")
        .filter(|l| {
            !l.starts_with("a=rid:")
                && !l.starts_with("a=simulcast:")
                && !l.contains("rtp-stream-id")
        })
        .collect();
    p.with(a, |rtc, now| {
        rtc.set_remote_description(now, SessionDescription::answer(plain))
            .unwrap()
    });
    assert!(p.run_until(Duration::from_secs(10), |x, y| x.connected()
        && y.connected()));
    let refused = p.with(a, |rtc, now| {
        rtc.write_rtp_layer(now, sender, "h", &layer_packet(1, 1))
    });
    assert!(
        matches!(
            refused,
            Err(RtcError::InvalidState(StateError::LayerNotReceived { .. }))
        ),
        "{refused:?}"
    );
    p.with(a, |rtc, now| {
        rtc.write_rtp_layer(now, sender, "q", &layer_packet(0, 1))
            .unwrap()
    });
    assert!(p.run_until(Duration::from_secs(1), |_, y| y
        .events
        .iter()
        .any(|(_, e)| matches!(e, RtcEvent::Rtp(..)))));
    let targets = p.with(a, |rtc, _| rtc.layer_targets(sender));
    assert!(targets[0].bitrate.is_some());
    assert!(
        targets[1..].iter().all(|t| t.bitrate.is_none()),
        "{targets:?}"
    );
}
