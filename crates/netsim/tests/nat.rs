//! NAT behaviours (RFC 4787) seen by a client that asks two STUN servers
//! (`realtimer_stun::BindingServer`) for its mapped address.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_netsim::{
    Datagram, LinkConfig, Mailbox, NatBehavior, NatConfig, NatId, Network, Node, NodeId,
    PortAllocation,
};
use realtimer_stun::attributes::XorMappedAddress;
use realtimer_stun::{
    BindingOutcome, BindingServer, Class, Message, MessageEncoder, Method, TransactionId,
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

/// `BindingServer` as a node: it answers on whatever address and port a
/// request came to.
#[derive(Default)]
struct StunServer {
    server: BindingServer,
    out: Vec<u8>,
    replies: VecDeque<Datagram>,
}

impl Node for StunServer {
    fn handle_datagram(&mut self, _now: Instant, datagram: Datagram) {
        if self
            .server
            .handle(&datagram.contents, datagram.source, &mut self.out)
            == BindingOutcome::Respond
        {
            self.replies.push_back(Datagram {
                source: datagram.destination,
                destination: datagram.source,
                contents: Bytes::copy_from_slice(&self.out),
            });
        }
    }
    fn handle_timeout(&mut self, _now: Instant) {}
    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        self.replies.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

/// The client: a `Mailbox`, plus Binding requests and their answers.
fn binding_request(id: u8) -> Vec<u8> {
    let mut buf = Vec::new();
    MessageEncoder::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId::new([id; 12]),
    )
    .finish();
    buf
}

/// The mapped address in the Binding response with transaction id `id`.
fn mapped(net: &Network, client: NodeId, id: u8) -> Option<SocketAddr> {
    net.node::<Mailbox>(client).received().iter().find_map(|r| {
        let message = Message::decode(&r.datagram.contents).ok()?;
        if message.class() != Class::SuccessResponse
            || message.transaction_id() != TransactionId::new([id; 12])
        {
            return None;
        }
        message.get::<XorMappedAddress>().ok()?.map(|x| x.0)
    })
}

const S1: &str = "192.0.2.1";
const S2: &str = "198.51.100.1";
const NAT_IP: &str = "203.0.113.1";
const PEER: &str = "192.0.2.99:7000";

struct Setup {
    net: Network,
    nat: NatId,
    client: NodeId,
    peer: NodeId,
}

/// A client at 10.0.0.2:5000 behind a NAT, STUN servers on S1 and S2, and
/// a public peer (a `Mailbox` at 192.0.2.99:7000, the host is also reachable
/// on other ports).
fn setup(config: NatConfig) -> Setup {
    let mut net = Network::new(realtimer_netsim::seed_from_env_or(20), origin());
    let nat = net.add_nat(config);
    let client = net.add_host(&[ip("10.0.0.2")], Some(nat));
    let s1 = net.add_host(&[ip(S1)], None);
    let s2 = net.add_host(&[ip(S2)], None);
    let peer = net.add_host(&[ip("192.0.2.99")], None);
    for host in [client, s1, s2, peer] {
        net.set_uplink(host, LinkConfig::default().delay(Duration::from_millis(5)));
    }
    net.set_uplink(nat, LinkConfig::default().delay(Duration::from_millis(10)));
    let client = net.attach(client, Mailbox::bind(5000));
    net.attach(s1, StunServer::default());
    net.attach(s2, StunServer::default());
    let peer = net.attach(peer, Mailbox::bind(7000));
    Setup {
        net,
        nat,
        client,
        peer,
    }
}

/// The client asks S1:3478 (id 1), S1:3479 (id 2) and S2:3478 (id 3).
fn three_mappings(config: NatConfig) -> [SocketAddr; 3] {
    let mut s = setup(config);
    let client = s.net.node_mut::<Mailbox>(s.client);
    client.send_to(addr(&format!("{S1}:3478")), binding_request(1));
    client.send_to(addr(&format!("{S1}:3479")), binding_request(2));
    client.send_to(addr(&format!("{S2}:3478")), binding_request(3));
    s.net.run_for(Duration::from_secs(1));
    [1, 2, 3].map(|id| mapped(&s.net, s.client, id).expect("a Binding response"))
}

#[test]
fn endpoint_independent_mapping_gives_one_address_to_all_servers() {
    let [a, b, c] = three_mappings(NatConfig::new(ip(NAT_IP)));
    assert_eq!(a.ip(), ip(NAT_IP));
    assert_eq!((a, a), (b, c));
}

#[test]
fn address_dependent_mapping_changes_with_the_server_ip() {
    let config = NatConfig::new(ip(NAT_IP)).mapping(NatBehavior::AddressDependent);
    let [a, b, c] = three_mappings(config);
    assert_eq!(a, b);
    assert_ne!(a.port(), c.port());
}

#[test]
fn symmetric_mapping_changes_with_the_server_port() {
    let [a, b, c] = three_mappings(NatConfig::symmetric(ip(NAT_IP)));
    assert_ne!(a.port(), b.port());
    assert_ne!(a.port(), c.port());
    assert_ne!(b.port(), c.port());
    assert!([a, b, c].iter().all(|m| m.ip() == ip(NAT_IP)));
}

#[test]
fn random_port_allocation_is_reproducible_from_the_seed() {
    let config = || NatConfig::symmetric(ip(NAT_IP)).port_allocation(PortAllocation::Random);
    let first = three_mappings(config());
    assert_eq!(first, three_mappings(config()));
    let sequential = three_mappings(NatConfig::symmetric(ip(NAT_IP)));
    assert_eq!(
        sequential.map(|m| m.port()),
        [49152, 49153, 49154],
        "sequential from the start of the range"
    );
}

/// The client learns its mapping from S1, then the peer sends to it
/// unsolicited, then the client sends to the peer, then the peer (from
/// 7000 and from another port) sends again. Returns what the client got
/// from the peer, as (peer port, payload).
fn unsolicited_then_solicited(config: NatConfig) -> (Vec<(u16, Vec<u8>)>, Setup) {
    let mut s = setup(config);
    s.net
        .node_mut::<Mailbox>(s.client)
        .send_to(addr(&format!("{S1}:3478")), binding_request(1));
    s.net.run_for(Duration::from_secs(1));
    let mapped = mapped(&s.net, s.client, 1).unwrap();

    s.net
        .node_mut::<Mailbox>(s.peer)
        .send_to(mapped, &b"unsolicited"[..]);
    s.net.run_for(Duration::from_secs(1));
    s.net
        .node_mut::<Mailbox>(s.client)
        .send_to(addr(PEER), &b"hello peer"[..]);
    s.net.run_for(Duration::from_secs(1));
    let peer = s.net.node_mut::<Mailbox>(s.peer);
    peer.send_to(mapped, &b"reply"[..]);
    peer.send(Datagram {
        source: addr("192.0.2.99:7001"),
        destination: mapped,
        contents: Bytes::from_static(b"other port"),
    });
    s.net.run_for(Duration::from_secs(1));
    let got = s
        .net
        .node::<Mailbox>(s.client)
        .received()
        .iter()
        .filter(|r| r.datagram.source.ip() == ip("192.0.2.99"))
        .map(|r| (r.datagram.source.port(), r.datagram.contents.to_vec()))
        .collect();
    (got, s)
}

#[test]
fn endpoint_independent_filtering_lets_anyone_in() {
    let (got, s) = unsolicited_then_solicited(NatConfig::full_cone(ip(NAT_IP)));
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(s.net.stats().dropped.total(), 0);
}

#[test]
fn address_dependent_filtering_needs_a_send_to_the_address_first() {
    let (got, s) = unsolicited_then_solicited(NatConfig::restricted_cone(ip(NAT_IP)));
    assert_eq!(
        got,
        vec![(7000, b"reply".to_vec()), (7001, b"other port".to_vec())]
    );
    assert_eq!(s.net.stats().dropped.nat_filtering, 1);
}

#[test]
fn address_and_port_dependent_filtering_needs_a_send_to_the_port_first() {
    let (got, s) = unsolicited_then_solicited(NatConfig::port_restricted_cone(ip(NAT_IP)));
    assert_eq!(got, vec![(7000, b"reply".to_vec())]);
    assert_eq!(s.net.stats().dropped.nat_filtering, 2);
}

#[test]
fn nothing_reaches_a_public_port_without_a_mapping() {
    let mut s = setup(NatConfig::full_cone(ip(NAT_IP)));
    s.net
        .node_mut::<Mailbox>(s.peer)
        .send_to(addr("203.0.113.1:49152"), &b"anyone?"[..]);
    s.net.run_for(Duration::from_secs(1));
    assert!(s.net.node::<Mailbox>(s.client).received().is_empty());
    assert_eq!(s.net.stats().dropped.nat_no_mapping, 1);
}

#[test]
fn a_mapping_times_out_unless_outbound_traffic_refreshes_it() {
    let config = NatConfig::full_cone(ip(NAT_IP)).mapping_timeout(Duration::from_secs(30));
    let mut s = setup(config);
    s.net
        .node_mut::<Mailbox>(s.client)
        .send_to(addr(&format!("{S1}:3478")), binding_request(1));
    s.net.run_for(Duration::from_secs(1));
    let mapped = mapped(&s.net, s.client, 1).unwrap();

    // Keepalives every 20 s hold it open for a minute; inbound traffic
    // (the peer's) does not refresh it.
    for _ in 0..3 {
        s.net.run_for(Duration::from_secs(19));
        s.net
            .node_mut::<Mailbox>(s.client)
            .send_to(addr(PEER), &b"keepalive"[..]);
        s.net
            .node_mut::<Mailbox>(s.peer)
            .send_to(mapped, &b"in"[..]);
        s.net.run_for(Duration::from_secs(1));
    }
    assert_eq!(s.net.stats().dropped.total(), 0);
    let delivered_in = |s: &Setup| {
        s.net
            .node::<Mailbox>(s.client)
            .received()
            .iter()
            .filter(|r| &r.datagram.contents[..] == b"in")
            .count()
    };
    assert_eq!(delivered_in(&s), 3);

    // Silence for longer than the timeout: gone.
    s.net.run_for(Duration::from_secs(31));
    s.net
        .node_mut::<Mailbox>(s.peer)
        .send_to(mapped, &b"in"[..]);
    s.net.run_for(Duration::from_secs(1));
    assert_eq!(delivered_in(&s), 3);
    assert_eq!(s.net.stats().dropped.nat_no_mapping, 1);

    // A new binding gets a new port (sequential allocation moved on).
    s.net
        .node_mut::<Mailbox>(s.client)
        .send_to(addr(&format!("{S1}:3478")), binding_request(2));
    s.net.run_for(Duration::from_secs(1));
    let remapped = self::mapped(&s.net, s.client, 2).unwrap();
    assert_ne!(remapped, mapped);
}

/// Two clients behind one NAT learn their mapped addresses from S1; then A
/// sends to B's mapped address and to B's private address.
fn two_clients(hairpinning: bool) -> (Network, NodeId, NodeId, SocketAddr, SocketAddr) {
    let mut net = Network::new(realtimer_netsim::seed_from_env_or(21), origin());
    let config = NatConfig::full_cone(ip(NAT_IP)).hairpinning(hairpinning);
    let nat = net.add_nat(config);
    let a = net.add_host(&[ip("10.0.0.2")], Some(nat));
    let b = net.add_host(&[ip("10.0.0.3")], Some(nat));
    let s1 = net.add_host(&[ip(S1)], None);
    net.set_uplink(nat, LinkConfig::default().delay(Duration::from_millis(10)));
    net.set_uplink(a, LinkConfig::default().delay(Duration::from_millis(1)));
    net.set_uplink(b, LinkConfig::default().delay(Duration::from_millis(1)));
    let a = net.attach(a, Mailbox::bind(5000));
    let b = net.attach(b, Mailbox::bind(5000));
    net.attach(s1, StunServer::default());
    net.node_mut::<Mailbox>(a)
        .send_to(addr(&format!("{S1}:3478")), binding_request(1));
    net.node_mut::<Mailbox>(b)
        .send_to(addr(&format!("{S1}:3478")), binding_request(2));
    net.run_for(Duration::from_secs(1));
    let mapped_a = mapped(&net, a, 1).unwrap();
    let mapped_b = mapped(&net, b, 2).unwrap();
    assert_ne!(mapped_a, mapped_b);
    let start = net.now();
    net.node_mut::<Mailbox>(a)
        .send_to(mapped_b, &b"via hairpin"[..]);
    net.node_mut::<Mailbox>(a)
        .send_to(addr("10.0.0.3:5000"), &b"via lan"[..]);
    net.run_for(Duration::from_secs(1));
    let got: Vec<_> = net
        .node::<Mailbox>(b)
        .received()
        .iter()
        .filter(|r| !realtimer_stun::is_stun(&r.datagram.contents))
        .map(|r| (r.at - start, r.datagram.source, r.datagram.contents.clone()))
        .collect();
    let lan = got
        .iter()
        .find(|g| &g.2[..] == b"via lan")
        .expect("LAN traffic");
    assert_eq!(lan.0, Duration::from_millis(2), "LAN: two host uplinks");
    assert_eq!(lan.1, addr("10.0.0.2:5000"));
    let hairpinned = got.iter().find(|g| &g.2[..] == b"via hairpin");
    if let Some(h) = hairpinned {
        assert_eq!(h.0, Duration::from_millis(2), "hairpin stays inside");
        assert_eq!(
            h.1, mapped_a,
            "the sender's mapped address (RFC 4787 REQ-9)"
        );
    }
    (net, a, b, mapped_a, mapped_b)
}

#[test]
fn hairpinning_loops_back_with_the_mapped_source() {
    let (net, ..) = two_clients(true);
    assert_eq!(net.stats().dropped.total(), 0);
    assert_eq!(net.stats().delivered, 2 + 2 + 2);
}

#[test]
fn without_hairpinning_the_nat_drops_it() {
    let (net, ..) = two_clients(false);
    assert_eq!(net.stats().dropped.hairpinning, 1);
    assert_eq!(net.stats().delivered, 2 + 2 + 1);
}

#[test]
fn a_nat_firewall_drops_all_udp_through_it() {
    let mut s = setup(NatConfig::full_cone(ip(NAT_IP)));
    s.net.set_firewall_drop_udp(s.nat, true);
    s.net
        .node_mut::<Mailbox>(s.client)
        .send_to(addr(&format!("{S1}:3478")), binding_request(1));
    s.net
        .node_mut::<Mailbox>(s.peer)
        .send_to(addr("203.0.113.1:49152"), &b"in"[..]);
    s.net.run_for(Duration::from_secs(1));
    assert_eq!(mapped(&s.net, s.client, 1), None);
    assert_eq!(s.net.stats().dropped.firewall, 2);
}

#[test]
fn dual_stack_nat_maps_each_family_to_its_public_address() {
    let config = NatConfig::new(ip(NAT_IP)).with_public_ip(ip("2001:db8:ffff::1"));
    let mut net = Network::new(22, origin());
    let nat = net.add_nat(config);
    let client = net.add_host(&[ip("10.0.0.2"), ip("fd00::2")], Some(nat));
    let server = net.add_host(&[ip(S1), ip("2001:db8::1")], None);
    let client = net.attach(client, Mailbox::bind(5000));
    net.attach(server, StunServer::default());
    let c = net.node_mut::<Mailbox>(client);
    c.send_to(addr(&format!("{S1}:3478")), binding_request(1));
    c.send_to(addr("[2001:db8::1]:3478"), binding_request(2));
    net.run_for(Duration::from_secs(1));
    assert_eq!(mapped(&net, client, 1).unwrap().ip(), ip(NAT_IP));
    assert_eq!(
        mapped(&net, client, 2).unwrap().ip(),
        ip("2001:db8:ffff::1")
    );
}

#[test]
fn the_path_through_a_nat_crosses_both_uplinks() {
    let mut s = setup(NatConfig::new(ip(NAT_IP)));
    let start = s.net.now();
    s.net
        .node_mut::<Mailbox>(s.client)
        .send_to(addr(PEER), &b"timed"[..]);
    s.net.run_for(Duration::from_secs(1));
    let got = s.net.node::<Mailbox>(s.peer).received();
    // Client uplink 5 + NAT uplink 10 + peer uplink 5.
    assert_eq!(got[0].at - start, Duration::from_millis(20));
    assert_eq!(got[0].datagram.source, addr("203.0.113.1:49152"));
}
