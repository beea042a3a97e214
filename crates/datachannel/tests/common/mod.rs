//! DTLS + SCTP + DCEP on the simulated network: each peer is a netsim node
//! running a `Dtls` connection and the `DataChannels` over it.
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use realtimer_datachannel::{ChannelInit, DataChannelEvent, DataChannels, DtlsRole, SctpConfig};
use realtimer_dtls::{Certificate, Dtls, DtlsConfig, DtlsEvent, Role};
use realtimer_netsim::{Datagram, LinkConfig, Network, Node, NodeId};

pub struct Peer {
    pub dtls: Dtls,
    pub channels: DataChannels,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub events: Vec<(Instant, DataChannelEvent)>,
}

impl Peer {
    fn pump_sctp(&mut self) {
        while let Some(packet) = self.channels.poll_transmit() {
            // A full DTLS queue drops the packet; SCTP retransmits it.
            let _ = self.dtls.send(&packet);
        }
    }

    fn collect(&mut self, now: Instant) {
        while let Some(event) = self.dtls.poll_event() {
            match event {
                DtlsEvent::Connected { .. } => self.channels.connect(now),
                DtlsEvent::ApplicationData(data) => self.channels.handle_packet(now, &data),
                _ => {}
            }
        }
        while let Some(e) = self.channels.poll_event() {
            self.events.push((now, e));
        }
        self.pump_sctp();
    }

    pub fn messages(&self, channel: u16) -> Vec<realtimer_datachannel::ChannelData> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                DataChannelEvent::Message { channel: c, data } if *c == channel => {
                    Some(data.clone())
                }
                _ => None,
            })
            .collect()
    }

    pub fn saw(&self, wanted: &DataChannelEvent) -> bool {
        self.events.iter().any(|(_, e)| e == wanted)
    }
}

impl Node for Peer {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        let _ = self.dtls.handle_input(now, &datagram.contents);
        self.collect(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.dtls.handle_timeout(now);
        self.channels.handle_timeout(now);
        self.collect(now);
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        self.pump_sctp();
        self.dtls.poll_transmit().map(|contents| Datagram {
            source: self.local,
            destination: self.remote,
            contents,
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [self.dtls.poll_timeout(), self.channels.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}

pub struct Link {
    pub net: Network,
    pub client: NodeId,
    pub server: NodeId,
}

impl Link {
    /// A DTLS client and server; `link` on the client's uplink, both ways.
    pub fn new(seed: u64, link: LinkConfig) -> Link {
        let start = Instant::now();
        let mut net = Network::new(seed, start);
        let hc = net.add_host(&["192.0.2.1".parse().unwrap()], None);
        let hs = net.add_host(&["192.0.2.2".parse().unwrap()], None);
        net.set_uplink(hc, link);
        net.set_uplink(hs, LinkConfig::default().delay(Duration::from_millis(1)));
        let (client, server) = peers(seed, start);
        let client = net.attach(hc, client);
        let server = net.attach(hs, server);
        Link {
            net,
            client,
            server,
        }
    }

    pub fn peer(&self, id: NodeId) -> &Peer {
        self.net.node::<Peer>(id)
    }

    pub fn peer_mut(&mut self, id: NodeId) -> &mut Peer {
        self.net.node_mut::<Peer>(id)
    }

    pub fn run_until(
        &mut self,
        limit: Duration,
        mut cond: impl FnMut(&Peer, &Peer) -> bool,
    ) -> bool {
        let deadline = self.net.now() + limit;
        let (c, s) = (self.client, self.server);
        self.net.run_until_cond(deadline, |net| {
            cond(net.node::<Peer>(c), net.node::<Peer>(s))
        })
    }

    pub fn connect(&mut self) {
        assert!(
            self.run_until(Duration::from_secs(120), |c, s| {
                c.saw(&DataChannelEvent::Connected) && s.saw(&DataChannelEvent::Connected)
            }),
            "DTLS and SCTP did not come up"
        );
    }

    /// The client opens a default (reliable, ordered) channel; returns its
    /// id once the client saw it open, within `wait`.
    pub fn open_channel(&mut self, label: &str, wait: Duration) -> u16 {
        let now = self.net.now();
        let client = self.client;
        let id = self
            .peer_mut(client)
            .channels
            .create_channel(now, label, &ChannelInit::default())
            .unwrap();
        assert!(
            self.run_until(wait, |c, _| c.saw(&DataChannelEvent::Opened(id))),
            "channel {label} did not open"
        );
        id
    }
}

/// A DTLS client and server peer, ready to run from `start`.
pub fn peers(seed: u64, start: Instant) -> (Peer, Peer) {
    peers_with(seed, start, true)
}

/// [`peers`], choosing whose record layer protects application data
/// (`DtlsConfig::own_record_layer`).
pub fn peers_with(seed: u64, start: Instant, own_record_layer: bool) -> (Peer, Peer) {
    let client_cert = Certificate::generate(SystemTime::now()).unwrap();
    let server_cert = Certificate::generate(SystemTime::now()).unwrap();
    let (cf, sf) = (
        client_cert.fingerprint().clone(),
        server_cert.fingerprint().clone(),
    );
    let c_addr: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let s_addr: SocketAddr = "192.0.2.2:4000".parse().unwrap();
    let sctp = |seed| SctpConfig {
        seed,
        ..SctpConfig::default()
    };
    let dtls_config = |cert| {
        DtlsConfig::new(cert)
            .with_handshake_timeout(Duration::from_secs(120))
            .with_own_record_layer(own_record_layer)
    };
    let client = Peer {
        dtls: Dtls::new(dtls_config(client_cert), Role::Client, sf, start).unwrap(),
        channels: DataChannels::new(sctp(seed * 2 + 1), DtlsRole::Client, start),
        local: c_addr,
        remote: s_addr,
        events: Vec::new(),
    };
    let server = Peer {
        dtls: Dtls::new(dtls_config(server_cert), Role::Server, cf, start).unwrap(),
        channels: DataChannels::new(sctp(seed * 2 + 2), DtlsRole::Server, start),
        local: s_addr,
        remote: c_addr,
        events: Vec::new(),
    };
    (client, server)
}
