//! Link models: delay, jitter, loss, bursts, reordering, duplication, MTU,
//! bandwidth and queue, firewall, and determinism from the seed.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use realtimer_netsim::{
    seed_from_env_or, Direction, DropCause, GilbertElliott, LinkConfig, Loss, Mailbox, NatConfig,
    Network, NodeId, TraceEvent,
};

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

const B: &str = "198.51.100.1:6000";

/// Two public hosts, A (192.0.2.1) sending to B (198.51.100.1), with
/// `link` on A's outbound direction.
fn pair(seed: u64, link: LinkConfig) -> (Network, NodeId, NodeId) {
    let mut net = Network::new(seed, origin());
    let a = net.add_host(&[ip("192.0.2.1"), ip("2001:db8::1")], None);
    let b = net.add_host(&[ip("198.51.100.1"), ip("2001:db8::2")], None);
    net.set_link(a, Direction::Outbound, link);
    let a = net.attach(a, Mailbox::bind(5000));
    let b = net.attach(b, Mailbox::bind(6000));
    (net, a, b)
}

/// Sends `count` datagrams carrying their index (4 bytes, then padding to
/// `len`), one every `interval`.
fn send_numbered(net: &mut Network, from: NodeId, count: u32, interval: Duration, len: usize) {
    let start = net.now();
    let sender = net.node_mut::<Mailbox>(from);
    for i in 0..count {
        let mut payload = vec![0u8; len.max(4)];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        sender.send_at(start + interval * i, addr(B), payload);
    }
}

fn received_numbers(net: &Network, at: NodeId) -> Vec<u32> {
    net.node::<Mailbox>(at)
        .received()
        .iter()
        .map(|r| u32::from_be_bytes(r.datagram.contents[..4].try_into().unwrap()))
        .collect()
}

#[test]
fn delay_is_exact_and_adds_up_per_direction() {
    let start = origin();
    let mut net = Network::new(1, start);
    let a = net.add_host(&[ip("192.0.2.1")], None);
    let b = net.add_host(&[ip("198.51.100.1")], None);
    net.set_link(
        a,
        Direction::Outbound,
        LinkConfig::default().delay(Duration::from_millis(30)),
    );
    net.set_link(
        a,
        Direction::Inbound,
        LinkConfig::default().delay(Duration::from_millis(1)),
    );
    net.set_uplink(b, LinkConfig::default().delay(Duration::from_millis(5)));
    let na = net.attach(a, Mailbox::bind(5000));
    let nb = net.attach(b, Mailbox::bind(6000));

    net.node_mut::<Mailbox>(na).send_to(addr(B), &b"ping"[..]);
    net.run_for(Duration::from_secs(1));
    let got = net.node_mut::<Mailbox>(nb).take_received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].at, start + Duration::from_millis(35));
    assert_eq!(got[0].datagram.source, addr("192.0.2.1:5000"));
    assert_eq!(got[0].datagram.destination, addr(B));

    let at = net.now();
    net.node_mut::<Mailbox>(nb)
        .send_to(addr("192.0.2.1:5000"), &b"pong"[..]);
    net.run_for(Duration::from_secs(1));
    let got = net.node::<Mailbox>(na).received();
    assert_eq!(got[0].at, at + Duration::from_millis(6));
    assert_eq!(net.stats().delivered, 2);
    assert_eq!(net.now(), at + Duration::from_secs(1));
}

#[test]
fn ipv6_works_and_an_unspecified_source_takes_the_right_family() {
    let (mut net, a, b) = pair(1, LinkConfig::default());
    net.node_mut::<Mailbox>(a)
        .send_to(addr("[2001:db8::2]:6000"), &b"v6"[..]);
    net.run_for(Duration::from_millis(1));
    let got = net.node::<Mailbox>(b).received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].datagram.source, addr("[2001:db8::1]:5000"));
}

#[test]
fn jitter_alone_keeps_order() {
    let link = LinkConfig::default()
        .delay(Duration::from_millis(10))
        .jitter(Duration::from_millis(20));
    let (mut net, a, b) = pair(seed_from_env_or(2), link);
    let start = net.now();
    send_numbered(&mut net, a, 1000, Duration::from_millis(1), 100);
    net.run_for(Duration::from_secs(5));
    assert_eq!(received_numbers(&net, b), (0..1000).collect::<Vec<_>>());
    let mut delays = Vec::new();
    for (i, r) in net.node::<Mailbox>(b).received().iter().enumerate() {
        let sent = start + Duration::from_millis(i as u64);
        let delay = r.at - sent;
        assert!(delay >= Duration::from_millis(10), "{delay:?}");
        delays.push(delay);
    }
    delays.sort();
    delays.dedup();
    assert!(delays.len() > 100, "jitter varies the delay");
}

#[test]
fn independent_loss_is_near_its_rate() {
    let link = LinkConfig::default().loss(Loss::Independent(0.1));
    let (mut net, a, b) = pair(seed_from_env_or(3), link);
    send_numbered(&mut net, a, 10_000, Duration::ZERO, 20);
    net.run_for(Duration::from_secs(1));
    let delivered = net.node::<Mailbox>(b).received().len() as u64;
    let stats = net.stats();
    assert_eq!(stats.sent, 10_000);
    assert_eq!(stats.dropped.loss + delivered, 10_000);
    assert_eq!(stats.dropped.get(DropCause::Loss), stats.dropped.total());
    // 3 standard deviations are 90 datagrams.
    assert!((850..=1150).contains(&stats.dropped.loss), "{stats:?}");
}

/// The mean length of runs of consecutive missing numbers.
fn mean_burst(received: &[u32], count: u32) -> (f64, usize) {
    let mut bursts = Vec::new();
    let mut expected = 0;
    for &n in received.iter().chain(std::iter::once(&count)) {
        if n > expected {
            bursts.push(n - expected);
        }
        expected = n + 1;
    }
    let total: u32 = bursts.iter().sum();
    (f64::from(total) / bursts.len() as f64, bursts.len())
}

#[test]
fn gilbert_elliott_loses_in_bursts_of_about_one_over_r() {
    let (p, r) = (0.02, 0.25);
    let link = LinkConfig::default().loss(Loss::GilbertElliott(GilbertElliott::new(p, r)));
    let (mut net, a, b) = pair(seed_from_env_or(4), link);
    let count = 50_000;
    send_numbered(&mut net, a, count, Duration::ZERO, 20);
    net.run_for(Duration::from_secs(1));
    let received = received_numbers(&net, b);
    let (mean, bursts) = mean_burst(&received, count);
    assert!(bursts > 500, "{bursts} bursts");
    assert!(
        (3.5..=4.5).contains(&mean),
        "mean burst {mean}, expected {}",
        1.0 / r
    );
    let rate = 1.0 - received.len() as f64 / f64::from(count);
    let expected = p / (p + r);
    assert!(
        (rate - expected).abs() < 0.015,
        "loss rate {rate}, expected {expected}"
    );

    // Independent loss at the same rate hardly makes bursts.
    let link = LinkConfig::default().loss(Loss::Independent(expected));
    let (mut net, a, b) = pair(seed_from_env_or(4), link);
    send_numbered(&mut net, a, count, Duration::ZERO, 20);
    net.run_for(Duration::from_secs(1));
    let (mean, _) = mean_burst(&received_numbers(&net, b), count);
    assert!(mean < 1.2, "independent mean burst {mean}");
}

#[test]
fn reordering_lets_later_datagrams_overtake() {
    let link = LinkConfig::default()
        .delay(Duration::from_millis(10))
        .reorder(0.1, Duration::from_millis(20));
    let (mut net, a, b) = pair(seed_from_env_or(5), link);
    send_numbered(&mut net, a, 1000, Duration::from_millis(1), 20);
    net.run_for(Duration::from_secs(5));
    let received = received_numbers(&net, b);
    assert_eq!(received.len(), 1000, "reordering loses nothing");
    // A datagram is late when a higher number arrived before it.
    let mut highest = 0;
    let mut late = 0;
    for &n in &received {
        if n < highest {
            late += 1;
        }
        highest = highest.max(n);
    }
    assert!((60..=140).contains(&late), "{late} late datagrams");
}

#[test]
fn duplication_delivers_some_datagrams_twice() {
    let link = LinkConfig::default().duplicate(0.2);
    let (mut net, a, b) = pair(seed_from_env_or(6), link);
    send_numbered(&mut net, a, 1000, Duration::from_millis(1), 20);
    net.run_for(Duration::from_secs(5));
    let mut received = received_numbers(&net, b);
    let duplicated = net.stats().duplicated;
    assert_eq!(received.len() as u64, 1000 + duplicated);
    assert!((140..=260).contains(&duplicated), "{duplicated}");
    received.dedup();
    assert_eq!(
        received,
        (0..1000).collect::<Vec<_>>(),
        "copies arrive together"
    );
}

#[test]
fn mtu_drops_bigger_ip_packets() {
    let (mut net, a, b) = pair(7, LinkConfig::default().mtu(1280));
    let sender = net.node_mut::<Mailbox>(a);
    sender.send_to(addr(B), vec![1u8; 1280 - 28]);
    sender.send_to(addr(B), vec![2u8; 1280 - 28 + 1]);
    sender.send_to(addr("[2001:db8::2]:6000"), vec![3u8; 1280 - 48]);
    sender.send_to(addr("[2001:db8::2]:6000"), vec![4u8; 1280 - 48 + 1]);
    net.run_for(Duration::from_millis(1));
    let firsts: Vec<u8> = net
        .node::<Mailbox>(b)
        .received()
        .iter()
        .map(|r| r.datagram.contents[0])
        .collect();
    assert_eq!(firsts, vec![1, 3]);
    assert_eq!(net.stats().dropped.mtu, 2);
}

#[test]
fn bandwidth_limits_throughput_and_the_queue_drops_tail() {
    // 1 Mbit/s; 1250-byte IP packets take 10 ms each; the queue holds 10.
    let link = LinkConfig::default()
        .delay(Duration::from_millis(5))
        .bandwidth(1_000_000, 10 * 1250);
    let (mut net, a, b) = pair(8, link);
    let start = net.now();
    // Offer 2 Mbit/s for 5 s.
    send_numbered(&mut net, a, 1000, Duration::from_millis(5), 1250 - 28);
    net.run_for(Duration::from_secs(10));
    let received = net.node::<Mailbox>(b).received();
    let stats = net.stats();
    assert_eq!(received.len() as u64 + stats.dropped.queue, 1000);
    assert!((495..=515).contains(&received.len()), "{}", received.len());
    assert_eq!(received[0].at, start + Duration::from_millis(15));
    for pair in received.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(10));
    }
    let elapsed = received.last().unwrap().at - received[0].at;
    let bits = (received.len() as u64 - 1) * 1250 * 8;
    let rate = bits as f64 / elapsed.as_secs_f64();
    assert!((rate - 1e6).abs() < 1e4, "{rate} bit/s");

    // A burst bigger than the queue: the first 10 fit, the rest drop.
    let (mut net, a, b) = pair(8, LinkConfig::default().bandwidth(1_000_000, 10 * 1250));
    send_numbered(&mut net, a, 30, Duration::ZERO, 1250 - 28);
    net.run_for(Duration::from_secs(1));
    assert_eq!(received_numbers(&net, b), (0..10).collect::<Vec<_>>());
    assert_eq!(net.stats().dropped.queue, 20);
}

#[test]
fn firewall_drops_udp_both_ways() {
    let (mut net, a, b) = pair(9, LinkConfig::default());
    let host_b = net.node_host(b);
    net.set_firewall_drop_udp(host_b, true);
    net.node_mut::<Mailbox>(a).send_to(addr(B), &b"in"[..]);
    net.node_mut::<Mailbox>(b)
        .send_to(addr("192.0.2.1:5000"), &b"out"[..]);
    net.run_for(Duration::from_secs(1));
    assert!(net.node::<Mailbox>(a).received().is_empty());
    assert!(net.node::<Mailbox>(b).received().is_empty());
    assert_eq!(net.stats().dropped.firewall, 2);

    net.set_firewall_drop_udp(host_b, false);
    net.node_mut::<Mailbox>(a).send_to(addr(B), &b"in"[..]);
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.node::<Mailbox>(b).received().len(), 1);
}

#[test]
fn a_node_may_not_send_from_another_hosts_address() {
    let (mut net, a, _b) = pair(10, LinkConfig::default());
    net.node_mut::<Mailbox>(a).send(realtimer_netsim::Datagram {
        source: addr("203.0.113.9:1"),
        destination: addr(B),
        contents: bytes::Bytes::from_static(b"spoof"),
    });
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.stats().dropped.bad_source, 1);
    net.node_mut::<Mailbox>(a)
        .send_to(addr("203.0.113.9:1"), &b"nowhere"[..]);
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.stats().dropped.no_route, 1);
}

/// A lossy, jittery, duplicating, rate-limited path through a NAT; returns
/// the stats, the trace and B's receive times.
fn busy_run(
    seed: u64,
) -> (
    realtimer_netsim::NetStats,
    Vec<realtimer_netsim::TraceEntry>,
    Vec<Duration>,
) {
    let start = origin();
    let mut net = Network::new(seed, start);
    net.record_trace(true);
    let nat = net.add_nat(NatConfig::symmetric(ip("203.0.113.1")));
    let a = net.add_host(&[ip("10.0.0.2")], Some(nat));
    let b = net.add_host(&[ip("198.51.100.1")], None);
    net.set_uplink(
        a,
        LinkConfig::default()
            .delay(Duration::from_millis(10))
            .jitter(Duration::from_millis(5))
            .loss(Loss::GilbertElliott(GilbertElliott::new(0.05, 0.3)))
            .reorder(0.05, Duration::from_millis(7))
            .duplicate(0.05),
    );
    net.set_uplink(nat, LinkConfig::default().bandwidth(2_000_000, 20_000));
    net.set_uplink(b, LinkConfig::default().loss(Loss::Independent(0.05)));
    let a = net.attach(a, Mailbox::bind(5000));
    let b = net.attach(b, Mailbox::bind(6000));
    send_numbered(&mut net, a, 2000, Duration::from_micros(500), 300);
    net.run_for(Duration::from_secs(5));
    let times = net
        .node::<Mailbox>(b)
        .received()
        .iter()
        .map(|r| r.at - start)
        .collect();
    (*net.stats(), net.trace().to_vec(), times)
}

#[test]
fn a_seed_replays_the_same_run_and_another_seed_does_not() {
    let seed = seed_from_env_or(11);
    let (stats, trace, times) = busy_run(seed);
    assert!(stats.dropped.loss > 0 && stats.dropped.queue > 0 && stats.duplicated > 0);
    assert_eq!(
        trace
            .iter()
            .filter(|e| e.event == TraceEvent::Delivered)
            .count(),
        times.len()
    );
    let again = busy_run(seed);
    assert_eq!(stats, again.0);
    // Instants from two origins differ; compare them relative to each one.
    let relative = |t: &[realtimer_netsim::TraceEntry], origin: Instant| {
        t.iter()
            .map(|e| (e.at - origin, e.event, e.source, e.destination, e.len))
            .collect::<Vec<_>>()
    };
    let first_origin = trace[0].at;
    let again_origin = again.1[0].at;
    assert_eq!(
        relative(&trace, first_origin),
        relative(&again.1, again_origin)
    );
    assert_eq!(times, again.2);

    let other = busy_run(seed.wrapping_add(1));
    assert_ne!(times, other.2, "another seed loses other datagrams");
}
