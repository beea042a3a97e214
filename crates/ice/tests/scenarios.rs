//! ICE on the simulated network: LANs, NATs, loss, consent, restart.
#![allow(clippy::disallowed_methods)] // one real Instant is the origin of virtual time

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use realtimer_ice::{CandidateKind, FailureReason, IceConfig, IceConnectionState, IceEvent};
use realtimer_netsim::NatConfig;

#[test]
fn same_lan_connects_within_a_few_round_trips_on_host_candidates() {
    let mut s = lan(1);
    assert!(s.both_connected(Duration::from_secs(5)));
    let (a, b) = (s.node(s.a), s.node(s.b));
    // Signaling takes 20 ms each way; the checks themselves a few 1 ms RTTs.
    let connected = a.reached(IceConnectionState::Connected).unwrap() - s.start;
    assert!(
        connected < Duration::from_millis(60),
        "connected after {connected:?}"
    );
    for node in [a, b] {
        let selected = node.selected().unwrap();
        assert_eq!(selected.local.kind, CandidateKind::Host);
        assert_eq!(selected.remote.kind, CandidateKind::Host);
    }
    assert_eq!(
        a.selected().unwrap().remote.address,
        "192.168.1.20:6000".parse().unwrap()
    );
    assert_eq!(
        b.selected().unwrap().remote.address,
        "192.168.1.10:5000".parse().unwrap()
    );
    // Nomination and end-of-candidates bring both to completed.
    assert!(s.both_completed(Duration::from_secs(5)));
    assert!(s.node(s.a).selected().unwrap().nominated);
    assert!(s.node(s.b).selected().unwrap().nominated);
}

#[test]
fn endpoint_independent_nats_connect_through_server_reflexive_candidates() {
    let mut s = behind_nats(
        2,
        NatConfig::port_restricted_cone(ip("198.51.100.1")),
        NatConfig::port_restricted_cone(ip("198.51.100.2")),
        IceConfig::default(),
    );
    assert!(s.both_connected(Duration::from_secs(10)));
    for node in [s.node(s.a), s.node(s.b)] {
        let srflx: Vec<_> = node
            .agent
            .local_candidates()
            .filter(|c| c.kind == CandidateKind::ServerReflexive)
            .collect();
        assert_eq!(srflx.len(), 1, "one srflx candidate from the STUN server");
        let selected = node.selected().unwrap();
        assert!(
            matches!(
                selected.local.kind,
                CandidateKind::ServerReflexive | CandidateKind::PeerReflexive
            ),
            "the peer sees our NAT's address: {:?}",
            selected.local.kind
        );
        assert!(selected
            .remote
            .address
            .ip()
            .to_string()
            .starts_with("198.51.100."));
    }
    // Completed once the unreachable host-to-host pairs have failed too.
    assert!(s.both_completed(Duration::from_secs(30)));
}

#[test]
fn symmetric_nats_without_relay_fail_with_a_reason() {
    let agent = IceConfig {
        connect_timeout: Duration::from_secs(20),
        ..IceConfig::default()
    };
    let mut s = behind_nats(
        3,
        NatConfig::symmetric(ip("198.51.100.1")),
        NatConfig::symmetric(ip("198.51.100.2")),
        agent,
    );
    assert!(s.run_until(Duration::from_secs(60), |a, b| {
        a.state() == IceConnectionState::Failed && b.state() == IceConnectionState::Failed
    }));
    for node in [s.node(s.a), s.node(s.b)] {
        let failed_at = node.reached(IceConnectionState::Failed).unwrap() - s.start;
        assert!(
            failed_at <= Duration::from_secs(21),
            "failed after {failed_at:?}"
        );
        assert!(node.selected().is_none());
        let reason = node.agent.failure_reason().unwrap();
        assert!(
            matches!(
                reason,
                FailureReason::AllPairsFailed { .. } | FailureReason::Timeout { .. }
            ),
            "{reason}"
        );
        assert!(!reason.to_string().is_empty());
    }
}

#[test]
fn thirty_percent_loss_still_connects() {
    for seed in 10..30 {
        let mut s = lossy(seed, 0.3);
        assert!(
            s.both_connected(Duration::from_secs(30)),
            "seed {seed} did not connect"
        );
    }
}

fn connected_lan(seed: u64) -> Session {
    let mut s = lan(seed);
    assert!(s.both_completed(Duration::from_secs(5)));
    s
}

#[test]
fn consent_lost_goes_disconnected_then_failed_at_the_configured_times() {
    let mut s = connected_lan(4);
    let cut = s.net.now();
    let hb = s.net.node_host(s.b);
    s.net.set_firewall_drop_udp(hb, true);
    assert!(s.run_until(Duration::from_secs(60), |a, _| a.state()
        == IceConnectionState::Failed));
    let a = s.node(s.a);
    let defaults = IceConfig::default();
    let disconnected = a.reached(IceConnectionState::Disconnected).unwrap() - cut;
    let failed = a.reached(IceConnectionState::Failed).unwrap() - cut;
    // The last consent response came at most one consent interval (≤ 6 s) before the cut.
    assert!(
        disconnected <= defaults.disconnected_timeout,
        "{disconnected:?}"
    );
    assert!(
        disconnected >= defaults.disconnected_timeout - Duration::from_secs(6),
        "{disconnected:?}"
    );
    assert!(failed <= defaults.consent_timeout, "{failed:?}");
    assert!(
        failed >= defaults.consent_timeout - Duration::from_secs(6),
        "{failed:?}"
    );
    assert_eq!(
        a.agent.failure_reason(),
        Some(FailureReason::ConsentExpired)
    );
}

#[test]
fn consent_restored_before_expiry_reconnects() {
    let mut s = connected_lan(5);
    let hb = s.net.node_host(s.b);
    s.net.set_firewall_drop_udp(hb, true);
    assert!(s.run_until(Duration::from_secs(20), |a, _| a.state()
        == IceConnectionState::Disconnected));
    s.net.set_firewall_drop_udp(hb, false);
    let back = s.net.now();
    assert!(s.run_until(Duration::from_secs(5), |a, _| a.is_connected()));
    let a = s.node(s.a);
    let reconnected = a
        .events
        .iter()
        .rev()
        .find_map(|(t, e)| {
            matches!(e, IceEvent::ConnectionState(st) if *st != IceConnectionState::Disconnected)
                .then_some(*t)
        })
        .unwrap();
    // While disconnected, consent checks go out every second.
    assert!(
        reconnected - back <= Duration::from_millis(1100),
        "{:?}",
        reconnected - back
    );
    s.run_for(Duration::from_secs(40));
    assert!(
        s.node(s.a).is_connected(),
        "stays up: {:?}",
        s.node(s.a).state()
    );
}

#[test]
fn ice_restart_mid_flow_loses_no_datagram() {
    let mut s = connected_lan(6);
    let old_pair = s.node(s.a).selected().unwrap().clone();
    let mut sent = 0u32;
    // 2 s of data every 10 ms, with a restart in the middle.
    for tick in 0..200u32 {
        s.node_mut(s.a).send_app(Bytes::from(vec![0x80; 100]));
        sent += 1;
        if tick == 50 {
            let now = s.net.now();
            s.node_mut(s.a).restart(now);
        }
        if tick == 52 {
            // The peer sees new remote credentials and restarts too (JSEP).
            let now = s.net.now();
            s.node_mut(s.b).restart(now);
        }
        s.run_for(Duration::from_millis(10));
    }
    s.run_for(Duration::from_millis(500));
    assert_eq!(
        s.node(s.b).app_received.len() as u32,
        sent,
        "every datagram arrived"
    );
    let a = s.node(s.a);
    assert!(a.is_connected());
    let new_pair = a.selected().unwrap();
    assert_eq!(new_pair.remote.address, old_pair.remote.address);
    // A new selection happened after the restart.
    let selections = a
        .events
        .iter()
        .filter(|(_, e)| matches!(e, IceEvent::SelectedPair(_)))
        .count();
    assert!(selections >= 2, "{selections}");
}

#[test]
fn restart_with_given_credentials_and_selected_pair_rtt() {
    let mut s = connected_lan(7);
    // Consent checks keep measuring the selected pair's RTT (the LAN link
    // of `lan` has a small but nonzero delay).
    s.run_for(Duration::from_secs(12));
    let rtt = s.node(s.a).agent.selected_pair_rtt().expect("an RTT");
    assert!(
        rtt > Duration::ZERO && rtt < Duration::from_secs(1),
        "{rtt:?}"
    );
    let now = s.net.now();
    let chosen = realtimer_ice::IceCredentials {
        ufrag: "Rtc1".into(),
        pwd: "abcdefghijklmnopqrstuvwx".into(),
    };
    let a = s.a;
    let got = s
        .node_mut(a)
        .agent
        .restart_with_credentials(now, chosen.clone())
        .clone();
    assert_eq!(got, chosen);
    assert_eq!(s.node(a).agent.local_credentials(), &chosen);
    // The old pair stays selected until the peer restarts too.
    assert!(s.node(a).selected().is_some());
    s.node_mut(a)
        .outbox
        .push(common::Signal::Credentials(chosen));
    let now = s.net.now();
    s.node_mut(s.b).restart(now);
    assert!(s.run_until(Duration::from_secs(5), |x, y| x.is_connected()
        && y.is_connected()
        && x.agent.selected_pair_rtt().is_some()));
}
