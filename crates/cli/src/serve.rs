//! `realtimer serve`: the HTTP server (signaling rooms over Socket.IO and
//! WebSocket, the web app) and a STUN/TURN server: the sans-IO
//! `realtimer_turn::Server` answers Binding (RFC 8489) and TURN (RFC 8656)
//! on UDP and TCP (same port) and TLS; `realtimer_turn_server` drives it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
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
/// GET /api/ice-servers (docs/turn.md). Each flag can also be set in the
/// `[turn]` section of --config; a flag overrides the file.
#[derive(Debug, Args)]
// These comments are also the flags' --help, where `[N]` shows the
// default; rustdoc would take each for a link.
#[allow(rustdoc::broken_intra_doc_links)]
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

    /// Seconds the credentials of GET /api/ice-servers stay valid [86400].
    #[arg(long = "turn-credential-ttl")]
    credential_ttl: Option<u64>,

    /// Host name in the STUN/TURN URLs of GET /api/ice-servers (default:
    /// the host the page was loaded from).
    #[arg(long = "turn-host", env = "REALTIMER_TURN_HOST")]
    turn_host: Option<String>,

    /// The realm of TURN's long-term credentials [realtimer].
    #[arg(long = "turn-realm", env = "REALTIMER_TURN_REALM")]
    turn_realm: Option<String>,

    /// Relayed addresses are taken on this address (repeatable, one per
    /// family). Default: each specific STUN listen address, or for a
    /// wildcard one, the address of the default route.
    #[arg(long = "relay-ip", env = "REALTIMER_RELAY_IP", value_delimiter = ',')]
    relay_ip: Vec<IpAddr>,

    /// Ports of relayed addresses, as `first-last` [49152-65535].
    #[arg(long = "relay-ports", env = "REALTIMER_RELAY_PORTS")]
    relay_ports: Option<String>,

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

    /// Allocations on the whole server [10000].
    #[arg(long = "turn-total-quota")]
    total_quota: Option<usize>,

    /// Allocations per user (a REST user counts once whatever its expiry)
    /// [100].
    #[arg(long = "turn-user-quota")]
    user_quota: Option<usize>,

    /// Allocations per client IP address [100].
    #[arg(long = "turn-ip-quota")]
    ip_quota: Option<usize>,

    /// Bytes per second relayed per allocation, both ways; 0 for no cap
    /// [4000000].
    #[arg(long = "turn-bandwidth")]
    bandwidth: Option<u64>,

    /// TCP connections with peers per TCP allocation (RFC 6062, asked for
    /// by clients on TCP or TLS); 0 turns TCP allocations off [16].
    #[arg(long = "turn-tcp-relay-connections")]
    tcp_relay_connections: Option<usize>,

    /// TURN over TCP on the STUN listen addresses and ports [true].
    #[arg(long = "turn-tcp", env = "REALTIMER_TURN_TCP", action = ArgAction::Set)]
    tcp: Option<bool>,

    /// Port of TURN over TLS on the STUN listen addresses, served when
    /// --tls-cert and --tls-key are given (the HTTPS certificate) [5349].
    #[arg(long = "turn-tls-port", env = "REALTIMER_TURN_TLS_PORT")]
    tls_port: Option<u16>,

    /// TCP and TLS connections open at once, in total [10000].
    #[arg(long = "turn-max-connections")]
    max_connections: Option<usize>,

    /// TCP and TLS connections open at once from one IP address [200].
    #[arg(long = "turn-connections-per-ip")]
    connections_per_ip: Option<usize>,

    /// Seconds a TCP or TLS connection without an allocation may stay
    /// silent before it is closed [30].
    #[arg(long = "turn-idle-timeout")]
    idle_timeout: Option<u64>,
}

/// The TURN settings in force: the flags over the `[turn]` section of
/// --config over the defaults.
#[derive(Debug, Clone, PartialEq)]
struct TurnSettings {
    users: Vec<String>,
    secret: Option<String>,
    credential_ttl: u64,
    host: Option<String>,
    realm: String,
    relay_ip: Vec<IpAddr>,
    relay_ports: RangeInclusive<u16>,
    relay_allow: Vec<IpNet>,
    relay_deny: Vec<IpNet>,
    total_quota: usize,
    user_quota: usize,
    ip_quota: usize,
    bandwidth: u64,
    tcp_relay_connections: usize,
    tcp: bool,
    tls_port: u16,
    max_connections: usize,
    connections_per_ip: usize,
    idle_timeout: u64,
}

/// The flag's list when given, else the file's, else none.
fn list_or<T: Clone>(flag: &[T], file: Option<&Vec<T>>) -> Vec<T> {
    if flag.is_empty() {
        file.cloned().unwrap_or_default()
    } else {
        flag.to_vec()
    }
}

/// `first-last` as a port range.
fn port_range(text: &str) -> Result<RangeInclusive<u16>, ServeError> {
    let error = || ServeError::RelayPorts(text.to_owned());
    let (first, last) = text.split_once('-').ok_or_else(error)?;
    let first: u16 = first.trim().parse().map_err(|_| error())?;
    let last: u16 = last.trim().parse().map_err(|_| error())?;
    Ok(first..=last)
}

impl TurnSettings {
    /// Merges the flags over the file's `[turn]` over the defaults.
    fn new(args: &TurnArgs, file: &realtimer_server::TurnSection) -> Result<Self, ServeError> {
        let prefixes = |flag: &[IpNet], file: &Option<Vec<String>>| {
            if !flag.is_empty() {
                return Ok(flag.to_vec());
            }
            file.iter()
                .flatten()
                .map(|p| p.parse::<IpNet>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(ServeError::RelayPrefix)
        };
        let ports = args.relay_ports.as_ref().or(file.relay_ports.as_ref());
        Ok(TurnSettings {
            users: list_or(&args.turn_users, file.users.as_ref()),
            secret: args.turn_secret.clone().or_else(|| file.secret.clone()),
            credential_ttl: args
                .credential_ttl
                .or(file.credential_ttl_secs)
                .unwrap_or(86_400),
            host: args.turn_host.clone().or_else(|| file.host.clone()),
            realm: args
                .turn_realm
                .clone()
                .or_else(|| file.realm.clone())
                .unwrap_or_else(|| "realtimer".into()),
            relay_ip: list_or(&args.relay_ip, file.relay_ip.as_ref()),
            relay_ports: ports.map_or(Ok(49_152..=65_535), |p| port_range(p))?,
            relay_allow: prefixes(&args.relay_allow, &file.relay_allow)?,
            relay_deny: prefixes(&args.relay_deny, &file.relay_deny)?,
            total_quota: args.total_quota.or(file.total_quota).unwrap_or(10_000),
            user_quota: args.user_quota.or(file.user_quota).unwrap_or(100),
            ip_quota: args.ip_quota.or(file.ip_quota).unwrap_or(100),
            bandwidth: args.bandwidth.or(file.bandwidth).unwrap_or(4_000_000),
            tcp_relay_connections: args
                .tcp_relay_connections
                .or(file.tcp_relay_connections)
                .unwrap_or(16),
            tcp: args.tcp.or(file.tcp).unwrap_or(true),
            tls_port: args.tls_port.or(file.tls_port).unwrap_or(5349),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(10_000),
            connections_per_ip: args
                .connections_per_ip
                .or(file.connections_per_ip)
                .unwrap_or(200),
            idle_timeout: args.idle_timeout.or(file.idle_timeout_secs).unwrap_or(30),
        })
    }
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
    #[error("[turn] relay_allow or relay_deny: {0}")]
    RelayPrefix(realtimer_turn::IpNetParseError),
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
    let mut turn = TurnSettings::new(&args.turn, &file.turn)?;
    if args.print_config {
        print!("{}", config_text(listen, &http_config, &args, &turn));
        return Ok(());
    }
    let defaults = args.stun_listen == default_stun_listen();
    let mut addresses = args.stun_listen.clone();
    if let Some(port) = args.stun_port {
        addresses.iter_mut().for_each(|a| a.set_port(port));
    }
    let mut limits = ConnectionLimits::default();
    limits.total = turn.max_connections;
    limits.per_ip = turn.connections_per_ip;
    limits.idle = Duration::from_secs(turn.idle_timeout);
    let mut turn_listen = TurnServerConfig::new(addresses)
        .with_tcp(turn.tcp)
        .with_ipv6_optional(defaults)
        .with_limits(limits);
    if let Some(tls) = &http_config.tls {
        let mut config = tls.load()?;
        // RFC 7443 names "stun.turn", but browsers send no ALPN: accept any.
        config.alpn_protocols.clear();
        turn_listen = turn_listen.with_tls(TlsListener::new(Arc::new(config), turn.tls_port));
    }
    let bound = BoundTurnServer::bind(turn_listen)?;
    let listen_addresses: Vec<SocketAddr> = bound
        .local_addrs()
        .into_iter()
        .filter(|(t, _)| *t == Transport::Udp)
        .map(|(_, a)| a)
        .collect();
    let secret = match turn.secret.clone() {
        Some(secret) => secret,
        None => {
            info!("TURN: no --turn-secret, so a random one serves this run's /api/ice-servers");
            let mut bytes = [0u8; 24];
            rand::fill(&mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    };
    turn.secret = Some(secret.clone());
    let config = turn_config(&turn, &listen_addresses)?;
    for ip in [config.relay_ipv4, config.relay_ipv6].into_iter().flatten() {
        info!(
            "TURN relay address {ip}, ports {}-{}",
            turn.relay_ports.start(),
            turn.relay_ports.end()
        );
    }
    let ice = IceServers {
        secret,
        ttl: turn.credential_ttl,
        host: turn.host.clone(),
        port: listen_addresses[0].port(),
        tcp: bound.local_addr(Transport::Tcp).is_some(),
        tls_port: bound.local_addr(Transport::Tls).map(|a| a.port()),
    };
    let turn = bound.start(config)?;
    let handle = turn.handle();
    let routes = |hub: &realtimer_server::Hub, sfu: Option<&realtimer_server::sfu::SfuService>| {
        turn_http::routes(hub.clone(), sfu.cloned(), handle, ice)
    };
    let http = start_http(listen, http_config, routes).await?;
    tokio::signal::ctrl_c().await.map_err(ServeError::Signal)?;
    info!("shutting down");
    if let Some(task) = http {
        task.abort();
    }
    turn.shutdown().await;
    Ok(())
}

/// The TURN core's settings.
fn turn_config(args: &TurnSettings, listeners: &[SocketAddr]) -> Result<ServerConfig, ServeError> {
    let mut credentials = Credentials::new(args.realm.clone());
    for user in &args.users {
        let (name, password) = user
            .split_once(':')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| ServeError::TurnUser(user.clone()))?;
        credentials.add_user(name, password)?;
    }
    if let Some(secret) = &args.secret {
        credentials.set_rest_secret(secret.as_bytes().to_vec());
    }
    let mut nonce_secret = [0u8; 16];
    rand::fill(&mut nonce_secret);
    let mut config = ServerConfig::new(credentials, nonce_secret);
    config.seed = rand::random();
    config.software = Some(format!("realtimer {}", env!("CARGO_PKG_VERSION")));
    config.port_range = args.relay_ports.clone();
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
    routes: impl FnOnce(
        &realtimer_server::Hub,
        Option<&realtimer_server::sfu::SfuService>,
    ) -> axum::Router,
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
    let routes = routes(server.hub(), server.sfu());
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

/// The settings in force as a `--config` file (docs/config.md), every
/// section with every value; what is unset is a comment saying so.
fn config_text(
    listen: SocketAddr,
    http: &realtimer_server::ServerConfig,
    args: &ServeArgs,
    turn: &TurnSettings,
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
    let strings = |items: Vec<String>| {
        let items: Vec<String> = items.iter().map(|s| quoted(s)).collect();
        format!("[{}]", items.join(", "))
    };
    let t = turn;
    out += &format!("\n[turn]\nrealm = {}\n", quoted(&t.realm));
    if t.users.is_empty() {
        out += "# users: none\n";
    } else {
        out += &format!("users = {}\n", strings(t.users.clone()));
    }
    match &t.secret {
        Some(secret) => out += &format!("secret = {}\n", quoted(secret)),
        None => out += "# secret: none, a random one per run\n",
    }
    out += &format!("credential_ttl_secs = {}\n", t.credential_ttl);
    match &t.host {
        Some(host) => out += &format!("host = {}\n", quoted(host)),
        None => out += "# host: none, the host the page was loaded from\n",
    }
    if t.relay_ip.is_empty() {
        out += "# relay_ip: none, the STUN listen addresses (or the default route's)\n";
    } else {
        let ips = t.relay_ip.iter().map(ToString::to_string).collect();
        out += &format!("relay_ip = {}\n", strings(ips));
    }
    out += &format!(
        "relay_ports = \"{}-{}\"\nrelay_allow = {}\nrelay_deny = {}\n",
        t.relay_ports.start(),
        t.relay_ports.end(),
        strings(t.relay_allow.iter().map(ToString::to_string).collect()),
        strings(t.relay_deny.iter().map(ToString::to_string).collect()),
    );
    out += &format!(
        "total_quota = {}\nuser_quota = {}\nip_quota = {}\nbandwidth = {}\n\
         tcp_relay_connections = {}\ntcp = {}\ntls_port = {}\nmax_connections = {}\n\
         connections_per_ip = {}\nidle_timeout_secs = {}\n",
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
