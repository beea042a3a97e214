//! The network: hosts, NATs, links, nodes, and the event loop on virtual
//! time.

use std::any::Any;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::link::{Direction, LinkConfig, LinkState};
use crate::nat::{NatConfig, NatTable};
use crate::stats::{DropCause, NetStats, TraceEntry, TraceEvent};
use crate::{Datagram, HostId, NatId, Node, NodeId};

/// Something with an access link and a firewall: a host or a NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Device {
    /// A host; its link leads to the internet, or to its NAT's LAN.
    Host(HostId),
    /// A NAT; its link leads to the internet.
    Nat(NatId),
}

impl From<HostId> for Device {
    fn from(host: HostId) -> Self {
        Device::Host(host)
    }
}

impl From<NatId> for Device {
    fn from(nat: NatId) -> Self {
        Device::Nat(nat)
    }
}

/// Steps at one virtual instant after which the network reports a livelock
/// (nodes answering each other, or a timeout that never moves, at zero
/// delay) instead of hanging the test.
const LIVELOCK_STEPS: u64 = 1_000_000;

/// The IP and UDP header bytes a datagram adds on the wire.
fn ip_len(datagram: &Datagram) -> usize {
    let headers = if datagram.destination.is_ipv4() {
        20 + 8
    } else {
        40 + 8
    };
    datagram.contents.len() + headers
}

/// A node, stored so it can be handed back by type.
trait AnyNode: Node {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn type_name(&self) -> &'static str;
}

impl<T: Node> AnyNode for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

struct NodeSlot {
    host: HostId,
    node: Box<dyn AnyNode>,
    /// Touched by the test through [`Network::node_mut`]: poll it for
    /// transmits at the next step.
    dirty: bool,
}

#[derive(Debug)]
struct Host {
    addresses: Vec<IpAddr>,
    behind: Option<NatId>,
    up: LinkState,
    down: LinkState,
    firewall: bool,
    node: Option<usize>,
}

#[derive(Debug)]
struct Nat {
    table: NatTable,
    /// The private addresses of the hosts behind it.
    lan: HashMap<IpAddr, HostId>,
    up: LinkState,
    down: LinkState,
    firewall: bool,
}

/// Where a datagram is when its event fires.
#[derive(Debug, Clone, Copy)]
enum Hop {
    /// Out of a public host's or a NAT's uplink: routed by destination.
    Internet,
    /// Out of the uplink of a host behind this NAT: to a LAN neighbour, a
    /// hairpin, or out through the NAT.
    Lan(NatId),
    /// Through this NAT's downlink, at its public side.
    NatWan(NatId),
    /// Through this host's downlink: delivered to its node.
    Host(HostId),
}

/// A datagram arriving at a hop. Ordered by (time, sequence) so that
/// events at the same instant run in the order they were made.
#[derive(Debug)]
struct Event {
    at: Instant,
    seq: u64,
    hop: Hop,
    datagram: Datagram,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    /// Reversed, so that the max-heap pops the earliest event.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Clone, Copy)]
enum LinkRef {
    HostUp(HostId),
    HostDown(HostId),
    NatUp(NatId),
    NatDown(NatId),
}

/// A simulated network on virtual time. See the [crate docs](crate) for an
/// example.
///
/// Paths: between two public hosts a datagram crosses the sender's uplink
/// (outbound) and the receiver's (inbound). From behind a NAT it crosses
/// the host's uplink, the NAT (translation) and the NAT's uplink; into a
/// NAT, the NAT's uplink, the NAT (filtering) and the host's uplink. Hosts
/// behind the same NAT reach each other directly over their own uplinks,
/// and reach the NAT's public address only if it hairpins.
pub struct Network {
    seed: u64,
    now: Instant,
    rng: ChaCha8Rng,
    hosts: Vec<Host>,
    nats: Vec<Nat>,
    nodes: Vec<NodeSlot>,
    /// Public addresses: of hosts on the internet and of NATs.
    public: HashMap<IpAddr, Device>,
    events: BinaryHeap<Event>,
    next_seq: u64,
    stats: NetStats,
    trace: Option<Vec<TraceEntry>>,
    /// Steps taken at `now`, for livelock detection.
    steps_at_now: u64,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("hosts", &self.hosts.len())
            .field("nats", &self.nats.len())
            .field("nodes", &self.nodes.len())
            .field("events", &self.events.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Drop for Network {
    /// A test that fails with a network alive names its seed, so the run can
    /// be replayed with `NETSIM_SEED`.
    #[allow(
        clippy::print_stderr,
        reason = "the one way to reach a failing test's output"
    )]
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "netsim: this run used seed {seed}; replay it with {env}={seed}",
                seed = self.seed,
                env = crate::SEED_ENV
            );
        }
    }
}

impl Network {
    /// An empty network whose virtual time starts at `start`, with every
    /// random choice drawn from `seed`.
    pub fn new(seed: u64, start: Instant) -> Self {
        tracing::info!(seed, "netsim: new network (replay with NETSIM_SEED={seed})");
        Network {
            seed,
            now: start,
            rng: ChaCha8Rng::seed_from_u64(seed),
            hosts: Vec::new(),
            nats: Vec::new(),
            nodes: Vec::new(),
            public: HashMap::new(),
            events: BinaryHeap::new(),
            next_seq: 0,
            stats: NetStats::default(),
            trace: None,
            steps_at_now: 0,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The seed this network was made with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Counters so far.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// Starts (or stops) recording every send, delivery and drop; see
    /// [`Network::trace`]. Off by default: it allocates per datagram.
    pub fn record_trace(&mut self, on: bool) {
        match (on, &self.trace) {
            (true, None) => self.trace = Some(Vec::new()),
            (false, Some(_)) => self.trace = None,
            _ => {}
        }
    }

    /// What was recorded since [`Network::record_trace`] was turned on.
    pub fn trace(&self) -> &[TraceEntry] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Adds a NAT with its public addresses on the internet.
    ///
    /// Panics if a public address is taken.
    pub fn add_nat(&mut self, config: NatConfig) -> NatId {
        let id = NatId(self.nats.len());
        for &ip in &config.public_ips {
            self.claim_public(ip, Device::Nat(id));
        }
        self.nats.push(Nat {
            table: NatTable::new(config),
            lan: HashMap::new(),
            up: LinkState::new(self.now),
            down: LinkState::new(self.now),
            firewall: false,
        });
        id
    }

    /// Adds a host with these addresses: public ones on the internet
    /// (`behind: None`), or private ones in the LAN of a NAT.
    ///
    /// Panics if `addresses` is empty or an address is taken there.
    pub fn add_host(&mut self, addresses: &[IpAddr], behind: Option<NatId>) -> HostId {
        assert!(!addresses.is_empty(), "add_host: a host needs an address");
        let id = HostId(self.hosts.len());
        for &ip in addresses {
            match behind {
                None => self.claim_public(ip, Device::Host(id)),
                Some(nat) => {
                    let lan = &mut self.nat_mut(nat).lan;
                    if let Some(other) = lan.insert(ip, id) {
                        panic!("add_host: {ip} is already used by {other:?} behind {nat:?}");
                    }
                }
            }
        }
        self.hosts.push(Host {
            addresses: addresses.to_vec(),
            behind,
            up: LinkState::new(self.now),
            down: LinkState::new(self.now),
            firewall: false,
            node: None,
        });
        id
    }

    fn claim_public(&mut self, ip: IpAddr, device: Device) {
        if let Some(other) = self.public.insert(ip, device) {
            panic!("{ip} is already a public address of {other:?}");
        }
    }

    /// A host's addresses, in the order given.
    pub fn host_addresses(&self, host: HostId) -> &[IpAddr] {
        &self.host(host).addresses
    }

    /// The NAT a host is behind, if any.
    pub fn host_nat(&self, host: HostId) -> Option<NatId> {
        self.host(host).behind
    }

    /// A NAT's configuration.
    pub fn nat_config(&self, nat: NatId) -> &NatConfig {
        self.nat(nat).table.config()
    }

    /// Sets both directions of a device's access link to `link` (each
    /// direction keeps its own queue and loss state).
    ///
    /// Panics if a probability is outside 0..=1 or the bandwidth is 0.
    pub fn set_uplink(&mut self, device: impl Into<Device>, link: LinkConfig) {
        let device = device.into();
        self.set_link(device, Direction::Inbound, link.clone());
        self.set_link(device, Direction::Outbound, link);
    }

    /// Sets one direction of a device's access link.
    pub fn set_link(&mut self, device: impl Into<Device>, direction: Direction, link: LinkConfig) {
        let state = match (device.into(), direction) {
            (Device::Host(h), Direction::Outbound) => &mut self.host_mut(h).up,
            (Device::Host(h), Direction::Inbound) => &mut self.host_mut(h).down,
            (Device::Nat(n), Direction::Outbound) => &mut self.nat_mut(n).up,
            (Device::Nat(n), Direction::Inbound) => &mut self.nat_mut(n).down,
        };
        state.configure(link);
    }

    /// Turns on (or off) a firewall that drops all UDP to and from a host or
    /// NAT. Datagrams already past it are not recalled.
    pub fn set_firewall_drop_udp(&mut self, device: impl Into<Device>, drop: bool) {
        match device.into() {
            Device::Host(h) => self.host_mut(h).firewall = drop,
            Device::Nat(n) => self.nat_mut(n).firewall = drop,
        }
    }

    /// Attaches a node to a host. It gets everything delivered to the host
    /// and is polled for transmits at the next step.
    ///
    /// Panics if the host already has a node.
    pub fn attach<N: Node>(&mut self, host: HostId, node: N) -> NodeId {
        let index = self.nodes.len();
        let slot = &mut self.host_mut(host).node;
        if let Some(other) = slot {
            panic!("attach: {host:?} already runs NodeId({other}); one node per host");
        }
        *slot = Some(index);
        self.nodes.push(NodeSlot {
            host,
            node: Box::new(node),
            dirty: true,
        });
        NodeId(index)
    }

    /// The host a node is attached to.
    pub fn node_host(&self, node: NodeId) -> HostId {
        self.slot(node).host
    }

    /// A node, by its type.
    ///
    /// Panics if the node is not an `N`: a bug in the test.
    pub fn node<N: Node>(&self, id: NodeId) -> &N {
        let slot = self.slot(id);
        let actual = slot.node.type_name();
        slot.node.as_any().downcast_ref().unwrap_or_else(|| {
            panic!(
                "node {id:?} is a {actual}, not a {}",
                std::any::type_name::<N>()
            )
        })
    }

    /// A node, by its type, to change. The network polls it for transmits
    /// at the next step.
    ///
    /// Panics if the node is not an `N`: a bug in the test.
    pub fn node_mut<N: Node>(&mut self, id: NodeId) -> &mut N {
        let slot = self
            .nodes
            .get_mut(id.0)
            .unwrap_or_else(|| panic!("no node {id:?} in this network"));
        slot.dirty = true;
        let actual = slot.node.type_name();
        slot.node.as_any_mut().downcast_mut().unwrap_or_else(|| {
            panic!(
                "node {id:?} is a {actual}, not a {}",
                std::any::type_name::<N>()
            )
        })
    }

    /// When the next event is due: a datagram arriving somewhere, or a
    /// node's timeout (never before now). `None` when nothing is left.
    /// Nodes changed through [`Network::node_mut`] since the last step are
    /// due now.
    pub fn next_event_time(&self) -> Option<Instant> {
        if self.nodes.iter().any(|slot| slot.dirty) {
            return Some(self.now);
        }
        let arrival = self.events.peek().map(|e| e.at);
        let timeout = self.next_timeout().map(|(at, _)| at);
        match (arrival, timeout) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        }
    }

    /// Processes the next event: polls nodes changed by the test, then
    /// delivers the next datagram to its next hop or fires the soonest node
    /// timeout, jumping virtual time to it. At the same instant, arrivals
    /// go before timeouts (a response due when the retransmit timer fires
    /// wins). Returns false when nothing is left to do.
    ///
    /// Panics after a million steps at one instant: a livelock.
    pub fn step(&mut self) -> bool {
        if self.poll_dirty() {
            return true;
        }
        let arrival = self.events.peek().map(|e| e.at);
        let timeout = self.next_timeout();
        let fire_timeout = match (arrival, timeout) {
            (None, None) => return false,
            (Some(a), Some((t, _))) => t < a,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        if fire_timeout {
            if let Some((at, index)) = timeout {
                self.advance(at);
                let now = self.now;
                self.nodes[index].node.handle_timeout(now);
                self.drain(index);
            }
        } else if let Some(event) = self.events.pop() {
            self.advance(event.at);
            self.arrive(event.hop, event.datagram);
        }
        true
    }

    /// Runs every event due up to `deadline`, then sets the time to it.
    pub fn run_until(&mut self, deadline: Instant) {
        while self.next_event_time().is_some_and(|t| t <= deadline) {
            self.step();
        }
        self.now = self.now.max(deadline);
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs until `cond` holds (checked before the first step and after
    /// each) or until `deadline`. Returns whether `cond` held; on false the
    /// time is `deadline`.
    pub fn run_until_cond(
        &mut self,
        deadline: Instant,
        mut cond: impl FnMut(&mut Network) -> bool,
    ) -> bool {
        loop {
            if cond(self) {
                return true;
            }
            if self.next_event_time().is_none_or(|t| t > deadline) {
                self.now = self.now.max(deadline);
                return cond(self);
            }
            self.step();
        }
    }

    fn advance(&mut self, at: Instant) {
        self.stats.steps += 1;
        if at > self.now {
            self.now = at;
            self.steps_at_now = 0;
        } else {
            self.steps_at_now += 1;
            assert!(
                self.steps_at_now < LIVELOCK_STEPS,
                "netsim: {LIVELOCK_STEPS} steps at one instant: nodes in a livelock \
                 (zero-delay ping-pong, or a timeout that does not move)"
            );
        }
    }

    /// Polls nodes the test changed; true if there were any.
    fn poll_dirty(&mut self) -> bool {
        let mut any = false;
        for index in 0..self.nodes.len() {
            if self.nodes[index].dirty {
                self.nodes[index].dirty = false;
                self.drain(index);
                any = true;
            }
        }
        any
    }

    /// The soonest node timeout, clamped to now, with the node's index
    /// (lowest index first on ties).
    fn next_timeout(&self) -> Option<(Instant, usize)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| slot.node.poll_timeout().map(|t| (t.max(self.now), i)))
            .min()
    }

    /// The drain rule: after any input, send everything the node has.
    fn drain(&mut self, index: usize) {
        let now = self.now;
        while let Some(datagram) = self.nodes[index].node.poll_transmit(now) {
            self.emit(self.nodes[index].host, datagram);
        }
    }

    /// A node's datagram enters its host's uplink.
    fn emit(&mut self, host_id: HostId, mut datagram: Datagram) {
        self.stats.sent += 1;
        let host = &self.hosts[host_id.0];
        let source_ip = datagram.source.ip();
        let same_family = |ip: &IpAddr| ip.is_ipv4() == datagram.destination.is_ipv4();
        let cause = if source_ip.is_unspecified() {
            match host.addresses.iter().copied().find(same_family) {
                Some(ip) => {
                    datagram.source.set_ip(ip);
                    None
                }
                None => Some(DropCause::NoRoute),
            }
        } else if !host.addresses.contains(&source_ip) {
            Some(DropCause::BadSource)
        } else if !same_family(&source_ip) {
            Some(DropCause::NoRoute)
        } else {
            None
        };
        let cause = cause.or(host.firewall.then_some(DropCause::Firewall));
        self.record(TraceEvent::Sent, &datagram);
        if let Some(cause) = cause {
            self.drop_datagram(cause, &datagram);
            return;
        }
        let next = match self.hosts[host_id.0].behind {
            Some(nat) => Hop::Lan(nat),
            None => Hop::Internet,
        };
        self.send_over(LinkRef::HostUp(host_id), next, datagram);
    }

    /// Puts a datagram on a link; it arrives at `next` unless dropped.
    fn send_over(&mut self, link: LinkRef, next: Hop, datagram: Datagram) {
        let now = self.now;
        let state = match link {
            LinkRef::HostUp(h) => &mut self.hosts[h.0].up,
            LinkRef::HostDown(h) => &mut self.hosts[h.0].down,
            LinkRef::NatUp(n) => &mut self.nats[n.0].up,
            LinkRef::NatDown(n) => &mut self.nats[n.0].down,
        };
        match state.transmit(now, ip_len(&datagram), &mut self.rng) {
            Ok(arrivals) => {
                if let Some(at) = arrivals.duplicate {
                    self.stats.duplicated += 1;
                    self.schedule(arrivals.first, next, datagram.clone());
                    self.schedule(at, next, datagram);
                } else {
                    self.schedule(arrivals.first, next, datagram);
                }
            }
            Err(cause) => self.drop_datagram(cause, &datagram),
        }
    }

    fn schedule(&mut self, at: Instant, hop: Hop, datagram: Datagram) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.events.push(Event {
            at,
            seq,
            hop,
            datagram,
        });
    }

    /// A datagram reached a hop.
    fn arrive(&mut self, hop: Hop, mut datagram: Datagram) {
        let now = self.now;
        match hop {
            Hop::Internet => match self.public.get(&datagram.destination.ip()) {
                Some(&Device::Host(h)) => self.enter_host(h, datagram),
                Some(&Device::Nat(n)) => {
                    if self.nats[n.0].firewall {
                        self.drop_datagram(DropCause::Firewall, &datagram);
                    } else {
                        self.send_over(LinkRef::NatDown(n), Hop::NatWan(n), datagram);
                    }
                }
                None => self.drop_datagram(DropCause::NoRoute, &datagram),
            },
            Hop::Lan(n) => {
                let destination = datagram.destination.ip();
                let nat = &mut self.nats[n.0];
                if let Some(&h) = nat.lan.get(&destination) {
                    self.enter_host(h, datagram);
                } else if nat.table.is_public_ip(destination) {
                    self.hairpin(n, datagram);
                } else if nat.firewall {
                    self.drop_datagram(DropCause::Firewall, &datagram);
                } else {
                    let translated = nat.table.outbound(
                        now,
                        datagram.source,
                        datagram.destination,
                        &mut self.rng,
                    );
                    match translated {
                        Ok(external) => {
                            datagram.source = external;
                            self.send_over(LinkRef::NatUp(n), Hop::Internet, datagram);
                        }
                        Err(cause) => self.drop_datagram(cause, &datagram),
                    }
                }
            }
            Hop::NatWan(n) => {
                let nat = &mut self.nats[n.0];
                match nat
                    .table
                    .inbound(now, datagram.source, datagram.destination)
                {
                    Ok(internal) => {
                        datagram.destination = internal;
                        self.enter_lan_host(n, datagram);
                    }
                    Err(cause) => self.drop_datagram(cause, &datagram),
                }
            }
            Hop::Host(h) => match self.hosts[h.0].node {
                Some(index) => {
                    self.stats.delivered += 1;
                    self.record(TraceEvent::Delivered, &datagram);
                    self.nodes[index].node.handle_datagram(now, datagram);
                    self.drain(index);
                }
                None => self.drop_datagram(DropCause::NoNode, &datagram),
            },
        }
    }

    /// From behind a NAT to its own public address (RFC 4787 §6): with
    /// hairpinning, translated out (the receiver sees the sender's mapped
    /// address, REQ-9) and back in through the filter, without crossing
    /// the NAT's uplink.
    fn hairpin(&mut self, n: NatId, mut datagram: Datagram) {
        let now = self.now;
        let nat = &mut self.nats[n.0];
        if !nat.table.config().hairpinning {
            self.drop_datagram(DropCause::Hairpinning, &datagram);
            return;
        }
        let translated = nat
            .table
            .outbound(now, datagram.source, datagram.destination, &mut self.rng)
            .and_then(|external| {
                datagram.source = external;
                nat.table.inbound(now, external, datagram.destination)
            });
        match translated {
            Ok(internal) => {
                datagram.destination = internal;
                self.enter_lan_host(n, datagram);
            }
            Err(cause) => self.drop_datagram(cause, &datagram),
        }
    }

    /// A datagram translated by a NAT goes to the LAN host it is now
    /// addressed to.
    fn enter_lan_host(&mut self, n: NatId, datagram: Datagram) {
        match self.nats[n.0].lan.get(&datagram.destination.ip()) {
            Some(&h) => self.enter_host(h, datagram),
            None => self.drop_datagram(DropCause::NoRoute, &datagram),
        }
    }

    /// A datagram passes a host's firewall and enters its downlink.
    fn enter_host(&mut self, h: HostId, datagram: Datagram) {
        if self.hosts[h.0].firewall {
            self.drop_datagram(DropCause::Firewall, &datagram);
        } else {
            self.send_over(LinkRef::HostDown(h), Hop::Host(h), datagram);
        }
    }

    fn drop_datagram(&mut self, cause: DropCause, datagram: &Datagram) {
        tracing::trace!(
            ?cause,
            source = %datagram.source,
            destination = %datagram.destination,
            len = datagram.contents.len(),
            "netsim: dropped"
        );
        self.stats.dropped.count(cause);
        self.record(TraceEvent::Dropped(cause), datagram);
    }

    fn record(&mut self, event: TraceEvent, datagram: &Datagram) {
        if let Some(trace) = &mut self.trace {
            trace.push(TraceEntry {
                at: self.now,
                event,
                source: datagram.source,
                destination: datagram.destination,
                len: datagram.contents.len(),
            });
        }
    }

    fn host(&self, host: HostId) -> &Host {
        self.hosts
            .get(host.0)
            .unwrap_or_else(|| panic!("no host {host:?} in this network"))
    }

    fn host_mut(&mut self, host: HostId) -> &mut Host {
        self.hosts
            .get_mut(host.0)
            .unwrap_or_else(|| panic!("no host {host:?} in this network"))
    }

    fn nat(&self, nat: NatId) -> &Nat {
        self.nats
            .get(nat.0)
            .unwrap_or_else(|| panic!("no NAT {nat:?} in this network"))
    }

    fn nat_mut(&mut self, nat: NatId) -> &mut Nat {
        self.nats
            .get_mut(nat.0)
            .unwrap_or_else(|| panic!("no NAT {nat:?} in this network"))
    }

    fn slot(&self, node: NodeId) -> &NodeSlot {
        self.nodes
            .get(node.0)
            .unwrap_or_else(|| panic!("no node {node:?} in this network"))
    }
}
