//! Two mDNS endpoints on an in-memory link: one publishes, one resolves.
#![allow(clippy::disallowed_methods)] // a start time for virtual time

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use realtimer_mdns::{Mdns, MdnsConfig, MdnsEvent, Message, MDNS_PORT};

const NAME: &str = "1f4712db-ea17-4bcf-a596-105139dfd8bf.local";

fn host(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::from([192, 0, 2, last]), MDNS_PORT)
}

/// Delivers every queued packet: multicast to every endpoint (the sender
/// too, as with IP_MULTICAST_LOOP), unicast to its destination. Returns
/// the packets moved, with their source.
fn deliver(
    now: Instant,
    ends: &mut [(SocketAddr, Mdns)],
) -> Vec<(SocketAddr, SocketAddr, Message)> {
    let mut moved = Vec::new();
    loop {
        let mut packets = Vec::new();
        for (addr, mdns) in ends.iter_mut() {
            while let Some(t) = mdns.poll_transmit() {
                packets.push((*addr, t));
            }
        }
        if packets.is_empty() {
            return moved;
        }
        for (source, t) in packets {
            moved.push((source, t.destination, Message::parse(&t.contents).unwrap()));
            for (addr, mdns) in ends.iter_mut() {
                if t.destination.ip().is_multicast() || t.destination == *addr {
                    mdns.handle_input(now, source, &t.contents);
                }
            }
        }
    }
}

fn events(m: &mut Mdns) -> Vec<MdnsEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

#[test]
fn a_published_name_resolves_with_a_multicast_answer() {
    let now = Instant::now();
    let mut ends = [
        (host(1), Mdns::new(MdnsConfig::default())),
        (host(2), Mdns::new(MdnsConfig::default())),
    ];
    ends[1]
        .1
        .register(&NAME.to_uppercase(), "192.0.2.2".parse().unwrap())
        .unwrap();
    deliver(now, &mut ends);
    ends[0].1.resolve(now, NAME, &[host(1).ip()]);
    let moved = deliver(now, &mut ends);
    assert_eq!(
        events(&mut ends[0].1),
        vec![MdnsEvent::Resolved {
            name: NAME.into(),
            address: "192.0.2.2".parse().unwrap()
        }]
    );
    let (_, destination, answer) = moved
        .iter()
        .find(|(s, _, m)| *s == host(2) && m.response)
        .unwrap();
    assert!(
        destination.ip().is_multicast(),
        "QM query: multicast answer, {destination}"
    );
    assert_eq!(answer.records[0].ttl, 120);
    assert_eq!(ends[0].1.poll_timeout(), None, "nothing left to ask");
}

#[test]
fn packets_leave_by_the_interface_of_the_name_or_of_the_query() {
    let now = Instant::now();
    let mut mdns = Mdns::new(MdnsConfig::default());
    let ours: IpAddr = "10.1.0.5".parse().unwrap();
    mdns.register(NAME, ours).unwrap();
    assert_eq!(
        mdns.poll_transmit().unwrap().source.ip(),
        ours,
        "the announcement"
    );
    let lan: [IpAddr; 2] = ["10.1.0.5".parse().unwrap(), "10.2.0.5".parse().unwrap()];
    mdns.resolve(now, "peer.local", &lan);
    let queries: Vec<_> = std::iter::from_fn(|| mdns.poll_transmit()).collect();
    let interfaces: Vec<_> = queries.iter().map(|t| t.source.ip()).collect();
    assert_eq!(
        interfaces,
        [lan[0], lan[1]].repeat(2),
        "A, then AAAA, on each interface"
    );
    // One question a message: some responders (Chromium's) read no more.
    assert!(queries
        .iter()
        .all(|t| Message::parse(&t.contents).unwrap().questions.len() == 1));
    // Nowhere to ask: not found at once, nothing sent.
    mdns.resolve(now, "other.local", &[]);
    assert!(mdns.poll_transmit().is_none());
    assert_eq!(
        events(&mut mdns),
        vec![MdnsEvent::NotFound {
            name: "other.local".into()
        }]
    );
    // A multicast answer leaves by the name's interface.
    let query = Message {
        questions: vec![realtimer_mdns::Question::address(NAME, false)],
        ..Message::default()
    };
    mdns.handle_input(now, host(9), &query.to_bytes());
    let answer = mdns.poll_transmit().unwrap();
    assert_eq!(
        (answer.destination.ip().is_multicast(), answer.source.ip()),
        (true, ours)
    );
}

#[test]
fn an_unknown_name_is_asked_at_doubling_intervals_then_not_found() {
    let start = Instant::now();
    let mut mdns = Mdns::new(MdnsConfig::default());
    mdns.resolve(start, NAME, &["192.0.2.1".parse().unwrap()]);
    let mut sent = vec![Duration::ZERO];
    assert_eq!(
        std::iter::from_fn(|| mdns.poll_transmit()).count(),
        2,
        "A and AAAA"
    );
    let mut now = start;
    while let Some(at) = mdns.poll_timeout() {
        now = at;
        mdns.handle_timeout(now);
        while mdns.poll_transmit().is_some() {
            sent.push(now - start);
        }
    }
    let mut secs: Vec<u64> = sent.iter().map(Duration::as_secs).collect();
    secs.dedup();
    assert_eq!(secs, vec![0, 1, 3], "1 s, then 2 s later");
    assert_eq!(now - start, Duration::from_secs(5));
    assert_eq!(
        events(&mut mdns),
        vec![MdnsEvent::NotFound { name: NAME.into() }]
    );
    mdns.resolve(now, "printer.example.com", &["192.0.2.1".parse().unwrap()]);
    assert_eq!(
        events(&mut mdns),
        vec![MdnsEvent::NotFound {
            name: "printer.example.com".into()
        }]
    );
}

#[test]
fn a_legacy_resolver_gets_a_direct_answer_with_its_id_and_a_short_ttl() {
    let now = Instant::now();
    let mut responder = Mdns::new(MdnsConfig::default());
    responder
        .register(NAME, "2001:db8::5".parse().unwrap())
        .unwrap();
    while responder.poll_transmit().is_some() {}
    let mut query = Message {
        id: 0x1234,
        questions: vec![realtimer_mdns::Question::address(NAME, true)],
        ..Message::default()
    };
    let legacy: SocketAddr = "192.0.2.9:40000".parse().unwrap();
    responder.handle_input(now, legacy, &query.to_bytes());
    let answer = responder.poll_transmit().unwrap();
    assert_eq!(answer.destination, legacy);
    assert!(
        answer.source.ip().is_unspecified(),
        "routing picks the interface"
    );
    let answer = Message::parse(&answer.contents).unwrap();
    assert_eq!(
        (answer.id, answer.questions.len(), answer.records[0].ttl),
        (0x1234, 1, 10)
    );
    // An A question for a name with only an IPv6 address gets nothing.
    query.questions = vec![realtimer_mdns::Question::address(NAME, false)];
    responder.handle_input(now, legacy, &query.to_bytes());
    assert!(responder.poll_transmit().is_none());
}

#[test]
fn a_goodbye_does_not_resolve_and_unpublished_names_are_not_answered() {
    let now = Instant::now();
    let mut ends = [
        (host(1), Mdns::new(MdnsConfig::default())),
        (host(2), Mdns::new(MdnsConfig::default())),
    ];
    ends[1]
        .1
        .register(NAME, "192.0.2.2".parse().unwrap())
        .unwrap();
    deliver(now, &mut ends);
    ends[0].1.resolve(now, NAME, &[host(1).ip()]);
    ends[1].1.unregister(NAME);
    // The goodbye (TTL 0) goes out before the query is answered.
    deliver(now, &mut ends);
    assert!(events(&mut ends[0].1).is_empty());
    assert_eq!(ends[1].1.published(), 0);
    assert!(ends[1]
        .1
        .register("not-local.example", "192.0.2.2".parse().unwrap())
        .is_err());
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let now = Instant::now();
        let mut mdns = Mdns::new(MdnsConfig::default());
        mdns.register(NAME, "192.0.2.2".parse().unwrap()).unwrap();
        mdns.resolve(now, "other.local", &[host(1).ip()]);
        mdns.handle_input(now, host(3), &bytes);
        let _ = Message::parse(&bytes);
        while mdns.poll_transmit().is_some() {}
    }
}
