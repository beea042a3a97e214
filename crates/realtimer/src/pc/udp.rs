//! The UDP socket under a connection: large kernel buffers, batched sends
//! (GSO: one system call for a run of equal-sized datagrams to one address)
//! and batched receives (recvmmsg + GRO), through quinn-udp, the one place
//! with the `unsafe` system calls.
//!
//! A bulk data channel moves tens of thousands of 1200-byte datagrams a
//! second; one system call and one wakeup per datagram was where the time
//! went.

use std::cell::RefCell;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use bytes::Bytes;
use quinn_udp::{RecvMeta, UdpSocketState, BATCH_SIZE};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::debug;

use crate::{OperationError, RtcError};

use super::udp_mux::MuxPort;

/// Kernel socket buffers asked for (the kernel caps them at
/// `net.core.rmem_max` / `wmem_max`): a window's worth of datagrams must fit
/// while the driver is busy, or the kernel drops them and SCTP backs off.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Largest GSO batch in bytes (one UDP datagram's worth on the wire).
const MAX_GSO_BYTES: usize = 64000;

/// Receive buffers per `recvmmsg` and their size (one GRO batch each).
const RECV_BUFFERS: usize = 8;
const RECV_BUFFER_SIZE: usize = 64 * 1024;

/// A socket with `UDP_GRO` on for as long as the process runs. Linux turns
/// a static key on when the first socket enables GRO (it counts as UDP
/// encapsulation) and off after the last one closes, patching kernel code
/// each time (about 80 µs each way, with an interrupt to every CPU); with
/// one socket kept, opening and closing connections skips that.
static GRO_KEEPER: OnceLock<Option<std::net::UdpSocket>> = OnceLock::new();

fn keep_gro_enabled(v6: bool) {
    GRO_KEEPER.get_or_init(|| {
        let loopback: IpAddr = if v6 {
            Ipv6Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::LOCALHOST.into()
        };
        let socket = std::net::UdpSocket::bind((loopback, 0)).ok()?;
        UdpSocketState::new((&socket).into()).ok()?;
        Some(socket)
    });
}

thread_local! {
    /// Receive buffers, one set per worker thread rather than per
    /// connection: a receive is handled before the driver awaits again.
    static RECV: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
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
        let socket = UdpSocket::bind(address)
            .await
            .map_err(|e| OperationError::Bind {
                address,
                kind: e.kind(),
            })?;
        let v6 = address.is_ipv6();
        keep_gro_enabled(v6);
        let state = UdpSocketState::new((&socket).into())
            .map_err(|e| OperationError::SocketSetup { kind: e.kind() })?;
        for (what, r) in [
            (
                "SO_RCVBUF",
                state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER),
            ),
            (
                "SO_SNDBUF",
                state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER),
            ),
        ] {
            if let Err(e) = r {
                debug!("{what}: {e}");
            }
        }
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
    /// destination in one GSO call. Waits while the socket is full.
    pub(super) async fn send_all(&self, mut next: impl FnMut() -> Option<Outgoing>) {
        let max_segments = self.state.max_gso_segments().max(1);
        let mut batch = Vec::new();
        let mut held = next();
        while let Some(first) = held.take() {
            let size = first.contents.len().max(1);
            let destination = self.wire_address(first.destination);
            let limit = max_segments.min(MAX_GSO_BYTES / size).max(1);
            batch.clear();
            batch.extend_from_slice(&first.contents);
            let mut segments = 1;
            // A shorter datagram may end a run; a longer one or another
            // destination starts the next.
            while segments < limit && batch.len() % size == 0 {
                match next() {
                    Some(t)
                        if t.destination == first.destination
                            && t.contents.len() <= size
                            && !t.contents.is_empty() =>
                    {
                        batch.extend_from_slice(&t.contents);
                        segments += 1;
                    }
                    other => {
                        held = other;
                        break;
                    }
                }
            }
            let transmit = quinn_udp::Transmit {
                destination,
                ecn: None,
                contents: &batch,
                segment_size: (segments > 1).then_some(size),
                src_ip: None,
            };
            if let Err(e) = self.send_one(&transmit).await {
                debug!(%destination, segments, "UDP send: {e}");
                // GSO may be refused (quinn-udp then stops using it):
                // the datagrams one by one.
                if segments > 1 {
                    for d in batch.chunks(size) {
                        let single = quinn_udp::Transmit {
                            contents: d,
                            segment_size: None,
                            ..transmit.clone()
                        };
                        let _ = self.send_one(&single).await;
                    }
                }
            }
            if held.is_none() {
                held = next();
            }
        }
    }

    /// One send system call, waiting while the socket is full.
    async fn send_one(&self, transmit: &quinn_udp::Transmit<'_>) -> io::Result<()> {
        loop {
            match self.socket.try_io(Interest::WRITABLE, || {
                self.state.try_send((&self.socket).into(), transmit)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.writable().await?,
                r => return r,
            }
        }
    }

    /// Waits until a datagram may be read.
    pub(super) async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Reads what is waiting (one `recvmmsg`, GRO batches split) and hands
    /// each datagram to `handle` with its source and the local IP it came
    /// to. `Ok(0)` when nothing was waiting.
    pub(super) fn try_recv(
        &self,
        mut handle: impl FnMut(SocketAddr, Option<IpAddr>, &[u8]),
    ) -> io::Result<usize> {
        RECV.with_borrow_mut(|buf| {
            if buf.is_empty() {
                buf.resize(RECV_BUFFERS * RECV_BUFFER_SIZE, 0);
            }
            let mut meta = [RecvMeta::default(); BATCH_SIZE];
            let mut slices: Vec<IoSliceMut<'_>> = buf
                .chunks_mut(RECV_BUFFER_SIZE)
                .take(BATCH_SIZE)
                .map(IoSliceMut::new)
                .collect();
            let n = match self.socket.try_io(Interest::READABLE, || {
                self.state
                    .recv((&self.socket).into(), &mut slices, &mut meta)
            }) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) => return Err(e),
            };
            let mut count = 0;
            for (m, slice) in meta.iter().zip(slices.iter()).take(n) {
                let from = canonical(m.addr);
                let to = m.dst_ip.map(|ip| ip.to_canonical());
                let data = slice.get(..m.len).unwrap_or_default();
                for d in data.chunks(m.stride.max(1)) {
                    handle(from, to, d);
                    count += 1;
                }
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
        handle: impl FnMut(SocketAddr, Option<IpAddr>, &[u8]),
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

/// `::ffff:a.b.c.d` as `a.b.c.d`: the core works with plain IPv4.
pub(super) fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}
