//! `realtimer serve`: the HTTP server (signaling rooms over Socket.IO and
//! WebSocket, the web app) and a STUN/TURN server: the sans-IO
//! `realtimer_turn::Server` answers Binding (RFC 8489) and TURN (RFC 8656)
//! on UDP and TCP (same port) and TLS; `realtimer_turn_server` drives it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Args};
use realtimer_turn::{Credentials, IpNet, ServerConfig};
use realtimer_turn_server::{
    BoundTurnServer, ConnectionLimits, TlsListener, Transport, TurnServerConfig, TurnServerError,
};
use tracing::{info, warn};

use crate::turn_http::{self, IceServers};

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

    /// Print the settings in force (flags and environment over --config
    /// over the defaults) as a realtimer.toml, and exit without serving.
    #[arg(long = "print-config")]
    print_config: bool,

    #[command(flatten)]
    turn: Box<TurnArgs>,

    /// Signaling: --config, --redis, TLS, room limits (docs/config.md).
    #[command(flatten)]
    signaling: Box<realtimer_server::SignalingArgs>,
}

/// TURN options of `realtimer serve`. TURN runs on the STUN sockets (UDP),
/// TCP on the same ports, and TLS when a certificate is given; without
/// --turn-secret a random secret serves the credentials of
/// GET /api/ice-servers (docs/turn.md).
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
    /// Without it a random one is drawn at start, for the credentials
    /// GET /api/ice-servers hands to pages.
    #[arg(long = "turn-secret", env = "REALTIMER_TURN_SECRET")]
    turn_secret: Option<String>,

    /// Seconds the credentials of GET /api/ice-servers stay valid.
    #[arg(long = "turn-credential-ttl", default_value_t = 86_400)]
    credential_ttl: u64,

    /// Host name in the STUN/TURN URLs of GET /api/ice-servers (default:
    /// the host the page was loaded from).
    #[arg(long = "turn-host", env = "REALTIMER_TURN_HOST")]
    turn_host: Option<String>,

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

    /// TCP connections with peers per TCP allocation (RFC 6062, asked for
    /// by clients on TCP or TLS); 0 turns TCP allocations off.
    #[arg(long = "turn-tcp-relay-connections", default_value_t = 16)]
    tcp_relay_connections: usize,

    /// TURN over TCP on the STUN listen addresses and ports.
    #[arg(long = "turn-tcp", env = "REALTIMER_TURN_TCP", default_value_t = true, action = ArgAction::Set)]
    tcp: bool,

    /// Port of TURN over TLS on the STUN listen addresses, served when
    /// --tls-cert and --tls-key are given (the HTTPS certificate).
    #[arg(
        long = "turn-tls-port",
        env = "REALTIMER_TURN_TLS_PORT",
        default_value_t = 5349
    )]
    tls_port: u16,

    /// TCP and TLS connections open at once, in total.
    #[arg(long = "turn-max-connections", default_value_t = 10_000)]
    max_connections: usize,

    /// TCP and TLS connections open at once from one IP address.
    #[arg(long = "turn-connections-per-ip", default_value_t = 200)]
    connections_per_ip: usize,

    /// Seconds a TCP or TLS connection without an allocation may stay
    /// silent before it is closed.
    #[arg(long = "turn-idle-timeout", default_value_t = 30)]
    idle_timeout: u64,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error("cannot listen for HTTP on {address}: {source}")]
    BindHttp {
        address: SocketAddr,
        source: io::Error,
    },
    #[error("the web folder {0} has no index.html")]
    WebDir(PathBuf),
    #[error(transparent)]
    Turn(#[from] TurnServerError),
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
    #[error(transparent)]
    Config(#[from] realtimer_server::ConfigError),
    #[error(transparent)]
    Http(#[from] realtimer_server::ServerError),
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
    if args.print_config {
        print!("{}", config_text(listen, &http_config, &args));
        return Ok(());
    }
    let defaults = args.stun_listen == default_stun_listen();
    let mut addresses = args.stun_listen.clone();
    if let Some(port) = args.stun_port {
        addresses.iter_mut().for_each(|a| a.set_port(port));
    }
    let mut limits = ConnectionLimits::default();
    limits.total = args.turn.max_connections;
    limits.per_ip = args.turn.connections_per_ip;
    limits.idle = Duration::from_secs(args.turn.idle_timeout);
    let mut turn_listen = TurnServerConfig::new(addresses)
        .with_tcp(args.turn.tcp)
        .with_ipv6_optional(defaults)
        .with_limits(limits);
    if let Some(tls) = &http_config.tls {
        let mut config = tls.load()?;
        // RFC 7443 names "stun.turn", but browsers send no ALPN: accept any.
        config.alpn_protocols.clear();
        turn_listen = turn_listen.with_tls(TlsListener::new(Arc::new(config), args.turn.tls_port));
    }
    let bound = BoundTurnServer::bind(turn_listen)?;
    let listen_addresses: Vec<SocketAddr> = bound
        .local_addrs()
        .into_iter()
        .filter(|(t, _)| *t == Transport::Udp)
        .map(|(_, a)| a)
        .collect();
    let secret = match args.turn.turn_secret.clone() {
        Some(secret) => secret,
        None => {
            info!("TURN: no --turn-secret, so a random one serves this run's /api/ice-servers");
            let mut bytes = [0u8; 24];
            rand::fill(&mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    };
    args.turn.turn_secret = Some(secret.clone());
    let config = turn_config(&args.turn, &listen_addresses)?;
    for ip in [config.relay_ipv4, config.relay_ipv6].into_iter().flatten() {
        info!("TURN relay address {ip}, ports {}", args.turn.relay_ports);
    }
    let ice = IceServers {
        secret,
        ttl: args.turn.credential_ttl,
        host: args.turn.turn_host.clone(),
        port: listen_addresses[0].port(),
        tcp: bound.local_addr(Transport::Tcp).is_some(),
        tls_port: bound.local_addr(Transport::Tls).map(|a| a.port()),
    };
    let turn = bound.start(config)?;
    let handle = turn.handle();
    let routes = |hub: &realtimer_server::Hub| turn_http::routes(hub.clone(), handle, ice);
    let http = start_http(listen, http_config, routes).await?;
    tokio::signal::ctrl_c().await.map_err(ServeError::Signal)?;
    info!("shutting down");
    if let Some(task) = http {
        task.abort();
    }
    turn.shutdown().await;
    Ok(())
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
    config.limits.tcp_connections_per_allocation = args.tcp_relay_connections;
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
    routes: impl FnOnce(&realtimer_server::Hub) -> axum::Router,
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
    let routes = routes(server.hub());
    let server = server.merge(routes);
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

/// A TOML string (basic string escapes).
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The settings in force as a `--config` file (docs/config.md): the file's
/// sections with every value, then the TURN settings, which are flags only,
/// as comments.
fn config_text(
    listen: SocketAddr,
    http: &realtimer_server::ServerConfig,
    args: &ServeArgs,
) -> String {
    let path = |p: &std::path::Path| quoted(&p.display().to_string());
    let mut out = String::from(
        "# realtimer serve: the settings in force (flags and REALTIMER_* over\n\
         # --config over the defaults). Use with `realtimer serve --config FILE`.\n\n[http]\n",
    );
    out += &format!("listen = {}\n", quoted(&listen.to_string()));
    match &http.web_dir {
        Some(dir) => out += &format!("web_dir = {}\n", path(dir)),
        None => out += "# web_dir: none, the web app built into the binary\n",
    }
    match &http.tls {
        Some(tls) => {
            out += &format!(
                "tls_cert = {}\ntls_key = {}\n",
                path(&tls.cert),
                path(&tls.key)
            )
        }
        None => out += "# tls_cert, tls_key: none, plain HTTP\n",
    }
    let r = &http.rooms;
    out += &format!(
        "\n[rooms]\ncapacity = {}\nmax_rooms = {}\nmax_clients = {}\nmax_room_name = {}\n\
         max_message_bytes = {}\nrate_burst = {}\nrate_per_second = {}\nidle_timeout_secs = {}\n",
        r.capacity,
        r.max_rooms,
        r.max_clients,
        r.max_room_name,
        r.max_message_bytes,
        r.rate_burst,
        r.rate_per_second,
        r.room_idle_timeout.as_secs()
    );
    out += "\n[redis]\n";
    match &http.cluster {
        Some(c) => {
            out += &format!(
                "url = {}\nprefix = {}\nnode_ttl_ms = {}\n",
                quoted(&c.url),
                quoted(&c.prefix),
                c.node_ttl.as_millis()
            );
        }
        None => out += "# url: none, rooms live in this process only\n",
    }
    let listen: Vec<String> = args
        .stun_listen
        .iter()
        .map(|a| quoted(&a.to_string()))
        .collect();
    out += &format!("\n[stun]\nlisten = [{}]\n", listen.join(", "));
    match args.stun_port {
        Some(port) => out += &format!("port = {port}\n"),
        None => out += "# port: each listen address's own\n",
    }
    let t = &args.turn;
    out += &format!(
        "\n# TURN (flags and REALTIMER_* variables only):\n\
         # --turn-realm {}\n# --turn-users: {} given\n# --turn-secret: {}\n\
         # --turn-credential-ttl {}\n# --turn-host {}\n# --relay-ip {:?}\n# --relay-ports {}\n\
         # --relay-allow {:?}\n# --relay-deny {:?}\n# --turn-total-quota {}\n# --turn-user-quota {}\n\
         # --turn-ip-quota {}\n# --turn-bandwidth {}\n# --turn-tcp-relay-connections {}\n\
         # --turn-tcp {}\n# --turn-tls-port {}\n# --turn-max-connections {}\n\
         # --turn-connections-per-ip {}\n# --turn-idle-timeout {}\n",
        t.turn_realm,
        t.turn_users.len(),
        if t.turn_secret.is_some() { "given" } else { "none (a random one per run)" },
        t.credential_ttl,
        t.turn_host.as_deref().unwrap_or("(the page's host)"),
        t.relay_ip,
        t.relay_ports,
        t.relay_allow.iter().map(ToString::to_string).collect::<Vec<_>>(),
        t.relay_deny.iter().map(ToString::to_string).collect::<Vec<_>>(),
        t.total_quota,
        t.user_quota,
        t.ip_quota,
        t.bandwidth,
        t.tcp_relay_connections,
        t.tcp,
        t.tls_port,
        t.max_connections,
        t.connections_per_ip,
        t.idle_timeout
    );
    out
}
