//! `realtimer stun`: one Binding request, retransmitted per RFC 8489 §6.2.1,
//! and the mapped address it reveals.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use rand::RngCore;
use realtimer_stun::attributes::{ErrorCode, MappedAddress, Software, XorMappedAddress};
use realtimer_stun::{
    Class, ClientTransactions, DecodeError, Message, MessageEncoder, Method, OutgoingRequest,
    RetransmitConfig, ServerUrl, TransactionEvent, TransactionId, Transmit, UrlError,
};
use tokio::net::UdpSocket;
use tracing::debug;

/// Options of `realtimer stun`.
#[derive(Debug, Args)]
pub(crate) struct StunArgs {
    /// The server: HOST[:PORT] or a stun: URL (turn: works too: TURN servers
    /// answer Binding requests).
    server: String,

    /// Initial retransmission timeout in milliseconds (RFC 8489 RTO).
    #[arg(long, default_value_t = 500)]
    rto_ms: u64,

    /// How many times the request is sent in all (RFC 8489 Rc).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=20))]
    max_transmissions: u32,

    /// After the last send, wait this many initial RTOs (RFC 8489 Rm).
    #[arg(long, default_value_t = 16)]
    final_wait: u32,

    /// Local address to send from (default: any address, a free port).
    #[arg(long)]
    bind: Option<SocketAddr>,
}

/// Why no mapped address could be learned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StunError {
    #[error("bad server {text:?}: {source}")]
    Url { text: String, source: UrlError },
    #[error("{0}: only UDP STUN is supported for now (use stun: or turn:)")]
    Unsupported(ServerUrl),
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("cannot use a UDP socket on {address}: {source}")]
    Socket {
        address: SocketAddr,
        source: io::Error,
    },
    #[error("no response from {server} after {transmissions} transmissions over {elapsed:.1?}")]
    Timeout {
        server: SocketAddr,
        transmissions: u32,
        elapsed: Duration,
    },
    #[error("{server} answered with an error: {code} {reason}")]
    ErrorResponse {
        server: SocketAddr,
        code: u16,
        reason: String,
    },
    #[error("{server} sent a malformed response: {source}")]
    Malformed {
        server: SocketAddr,
        source: DecodeError,
    },
    #[error("{0} sent a response without a mapped address")]
    NoMappedAddress(SocketAddr),
}

pub(crate) async fn run(args: StunArgs) -> Result<(), StunError> {
    let url = ServerUrl::parse(&args.server).map_err(|source| StunError::Url {
        text: args.server.clone(),
        source,
    })?;
    if url.scheme.is_secure() {
        return Err(StunError::Unsupported(url));
    }
    let server = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|source| StunError::Resolve {
            host: url.host.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| StunError::NoAddress(url.host.clone()))?;
    let bind = args.bind.unwrap_or(match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    });
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|source| StunError::Socket {
            address: bind,
            source,
        })?;
    let local = socket.local_addr().unwrap_or(bind);
    let config = RetransmitConfig {
        initial_rto: Duration::from_millis(args.rto_ms),
        max_transmissions: args.max_transmissions,
        final_wait_multiplier: args.final_wait,
        ..RetransmitConfig::default()
    };
    let mapped = binding(&socket, server, config).await?;
    println!("server: {url} ({server})");
    println!("local address: {local}");
    println!("mapped address: {}", mapped.address);
    if let Some(rtt) = mapped.rtt {
        println!("rtt: {:.3} ms", rtt.as_secs_f64() * 1000.0);
    }
    if let Some(software) = mapped.software {
        println!("server software: {software}");
    }
    Ok(())
}

struct Mapped {
    address: SocketAddr,
    rtt: Option<Duration>,
    software: Option<String>,
}

/// Drives one client transaction with a real socket and the real clock.
#[allow(clippy::disallowed_methods)] // the driver owns the clock
async fn binding(
    socket: &UdpSocket,
    server: SocketAddr,
    config: RetransmitConfig,
) -> Result<Mapped, StunError> {
    let socket_error = |source| StunError::Socket {
        address: server,
        source,
    };
    let mut id = [0u8; 12];
    rand::rng().fill_bytes(&mut id);
    let tid = TransactionId::new(id);
    let mut request = Vec::with_capacity(64);
    let mut enc = MessageEncoder::new(&mut request, Class::Request, Method::BINDING, tid);
    let software = format!("realtimer {}", env!("CARGO_PKG_VERSION"));
    // Our own SOFTWARE is short enough; these cannot fail.
    let _ = enc.add(&Software(&software));
    let _ = enc.add_fingerprint();

    let start = Instant::now();
    let mut transactions = ClientTransactions::new(config);
    // A fresh id in an empty table: start cannot fail.
    let _ = transactions.start(
        start,
        OutgoingRequest {
            transaction_id: tid,
            transmit: Transmit::udp(
                socket.local_addr().map_err(socket_error)?,
                server,
                Bytes::from(request),
            ),
        },
        (),
    );
    let mut buf = vec![0u8; 2048];
    let mut transmissions = 0;
    loop {
        while let Some(transmit) = transactions.poll_transmit() {
            transmissions += 1;
            debug!(%server, transmissions, "sending Binding request");
            socket
                .send_to(&transmit.contents, transmit.destination)
                .await
                .map_err(socket_error)?;
        }
        if let Some(TransactionEvent::TimedOut { .. }) = transactions.poll_event() {
            return Err(StunError::Timeout {
                server,
                transmissions,
                elapsed: start.elapsed(),
            });
        }
        // A pending transaction always has a deadline; without one it is over.
        let Some(deadline) = transactions.poll_timeout() else {
            return Err(StunError::Timeout {
                server,
                transmissions,
                elapsed: start.elapsed(),
            });
        };
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (len, source) = match received {
                    Ok(r) => r,
                    // An ICMP port unreachable from an earlier send: keep
                    // retransmitting, the server may come up.
                    Err(e) => {
                        debug!("recv_from: {e}");
                        continue;
                    }
                };
                if source != server {
                    debug!(%source, "ignoring a datagram from another address");
                    continue;
                }
                let message = Message::decode(&buf[..len])
                    .map_err(|source| StunError::Malformed { server, source })?;
                let Some(matched) = transactions.handle_response(Instant::now(), &message) else {
                    continue;
                };
                return interpret(server, &message, matched.rtt);
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                transactions.handle_timeout(Instant::now());
            }
        }
    }
}

fn interpret(
    server: SocketAddr,
    message: &Message<'_>,
    rtt: Option<Duration>,
) -> Result<Mapped, StunError> {
    let malformed = |source| StunError::Malformed { server, source };
    if message.class() == Class::ErrorResponse {
        let (code, reason) = match message.get::<ErrorCode>().map_err(malformed)? {
            Some(e) => (e.code, e.reason.to_owned()),
            None => (0, "(no ERROR-CODE)".to_owned()),
        };
        return Err(StunError::ErrorResponse {
            server,
            code,
            reason,
        });
    }
    let address = match message.get::<XorMappedAddress>().map_err(malformed)? {
        Some(XorMappedAddress(a)) => a,
        None => match message.get::<MappedAddress>().map_err(malformed)? {
            Some(MappedAddress(a)) => a,
            None => return Err(StunError::NoMappedAddress(server)),
        },
    };
    let software = message
        .get::<Software>()
        .ok()
        .flatten()
        .map(|s| s.0.to_owned());
    Ok(Mapped {
        address,
        rtt,
        software,
    })
}
