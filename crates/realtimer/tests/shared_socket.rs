//! Shared-socket mode: many `PeerConnection`s on one UDP port (`UdpMux`),
//! each talking to its own peer; a stray datagram is dropped.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::join_all;
use realtimer::{
    ChannelData, DataChannel, DataChannelInit, PeerConnection, PeerConnectionConfig, UdpMux,
};
use tokio::net::UdpSocket;
use tokio::time::timeout;

use realtimer_test_support::pair;

const CONNECTIONS: usize = 50;

fn config(mux: Option<&UdpMux>) -> PeerConnectionConfig {
    let mut c = PeerConnectionConfig::default().with_loopback(true);
    c.interfaces = vec!["127.0.0.1".parse().unwrap()];
    c.udp_mux = mux.cloned();
    c
}

/// A server connection on `mux` answering a client with its own socket;
/// the server echoes what comes on the client's channel. Returns the
/// client's channel.
async fn connect(mux: &UdpMux, i: usize) -> (PeerConnection, PeerConnection, DataChannel) {
    let server = PeerConnection::new(config(Some(mux))).await.unwrap();
    let client = PeerConnection::new(config(None)).await.unwrap();
    // Only the server gets channels: it echoes them.
    pair::trickle_and_echo(&server, &client);
    let dc = client
        .create_data_channel(&format!("c{i}"), DataChannelInit::default())
        .await
        .unwrap();
    pair::negotiate(&client, &server).await;
    let opened = timeout(Duration::from_secs(20), dc.wait_open()).await;
    assert_eq!(opened, Ok(true), "connection {i} opens");
    (server, client, dc)
}

/// Each client's message comes back from its own server connection.
async fn echo_all(channels: &[DataChannel], round: usize) {
    join_all(channels.iter().enumerate().map(|(i, dc)| async move {
        let text = format!("round {round} from {i}");
        dc.send_text(text.clone()).await.unwrap();
        let back = timeout(Duration::from_secs(10), dc.recv()).await;
        assert_eq!(back, Ok(Some(ChannelData::Text(text))), "echo on {i}");
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_connections_share_one_port_and_a_stray_datagram_is_dropped() {
    let mux = UdpMux::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let port = mux.local_addr().port();
    let mut pcs = Vec::new();
    let mut channels = Vec::new();
    for batch in (0..CONNECTIONS).collect::<Vec<_>>().chunks(10) {
        for (server, client, dc) in join_all(batch.iter().map(|i| connect(&mux, *i))).await {
            // The server's local candidates are on the shared port.
            let stats = server.get_stats().await.unwrap();
            let local: Vec<u16> = stats
                .candidates
                .iter()
                .filter(|c| c.is_local)
                .map(|c| c.port)
                .collect();
            assert!(
                !local.is_empty() && local.iter().all(|p| *p == port),
                "{local:?}"
            );
            pcs.push((server, client));
            channels.push(dc);
        }
    }
    echo_all(&channels, 1).await;

    let before = mux.dropped();
    let stray = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    // DTLS-looking and STUN-looking garbage from an unknown address.
    stray
        .send_to(&[23, 254, 253, 0, 1, 2, 3], to)
        .await
        .unwrap();
    stray.send_to(&[0, 1, 0, 0, 0x21, 0x12], to).await.unwrap();
    timeout(Duration::from_secs(5), async {
        while mux.dropped() < before + 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both stray datagrams counted as dropped");
    echo_all(&channels, 2).await;

    for (server, client) in &pcs {
        client.close().await;
        server.close().await;
    }
}
