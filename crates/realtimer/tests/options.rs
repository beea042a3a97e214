//! PeerConnection options: the port range, the ICE candidate pool.

use std::time::Duration;

use realtimer::{
    BundlePolicy, IceGatheringState, OperationError, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent, RtcError,
};
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// The ports of a connection's local host candidates, after gathering.
async fn local_ports(pc: &PeerConnection) -> Vec<u16> {
    pc.create_data_channel("x", Default::default())
        .await
        .unwrap();
    let offer = pc.create_offer().await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let stats = pc.get_stats().await.unwrap();
    stats
        .candidates
        .iter()
        .filter(|c| c.is_local)
        .map(|c| c.port)
        .collect()
}

#[tokio::test]
async fn connections_take_free_ports_of_the_range_then_fail_clearly() {
    // Above Linux's ephemeral range (32768-60999), so nothing else takes them.
    let range = 61_610..=61_611;
    let config = || {
        PeerConnectionConfig::default()
            .with_loopback(true)
            .with_port_range(range.clone())
    };
    let first = PeerConnection::new(config()).await.unwrap();
    let second = PeerConnection::new(config()).await.unwrap();
    let mut ports = local_ports(&first).await;
    ports.extend(local_ports(&second).await);
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports, vec![61_610, 61_611]);
    match PeerConnection::new(config()).await {
        Err(RtcError::OperationError(OperationError::NoFreePort { first, last })) => {
            assert_eq!((first, last), (61_610, 61_611));
        }
        other => panic!("a third connection in a full range: {other:?}"),
    }
    first.close().await;
    second.close().await;
}

/// A STUN server stand-in on loopback: whether a Binding request reaches
/// it within `wait`.
async fn binding_request_within(server: &UdpSocket, wait: Duration) -> bool {
    let mut buf = [0u8; 1500];
    // STUN Binding request: type 0x0001 (RFC 8489 §5).
    matches!(timeout(wait, server.recv_from(&mut buf)).await, Ok(Ok((n, _))) if n >= 20 && buf[..2] == [0, 1])
}

#[tokio::test]
async fn a_candidate_pool_gathers_before_set_local_description_and_holds_the_candidates() {
    for pool in [0u8, 1] {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stun = format!("stun:{}", server.local_addr().unwrap());
        let mut config = PeerConnectionConfig::default()
            .with_loopback(true)
            .with_stun_server(&stun)
            .with_ice_candidate_pool_size(pool)
            .with_bundle_policy(BundlePolicy::MaxBundle);
        config.interfaces = vec!["127.0.0.1".parse().unwrap()];
        let pc = PeerConnection::new(config).await.unwrap();
        let mut events = pc.events().unwrap();
        let early = binding_request_within(&server, Duration::from_millis(500)).await;
        assert_eq!(
            early,
            pool > 0,
            "pool {pool}: STUN asked before setLocalDescription"
        );
        assert_eq!(
            pc.ice_gathering_state(),
            IceGatheringState::New,
            "pool {pool}"
        );
        // Nothing surfaces before setLocalDescription.
        while let Ok(Some(e)) = timeout(Duration::from_millis(50), events.recv()).await {
            assert!(
                !matches!(e, PeerConnectionEvent::IceCandidate(_)),
                "pool {pool}: {e:?}"
            );
        }
        pc.create_data_channel("x", Default::default())
            .await
            .unwrap();
        let offer = pc.create_offer().await.unwrap();
        pc.set_local_description(offer).await.unwrap();
        let first = timeout(Duration::from_secs(5), async {
            loop {
                match events.recv().await {
                    Some(PeerConnectionEvent::IceCandidate(Some(c))) => break c,
                    Some(_) => continue,
                    None => panic!("events ended"),
                }
            }
        })
        .await
        .expect("a candidate after setLocalDescription");
        assert!(first.candidate.contains("127.0.0.1"), "{}", first.candidate);
        pc.close().await;
    }
}
