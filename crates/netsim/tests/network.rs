//! The event loop: stepping, timeouts, conditions, and misuse messages.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use realtimer_netsim::{Datagram, LinkConfig, Mailbox, Network, Node};

#[allow(clippy::disallowed_methods, reason = "the origin of virtual time")]
fn origin() -> Instant {
    Instant::now()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Echoes every datagram back, and counts its timer ticks every `period`.
struct Echo {
    period: Duration,
    next_tick: Instant,
    ticks: Vec<Instant>,
    replies: Vec<Datagram>,
}

impl Echo {
    fn new(start: Instant, period: Duration) -> Self {
        Echo {
            period,
            next_tick: start + period,
            ticks: Vec::new(),
            replies: Vec::new(),
        }
    }
}

impl Node for Echo {
    fn handle_datagram(&mut self, _now: Instant, datagram: Datagram) {
        self.replies.push(Datagram {
            source: datagram.destination,
            destination: datagram.source,
            contents: datagram.contents,
        });
    }
    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_tick {
            self.ticks.push(now);
            self.next_tick = now + self.period;
        }
    }
    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        self.replies.pop()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_tick)
    }
}

#[test]
fn timeouts_fire_on_virtual_time_and_run_until_cond_stops_early() {
    let start = origin();
    let mut net = Network::new(1, start);
    let a = net.add_host(&[ip("192.0.2.1")], None);
    let b = net.add_host(&[ip("192.0.2.2")], None);
    net.set_uplink(a, LinkConfig::default().delay(Duration::from_millis(50)));
    let echo = net.attach(a, Echo::new(start, Duration::from_secs(1)));
    let mailbox = net.attach(b, Mailbox::bind(9));

    net.run_for(Duration::from_millis(3500));
    let ticks = &net.node::<Echo>(echo).ticks;
    assert_eq!(
        ticks,
        &[1, 2, 3].map(|s| start + Duration::from_secs(s)).to_vec()
    );
    assert_eq!(net.now(), start + Duration::from_millis(3500));

    net.node_mut::<Mailbox>(mailbox)
        .send_to(addr("192.0.2.1:7"), &b"echo?"[..]);
    let deadline = net.now() + Duration::from_secs(10);
    let answered = net.run_until_cond(deadline, |net| {
        !net.node::<Mailbox>(mailbox).received().is_empty()
    });
    assert!(answered);
    // 50 ms in over A's uplink, 50 ms back out.
    assert_eq!(net.now(), start + Duration::from_millis(3600));
    assert_eq!(
        net.node::<Mailbox>(mailbox).received()[0].datagram.source,
        addr("192.0.2.1:7")
    );

    let never = net.run_until_cond(net.now() + Duration::from_secs(2), |_| false);
    assert!(!never);
    assert_eq!(net.now(), start + Duration::from_millis(5600));
}

#[test]
fn step_says_when_nothing_is_left() {
    let start = origin();
    let mut net = Network::new(1, start);
    assert!(!net.step());
    let a = net.add_host(&[ip("192.0.2.1")], None);
    let b = net.add_host(&[ip("192.0.2.2")], None);
    net.set_uplink(b, LinkConfig::default().delay(Duration::from_millis(7)));
    let a = net.attach(a, Mailbox::bind(1));
    net.attach(b, Mailbox::bind(2));
    net.node_mut::<Mailbox>(a)
        .send_to(addr("192.0.2.2:2"), &b"x"[..]);
    assert_eq!(net.next_event_time(), Some(start));
    let mut steps = 0;
    while net.step() {
        steps += 1;
    }
    assert!(steps >= 2);
    assert_eq!(net.now(), start + Duration::from_millis(7));
    assert_eq!(net.next_event_time(), None);
    assert_eq!(net.stats().delivered, 1);
}

#[test]
fn same_time_arrivals_keep_their_send_order() {
    let mut net = Network::new(1, origin());
    let a = net.add_host(&[ip("192.0.2.1")], None);
    let b = net.add_host(&[ip("192.0.2.2")], None);
    let a = net.attach(a, Mailbox::bind(1));
    let b = net.attach(b, Mailbox::bind(2));
    for i in 0..100u8 {
        net.node_mut::<Mailbox>(a)
            .send_to(addr("192.0.2.2:2"), vec![i]);
    }
    net.run_for(Duration::from_millis(1));
    let order: Vec<u8> = net
        .node::<Mailbox>(b)
        .received()
        .iter()
        .map(|r| r.datagram.contents[0])
        .collect();
    assert_eq!(order, (0..100).collect::<Vec<_>>());
}

#[test]
fn a_host_without_a_node_drops_and_counts() {
    let mut net = Network::new(1, origin());
    let a = net.add_host(&[ip("192.0.2.1")], None);
    net.add_host(&[ip("192.0.2.2")], None);
    let a = net.attach(a, Mailbox::bind(1));
    net.node_mut::<Mailbox>(a)
        .send_to(addr("192.0.2.2:2"), &b"x"[..]);
    net.run_for(Duration::from_millis(1));
    assert_eq!(net.stats().dropped.no_node, 1);
}

#[test]
#[should_panic(expected = "Mailbox, not a network::Echo")]
fn asking_for_the_wrong_node_type_says_what_it_is() {
    let mut net = Network::new(1, origin());
    let a = net.add_host(&[ip("192.0.2.1")], None);
    let a = net.attach(a, Mailbox::bind(1));
    net.node::<Echo>(a);
}

#[test]
#[should_panic(expected = "one node per host")]
fn one_node_per_host() {
    let mut net = Network::new(1, origin());
    let a = net.add_host(&[ip("192.0.2.1")], None);
    net.attach(a, Mailbox::bind(1));
    net.attach(a, Mailbox::bind(2));
}

#[test]
#[should_panic(expected = "already a public address")]
fn public_addresses_are_unique() {
    let mut net = Network::new(1, origin());
    net.add_host(&[ip("192.0.2.1")], None);
    net.add_host(&[ip("192.0.2.1")], None);
}

/// Two echo nodes bouncing one datagram at zero delay never let time move:
/// the network says so instead of hanging.
#[test]
#[should_panic(expected = "livelock")]
fn a_zero_delay_ping_pong_is_reported() {
    let start = origin();
    let mut net = Network::new(1, start);
    let a = net.add_host(&[ip("192.0.2.1")], None);
    let b = net.add_host(&[ip("192.0.2.2")], None);
    let a = net.attach(a, Echo::new(start, Duration::from_secs(3600)));
    net.attach(b, Echo::new(start, Duration::from_secs(3600)));
    net.node_mut::<Echo>(a).replies.push(Datagram {
        source: addr("192.0.2.1:1"),
        destination: addr("192.0.2.2:2"),
        contents: bytes::Bytes::from_static(b"ball"),
    });
    net.run_for(Duration::from_secs(1));
}
