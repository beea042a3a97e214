//! ICE through a TURN relay (RFC 8656) on the simulated network: our TURN
//! server core on a public host, agents behind symmetric NATs, and the
//! "relay" transport policy.
#![allow(clippy::disallowed_methods)] // one real Instant is the origin of virtual time

mod common;

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use realtimer_ice::{CandidateKind, IceConfig, IceEvent, TurnServer};
use realtimer_netsim::{Datagram, LinkConfig, NatConfig, Network, Node};
use realtimer_turn::{Credentials, Event, Server, ServerConfig};

const TURN_IP: &str = "203.0.113.1";
const TURN_PORT: u16 = 3478;
const UNIX_START: u64 = 1_700_000_000;

/// `realtimer_turn::Server` on one netsim host: the listener and every
/// relayed address are ports of that host, so datagrams are dispatched by
/// destination port. A relay sending to another relay of the same server
/// is looped back here (netsim does not route a host to itself).
struct TurnNode {
    server: Server,
    listener: SocketAddr,
    relays: HashSet<SocketAddr>,
    out: VecDeque<Datagram>,
    /// ChannelData messages clients sent (RFC 8656 §12.4).
    channel_data_received: u64,
}

impl TurnNode {
    fn new(now: Instant, allow: &[&str]) -> Self {
        Self::with_nonce_lifetime(now, allow, Duration::from_secs(600))
    }

    fn with_nonce_lifetime(now: Instant, allow: &[&str], nonce_lifetime: Duration) -> Self {
        let mut credentials = Credentials::new("realtimer.test");
        credentials.add_user("alice", "wonderland").unwrap();
        let mut config = ServerConfig::new(credentials, [7; 16]);
        config.relay_ipv4 = Some(ip(TURN_IP));
        config.port_range = 50000..=50999;
        // The simulated "public" addresses are documentation and private
        // ranges the default policy refuses.
        config.limits.nonce_lifetime = nonce_lifetime;
        config.peer_policy.allow = allow.iter().map(|n| n.parse().unwrap()).collect();
        TurnNode {
            server: Server::new(config, now, UNIX_START).unwrap(),
            listener: SocketAddr::new(ip(TURN_IP), TURN_PORT),
            relays: HashSet::new(),
            out: VecDeque::new(),
            channel_data_received: 0,
        }
    }

    /// Binds the relays the core asks for and collects its datagrams.
    fn drive(&mut self, now: Instant) {
        loop {
            while let Some(event) = self.server.poll_event() {
                match event {
                    Event::OpenRelay { relay } => {
                        self.relays.insert(relay);
                        self.server.relay_opened(now, relay, true);
                    }
                    Event::CloseRelay { relay } => {
                        self.relays.remove(&relay);
                    }
                    _ => {}
                }
            }
            let mut looped = false;
            while let Some(t) = self.server.poll_transmit() {
                if self.relays.contains(&t.destination) {
                    self.server
                        .handle_peer(now, t.destination, t.source, &t.contents);
                    looped = true;
                } else {
                    self.out.push_back(Datagram {
                        source: t.source,
                        destination: t.destination,
                        contents: Bytes::from(t.contents),
                    });
                }
            }
            if !looped {
                break;
            }
        }
    }
}

impl Node for TurnNode {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        if datagram.destination == self.listener {
            if datagram
                .contents
                .first()
                .is_some_and(|b| (0x40..=0x4F).contains(b))
            {
                self.channel_data_received += 1;
            }
            self.server
                .handle_client(now, self.listener, datagram.source, &datagram.contents);
        } else if self.relays.contains(&datagram.destination) {
            self.server.handle_peer(
                now,
                datagram.destination,
                datagram.source,
                &datagram.contents,
            );
        }
        self.drive(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.server.handle_timeout(now);
        self.drive(now);
    }
    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        self.out.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.server.poll_timeout()
    }
}

fn turn_config(seed: u64, relay_only: bool) -> IceConfig {
    IceConfig {
        seed,
        stun_servers: vec![SocketAddr::new(ip(TURN_IP), TURN_PORT)],
        turn_servers: vec![TurnServer::udp(
            SocketAddr::new(ip(TURN_IP), TURN_PORT),
            "alice",
            "wonderland",
        )],
        relay_only,
        ..IceConfig::default()
    }
}

/// Each agent behind its own symmetric NAT, the TURN server on the internet.
/// The TURN node's id is returned too.
fn symmetric_nats_with_turn(seed: u64) -> (Session, realtimer_netsim::NodeId) {
    let mut net = Network::new(seed, origin());
    let turn_host = net.add_host(&[ip(TURN_IP)], None);
    let now = net.now();
    // Nonces expire every 2 minutes: refreshes meet 438 and retry.
    let turn = net.attach(
        turn_host,
        TurnNode::with_nonce_lifetime(
            now,
            &["198.51.100.0/24", "203.0.113.0/24"],
            Duration::from_secs(120),
        ),
    );
    let (ha, hb) = hosts_behind_nats(
        &mut net,
        NatConfig::symmetric(ip("198.51.100.1")),
        NatConfig::symmetric(ip("198.51.100.2")),
    );
    let a = add_agent(&mut net, ha, 5000, turn_config(seed * 2 + 1, false), true);
    let b = add_agent(&mut net, hb, 6000, turn_config(seed * 2 + 2, false), false);
    (Session::new(net, a, b), turn)
}

fn relayed_candidates(node: &IceNode) -> Vec<realtimer_ice::Candidate> {
    node.agent
        .local_candidates()
        .filter(|c| c.kind == CandidateKind::Relayed)
        .cloned()
        .collect()
}

/// Sends one datagram each way with `send_data` and waits for both.
fn exchange(s: &mut Session) {
    let (a, b) = (s.a, s.b);
    s.node_mut(a)
        .send_app(Bytes::from_static(b"from a over the relay"));
    s.node_mut(b)
        .send_app(Bytes::from_static(b"from b over the relay"));
    let got = s.run_until(Duration::from_secs(2), |a, b| {
        a.app_received
            .iter()
            .any(|d| &d.contents[..] == b"from b over the relay")
            && b.app_received
                .iter()
                .any(|d| &d.contents[..] == b"from a over the relay")
    });
    assert!(got, "application data crossed the relay both ways");
}

#[test]
fn symmetric_nats_connect_through_turn_relayed_candidates() {
    let (mut s, turn) = symmetric_nats_with_turn(7);
    assert!(s.both_connected(Duration::from_secs(10)));
    for node in [s.node(s.a), s.node(s.b)] {
        let relayed = relayed_candidates(node);
        assert_eq!(relayed.len(), 1, "one allocation per base and server");
        let relay = &relayed[0];
        assert_eq!(relay.address.ip(), ip(TURN_IP));
        // RFC 8445 §5.1.2.1 with type preference 0.
        assert_eq!(relay.priority >> 24, 0);
        assert!(relay
            .related_address
            .is_some_and(|r| r.ip().to_string().starts_with("198.51.100.")));
        // Signalled to the peer, before end-of-candidates.
        let signalled = node.events.iter().position(
            |(_, e)| matches!(e, IceEvent::LocalCandidate(c) if c.kind == CandidateKind::Relayed),
        );
        let end = node
            .events
            .iter()
            .position(|(_, e)| matches!(e, IceEvent::EndOfCandidates));
        assert!(signalled.is_some() && signalled < end);
        let selected = node.selected().unwrap();
        assert!(
            selected.local.kind == CandidateKind::Relayed
                || selected.remote.kind == CandidateKind::Relayed,
            "a symmetric NAT each side leaves only relayed paths: {selected:?}"
        );
    }
    exchange(&mut s);
    // Still up after the allocation's refresh, the permissions' refresh
    // (4 min) and a channel refresh.
    s.run_for(Duration::from_secs(11 * 60));
    assert!(s.node(s.a).is_connected() && s.node(s.b).is_connected());
    s.node_mut(s.a).app_received.clear();
    s.node_mut(s.b).app_received.clear();
    let before = s.net.node::<TurnNode>(turn).channel_data_received;
    exchange(&mut s);
    // By now the selected relayed pair has a channel: data and consent
    // checks go as ChannelData.
    assert!(s.net.node::<TurnNode>(turn).channel_data_received > before);
    let metrics = s.net.node::<TurnNode>(turn).server.metrics().clone();
    assert_eq!(metrics.allocations_created, 2);
    assert_eq!(
        metrics.allocations_closed, 0,
        "refreshed in time: {metrics:?}"
    );
    // Closing releases the allocations at once (Refresh with LIFETIME 0).
    let (a, b) = (s.a, s.b);
    s.node_mut(a).agent.close();
    s.node_mut(b).agent.close();
    s.run_for(Duration::from_secs(1));
    assert_eq!(s.net.node::<TurnNode>(turn).server.allocation_count(), 0);
}

#[test]
fn relay_only_policy_on_a_lan_uses_relayed_pairs() {
    let mut net = Network::new(3, origin());
    let turn_host = net.add_host(&[ip(TURN_IP)], None);
    let now = net.now();
    net.attach(
        turn_host,
        TurnNode::new(now, &["203.0.113.0/24", "192.168.1.0/24"]),
    );
    let ha = net.add_host(&[ip("192.168.1.10")], None);
    let hb = net.add_host(&[ip("192.168.1.20")], None);
    for h in [ha, hb, turn_host] {
        net.set_uplink(h, LinkConfig::default().delay(Duration::from_millis(1)));
    }
    let a = add_agent(&mut net, ha, 5000, turn_config(7, true), true);
    let b = add_agent(&mut net, hb, 6000, turn_config(8, true), false);
    let mut s = Session::new(net, a, b);
    assert!(s.both_connected(Duration::from_secs(10)));
    for node in [s.node(s.a), s.node(s.b)] {
        for (_, event) in &node.events {
            if let IceEvent::LocalCandidate(c) = event {
                assert_eq!(c.kind, CandidateKind::Relayed, "relay policy: {c:?}");
            }
        }
        assert!(node
            .agent
            .local_candidates()
            .all(|c| c.kind == CandidateKind::Relayed));
        let selected = node.selected().unwrap();
        assert_eq!(selected.local.kind, CandidateKind::Relayed);
        assert_eq!(selected.remote.kind, CandidateKind::Relayed);
    }
    exchange(&mut s);
    assert!(s.both_completed(Duration::from_secs(10)));
}

#[test]
fn wrong_turn_password_ends_gathering_without_a_relay() {
    let mut net = Network::new(4, origin());
    let turn_host = net.add_host(&[ip(TURN_IP)], None);
    let now = net.now();
    net.attach(turn_host, TurnNode::new(now, &[]));
    let ha = net.add_host(&[ip("192.168.1.10")], None);
    let mut config = turn_config(9, false);
    config.turn_servers[0].password = "not the password".into();
    let a = add_agent(&mut net, ha, 5000, config, true);
    let deadline = net.now() + Duration::from_secs(5);
    net.run_until_cond(deadline, |net| {
        net.node::<IceNode>(a)
            .events
            .iter()
            .any(|(_, e)| matches!(e, IceEvent::EndOfCandidates))
    });
    let node = net.node::<IceNode>(a);
    assert!(node
        .events
        .iter()
        .any(|(_, e)| matches!(e, IceEvent::EndOfCandidates)));
    assert!(relayed_candidates(node).is_empty());
    assert!(node
        .agent
        .local_candidates()
        .any(|c| c.kind == CandidateKind::Host));
}

/// The TURN server cannot be reached at first: the Allocate times out and
/// gathering ends with host candidates only. Once it is back, an ICE
/// restart allocates again and the relayed candidate appears.
#[test]
fn a_restart_allocates_again_after_the_server_was_unreachable() {
    let mut net = Network::new(5, origin());
    let turn_host = net.add_host(&[ip(TURN_IP)], None);
    let now = net.now();
    net.attach(turn_host, TurnNode::new(now, &[]));
    net.set_uplink(
        turn_host,
        LinkConfig::default().loss(realtimer_netsim::Loss::Independent(1.0)),
    );
    let ha = net.add_host(&[ip("192.168.1.10")], None);
    let a = add_agent(&mut net, ha, 5000, turn_config(10, false), true);
    let deadline = net.now() + Duration::from_secs(60);
    let ended = |net: &Network| {
        net.node::<IceNode>(a)
            .events
            .iter()
            .filter(|(_, e)| matches!(e, IceEvent::EndOfCandidates))
            .count()
    };
    net.run_until_cond(deadline, |net| ended(net) == 1);
    assert_eq!(ended(&net), 1, "gathering ends when the Allocate times out");
    assert!(relayed_candidates(net.node::<IceNode>(a)).is_empty());

    net.set_uplink(turn_host, LinkConfig::default());
    let now = net.now();
    net.node_mut::<IceNode>(a).agent.restart(now);
    let deadline = net.now() + Duration::from_secs(10);
    net.run_until_cond(deadline, |net| ended(net) == 2);
    let relayed = relayed_candidates(net.node::<IceNode>(a));
    assert_eq!(relayed.len(), 1, "allocated on the second try");
    assert_eq!(relayed[0].address.ip(), ip(TURN_IP));
}

/// The server refuses permissions for the peer's private addresses (403,
/// its default policy): the refusal is remembered, not asked again on
/// every timer tick, while the host pairs carry the connection.
#[test]
fn refused_permissions_are_not_asked_again_and_again() {
    let mut net = Network::new(6, origin());
    let turn_host = net.add_host(&[ip(TURN_IP)], None);
    let now = net.now();
    let turn = net.attach(turn_host, TurnNode::new(now, &[]));
    let ha = net.add_host(&[ip("192.168.1.10")], None);
    let hb = net.add_host(&[ip("192.168.1.20")], None);
    for h in [ha, hb, turn_host] {
        net.set_uplink(h, LinkConfig::default().delay(Duration::from_millis(1)));
    }
    let a = add_agent(&mut net, ha, 5000, turn_config(11, false), true);
    let b = add_agent(&mut net, hb, 6000, turn_config(12, false), false);
    let mut s = Session::new(net, a, b);
    assert!(s.both_connected(Duration::from_secs(10)));
    s.run_for(Duration::from_secs(30));
    let refused = s
        .net
        .node::<TurnNode>(turn)
        .server
        .metrics()
        .forbidden_peers;
    assert!(refused > 0, "the server refused the private peers");
    // Each agent has one allocation and at most a few private peer
    // addresses (host, peer-reflexive): a handful of refusals, not one per
    // timer tick over 30 s.
    assert!(refused <= 8, "{refused} refused permission requests");
}
