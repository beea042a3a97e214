//! Client transactions on virtual time (RFC 8489 §6.2.1).
#![allow(clippy::disallowed_methods)] // tests take one real Instant as the origin of virtual time

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_stun::{
    Class, ClientTransactions, Message, MessageEncoder, Method, OutgoingRequest, RetransmitConfig,
    TransactionError, TransactionEvent, TransactionId, Transmit, Transport,
};

fn request(tid: TransactionId) -> Bytes {
    let mut buf = Vec::new();
    MessageEncoder::new(&mut buf, Class::Request, Method::BINDING, tid).finish();
    Bytes::from(buf)
}

fn response(tid: TransactionId, class: Class) -> Vec<u8> {
    let mut buf = Vec::new();
    MessageEncoder::new(&mut buf, class, Method::BINDING, tid).finish();
    buf
}

const SERVER: &str = "192.0.2.1:3478";

fn outgoing(tid: TransactionId, destination: SocketAddr, reliable: bool) -> OutgoingRequest {
    let transport = if reliable {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    OutgoingRequest {
        transaction_id: tid,
        transmit: Transmit {
            transport,
            source: "0.0.0.0:0".parse().unwrap(),
            destination,
            contents: request(tid),
        },
    }
}

/// Steps the clock from event to event and records when each datagram leaves.
fn run_to_completion(
    tx: &mut ClientTransactions<u32>,
    start: Instant,
) -> (Vec<Duration>, Vec<(Duration, u32)>) {
    let mut sends = Vec::new();
    let mut timeouts = Vec::new();
    let mut now = start;
    loop {
        while let Some(t) = tx.poll_transmit() {
            assert_eq!(t.destination, SERVER.parse::<SocketAddr>().unwrap());
            sends.push(now - start);
        }
        while let Some(TransactionEvent::TimedOut { context, .. }) = tx.poll_event() {
            timeouts.push((now - start, context));
        }
        match tx.poll_timeout() {
            Some(deadline) => {
                assert!(deadline >= now, "timeouts never move backwards");
                now = deadline;
                tx.handle_timeout(now);
            }
            None => break,
        }
    }
    (sends, timeouts)
}

#[test]
fn udp_schedule_matches_rfc_8489_example() {
    // RFC 8489 §6.2.1: with RTO 500 ms, sends at 0, 500, 1500, 3500, 7500,
    // 15500, 31500 ms and a timeout at 39500 ms.
    let start = Instant::now();
    let mut tx = ClientTransactions::new(RetransmitConfig::default());
    let tid = TransactionId::new([1; 12]);
    tx.start(start, outgoing(tid, SERVER.parse().unwrap(), false), 7)
        .unwrap();
    let (sends, timeouts) = run_to_completion(&mut tx, start);
    let ms: Vec<u64> = sends.iter().map(|d| d.as_millis() as u64).collect();
    assert_eq!(ms, vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(timeouts, vec![(Duration::from_millis(39_500), 7)]);
    assert!(tx.is_empty());
}

#[test]
fn configurable_rto_rc_rm() {
    let start = Instant::now();
    let config = RetransmitConfig {
        initial_rto: Duration::from_millis(100),
        max_transmissions: 3,
        final_wait_multiplier: 4,
        ..RetransmitConfig::default()
    };
    let mut tx = ClientTransactions::new(config);
    let tid = TransactionId::new([2; 12]);
    tx.start(start, outgoing(tid, SERVER.parse().unwrap(), false), 1)
        .unwrap();
    let (sends, timeouts) = run_to_completion(&mut tx, start);
    let ms: Vec<u64> = sends.iter().map(|d| d.as_millis() as u64).collect();
    assert_eq!(ms, vec![0, 100, 300]);
    assert_eq!(timeouts, vec![(Duration::from_millis(700), 1)]);
}

#[test]
fn reliable_transport_sends_once_and_waits_ti() {
    let start = Instant::now();
    let mut tx = ClientTransactions::new(RetransmitConfig::default());
    let tid = TransactionId::new([3; 12]);
    tx.start(start, outgoing(tid, SERVER.parse().unwrap(), true), 9)
        .unwrap();
    let (sends, timeouts) = run_to_completion(&mut tx, start);
    assert_eq!(sends, vec![Duration::ZERO]);
    assert_eq!(timeouts, vec![(Duration::from_millis(39_500), 9)]);
}

#[test]
fn response_ends_transaction_and_measures_rtt() {
    let start = Instant::now();
    let mut tx = ClientTransactions::new(RetransmitConfig::default());
    let a = TransactionId::new([4; 12]);
    let b = TransactionId::new([5; 12]);
    tx.start(start, outgoing(a, SERVER.parse().unwrap(), false), 1)
        .unwrap();
    tx.start(start, outgoing(b, SERVER.parse().unwrap(), false), 2)
        .unwrap();
    assert_eq!(tx.poll_transmit().map(|t| t.contents), Some(request(a)));
    assert_eq!(tx.poll_transmit().map(|t| t.contents), Some(request(b)));

    // An indication or a request with a pending id is not a response.
    let ind = response(a, Class::Indication);
    assert!(tx
        .handle_response(start, &Message::decode(&ind).unwrap())
        .is_none());
    // A response to an unknown id is discarded.
    let stray = response(TransactionId::new([6; 12]), Class::SuccessResponse);
    assert!(tx
        .handle_response(start, &Message::decode(&stray).unwrap())
        .is_none());

    let first = response(a, Class::SuccessResponse);
    let matched = tx
        .handle_response(
            start + Duration::from_millis(30),
            &Message::decode(&first).unwrap(),
        )
        .unwrap();
    assert_eq!(matched.context, 1);
    assert_eq!(matched.rtt, Some(Duration::from_millis(30)));

    // After a retransmission, Karn's rule: no RTT sample.
    tx.handle_timeout(start + Duration::from_millis(500));
    assert!(tx.poll_transmit().is_some());
    let second = response(b, Class::ErrorResponse);
    let matched = tx
        .handle_response(
            start + Duration::from_millis(600),
            &Message::decode(&second).unwrap(),
        )
        .unwrap();
    assert_eq!(matched.context, 2);
    assert_eq!(matched.rtt, None);
    assert!(tx.is_empty());
    assert_eq!(tx.poll_timeout(), None);
    // A duplicate response after completion is ignored.
    assert!(tx
        .handle_response(start, &Message::decode(&second).unwrap())
        .is_none());
}

#[test]
fn limits_and_duplicates() {
    let start = Instant::now();
    let mut tx = ClientTransactions::new(RetransmitConfig {
        max_pending: 2,
        ..RetransmitConfig::default()
    });
    let dest: SocketAddr = SERVER.parse().unwrap();
    for i in 0..2u8 {
        let tid = TransactionId::new([i; 12]);
        tx.start(start, outgoing(tid, dest, false), ()).unwrap();
    }
    let tid = TransactionId::new([0; 12]);
    assert_eq!(
        tx.start(start, outgoing(tid, dest, false), ()),
        Err(TransactionError::DuplicateId(tid))
    );
    let tid = TransactionId::new([9; 12]);
    assert_eq!(
        tx.start(start, outgoing(tid, dest, false), ()),
        Err(TransactionError::TooMany(2))
    );
    assert_eq!(tx.cancel(&TransactionId::new([0; 12])), Some(()));
    tx.start(start, outgoing(tid, dest, false), ()).unwrap();
    assert_eq!(tx.len(), 2);
}
