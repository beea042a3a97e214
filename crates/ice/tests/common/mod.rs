//! A harness for ICE agents on the simulated network: each agent is a
//! netsim node; signaling (candidates, end-of-candidates, credentials)
//! travels between them with a configurable delay.
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)]

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_ice::{
    IceAgent, IceConfig, IceConnectionState, IceCredentials, IceEvent, SelectedPair,
};
use realtimer_netsim::{Datagram, HostId, LinkConfig, Loss, NatConfig, Network, Node, NodeId};
use realtimer_stun::BindingServer;

/// What one agent tells the other through signaling.
#[derive(Debug, Clone)]
pub enum Signal {
    Credentials(IceCredentials),
    Candidate(String),
    EndOfCandidates,
    /// An mDNS name the peer published (the test's stand-in for multicast DNS).
    MdnsName(String, IpAddr),
}

/// An application datagram sent or received over the selected pair.
#[derive(Debug, Clone)]
pub struct AppData {
    pub at: Instant,
    pub contents: Bytes,
}

/// An agent with its sockets (one per base address on the host).
pub struct IceNode {
    pub agent: IceAgent,
    pub bases: Vec<SocketAddr>,
    /// Signals waiting to be applied, with their arrival time.
    inbox: VecDeque<(Instant, Signal)>,
    /// Signals to carry to the other side.
    pub outbox: Vec<Signal>,
    /// Every event with its time.
    pub events: Vec<(Instant, IceEvent)>,
    pub app_received: Vec<AppData>,
    app_outbox: VecDeque<Bytes>,
    /// mDNS names this node can resolve (the test's stand-in for multicast DNS).
    pub mdns: HashMap<String, IpAddr>,
}

impl IceNode {
    /// An agent that starts gathering on `bases` at `now`.
    pub fn new(now: Instant, config: IceConfig, controlling: bool, bases: Vec<SocketAddr>) -> Self {
        let agent = IceAgent::new(config, controlling);
        let credentials = agent.local_credentials().clone();
        let mut node = IceNode {
            agent,
            bases,
            inbox: VecDeque::new(),
            outbox: vec![Signal::Credentials(credentials)],
            events: Vec::new(),
            app_received: Vec::new(),
            app_outbox: VecDeque::new(),
            mdns: HashMap::new(),
        };
        node.agent.gather(now, &node.bases.clone());
        node.collect(now);
        node
    }

    pub fn deliver(&mut self, at: Instant, signal: Signal) {
        self.inbox.push_back((at, signal));
    }

    /// Queues an application datagram to the selected pair's remote address.
    pub fn send_app(&mut self, contents: Bytes) {
        self.app_outbox.push_back(contents);
    }

    pub fn state(&self) -> IceConnectionState {
        self.agent.connection_state()
    }

    pub fn is_connected(&self) -> bool {
        matches!(
            self.state(),
            IceConnectionState::Connected | IceConnectionState::Completed
        )
    }

    pub fn selected(&self) -> Option<&SelectedPair> {
        self.agent.selected_pair()
    }

    /// When the agent first had a usable pair (connected or completed).
    pub fn connected_at(&self) -> Option<Instant> {
        self.events.iter().find_map(|(t, e)| match e {
            IceEvent::ConnectionState(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) => Some(*t),
            _ => None,
        })
    }

    /// When the connection state first reached `state`.
    pub fn reached(&self, state: IceConnectionState) -> Option<Instant> {
        self.events.iter().find_map(|(t, e)| match e {
            IceEvent::ConnectionState(s) if *s == state => Some(*t),
            _ => None,
        })
    }

    pub fn restart(&mut self, now: Instant) {
        let credentials = self.agent.restart(now).clone();
        self.outbox.push(Signal::Credentials(credentials));
        self.collect(now);
    }

    fn apply_due_signals(&mut self, now: Instant) {
        while self.inbox.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, signal)) = self.inbox.pop_front() else {
                break;
            };
            match signal {
                Signal::Credentials(c) => self.agent.set_remote_credentials(c),
                Signal::Candidate(text) => {
                    let candidate =
                        realtimer_sdp::Candidate::parse(&text).expect("our candidates parse");
                    let _ = self.agent.add_remote_candidate(now, &candidate);
                }
                Signal::EndOfCandidates => self.agent.add_remote_end_of_candidates(),
                Signal::MdnsName(name, address) => {
                    self.mdns.insert(name, address);
                }
            }
        }
    }

    /// Moves the agent's events to the log and signaling to the outbox.
    fn collect(&mut self, now: Instant) {
        while let Some(event) = self.agent.poll_event() {
            match &event {
                IceEvent::LocalCandidate(c) => {
                    let ufrag = self.agent.local_credentials().ufrag.clone();
                    self.outbox
                        .push(Signal::Candidate(c.to_sdp(Some(&ufrag)).to_string()));
                }
                IceEvent::EndOfCandidates => self.outbox.push(Signal::EndOfCandidates),
                IceEvent::RegisterMdnsName { name, address } => {
                    self.outbox.push(Signal::MdnsName(name.clone(), *address));
                }
                IceEvent::ResolveMdnsName { name } => {
                    let address = self.mdns.get(name).copied();
                    self.agent.resolve_mdns_name(now, name, address);
                }
                _ => {}
            }
            self.events.push((now, event));
        }
    }
}

impl Node for IceNode {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        // `handle_receive_data` unwraps what a TURN relay carried; for a
        // plain datagram it is `handle_receive` with the payload back.
        if let Some(data) = self.agent.handle_receive_data(
            now,
            datagram.source,
            datagram.destination,
            &datagram.contents,
        ) {
            self.app_received.push(AppData {
                at: now,
                contents: Bytes::copy_from_slice(data.contents),
            });
        }
        self.collect(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.apply_due_signals(now);
        self.agent.handle_timeout(now);
        self.collect(now);
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        if let Some(t) = self.agent.poll_transmit() {
            return Some(Datagram {
                source: t.source,
                destination: t.destination,
                contents: t.contents,
            });
        }
        self.agent.selected_pair()?;
        let contents = self.app_outbox.pop_front()?;
        let t = self.agent.send_data(&contents)?;
        Some(Datagram {
            source: t.source,
            destination: t.destination,
            contents: t.contents,
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let signals = self.inbox.front().map(|(at, _)| *at);
        let agent = self.agent.poll_timeout();
        [signals, agent].into_iter().flatten().min()
    }
}

/// A STUN server node answering Binding requests.
pub struct StunServerNode {
    server: BindingServer,
    out: VecDeque<Datagram>,
}

impl StunServerNode {
    pub fn new() -> Self {
        StunServerNode {
            server: BindingServer::default(),
            out: VecDeque::new(),
        }
    }
}

impl Node for StunServerNode {
    fn handle_datagram(&mut self, _now: Instant, datagram: Datagram) {
        let mut response = Vec::new();
        if let realtimer_stun::BindingOutcome::Respond =
            self.server
                .handle(&datagram.contents, datagram.source, &mut response)
        {
            self.out.push_back(Datagram {
                source: datagram.destination,
                destination: datagram.source,
                contents: Bytes::from(response),
            });
        }
    }
    fn handle_timeout(&mut self, _now: Instant) {}
    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        self.out.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

/// Two agents on a network, with signaling between them.
pub struct Session {
    pub net: Network,
    pub a: NodeId,
    pub b: NodeId,
    pub signaling_delay: Duration,
    pub start: Instant,
}

impl Session {
    pub fn new(net: Network, a: NodeId, b: NodeId) -> Self {
        let start = net.now();
        Session {
            net,
            a,
            b,
            signaling_delay: Duration::from_millis(20),
            start,
        }
    }

    pub fn node(&self, id: NodeId) -> &IceNode {
        self.net.node::<IceNode>(id)
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut IceNode {
        self.net.node_mut::<IceNode>(id)
    }

    /// Carries pending signals each way.
    pub fn carry_signals(net: &mut Network, a: NodeId, b: NodeId, delay: Duration) {
        let now = net.now();
        for (from, to) in [(a, b), (b, a)] {
            // `node_mut` makes the network poll the node again: only call it
            // when there is something to carry.
            if net.node::<IceNode>(from).outbox.is_empty() {
                continue;
            }
            let signals = std::mem::take(&mut net.node_mut::<IceNode>(from).outbox);
            let node = net.node_mut::<IceNode>(to);
            for s in signals {
                node.deliver(now + delay, s);
            }
        }
    }

    /// Runs until `cond` holds or `limit` of virtual time passes; returns
    /// whether `cond` held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut cond: impl FnMut(&IceNode, &IceNode) -> bool,
    ) -> bool {
        let deadline = self.net.now() + limit;
        let (a, b, delay) = (self.a, self.b, self.signaling_delay);
        self.net.run_until_cond(deadline, |net| {
            Self::carry_signals(net, a, b, delay);
            cond(net.node::<IceNode>(a), net.node::<IceNode>(b))
        })
    }

    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_, _| false);
    }

    pub fn both_connected(&mut self, limit: Duration) -> bool {
        self.run_until(limit, |a, b| a.is_connected() && b.is_connected())
    }

    pub fn both_completed(&mut self, limit: Duration) -> bool {
        self.run_until(limit, |a, b| {
            a.state() == IceConnectionState::Completed && b.state() == IceConnectionState::Completed
        })
    }
}

/// A config for simulations: a fixed seed per side.
pub fn config(seed: u64) -> IceConfig {
    IceConfig {
        seed,
        ..IceConfig::default()
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn add_agent(
    net: &mut Network,
    host: HostId,
    port: u16,
    config: IceConfig,
    controlling: bool,
) -> NodeId {
    let bases = net
        .host_addresses(host)
        .iter()
        .map(|ip| SocketAddr::new(*ip, port))
        .collect();
    let now = net.now();
    net.attach(host, IceNode::new(now, config, controlling, bases))
}

/// Agents on `a.0` (port 5000) and `b.0` (port 6000) with the given configs
/// and roles, each seeded from the session's `seed`, in one session.
pub fn pair(
    mut net: Network,
    seed: u64,
    a: (HostId, IceConfig, bool),
    b: (HostId, IceConfig, bool),
) -> Session {
    let a = add_agent(
        &mut net,
        a.0,
        5000,
        IceConfig {
            seed: seed * 2 + 1,
            ..a.1
        },
        a.2,
    );
    let b = add_agent(
        &mut net,
        b.0,
        6000,
        IceConfig {
            seed: seed * 2 + 2,
            ..b.1
        },
        b.2,
    );
    Session::new(net, a, b)
}

/// The virtual start time for every simulation.
pub fn origin() -> Instant {
    Instant::now()
}

/// Two hosts on one LAN, 1 ms apart each way.
pub fn lan(seed: u64) -> Session {
    let mut net = Network::new(seed, origin());
    let ha = net.add_host(&[ip("192.168.1.10")], None);
    let hb = net.add_host(&[ip("192.168.1.20")], None);
    net.set_uplink(ha, LinkConfig::default().delay(Duration::from_micros(500)));
    net.set_uplink(hb, LinkConfig::default().delay(Duration::from_micros(500)));
    pair(net, seed, (ha, config(0), true), (hb, config(0), false))
}

/// Two hosts (10.0.0.2, 10.0.1.2), each behind its own NAT: 2 ms to the
/// NAT, then 10 ms (a) and 15 ms (b) to the internet.
pub fn hosts_behind_nats(
    net: &mut Network,
    a_nat: NatConfig,
    b_nat: NatConfig,
) -> (realtimer_netsim::HostId, realtimer_netsim::HostId) {
    let nat_a = net.add_nat(a_nat);
    let nat_b = net.add_nat(b_nat);
    let ha = net.add_host(&[ip("10.0.0.2")], Some(nat_a));
    let hb = net.add_host(&[ip("10.0.1.2")], Some(nat_b));
    for device in [ha, hb] {
        net.set_uplink(
            device,
            LinkConfig::default().delay(Duration::from_millis(2)),
        );
    }
    net.set_uplink(
        nat_a,
        LinkConfig::default().delay(Duration::from_millis(10)),
    );
    net.set_uplink(
        nat_b,
        LinkConfig::default().delay(Duration::from_millis(15)),
    );
    (ha, hb)
}

/// Each agent behind its own NAT, one STUN server on the internet.
pub fn behind_nats(seed: u64, a_nat: NatConfig, b_nat: NatConfig, agent: IceConfig) -> Session {
    let mut net = Network::new(seed, origin());
    let stun_host = net.add_host(&[ip("203.0.113.1")], None);
    net.attach(stun_host, StunServerNode::new());
    let (ha, hb) = hosts_behind_nats(&mut net, a_nat, b_nat);
    let with_stun = IceConfig {
        stun_servers: vec!["203.0.113.1:3478".parse().unwrap()],
        ..agent
    };
    pair(
        net,
        seed,
        (ha, with_stun.clone(), true),
        (hb, with_stun, false),
    )
}

/// Two hosts 20 ms apart, with `loss` on the path each way (one lossy link).
pub fn lossy(seed: u64, loss: f64) -> Session {
    let mut net = Network::new(seed, origin());
    let ha = net.add_host(&[ip("192.0.2.10")], None);
    let hb = net.add_host(&[ip("192.0.2.20")], None);
    net.set_uplink(
        ha,
        LinkConfig::default()
            .delay(Duration::from_millis(10))
            .loss(Loss::Independent(loss)),
    );
    net.set_uplink(hb, LinkConfig::default().delay(Duration::from_millis(10)));
    pair(net, seed, (ha, config(0), true), (hb, config(0), false))
}
