//! Two agents on real UDP sockets over loopback, driven by tokio: they
//! connect, then echo application datagrams over the selected pair.
#![allow(clippy::disallowed_methods)] // a real-socket driver reads the real clock

use std::time::{Duration, Instant};

use realtimer_ice::{IceAgent, IceConfig, IceConnectionState, IceEvent, Transmit};
use tokio::net::UdpSocket;

struct Peer {
    agent: IceAgent,
    socket: UdpSocket,
    received_data: Vec<Vec<u8>>,
}

impl Peer {
    async fn new(controlling: bool, seed: u64) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let config = IceConfig {
            allow_loopback: true,
            seed,
            ..IceConfig::default()
        };
        let mut agent = IceAgent::new(config, controlling);
        agent.gather(Instant::now(), &[socket.local_addr().unwrap()]);
        Peer {
            agent,
            socket,
            received_data: Vec::new(),
        }
    }

    async fn flush(&mut self) {
        while let Some(Transmit {
            source,
            destination,
            contents,
            ..
        }) = self.agent.poll_transmit()
        {
            assert_eq!(source, self.socket.local_addr().unwrap());
            self.socket.send_to(&contents, destination).await.unwrap();
        }
    }

    fn connected(&self) -> bool {
        matches!(
            self.agent.connection_state(),
            IceConnectionState::Connected | IceConnectionState::Completed
        )
    }
}

/// Hands one agent's trickled candidates to the other.
fn signal(from: &mut Peer, to: &mut Peer) {
    while let Some(event) = from.agent.poll_event() {
        match event {
            IceEvent::LocalCandidate(c) => {
                let sdp = c.to_sdp(Some(&from.agent.local_credentials().ufrag));
                // Through text, as signaling would carry it.
                let parsed = realtimer_sdp::Candidate::parse(&sdp.to_string()).unwrap();
                to.agent
                    .add_remote_candidate(Instant::now(), &parsed)
                    .unwrap();
            }
            IceEvent::EndOfCandidates => to.agent.add_remote_end_of_candidates(),
            _ => {}
        }
    }
}

async fn step(a: &mut Peer, b: &mut Peer) {
    a.flush().await;
    b.flush().await;
    let next = [a.agent.poll_timeout(), b.agent.poll_timeout()]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| Instant::now() + Duration::from_millis(100));
    let mut buf_a = [0u8; 1500];
    let mut buf_b = [0u8; 1500];
    tokio::select! {
        r = a.socket.recv_from(&mut buf_a) => {
            let (len, from) = r.unwrap();
            let local = a.socket.local_addr().unwrap();
            if !a.agent.handle_receive(Instant::now(), from, local, &buf_a[..len]) {
                a.received_data.push(buf_a[..len].to_vec());
            }
        }
        r = b.socket.recv_from(&mut buf_b) => {
            let (len, from) = r.unwrap();
            let local = b.socket.local_addr().unwrap();
            if !b.agent.handle_receive(Instant::now(), from, local, &buf_b[..len]) {
                // Echo application data back where it came from.
                b.socket.send_to(&buf_b[..len], from).await.unwrap();
                b.received_data.push(buf_b[..len].to_vec());
            }
        }
        _ = tokio::time::sleep_until(next.into()) => {}
    }
    let now = Instant::now();
    a.agent.handle_timeout(now);
    b.agent.handle_timeout(now);
}

#[tokio::test]
async fn two_agents_connect_over_loopback_and_echo() {
    let mut a = Peer::new(true, 1).await;
    let mut b = Peer::new(false, 2).await;
    a.agent
        .set_remote_credentials(b.agent.local_credentials().clone());
    b.agent
        .set_remote_credentials(a.agent.local_credentials().clone());

    let deadline = Instant::now() + Duration::from_secs(10);
    while !(a.connected() && b.connected()) {
        assert!(
            Instant::now() < deadline,
            "not connected: {:?} / {:?}",
            a.agent.connection_state(),
            b.agent.connection_state()
        );
        signal(&mut a, &mut b);
        signal(&mut b, &mut a);
        step(&mut a, &mut b).await;
    }
    let selected = a.agent.selected_pair().unwrap().clone();
    assert_eq!(selected.local_base, a.socket.local_addr().unwrap());
    assert_eq!(selected.remote.address, b.socket.local_addr().unwrap());

    // Application data over the selected pair, echoed by b.
    for i in 0..5u8 {
        let payload = vec![0x80 | i; 100]; // first byte ≥ 128: not STUN
        a.socket
            .send_to(&payload, selected.remote.address)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.received_data.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "echo incomplete: {:?}",
            a.received_data.len()
        );
        step(&mut a, &mut b).await;
    }
    assert_eq!(b.received_data.len(), 5);
    assert_eq!(a.received_data[4], vec![0x84; 100]);
    // Both ends nominated the same pair.
    let b_selected = b.agent.selected_pair().unwrap();
    assert_eq!(b_selected.remote.address, a.socket.local_addr().unwrap());
}
