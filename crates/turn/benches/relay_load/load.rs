//! The load: N client sockets, each with one allocation whose channel is
//! bound to one of a few echo peers on loopback, sending ChannelData
//! (RFC 8656 §12.4) at a paced total rate or as a flood, and counting what
//! comes back. One thread: mio over every socket, batched receives
//! (recvmmsg, GRO) and sends (GSO for floods; the peers' echoes in
//! sendmmsg calls, with the server's own batched UDP, `realtimer_udp`), so the generator
//! costs a few system calls per message and stays far from the server's.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use quinn_udp::{Transmit, UdpSockRef};
use realtimer_turn::channel_data::{ChannelData, HEADER_LEN, MIN_CHANNEL};
use realtimer_udp::{BindOptions, Received, SendQueue, Sockets, UdpSocketState, BATCH_SIZE};
use std::os::fd::{AsFd, BorrowedFd};

use crate::client::{allocate_and_bind, User};
use crate::servers::cpu_seconds;

/// Echo peers: relayed traffic goes to several destinations, as real
/// traffic does.
const PEERS: usize = 8;
/// Flood: messages in flight per allocation.
const FLOOD_WINDOW: u64 = 512;
/// Flood: an allocation that got nothing back for this long writes its
/// in-flight messages off as lost and sends again.
const FLOOD_STALL: Duration = Duration::from_millis(50);
/// Paced: at most this many messages per loop turn (when behind).
const MAX_BURST: u64 = 4096;
/// Batched receives on one socket per event (a bound, should errors repeat).
const MAX_READS: usize = 1024;
/// After the window, echoes still in flight are waited for this long.
const DRAIN: Duration = Duration::from_millis(300);

/// One measurement's shape.
#[derive(Clone, Copy)]
pub(crate) struct Plan {
    /// Total offered messages per second; `None` floods.
    pub(crate) rate: Option<f64>,
    /// Application bytes per ChannelData message.
    pub(crate) msg_len: usize,
    pub(crate) warmup: Duration,
    pub(crate) window: Duration,
}

/// What one measurement saw.
pub(crate) struct Outcome {
    /// Messages sent and echoed back during the window.
    pub(crate) sent_window: u64,
    pub(crate) received_window: u64,
    /// Messages sent and echoed back over the whole run (loss).
    pub(crate) sent: u64,
    pub(crate) received: u64,
    /// Round-trip times of the window's echoes, µs, sorted.
    pub(crate) rtt_us: Vec<u32>,
    /// Server and generator CPU-seconds during the window.
    pub(crate) server_cpu: f64,
    pub(crate) generator_cpu: f64,
    pub(crate) window: Duration,
    /// Sends the kernel refused (buffer full).
    pub(crate) send_errors: u64,
}

/// A UDP socket with quinn-udp's batching state.
struct Endpoint {
    socket: UdpSocket,
    state: UdpSocketState,
}

impl Endpoint {
    fn bind(buffer: usize) -> io::Result<std::net::UdpSocket> {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let socket = realtimer_udp::bind(loopback, BindOptions::default().with_buffer(buffer))?;
        // Blocking while the allocation is set up.
        socket.set_nonblocking(false)?;
        Ok(socket)
    }

    fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_read_timeout(None)?;
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket);
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        Ok(Endpoint { socket, state })
    }

    /// One send; `segment` > 0 makes it a GSO train of that size.
    fn send(&self, destination: SocketAddr, contents: &[u8], segment: usize) -> io::Result<()> {
        let transmit = Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: (segment > 0 && segment < contents.len()).then_some(segment),
            src_ip: None,
        };
        self.state
            .try_send(UdpSockRef::from(&self.socket), &transmit)
    }
}

/// A client with its allocation.
struct Client {
    endpoint: Endpoint,
    sent: u64,
    received: u64,
    /// Flood: in-flight messages written off as lost.
    written_off: u64,
    last_progress: Instant,
}

/// The allocations, the echo peers and the counters.
pub(crate) struct Load {
    poll: Poll,
    server: SocketAddr,
    clients: Vec<Client>,
    /// Echo peers, with their addresses.
    peers: Vec<(SocketAddr, Endpoint)>,
    /// Echoes, sent in batches (sendmmsg, GSO) once a poll's events are read.
    echoes: SendQueue,
    received: Received,
    send_buf: Vec<u8>,
    /// One message's application data: the send time, then zeros.
    payload: Vec<u8>,
    start: Instant,
    send_errors: u64,
    rtt_us: Vec<u32>,
    recording: bool,
}

#[allow(clippy::disallowed_methods)] // a load generator reads the real clock
fn now() -> Instant {
    Instant::now()
}

impl Load {
    /// Sets up `allocations` allocations on `server` for `user`, each
    /// with a channel to one of the echo peers.
    pub(crate) fn new(server: SocketAddr, user: User<'_>, allocations: usize) -> io::Result<Load> {
        let poll = Poll::new()?;
        let mut peers = Vec::new();
        for j in 0..PEERS.min(allocations) {
            let mut peer = Endpoint::new(Endpoint::bind(8 << 20)?)?;
            poll.registry().register(
                &mut peer.socket,
                Token(allocations + j),
                Interest::READABLE,
            )?;
            peers.push((peer.socket.local_addr()?, peer));
        }
        let segments = peers.iter().map(|(_, p)| p.state.max_gso_segments()).min();
        let mut clients = Vec::with_capacity(allocations);
        for i in 0..allocations {
            let socket = Endpoint::bind(1 << 20)?;
            let peer = peers[i % peers.len()].0;
            allocate_and_bind(&socket, server, user, i as u64, (MIN_CHANNEL, peer), false)
                .map_err(|e| io::Error::new(e.kind(), format!("allocation {i}: {e}")))?;
            let mut endpoint = Endpoint::new(socket)?;
            poll.registry()
                .register(&mut endpoint.socket, Token(i), Interest::READABLE)?;
            clients.push(Client {
                endpoint,
                sent: 0,
                received: 0,
                written_off: 0,
                last_progress: now(),
            });
        }
        Ok(Load {
            poll,
            server,
            clients,
            peers,
            echoes: SendQueue::new(segments.unwrap_or(1)),
            received: Received::new(),
            send_buf: Vec::new(),
            payload: Vec::new(),
            start: now(),
            send_errors: 0,
            rtt_us: Vec::new(),
            recording: false,
        })
    }

    /// Runs `plan`: warm-up, the measured window (CPU of `server_pid` and
    /// of this process read at its edges), then a drain for late echoes.
    pub(crate) fn run(&mut self, plan: &Plan, server_pid: u32) -> io::Result<Outcome> {
        let own_pid = std::process::id();
        let mut events = Events::with_capacity(1024);
        self.start = now();
        let window_start = self.start + plan.warmup;
        let window_end = window_start + plan.window;
        let stop = window_end + DRAIN;
        let mut edges: Vec<(u64, u64, f64, f64)> = Vec::new();
        let mut sent_total = 0u64;
        loop {
            let t = now();
            let edge = if edges.is_empty() {
                window_start
            } else {
                window_end
            };
            if edges.len() < 2 && t >= edge {
                let received: u64 = self.clients.iter().map(|c| c.received).sum();
                edges.push((
                    sent_total,
                    received,
                    cpu_seconds(server_pid),
                    cpu_seconds(own_pid),
                ));
                self.recording = edges.len() == 1;
            }
            if t >= stop {
                break;
            }
            let timeout = if t >= window_end {
                (stop - t).min(Duration::from_millis(10))
            } else {
                match plan.rate {
                    Some(rate) => {
                        let due = ((t - self.start).as_secs_f64() * rate) as u64;
                        let mut burst = 0;
                        while sent_total < due && burst < MAX_BURST {
                            let i = (sent_total % self.clients.len() as u64) as usize;
                            self.send(i, 1, plan.msg_len, t);
                            sent_total += 1;
                            burst += 1;
                        }
                        let next = Duration::from_secs_f64((sent_total + 1) as f64 / rate);
                        (self.start + next).saturating_duration_since(now())
                    }
                    None => {
                        sent_total += self.flood(plan.msg_len, t);
                        // Sleep only while every window is full.
                        let room = self.clients.iter().any(|c| c.in_flight() < FLOOD_WINDOW);
                        if room {
                            Duration::ZERO
                        } else {
                            Duration::from_millis(1)
                        }
                    }
                }
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            }
            for event in events.iter() {
                let token = event.token().0;
                if token < self.clients.len() {
                    self.receive(token);
                } else {
                    self.echo(token - self.clients.len());
                }
            }
            self.echoes.send(&EchoPeers(&self.peers));
        }
        let [(sent0, received0, server0, own0), (sent1, received1, server1, own1)] = edges[..]
        else {
            return Err(io::Error::other("the window never ended"));
        };
        let mut rtt_us = std::mem::take(&mut self.rtt_us);
        rtt_us.sort_unstable();
        Ok(Outcome {
            sent_window: sent1 - sent0,
            received_window: received1 - received0,
            sent: sent_total,
            received: self.clients.iter().map(|c| c.received).sum(),
            rtt_us,
            server_cpu: server1 - server0,
            generator_cpu: own1 - own0,
            window: plan.window,
            send_errors: self.send_errors,
        })
    }

    /// Flood: fills every allocation's window, a GSO train per send.
    fn flood(&mut self, msg_len: usize, t: Instant) -> u64 {
        let mut sent = 0;
        for i in 0..self.clients.len() {
            let client = &mut self.clients[i];
            if client.in_flight() > 0 && t - client.last_progress > FLOOD_STALL {
                client.written_off = client.sent - client.received;
                client.last_progress = t;
            }
            let max = client
                .endpoint
                .state
                .max_gso_segments()
                .min(60_000 / (msg_len + HEADER_LEN))
                .max(1);
            let room = FLOOD_WINDOW
                .saturating_sub(client.in_flight())
                .min(max as u64);
            if room > 0 {
                self.send(i, room as usize, msg_len, t);
                sent += room;
            }
        }
        sent
    }

    /// Sends `count` ChannelData messages from client `i` in one call,
    /// stamped with the send time.
    fn send(&mut self, i: usize, count: usize, msg_len: usize, t: Instant) {
        let stamp = (t - self.start).as_nanos() as u64;
        self.payload.resize(msg_len.max(8), 0);
        self.payload[..8].copy_from_slice(&stamp.to_be_bytes());
        self.send_buf.clear();
        for _ in 0..count {
            ChannelData::encode(MIN_CHANNEL, &self.payload, false, &mut self.send_buf);
        }
        let client = &mut self.clients[i];
        client.sent += count as u64;
        let segment = self.payload.len() + HEADER_LEN;
        if client
            .endpoint
            .send(self.server, &self.send_buf, segment)
            .is_err()
        {
            self.send_errors += 1;
        }
    }

    /// Counts the echoes client `i` received, with their round trips.
    fn receive(&mut self, i: usize) {
        let t = now();
        let elapsed = (t - self.start).as_nanos() as u64;
        let client = &mut self.clients[i];
        for _ in 0..MAX_READS {
            let count = match self
                .received
                .read(&client.endpoint.socket, &client.endpoint.state)
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // An ICMP error from an earlier send: reported once.
                Err(_) => continue,
            };
            for datagram in self.received.datagrams(count) {
                let Ok(message) = ChannelData::decode(datagram.contents) else {
                    continue;
                };
                client.received += 1;
                client.last_progress = t;
                if self.recording && message.data.len() >= 8 {
                    let mut stamp = [0; 8];
                    stamp.copy_from_slice(&message.data[..8]);
                    let rtt = elapsed.saturating_sub(u64::from_be_bytes(stamp)) / 1000;
                    self.rtt_us.push(rtt.min(u64::from(u32::MAX)) as u32);
                }
            }
            if count < BATCH_SIZE {
                // Drained: a later datagram raises a new event.
                return;
            }
        }
    }

    /// Echo peer `j` queues every datagram back to where it came from.
    fn echo(&mut self, j: usize) {
        let (local, peer) = &self.peers[j];
        for _ in 0..MAX_READS {
            let count = match self.received.read(&peer.socket, &peer.state) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            for d in self.received.datagrams(count) {
                self.echoes.push(*local, d.source, d.contents);
            }
            if count < BATCH_SIZE {
                return;
            }
        }
    }
}

/// The echo peers by address, for [`SendQueue::send`].
struct EchoPeers<'a>(&'a [(SocketAddr, Endpoint)]);

impl Sockets for EchoPeers<'_> {
    fn udp(&self, local: SocketAddr) -> Option<(BorrowedFd<'_>, &UdpSocketState)> {
        let (_, peer) = self.0.iter().find(|(address, _)| *address == local)?;
        Some((peer.socket.as_fd(), &peer.state))
    }
}

impl Client {
    fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.received + self.written_off)
    }
}
