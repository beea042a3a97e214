//! The driver of the sans-IO TURN core (`realtimer_turn::Server`).
//!
//! The core and every UDP socket (listeners and one relay per allocation)
//! live on one thread of their own, polled with mio: a readable socket is
//! drained in batches (recvmmsg, and GRO where the kernel coalesced
//! datagrams) straight into the core, and what the core gives back is sent
//! in batches ([`realtimer_udp::SendQueue`]: GSO trains, sendmmsg across
//! clients).
//! When the arrival rate is high enough that a batch gathers within a few
//! tens of microseconds, a round waits that long before the next poll
//! (adaptive interrupt moderation, [`Moderation`]); at lighter loads it
//! answers at once, so batching costs no latency there. No
//! task switch, allocation or channel hop per datagram. TCP and TLS
//! clients run as tokio tasks ([`crate::streams`]) that hand messages
//! to this thread through a bounded queue and a mio waker, and receive
//! what the core sends through a bounded queue per connection. Connections
//! are limited in number (total and per client IP), and one without an
//! allocation is closed after an idle time. TCP allocations (RFC 6062)
//! get a listener on their relayed address and connections to peers as
//! tokio tasks ([`crate::peers`]), which hand a client's data
//! connection and its peer connection to one task that pipes bytes between
//! them. All protocol logic stays in the core; this file moves bytes and
//! owns the clock.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use realtimer_turn::{Event, Server, Transport};
use std::os::fd::{AsFd, BorrowedFd};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::peers::{self, PeerSide, PipeCounters};
use crate::streams::{self, ToClient};
use crate::ConnectionLimits;
use realtimer_udp::{
    allow_fragmentation, BindOptions, Received, SendQueue, Sockets, UdpSocketState, BATCH_SIZE,
};

/// The sockets the driver serves.
pub(crate) struct Listeners {
    /// UDP listeners (STUN and TURN), bound and non-blocking.
    pub(crate) udp: Vec<(SocketAddr, std::net::UdpSocket)>,
    /// TCP listeners, plain or TLS, bound and non-blocking.
    pub(crate) streams: Vec<(Transport, SocketAddr, std::net::TcpListener)>,
    /// The server certificate for the TLS listeners.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Connection bounds.
    pub(crate) limits: ConnectionLimits,
}

/// A client connection: its transport and the addresses at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ConnectionKey {
    pub(crate) transport: Transport,
    pub(crate) listener: SocketAddr,
    pub(crate) client: SocketAddr,
}

/// What tokio tasks hand the core's thread.
#[derive(Debug)]
pub(crate) enum Input {
    /// A new TCP connection on a stream listener.
    Accepted {
        key: ConnectionKey,
        stream: TcpStream,
    },
    /// One STUN or ChannelData message cut from a connection's stream.
    Message { key: ConnectionKey, data: Vec<u8> },
    /// The connection `id` ended (peer closed, error, garbage, or the core
    /// dropped it).
    Closed { key: ConnectionKey, id: u64 },
    /// A metrics scrape.
    Metrics(oneshot::Sender<String>),
    /// A peer connected to the TCP relay `relay` (RFC 6062 §5.3).
    PeerAccepted {
        relay: SocketAddr,
        peer: SocketAddr,
        stream: TcpStream,
    },
    /// A Connect's connection to its peer is up, or failed (`None`).
    PeerConnected {
        connection: u32,
        stream: Option<TcpStream>,
    },
}

/// Sends inputs to the core's thread and wakes it.
#[derive(Debug, Clone)]
pub(crate) struct CoreSender {
    tx: mpsc::Sender<Input>,
    waker: Arc<Waker>,
}

impl CoreSender {
    /// Queues `input` (waiting while the queue is full) and wakes the core;
    /// an error once the core has stopped.
    pub(crate) async fn send(&self, input: Input) -> Result<(), ()> {
        self.tx.send(input).await.map_err(|_| ())?;
        self.waker.wake().map_err(|_| ())
    }
}

/// A way to ask a running [`TurnServer`](crate::TurnServer) things, from
/// any task (an HTTP server's `/metrics`, say). Cheap to clone.
#[derive(Debug, Clone)]
pub struct TurnHandle {
    core: CoreSender,
}

impl TurnHandle {
    /// The core's and the driver's metrics in the Prometheus text
    /// exposition format (0.0.4): allocations, relayed bytes and packets,
    /// requests by outcome, connections, TCP relay bytes. `None` once the
    /// server has stopped.
    pub async fn metrics(&self) -> Option<String> {
        let (reply, answer) = oneshot::channel();
        self.core.send(Input::Metrics(reply)).await.ok()?;
        answer.await.ok()
    }
}

/// Inputs queued from tokio tasks; past this they wait.
const QUEUE: usize = 4096;
/// Inputs taken from the queue per round, so sockets are not starved.
const INPUTS_PER_ROUND: usize = 256;
/// Receive calls (each up to `BATCH_SIZE` datagrams) on one socket before
/// the next socket's turn.
const RECEIVES_PER_TURN: usize = 2;
/// The batch a round waits for, and the longest wait: see [`Moderation`].
/// Waiting for smaller batches was measured and refused: a 60 µs wait
/// whenever two datagrams were due (relay_load `many`, 40k datagrams/s)
/// saved 5% of the server's CPU and added 0.17 ms to the median RTT
/// (0.81 ms at `load60k`).
const COALESCE_BATCH: f64 = 8.0;
const COALESCE_MAX: Duration = Duration::from_micros(60);
/// How long the arrival rate is measured over.
const RATE_WINDOW: Duration = Duration::from_millis(2);
/// Timer slack of the driver's thread: a 40 µs wait must not become 90
/// (Linux's default slack is 50 µs).
const TIMER_SLACK_NS: u64 = 2_000;
/// Runs of datagrams queued (from sockets read one after another) before
/// they are sent: one `sendmmsg` then carries many clients' datagrams.
const SEND_BATCH: usize = 64;
/// Messages queued towards one connection before more are dropped (like
/// UDP under congestion: TURN data has no delivery guarantee).
const CONNECTION_QUEUE: usize = 256;
/// How often idle connections are looked for.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Socket buffers asked for (the kernel caps them at net.core.[rw]mem_max):
/// listeners carry every client's traffic ([`crate::bind`]), relays one
/// allocation's.
const RELAY_BUFFER: usize = 1 << 20;
/// The waker's token; sockets use their slot index.
const WAKER: Token = Token(usize::MAX);

#[allow(clippy::disallowed_methods)] // the driver owns the clock; the core takes it as input
fn now() -> Instant {
    Instant::now()
}

/// Starts the driver: the core's thread, and a tokio task per stream
/// listener. Call from inside the tokio runtime.
pub(crate) fn start(server: Server, listeners: Listeners) -> io::Result<Started> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = mpsc::channel::<Input>(QUEUE);
    let core = CoreSender { tx, waker };
    let stop = Arc::new(AtomicBool::new(false));
    let mut driver = Driver {
        stop: stop.clone(),
        server,
        poll,
        sockets: Vec::new(),
        free_slots: Vec::new(),
        by_address: HashMap::new(),
        ready: VecDeque::new(),
        rx,
        core: core.clone(),
        runtime: tokio::runtime::Handle::current(),
        connections: Connections::default(),
        tls: listeners.tls.map(tokio_rustls::TlsAcceptor::from),
        limits: listeners.limits,
        outgoing: SendQueue::new(1),
        tcp_relays: HashMap::new(),
        peers: HashMap::new(),
    };
    for (local, socket) in listeners.udp {
        driver.add_socket(local, UdpSocket::from_std(socket), false)?;
    }
    // GSO runs as long as the kernel takes (the same for every UDP socket).
    let gso = driver
        .sockets
        .iter()
        .flatten()
        .map(|s| s.state.max_gso_segments());
    driver.outgoing = SendQueue::new(gso.min().unwrap_or(1));
    let mut tasks = Vec::new();
    for (transport, local, listener) in listeners.streams {
        let listener = TcpListener::from_std(listener)?;
        let accept = streams::accept(listener, transport, local, core.clone());
        tasks.push(tokio::spawn(accept));
    }
    let thread = std::thread::Builder::new()
        .name("turn".into())
        .spawn(move || driver.run())?;
    Ok(Started {
        handle: TurnHandle { core },
        listener_tasks: tasks,
        thread,
        stop,
    })
}

/// A started driver: its handle, its listener tasks and its thread.
pub(crate) struct Started {
    pub(crate) handle: TurnHandle,
    pub(crate) listener_tasks: Vec<JoinHandle<()>>,
    pub(crate) thread: std::thread::JoinHandle<()>,
    /// Set, then the waker woken: the thread returns at its next round.
    pub(crate) stop: Arc<AtomicBool>,
}

impl Started {
    /// Asks the core's thread to stop (it returns at its next round,
    /// closing every socket and ending every connection's task) and stops
    /// accepting connections.
    pub(crate) fn signal_stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.handle.core.waker.wake();
        for task in &self.listener_tasks {
            task.abort();
        }
    }
}

/// The open connections and how many each IP holds.
#[derive(Default)]
struct Connections {
    open: HashMap<ConnectionKey, Connection>,
    per_ip: HashMap<IpAddr, usize>,
    next_id: u64,
    rejected: u64,
    closed_idle: u64,
    dropped_full: u64,
    /// Bytes piped through TCP allocations, counted by the pipes.
    pipes: Arc<PipeCounters>,
}

struct Connection {
    id: u64,
    out: mpsc::Sender<ToClient>,
    last_seen: Instant,
}

impl Connections {
    fn remove(&mut self, key: &ConnectionKey) -> Option<Connection> {
        let connection = self.open.remove(key)?;
        if let Some(n) = self.per_ip.get_mut(&key.client.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&key.client.ip());
            }
        }
        Some(connection)
    }

    /// Prometheus lines for the connections.
    fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP realtimer_turn_connections_active Client connections (TCP, TLS) now open.\n\
             # TYPE realtimer_turn_connections_active gauge"
        );
        for transport in [Transport::Tcp, Transport::Tls] {
            let n = self
                .open
                .keys()
                .filter(|k| k.transport == transport)
                .count();
            let _ = writeln!(
                out,
                "realtimer_turn_connections_active{{transport=\"{}\"}} {n}",
                transport.as_str()
            );
        }
        for (name, help, value) in [
            (
                "connections_rejected_total",
                "Connections refused by the connection limits.",
                self.rejected,
            ),
            (
                "connections_closed_idle_total",
                "Connections without an allocation closed when idle.",
                self.closed_idle,
            ),
            (
                "connection_messages_dropped_total",
                "Messages dropped because a connection's send queue was full.",
                self.dropped_full,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP realtimer_turn_{name} {help}\n# TYPE realtimer_turn_{name} counter\nrealtimer_turn_{name} {value}"
            );
        }
        self.pipes.render(out);
    }
}

/// A UDP socket on the core's thread.
struct Slot {
    socket: UdpSocket,
    /// Batched receive and GSO send state (quinn-udp).
    state: UdpSocketState,
    local: SocketAddr,
    /// A relay (peers write to it) rather than a listener (clients do).
    relay: bool,
    /// Already in the ready queue.
    queued: bool,
}

/// The core's thread and what it owns.
struct Driver {
    /// Set by [`Started::signal_stop`].
    stop: Arc<AtomicBool>,
    server: Server,
    poll: Poll,
    /// UDP sockets by token.
    sockets: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    by_address: HashMap<SocketAddr, usize>,
    /// Sockets that may hold datagrams (mio is edge-triggered: a socket
    /// stays here until a read would block).
    ready: VecDeque<usize>,
    rx: mpsc::Receiver<Input>,
    core: CoreSender,
    runtime: tokio::runtime::Handle,
    connections: Connections,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    /// Datagrams to send at the end of the round.
    outgoing: SendQueue,
    /// The listener task of each TCP relay (RFC 6062 §5.1).
    tcp_relays: HashMap<SocketAddr, JoinHandle<()>>,
    /// TCP allocations' peer connections, by CONNECTION-ID.
    peers: HashMap<u32, PeerSide>,
}

impl Drop for Driver {
    /// The tasks of TCP relays and of peer connections being made end with
    /// the driver; connections' tasks end when their queues close.
    fn drop(&mut self) {
        for (_, listener) in self.tcp_relays.drain() {
            listener.abort();
        }
        for (_, side) in self.peers.drain() {
            if let PeerSide::Connecting(task) = side {
                task.abort();
            }
        }
    }
}

impl Driver {
    fn run(mut self) {
        if let Err(e) = rustix::thread::set_current_timer_slack(NonZeroU64::new(TIMER_SLACK_NS)) {
            debug!("timer slack: {e}");
        }
        let mut moderation = Moderation::new(now());
        let mut events = Events::with_capacity(1024);
        let mut received = Received::new();
        let mut inputs_pending = false;
        let mut next_idle_check = now() + IDLE_CHECK;
        loop {
            let timeout = if inputs_pending || !self.ready.is_empty() {
                Some(Duration::ZERO)
            } else {
                let next = match self.server.poll_timeout() {
                    Some(at) if !self.connections.open.is_empty() => Some(at.min(next_idle_check)),
                    Some(at) => Some(at),
                    None => (!self.connections.open.is_empty()).then_some(next_idle_check),
                };
                next.map(|at| at.saturating_duration_since(now()))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                warn!("TURN driver stopped: poll: {e}");
                return;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => inputs_pending = true,
                    Token(slot) => self.mark_ready(slot),
                }
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let now = now();
            if inputs_pending {
                inputs_pending = match self.take_inputs(now) {
                    Some(more) => more,
                    None => return,
                };
            }
            let mut arrived = 0;
            for _ in 0..self.ready.len() {
                let Some(slot) = self.ready.pop_front() else {
                    break;
                };
                arrived += self.receive(now, slot, &mut received);
                self.collect();
                if self.outgoing.len() >= SEND_BATCH {
                    self.send_outgoing();
                }
            }
            if self.server.poll_timeout().is_some_and(|at| now >= at) {
                self.server.handle_timeout(now);
            }
            if now >= next_idle_check {
                self.close_idle(now);
                next_idle_check = now + IDLE_CHECK;
            }
            // What the core sent goes out before relays close: the last
            // data of a client whose connection ended this round leaves
            // through its relay before the relay's socket is gone.
            self.flush();
            self.handle_events();
            self.flush();
            // Interrupt moderation, as network cards do: when datagrams
            // come fast enough that a batch gathers in a short wait (and
            // every socket was read dry), wait for it. Fewer wake-ups of
            // this thread, and receivers woken once per burst; a server at
            // light or paced load answers at once, and one with a backlog
            // goes on at once.
            if let Some(wait) = moderation.after_round(now, arrived) {
                if self.ready.is_empty() && !inputs_pending {
                    std::thread::sleep(wait);
                }
            }
        }
    }

    fn mark_ready(&mut self, slot: usize) {
        if let Some(Some(s)) = self.sockets.get_mut(slot) {
            if !s.queued {
                s.queued = true;
                self.ready.push_back(slot);
            }
        }
    }

    /// Takes up to a round's inputs from the tokio side: `Some(true)` when
    /// more wait, `None` when every sender is gone.
    fn take_inputs(&mut self, now: Instant) -> Option<bool> {
        for _ in 0..INPUTS_PER_ROUND {
            match self.rx.try_recv() {
                Ok(input) => self.input(now, input),
                Err(mpsc::error::TryRecvError::Empty) => return Some(false),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
            }
        }
        Some(true)
    }

    /// Reads up to a turn's datagrams from one socket into the core.
    /// Returns how many messages (datagrams or GRO trains) it read.
    fn receive(&mut self, now: Instant, slot: usize, received: &mut Received) -> usize {
        let Some(Some(s)) = self.sockets.get_mut(slot) else {
            return 0;
        };
        let (local, relay) = (s.local, s.relay);
        let mut total = 0;
        for _ in 0..RECEIVES_PER_TURN {
            let count = match received.read(&s.socket, &s.state) {
                Ok(count) => count,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    s.queued = false;
                    return total;
                }
                // ICMP errors from earlier sends surface here on some
                // systems; they concern one peer, not the socket.
                Err(e) => {
                    debug!(%local, "recv: {e}");
                    continue;
                }
            };
            total += count;
            for d in received.datagrams(count) {
                if relay {
                    self.server.handle_peer(now, local, d.source, d.contents);
                } else {
                    self.server.handle_client(now, local, d.source, d.contents);
                }
            }
            if count < BATCH_SIZE {
                // recvmmsg stopped short: the queue was empty. A datagram
                // arriving later raises a new event (epoll reports every
                // arrival on a socket, edge-triggered or not), so the
                // read that would only say "would block" is saved.
                s.queued = false;
                return total;
            }
        }
        // Its turn is over; it may hold more.
        self.ready.push_back(slot);
        total
    }

    fn input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Message { key, data } => {
                if let Some(connection) = self.connections.open.get_mut(&key) {
                    connection.last_seen = now;
                    self.server.handle_stream_message(
                        now,
                        key.transport,
                        key.listener,
                        key.client,
                        &data,
                    );
                }
            }
            Input::Accepted { key, stream } => self.accepted(now, key, stream),
            Input::Closed { key, id } => {
                if self.connections.open.get(&key).is_some_and(|c| c.id == id) {
                    self.connections.remove(&key);
                    self.server
                        .stream_closed(now, key.transport, key.listener, key.client);
                }
            }
            Input::Metrics(reply) => {
                let mut text = self.server.render_prometheus();
                self.connections.render(&mut text);
                let _ = reply.send(text);
            }
            Input::PeerAccepted {
                relay,
                peer,
                stream,
            } => {
                // Refused ones are dropped, which closes them.
                if let Some(id) = self.server.handle_peer_connection(now, relay, peer) {
                    self.peers.insert(id, PeerSide::Ready(stream));
                }
            }
            Input::PeerConnected { connection, stream } => {
                let connected = stream.is_some();
                if let (Some(side @ PeerSide::Connecting(_)), Some(stream)) =
                    (self.peers.get_mut(&connection), stream)
                {
                    *side = PeerSide::Ready(stream);
                }
                // On failure the core answers 447 and closes the entry.
                self.server.peer_connected(now, connection, connected);
            }
        }
    }

    /// Admits a connection within the limits and starts its task.
    fn accepted(&mut self, now: Instant, key: ConnectionKey, stream: TcpStream) {
        let ip = key.client.ip();
        let from_ip = self.connections.per_ip.get(&ip).copied().unwrap_or(0);
        if self.connections.open.len() >= self.limits.total || from_ip >= self.limits.per_ip {
            debug!(client = %key.client, "connection refused: limit reached");
            self.connections.rejected += 1;
            return;
        }
        // A connection on a reused client port replaces the old one.
        if self.connections.remove(&key).is_some() {
            self.server
                .stream_closed(now, key.transport, key.listener, key.client);
        }
        let (out, from_core) = mpsc::channel(CONNECTION_QUEUE);
        let id = self.connections.next_id;
        self.connections.next_id += 1;
        self.connections.open.insert(
            key,
            Connection {
                id,
                out,
                last_seen: now,
            },
        );
        *self.connections.per_ip.entry(ip).or_insert(0) += 1;
        let tls = match key.transport {
            Transport::Tls => self.tls.clone().map(|a| (a, self.limits.handshake)),
            _ => None,
        };
        self.runtime.spawn(streams::run(
            stream,
            key,
            id,
            tls,
            self.core.clone(),
            from_core,
            self.connections.pipes.clone(),
        ));
    }

    /// Closes connections that hold no allocation and sent nothing lately.
    fn close_idle(&mut self, now: Instant) {
        let idle: Vec<ConnectionKey> = self
            .connections
            .open
            .iter()
            .filter(|(key, c)| {
                now.saturating_duration_since(c.last_seen) >= self.limits.idle
                    && !self
                        .server
                        .has_allocation(key.transport, key.listener, key.client)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in idle {
            debug!(client = %key.client, "closing an idle connection");
            // Dropping its sender ends the connection's task.
            self.connections.remove(&key);
            self.connections.closed_idle += 1;
        }
    }

    /// Registers a socket with the poll in a free slot.
    fn add_socket(
        &mut self,
        local: SocketAddr,
        mut socket: UdpSocket,
        relay: bool,
    ) -> io::Result<()> {
        let state = UdpSocketState::new((&socket).into())?;
        // RFC 8656 §14: application data (to peers, and to clients in
        // ChannelData and Data indications) goes without the DF bit, so it
        // is fragmented rather than lost past the path MTU, unless the
        // relay's client asked for it (DONT-FRAGMENT).
        if !(relay && self.server.relay_dont_fragment(local)) {
            if let Err(e) = allow_fragmentation(&socket, local) {
                debug!(%local, "cannot let datagrams fragment: {e}");
            }
        }
        let slot = self.free_slots.pop().unwrap_or(self.sockets.len());
        self.poll
            .registry()
            .register(&mut socket, Token(slot), Interest::READABLE)?;
        let entry = Some(Slot {
            socket,
            state,
            local,
            relay,
            queued: false,
        });
        if slot == self.sockets.len() {
            self.sockets.push(entry);
        } else {
            self.sockets[slot] = entry;
        }
        self.by_address.insert(local, slot);
        // Datagrams may have arrived before registration.
        self.mark_ready(slot);
        Ok(())
    }

    fn remove_socket(&mut self, local: SocketAddr) {
        let Some(slot) = self.by_address.remove(&local) else {
            return;
        };
        if let Some(mut s) = self.sockets.get_mut(slot).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut s.socket);
            // A stale entry in `ready` finds an empty slot and is skipped;
            // the slot is reused only once that entry is gone.
            if s.queued {
                self.ready.retain(|&r| r != slot);
            }
            self.free_slots.push(slot);
        }
    }

    /// Binds and closes relay sockets as the core asks.
    fn handle_events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            match event {
                Event::OpenRelay { relay } => {
                    let bound = realtimer_udp::bind(
                        relay,
                        BindOptions::default().with_buffer(RELAY_BUFFER),
                    )
                    .and_then(|s| self.add_socket(relay, UdpSocket::from_std(s), true));
                    if let Err(e) = &bound {
                        debug!(%relay, "cannot bind relay: {e}");
                    }
                    self.server.relay_opened(now(), relay, bound.is_ok());
                }
                Event::CloseRelay { relay } => {
                    self.remove_socket(relay);
                    if let Some(listener) = self.tcp_relays.remove(&relay) {
                        listener.abort();
                    }
                }
                Event::OpenTcpRelay { relay } => {
                    let listener = {
                        let _runtime = self.runtime.enter();
                        peers::listen(relay)
                    };
                    let bound = match listener {
                        Ok(listener) => {
                            let task = peers::accept(listener, relay, self.core.clone());
                            self.tcp_relays.insert(relay, self.runtime.spawn(task));
                            true
                        }
                        Err(e) => {
                            debug!(%relay, "cannot listen on TCP relay: {e}");
                            false
                        }
                    };
                    self.server.relay_opened(now(), relay, bound);
                }
                Event::ConnectPeer {
                    connection,
                    relay,
                    peer,
                } => {
                    let task = peers::connect(connection, relay, peer, self.core.clone());
                    let task = self.runtime.spawn(task);
                    self.peers.insert(connection, PeerSide::Connecting(task));
                }
                Event::BindConnection {
                    connection,
                    transport,
                    listener,
                    client,
                } => self.bind_connection(
                    connection,
                    ConnectionKey {
                        transport,
                        listener,
                        client,
                    },
                ),
                Event::ClosePeerConnection { connection } => match self.peers.remove(&connection) {
                    Some(PeerSide::Connecting(task)) => task.abort(),
                    // Dropping its sender ends the pipe's task.
                    Some(PeerSide::Piped(key)) => {
                        self.connections.remove(&key);
                    }
                    Some(PeerSide::Ready(_)) | None => {}
                },
                _ => {}
            }
        }
    }

    /// RFC 6062 §5.4: hands the peer connection to the data connection's
    /// task, after the ConnectionBind response (sent by `flush` first, on
    /// the same queue), to pipe bytes both ways. Without either end, the
    /// data connection is closed.
    fn bind_connection(&mut self, connection: u32, key: ConnectionKey) {
        self.flush();
        let piped = match (
            self.peers.remove(&connection),
            self.connections.open.get(&key),
        ) {
            (Some(PeerSide::Ready(stream)), Some(c)) => {
                c.out.try_send(ToClient::Pipe(stream)).is_ok()
            }
            _ => false,
        };
        if piped {
            self.peers.insert(connection, PeerSide::Piped(key));
        } else {
            self.connections.remove(&key);
            self.server
                .stream_closed(now(), key.transport, key.listener, key.client);
        }
    }

    /// Sends what the core gave back (see [`SendQueue`]).
    fn flush(&mut self) {
        self.collect();
        self.send_outgoing();
    }

    /// Takes what the core gives back: stream messages to their
    /// connections' queues, datagrams to [`SendQueue`].
    fn collect(&mut self) {
        while let Some(transmit) = self.server.poll_transmit() {
            if transmit.transport.is_stream() {
                let key = ConnectionKey {
                    transport: transmit.transport,
                    listener: transmit.source,
                    client: transmit.destination,
                };
                if let Some(connection) = self.connections.open.get(&key) {
                    if connection
                        .out
                        .try_send(ToClient::Bytes(transmit.contents))
                        .is_err()
                    {
                        self.connections.dropped_full += 1;
                    }
                }
                continue;
            }
            self.outgoing
                .push(transmit.source, transmit.destination, &transmit.contents);
            self.server.recycle(transmit.contents);
        }
    }

    fn send_outgoing(&mut self) {
        let sockets = SocketTable {
            sockets: &self.sockets,
            by_address: &self.by_address,
        };
        self.outgoing.send(&sockets);
    }
}

/// The driver's UDP sockets by local address, for [`SendQueue::send`].
struct SocketTable<'a> {
    sockets: &'a [Option<Slot>],
    by_address: &'a HashMap<SocketAddr, usize>,
}

impl Sockets for SocketTable<'_> {
    fn udp(&self, local: SocketAddr) -> Option<(BorrowedFd<'_>, &UdpSocketState)> {
        let slot = self.sockets.get(*self.by_address.get(&local)?)?.as_ref()?;
        Some((slot.socket.as_fd(), &slot.state))
    }
}

/// Adaptive interrupt moderation: the arrival rate measured over short
/// windows decides whether the next round waits for a batch. A wait of
/// `COALESCE_BATCH / rate` gathers a batch of about that many datagrams;
/// it is taken only when it is at most [`COALESCE_MAX`], so it adds at
/// most that (half on average) to a datagram's time in the server. Below
/// that rate (a few tens of thousands of datagrams a second) each round
/// answers at once: batching would cost latency and save little.
#[derive(Debug)]
struct Moderation {
    window_start: Instant,
    arrived: usize,
    /// Datagrams per second in the last full window.
    rate: f64,
}

impl Moderation {
    fn new(now: Instant) -> Self {
        Moderation {
            window_start: now,
            arrived: 0,
            rate: 0.0,
        }
    }

    /// Counts a round's arrivals; the wait before the next poll, if any.
    fn after_round(&mut self, now: Instant, arrived: usize) -> Option<Duration> {
        self.arrived += arrived;
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            self.rate = self.arrived as f64 / elapsed.as_secs_f64();
            self.arrived = 0;
            self.window_start = now;
        }
        if arrived == 0 || self.rate <= 0.0 {
            return None;
        }
        let wait = Duration::from_secs_f64(COALESCE_BATCH / self.rate);
        (wait <= COALESCE_MAX).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds rounds of `per_round` arrivals every `every`; the last wait.
    fn steady(per_round: usize, every: Duration) -> Option<Duration> {
        let start = now();
        let mut moderation = Moderation::new(start);
        let mut wait = None;
        // 10 ms of rounds: several rate windows.
        let rounds = (Duration::from_millis(10).as_nanos() / every.as_nanos()) as u32;
        for i in 1..=rounds {
            wait = moderation.after_round(start + every * i, per_round);
        }
        wait
    }

    #[test]
    fn paced_loads_are_answered_at_once() {
        // 20k datagrams/s, one at a time: a batch of 8 would take 400 µs.
        assert_eq!(steady(1, Duration::from_micros(50)), None);
        // 100k/s: 80 µs for a batch, still too long a wait.
        assert_eq!(steady(1, Duration::from_micros(10)), None);
    }

    #[test]
    fn heavy_loads_wait_for_a_batch() {
        // 400k/s: 8 arrive in 20 µs.
        let wait = steady(4, Duration::from_micros(10)).unwrap();
        assert!(wait <= COALESCE_MAX);
        let micros = wait.as_secs_f64() * 1e6;
        assert!((19.0..=21.0).contains(&micros), "{wait:?}");
        // Nothing arrived this round: no wait.
        let start = now();
        let mut moderation = Moderation::new(start);
        moderation.after_round(start + RATE_WINDOW, 1000);
        assert_eq!(moderation.after_round(start + RATE_WINDOW * 2, 0), None);
    }
}
