//! Trickle orderings, roles, IPv6, mDNS and ICE-lite on the simulated network.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::*;
use realtimer_ice::{CandidateKind, IceConfig, IceConnectionState, IceEvent};
use realtimer_netsim::{LinkConfig, Network};

fn two_hosts(
    seed: u64,
    a_ip: &str,
    b_ip: &str,
    a: IceConfig,
    a_controlling: bool,
    b: IceConfig,
    b_controlling: bool,
) -> Session {
    let mut net = Network::new(seed, origin());
    let ha = net.add_host(&[ip(a_ip)], None);
    let hb = net.add_host(&[ip(b_ip)], None);
    for h in [ha, hb] {
        net.set_uplink(h, LinkConfig::default().delay(Duration::from_millis(5)));
    }
    pair(net, seed, (ha, a, a_controlling), (hb, b, b_controlling))
}

/// a (192.0.2.1) controlling, b (192.0.2.2) controlled, default configs.
fn controlling_and_controlled(seed: u64) -> Session {
    two_hosts(
        seed,
        "192.0.2.1",
        "192.0.2.2",
        config(0),
        true,
        config(0),
        false,
    )
}

#[test]
fn role_conflict_is_resolved_by_tie_breakers() {
    for seed in 0..10 {
        let mut s = two_hosts(
            seed,
            "192.0.2.1",
            "192.0.2.2",
            config(0),
            true,
            config(0),
            true,
        );
        assert!(s.both_completed(Duration::from_secs(10)), "seed {seed}");
        let (a, b) = (s.node(s.a), s.node(s.b));
        assert_ne!(
            a.agent.is_controlling(),
            b.agent.is_controlling(),
            "exactly one controls"
        );
        let switched = [a, b]
            .iter()
            .filter(|n| {
                n.events
                    .iter()
                    .any(|(_, e)| matches!(e, IceEvent::RoleChanged { .. }))
            })
            .count();
        assert_eq!(switched, 1);
        assert_eq!(
            a.selected().unwrap().remote.address,
            "192.0.2.2:6000".parse().unwrap()
        );
    }
    // Both controlled resolves the same way.
    let mut s = two_hosts(
        3,
        "192.0.2.1",
        "192.0.2.2",
        config(0),
        false,
        config(0),
        false,
    );
    assert!(s.both_completed(Duration::from_secs(10)));
    assert_ne!(
        s.node(s.a).agent.is_controlling(),
        s.node(s.b).agent.is_controlling()
    );
}

#[test]
fn candidates_before_the_remote_credentials() {
    let mut s = controlling_and_controlled(7);
    // Hold back a's credentials: b gets a's candidates first.
    let (a_id, b_id) = (s.a, s.b);
    let held = s.node_mut(a_id).outbox.remove(0);
    assert!(matches!(held, Signal::Credentials(_)));
    s.run_for(Duration::from_millis(300));
    assert_eq!(
        s.node(b_id).agent.remote_candidates().count(),
        1,
        "kept while waiting"
    );
    assert!(!s.node(b_id).is_connected());
    let now = s.net.now();
    s.node_mut(b_id).deliver(now, held);
    assert!(s.both_completed(Duration::from_secs(10)));
}

#[test]
fn peer_reflexive_when_candidates_never_arrive() {
    let mut s = controlling_and_controlled(8);
    let a_id = s.a;
    // Only a's credentials and end-of-candidates reach b; b learns a from a's checks.
    s.node_mut(a_id)
        .outbox
        .retain(|sig| !matches!(sig, Signal::Candidate(_)));
    assert!(s.both_connected(Duration::from_secs(5)));
    let b = s.node(s.b);
    let remote = b.selected().unwrap().remote.clone();
    assert_eq!(remote.kind, CandidateKind::PeerReflexive);
    assert_eq!(remote.address, "192.0.2.1:5000".parse().unwrap());
}

#[test]
fn a_peer_reflexive_candidate_signalled_later_becomes_what_was_signalled() {
    let mut s = controlling_and_controlled(8);
    let (a_id, b_id) = (s.a, s.b);
    // a's host candidate reaches b only after a's checks taught b the address.
    let held: Vec<Signal> = {
        let outbox = &mut s.node_mut(a_id).outbox;
        let (held, rest) = std::mem::take(outbox)
            .into_iter()
            .partition(|sig| matches!(sig, Signal::Candidate(_)));
        *outbox = rest;
        held
    };
    assert!(!held.is_empty(), "a gathered a host candidate");
    assert!(s.both_connected(Duration::from_secs(5)));
    let kind = |s: &Session| s.node(b_id).selected().unwrap().remote.kind;
    assert_eq!(kind(&s), CandidateKind::PeerReflexive);
    let now = s.net.now();
    for signal in held {
        s.node_mut(b_id).deliver(now, signal);
    }
    s.run_for(Duration::from_millis(200));
    assert_eq!(kind(&s), CandidateKind::Host, "the selected pair's remote");
    let remote: Vec<_> = s.node(b_id).agent.remote_candidates().collect();
    assert_eq!(remote.len(), 1, "one candidate for one address: {remote:?}");
    assert_eq!(remote[0].kind, CandidateKind::Host);
}

#[test]
fn without_end_of_candidates_the_state_stays_connected() {
    let mut s = controlling_and_controlled(9);
    let b_id = s.b;
    s.node_mut(b_id)
        .outbox
        .retain(|sig| !matches!(sig, Signal::EndOfCandidates));
    assert!(s.both_connected(Duration::from_secs(5)));
    s.run_for(Duration::from_secs(2));
    // a never hears end-of-candidates from b: more candidates may come.
    assert_eq!(s.node(s.a).state(), IceConnectionState::Connected);
    assert_eq!(s.node(s.b).state(), IceConnectionState::Completed);
}

#[test]
fn ipv6_only_hosts() {
    let mut s = two_hosts(
        10,
        "2001:db8::1",
        "2001:db8::2",
        config(0),
        true,
        config(0),
        false,
    );
    assert!(s.both_completed(Duration::from_secs(10)));
    let selected = s.node(s.a).selected().unwrap();
    assert_eq!(
        selected.remote.address,
        "[2001:db8::2]:6000".parse().unwrap()
    );
}

#[test]
fn mdns_host_candidates_hide_addresses_and_resolve() {
    let mdns = IceConfig {
        mdns_host_candidates: true,
        ..IceConfig::default()
    };
    let mut s = two_hosts(
        11,
        "192.0.2.1",
        "192.0.2.2",
        mdns.clone(),
        true,
        mdns,
        false,
    );
    // What a signals carries no IP address, only a .local name.
    let signalled: Vec<String> = s
        .node(s.a)
        .outbox
        .iter()
        .filter_map(|sig| match sig {
            Signal::Candidate(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(signalled.len(), 1);
    assert!(
        signalled[0].contains(".local 5000 typ host"),
        "{}",
        signalled[0]
    );
    assert!(!signalled[0].contains("192.0.2.1"));
    assert!(s.both_completed(Duration::from_secs(10)));
    assert_eq!(
        s.node(s.b).selected().unwrap().remote.address,
        "192.0.2.1:5000".parse().unwrap()
    );
    let asked = s
        .node(s.b)
        .events
        .iter()
        .any(|(_, e)| matches!(e, IceEvent::ResolveMdnsName { .. }));
    assert!(asked);
}

#[test]
fn full_agent_with_an_ice_lite_peer() {
    let lite = IceConfig {
        lite: true,
        ..IceConfig::default()
    };
    // The lite side is controlled even if asked to control.
    let mut s = two_hosts(12, "192.0.2.1", "192.0.2.2", config(0), true, lite, true);
    assert!(!s.node(s.b).agent.is_controlling());
    assert!(s.both_connected(Duration::from_secs(5)));
    let b = s.node(s.b);
    assert!(
        b.selected().unwrap().nominated,
        "lite selects on nomination"
    );
    assert_eq!(
        b.selected().unwrap().remote.address,
        "192.0.2.1:5000".parse().unwrap()
    );
    // The lite agent only answered: no request of its own went out.
    assert!(b
        .agent
        .local_candidates()
        .all(|c| c.kind == CandidateKind::Host));
}
