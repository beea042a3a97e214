//! Associations on the simulated network: handshake, reliable ordered and
//! unordered transfer under loss, partial reliability, stream reset, shutdown.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::*;
use realtimer_netsim::{LinkConfig, Loss};
use realtimer_sctp::{CloseReason, Reliability, SctpEvent};

fn clean(ms: u64) -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(ms))
}

#[test]
fn handshake_one_side_or_both_at_once() {
    for (connect_a, connect_b) in [(true, false), (false, true), (true, true)] {
        let mut p = Pair::new(1, clean(10), connect_a, connect_b);
        p.connect();
        for id in [p.a, p.b] {
            let connected = p
                .node(id)
                .events
                .iter()
                .filter(|(_, e)| *e == SctpEvent::Connected)
                .count();
            assert_eq!(
                connected, 1,
                "one Connected event ({connect_a}, {connect_b})"
            );
        }
    }
}

#[test]
fn reliable_ordered_transfer_is_byte_exact() {
    let mut p = Pair::new(2, clean(10), true, true);
    p.connect();
    let messages: Vec<_> = (0..200)
        .map(|i| message(i, 1 + (i * 997) % 20_000))
        .collect();
    assert_eq!(
        p.send_from_a(&messages, 1, false, Reliability::Reliable),
        messages.len()
    );
    assert!(p.run_until(Duration::from_secs(30), |_, b| b.messages.len()
        == messages.len()));
    let got = p.node(p.b).payloads();
    assert_eq!(got, messages);
    assert!(p
        .node(p.b)
        .messages
        .iter()
        .all(|(_, m)| m.stream == 1 && m.ppid == 53));
}

#[test]
fn lossy_reordering_duplicating_link_stays_byte_exact() {
    let link = LinkConfig::default()
        .delay(Duration::from_millis(50))
        .loss(Loss::Independent(0.1))
        .reorder(0.05, Duration::from_millis(20))
        .duplicate(0.02);
    let mut p = Pair::new(3, link, true, true);
    p.connect();
    let messages: Vec<_> = (0..64).map(|i| message(i, 64 * 1024)).collect();
    let mut sent = 0;
    while sent < messages.len() {
        sent += p.send_from_a(&messages[sent..], 0, false, Reliability::Reliable);
        p.run_until(Duration::from_millis(200), |_, _| false);
    }
    assert!(
        p.run_until(Duration::from_secs(120), |_, b| b.messages.len()
            == messages.len()),
        "got {}",
        p.node(p.b).messages.len()
    );
    let got = p.node(p.b).payloads();
    assert_eq!(got, messages);
}

#[test]
fn unordered_reliable_delivers_everything() {
    let link = LinkConfig::default()
        .delay(Duration::from_millis(20))
        .loss(Loss::Independent(0.1));
    let mut p = Pair::new(4, link, true, true);
    p.connect();
    let messages: Vec<_> = (0..300).map(|i| message(i, 100 + i)).collect();
    assert_eq!(
        p.send_from_a(&messages, 2, true, Reliability::Reliable),
        messages.len()
    );
    assert!(p.run_until(Duration::from_secs(60), |_, b| b.messages.len()
        == messages.len()));
    let mut got = p.node(p.b).payloads();
    let in_order = got == messages;
    got.sort();
    let mut expected = messages.clone();
    expected.sort();
    assert_eq!(got, expected);
    assert!(!in_order, "with loss, unordered delivery overtakes");
}

#[test]
fn max_retransmits_zero_drops_but_never_stalls() {
    let link = LinkConfig::default()
        .delay(Duration::from_millis(20))
        .loss(Loss::Independent(0.2));
    let mut p = Pair::new(5, link, true, true);
    p.connect();
    let messages: Vec<_> = (0..500).map(|i| message(i, 200)).collect();
    assert_eq!(
        p.send_from_a(&messages, 3, true, Reliability::MaxRetransmits(0)),
        messages.len()
    );
    p.run_until(Duration::from_secs(20), |_, _| false);
    let got = p.node(p.b).messages.len();
    assert!(
        got < messages.len() && got > messages.len() / 2,
        "{got} of {}",
        messages.len()
    );
    // The association is not stuck: a reliable message afterwards arrives.
    let last = message(9999, 10);
    p.send_from_a(std::slice::from_ref(&last), 4, false, Reliability::Reliable);
    assert!(p.run_until(Duration::from_secs(10), |_, b| b
        .messages
        .iter()
        .any(|(_, m)| m.payload == last)));
}

#[test]
fn max_lifetime_is_honoured_for_ordered_messages() {
    let link = LinkConfig::default()
        .delay(Duration::from_millis(50))
        .loss(Loss::Independent(0.3));
    let mut p = Pair::new(6, link, true, true);
    p.connect();
    let messages: Vec<_> = (0..200).map(|i| message(i, 500)).collect();
    let start = p.net.now();
    p.send_from_a(
        &messages,
        5,
        false,
        Reliability::MaxLifetime(Duration::from_millis(300)),
    );
    p.run_until(Duration::from_secs(20), |_, _| false);
    let b = p.node(p.b);
    assert!(b.messages.len() < messages.len());
    // Ordered: what arrives arrives in order; nothing arrives long after its lifetime.
    let indices: Vec<usize> = b
        .messages
        .iter()
        .map(|(_, m)| messages.iter().position(|x| *x == m.payload).unwrap())
        .collect();
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "in order: {indices:?}"
    );
    for (at, _) in &b.messages {
        assert!(
            *at - start < Duration::from_millis(300) + Duration::from_millis(200),
            "late delivery at {:?}",
            *at - start
        );
    }
}

#[test]
fn stream_reset_reaches_both_sides_and_the_stream_is_reusable() {
    let mut p = Pair::new(7, clean(5), true, true);
    p.connect();
    p.send_from_a(
        &[message(1, 10), message(2, 10)],
        9,
        false,
        Reliability::Reliable,
    );
    let now = p.net.now();
    p.node_mut(p.a).association.reset_streams(now, &[9]);
    assert!(p.run_until(Duration::from_secs(5), |a, b| {
        a.events
            .iter()
            .any(|(_, e)| *e == SctpEvent::OutgoingStreamsReset(vec![9]))
            && b.events
                .iter()
                .any(|(_, e)| *e == SctpEvent::IncomingStreamsReset(vec![9]))
    }));
    // Data sent before the reset arrived first.
    assert_eq!(p.node(p.b).messages.len(), 2);
    // The stream works again, from SSN 0.
    p.send_from_a(&[message(3, 10)], 9, false, Reliability::Reliable);
    assert!(p.run_until(Duration::from_secs(5), |_, b| b.messages.len() == 3));
}

#[test]
fn graceful_shutdown_and_peer_unreachable() {
    let mut p = Pair::new(8, clean(5), true, true);
    p.connect();
    p.send_from_a(&[message(1, 5000)], 0, false, Reliability::Reliable);
    let now = p.net.now();
    p.node_mut(p.a).association.shutdown(now);
    assert!(p.run_until(Duration::from_secs(5), |a, b| {
        a.events
            .iter()
            .any(|(_, e)| *e == SctpEvent::Closed(CloseReason::Shutdown))
            && b.events
                .iter()
                .any(|(_, e)| *e == SctpEvent::Closed(CloseReason::Shutdown))
    }));
    assert_eq!(
        p.node(p.b).messages.len(),
        1,
        "queued data went out before the shutdown"
    );

    let mut p = Pair::new(9, clean(5), true, true);
    p.connect();
    let hb = p.net.node_host(p.b);
    p.net.set_firewall_drop_udp(hb, true);
    p.send_from_a(&[message(1, 100)], 0, false, Reliability::Reliable);
    assert!(p.run_until(Duration::from_secs(300), |a, _| {
        a.events
            .iter()
            .any(|(_, e)| *e == SctpEvent::Closed(CloseReason::PeerUnreachable))
    }));
}

#[test]
fn message_sizes_from_one_byte_to_max_message_size() {
    let mut p = Pair::new(10, clean(2), true, true);
    p.connect();
    let sizes = [1usize, 2, 3, 1131, 1132, 1133, 64_000, 65_536, 256 * 1024];
    p.node_mut(p.a)
        .association
        .set_remote_max_message_size(256 * 1024);
    let messages: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| message(i, *n))
        .collect();
    assert_eq!(
        p.send_from_a(&messages, 0, false, Reliability::Reliable),
        messages.len()
    );
    assert!(p.run_until(Duration::from_secs(10), |_, b| b.messages.len()
        == messages.len()));
    let got = p.node(p.b).payloads();
    assert_eq!(got, messages);
    // Larger than the peer takes: refused at send.
    let now = p.net.now();
    let too_big = message(0, 256 * 1024 + 1);
    assert!(p
        .node_mut(p.a)
        .association
        .send(now, 0, 53, too_big, false, Reliability::Reliable)
        .is_err());
}

#[test]
fn idle_associations_heartbeat_and_notice_a_dead_peer() {
    let mut p = Pair::new(11, clean(20), true, true);
    p.connect();
    // Idle for two minutes: heartbeats keep it up and measure the RTT.
    p.run_until(Duration::from_secs(120), |_, _| false);
    assert!(p.node(p.a).connected() && p.node(p.b).connected());
    let srtt = p
        .node(p.a)
        .association
        .sender_stats()
        .srtt
        .expect("an RTT from heartbeats");
    assert!(
        srtt >= Duration::from_millis(40) && srtt < Duration::from_millis(50),
        "{srtt:?}"
    );
    // The peer goes silent while idle: heartbeats go unanswered, then ABORT.
    let hb = p.net.node_host(p.b);
    p.net.set_firewall_drop_udp(hb, true);
    assert!(p.run_until(Duration::from_secs(900), |a, _| {
        a.events
            .iter()
            .any(|(_, e)| *e == SctpEvent::Closed(CloseReason::PeerUnreachable))
    }));
}

#[test]
fn streams_take_turns_between_messages() {
    let mut p = Pair::new(12, clean(5), true, true);
    p.connect();
    p.node_mut(p.a)
        .association
        .set_remote_max_message_size(256 * 1024);
    // Three big messages on stream 1, then one small one on stream 2.
    let big: Vec<_> = (0..3).map(|i| message(i, 256 * 1024)).collect();
    p.send_from_a(&big, 1, false, Reliability::Reliable);
    let small = message(99, 100);
    p.send_from_a(
        std::slice::from_ref(&small),
        2,
        false,
        Reliability::Reliable,
    );
    assert!(p.run_until(Duration::from_secs(30), |_, b| b.messages.len() == 4));
    let order: Vec<u16> = p.node(p.b).messages.iter().map(|(_, m)| m.stream).collect();
    // Stream 2's message waits for at most the big message in progress.
    assert!(
        order.iter().position(|s| *s == 2).unwrap() <= 1,
        "{order:?}"
    );
    let stream1: Vec<_> = p
        .node(p.b)
        .messages
        .iter()
        .filter(|(_, m)| m.stream == 1)
        .map(|(_, m)| m.payload.clone())
        .collect();
    assert_eq!(stream1, big, "in order within the stream");
}

/// RFC 9260 §6.2: a DATA chunk without user data gets an ABORT with the
/// "No User Data" cause and its TSN (§3.3.10.9), not silence; werift 0.25
/// sends empty messages so, and an ignored chunk left a hole at its TSN
/// that stalled everything after it.
#[test]
fn a_data_chunk_without_user_data_is_aborted_with_no_user_data() {
    let mut p = Pair::new(13, clean(5), true, false);
    let (a, b) = (p.a, p.b);
    p.node_mut(b).sent = Some(Vec::new());
    p.connect();
    // Any packet b sent after the INIT carries a's verification tag.
    let from_b = p.node(b).sent.as_ref().unwrap().last().unwrap().clone();
    let header = realtimer_sctp::Packet::parse_accepting_zero_checksum(&from_b)
        .unwrap()
        .header;
    let tsn = 0x1234_5678;
    let empty = realtimer_sctp::Packet {
        header,
        chunks: vec![realtimer_sctp::Chunk::Data(realtimer_sctp::DataChunk {
            tsn,
            stream: 1,
            ssn: 0,
            ppid: 51,
            unordered: false,
            beginning: true,
            ending: true,
            immediate: false,
            payload: bytes::Bytes::new(),
        })],
    };
    let now = p.net.now();
    let node = p.node_mut(a);
    node.sent = Some(Vec::new());
    node.association.handle_packet(now, &empty.to_bytes());
    let abort = node.association.poll_transmit().expect("an ABORT");
    let abort = realtimer_sctp::Packet::parse_accepting_zero_checksum(&abort).unwrap();
    let mut cause = vec![0, 9, 0, 8];
    cause.extend_from_slice(&tsn.to_be_bytes());
    assert!(
        matches!(&abort.chunks[..], [realtimer_sctp::Chunk::Abort { reflected_tag: false, causes }] if causes[..] == cause[..]),
        "{abort:?}"
    );
    while let Some(e) = node.association.poll_event() {
        node.events.push((now, e));
    }
    assert!(node
        .events
        .iter()
        .any(|(_, e)| *e == SctpEvent::Closed(CloseReason::NoUserData { tsn })));
}
