//! Two `PeerConnection`s in one process with `iceTransportPolicy: relay`
//! and one TURN server, candidates trickled between them: shared by the
//! relay tests and the relay benchmark.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use realtimer::{
    DataChannel, DataChannelInit, IceTransportPolicy, PeerConnection, PeerConnectionConfig,
};
use tokio::sync::mpsc;

use crate::coturn::USER;
pub use crate::pair::negotiate;
use crate::pair::pump_recording;

/// Relay-only on 127.0.0.1 with `turn_url` (when given), `password` for
/// [`USER`], and `ca` trusted for `turns:`.
pub fn relay_config(
    turn_url: Option<&str>,
    password: &str,
    ca: Option<&str>,
) -> PeerConnectionConfig {
    let mut c = PeerConnectionConfig::default()
        .with_loopback(true)
        .with_ice_transport_policy(IceTransportPolicy::Relay);
    c.interfaces = vec!["127.0.0.1".parse().unwrap()];
    c.turn_tls_ca_pem = ca.map(str::to_owned);
    if let Some(url) = turn_url {
        c = c.with_turn_server(url, USER, password);
    }
    c
}

/// Two relay-only connections whose candidates reach each other.
#[derive(Debug)]
pub struct RelayPair {
    /// The offerer.
    pub a: PeerConnection,
    /// The answerer.
    pub b: PeerConnection,
    /// The channels `b` is offered.
    pub b_channels: mpsc::UnboundedReceiver<DataChannel>,
    /// Every candidate either side signalled.
    pub candidates: Arc<Mutex<Vec<String>>>,
}

/// Two connections with `config` (see [`relay_config`]), their
/// candidates trickled to each other; nothing negotiated yet.
pub async fn relay_pair(config: PeerConnectionConfig) -> RelayPair {
    let a = PeerConnection::new(config.clone()).await.unwrap();
    let b = PeerConnection::new(config).await.unwrap();
    let candidates = Arc::new(Mutex::new(Vec::new()));
    let (a_tx, _) = mpsc::unbounded_channel();
    let (b_tx, b_channels) = mpsc::unbounded_channel();
    let (a_events, b_events) = (a.events().unwrap(), b.events().unwrap());
    pump_recording(a_events, b.clone(), a_tx, Some(candidates.clone()));
    pump_recording(b_events, a.clone(), b_tx, Some(candidates.clone()));
    RelayPair {
        a,
        b,
        b_channels,
        candidates,
    }
}

impl RelayPair {
    /// Opens a "chat" channel from `a`, negotiates, and waits (`wait` for
    /// `a`'s end) until both ends are open.
    pub async fn open_chat(&mut self, wait: Duration) -> (DataChannel, DataChannel) {
        let chat = self
            .a
            .create_data_channel("chat", DataChannelInit::default())
            .await
            .unwrap();
        negotiate(&self.a, &self.b).await;
        tokio::time::timeout(wait, chat.wait_open())
            .await
            .expect("the channel opens through the relay");
        let remote = tokio::time::timeout(Duration::from_secs(5), self.b_channels.recv())
            .await
            .expect("the datachannel event")
            .expect("the pair is alive");
        (chat, remote)
    }
}
