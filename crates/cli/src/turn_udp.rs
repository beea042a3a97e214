//! Batched UDP for the TURN driver ([`crate::turn_driver`]): what the core
//! sends is queued during a round and sent at its end, grouped by socket.
//! A run of same-size datagrams from one socket to one destination goes
//! out as one GSO send (quinn-udp); single datagrams from one socket to
//! many destinations (the listener answering many clients, the common case
//! with many allocations) go out together in one `sendmmsg`. Receives are
//! batched too: recvmmsg, and GRO trains split by their stride.
//!
//! Self-contained (nothing from the rest of the crate): the TURN load
//! generator, `crates/turn/benches/relay_load`, includes it by path.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use mio::net::UdpSocket;
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState, BATCH_SIZE};
use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
use tracing::debug;

/// The most bytes one GSO send carries.
const MAX_GSO_BYTES: usize = 64_000;
/// Datagrams per `sendmmsg` call.
const MMSG_BATCH: usize = 64;
/// Room for one received message: a datagram, or a GRO train of them
/// (the kernel merges at most UDP_GRO_CNT_MAX = 64 segments and never
/// past 65,535 bytes, an IP datagram's limit).
const RECEIVE_SLOT: usize = 64 * 1024;

/// A run of datagrams of one size from one socket to one destination,
/// stored in [`Outgoing::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    source: SocketAddr,
    destination: SocketAddr,
    start: usize,
    len: usize,
    segment: usize,
}

impl Run {
    fn segments(&self) -> usize {
        self.len / self.segment
    }
}

/// Datagrams queued during a round, sent by [`Outgoing::send`].
#[derive(Debug)]
pub(crate) struct Outgoing {
    data: Vec<u8>,
    runs: Vec<Run>,
    /// Segments one GSO send may carry (1 without GSO).
    max_segments: usize,
}

/// The sockets `Outgoing` sends from, by local address.
pub(crate) trait Sockets {
    fn udp(&self, local: SocketAddr) -> Option<(&UdpSocket, &UdpSocketState)>;
}

impl Outgoing {
    pub(crate) fn new(max_segments: usize) -> Self {
        Outgoing {
            data: Vec::new(),
            runs: Vec::new(),
            max_segments: max_segments.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.runs.len()
    }

    /// Queues one datagram; it joins the previous run when it has the same
    /// socket, destination and size, and the run has room.
    pub(crate) fn push(&mut self, source: SocketAddr, destination: SocketAddr, datagram: &[u8]) {
        if datagram.is_empty() {
            return;
        }
        let start = self.data.len();
        self.data.extend_from_slice(datagram);
        if let Some(last) = self.runs.last_mut() {
            if last.source == source
                && last.destination == destination
                && last.segment == datagram.len()
                && last.segments() < self.max_segments
                && last.len + datagram.len() <= MAX_GSO_BYTES
            {
                last.len += datagram.len();
                return;
            }
        }
        self.runs.push(Run {
            source,
            destination,
            start,
            len: datagram.len(),
            segment: datagram.len(),
        });
    }

    /// Sends everything queued and empties the queue. Runs of one socket
    /// keep their order; a datagram the kernel does not take (buffer full)
    /// is dropped, as the network would.
    pub(crate) fn send(&mut self, sockets: &impl Sockets) {
        // Stable: per socket, and so per destination, the order is kept.
        self.runs.sort_by_key(|r| r.source);
        let mut rest = &self.runs[..];
        while let Some(first) = rest.first() {
            let same = rest.iter().take_while(|r| r.source == first.source).count();
            let (of_socket, after) = rest.split_at(same);
            rest = after;
            let Some((socket, state)) = sockets.udp(first.source) else {
                debug!(source = %first.source, "no socket to send from");
                continue;
            };
            let mut i = 0;
            while i < of_socket.len() {
                // Single datagrams in a row go out in sendmmsg calls.
                let singles = of_socket[i..]
                    .iter()
                    .take_while(|r| r.segments() == 1)
                    .take(MMSG_BATCH)
                    .count();
                if singles > 1 {
                    send_many(socket, &self.data, &of_socket[i..i + singles]);
                    i += singles;
                } else {
                    send_gso(socket, state, &self.data, &of_socket[i]);
                    i += 1;
                }
            }
        }
        self.runs.clear();
        self.data.clear();
    }
}

/// One run as one send (GSO when it holds several datagrams).
fn send_gso(socket: &UdpSocket, state: &UdpSocketState, data: &[u8], run: &Run) {
    let transmit = quinn_udp::Transmit {
        destination: run.destination,
        ecn: None,
        contents: &data[run.start..run.start + run.len],
        segment_size: (run.segments() > 1).then_some(run.segment),
        src_ip: None,
    };
    if let Err(e) = state.try_send(UdpSockRef::from(socket), &transmit) {
        debug!(destination = %run.destination, "send: {e}");
    }
}

/// Single datagrams to their destinations in `sendmmsg` calls. A datagram
/// refused with an error (an ICMP error pending on the socket, say) is
/// skipped; a full buffer drops the rest.
fn send_many(socket: &UdpSocket, data: &[u8], runs: &[Run]) {
    let addresses: Vec<SocketAddrAny> = runs.iter().map(|r| r.destination.into()).collect();
    let slices: Vec<[IoSlice<'_>; 1]> = runs
        .iter()
        .map(|r| [IoSlice::new(&data[r.start..r.start + r.len])])
        .collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = runs
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut messages: Vec<MMsgHdr<'_>> = addresses
        .iter()
        .zip(&slices)
        .zip(&mut controls)
        .map(|((address, slice), control)| MMsgHdr::new_with_addr(address, slice, control))
        .collect();
    let mut sent = 0;
    // Each call sends at least one datagram or skips one: bounded.
    while sent < messages.len() {
        match sendmmsg(socket, &mut messages[sent..], SendFlags::DONTWAIT) {
            Ok(n) => sent += n.max(1),
            Err(rustix::io::Errno::AGAIN) => {
                debug!(dropped = messages.len() - sent, "send buffer full");
                return;
            }
            Err(e) => {
                debug!(destination = %runs[sent].destination, "send: {e}");
                sent += 1;
            }
        }
    }
}

/// Lets datagrams sent from `socket` be fragmented (no DF bit) when they
/// are larger than the path MTU. quinn-udp asks for the DF bit on every
/// socket it drives (IP_PMTUDISC_PROBE, and IPV6_DONTFRAG); a TURN server
/// sets it on application data only when the client asked (RFC 8656 §14).
/// IPv6 has no DF bit: there the sender alone fragments, unless
/// IPV6_DONTFRAG (RFC 3542 §11.2) forbids it.
pub(crate) fn allow_fragmentation(socket: &UdpSocket, local: SocketAddr) -> io::Result<()> {
    use rustix::net::sockopt;
    if local.is_ipv4() {
        sockopt::set_ip_mtu_discover(socket, sockopt::Ipv4PathMtuDiscovery::DONT)?;
    } else {
        sockopt::set_ipv6_mtu_discover(socket, sockopt::Ipv6PathMtuDiscovery::DONT)?;
        // rustix has no setter for this one.
        nix::sys::socket::setsockopt(
            socket.as_raw_fd(),
            nix::sys::socket::sockopt::Ipv6DontFrag,
            &false,
        )?;
    }
    Ok(())
}

/// Buffers for batched receives: `BATCH_SIZE` messages per call, each a
/// datagram or a GRO train of datagrams of one size from one source.
pub(crate) struct Received {
    data: Vec<u8>,
    metas: [RecvMeta; BATCH_SIZE],
}

impl Received {
    pub(crate) fn new() -> Self {
        Received {
            data: vec![0; RECEIVE_SLOT * BATCH_SIZE],
            metas: [RecvMeta::default(); BATCH_SIZE],
        }
    }

    /// One batched receive on `socket`: how many messages arrived.
    pub(crate) fn read(&mut self, socket: &UdpSocket, state: &UdpSocketState) -> io::Result<usize> {
        let mut chunks = self.data.chunks_mut(RECEIVE_SLOT);
        let mut slices: [IoSliceMut<'_>; BATCH_SIZE] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
        state.recv(UdpSockRef::from(socket), &mut slices, &mut self.metas)
    }

    /// The datagrams of the first `count` messages, with their sources.
    pub(crate) fn datagrams(&self, count: usize) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.metas[..count]
            .iter()
            .zip(self.data.chunks(RECEIVE_SLOT))
            .flat_map(|(meta, slot)| {
                let stride = meta.stride.max(1);
                slot[..meta.len.min(slot.len())]
                    .chunks(stride)
                    .map(move |datagram| (meta.addr, datagram))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn runs_take_one_size_from_one_socket_to_one_destination() {
        let mut out = Outgoing::new(64);
        let (a, b) = (addr("127.0.0.1:50000"), addr("127.0.0.1:50001"));
        let (x, y) = (addr("127.0.0.1:7"), addr("127.0.0.1:8"));
        out.push(a, x, &[1; 1000]);
        out.push(a, x, &[1; 1000]);
        assert_eq!(out.len(), 1);
        assert_eq!(out.runs[0].segments(), 2);
        out.push(a, x, &[1; 999]);
        out.push(a, y, &[1; 999]);
        out.push(b, y, &[1; 999]);
        assert_eq!(out.len(), 4);
        // Never past one GSO send's bytes, nor the segment limit.
        let mut out = Outgoing::new(64);
        for _ in 0..100 {
            out.push(a, x, &[1; 1000]);
        }
        assert!(out.runs.iter().all(|r| r.len <= MAX_GSO_BYTES));
        assert_eq!(out.runs[0].segments(), 64);
        let mut out = Outgoing::new(1);
        out.push(a, x, &[1; 10]);
        out.push(a, x, &[1; 10]);
        assert_eq!(out.len(), 2);
    }

    struct Bound(Vec<(SocketAddr, UdpSocket, UdpSocketState)>);

    impl Sockets for Bound {
        fn udp(&self, local: SocketAddr) -> Option<(&UdpSocket, &UdpSocketState)> {
            self.0
                .iter()
                .find(|(a, _, _)| *a == local)
                .map(|(_, s, st)| (s, st))
        }
    }

    fn bind() -> (SocketAddr, UdpSocket, UdpSocketState) {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let socket = UdpSocket::from_std(socket);
        let state = UdpSocketState::new(UdpSockRef::from(&socket)).unwrap();
        (socket.local_addr().unwrap(), socket, state)
    }

    #[test]
    fn sends_reach_every_destination_in_order() {
        let sender = bind();
        let receivers: Vec<std::net::UdpSocket> = (0..3)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut out = Outgoing::new(sender.2.max_gso_segments());
        // Interleaved: singles to three destinations (one sendmmsg), then
        // a train of three to the first (GSO), then singles again.
        for round in 0..2u8 {
            for r in &receivers {
                out.push(sender.0, r.local_addr().unwrap(), &[round; 100]);
            }
        }
        for n in 2..5u8 {
            out.push(sender.0, receivers[0].local_addr().unwrap(), &[n; 200]);
        }
        out.send(&Bound(vec![sender]));
        assert_eq!(out.len(), 0);
        let mut buf = [0u8; 2048];
        for (i, r) in receivers.iter().enumerate() {
            r.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut got = Vec::new();
            let expected = if i == 0 { 5 } else { 2 };
            for _ in 0..expected {
                let n = r.recv(&mut buf).unwrap();
                got.push((n, buf[0]));
            }
            let mut want = vec![(100, 0), (100, 1)];
            if i == 0 {
                want.extend([(200, 2), (200, 3), (200, 4)]);
            }
            assert_eq!(got, want, "receiver {i}");
        }
    }

    #[test]
    fn relays_let_datagrams_fragment_unless_asked() {
        use rustix::net::sockopt::{ip_mtu_discover, Ipv4PathMtuDiscovery};
        let (local, socket, _state) = bind();
        // quinn-udp set the DF bit: what RFC 8656 §14 wants only on request.
        assert_eq!(
            ip_mtu_discover(&socket).unwrap(),
            Ipv4PathMtuDiscovery::PROBE
        );
        allow_fragmentation(&socket, local).unwrap();
        assert_eq!(
            ip_mtu_discover(&socket).unwrap(),
            Ipv4PathMtuDiscovery::DONT
        );
    }

    #[test]
    fn ipv6_relays_let_datagrams_fragment_too() {
        use nix::sys::socket::{getsockopt, sockopt::Ipv6DontFrag};
        let Ok(socket) = std::net::UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback here
        };
        let local = socket.local_addr().unwrap();
        let socket = UdpSocket::from_std(socket);
        let _state = UdpSocketState::new(UdpSockRef::from(&socket)).unwrap();
        assert!(getsockopt(socket.as_raw_fd(), Ipv6DontFrag).unwrap());
        allow_fragmentation(&socket, local).unwrap();
        assert!(!getsockopt(socket.as_raw_fd(), Ipv6DontFrag).unwrap());
    }

    #[test]
    fn received_gro_trains_split_by_stride() {
        let mut received = Received::new();
        let source: SocketAddr = "127.0.0.1:9".parse().unwrap();
        received.data[..2500].fill(1);
        received.metas[0].addr = source;
        received.metas[0].len = 2500;
        received.metas[0].stride = 1000;
        received.data[RECEIVE_SLOT..RECEIVE_SLOT + 4].fill(2);
        received.metas[1].addr = source;
        received.metas[1].len = 4;
        received.metas[1].stride = 4;
        let lengths: Vec<(usize, u8)> = received
            .datagrams(2)
            .map(|(from, d)| {
                assert_eq!(from, source);
                (d.len(), d[0])
            })
            .collect();
        assert_eq!(lengths, [(1000, 1), (1000, 1), (500, 1), (4, 2)]);
    }
}
