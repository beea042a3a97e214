//! ICE restarts (RFC 8445 §9, JSEP §5.2.1) on the simulated network: data
//! keeps flowing through a restart started by either side, and
//! `negotiationneeded` follows W3C webrtc-pc §4.7.3.

mod common;

use std::time::Duration;

use common::Pair;
use realtimer_netsim::{LinkConfig, NodeId};
use realtimer_proto::{
    ChannelData, ChannelRef, DataChannelInit, IceConnectionState, PeerConnectionState, RtcEvent,
    SessionDescription, SignalingState,
};

fn lan() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(5))
}

fn ufrag(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `offerer` offers, the other answers.
fn negotiate_from(p: &mut Pair, offerer: NodeId) {
    let answerer = if offerer == p.a { p.b } else { p.a };
    let offer = p.with(offerer, |rtc, _| rtc.create_offer().unwrap());
    p.with(offerer, |rtc, now| {
        rtc.set_local_description(now, offer.clone()).unwrap()
    });
    p.with(answerer, |rtc, now| {
        rtc.set_remote_description(now, offer).unwrap()
    });
    let answer = p.with(answerer, |rtc, _| rtc.create_answer().unwrap());
    p.with(answerer, |rtc, now| {
        rtc.set_local_description(now, answer.clone()).unwrap()
    });
    p.with(offerer, |rtc, now| {
        rtc.set_remote_description(now, SessionDescription::answer(answer.sdp))
            .unwrap()
    });
}

fn negotiation_needed_count(p: &Pair, id: NodeId) -> usize {
    p.node(id)
        .events
        .iter()
        .filter(|(_, e)| *e == RtcEvent::NegotiationNeeded)
        .count()
}

fn connected_pair(seed: u64) -> (Pair, ChannelRef, ChannelRef) {
    let mut p = Pair::new(seed, lan());
    let (ch, remote) = p.open_channel("flow", &DataChannelInit::default());
    (p, ch, remote)
}

/// Sends a numbered message every 10 ms for 2 s; `restart` runs at tick 50.
fn flow_through(
    p: &mut Pair,
    ch: ChannelRef,
    remote: ChannelRef,
    mut restart: impl FnMut(&mut Pair),
) {
    let (a, b) = (p.a, p.b);
    for tick in 0..200u32 {
        p.with(a, |rtc, now| {
            rtc.send(now, ch, ChannelData::Text(format!("m{tick}")))
                .unwrap()
        });
        if tick == 50 {
            restart(p);
        }
        let _ = p.run_until(Duration::from_millis(10), |_, _| false);
    }
    assert!(
        p.run_until(Duration::from_secs(5), |_, y| y.messages(remote).len()
            == 200)
    );
    let got = p.node(b).messages(remote);
    let want: Vec<_> = (0..200)
        .map(|i| ChannelData::Text(format!("m{i}")))
        .collect();
    assert_eq!(got, want, "every message, in order");
    for id in [a, b] {
        let node = p.node(id);
        assert!(node.connected(), "still connected");
        // Checks of the new generation selected a pair (and measured it).
        assert!(node.rtc.ice_rtt().is_some(), "a pair of the new generation");
        // The old pair carried data throughout: never disconnected or failed.
        assert!(!node.events.iter().any(|(_, e)| matches!(
            e,
            RtcEvent::IceConnectionState(
                IceConnectionState::Disconnected | IceConnectionState::Failed
            ) | RtcEvent::ConnectionState(
                PeerConnectionState::Disconnected | PeerConnectionState::Failed
            )
        )));
    }
}

#[test]
fn ice_restart_by_the_offerer_keeps_data_flowing() {
    let (mut p, ch, remote) = connected_pair(11);
    let (a, b) = (p.a, p.b);
    let a_before = ufrag(&p.node(a).rtc.local_description().unwrap().sdp);
    let b_before = ufrag(&p.node(b).rtc.local_description().unwrap().sdp);
    let needed_before = negotiation_needed_count(&p, a);
    flow_through(&mut p, ch, remote, |p| {
        p.with(a, |rtc, _| rtc.restart_ice().unwrap());
        assert_eq!(
            negotiation_needed_count(p, a),
            needed_before + 1,
            "negotiationneeded fires in stable"
        );
        negotiate_from(p, a);
    });
    let a_after = ufrag(&p.node(a).rtc.local_description().unwrap().sdp);
    let b_after = ufrag(&p.node(b).rtc.local_description().unwrap().sdp);
    assert_ne!(a_before, a_after, "the offer carried new credentials");
    assert_ne!(b_before, b_after, "the answer to a restart has new ones");
    assert!(p.node(a).rtc.selected_pair().is_some());
    // The request is done: stable again, no further negotiationneeded.
    assert_eq!(negotiation_needed_count(&p, a), needed_before + 1);
    // Candidates of the new generation were trickled with the new ufrag.
    let new_gen = p.node(a).events.iter().any(|(_, e)| {
        matches!(e, RtcEvent::IceCandidate(Some(c)) if c.username_fragment.as_deref() == Some(a_after.as_str()))
    });
    assert!(new_gen);
}

#[test]
fn ice_restart_by_the_answerer_keeps_data_flowing() {
    let (mut p, ch, remote) = connected_pair(12);
    let (a, b) = (p.a, p.b);
    let a_before = ufrag(&p.node(a).rtc.local_description().unwrap().sdp);
    flow_through(&mut p, ch, remote, |p| {
        p.with(b, |rtc, _| rtc.restart_ice().unwrap());
        // b offers this time; a sees new remote credentials and restarts.
        negotiate_from(p, b);
    });
    let a_after = ufrag(&p.node(a).rtc.local_description().unwrap().sdp);
    assert_ne!(a_before, a_after);
}

#[test]
fn negotiation_needed_waits_for_stable_and_rollback_asks_again() {
    let (mut p, _ch, _remote) = connected_pair(13);
    let (a, b) = (p.a, p.b);
    // b has an offer out: a restart request on b waits for stable.
    let offer = p.with(b, |rtc, _| rtc.create_offer().unwrap());
    p.with(b, |rtc, now| rtc.set_local_description(now, offer).unwrap());
    let before = negotiation_needed_count(&p, b);
    p.with(b, |rtc, _| rtc.restart_ice().unwrap());
    assert_eq!(
        negotiation_needed_count(&p, b),
        before,
        "not in have-local-offer"
    );
    p.with(b, |rtc, now| {
        rtc.set_local_description(now, SessionDescription::rollback())
            .unwrap()
    });
    assert_eq!(p.node(b).rtc.signaling_state(), SignalingState::Stable);
    assert_eq!(
        negotiation_needed_count(&p, b),
        before + 1,
        "fires once stable"
    );
    // An offer with the restart, rolled back: the request stands and fires
    // again; the connection keeps working on the old credentials.
    let restart_offer = p.with(b, |rtc, _| rtc.create_offer().unwrap());
    let old = ufrag(&p.node(b).rtc.local_description().unwrap().sdp);
    assert_ne!(ufrag(&restart_offer.sdp), old);
    p.with(b, |rtc, now| {
        rtc.set_local_description(now, restart_offer).unwrap()
    });
    p.with(b, |rtc, now| {
        rtc.set_local_description(now, SessionDescription::rollback())
            .unwrap()
    });
    assert_eq!(negotiation_needed_count(&p, b), before + 2);
    // Completing a restart clears it.
    negotiate_from(&mut p, b);
    assert!(p.run_until(Duration::from_secs(5), |x, y| x.connected()
        && y.connected()));
    assert_eq!(negotiation_needed_count(&p, b), before + 2);
    let _ = a;
}
