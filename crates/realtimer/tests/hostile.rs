//! Bad networks and bad peers: an unreachable peer fails the connection
//! within the ICE and consent timeouts; garbage datagrams after connect
//! (at the core, and at a real socket) are dropped without a panic and the
//! channel keeps working.

mod common;
mod pair;

use std::time::{Duration, Instant};

use common::Pair;
use rand::{Rng, SeedableRng};
use realtimer::{
    ChannelData, DataChannelInit, IceConfig, PeerConnection, PeerConnectionConfig,
    PeerConnectionState, RtcEvent,
};
use realtimer_netsim::LinkConfig;

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

#[tokio::test]
async fn garbage_datagrams_at_the_socket_are_dropped() {
    let mut config = PeerConnectionConfig::default().with_loopback(true);
    config.interfaces = vec!["127.0.0.1".parse().unwrap()];
    let a = PeerConnection::new(config.clone()).await.unwrap();
    let b = PeerConnection::new(config).await.unwrap();
    pair::trickle_and_echo(&a, &b);
    let ch = a
        .create_data_channel("echo", DataChannelInit::default())
        .await
        .unwrap();
    pair::negotiate(&a, &b).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(10), ch.wait_open())
            .await
            .unwrap()
    );
    let stats = a.get_stats().await.unwrap();
    let pair = stats.selected_candidate_pair().unwrap();
    let target = stats.candidate(&pair.local_candidate_id).unwrap().port;
    let attacker = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(34);
    for round in 0..10u32 {
        for _ in 0..300 {
            let len = rng.random_range(0..1200);
            let mut d: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if let Some(first) = d.first_mut() {
                *first = [0u8, 1, 22, 23, 128, 255][rng.random_range(0..6)];
            }
            let _ = attacker.send_to(&d, ("127.0.0.1", target)).await;
        }
        ch.send_text(format!("ping {round}")).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), ch.recv())
            .await
            .expect("the echo comes back");
        assert_eq!(got, Some(ChannelData::Text(format!("ping {round}"))));
    }
    assert_eq!(a.connection_state(), PeerConnectionState::Connected);
    a.close().await;
    b.close().await;
}
