//! `realtimer serve`: the HTTP server (signaling rooms over Socket.IO and
//! WebSocket, the web app) and a STUN/TURN server on UDP: the sans-IO
//! `realtimer_turn::Server` answers Binding (RFC 8489) and TURN (RFC 8656)
//! on the same socket; this file only drives it with tokio.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use clap::Args;
use realtimer_turn::{Credentials, Event, IpNet, Server, ServerConfig};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Options of `realtimer serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// TCP address of the HTTP server (web app, Socket.IO, WebSocket)
    /// [127.0.0.1:8080].
    #[arg(long, env = "REALTIMER_LISTEN")]
    listen: Option<SocketAddr>,

    /// Serve the web app from this folder instead of the copy built into
    /// the binary (for developing it: edit, reload).
    #[arg(long = "web-dir", env = "REALTIMER_WEB_DIR")]
    web_dir: Option<PathBuf>,

    /// UDP addresses the STUN server listens on (comma-separated)
    /// [0.0.0.0:3478,[::]:3478].
    #[arg(
        long = "stun-listen",
        env = "REALTIMER_STUN_LISTEN",
        value_delimiter = ','
    )]
    stun_listen: Vec<SocketAddr>,

    /// Use this port on every STUN listen address instead of theirs.
    #[arg(long = "stun-port", env = "REALTIMER_STUN_PORT")]
    stun_port: Option<u16>,

    #[command(flatten)]
    turn: Box<TurnArgs>,

    /// Signaling: --config, --redis, TLS, room limits (docs/config.md).
    #[command(flatten)]
    signaling: Box<realtimer_server::SignalingArgs>,
}

/// TURN options of `realtimer serve`. TURN runs on the STUN sockets; with
/// neither a user nor a secret every Allocate is refused (401).
#[derive(Debug, Args)]
pub(crate) struct TurnArgs {
    /// A TURN user as `name:password` (repeatable).
    #[arg(
        long = "turn-user",
        env = "REALTIMER_TURN_USERS",
        value_delimiter = ','
    )]
    turn_users: Vec<String>,

    /// Shared secret of the REST scheme (coturn's `use-auth-secret`):
    /// username `expiry:user`, password base64(HMAC-SHA1(secret, username)).
    #[arg(long = "turn-secret", env = "REALTIMER_TURN_SECRET")]
    turn_secret: Option<String>,

    /// The realm of TURN's long-term credentials.
    #[arg(
        long = "turn-realm",
        env = "REALTIMER_TURN_REALM",
        default_value = "realtimer"
    )]
    turn_realm: String,

    /// Relayed addresses are taken on this address (repeatable, one per
    /// family). Default: each specific STUN listen address, or for a
    /// wildcard one, the address of the default route.
    #[arg(long = "relay-ip", env = "REALTIMER_RELAY_IP", value_delimiter = ',')]
    relay_ip: Vec<IpAddr>,

    /// Ports of relayed addresses, as `first-last`.
    #[arg(
        long = "relay-ports",
        env = "REALTIMER_RELAY_PORTS",
        default_value = "49152-65535"
    )]
    relay_ports: String,

    /// Allow relaying to peers in this prefix although the defaults deny it
    /// (loopback, private, link-local...), e.g. `127.0.0.1/8` (repeatable).
    #[arg(
        long = "relay-allow",
        env = "REALTIMER_RELAY_ALLOW",
        value_delimiter = ','
    )]
    relay_allow: Vec<IpNet>,

    /// Deny relaying to peers in this prefix on top of the defaults (repeatable).
    #[arg(
        long = "relay-deny",
        env = "REALTIMER_RELAY_DENY",
        value_delimiter = ','
    )]
    relay_deny: Vec<IpNet>,

    /// Allocations on the whole server.
    #[arg(long = "turn-total-quota", default_value_t = 10_000)]
    total_quota: usize,

    /// Allocations per user (a REST user counts once whatever its expiry).
    #[arg(long = "turn-user-quota", default_value_t = 100)]
    user_quota: usize,

    /// Allocations per client IP address.
    #[arg(long = "turn-ip-quota", default_value_t = 100)]
    ip_quota: usize,

    /// Bytes per second relayed per allocation, both ways; 0 for no cap.
    #[arg(long = "turn-bandwidth", default_value_t = 4_000_000)]
    bandwidth: u64,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error("cannot listen for STUN on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: io::Error,
    },
    #[error("cannot listen for HTTP on {address}: {source}")]
    BindHttp {
        address: SocketAddr,
        source: io::Error,
    },
    #[error("the web folder {0} has no index.html")]
    WebDir(PathBuf),
    #[error("no STUN listen address could be bound")]
    NothingBound,
    #[error("waiting for Ctrl-C failed: {0}")]
    Signal(io::Error),
    #[error("--turn-user {0:?}: expected name:password")]
    TurnUser(String),
    #[error("TURN credentials: {0}")]
    Credential(#[from] realtimer_stun::CredentialError),
    #[error("--relay-ports {0:?}: expected first-last, e.g. 49152-65535")]
    RelayPorts(String),
    #[error("TURN: {0}")]
    TurnConfig(#[from] realtimer_turn::ConfigError),
    #[error("cannot read the system clock: {0}")]
    Clock(#[from] std::time::SystemTimeError),
    #[error(transparent)]
    Config(#[from] realtimer_server::ConfigError),
    #[error(transparent)]
    Http(#[from] realtimer_server::ServerError),
}

/// Binds a UDP socket; IPv6 sockets are IPv6-only, so `0.0.0.0:P` and
/// `[::]:P` can both be bound.
fn bind_udp(address: SocketAddr) -> io::Result<UdpSocket> {
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

pub(crate) async fn run(mut args: ServeArgs) -> Result<(), ServeError> {
    // Flags and environment over the --config file over the defaults.
    let file = args.signaling.load_file()?;
    let http_config = args.signaling.server_config(&file, args.web_dir.take())?;
    let listen = args.listen.or(file.http.listen).unwrap_or_else(|| {
        DEFAULT_LISTEN
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)))
    });
    if args.stun_listen.is_empty() {
        args.stun_listen = file.stun.listen.clone().unwrap_or_else(default_stun_listen);
    }
    args.stun_port = args.stun_port.or(file.stun.port);
    let defaults = args.stun_listen == default_stun_listen();
    let mut listeners = Vec::new();
    for mut address in args.stun_listen {
        if let Some(port) = args.stun_port {
            address.set_port(port);
        }
        match bind_udp(address) {
            Ok(socket) => {
                let local = socket.local_addr().unwrap_or(address);
                info!("STUN server listening on {local} (UDP)");
                listeners.push((local, socket));
            }
            // A host without IPv6 still serves IPv4 with the default addresses.
            Err(source) if defaults && address.is_ipv6() => {
                warn!(%address, "IPv6 STUN listener not started: {source}");
            }
            Err(source) => return Err(ServeError::Bind { address, source }),
        }
    }
    if listeners.is_empty() {
        return Err(ServeError::NothingBound);
    }
    let listen_addresses: Vec<SocketAddr> = listeners.iter().map(|(a, _)| *a).collect();
    let config = turn_config(&args.turn, &listen_addresses)?;
    if config.credentials.is_empty() {
        info!("TURN: no --turn-user or --turn-secret, so every Allocate is refused");
    }
    for ip in [config.relay_ipv4, config.relay_ipv6].into_iter().flatten() {
        info!("TURN relay address {ip}, ports {}", args.turn.relay_ports);
    }
    let (now, unix_now) = clocks()?;
    let server = Server::new(config, now, unix_now)?;
    let mut tasks = vec![tokio::spawn(drive_turn(server, listeners))];
    if let Some(task) = start_http(listen, http_config).await? {
        tasks.push(task);
    }
    tokio::signal::ctrl_c().await.map_err(ServeError::Signal)?;
    info!("shutting down");
    for task in tasks {
        task.abort();
    }
    Ok(())
}

/// The server's two clocks at start: monotonic for timers, Unix seconds
/// for REST credential expiry.
#[allow(clippy::disallowed_methods)] // the driver owns the clock; the core takes it as input
fn clocks() -> Result<(Instant, u64), ServeError> {
    let unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?;
    Ok((Instant::now(), unix.as_secs()))
}

#[allow(clippy::disallowed_methods)] // the driver owns the clock; the core takes it as input
fn now() -> Instant {
    Instant::now()
}

/// The TURN core's settings from the flags.
fn turn_config(args: &TurnArgs, listeners: &[SocketAddr]) -> Result<ServerConfig, ServeError> {
    let mut credentials = Credentials::new(args.turn_realm.clone());
    for user in &args.turn_users {
        let (name, password) = user
            .split_once(':')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| ServeError::TurnUser(user.clone()))?;
        credentials.add_user(name, password)?;
    }
    if let Some(secret) = &args.turn_secret {
        credentials.set_rest_secret(secret.as_bytes().to_vec());
    }
    let mut nonce_secret = [0u8; 16];
    rand::fill(&mut nonce_secret);
    let mut config = ServerConfig::new(credentials, nonce_secret);
    config.seed = rand::random();
    config.software = Some(format!("realtimer {}", env!("CARGO_PKG_VERSION")));
    let ports = || ServeError::RelayPorts(args.relay_ports.clone());
    let (first, last) = args.relay_ports.split_once('-').ok_or_else(ports)?;
    let first: u16 = first.trim().parse().map_err(|_| ports())?;
    let last: u16 = last.trim().parse().map_err(|_| ports())?;
    config.port_range = first..=last;
    config.peer_policy.allow = args.relay_allow.clone();
    config.peer_policy.deny = args.relay_deny.clone();
    config.limits.total_allocations = args.total_quota;
    config.limits.allocations_per_user = args.user_quota;
    config.limits.allocations_per_ip = args.ip_quota;
    config.limits.bandwidth_per_allocation = (args.bandwidth > 0).then_some(args.bandwidth);
    let (mut v4, mut v6) = (None, None);
    for ip in &args.relay_ip {
        match ip {
            IpAddr::V4(_) => v4 = v4.or(Some(*ip)),
            IpAddr::V6(_) => v6 = v6.or(Some(*ip)),
        }
    }
    for listener in listeners {
        let ip = match listener.ip() {
            ip if !ip.is_unspecified() => Some(ip),
            ip => default_route_address(ip.is_ipv4()),
        };
        match ip {
            Some(ip @ IpAddr::V4(_)) => v4 = v4.or(Some(ip)),
            Some(ip @ IpAddr::V6(_)) => v6 = v6.or(Some(ip)),
            None => {}
        }
    }
    config.relay_ipv4 = v4;
    config.relay_ipv6 = v6;
    Ok(config)
}

/// The host's address on the default route, found by "connecting" a UDP
/// socket (no packet is sent).
fn default_route_address(ipv4: bool) -> Option<IpAddr> {
    let (bind, probe) = if ipv4 {
        ("0.0.0.0:0", "192.0.2.1:9")
    } else {
        ("[::]:0", "[2001:db8::1]:9")
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// Starts the HTTP server. When the default address is taken (another
/// server, a parallel test), STUN still runs and a warning says why; an
/// explicit `--listen` that cannot be bound is an error.
async fn start_http(
    address: SocketAddr,
    config: realtimer_server::ServerConfig,
) -> Result<Option<tokio::task::JoinHandle<()>>, ServeError> {
    if let Some(dir) = &config.web_dir {
        if !dir.join("index.html").is_file() {
            return Err(ServeError::WebDir(dir.clone()));
        }
    }
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(source) if address.to_string() == DEFAULT_LISTEN => {
            warn!("HTTP server not started on {address}: {source} (use --listen)");
            return Ok(None);
        }
        Err(source) => return Err(ServeError::BindHttp { address, source }),
    };
    let local = listener.local_addr().unwrap_or(address);
    let server = realtimer_server::start(listener, config).await?;
    let scheme = if server.is_tls() { "https" } else { "http" };
    info!("HTTP server listening on {scheme}://{local}");
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = server.run().await {
            warn!("HTTP server stopped: {e}");
        }
    })))
}

fn default_stun_listen() -> Vec<SocketAddr> {
    ["0.0.0.0:3478", "[::]:3478"]
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// A datagram for the TURN core, from a listener or a relay socket.
struct Received {
    /// The local socket it arrived on.
    local: SocketAddr,
    /// True when `local` is a relayed address (a peer wrote), false for a
    /// listener (a client wrote).
    from_peer: bool,
    source: SocketAddr,
    data: Vec<u8>,
}

/// Datagrams queued between the receiving tasks and the core; past this the
/// receivers wait and the kernel's buffers absorb (then drop) the excess.
const QUEUE: usize = 4096;

/// Receives on one socket into the core's queue until the task is aborted.
async fn receive(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    from_peer: bool,
    tx: mpsc::Sender<Received>,
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
        let received = Received {
            local,
            from_peer,
            source,
            data: buf[..len].to_vec(),
        };
        if tx.send(received).await.is_err() {
            return;
        }
    }
}

/// The sockets the core sends from, by local address.
struct Sockets {
    by_address: HashMap<SocketAddr, Arc<UdpSocket>>,
    relay_tasks: HashMap<SocketAddr, JoinHandle<()>>,
}

/// Owns the TURN core: feeds it datagrams and timeouts, binds and closes
/// relay sockets when it asks, sends what it gives back.
async fn drive_turn(mut server: Server, listeners: Vec<(SocketAddr, UdpSocket)>) {
    let (tx, mut rx) = mpsc::channel::<Received>(QUEUE);
    let mut sockets = Sockets {
        by_address: HashMap::new(),
        relay_tasks: HashMap::new(),
    };
    let mut listener_tasks = Vec::new();
    for (local, socket) in listeners {
        let socket = Arc::new(socket);
        sockets.by_address.insert(local, Arc::clone(&socket));
        listener_tasks.push(tokio::spawn(receive(socket, local, false, tx.clone())));
    }
    loop {
        let timeout = server.poll_timeout();
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
                feed(&mut server, now, first);
                // Take what else is queued before sending: fewer clock reads
                // and wake-ups under load.
                for _ in 0..64 {
                    match rx.try_recv() {
                        Ok(more) => feed(&mut server, now, more),
                        Err(_) => break,
                    }
                }
            }
            () = sleep => server.handle_timeout(now()),
        }
        handle_events(&mut server, &mut sockets, &tx);
        while let Some(transmit) = server.poll_transmit() {
            match sockets.by_address.get(&transmit.source) {
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
            server.recycle(transmit.contents);
        }
    }
    for task in listener_tasks
        .into_iter()
        .chain(sockets.relay_tasks.into_values())
    {
        task.abort();
    }
}

fn feed(server: &mut Server, now: Instant, received: Received) {
    if received.from_peer {
        server.handle_peer(now, received.local, received.source, &received.data);
    } else {
        server.handle_client(now, received.local, received.source, &received.data);
    }
}

fn handle_events(server: &mut Server, sockets: &mut Sockets, tx: &mpsc::Sender<Received>) {
    while let Some(event) = server.poll_event() {
        match event {
            Event::OpenRelay { relay } => {
                let bound = match bind_relay(relay) {
                    Ok(socket) => {
                        let socket = Arc::new(socket);
                        sockets.by_address.insert(relay, Arc::clone(&socket));
                        let task = tokio::spawn(receive(socket, relay, true, tx.clone()));
                        sockets.relay_tasks.insert(relay, task);
                        true
                    }
                    Err(e) => {
                        debug!(%relay, "cannot bind relay: {e}");
                        false
                    }
                };
                server.relay_opened(now(), relay, bound);
            }
            Event::CloseRelay { relay } => {
                sockets.by_address.remove(&relay);
                if let Some(task) = sockets.relay_tasks.remove(&relay) {
                    task.abort();
                }
            }
            _ => {}
        }
    }
}

/// A relay socket: exactly the relayed address, no port sharing.
fn bind_relay(address: SocketAddr) -> io::Result<UdpSocket> {
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
