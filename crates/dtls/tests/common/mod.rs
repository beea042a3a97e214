//! A harness for DTLS connections on the simulated network: each side is a
//! netsim node that logs its events and the datagrams it sent.
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use realtimer_dtls::{
    Certificate, Dtls, DtlsConfig, DtlsError, DtlsEvent, DtlsState, Fingerprint, Role,
};
use realtimer_netsim::{Datagram, LinkConfig, Network, Node, NodeId};

/// A fixed wall-clock time for certificate validity: tests read no clock.
pub fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

pub fn cert() -> Certificate {
    Certificate::generate(wall()).expect("certificate")
}

/// One DTLS endpoint on a host.
pub struct DtlsNode {
    pub dtls: Dtls,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub events: Vec<(Instant, DtlsEvent)>,
    /// Every datagram this node sent, with its time.
    pub sent: Vec<(Instant, Bytes)>,
    /// Errors `handle_input` returned.
    pub input_errors: Vec<DtlsError>,
}

impl DtlsNode {
    pub fn new(dtls: Dtls, local: SocketAddr, peer: SocketAddr) -> Self {
        Self {
            dtls,
            local,
            peer,
            events: Vec::new(),
            sent: Vec::new(),
            input_errors: Vec::new(),
        }
    }

    fn collect(&mut self, now: Instant) {
        while let Some(e) = self.dtls.poll_event() {
            self.events.push((now, e));
        }
    }

    pub fn connected_at(&self) -> Option<Instant> {
        self.events
            .iter()
            .find_map(|(t, e)| matches!(e, DtlsEvent::Connected { .. }).then_some(*t))
    }

    pub fn failure(&self) -> Option<&DtlsError> {
        self.events.iter().find_map(|(_, e)| match e {
            DtlsEvent::Failed(err) => Some(err),
            _ => None,
        })
    }

    pub fn received(&self) -> Vec<Bytes> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                DtlsEvent::ApplicationData(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn connected_event(&self) -> Option<&DtlsEvent> {
        self.events
            .iter()
            .map(|(_, e)| e)
            .find(|e| matches!(e, DtlsEvent::Connected { .. }))
    }
}

impl Node for DtlsNode {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        if let Err(e) = self.dtls.handle_input(now, &datagram.contents) {
            self.input_errors.push(e);
        }
        self.collect(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.dtls.handle_timeout(now);
        self.collect(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Datagram> {
        self.collect(now);
        let contents = self.dtls.poll_transmit()?;
        self.sent.push((now, contents.clone()));
        Some(Datagram {
            source: self.local,
            destination: self.peer,
            contents,
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.dtls.poll_timeout()
    }
}

/// Two DTLS endpoints on the simulated network.
pub struct Pair {
    pub net: Network,
    pub client: NodeId,
    pub server: NodeId,
    pub start: Instant,
}

pub struct PairConfig {
    pub seed: u64,
    pub link: LinkConfig,
    pub client: DtlsConfig,
    pub server: DtlsConfig,
    /// What each side is told the other's fingerprint is (default: the truth).
    pub client_expects: Option<Fingerprint>,
    pub server_expects: Option<Fingerprint>,
}

impl PairConfig {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            link: LinkConfig::default().delay(Duration::from_millis(10)),
            client: DtlsConfig::new(cert()),
            server: DtlsConfig::new(cert()),
            client_expects: None,
            server_expects: None,
        }
    }
}

impl Pair {
    pub fn new(config: PairConfig) -> Self {
        let start = Instant::now();
        let mut net = Network::new(config.seed, start);
        let a_ip = "192.0.2.1".parse().unwrap();
        let b_ip = "198.51.100.1".parse().unwrap();
        let a = net.add_host(&[a_ip], None);
        let b = net.add_host(&[b_ip], None);
        net.set_uplink(a, config.link.clone());
        net.set_uplink(b, config.link);
        let a_addr = SocketAddr::new(a_ip, 5000);
        let b_addr = SocketAddr::new(b_ip, 6000);

        let client_fp = config.client.certificate.fingerprint().clone();
        let server_fp = config.server.certificate.fingerprint().clone();
        let server = Dtls::new(
            config.server,
            Role::Server,
            config.server_expects.unwrap_or(client_fp),
            start,
        )
        .unwrap();
        let client = Dtls::new(
            config.client,
            Role::Client,
            config.client_expects.unwrap_or(server_fp),
            start,
        )
        .unwrap();
        let server = net.attach(b, DtlsNode::new(server, b_addr, a_addr));
        let client = net.attach(a, DtlsNode::new(client, a_addr, b_addr));
        Self {
            net,
            client,
            server,
            start,
        }
    }

    pub fn client(&self) -> &DtlsNode {
        self.net.node::<DtlsNode>(self.client)
    }

    pub fn server(&self) -> &DtlsNode {
        self.net.node::<DtlsNode>(self.server)
    }

    pub fn client_mut(&mut self) -> &mut DtlsNode {
        self.net.node_mut::<DtlsNode>(self.client)
    }

    pub fn server_mut(&mut self) -> &mut DtlsNode {
        self.net.node_mut::<DtlsNode>(self.server)
    }

    /// Runs until both sides are connected (or either failed), at most
    /// `limit` of virtual time. Returns whether both connected.
    pub fn run_handshake(&mut self, limit: Duration) -> bool {
        let (c, s) = (self.client, self.server);
        let deadline = self.start + limit;
        self.net.run_until_cond(deadline, |net| {
            let (a, b) = (net.node::<DtlsNode>(c), net.node::<DtlsNode>(s));
            let done = |n: &DtlsNode| n.dtls.state() != DtlsState::Handshaking;
            done(a) && done(b)
        });
        self.client().dtls.state() == DtlsState::Connected
            && self.server().dtls.state() == DtlsState::Connected
    }
}
