//! Two associations on the simulated network, SCTP packets carried as
//! datagrams (DTLS comes around them in the data channel crate).
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_netsim::{Datagram, LinkConfig, Network, Node, NodeId};
use realtimer_sctp::{
    Association, AssociationState, Chunk, Message, Packet, Param, SctpConfig, SctpEvent,
};

pub struct SctpNode {
    pub association: Association,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub messages: Vec<(Instant, Message)>,
    pub events: Vec<(Instant, SctpEvent)>,
    /// Behaves as Pion v3.1.56 does: drops a whole packet whose INIT or
    /// INIT ACK carries Zero Checksum Acceptable (RFC 9653), a parameter it
    /// cannot parse.
    pub drops_zero_checksum_offers: bool,
    /// Every packet this node sent, when recording (`Some`).
    pub sent: Option<Vec<Bytes>>,
}

impl SctpNode {
    pub fn connected(&self) -> bool {
        self.association.state() == AssociationState::Established
    }

    fn collect(&mut self, now: Instant) {
        while let Some(e) = self.association.poll_event() {
            match e {
                SctpEvent::Message(m) => self.messages.push((now, m)),
                other => self.events.push((now, other)),
            }
        }
    }

    /// The payloads received so far, in delivery order.
    pub fn payloads(&self) -> Vec<Bytes> {
        self.messages
            .iter()
            .map(|(_, m)| m.payload.clone())
            .collect()
    }

    pub fn received_bytes(&self) -> usize {
        self.messages.iter().map(|(_, m)| m.payload.len()).sum()
    }

    /// When the association came up.
    pub fn connected_at(&self) -> Option<Instant> {
        self.events
            .iter()
            .find_map(|(t, e)| (*e == SctpEvent::Connected).then_some(*t))
    }
}

/// Whether a packet's INIT or INIT ACK offers zero checksum.
pub fn offers_zero_checksum(packet: &Bytes) -> bool {
    Packet::parse(packet).is_ok_and(|p| {
        p.chunks.iter().any(|c| match c {
            Chunk::Init(init) | Chunk::InitAck(init) => init
                .params
                .iter()
                .any(|p| matches!(p, Param::ZeroChecksumAcceptable { .. })),
            _ => false,
        })
    })
}

impl Node for SctpNode {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        if self.drops_zero_checksum_offers && offers_zero_checksum(&datagram.contents) {
            return;
        }
        self.association.handle_packet(now, &datagram.contents);
        self.collect(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.association.handle_timeout(now);
        self.collect(now);
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        let contents = self.association.poll_transmit()?;
        if let Some(sent) = &mut self.sent {
            sent.push(contents.clone());
        }
        Some(Datagram {
            source: self.local,
            destination: self.peer,
            contents,
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.association.poll_timeout()
    }
}

pub struct Pair {
    pub net: Network,
    pub a: NodeId,
    pub b: NodeId,
    pub start: Instant,
}

impl Pair {
    /// Two hosts; `link` on a's uplink (both directions), a clean 1 ms on b's.
    pub fn new(seed: u64, link: LinkConfig, connect_a: bool, connect_b: bool) -> Pair {
        let config = SctpConfig::default();
        Pair::with_configs(seed, link, [config.clone(), config], [connect_a, connect_b])
    }

    /// As [`Pair::new`], with each side's configuration (seeds are set here).
    pub fn with_configs(
        seed: u64,
        link: LinkConfig,
        configs: [SctpConfig; 2],
        [connect_a, connect_b]: [bool; 2],
    ) -> Pair {
        let [config_a, config_b] = configs;
        let start = Instant::now();
        let mut net = Network::new(seed, start);
        let ha = net.add_host(&["192.0.2.1".parse().unwrap()], None);
        let hb = net.add_host(&["192.0.2.2".parse().unwrap()], None);
        net.set_uplink(ha, link);
        net.set_uplink(hb, LinkConfig::default().delay(Duration::from_millis(1)));
        let a_addr: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let b_addr: SocketAddr = "192.0.2.2:5000".parse().unwrap();
        let make = |config: SctpConfig, seed, local, peer, connect: bool| {
            let mut association = Association::new(SctpConfig { seed, ..config }, start);
            if connect {
                association.connect(start);
            }
            SctpNode {
                association,
                local,
                peer,
                messages: Vec::new(),
                events: Vec::new(),
                drops_zero_checksum_offers: false,
                sent: None,
            }
        };
        let node_a = make(config_a, seed * 2 + 1, a_addr, b_addr, connect_a);
        let node_b = make(config_b, seed * 2 + 2, b_addr, a_addr, connect_b);
        let a = net.attach(ha, node_a);
        let b = net.attach(hb, node_b);
        Pair { net, a, b, start }
    }

    pub fn node(&self, id: NodeId) -> &SctpNode {
        self.net.node::<SctpNode>(id)
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut SctpNode {
        self.net.node_mut::<SctpNode>(id)
    }

    pub fn run_until(
        &mut self,
        limit: Duration,
        mut cond: impl FnMut(&SctpNode, &SctpNode) -> bool,
    ) -> bool {
        let deadline = self.net.now() + limit;
        let (a, b) = (self.a, self.b);
        self.net.run_until_cond(deadline, |net| {
            cond(net.node::<SctpNode>(a), net.node::<SctpNode>(b))
        })
    }

    pub fn connect(&mut self) {
        assert!(self.run_until(Duration::from_secs(10), |a, b| a.connected()
            && b.connected()));
    }

    /// Queues as much of `messages` as the send buffer takes; returns how many.
    pub fn send_from_a(
        &mut self,
        messages: &[Bytes],
        stream: u16,
        unordered: bool,
        reliability: realtimer_sctp::Reliability,
    ) -> usize {
        let now = self.net.now();
        let node = self.node_mut(self.a);
        let mut sent = 0;
        for m in messages {
            if node
                .association
                .send(now, stream, 53, m.clone(), unordered, reliability)
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        sent
    }
}

/// Deterministic test data: message `i` of `len` bytes.
pub fn message(i: usize, len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|j| (i * 31 + j * 7) as u8)
            .collect::<Vec<u8>>(),
    )
}
