//! Binding the listeners: UDP (STUN and TURN), TCP on the same addresses
//! and ports, TLS on its own port.

use std::io;
use std::net::SocketAddr;

use realtimer_turn::Transport;
use realtimer_udp::BindOptions;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::{info, warn};

use crate::{TurnServerConfig, TurnServerError};

/// Kernel buffers of a listener: it carries every client's traffic.
const LISTENER_BUFFER: usize = 4 << 20;
/// Tries at an ephemeral port free for both UDP and TCP.
const PORT_TRIES: usize = 16;

/// The bound sockets, before the driver takes them.
pub(crate) struct Bound {
    pub(crate) udp: Vec<(SocketAddr, std::net::UdpSocket)>,
    pub(crate) streams: Vec<(Transport, SocketAddr, std::net::TcpListener)>,
}

/// Binds a UDP listener; an IPv6 one is IPv6-only, so `0.0.0.0:P` and
/// `[::]:P` can both be bound.
fn bind_udp(address: SocketAddr) -> io::Result<std::net::UdpSocket> {
    realtimer_udp::bind(address, BindOptions::default().with_buffer(LISTENER_BUFFER))
}

/// Binds a non-blocking TCP listener, IPv6-only for IPv6 as [`bind_udp`].
fn bind_tcp(address: SocketAddr) -> io::Result<std::net::TcpListener> {
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
    Ok(socket.into())
}

/// Binds UDP on `address`; for an ephemeral port (0) with `tcp`, also TCP
/// on the port UDP got, trying other ports while that one is taken for TCP.
fn bind_udp_and_tcp(
    address: SocketAddr,
    tcp: bool,
) -> io::Result<(std::net::UdpSocket, Option<std::net::TcpListener>)> {
    let mut last = None;
    for _ in 0..PORT_TRIES {
        let udp = bind_udp(address)?;
        if !tcp || address.port() != 0 {
            return Ok((udp, None));
        }
        match bind_tcp(udp.local_addr()?) {
            Ok(listener) => return Ok((udp, Some(listener))),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// Binds every listener `config` asks for: UDP on each address, TCP on
/// the same address and port when `tcp`, TLS on the address's IP and the
/// TLS port. With `ipv6_optional`, an IPv6 address that cannot be bound
/// (a host without IPv6) is skipped with a warning.
pub(crate) fn bind(config: &TurnServerConfig) -> Result<Bound, TurnServerError> {
    let mut udp = Vec::new();
    let mut streams = Vec::new();
    let skip = |address: &SocketAddr| config.ipv6_optional && address.is_ipv6();
    for &address in &config.listen {
        match bind_udp_and_tcp(address, config.tcp) {
            Ok((socket, tcp)) => {
                let local = socket.local_addr().unwrap_or(address);
                info!("STUN server listening on {local} (UDP)");
                udp.push((local, socket));
                if let Some(listener) = tcp {
                    info!("TURN server listening on {local} (TCP)");
                    streams.push((Transport::Tcp, local, listener));
                }
            }
            Err(source) if skip(&address) => {
                warn!(%address, "IPv6 STUN listener not started: {source}");
            }
            Err(source) => {
                return Err(TurnServerError::Bind {
                    transport: Transport::Udp,
                    address,
                    source,
                })
            }
        }
    }
    if udp.is_empty() {
        return Err(TurnServerError::NothingBound);
    }
    let mut wanted = Vec::new();
    for (address, _) in &udp {
        if config.tcp && !streams.iter().any(|(_, local, _)| local == address) {
            wanted.push((Transport::Tcp, *address));
        }
        if let Some(tls) = &config.tls {
            wanted.push((Transport::Tls, SocketAddr::new(address.ip(), tls.port)));
        }
    }
    for (transport, address) in wanted {
        match bind_tcp(address) {
            Ok(listener) => {
                let local = listener.local_addr().unwrap_or(address);
                let name = transport.as_str().to_uppercase();
                info!("TURN server listening on {local} ({name})");
                streams.push((transport, local, listener));
            }
            Err(source) if skip(&address) => {
                warn!(%address, "IPv6 TURN listener not started: {source}");
            }
            Err(source) => {
                return Err(TurnServerError::Bind {
                    transport,
                    address,
                    source,
                })
            }
        }
    }
    Ok(Bound { udp, streams })
}
