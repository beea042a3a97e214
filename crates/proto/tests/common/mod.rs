//! Two `Rtc` cores as netsim nodes; candidates travel between them with a
//! signaling delay, descriptions are handed over by the test.
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use realtimer_netsim::{Datagram, LinkConfig, Network, Node, NodeId};
use realtimer_proto::{
    Certificate, ChannelData, ChannelRef, DataChannelInit, IceCandidateInit, MediaKind, MediaRef,
    PeerConnectionState, Rtc, RtcConfig, RtcEvent, SessionDescription,
};

pub struct RtcNode {
    pub rtc: Rtc,
    /// Leave events in the core (an application that stops reading).
    pub hold_events: bool,
    pub events: Vec<(Instant, RtcEvent)>,
    pub outbox: Vec<Option<IceCandidateInit>>,
    inbox: VecDeque<(Instant, Option<IceCandidateInit>)>,
}

impl RtcNode {
    pub fn new(now: Instant, config: RtcConfig, address: SocketAddr) -> Self {
        let cert = Certificate::generate(SystemTime::now()).unwrap();
        let mut rtc = Rtc::new(config, cert, now);
        rtc.add_local_address(now, address);
        RtcNode {
            rtc,
            hold_events: false,
            events: Vec::new(),
            outbox: Vec::new(),
            inbox: VecDeque::new(),
        }
    }

    pub fn collect(&mut self, now: Instant) {
        if self.hold_events {
            return;
        }
        while let Some(e) = self.rtc.poll_event() {
            if let RtcEvent::IceCandidate(c) = &e {
                self.outbox.push(c.clone());
            }
            self.events.push((now, e));
        }
    }

    pub fn connected(&self) -> bool {
        self.rtc.connection_state() == PeerConnectionState::Connected
    }

    pub fn opened(&self, r: ChannelRef) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, RtcEvent::ChannelOpen(x, _) if *x == r))
    }

    pub fn closed(&self, r: ChannelRef) -> bool {
        self.events
            .iter()
            .any(|(_, e)| matches!(e, RtcEvent::ChannelClosed(x) if *x == r))
    }

    pub fn incoming(&self) -> Vec<(ChannelRef, realtimer_proto::DataChannelInfo)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                RtcEvent::DataChannel(r, info) => Some((*r, info.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn messages(&self, r: ChannelRef) -> Vec<ChannelData> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                RtcEvent::ChannelMessage(x, d) if *x == r => Some(d.clone()),
                _ => None,
            })
            .collect()
    }
}

impl Node for RtcNode {
    fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        self.rtc
            .handle_receive(now, d.source, d.destination, &d.contents);
        self.collect(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        while self.inbox.front().is_some_and(|(at, _)| *at <= now) {
            let (_, c) = self.inbox.pop_front().unwrap();
            self.rtc.add_ice_candidate(now, c.as_ref()).unwrap();
        }
        self.rtc.handle_timeout(now);
        self.collect(now);
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        self.rtc.poll_transmit().map(|t| Datagram {
            source: t.source,
            destination: t.destination,
            contents: t.contents,
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let inbox = self.inbox.front().map(|(at, _)| *at);
        [inbox, self.rtc.poll_timeout()].into_iter().flatten().min()
    }
}

pub struct Pair {
    pub net: Network,
    pub a: NodeId,
    pub b: NodeId,
    pub signaling_delay: Duration,
}

impl Pair {
    /// Two hosts on a LAN, `link` on both uplinks.
    pub fn new(seed: u64, link: LinkConfig) -> Pair {
        Pair::with_config(seed, link, RtcConfig::default())
    }

    /// [`Pair::with_config`] where a sends a video track to b, negotiated
    /// and connected (SRTP keys in place): the pair, a's sending media
    /// and b's receiving media.
    pub fn video_call(
        seed: u64,
        link: LinkConfig,
        config: RtcConfig,
    ) -> (Pair, MediaRef, MediaRef) {
        let mut p = Pair::with_config(seed, link, config);
        let a = p.a;
        let sender = p.with(a, |rtc, _| {
            rtc.add_track(MediaKind::Video, "s", "cam").unwrap()
        });
        p.negotiate();
        let receiver = p
            .node(p.b)
            .events
            .iter()
            .find_map(|(_, e)| match e {
                RtcEvent::Track(r, _) => Some(*r),
                _ => None,
            })
            .expect("track event");
        assert!(p.run_until(Duration::from_secs(10), |x, y| x.connected()
            && y.connected()));
        (p, sender, receiver)
    }

    /// [`Pair::new`] with both cores on `config` (seeds from `seed`).
    pub fn with_config(seed: u64, link: LinkConfig, config: RtcConfig) -> Pair {
        let start = Instant::now();
        let mut net = Network::new(seed, start);
        let ha = net.add_host(&["10.0.0.1".parse().unwrap()], None);
        let hb = net.add_host(&["10.0.0.2".parse().unwrap()], None);
        net.set_uplink(ha, link.clone());
        net.set_uplink(hb, link);
        let node = |n: u64, address: &str| {
            let config = config.clone().with_seed(seed * 2 + n);
            RtcNode::new(start, config, address.parse().unwrap())
        };
        let a = node(1, "10.0.0.1:5000");
        let b = node(2, "10.0.0.2:5000");
        let a = net.attach(ha, a);
        let b = net.attach(hb, b);
        Pair {
            net,
            a,
            b,
            signaling_delay: Duration::from_millis(20),
        }
    }

    pub fn node(&self, id: NodeId) -> &RtcNode {
        self.net.node::<RtcNode>(id)
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut RtcNode {
        self.net.node_mut::<RtcNode>(id)
    }

    /// Runs `f` on a node's core at the current time and collects events.
    pub fn with<T>(&mut self, id: NodeId, f: impl FnOnce(&mut Rtc, Instant) -> T) -> T {
        let now = self.net.now();
        let node = self.node_mut(id);
        let out = f(&mut node.rtc, now);
        node.collect(now);
        out
    }

    /// a creates a channel, the two negotiate, and the channel opens on both
    /// sides; returns a's and b's handles of it.
    pub fn open_channel(
        &mut self,
        label: &str,
        init: &DataChannelInit,
    ) -> (ChannelRef, ChannelRef) {
        let (a, b) = (self.a, self.b);
        let ch = self.with(a, |rtc, now| {
            rtc.create_data_channel(now, label, init).unwrap()
        });
        self.negotiate();
        assert!(self.run_until(Duration::from_secs(10), |x, y| x.opened(ch)
            && !y.incoming().is_empty()));
        let remote = self.node(b).incoming()[0].0;
        (ch, remote)
    }

    /// a offers, b answers (descriptions handed over at once).
    pub fn negotiate(&mut self) {
        let (a, b) = (self.a, self.b);
        let offer = self.with(a, |rtc, _| rtc.create_offer().unwrap());
        self.with(a, |rtc, now| {
            rtc.set_local_description(now, offer.clone()).unwrap()
        });
        self.with(b, |rtc, now| {
            rtc.set_remote_description(now, offer).unwrap()
        });
        let answer = self.with(b, |rtc, _| rtc.create_answer().unwrap());
        self.with(b, |rtc, now| {
            rtc.set_local_description(now, answer.clone()).unwrap()
        });
        self.with(a, |rtc, now| {
            rtc.set_remote_description(now, SessionDescription::answer(answer.sdp))
                .unwrap()
        });
    }

    fn carry(net: &mut Network, from: NodeId, to: NodeId, delay: Duration) {
        if net.node::<RtcNode>(from).outbox.is_empty() {
            return;
        }
        let now = net.now();
        let out = std::mem::take(&mut net.node_mut::<RtcNode>(from).outbox);
        let node = net.node_mut::<RtcNode>(to);
        for c in out {
            node.inbox.push_back((now + delay, c));
        }
    }

    pub fn run_until(
        &mut self,
        limit: Duration,
        mut cond: impl FnMut(&RtcNode, &RtcNode) -> bool,
    ) -> bool {
        let deadline = self.net.now() + limit;
        let (a, b, delay) = (self.a, self.b, self.signaling_delay);
        self.net.run_until_cond(deadline, |net| {
            Self::carry(net, a, b, delay);
            Self::carry(net, b, a, delay);
            cond(net.node::<RtcNode>(a), net.node::<RtcNode>(b))
        })
    }
}
