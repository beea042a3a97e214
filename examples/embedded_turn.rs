//! The TURN server embedded in another program.
//!
//! `realtimer-turn-server` is the STUN/TURN server of `realtimer serve`
//! as a library (RFC 8489 Binding, RFC 8656 relays, RFC 6062 TCP
//! allocations). This program starts one on a loopback port with one
//! long-term user, then connects two `PeerConnection`s that may use
//! relayed candidates only (`iceTransportPolicy: "relay"`), so every
//! byte between them crosses the embedded server. getStats shows the
//! relay candidate the connection selected and the server's metrics
//! count the allocations.
//!
//! ```sh
//! cargo run -p realtimer-examples --bin embedded-turn
//! ```
#![allow(clippy::print_stdout)] // an example prints what it does

use std::time::Duration;

use realtimer::{
    ChannelData, DataChannelInit, IceTransportPolicy, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent,
};
use realtimer_examples::{negotiate, trickle};
use realtimer_turn_server::{
    BoundTurnServer, Credentials, ServerConfig, Transport, TurnServerConfig,
};

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    realtimer_examples::init_logging();

    // Long-term credentials (RFC 8489 §9.2) in a realm.
    let mut credentials = Credentials::new("example.org");
    credentials.add_user("alice", "secret")?;
    // The nonce key: random in production (here: the process id).
    let mut core = ServerConfig::new(credentials, [std::process::id() as u8; 16]);
    core.relay_ipv4 = Some("127.0.0.1".parse()?);
    // Relays to loopback are refused by default (a TURN server must not
    // become a way into its own host); both peers are on this host here.
    core.peer_policy.allow = vec!["127.0.0.0/8".parse()?];
    let bound = BoundTurnServer::bind(TurnServerConfig::new(vec!["127.0.0.1:0".parse()?]))?;
    let address = bound.local_addr(Transport::Udp).ok_or("no UDP listener")?;
    let server = bound.start(core)?;
    println!("TURN server on {address}");

    let config = PeerConnectionConfig::default()
        .with_loopback(true)
        .with_turn_server(&format!("turn:{address}"), "alice", "secret")
        .with_ice_transport_policy(IceTransportPolicy::Relay);
    let a = PeerConnection::new(config.clone()).await?;
    let b = PeerConnection::new(config).await?;
    // Candidates cross as they are found; b echoes on a's channel.
    let _a_events = trickle(&a, &b);
    let mut b_events = trickle(&b, &a);
    tokio::spawn(async move {
        while let Some(event) = b_events.recv().await {
            if let PeerConnectionEvent::DataChannel(dc) = event {
                tokio::spawn(async move {
                    while let Some(message) = dc.recv().await {
                        let _ = dc.send(message).await;
                    }
                });
            }
        }
    });
    let chat = a
        .create_data_channel("chat", DataChannelInit::default())
        .await?;
    negotiate(&a, &b).await?;
    if !tokio::time::timeout(Duration::from_secs(30), chat.wait_open()).await? {
        return Err("the channel did not open".into());
    }
    chat.send_text("through the relay").await?;
    match tokio::time::timeout(Duration::from_secs(10), chat.recv()).await? {
        Some(ChannelData::Text(text)) => println!("echoed: {text}"),
        other => return Err(format!("unexpected {other:?}").into()),
    }

    let stats = a.get_stats().await?;
    let pair = stats.selected_candidate_pair().ok_or("no selected pair")?;
    let local = stats
        .candidate(&pair.local_candidate_id)
        .ok_or("no local candidate")?;
    println!(
        "selected local candidate: {} {}:{}",
        local.candidate_type, local.address, local.port
    );
    if local.candidate_type != "relay" {
        return Err("the pair is not relayed".into());
    }
    let metrics = server.metrics().await.ok_or("the server stopped")?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("realtimer_turn_allocations"))
    {
        println!("metrics: {line}");
    }

    a.close().await;
    b.close().await;
    server.shutdown().await;
    println!("done");
    Ok(())
}
