//! Bad peers at a real socket: garbage datagrams after connect are dropped
//! without a panic and the channel keeps working. (The same at the sans-IO
//! core, and unreachable peers: `crates/proto/tests/hostile.rs`.)

use std::time::Duration;

use rand::{Rng, SeedableRng};
use realtimer::{
    ChannelData, DataChannelInit, PeerConnection, PeerConnectionConfig, PeerConnectionState,
};
use realtimer_test_support::pair;

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
