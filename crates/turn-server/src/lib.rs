//! A STUN/TURN server as a library: the sans-IO core of `realtimer_turn`
//! (Binding, RFC 8489; TURN, RFC 8656; TCP allocations, RFC 6062) driven
//! over UDP, TCP and TLS. `realtimer serve` is one user; a program that
//! wants its own TURN server (an SFU, a test) embeds it the same way.
//!
//! Three steps, each of which can fail on its own:
//!
//! 1. [`BoundTurnServer::bind`] binds the listeners a [`TurnServerConfig`]
//!    names (so their ephemeral ports are known before anything runs);
//! 2. [`BoundTurnServer::start`] builds the core from its
//!    [`ServerConfig`] (credentials, relay addresses and ports, quotas,
//!    peer policy) and runs it: one thread owns the core and every UDP
//!    socket (listeners and one relay per allocation), batched with
//!    `realtimer_udp`; TCP and TLS clients, TCP relays and their peer
//!    connections are tokio tasks;
//! 3. [`TurnServer::shutdown`] stops it: listeners close, connections end,
//!    every relay socket is closed, and it returns once the core's thread
//!    is gone. Dropping a [`TurnServer`] stops it too, without waiting.
//!
//! [`TurnServer::metrics`] (or a [`TurnHandle`] from
//! [`TurnServer::handle`]) gives the Prometheus text that `realtimer
//! serve` shows on `/metrics`.
//!
//! ```
//! use realtimer_turn_server::{BoundTurnServer, Credentials, ServerConfig, Transport, TurnServerConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     // Long-term credentials (RFC 8489 §9.2) in a realm.
//!     let mut credentials = Credentials::new("example.org");
//!     credentials.add_user("alice", "secret")?;
//!     // The nonce key should be random in production.
//!     let mut core = ServerConfig::new(credentials, [7; 16]);
//!     core.relay_ipv4 = Some("127.0.0.1".parse()?);
//!
//!     // UDP and TCP on one ephemeral port of the loopback address.
//!     let listen = TurnServerConfig::new(vec!["127.0.0.1:0".parse()?]);
//!     let bound = BoundTurnServer::bind(listen)?;
//!     let udp = bound.local_addr(Transport::Udp).expect("bound");
//!     assert_eq!(bound.local_addr(Transport::Tcp).map(|a| a.port()), Some(udp.port()));
//!
//!     let server = bound.start(core)?;
//!     // ... hand `turn:{udp}` to clients ...
//!     let metrics = server.metrics().await.expect("running");
//!     assert!(metrics.contains("realtimer_turn_"));
//!     server.shutdown().await;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! The server thread polls its sockets with mio and takes the time itself;
//! the core never reads a clock. `start` and `shutdown` must be called
//! from inside a tokio runtime (multi-thread or current-thread), which
//! runs the stream tasks.

mod bind;
mod driver;
mod peers;
mod streams;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use driver::TurnHandle;
pub use realtimer_turn::{ConfigError, Credentials, IpNet, ServerConfig, Transport};

/// Bounds on client connections over TCP and TLS, which hold a task and
/// buffers each: a peer may not open them without limit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Connections open at once, all clients together.
    pub total: usize,
    /// Connections open at once from one IP address.
    pub per_ip: usize,
    /// A connection without an allocation is closed after this long
    /// without a message.
    pub idle: Duration,
    /// The TLS handshake must finish within this.
    pub handshake: Duration,
}

impl Default for ConnectionLimits {
    /// 10,000 connections, 200 per IP, 30 s idle, 10 s for a handshake
    /// (`realtimer serve`'s defaults).
    fn default() -> Self {
        ConnectionLimits {
            total: 10_000,
            per_ip: 200,
            idle: Duration::from_secs(30),
            handshake: Duration::from_secs(10),
        }
    }
}

/// TURN over TLS (RFC 8656 §3.1, `turns:` URLs).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsListener {
    /// The server's certificate and key. Browsers send no ALPN, so leave
    /// `alpn_protocols` empty to accept them.
    pub config: Arc<rustls::ServerConfig>,
    /// The port, on each listen address's IP (0: an ephemeral one each).
    pub port: u16,
}

impl TlsListener {
    /// TLS with `config` on `port`.
    pub fn new(config: Arc<rustls::ServerConfig>, port: u16) -> Self {
        TlsListener { config, port }
    }
}

/// Where and how the server listens. The protocol settings (credentials,
/// relays, quotas) are the core's [`ServerConfig`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TurnServerConfig {
    /// UDP listeners (STUN and TURN), e.g. `0.0.0.0:3478` and `[::]:3478`
    /// (IPv6 ones are IPv6-only). Port 0 picks one.
    pub listen: Vec<SocketAddr>,
    /// TURN over TCP on the same addresses and ports as UDP (with port 0,
    /// one port free for both is found).
    pub tcp: bool,
    /// TURN over TLS, when given.
    pub tls: Option<TlsListener>,
    /// An IPv6 listen address that cannot be bound (a host without IPv6)
    /// is skipped with a warning rather than an error.
    pub ipv6_optional: bool,
    /// Bounds on TCP and TLS connections.
    pub limits: ConnectionLimits,
}

impl TurnServerConfig {
    /// UDP and TCP on `listen`, no TLS, default limits.
    pub fn new(listen: Vec<SocketAddr>) -> Self {
        TurnServerConfig {
            listen,
            tcp: true,
            tls: None,
            ipv6_optional: false,
            limits: ConnectionLimits::default(),
        }
    }

    /// This configuration with TURN over TCP on or off.
    pub fn with_tcp(mut self, tcp: bool) -> Self {
        self.tcp = tcp;
        self
    }

    /// This configuration with TURN over TLS.
    pub fn with_tls(mut self, tls: TlsListener) -> Self {
        self.tls = Some(tls);
        self
    }

    /// This configuration, skipping IPv6 addresses that cannot be bound.
    pub fn with_ipv6_optional(mut self, optional: bool) -> Self {
        self.ipv6_optional = optional;
        self
    }

    /// This configuration with other connection limits.
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// Why the server could not be bound or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TurnServerError {
    /// A listener could not be bound.
    #[error("cannot listen for {} on {address}: {source}", transport_name(.transport))]
    Bind {
        /// UDP (STUN and TURN), TCP or TLS.
        transport: Transport,
        /// The address asked for.
        address: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// Every listen address was skipped (IPv6 ones without IPv6), or none
    /// was given.
    #[error("no STUN listen address could be bound")]
    NothingBound,
    /// The core refused its configuration.
    #[error("TURN: {0}")]
    Config(#[from] ConfigError),
    /// The system clock is before 1970 (REST credentials expire by it).
    #[error("cannot read the system clock: {0}")]
    Clock(#[from] std::time::SystemTimeError),
    /// The server's thread or its poll could not be created.
    #[error("cannot start the TURN server: {0}")]
    Start(io::Error),
}

fn transport_name(transport: &Transport) -> &'static str {
    match transport {
        Transport::Udp => "STUN",
        Transport::Tcp => "TURN over TCP",
        Transport::Tls => "TURN over TLS",
        other => other.as_str(),
    }
}

/// Listeners bound and not yet served (see the [crate] docs).
pub struct BoundTurnServer {
    bound: bind::Bound,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnectionLimits,
}

impl std::fmt::Debug for BoundTurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundTurnServer")
            .field("local_addrs", &self.local_addrs())
            .finish_non_exhaustive()
    }
}

impl BoundTurnServer {
    /// Binds the listeners `config` names.
    pub fn bind(config: TurnServerConfig) -> Result<Self, TurnServerError> {
        let bound = bind::bind(&config)?;
        Ok(BoundTurnServer {
            bound,
            tls: config.tls.map(|t| t.config),
            limits: config.limits,
        })
    }

    /// Every listener's transport and bound address, UDP first.
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        let udp = self.bound.udp.iter().map(|(a, _)| (Transport::Udp, *a));
        let streams = self.bound.streams.iter().map(|(t, a, _)| (*t, *a));
        udp.chain(streams).collect()
    }

    /// The first listener of `transport`.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        first_of(&self.local_addrs(), transport)
    }

    /// Builds the core from `core` and runs it on the bound listeners.
    /// Call from inside a tokio runtime.
    pub fn start(self, core: ServerConfig) -> Result<TurnServer, TurnServerError> {
        let addrs = self.local_addrs();
        let (now, unix) = clocks()?;
        let server = realtimer_turn::Server::new(core, now, unix.as_secs())?;
        let listeners = driver::Listeners {
            udp: self.bound.udp,
            streams: self.bound.streams,
            tls: self.tls,
            limits: self.limits,
        };
        let started = driver::start(server, listeners).map_err(TurnServerError::Start)?;
        Ok(TurnServer {
            started: Some(started),
            addrs,
        })
    }
}

/// The server's two clocks at start: monotonic for timers, Unix time for
/// REST credential expiry.
#[allow(clippy::disallowed_methods)] // the driver owns the clock; the core takes it as input
fn clocks() -> Result<(Instant, Duration), TurnServerError> {
    let unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?;
    Ok((Instant::now(), unix))
}

fn first_of(addrs: &[(Transport, SocketAddr)], transport: Transport) -> Option<SocketAddr> {
    addrs.iter().find(|(t, _)| *t == transport).map(|(_, a)| *a)
}

/// A running TURN server (see the [crate] docs). Dropping it stops it.
pub struct TurnServer {
    /// `None` once shut down.
    started: Option<driver::Started>,
    addrs: Vec<(Transport, SocketAddr)>,
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnServer")
            .field("local_addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl TurnServer {
    /// Every listener's transport and bound address, UDP first.
    pub fn local_addrs(&self) -> &[(Transport, SocketAddr)] {
        &self.addrs
    }

    /// The first listener of `transport`.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        first_of(&self.addrs, transport)
    }

    /// A handle for other tasks (metrics), valid while the server runs.
    pub fn handle(&self) -> TurnHandle {
        match &self.started {
            Some(started) => started.handle.clone(),
            None => unreachable!("a TurnServer is started until shutdown consumes it"),
        }
    }

    /// The metrics in the Prometheus text format (see
    /// [`TurnHandle::metrics`]).
    pub async fn metrics(&self) -> Option<String> {
        self.handle().metrics().await
    }

    /// Stops the server and waits until its thread has closed every
    /// socket: listeners stop accepting, client connections and TCP
    /// relays end, allocations go with the core.
    pub async fn shutdown(mut self) {
        let Some(started) = self.started.take() else {
            return;
        };
        started.signal_stop();
        let thread = started.thread;
        // Joining blocks: off the runtime's worker.
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        for task in started.listener_tasks {
            let _ = task.await;
        }
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        if let Some(started) = &self.started {
            started.signal_stop();
        }
    }
}
