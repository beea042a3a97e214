//! A userspace UDP relay that impairs the media one way, so two receivers
//! (ours and Chromium's) can be compared on the same impaired link in the
//! same run: the machine has no netem, and Chromium cannot join netsim.
//!
//! The receiver is told the relay's `address` as the sender's only
//! candidate (and the sender is told none of the receiver's), so every
//! packet of the call goes through it: the receiver's packets go on to the
//! sender from a socket of the relay's for each address they came from
//! (as a NAT maps them), which the sender's ICE agent learns as
//! peer-reflexive candidates (RFC 8445 §7.3.1.3); the sender's packets
//! come back out of `address` to that address. Of those, RTP packets (RFC 5761 §4: first byte
//! 128..=191, payload type outside RTCP's 64..=95) are impaired as
//! netsim's links do: lost with probability `loss`, else delayed by a draw
//! from 0..=`jitter`, first in first out (a packet waits for the one
//! before it). Everything else (STUN, DTLS, RTCP) passes untouched.
//!
//! [`start_on`] may drop the receiver's RTP towards the sender too.
//!
//! The fate of the n-th RTP packet depends only on the seed and n, so two
//! relays with one seed impair two equal streams identically.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How the relay impairs RTP from the sender to the receiver.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability that a loss starts at an RTP packet.
    pub loss: f64,
    /// Packets each loss takes, from the one it starts at (1: independent
    /// losses; 2: pairs, which in-band FEC alone cannot rebuild whole).
    pub burst: u64,
    /// Extra delay drawn uniformly from 0..=jitter (FIFO).
    pub jitter: Duration,
    /// Seed of the per-packet draws.
    pub seed: u64,
}

/// What the relay did to the RTP it carried.
#[derive(Debug, Default)]
pub struct RelayCounts {
    /// RTP packets from the sender.
    pub rtp: AtomicU64,
    /// Of those, dropped.
    pub dropped: AtomicU64,
    /// RTP packets from the receiver (towards the sender).
    pub reverse_rtp: AtomicU64,
    /// Of those, dropped ([`start_on`]'s `reverse_loss`).
    pub reverse_dropped: AtomicU64,
}

/// A running relay; its tasks end when it is dropped.
#[derive(Debug)]
pub struct ImpairedRelay {
    /// The address to give the receiver as the sender's candidate.
    pub address: SocketAddr,
    /// What it did so far.
    pub counts: Arc<RelayCounts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ImpairedRelay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Mixed into the seed for the receiver's packets' draws.
const REVERSE_SEED: u64 = 0x7265_7665_7273_6500;

/// SplitMix64 (Steele, Lea, Flood 2014): a well-mixed 64-bit value of
/// `x`, so each packet's draw is a function of the seed and its index.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform draw in [0, 1) for `stream` of packet `n`.
fn uniform(seed: u64, n: u64, stream: u64) -> f64 {
    let x = splitmix64(seed ^ splitmix64(n.wrapping_mul(2).wrapping_add(stream)));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn is_rtp(packet: &[u8]) -> bool {
    packet.len() >= 12
        && (128..=191).contains(&packet[0])
        && !(64..=95).contains(&(packet[1] & 0x7f))
}

/// Starts a relay in front of `sender` (the sender's own candidate) on
/// 127.0.0.1.
pub async fn start(sender: SocketAddr, impairment: Impairment) -> ImpairedRelay {
    start_on(IpAddr::from([127, 0, 0, 1]), sender, impairment, 0.0).await
}

/// As [`start`] on `ip` (an address the receiver reaches, e.g. in a
/// network namespace), and dropping the receiver's RTP towards the
/// sender too, each packet with probability `reverse_loss` (independent
/// losses, no jitter), so both ends' retransmissions are put to work.
pub async fn start_on(
    ip: IpAddr,
    sender: SocketAddr,
    impairment: Impairment,
    reverse_loss: f64,
) -> ImpairedRelay {
    let front = Arc::new(UdpSocket::bind((ip, 0)).await.unwrap());
    let address = front.local_addr().unwrap();
    let counts = Arc::new(RelayCounts::default());
    // What goes out of `front`, to whom, when: RTP first in first out.
    let (due_tx, mut due_rx) = mpsc::unbounded_channel::<(Instant, SocketAddr, Vec<u8>)>();
    // Each address of the receiver gets a socket of its own towards the
    // sender (as a NAT maps them), so the sender's ICE agent tells them
    // apart; the sender's packets come back to that address.
    let forward = {
        let (front, counts) = (front.clone(), counts.clone());
        tokio::spawn(async move {
            let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut tasks = Vec::new();
            let state = Arc::new(Mutex::new(Fates {
                last_due: Instant::now(),
                lost_until: 0,
            }));
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                let back = match backs.get(&from) {
                    Some(b) => b.clone(),
                    None => {
                        let Ok(b) = UdpSocket::bind((ip, 0)).await else {
                            continue;
                        };
                        let b = Arc::new(b);
                        backs.insert(from, b.clone());
                        tasks.push(AbortOnDrop(tokio::spawn(carry_back(
                            b.clone(),
                            from,
                            impairment,
                            counts.clone(),
                            state.clone(),
                            due_tx.clone(),
                        ))));
                        b
                    }
                };
                if is_rtp(&buf[..n]) {
                    let index = counts.reverse_rtp.fetch_add(1, Ordering::Relaxed);
                    // Draws of their own, apart from the sender's packets'.
                    let seed = splitmix64(impairment.seed ^ REVERSE_SEED);
                    if uniform(seed, index, 0) < reverse_loss {
                        counts.reverse_dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                let _ = back.send_to(&buf[..n], sender).await;
            }
        })
    };
    let out = tokio::spawn(async move {
        // Non-RTP is due at once and may pass RTP still waiting: only RTP
        // keeps its order, as the jitter applies to it alone.
        let mut waiting: VecDeque<(Instant, SocketAddr, Vec<u8>)> = VecDeque::new();
        loop {
            let next_due = waiting.front().map(|(due, _, _)| *due);
            tokio::select! {
                item = due_rx.recv() => {
                    let Some((due, to, packet)) = item else { break };
                    if is_rtp(&packet) {
                        waiting.push_back((due, to, packet));
                    } else {
                        let _ = front.send_to(&packet, to).await;
                    }
                }
                () = async {
                    match next_due {
                        Some(due) => tokio::time::sleep_until(due).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some((_, to, packet)) = waiting.pop_front() {
                        let _ = front.send_to(&packet, to).await;
                    }
                }
            }
        }
    });
    ImpairedRelay {
        address,
        counts,
        tasks: vec![forward, out],
    }
}

/// Aborts its task when dropped (with the relay's tasks).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the relay remembers between packets.
struct Fates {
    /// When the last RTP packet is due (FIFO).
    last_due: Instant,
    /// RTP packets before this index are lost (the loss that started
    /// last takes `burst` packets).
    lost_until: u64,
}

/// The sender's packets to `receiver` through `back`: RTP lost or given a
/// due time (FIFO across the relay), the rest due at once.
async fn carry_back(
    back: Arc<UdpSocket>,
    receiver: SocketAddr,
    impairment: Impairment,
    counts: Arc<RelayCounts>,
    state: Arc<Mutex<Fates>>,
    due_tx: mpsc::UnboundedSender<(Instant, SocketAddr, Vec<u8>)>,
) {
    let mut buf = vec![0u8; 65_536];
    while let Ok((n, _)) = back.recv_from(&mut buf).await {
        let packet = buf[..n].to_vec();
        let now = Instant::now();
        if !is_rtp(&packet) {
            let _ = due_tx.send((now, receiver, packet));
            continue;
        }
        let index = counts.rtp.fetch_add(1, Ordering::Relaxed);
        let due = {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            if uniform(impairment.seed, index, 0) < impairment.loss {
                state.lost_until = index + impairment.burst.max(1);
            }
            if index < state.lost_until {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let delay = impairment
                .jitter
                .mul_f64(uniform(impairment.seed, index, 1));
            state.last_due = state.last_due.max(now + delay);
            state.last_due
        };
        let _ = due_tx.send((due, receiver, packet));
    }
}

/// `candidate` (an `a=candidate` value) with its address and port
/// replaced by `to`, as a host candidate; `None` for a TCP candidate or
/// one that does not parse (only UDP goes through the relay).
pub fn candidate_via(candidate: &str, to: SocketAddr) -> Option<String> {
    let fields: Vec<&str> = candidate.split_whitespace().collect();
    // foundation component transport priority address port "typ" type ...
    if fields.len() < 8 || !fields[2].eq_ignore_ascii_case("udp") {
        return None;
    }
    Some(format!(
        "{} {} udp {} {} {} typ host",
        fields[0],
        fields[1],
        fields[3],
        to.ip(),
        to.port()
    ))
}

/// The UDP address of `candidate`, if it is a UDP candidate.
pub fn candidate_address(candidate: &str) -> Option<SocketAddr> {
    let fields: Vec<&str> = candidate.split_whitespace().collect();
    if fields.len() < 8 || !fields[2].eq_ignore_ascii_case("udp") {
        return None;
    }
    format!("{}:{}", fields[4], fields[5]).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_and_loss_near_its_rate() {
        let dropped = (0..100_000).filter(|&n| uniform(7, n, 0) < 0.05).count();
        assert!((4_500..5_500).contains(&dropped), "{dropped}");
        let mean: f64 = (0..100_000).map(|n| uniform(7, n, 1)).sum::<f64>() / 1e5;
        assert!((0.49..0.51).contains(&mean), "{mean}");
    }

    #[test]
    fn candidates_are_rewritten_to_the_relay() {
        let c = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host generation 0";
        let relay: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        assert_eq!(
            candidate_address(c),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        assert_eq!(
            candidate_via(c, relay).unwrap(),
            "candidate:1 1 udp 2130706431 127.0.0.1 6000 typ host"
        );
        assert_eq!(
            candidate_via(
                "candidate:1 1 tcp 1 127.0.0.1 1 typ host tcptype passive",
                relay
            ),
            None
        );
    }
}
