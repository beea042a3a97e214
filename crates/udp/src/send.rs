//! Batched sends: a queue of datagrams grouped into runs, sent with GSO
//! (a run of same-size datagrams from one socket to one destination in one
//! system call) and `sendmmsg` (single datagrams to many destinations in
//! one system call).

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use quinn_udp::{UdpSockRef, UdpSocketState};
use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
use tracing::debug;

/// The most bytes one GSO send carries (one UDP datagram's payload on the
/// wire is at most 65,507 bytes; the kernel refuses a larger train).
pub const MAX_GSO_BYTES: usize = 64_000;
/// Datagrams per `sendmmsg` call.
const MMSG_BATCH: usize = 64;

/// A run of datagrams from one socket to one destination, stored back to
/// back in [`SendQueue`]'s buffer: all `segment` bytes long but the last,
/// which may be shorter (and then ends the run, as GSO requires).
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
        self.len.div_ceil(self.segment)
    }

    /// A shorter datagram has not ended it yet.
    fn is_open(&self) -> bool {
        self.len % self.segment == 0
    }
}

/// The sockets a [`SendQueue`] sends from, by local address.
pub trait Sockets {
    /// The socket bound to `local` and its quinn-udp state, if there is one.
    fn udp(&self, local: SocketAddr) -> Option<(BorrowedFd<'_>, &UdpSocketState)>;
}

/// Datagrams queued during a round of an event loop, sent together at its
/// end. A datagram joins the previous run when it has the same socket and
/// destination and is no longer than the run's first (GSO's rule), while
/// the run has room; otherwise it starts a run of its own.
#[derive(Debug)]
pub struct SendQueue {
    data: Vec<u8>,
    runs: Vec<Run>,
    /// Segments one GSO send may carry (1 without GSO).
    max_segments: usize,
    /// Runs already sent by [`SendQueue::try_send_from`].
    sent: usize,
}

impl SendQueue {
    /// An empty queue whose runs hold up to `max_segments` datagrams (the
    /// sockets' [`UdpSocketState::max_gso_segments`]; 1 turns GSO off).
    pub fn new(max_segments: usize) -> Self {
        SendQueue {
            data: Vec::new(),
            runs: Vec::new(),
            max_segments: max_segments.max(1),
            sent: 0,
        }
    }

    /// Runs queued (each one system call's worth at most).
    pub fn len(&self) -> usize {
        self.runs.len() - self.sent
    }

    /// Nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `datagram` from the socket bound to `source` to
    /// `destination`. An empty datagram is not sent (GSO cannot carry it).
    pub fn push(&mut self, source: SocketAddr, destination: SocketAddr, datagram: &[u8]) {
        if datagram.is_empty() {
            return;
        }
        let start = self.data.len();
        self.data.extend_from_slice(datagram);
        // Runs already sent are cleared once all are: the last one is unsent.
        if let Some(last) = self.runs.last_mut() {
            if last.source == source
                && last.destination == destination
                && last.is_open()
                && datagram.len() <= last.segment
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

    /// Sends everything queued from the sockets `sockets` has, and empties
    /// the queue. Each socket's runs keep their order; what a full send
    /// buffer does not take is dropped, as the network would (a TURN relay,
    /// a load generator, an SFU). Returns how many datagrams were dropped
    /// so (or had no socket).
    pub fn send(&mut self, sockets: &impl Sockets) -> usize {
        let mut dropped = 0;
        // Stable: per socket, and so per destination, the order is kept.
        self.runs[self.sent..].sort_by_key(|r| r.source);
        let mut rest = &self.runs[self.sent..];
        while let Some(first) = rest.first() {
            let same = rest.iter().take_while(|r| r.source == first.source).count();
            let (of_socket, after) = rest.split_at(same);
            rest = after;
            let Some((socket, state)) = sockets.udp(first.source) else {
                debug!(source = %first.source, "no socket to send from");
                dropped += of_socket.iter().map(Run::segments).sum::<usize>();
                continue;
            };
            let done = send_runs(socket, state, &self.data, of_socket);
            if done < of_socket.len() {
                debug!(source = %first.source, dropped = of_socket.len() - done, "send buffer full");
                dropped += of_socket[done..].iter().map(Run::segments).sum::<usize>();
            }
        }
        self.clear();
        dropped
    }

    /// Sends what is queued from one socket (every run's source is taken
    /// to be this socket). `Err(WouldBlock)` when its send buffer is full:
    /// what was not sent stays queued, to send when the socket is writable
    /// again. Empties the queue once everything is sent.
    pub fn try_send_from(&mut self, socket: &impl AsFd, state: &UdpSocketState) -> io::Result<()> {
        let runs = &self.runs[self.sent..];
        let done = send_runs(socket.as_fd(), state, &self.data, runs);
        self.sent += done;
        if self.sent < self.runs.len() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.clear();
        Ok(())
    }

    fn clear(&mut self) {
        self.runs.clear();
        self.data.clear();
        self.sent = 0;
    }
}

/// Sends one socket's runs in order: single datagrams in a row in
/// `sendmmsg` calls, the others as GSO sends. Returns how many runs are
/// done (sent, or refused with an error that concerns that datagram); less
/// than all when the send buffer filled up.
fn send_runs(socket: BorrowedFd<'_>, state: &UdpSocketState, data: &[u8], runs: &[Run]) -> usize {
    let mut i = 0;
    while i < runs.len() {
        let singles = runs[i..]
            .iter()
            .take_while(|r| r.segments() == 1)
            .take(MMSG_BATCH)
            .count();
        let done = if singles > 1 {
            send_many(socket, data, &runs[i..i + singles])
        } else {
            usize::from(send_run(socket, state, data, &runs[i]).is_ok())
        };
        i += done;
        if done == 0 || (singles > 1 && done < singles) {
            // Full: the caller drops or keeps the rest.
            return i;
        }
    }
    i
}

/// One run as one send (GSO when it holds several datagrams). A refused
/// GSO send (some drivers cannot segment; quinn-udp then stops using GSO)
/// is sent again datagram by datagram. `Err` only for a full send buffer.
fn send_run(
    socket: BorrowedFd<'_>,
    state: &UdpSocketState,
    data: &[u8],
    run: &Run,
) -> io::Result<()> {
    let contents = &data[run.start..run.start + run.len];
    let transmit = quinn_udp::Transmit {
        destination: run.destination,
        ecn: None,
        contents,
        segment_size: (run.segments() > 1).then_some(run.segment),
        src_ip: None,
    };
    match state.try_send(UdpSockRef::from(&socket), &transmit) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
        Err(e) => {
            debug!(destination = %run.destination, segments = run.segments(), "send: {e}");
            if run.segments() > 1 {
                for datagram in contents.chunks(run.segment) {
                    let single = quinn_udp::Transmit {
                        contents: datagram,
                        segment_size: None,
                        ..transmit.clone()
                    };
                    if let Err(e) = state.try_send(UdpSockRef::from(&socket), &single) {
                        debug!(destination = %run.destination, "send: {e}");
                    }
                }
            }
            Ok(())
        }
    }
}

/// Single datagrams to their destinations in `sendmmsg` calls. A datagram
/// refused with an error (an ICMP error pending on the socket, say) is
/// skipped. Returns how many are done; fewer than all when the send buffer
/// filled up.
fn send_many(socket: BorrowedFd<'_>, data: &[u8], runs: &[Run]) -> usize {
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
            Err(rustix::io::Errno::AGAIN) => return sent,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                debug!(destination = %runs[sent].destination, "send: {e}");
                sent += 1;
            }
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bind, BindOptions};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn runs_take_one_size_from_one_socket_to_one_destination() {
        let mut out = SendQueue::new(64);
        let (a, b) = (addr("127.0.0.1:50000"), addr("127.0.0.1:50001"));
        let (x, y) = (addr("127.0.0.1:7"), addr("127.0.0.1:8"));
        out.push(a, x, &[1; 1000]);
        out.push(a, x, &[1; 1000]);
        assert_eq!(out.len(), 1);
        assert_eq!(out.runs[0].segments(), 2);
        // A shorter one ends the run (GSO's last segment may be shorter)...
        out.push(a, x, &[1; 999]);
        assert_eq!(out.len(), 1);
        assert_eq!(out.runs[0].segments(), 3);
        // ...so the next starts another, as do a longer one, another
        // destination and another socket.
        out.push(a, x, &[1; 999]);
        out.push(a, x, &[1; 1200]);
        out.push(a, y, &[1; 1200]);
        out.push(b, y, &[1; 1200]);
        assert_eq!(out.len(), 5);
        // Never past one GSO send's bytes, nor the segment limit.
        let mut out = SendQueue::new(64);
        for _ in 0..100 {
            out.push(a, x, &[1; 1000]);
        }
        assert!(out.runs.iter().all(|r| r.len <= MAX_GSO_BYTES));
        assert_eq!(out.runs[0].segments(), 64);
        let mut out = SendQueue::new(1);
        out.push(a, x, &[1; 10]);
        out.push(a, x, &[1; 10]);
        out.push(a, x, &[]);
        assert_eq!(out.len(), 2);
    }

    struct Bound(Vec<(SocketAddr, std::net::UdpSocket, UdpSocketState)>);

    impl Sockets for Bound {
        fn udp(&self, local: SocketAddr) -> Option<(BorrowedFd<'_>, &UdpSocketState)> {
            self.0
                .iter()
                .find(|(a, _, _)| *a == local)
                .map(|(_, s, st)| (s.as_fd(), st))
        }
    }

    fn bound() -> (SocketAddr, std::net::UdpSocket, UdpSocketState) {
        let socket = bind(addr("127.0.0.1:0"), BindOptions::default()).unwrap();
        let state = UdpSocketState::new((&socket).into()).unwrap();
        (socket.local_addr().unwrap(), socket, state)
    }

    /// Plain receivers (no GRO): a GSO train arrives split into its
    /// datagrams, singles to several destinations arrive each at theirs,
    /// in the order queued.
    #[test]
    fn sends_reach_every_destination_in_order_and_gso_trains_split() {
        let sender = bound();
        let receivers: Vec<std::net::UdpSocket> = (0..3)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut out = SendQueue::new(sender.2.max_gso_segments());
        // Interleaved: singles to three destinations (one sendmmsg), then
        // a train of three to the first (GSO) with a short last one.
        for round in 0..2u8 {
            for r in &receivers {
                out.push(sender.0, r.local_addr().unwrap(), &[round; 100]);
            }
        }
        for n in 2..5u8 {
            out.push(sender.0, receivers[0].local_addr().unwrap(), &[n; 200]);
        }
        out.push(sender.0, receivers[0].local_addr().unwrap(), &[5; 50]);
        out.send(&Bound(vec![sender]));
        assert!(out.is_empty());
        let mut buf = [0u8; 2048];
        for (i, r) in receivers.iter().enumerate() {
            r.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut want = vec![(100, 0), (100, 1)];
            if i == 0 {
                want.extend([(200, 2), (200, 3), (200, 4), (50, 5)]);
            }
            let got: Vec<(usize, u8)> = want
                .iter()
                .map(|_| {
                    let n = r.recv(&mut buf).unwrap();
                    (n, buf[0])
                })
                .collect();
            assert_eq!(got, want, "receiver {i}");
        }
    }

    #[test]
    fn one_socket_sends_everything_queued() {
        let (local, socket, state) = bound();
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let to = receiver.local_addr().unwrap();
        let mut out = SendQueue::new(state.max_gso_segments());
        for n in 0..10u8 {
            out.push(local, to, &[n; 300]);
        }
        out.try_send_from(&socket, &state).unwrap();
        assert!(out.is_empty());
        let mut buf = [0u8; 2048];
        for n in 0..10u8 {
            assert_eq!(receiver.recv(&mut buf).unwrap(), 300);
            assert_eq!(buf[0], n);
        }
    }
}
