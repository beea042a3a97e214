//! Floods from many source addresses (SOURCES loopback sockets, round
//! robin) that need no connection: STUN at the STUN/TURN port, ICE
//! checks and DTLS ClientHellos at the forwarding unit's port. Also the
//! normal STUN client beside them: a Binding every 10 ms, its RTT.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use realtimer_server::latency::LatencyHistogram;
use realtimer_stun::attributes::{
    IceControlling, Nonce, Priority, Realm, RequestedTransport, Username,
};
use realtimer_stun::{
    Class, IntegrityKey, Message, MessageEncoder, Method, PasswordAlgorithm, TransactionId,
};

use crate::now;

/// What every source sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Datagram {
    /// A 20-byte Binding request, no attributes.
    Binding,
    /// A Binding request signed with the TURN user's long-term key (the
    /// realm and nonce of a 401 first): `(user, password)`.
    SignedBinding(String, String),
    /// An Allocate signed with a wrong password (the failed-auth path and
    /// its throttle): `user`.
    BadAllocate(String),
    /// An ICE check for a participant: `(username, password)`; a wrong
    /// password makes it fail MESSAGE-INTEGRITY.
    Check(String, String),
    /// These bytes as they are (a DTLS ClientHello).
    Raw(Vec<u8>),
}

/// Per source, what a signed message needs: the realm and nonce its
/// 401 gave.
type Nonces = Vec<Option<(String, String)>>;

pub(crate) struct SourceFlood {
    sockets: Vec<UdpSocket>,
    target: SocketAddr,
    datagram: Datagram,
    nonces: Nonces,
    /// Datagrams and bytes sent, answers and their bytes.
    pub(crate) sent: (u64, u64),
    pub(crate) answers: (u64, u64),
    buf: Vec<u8>,
}

fn transaction(n: u64, source: usize) -> TransactionId {
    let mut id = [0u8; 12];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..].copy_from_slice(&(source as u32).to_be_bytes());
    TransactionId::new(id)
}

/// Writes `datagram` for source `i`, its `n`th.
fn encode(
    out: &mut Vec<u8>,
    datagram: &Datagram,
    nonce: Option<&(String, String)>,
    n: u64,
    i: usize,
) {
    out.clear();
    let tid = transaction(n, i);
    match datagram {
        Datagram::Binding => {
            MessageEncoder::new(out, Class::Request, Method::BINDING, tid).finish();
        }
        Datagram::SignedBinding(user, password) => {
            signed(out, Method::BINDING, tid, user, password, nonce);
        }
        Datagram::BadAllocate(user) => {
            signed(out, Method::ALLOCATE, tid, user, "a-wrong-password", nonce);
        }
        Datagram::Check(username, password) => {
            let mut enc = MessageEncoder::new(out, Class::Request, Method::BINDING, tid);
            let _ = enc.add(&Username(username));
            let _ = enc.add(&Priority(1_862_270_975));
            let _ = enc.add(&IceControlling(n));
            if let Ok(key) = IntegrityKey::short_term(password) {
                let _ = enc.add_message_integrity(&key);
            }
            let _ = enc.add_fingerprint();
        }
        Datagram::Raw(bytes) => out.extend_from_slice(bytes),
    }
}

/// A request with long-term credentials (RFC 8489 §9.2.3); an Allocate
/// asks for a UDP relay.
fn signed(
    out: &mut Vec<u8>,
    method: Method,
    tid: TransactionId,
    user: &str,
    password: &str,
    nonce: Option<&(String, String)>,
) {
    let mut enc = MessageEncoder::new(out, Class::Request, method, tid);
    if method == Method::ALLOCATE {
        let _ = enc.add(&RequestedTransport::UDP);
    }
    let _ = enc.add(&Username(user));
    if let Some((realm, nonce)) = nonce {
        let _ = enc.add(&Realm(realm));
        let _ = enc.add(&Nonce(nonce));
        if let Ok(key) = IntegrityKey::long_term(user, realm, password, PasswordAlgorithm::Md5) {
            let _ = enc.add_message_integrity(&key);
        }
    }
    enc.finish();
}

impl SourceFlood {
    /// `sources` sockets on 127.0.0.1; signed datagrams first fetch each
    /// source's nonce (an unsigned Allocate, its 401).
    pub(crate) async fn new(
        sources: usize,
        target: SocketAddr,
        datagram: Datagram,
    ) -> std::io::Result<SourceFlood> {
        let mut sockets = Vec::with_capacity(sources);
        for _ in 0..sources {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.set_nonblocking(true)?;
            sockets.push(s);
        }
        let mut flood = SourceFlood {
            sockets,
            target,
            datagram,
            nonces: vec![None; sources],
            sent: (0, 0),
            answers: (0, 0),
            buf: Vec::with_capacity(1500),
        };
        if matches!(
            flood.datagram,
            Datagram::SignedBinding(..) | Datagram::BadAllocate(_)
        ) {
            flood.fetch_nonces().await;
        }
        Ok(flood)
    }

    async fn fetch_nonces(&mut self) {
        let mut buf = Vec::new();
        let mut answer = vec![0u8; 1500];
        for attempt in 0..20u64 {
            for (i, s) in self.sockets.iter().enumerate() {
                if self.nonces[i].is_none() {
                    buf.clear();
                    let mut enc = MessageEncoder::new(
                        &mut buf,
                        Class::Request,
                        Method::ALLOCATE,
                        transaction(attempt, i),
                    );
                    let _ = enc.add(&RequestedTransport::UDP);
                    enc.finish();
                    let _ = s.send_to(&buf, self.target);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            for (i, s) in self.sockets.iter().enumerate() {
                while let Ok((n, _)) = s.recv_from(&mut answer) {
                    let Ok(m) = Message::decode(&answer[..n]) else {
                        continue;
                    };
                    if let (Ok(Some(Realm(r))), Ok(Some(Nonce(nonce)))) = (m.get(), m.get()) {
                        self.nonces[i] = Some((r.to_owned(), nonce.to_owned()));
                    }
                }
            }
            if self.nonces.iter().all(Option::is_some) {
                return;
            }
        }
        eprintln!(
            "only {} of {} sources got a nonce",
            self.nonces.iter().filter(|n| n.is_some()).count(),
            self.nonces.len()
        );
    }

    /// Floods at `pps` for `window`, reading answers every 10 ms.
    pub(crate) async fn run(&mut self, pps: u32, window: Duration) {
        let started = now();
        let mut next_read = started;
        let mut answer = vec![0u8; 2048];
        let mut n = 0u64;
        loop {
            let at = now();
            let elapsed = at.duration_since(started);
            if elapsed >= window {
                break;
            }
            let due = (elapsed.as_secs_f64() * f64::from(pps)) as u64;
            while n < due {
                let i = (n % self.sockets.len() as u64) as usize;
                encode(&mut self.buf, &self.datagram, self.nonces[i].as_ref(), n, i);
                n += 1;
                if self.sockets[i].send_to(&self.buf, self.target).is_ok() {
                    self.sent.0 += 1;
                    self.sent.1 += self.buf.len() as u64;
                }
            }
            if at >= next_read {
                next_read = at + Duration::from_millis(10);
                self.drain(&mut answer);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.drain(&mut answer);
    }

    fn drain(&mut self, buffer: &mut [u8]) {
        for s in &self.sockets {
            while let Ok((len, _)) = s.recv_from(buffer) {
                self.answers.0 += 1;
                self.answers.1 += len as u64;
            }
        }
    }
}

/// The normal STUN client: a Binding every 10 ms at `target`; RTT of
/// each answer, and how many got none within a second.
#[derive(Default)]
pub(crate) struct Probe {
    pub(crate) rtt: LatencyHistogram,
    pub(crate) sent: u64,
    pub(crate) answered: u64,
}

impl Probe {
    pub(crate) async fn run(target: SocketAddr, window: Duration) -> std::io::Result<Probe> {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let mut probe = Probe::default();
        let mut pending: HashMap<TransactionId, Instant> = HashMap::new();
        let started = now();
        let mut buf = Vec::with_capacity(64);
        let mut answer = vec![0u8; 1500];
        let mut next = started;
        while now().duration_since(started) < window {
            if now() >= next {
                next += Duration::from_millis(10);
                let tid = transaction(probe.sent, usize::MAX);
                buf.clear();
                MessageEncoder::new(&mut buf, Class::Request, Method::BINDING, tid).finish();
                socket.send_to(&buf, target).await?;
                pending.insert(tid, now());
                probe.sent += 1;
            }
            if let Ok(Ok((n, _))) =
                tokio::time::timeout_at(next.into(), socket.recv_from(&mut answer)).await
            {
                if let Ok(m) = Message::decode(&answer[..n]) {
                    if let Some(at) = pending.remove(&m.transaction_id()) {
                        probe.answered += 1;
                        probe.rtt.record(now().duration_since(at));
                    }
                }
            }
        }
        Ok(probe)
    }
}

/// The size of the answer to each unauthenticated request a forged
/// source could send (RFC 8489 §6.3.4 and RFC 8656 §7.2, the first 401):
/// `(request, its bytes, the answer's bytes)`.
pub(crate) async fn amplification(
    target: SocketAddr,
) -> std::io::Result<Vec<(&'static str, usize, usize)>> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let mut out = Vec::new();
    let mut answer = vec![0u8; 1500];
    for (n, name) in [
        "Binding",
        "Binding with FINGERPRINT",
        "Allocate without credentials",
    ]
    .into_iter()
    .enumerate()
    {
        let mut request = Vec::new();
        let tid = transaction(n as u64, usize::MAX - 1);
        match n {
            0 => {
                MessageEncoder::new(&mut request, Class::Request, Method::BINDING, tid).finish();
            }
            1 => {
                let _ = MessageEncoder::new(&mut request, Class::Request, Method::BINDING, tid)
                    .add_fingerprint();
            }
            _ => {
                let mut enc =
                    MessageEncoder::new(&mut request, Class::Request, Method::ALLOCATE, tid);
                let _ = enc.add(&RequestedTransport::UDP);
                enc.finish();
            }
        }
        socket.send_to(&request, target).await?;
        let len = match tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut answer))
            .await
        {
            Ok(Ok((len, _))) => len,
            _ => 0,
        };
        out.push((name, request.len(), len));
    }
    Ok(out)
}
