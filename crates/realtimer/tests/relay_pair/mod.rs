//! Two `PeerConnection`s in one process with `iceTransportPolicy: relay`
//! and one TURN server, candidates trickled between them: shared by the
//! relay tests and the relay benchmark.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use realtimer::{
    DataChannel, DataChannelInit, IceTransportPolicy, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent, PeerConnectionEvents,
};
use tokio::sync::mpsc;

use super::coturn::USER;

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

/// Forwards `from`'s candidates to `to` and records them; hands incoming
/// data channels out.
fn pump(
    mut events: PeerConnectionEvents,
    to: PeerConnection,
    channels: mpsc::UnboundedSender<DataChannel>,
    candidates: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            match e {
                PeerConnectionEvent::IceCandidate(c) => {
                    if let Some(c) = &c {
                        candidates.lock().unwrap().push(c.candidate.clone());
                    }
                    let _ = to.add_ice_candidate(c).await;
                }
                PeerConnectionEvent::DataChannel(dc) => {
                    let _ = channels.send(dc);
                }
                _ => {}
            }
        }
    });
}

pub struct RelayPair {
    pub a: PeerConnection,
    pub b: PeerConnection,
    pub b_channels: mpsc::UnboundedReceiver<DataChannel>,
    /// Every candidate either side signalled.
    pub candidates: Arc<Mutex<Vec<String>>>,
}

pub async fn relay_pair(config: PeerConnectionConfig) -> RelayPair {
    let a = PeerConnection::new(config.clone()).await.unwrap();
    let b = PeerConnection::new(config).await.unwrap();
    let candidates = Arc::new(Mutex::new(Vec::new()));
    let (a_tx, _) = mpsc::unbounded_channel();
    let (b_tx, b_channels) = mpsc::unbounded_channel();
    pump(a.events().unwrap(), b.clone(), a_tx, candidates.clone());
    pump(b.events().unwrap(), a.clone(), b_tx, candidates.clone());
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

/// `a` offers, `b` answers.
pub async fn negotiate(a: &PeerConnection, b: &PeerConnection) {
    let offer = a.create_offer().await.unwrap();
    b.set_remote_description(offer.clone()).await.unwrap();
    a.set_local_description(offer).await.unwrap();
    let answer = b.create_answer().await.unwrap();
    a.set_remote_description(answer.clone()).await.unwrap();
    b.set_local_description(answer).await.unwrap();
}
