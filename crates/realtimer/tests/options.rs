//! realtimer's own PeerConnection options: the port range.

use realtimer::{PeerConnection, PeerConnectionConfig, RtcError};

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
        Err(RtcError::OperationError(e)) => assert!(e.contains("61610-61611"), "{e}"),
        other => panic!("a third connection in a full range: {other:?}"),
    }
    first.close().await;
    second.close().await;
}
