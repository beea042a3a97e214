//! Our TURN client (RFC 8656) against coturn's `turnserver` on loopback:
//! two relay-only agents on real UDP sockets, driven by tokio. Every
//! datagram coturn sends is recorded, so the test sees the exchange:
//! Allocate answered 401 then granted, CreatePermission, ChannelBind,
//! Refreshes before the lifetime ends, a stale nonce (438) followed,
//! ChannelData both ways, and the release on close.
//!
//! coturn grants 600 s whatever we ask, so the agents' clock is the real
//! one plus a skew the test moves forward: a jump of 9 minutes makes the
//! agents refresh their allocation, permissions and channels (to coturn,
//! only seconds have passed; its nonces go stale after 4 s).
#![allow(clippy::disallowed_methods)] // a real-socket driver reads the real clock

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use realtimer_ice::{
    Candidate, CandidateKind, IceAgent, IceConfig, IceConnectionState, IceEvent, Transport,
    TurnServer, TurnStreamDecoder,
};
use realtimer_stun::attributes::{ErrorCode, Lifetime};
use realtimer_stun::{Class, Message, Method};
use realtimer_test_support::coturn::{Coturn, PASSWORD, USER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// What coturn answered: (method, class, error code).
type Answer = (Method, Class, Option<u16>);

struct Peer {
    agent: IceAgent,
    /// Added to the real clock for the agent.
    skew: Duration,
    socket: UdpSocket,
    server: SocketAddr,
    /// The TCP connection to coturn, when a server is reached over TCP,
    /// with its local address and the decoder of what it carries.
    tcp: Option<(TcpStream, SocketAddr)>,
    decoder: TurnStreamDecoder,
    /// Connections the agent asked for, not opened yet.
    to_connect: Vec<(usize, SocketAddr)>,
    answers: Vec<Answer>,
    /// LIFETIME of every Allocate and Refresh success (seconds).
    lifetimes: Vec<u32>,
    channel_data_sent: usize,
    channel_data_received: usize,
    received: Vec<Vec<u8>>,
}

impl Peer {
    /// An agent reaching coturn at `server` over each of `transports`.
    async fn new(
        server: SocketAddr,
        transports: &[Transport],
        controlling: bool,
        seed: u64,
    ) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let config = IceConfig {
            allow_loopback: true,
            relay_only: true,
            turn_servers: transports
                .iter()
                .map(|t| TurnServer::udp(server, USER, PASSWORD).with_transport(*t))
                .collect(),
            seed,
            // The clock jumps: consent must survive it.
            consent_timeout: Duration::from_secs(3600),
            disconnected_timeout: Duration::from_secs(3600),
            ..IceConfig::default()
        };
        let mut agent = IceAgent::new(config, controlling);
        agent.gather(Instant::now(), &[socket.local_addr().unwrap()]);
        Peer {
            agent,
            skew: Duration::ZERO,
            socket,
            server,
            tcp: None,
            decoder: TurnStreamDecoder::new(),
            to_connect: Vec::new(),
            answers: Vec::new(),
            lifetimes: Vec::new(),
            channel_data_sent: 0,
            channel_data_received: 0,
            received: Vec::new(),
        }
    }

    async fn flush(&mut self) {
        for (server, address) in std::mem::take(&mut self.to_connect) {
            assert_eq!(address, self.server);
            let stream = TcpStream::connect(address).await.unwrap();
            let local = stream.local_addr().unwrap();
            self.agent.turn_connected(self.now(), server, local);
            self.tcp = Some((stream, local));
        }
        while let Some(t) = self.agent.poll_transmit() {
            self.send(t).await;
        }
        while let Some(t) = self.agent.poll_turn_stream() {
            if is_channel_data(&t.contents) {
                // RFC 8656 §12.5: padded to 4 over TCP.
                assert_eq!(t.contents.len() % 4, 0);
                self.channel_data_sent += 1;
            }
            let (stream, _) = self.tcp.as_mut().expect("a connection");
            stream.write_all(&t.contents).await.unwrap();
        }
    }

    /// `n` bytes coturn sent on the TCP connection are in the decoder.
    fn receive_stream(&mut self, n: usize) {
        let (_, local) = *self.tcp.as_ref().unwrap();
        self.decoder.filled(n);
        while let Some(m) = self.decoder.next_message().unwrap() {
            let m = m.to_vec();
            self.receive(self.server, local, &m);
        }
    }

    async fn send(&mut self, t: realtimer_ice::Transmit) {
        assert_eq!(t.destination, self.server, "relay-only: all to the server");
        if is_channel_data(&t.contents) {
            self.channel_data_sent += 1;
        }
        self.socket
            .send_to(&t.contents, t.destination)
            .await
            .unwrap();
    }

    fn receive(&mut self, from: SocketAddr, local: SocketAddr, datagram: &[u8]) {
        if from == self.server {
            if is_channel_data(datagram) {
                self.channel_data_received += 1;
            } else if let Ok(m) = Message::decode(datagram) {
                let code = m.get::<ErrorCode>().ok().flatten().map(|e| e.code);
                self.answers.push((m.method(), m.class(), code));
                if let Ok(Some(Lifetime(s))) = m.get::<Lifetime>() {
                    self.lifetimes.push(s);
                }
            }
        }
        if let Some(data) = self
            .agent
            .handle_receive_data(self.now(), from, local, datagram)
        {
            assert!(
                self.relayed().contains(&data.destination),
                "data arrives on a relay"
            );
            self.received.push(data.contents.to_vec());
        }
    }

    fn now(&self) -> Instant {
        Instant::now() + self.skew
    }

    fn connected(&self) -> bool {
        matches!(
            self.agent.connection_state(),
            IceConnectionState::Connected | IceConnectionState::Completed
        )
    }

    fn relayed(&self) -> Vec<SocketAddr> {
        self.relayed_candidates().map(|c| c.address).collect()
    }

    fn relayed_candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.agent
            .local_candidates()
            .filter(|c| c.kind == CandidateKind::Relayed)
    }

    fn count(&self, method: Method, class: Class, code: Option<u16>) -> usize {
        self.answers
            .iter()
            .filter(|a| **a == (method, class, code))
            .count()
    }
}

fn is_channel_data(d: &[u8]) -> bool {
    d.first().is_some_and(|b| (0x40..=0x4F).contains(b))
}

/// Hands one agent's trickled candidates to the other.
fn signal(from: &mut Peer, to: &mut Peer) {
    while let Some(event) = from.agent.poll_event() {
        match event {
            IceEvent::LocalCandidate(c) => {
                assert_eq!(c.kind, CandidateKind::Relayed, "relay-only signals relays");
                let sdp = c.to_sdp(Some(&from.agent.local_credentials().ufrag));
                to.agent.add_remote_candidate(to.now(), &sdp).unwrap();
            }
            IceEvent::EndOfCandidates => to.agent.add_remote_end_of_candidates(),
            IceEvent::OpenTurnConnection {
                server,
                address,
                transport,
            } => {
                assert_eq!(transport, Transport::Tcp);
                from.to_connect.push((server, address));
            }
            _ => {}
        }
    }
}

async fn step(a: &mut Peer, b: &mut Peer) {
    signal(a, b);
    signal(b, a);
    a.flush().await;
    b.flush().await;
    // Both agents have the same skew.
    let next = [a.agent.poll_timeout(), b.agent.poll_timeout()]
        .into_iter()
        .flatten()
        .min()
        .map_or(Duration::from_millis(100), |t| {
            t.saturating_duration_since(a.now())
                .min(Duration::from_millis(100))
        });
    let mut buf_a = [0u8; 1500];
    let mut buf_b = [0u8; 1500];
    let (a_local, b_local) = (
        a.socket.local_addr().unwrap(),
        b.socket.local_addr().unwrap(),
    );
    tokio::select! {
        r = a.socket.recv_from(&mut buf_a) => {
            let (len, from) = r.unwrap();
            a.receive(from, a_local, &buf_a[..len]);
        }
        r = b.socket.recv_from(&mut buf_b) => {
            let (len, from) = r.unwrap();
            b.receive(from, b_local, &buf_b[..len]);
        }
        n = read_tcp(&mut a.tcp, &mut a.decoder) => a.receive_stream(n),
        n = read_tcp(&mut b.tcp, &mut b.decoder) => b.receive_stream(n),
        _ = tokio::time::sleep(next) => {}
    }
    a.agent.handle_timeout(a.now());
    b.agent.handle_timeout(b.now());
}

/// Reads from the connection if there is one (never returns otherwise).
async fn read_tcp(
    tcp: &mut Option<(TcpStream, SocketAddr)>,
    decoder: &mut TurnStreamDecoder,
) -> usize {
    match tcp {
        Some((stream, _)) => {
            let n = stream.read(decoder.read_buf()).await.unwrap();
            assert!(n > 0, "coturn closed the connection");
            n
        }
        None => std::future::pending().await,
    }
}

/// Steps both agents until `done` or the deadline (then fails with `what`).
async fn run_until(
    a: &mut Peer,
    b: &mut Peer,
    secs: u64,
    what: &str,
    done: impl Fn(&Peer, &Peer) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(a, b) {
        assert!(
            Instant::now() < deadline,
            "{what}: a {:?}, b {:?}",
            a.answers,
            b.answers
        );
        step(a, b).await;
    }
}

#[tokio::test]
async fn allocate_permission_channel_refresh_and_data_through_coturn() {
    let coturn = Coturn::start(&["--stale-nonce=4"], None);
    let udp = [Transport::Udp];
    let mut a = Peer::new(coturn.address(), &udp, true, 1).await;
    let mut b = Peer::new(coturn.address(), &udp, false, 2).await;
    a.agent
        .set_remote_credentials(b.agent.local_credentials().clone());
    b.agent
        .set_remote_credentials(a.agent.local_credentials().clone());

    run_until(&mut a, &mut b, 15, "connect through coturn", |a, b| {
        a.connected() && b.connected()
    })
    .await;
    for p in [&a, &b] {
        // RFC 8656 §7.1 / RFC 8489 §9.2: the first Allocate is challenged.
        assert_eq!(
            p.answers.first(),
            Some(&(Method::ALLOCATE, Class::ErrorResponse, Some(401)))
        );
        assert_eq!(p.count(Method::ALLOCATE, Class::SuccessResponse, None), 1);
        assert_eq!(p.lifetimes, [600]);
        assert!(p.count(Method::CREATE_PERMISSION, Class::SuccessResponse, None) >= 1);
        let selected = p.agent.selected_pair().unwrap();
        assert_eq!(selected.local.kind, CandidateKind::Relayed);
        assert_eq!(selected.local_base, p.relayed()[0]);
    }
    // The selected relayed pair gets a channel (RFC 8656 §12).
    run_until(&mut a, &mut b, 5, "channels bound", |a, b| {
        [a, b]
            .iter()
            .all(|p| p.count(Method::CHANNEL_BIND, Class::SuccessResponse, None) >= 1)
    })
    .await;

    // Application data both ways, in ChannelData, while the clock jumps
    // twice by 9 minutes: two rounds of refreshes, the first past coturn's
    // nonce lifetime.
    let mut sent = 0usize;
    for round in 0..3 {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(if round == 0 { 5 } else { 2 }) {
            let payload = vec![0x80 | (sent % 64) as u8; 200 + sent];
            let t = a.agent.send_data(&payload).unwrap();
            a.send(t).await;
            let t = b.agent.send_data(&payload).unwrap();
            b.send(t).await;
            sent += 1;
            let pause = Instant::now() + Duration::from_millis(100);
            while Instant::now() < pause {
                step(&mut a, &mut b).await;
            }
        }
        if round < 2 {
            a.skew += Duration::from_secs(540);
            b.skew += Duration::from_secs(540);
        }
    }
    run_until(&mut a, &mut b, 5, "all data delivered", |a, b| {
        a.received.len() == sent && b.received.len() == sent
    })
    .await;
    for p in [&a, &b] {
        assert_eq!(p.received.last().unwrap().len(), 200 + sent - 1);
        assert!(p.channel_data_sent >= sent, "data went in ChannelData");
        assert!(p.channel_data_received >= sent, "data came in ChannelData");
        let answers = &p.answers;
        // RFC 8656 §8: refreshed before expiry, twice; the first time
        // after a 438 (RFC 8489 §9.2.5).
        assert_eq!(
            p.count(Method::REFRESH, Class::SuccessResponse, None),
            2,
            "{answers:?}"
        );
        assert!(
            p.count(Method::REFRESH, Class::ErrorResponse, Some(438)) >= 1,
            "{answers:?}"
        );
        // §9, §12: permissions and channels refreshed too.
        assert!(
            p.count(Method::CREATE_PERMISSION, Class::SuccessResponse, None) >= 3,
            "{answers:?}"
        );
        assert!(
            p.count(Method::CHANNEL_BIND, Class::SuccessResponse, None) >= 3,
            "{answers:?}"
        );
        assert!(p.connected(), "the allocation stayed up");
    }

    // Closing releases the allocation (Refresh, LIFETIME 0): coturn says yes.
    let refreshes = a.count(Method::REFRESH, Class::SuccessResponse, None);
    a.agent.close();
    a.flush().await;
    run_until(&mut a, &mut b, 3, "release answered", |a, _| {
        a.count(Method::REFRESH, Class::SuccessResponse, None) > refreshes
    })
    .await;
}

/// TURN over TCP (RFC 8656 §3.1): `a` reaches coturn over UDP and TCP,
/// `b` over TCP only. The TCP relayed candidate ranks below the UDP one
/// (RFC 8445 §5.1.2.1) under another foundation; the Allocate, checks and
/// padded ChannelData all travel framed on the connection.
#[tokio::test]
async fn allocation_and_channel_data_over_tcp_to_coturn() {
    let coturn = Coturn::start(&[], None);
    let both = [Transport::Udp, Transport::Tcp];
    let mut a = Peer::new(coturn.address(), &both, true, 3).await;
    let mut b = Peer::new(coturn.address(), &[Transport::Tcp], false, 4).await;
    a.agent
        .set_remote_credentials(b.agent.local_credentials().clone());
    b.agent
        .set_remote_credentials(a.agent.local_credentials().clone());
    run_until(
        &mut a,
        &mut b,
        15,
        "connect through coturn over TCP",
        |a, b| a.connected() && b.connected() && a.relayed().len() == 2,
    )
    .await;
    let tcp_local = a.tcp.as_ref().unwrap().1;
    let (tcp, udp): (Vec<Candidate>, Vec<Candidate>) = a
        .relayed_candidates()
        .cloned()
        .partition(|c| c.related_address == Some(tcp_local));
    assert_eq!(
        (tcp.len(), udp.len()),
        (1, 1),
        "the TCP allocation maps the connection"
    );
    assert!(udp[0].priority > tcp[0].priority, "{udp:?} {tcp:?}");
    assert_ne!(udp[0].foundation, tcp[0].foundation);
    for p in [&a, &b] {
        assert!(p
            .answers
            .contains(&(Method::ALLOCATE, Class::ErrorResponse, Some(401))));
    }
    assert_eq!(b.count(Method::ALLOCATE, Class::SuccessResponse, None), 1);

    run_until(&mut a, &mut b, 5, "channels bound", |a, b| {
        [a, b]
            .iter()
            .all(|p| p.count(Method::CHANNEL_BIND, Class::SuccessResponse, None) >= 1)
    })
    .await;
    // Lengths that need padding, both ways; twice: the controlled side
    // may still move to the nominated pair (and bind it a channel) during
    // the first round, the second goes over settled channels.
    let lengths = [1usize, 2, 3, 5, 1021, 1200];
    for round in 1..=2 {
        let (a_sent, b_sent) = (a.channel_data_sent, b.channel_data_sent);
        let (a_got, b_got) = (a.channel_data_received, b.channel_data_received);
        for len in lengths {
            let payload = vec![0x80 | (len % 64) as u8; len];
            if let Some(t) = a.agent.send_data(&payload) {
                a.send(t).await;
            }
            a.flush().await;
            if let Some(t) = b.agent.send_data(&payload) {
                b.send(t).await;
            }
            b.flush().await;
        }
        run_until(&mut a, &mut b, 5, "data over TCP delivered", |a, b| {
            a.received.len() == round * lengths.len() && b.received.len() == round * lengths.len()
        })
        .await;
        for p in [&a, &b] {
            let got: Vec<usize> = p
                .received
                .iter()
                .rev()
                .take(lengths.len())
                .rev()
                .map(Vec::len)
                .collect();
            assert_eq!(got, lengths);
        }
        if round == 2 {
            // Every message in ChannelData, b's padded on the connection.
            assert!(a.channel_data_sent - a_sent >= lengths.len());
            assert!(b.channel_data_sent - b_sent >= lengths.len());
            assert!(a.channel_data_received - a_got >= lengths.len());
            assert!(b.channel_data_received - b_got >= lengths.len());
        }
        let settle = Instant::now() + Duration::from_secs(1);
        while Instant::now() < settle {
            step(&mut a, &mut b).await;
        }
    }
}
