//! Bad networks and bad peers at the core: an unreachable peer fails the
//! connection within the ICE and consent timeouts; garbage datagrams after
//! connect are dropped without a panic and the channel keeps working; a
//! peer sending faster than the application reads fills at most the SCTP
//! receive window.
//! (The same garbage at a real socket: `crates/realtimer/tests/hostile.rs`.)

mod common;

use std::time::{Duration, Instant};

use common::Pair;
use rand::{Rng, SeedableRng};
use realtimer_netsim::LinkConfig;
use realtimer_proto::{ChannelData, DataChannelInit, IceConfig, PeerConnectionState, RtcEvent};

fn lan() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(5))
}

fn failed_at(node: &common::RtcNode) -> Option<Instant> {
    node.events.iter().find_map(|(t, e)| {
        matches!(e, RtcEvent::ConnectionState(PeerConnectionState::Failed)).then_some(*t)
    })
}

#[test]
fn peer_unreachable_after_connect_fails_when_consent_expires() {
    let mut p = Pair::new(31, lan());
    let (a, b) = (p.a, p.b);
    let ch = p.with(a, |rtc, now| {
        rtc.create_data_channel(now, "c", &DataChannelInit::default())
            .unwrap()
    });
    p.negotiate();
    assert!(p.run_until(Duration::from_secs(10), |x, _| x.opened(ch)));
    let cut = p.net.now();
    let hb = p.net.node_host(b);
    p.net.set_firewall_drop_udp(hb, true);
    let consent = IceConfig::default().consent_timeout;
    assert!(p.run_until(consent + Duration::from_secs(10), |x, _| {
        x.rtc.connection_state() == PeerConnectionState::Failed
    }));
    let node = p.node(a);
    let took = failed_at(node).unwrap() - cut;
    // RFC 7675 §5.1: consent expires 30 s after the last response.
    assert!(
        took >= consent - Duration::from_secs(6) && took <= consent + Duration::from_secs(6),
        "{took:?}"
    );
    assert!(node
        .events
        .iter()
        .any(|(_, e)| *e == RtcEvent::ConnectionState(PeerConnectionState::Disconnected)));
}

#[test]
fn peer_unreachable_from_the_start_fails_within_the_ice_timeout() {
    let mut p = Pair::new(32, lan());
    let (a, b) = (p.a, p.b);
    let hb = p.net.node_host(b);
    p.net.set_firewall_drop_udp(hb, true);
    let _ = p.with(a, |rtc, now| {
        rtc.create_data_channel(now, "c", &DataChannelInit::default())
            .unwrap()
    });
    let start = p.net.now();
    p.negotiate();
    assert!(p.run_until(Duration::from_secs(60), |x, _| {
        x.rtc.connection_state() == PeerConnectionState::Failed
    }));
    let took = failed_at(p.node(a)).unwrap() - start;
    assert!(took < Duration::from_secs(45), "{took:?}");
}

#[test]
fn garbage_datagrams_at_the_core_never_panic() {
    let mut p = Pair::new(33, lan());
    let (a, b) = (p.a, p.b);
    let (ch, remote) = p.open_channel("c", &DataChannelInit::default());
    let mut rng = rand::rngs::StdRng::seed_from_u64(33);
    let from = "10.0.0.2:5000".parse().unwrap();
    let to = "10.0.0.1:5000".parse().unwrap();
    for round in 0..20u32 {
        p.with(a, |rtc, now| {
            for _ in 0..500 {
                let len = rng.random_range(0..1500);
                let mut d: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                // Steer first bytes into every RFC 7983 range, with plausible
                // DTLS record headers half of the time.
                if let Some(first) = d.first_mut() {
                    *first = match rng.random_range(0..4) {
                        0 => rng.random_range(0..=3),
                        1 => rng.random_range(20..=63),
                        2 => 23,
                        _ => *first,
                    };
                }
                if d.len() > 3 && rng.random() {
                    d[1] = 0xfe;
                    d[2] = 0xfd;
                }
                rtc.handle_receive(now, from, to, &d);
            }
        });
        p.with(b, |rtc, now| {
            rtc.send(now, remote, ChannelData::Text(format!("still {round}")))
                .unwrap()
        });
        assert!(
            p.run_until(Duration::from_secs(2), |x, _| x.messages(ch).len() as u32
                == round + 1)
        );
    }
    assert!(p.node(a).connected());
}

/// An application that stops polling events holds at most SCTP's receive
/// window of messages: the unread bytes close the window the core
/// advertises, so the sender keeps the rest in its own buffer (where
/// `bufferedAmount` shows it); once the application reads again, every
/// message arrives, in order.
#[test]
fn unread_channel_messages_are_bounded_by_the_receive_window() {
    const WINDOW: usize = 4 * 1024 * 1024; // SctpConfig::default().receive_window
    const SIZE: usize = 16 * 1024;
    const COUNT: usize = 768; // 12 MiB: three windows
    let mut p = Pair::new(34, lan());
    let (a, b) = (p.a, p.b);
    let (ch, remote) = p.open_channel("c", &DataChannelInit::default());
    p.node_mut(a).hold_events = true;
    p.with(b, |rtc, now| {
        for i in 0..COUNT {
            let mut data = vec![(i % 251) as u8; SIZE];
            data[..4].copy_from_slice(&(i as u32).to_be_bytes());
            rtc.send(now, remote, ChannelData::Binary(data.into()))
                .unwrap();
        }
    });
    p.run_until(Duration::from_secs(10), |_, _| false);
    // What a holds, read now.
    let mut held = Vec::new();
    while let Some(event) = p.node_mut(a).rtc.poll_event() {
        if let RtcEvent::ChannelMessage(_, ChannelData::Binary(data)) = event {
            held.push(data);
        }
    }
    let held_bytes: usize = held.iter().map(|d| d.len()).sum();
    assert!(
        held_bytes <= WINDOW + SIZE,
        "{held_bytes} bytes queued unread, over the {WINDOW}-byte window"
    );
    assert!(
        held_bytes >= WINDOW / 2,
        "the window was used: {held_bytes}"
    );
    let waiting = p.with(b, |rtc, _| rtc.buffered_amount(remote));
    assert!(
        waiting >= COUNT * SIZE - held_bytes - WINDOW,
        "the sender keeps the rest: {waiting}"
    );
    // Reading again: the rest arrives, in order after what was held.
    p.node_mut(a).hold_events = false;
    assert!(p.run_until(Duration::from_secs(30), |x, _| held.len()
        + x.messages(ch).len()
        == COUNT));
    let order: Vec<u32> = held
        .iter()
        .cloned()
        .chain(p.node(a).messages(ch).into_iter().map(|m| match m {
            ChannelData::Binary(d) => d,
            ChannelData::Text(_) => panic!("text"),
        }))
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
        .collect();
    assert_eq!(order, (0..COUNT as u32).collect::<Vec<_>>());
}

/// A peer that NACKs the same packets without end gets at most as many
/// bytes again as the track sent (the retransmission budget): before,
/// each of its 2,000 NACKs had every packet it named sent again.
#[test]
fn a_nack_flood_gets_no_more_resent_than_the_track_sends() {
    use bytes::Bytes;
    use realtimer_proto::{RtcConfig, RtpPacket};

    let (mut p, sender, receiver) = Pair::video_call(37, lan(), RtcConfig::default());
    let (a, b) = (p.a, p.b);
    let write = |p: &mut Pair, seqs: std::ops::Range<u16>| {
        for seq in seqs {
            let packet = RtpPacket {
                payload_type: 96,
                sequence_number: seq,
                timestamp: 3000 * u32::from(seq),
                marker: true,
                ssrc: 0,
                payload: Bytes::from(vec![0x10; 1000]),
            };
            p.with(a, |rtc, now| rtc.write_rtp(now, sender, &packet).unwrap());
            p.run_until(Duration::from_millis(10), |_, _| false);
        }
    };
    let sent = |p: &mut Pair| p.with(a, |rtc, now| rtc.stats(now)).outbound_rtp[0].clone();
    write(&mut p, 1..101);
    let seqs: Vec<u16> = (1..101).collect();
    for _ in 0..2_000 {
        p.with(b, |rtc, _| {
            rtc.request_retransmission(receiver, &seqs).unwrap()
        });
        p.run_until(Duration::from_millis(1), |_, _| false);
    }
    p.run_until(Duration::from_millis(200), |_, _| false);
    let s = sent(&mut p);
    assert_eq!(s.packets_sent, 100);
    // The first NACK is answered in full; then the budget is spent.
    assert!(
        (100..=110).contains(&s.retransmitted_packets_sent),
        "{} resent",
        s.retransmitted_packets_sent
    );
    assert!(s.retransmissions_refused > 150_000, "{s:?}");
    // The bound is a rate: what the track sends next earns resends again.
    write(&mut p, 101..111);
    let before = s.retransmitted_packets_sent;
    p.with(b, |rtc, _| {
        rtc.request_retransmission(receiver, &[101, 102, 103])
            .unwrap()
    });
    p.run_until(Duration::from_millis(200), |_, _| false);
    assert_eq!(sent(&mut p).retransmitted_packets_sent, before + 3);
    assert!(p.node(a).connected() && p.node(b).connected());
}
