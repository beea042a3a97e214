//! The UDP socket under a connection: large kernel buffers, batched sends
//! (GSO: one system call for a run of equal-sized datagrams to one address)
//! and batched receives (recvmmsg + GRO), through `realtimer_udp` (the
//! batched UDP the TURN server shares; quinn-udp under it holds the
//! `unsafe` system calls).
//!
//! A bulk data channel moves tens of thousands of 1200-byte datagrams a
//! second; one system call and one wakeup per datagram was where the time
//! went.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use realtimer_udp::{
    canonical, keep_gro_enabled, BindOptions, Received, SendQueue, UdpSocketState,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::{OperationError, RtcError};

use super::udp_mux::MuxPort;

/// Kernel socket buffers asked for (the kernel caps them at
/// `net.core.rmem_max` / `wmem_max`): a window's worth of datagrams must fit
/// while the driver is busy, or the kernel drops them and SCTP backs off.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Messages per receive (one GRO batch each): a connection's socket rarely
/// holds more, and the buffers are per worker thread.
const RECV_SLOTS: usize = 8;

thread_local! {
    /// Receive buffers, one set per worker thread rather than per
    /// connection: a receive is handled before the driver awaits again.
    static RECV: RefCell<Option<Received>> = const { RefCell::new(None) };
}

/// One datagram the core wants sent.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) destination: SocketAddr,
    pub(super) contents: Bytes,
}

/// A bound UDP socket with its quinn-udp state.
#[derive(Debug)]
pub(super) struct UdpIo {
    socket: UdpSocket,
    state: UdpSocketState,
    /// Dual-stack IPv6 socket: IPv4 destinations go out v4-mapped.
    v6: bool,
}

impl UdpIo {
    /// Binds `port` (0: any) dual-stack when the host has IPv6, IPv4 only
    /// otherwise.
    pub(super) async fn bind(port: u16) -> Result<UdpIo, RtcError> {
        match Self::bind_addr((Ipv6Addr::UNSPECIFIED, port).into()).await {
            Ok(io) => Ok(io),
            Err(_) => Self::bind_addr((Ipv4Addr::UNSPECIFIED, port).into()).await,
        }
    }

    /// Binds `address` (an IPv6 wildcard is dual-stack).
    pub(super) async fn bind_addr(address: SocketAddr) -> Result<UdpIo, RtcError> {
        let options = BindOptions::default()
            .with_buffer(SOCKET_BUFFER)
            .with_ipv6_only(false);
        let socket = realtimer_udp::bind(address, options)
            .and_then(UdpSocket::from_std)
            .map_err(|e| OperationError::Bind {
                address,
                kind: e.kind(),
            })?;
        let v6 = address.is_ipv6();
        keep_gro_enabled(v6);
        let state = UdpSocketState::new((&socket).into())
            .map_err(|e| OperationError::SocketSetup { kind: e.kind() })?;
        Ok(UdpIo { socket, state, v6 })
    }

    /// The bound address.
    pub(super) fn local_addr(&self) -> Result<SocketAddr, RtcError> {
        self.socket
            .local_addr()
            .map(canonical)
            .map_err(|e| OperationError::SocketSetup { kind: e.kind() }.into())
    }

    /// Whether the socket is dual-stack IPv6.
    pub(super) fn is_v6(&self) -> bool {
        self.v6
    }

    /// Sends every datagram `next` gives, runs of equal size to one
    /// destination in one GSO call, singles to several destinations in one
    /// `sendmmsg` ([`SendQueue`]). Waits while the socket is full.
    pub(super) async fn send_all(&self, mut next: impl FnMut() -> Option<Outgoing>) {
        let mut queue = SendQueue::new(self.state.max_gso_segments());
        // One socket: the source only groups runs.
        let source = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        while let Some(t) = next() {
            queue.push(source, self.wire_address(t.destination), &t.contents);
        }
        while !queue.is_empty() {
            let sent = self.socket.try_io(Interest::WRITABLE, || {
                queue.try_send_from(&self.socket, &self.state)
            });
            match sent {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.socket.writable().await {
                        tracing::debug!("UDP send: {e}");
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!("UDP send: {e}");
                    return;
                }
            }
        }
    }

    /// Waits until a datagram may be read.
    pub(super) async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Reads what is waiting (one `recvmmsg`, GRO batches split) and hands
    /// each datagram to `handle` with its source, the local IP it came to
    /// and when the kernel received it. `Ok(0)` when nothing was waiting.
    pub(super) fn try_recv(
        &self,
        mut handle: impl FnMut(SocketAddr, Option<IpAddr>, &[u8], Instant),
    ) -> io::Result<usize> {
        RECV.with_borrow_mut(|received| {
            let received = received.get_or_insert_with(|| Received::with_slots(RECV_SLOTS));
            let n = match self.socket.try_io(Interest::READABLE, || {
                received.read(&self.socket, &self.state)
            }) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) => return Err(e),
            };
            let mut count = 0;
            for d in received.datagrams(n) {
                handle(d.source, d.destination, d.contents, d.arrival);
                count += 1;
            }
            Ok(count)
        })
    }

    fn wire_address(&self, a: SocketAddr) -> SocketAddr {
        match a {
            SocketAddr::V4(a) if self.v6 => {
                SocketAddr::new(IpAddr::V6(a.ip().to_ipv6_mapped()), a.port())
            }
            other => other,
        }
    }
}

/// A connection's datagrams: its own socket, or its end of a shared one.
#[derive(Debug)]
pub(super) enum Transport {
    Own(UdpIo),
    Shared(MuxPort),
}

impl Transport {
    fn io(&self) -> &UdpIo {
        match self {
            Transport::Own(io) => io,
            Transport::Shared(port) => port.io(),
        }
    }

    /// The local port.
    pub(super) fn port(&self) -> Result<u16, RtcError> {
        self.io().local_addr().map(|a| a.port())
    }

    /// The bound address (an unspecified IP: every interface).
    pub(super) fn local_addr(&self) -> Result<SocketAddr, RtcError> {
        self.io().local_addr()
    }

    /// Whether the socket is dual-stack IPv6.
    pub(super) fn is_v6(&self) -> bool {
        self.io().is_v6()
    }

    /// See [`UdpIo::send_all`].
    pub(super) async fn send_all(&self, next: impl FnMut() -> Option<Outgoing>) {
        match self {
            Transport::Own(io) => io.send_all(next).await,
            Transport::Shared(port) => port.send_all(next).await,
        }
    }

    /// Waits until a datagram may be read.
    pub(super) async fn readable(&mut self) -> io::Result<()> {
        match self {
            Transport::Own(io) => io.readable().await,
            Transport::Shared(port) => port.readable().await,
        }
    }

    /// See [`UdpIo::try_recv`].
    pub(super) fn try_recv(
        &mut self,
        handle: impl FnMut(SocketAddr, Option<IpAddr>, &[u8], Instant),
    ) -> io::Result<usize> {
        match self {
            Transport::Own(io) => io.try_recv(handle),
            Transport::Shared(port) => port.try_recv(handle),
        }
    }

    /// On a shared socket, STUN requests for `ufrag` are ours.
    pub(super) fn claim_ufrag(&self, ufrag: &str) {
        if let Transport::Shared(port) = self {
            port.claim_ufrag(ufrag);
        }
    }
}
