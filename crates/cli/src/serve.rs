//! `realtimer serve`: the HTTP server (signaling rooms over Socket.IO and
//! WebSocket, the web app) and a STUN server (RFC 8489 Binding) on UDP.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use realtimer_stun::{BindingOutcome, BindingServer};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

/// Options of `realtimer serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// TCP address of the HTTP server (web app, Socket.IO, WebSocket).
    #[arg(long, env = "REALTIMER_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Serve the web app from this folder instead of the copy built into
    /// the binary (for developing it: edit, reload).
    #[arg(long = "web-dir", env = "REALTIMER_WEB_DIR")]
    web_dir: Option<PathBuf>,

    /// UDP addresses the STUN server listens on (comma-separated).
    #[arg(
        long = "stun-listen",
        env = "REALTIMER_STUN_LISTEN",
        value_delimiter = ',',
        default_value = "0.0.0.0:3478,[::]:3478"
    )]
    stun_listen: Vec<SocketAddr>,

    /// Use this port on every STUN listen address instead of theirs.
    #[arg(long = "stun-port", env = "REALTIMER_STUN_PORT")]
    stun_port: Option<u16>,
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

pub(crate) async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let defaults = args.stun_listen == default_stun_listen();
    let server = Arc::new(BindingServer::new(Some(format!(
        "realtimer {}",
        env!("CARGO_PKG_VERSION")
    ))));
    let mut tasks = Vec::new();
    for mut address in args.stun_listen {
        if let Some(port) = args.stun_port {
            address.set_port(port);
        }
        match bind_udp(address) {
            Ok(socket) => {
                let local = socket.local_addr().unwrap_or(address);
                info!("STUN server listening on {local} (UDP)");
                tasks.push(tokio::spawn(serve_stun(socket, local, Arc::clone(&server))));
            }
            // A host without IPv6 still serves IPv4 with the default addresses.
            Err(source) if defaults && address.is_ipv6() => {
                warn!(%address, "IPv6 STUN listener not started: {source}");
            }
            Err(source) => return Err(ServeError::Bind { address, source }),
        }
    }
    if tasks.is_empty() {
        return Err(ServeError::NothingBound);
    }
    if let Some(task) = start_http(args.listen, args.web_dir).await? {
        tasks.push(task);
    }
    tokio::signal::ctrl_c().await.map_err(ServeError::Signal)?;
    info!("shutting down");
    for task in tasks {
        task.abort();
    }
    Ok(())
}

/// Starts the HTTP server. When the default address is taken (another
/// server, a parallel test), STUN still runs and a warning says why; an
/// explicit `--listen` that cannot be bound is an error.
async fn start_http(
    address: SocketAddr,
    web_dir: Option<PathBuf>,
) -> Result<Option<tokio::task::JoinHandle<()>>, ServeError> {
    if let Some(dir) = &web_dir {
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
    info!("HTTP server listening on http://{local}");
    let config = realtimer_server::ServerConfig {
        web_dir,
        ..Default::default()
    };
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = realtimer_server::serve(listener, config).await {
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

/// Receives datagrams and answers Binding requests until the task is aborted.
async fn serve_stun(socket: UdpSocket, local: SocketAddr, server: Arc<BindingServer>) {
    // A STUN message over UDP fits in one datagram; anything longer is cut
    // and then fails to decode, which is what it deserves.
    let mut datagram = vec![0u8; 2048];
    let mut response = Vec::with_capacity(256);
    loop {
        let (len, source) = match socket.recv_from(&mut datagram).await {
            Ok(received) => received,
            // ICMP errors from earlier sends surface here on some systems;
            // they concern one peer, not the listener.
            Err(e) => {
                debug!(%local, "recv_from: {e}");
                continue;
            }
        };
        match server.handle(&datagram[..len], source, &mut response) {
            BindingOutcome::Respond => {
                debug!(%source, "answering a STUN request");
                if let Err(e) = socket.send_to(&response, source).await {
                    debug!(%source, "send_to: {e}");
                }
            }
            BindingOutcome::Malformed(e) => debug!(%source, "dropped a malformed datagram: {e}"),
            _ => {}
        }
    }
}
