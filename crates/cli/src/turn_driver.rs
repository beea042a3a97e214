//! The tokio driver of the sans-IO TURN core (`realtimer_turn::Server`):
//! UDP listeners and relay sockets, TCP and TLS connections from clients
//! (RFC 8656 §3.1), the core's timer, and metrics on request. All protocol
//! logic stays in the core; this file moves bytes and owns the clock.
//!
//! One task owns the core. Sockets and connections feed it through one
//! bounded queue; it answers each connection through that connection's
//! own bounded queue. Connections are limited in number (total and per
//! client IP), and one without an allocation is closed after an idle time.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use realtimer_turn::{Event, Server, StreamDecoder, Transport};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Bounds on client connections over TCP and TLS.
#[derive(Debug, Clone)]
pub(crate) struct StreamLimits {
    /// Connections open at once, all clients together.
    pub(crate) total: usize,
    /// Connections open at once from one IP address.
    pub(crate) per_ip: usize,
    /// A connection without an allocation is closed after this long
    /// without a message.
    pub(crate) idle: Duration,
    /// The TLS handshake must finish within this.
    pub(crate) handshake: Duration,
}

/// The sockets the driver serves.
pub(crate) struct Listeners {
    /// UDP listeners (STUN and TURN).
    pub(crate) udp: Vec<(SocketAddr, UdpSocket)>,
    /// TCP listeners, plain or TLS.
    pub(crate) streams: Vec<(Transport, SocketAddr, TcpListener)>,
    /// The server certificate for the TLS listeners.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// Connection bounds.
    pub(crate) limits: StreamLimits,
}

/// A way to ask the running driver things (for the HTTP server).
#[derive(Debug, Clone)]
pub(crate) struct TurnHandle {
    tx: mpsc::Sender<Input>,
}

impl TurnHandle {
    /// The core's and the driver's metrics in Prometheus text format;
    /// `None` once the driver has stopped.
    pub(crate) async fn metrics(&self) -> Option<String> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Input::Metrics(reply)).await.ok()?;
        answer.await.ok()
    }
}

/// A client connection: its transport and the addresses at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnectionKey {
    transport: Transport,
    listener: SocketAddr,
    client: SocketAddr,
}

/// What the tasks around the core hand it.
#[derive(Debug)]
enum Input {
    /// A datagram on a listener (from a client) or a relay (from a peer).
    Datagram {
        local: SocketAddr,
        from_peer: bool,
        source: SocketAddr,
        data: Vec<u8>,
    },
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
}

/// Inputs queued for the core; past this the tasks wait and the kernel's
/// buffers absorb (then drop) the excess.
const QUEUE: usize = 4096;
/// Messages queued towards one connection before more are dropped (like
/// UDP under congestion: TURN data has no delivery guarantee).
const CONNECTION_QUEUE: usize = 256;
/// How often idle connections are looked for.
const IDLE_CHECK: Duration = Duration::from_secs(1);

#[allow(clippy::disallowed_methods)] // the driver owns the clock; the core takes it as input
fn now() -> Instant {
    Instant::now()
}

/// Binds a UDP socket; IPv6 sockets are IPv6-only, so `0.0.0.0:P` and
/// `[::]:P` can both be bound.
pub(crate) fn bind_udp(address: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    UdpSocket::from_std(socket.into())
}

/// Binds a TCP listener, IPv6-only for IPv6 as [`bind_udp`].
pub(crate) fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Starts the driver: the core's task, and a task per listener.
pub(crate) fn start(server: Server, listeners: Listeners) -> (TurnHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Input>(QUEUE);
    let handle = TurnHandle { tx: tx.clone() };
    let task = tokio::spawn(Driver::new(server, listeners, tx).run(rx));
    (handle, task)
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
}

struct Connection {
    id: u64,
    out: mpsc::Sender<Vec<u8>>,
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
                transport.name()
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
    }
}

/// The core's task and what it owns.
struct Driver {
    server: Server,
    tx: mpsc::Sender<Input>,
    udp: HashMap<SocketAddr, Arc<UdpSocket>>,
    tasks: Vec<JoinHandle<()>>,
    relay_tasks: HashMap<SocketAddr, JoinHandle<()>>,
    connections: Connections,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: StreamLimits,
}

impl Driver {
    fn new(server: Server, listeners: Listeners, tx: mpsc::Sender<Input>) -> Self {
        let mut driver = Driver {
            server,
            tx,
            udp: HashMap::new(),
            tasks: Vec::new(),
            relay_tasks: HashMap::new(),
            connections: Connections::default(),
            tls: listeners.tls.map(tokio_rustls::TlsAcceptor::from),
            limits: listeners.limits,
        };
        for (local, socket) in listeners.udp {
            let socket = Arc::new(socket);
            driver.udp.insert(local, Arc::clone(&socket));
            let task = tokio::spawn(receive(socket, local, false, driver.tx.clone()));
            driver.tasks.push(task);
        }
        for (transport, local, listener) in listeners.streams {
            let task = tokio::spawn(accept(listener, transport, local, driver.tx.clone()));
            driver.tasks.push(task);
        }
        driver
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        let mut next_idle_check = now() + IDLE_CHECK;
        loop {
            let timeout = match self.server.poll_timeout() {
                Some(at) if self.connections.open.is_empty() => Some(at),
                Some(at) => Some(at.min(next_idle_check)),
                None => (!self.connections.open.is_empty()).then_some(next_idle_check),
            };
            let sleep = async {
                match timeout {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = rx.recv() => {
                    let Some(first) = received else { break };
                    let now = now();
                    self.input(now, first);
                    // Take what else is queued before sending: fewer clock
                    // reads and wake-ups under load.
                    for _ in 0..64 {
                        match rx.try_recv() {
                            Ok(more) => self.input(now, more),
                            Err(_) => break,
                        }
                    }
                }
                () = sleep => {
                    let now = now();
                    self.server.handle_timeout(now);
                    if now >= next_idle_check {
                        self.close_idle(now);
                        next_idle_check = now + IDLE_CHECK;
                    }
                }
            }
            self.handle_events();
            self.flush().await;
        }
        for task in self.tasks.drain(..).chain(self.relay_tasks.into_values()) {
            task.abort();
        }
    }

    fn input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Datagram {
                local,
                from_peer: true,
                source,
                data,
            } => self.server.handle_peer(now, local, source, &data),
            Input::Datagram {
                local,
                from_peer: false,
                source,
                data,
            } => self.server.handle_client(now, local, source, &data),
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
        let _ = stream.set_nodelay(true);
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
        let tx = self.tx.clone();
        let tls = self.tls.clone();
        let handshake = self.limits.handshake;
        tokio::spawn(async move {
            match (key.transport, tls) {
                (Transport::Tls, Some(acceptor)) => {
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_connection(tls, key, &tx, from_core).await,
                        Ok(Err(e)) => debug!(client = %key.client, "TLS handshake failed: {e}"),
                        Err(_) => debug!(client = %key.client, "TLS handshake timed out"),
                    }
                }
                _ => serve_connection(stream, key, &tx, from_core).await,
            }
            let _ = tx.send(Input::Closed { key, id }).await;
        });
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

    /// Binds and closes relay sockets as the core asks.
    fn handle_events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            match event {
                Event::OpenRelay { relay } => {
                    let bound = match bind_udp(relay) {
                        Ok(socket) => {
                            let socket = Arc::new(socket);
                            self.udp.insert(relay, Arc::clone(&socket));
                            let task = tokio::spawn(receive(socket, relay, true, self.tx.clone()));
                            self.relay_tasks.insert(relay, task);
                            true
                        }
                        Err(e) => {
                            debug!(%relay, "cannot bind relay: {e}");
                            false
                        }
                    };
                    self.server.relay_opened(now(), relay, bound);
                }
                Event::CloseRelay { relay } => {
                    self.udp.remove(&relay);
                    if let Some(task) = self.relay_tasks.remove(&relay) {
                        task.abort();
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends what the core gave back.
    async fn flush(&mut self) {
        while let Some(transmit) = self.server.poll_transmit() {
            if transmit.transport.is_stream() {
                let key = ConnectionKey {
                    transport: transmit.transport,
                    listener: transmit.source,
                    client: transmit.destination,
                };
                if let Some(connection) = self.connections.open.get(&key) {
                    if connection.out.try_send(transmit.contents).is_err() {
                        self.connections.dropped_full += 1;
                    }
                }
                continue;
            }
            match self.udp.get(&transmit.source) {
                Some(socket) => {
                    if let Err(e) = socket
                        .send_to(&transmit.contents, transmit.destination)
                        .await
                    {
                        debug!(destination = %transmit.destination, "send_to: {e}");
                    }
                }
                None => debug!(source = %transmit.source, "no socket to send from"),
            }
            self.server.recycle(transmit.contents);
        }
    }
}

/// Receives on one UDP socket into the core's queue until the task is
/// aborted.
async fn receive(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    from_peer: bool,
    tx: mpsc::Sender<Input>,
) {
    // A STUN or ChannelData message over UDP fits in one datagram; relayed
    // data is at most 65535 bytes.
    let mut buf = vec![0u8; 65_536];
    loop {
        let (len, source) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // ICMP errors from earlier sends surface here on some systems;
            // they concern one peer, not the socket.
            Err(e) => {
                debug!(%local, "recv_from: {e}");
                continue;
            }
        };
        let input = Input::Datagram {
            local,
            from_peer,
            source,
            data: buf[..len].to_vec(),
        };
        if tx.send(input).await.is_err() {
            return;
        }
    }
}

/// Accepts connections on one TCP listener until the task is aborted.
async fn accept(
    listener: TcpListener,
    transport: Transport,
    local: SocketAddr,
    tx: mpsc::Sender<Input>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, client)) => {
                let key = ConnectionKey {
                    transport,
                    listener: local,
                    client,
                };
                if tx.send(Input::Accepted { key, stream }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Out of file descriptors, mostly: wait rather than spin.
                warn!(%local, "accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads messages from a client's stream into the core, and writes what
/// the core sends back, until either side ends. Bytes that are not TURN
/// close this connection only.
async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    key: ConnectionKey,
    tx: &mpsc::Sender<Input>,
    mut from_core: mpsc::Receiver<Vec<u8>>,
) {
    let mut decoder = StreamDecoder::new();
    let mut out = Vec::new();
    loop {
        tokio::select! {
            read = stream.read(decoder.read_buf()) => {
                let n = match read {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        debug!(client = %key.client, "read: {e}");
                        break;
                    }
                };
                decoder.filled(n);
                loop {
                    match decoder.next_message() {
                        Ok(Some(message)) => {
                            let data = message.to_vec();
                            if tx.send(Input::Message { key, data }).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            debug!(client = %key.client, "closing the connection: {e}");
                            return;
                        }
                    }
                }
            }
            message = from_core.recv() => {
                let Some(first) = message else { break };
                // Coalesce what is queued into one write.
                out.clear();
                out.extend_from_slice(&first);
                while out.len() < 64 * 1024 {
                    match from_core.try_recv() {
                        Ok(more) => out.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                if let Err(e) = write(&mut stream, &out).await {
                    debug!(client = %key.client, "write: {e}");
                    break;
                }
            }
        }
    }
    let _ = stream.shutdown().await;
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}
