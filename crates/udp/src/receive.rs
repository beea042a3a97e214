//! Batched receives: one `recvmmsg` into [`BATCH_SIZE`] slots, each a
//! datagram or a GRO train of datagrams of one size from one source.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;

use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState, BATCH_SIZE};

use crate::canonical;

/// Room for one received message: a datagram, or a GRO train of them (the
/// kernel merges at most UDP_GRO_CNT_MAX = 64 segments and never past
/// 65,535 bytes, an IP datagram's limit).
pub const RECEIVE_SLOT: usize = 64 * 1024;

/// One datagram of a batched receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Where it came from (IPv4 plain, never v4-mapped).
    pub source: SocketAddr,
    /// The local IP it was sent to (`IP_PKTINFO` / `IPV6_PKTINFO`): on a
    /// wildcard socket, which of the host's addresses the peer used.
    pub destination: Option<IpAddr>,
    /// Its bytes.
    pub contents: &'a [u8],
}

/// Buffers for batched receives, reused from call to call.
pub struct Received {
    data: Vec<u8>,
    metas: [RecvMeta; BATCH_SIZE],
    slots: usize,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl Default for Received {
    fn default() -> Self {
        Self::new()
    }
}

impl Received {
    /// [`BATCH_SIZE`] slots of [`RECEIVE_SLOT`] bytes (2 MiB on Linux): the
    /// most one `recvmmsg` takes.
    pub fn new() -> Self {
        Self::with_slots(BATCH_SIZE)
    }

    /// `slots` messages per receive (1 to [`BATCH_SIZE`]): fewer slots, less
    /// memory, for a socket that rarely has a backlog.
    pub fn with_slots(slots: usize) -> Self {
        let slots = slots.clamp(1, BATCH_SIZE);
        Received {
            data: vec![0; RECEIVE_SLOT * slots],
            metas: [RecvMeta::default(); BATCH_SIZE],
            slots,
        }
    }

    /// Messages one receive takes at most.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// One batched receive on `socket` (non-blocking): how many messages
    /// arrived, `Err(WouldBlock)` when none waited. Fewer than
    /// [`Received::slots`] means the socket's queue is now empty.
    pub fn read(&mut self, socket: &impl AsFd, state: &UdpSocketState) -> io::Result<usize> {
        let mut slices: Vec<IoSliceMut<'_>> = self
            .data
            .chunks_mut(RECEIVE_SLOT)
            .map(IoSliceMut::new)
            .collect();
        state.recv(
            UdpSockRef::from(socket),
            &mut slices,
            &mut self.metas[..self.slots],
        )
    }

    /// The datagrams of the first `count` messages of the last
    /// [`Received::read`], GRO trains split by their stride.
    pub fn datagrams(&self, count: usize) -> impl Iterator<Item = Datagram<'_>> {
        self.metas[..count.min(self.slots)]
            .iter()
            .zip(self.data.chunks(RECEIVE_SLOT))
            .flat_map(|(meta, slot)| {
                let stride = meta.stride.max(1);
                let source = canonical(meta.addr);
                let destination = meta.dst_ip.map(|ip| ip.to_canonical());
                slot[..meta.len.min(slot.len())]
                    .chunks(stride)
                    .map(move |contents| Datagram {
                        source,
                        destination,
                        contents,
                    })
            })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::{bind, BindOptions, SendQueue};

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
            .map(|d| {
                assert_eq!(d.source, source);
                (d.contents.len(), d.contents[0])
            })
            .collect();
        assert_eq!(lengths, [(1000, 1), (1000, 1), (500, 1), (4, 2)]);
    }

    /// A datagram as read: source, destination IP, contents.
    type Read = (SocketAddr, Option<IpAddr>, Vec<u8>);

    /// Reads until `want` datagrams came (or two seconds passed); also how
    /// many messages (GRO trains count once) that took.
    #[allow(clippy::disallowed_methods)] // a test waits on the real clock
    fn read_all(
        socket: &std::net::UdpSocket,
        state: &UdpSocketState,
        received: &mut Received,
        want: usize,
    ) -> (Vec<Read>, usize) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let (mut got, mut messages) = (Vec::new(), 0);
        while got.len() < want && Instant::now() < deadline {
            match received.read(socket, state) {
                Ok(count) => {
                    messages += count;
                    got.extend(
                        received
                            .datagrams(count)
                            .map(|d| (d.source, d.destination, d.contents.to_vec())),
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        (got, messages)
    }

    /// A GSO train sent to a GRO socket on loopback stays one train in the
    /// kernel: one message of the receive, split again here.
    #[test]
    fn gso_trains_arrive_coalesced_and_split_again() {
        let options = BindOptions::default();
        let sender = bind("127.0.0.1:0".parse().unwrap(), options).unwrap();
        let receiver = bind("127.0.0.1:0".parse().unwrap(), options).unwrap();
        let send_state = UdpSocketState::new((&sender).into()).unwrap();
        let state = UdpSocketState::new((&receiver).into()).unwrap();
        let (from, to) = (sender.local_addr().unwrap(), receiver.local_addr().unwrap());
        let mut queue = SendQueue::new(send_state.max_gso_segments());
        let sent: Vec<Vec<u8>> = (0..5u8)
            .map(|n| vec![n; if n == 4 { 300 } else { 1000 }])
            .collect();
        for d in &sent {
            queue.push(from, to, d);
        }
        queue.try_send_from(&sender, &send_state).unwrap();
        let (got, messages) = read_all(&receiver, &state, &mut Received::new(), sent.len());
        let contents: Vec<Vec<u8>> = got.iter().map(|(_, _, c)| c.clone()).collect();
        assert_eq!(contents, sent);
        assert!(got.iter().all(|(source, ..)| *source == from));
        if send_state.max_gso_segments() > 1 && state.gro_segments() > 1 {
            assert_eq!(messages, 1, "one GRO train");
        }
    }

    /// A wildcard socket learns the local address each datagram came to.
    #[test]
    fn pktinfo_gives_the_destination_address() {
        let receiver = bind("0.0.0.0:0".parse().unwrap(), BindOptions::default()).unwrap();
        let state = UdpSocketState::new((&receiver).into()).unwrap();
        let port = receiver.local_addr().unwrap().port();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"to loopback", ("127.0.0.1", port)).unwrap();
        // Another loopback address, also ours: 127.0.0.0/8 is all local.
        sender.send_to(b"to .2", ("127.0.0.2", port)).unwrap();
        let (got, _) = read_all(&receiver, &state, &mut Received::with_slots(1), 2);
        let source = sender.local_addr().unwrap();
        assert_eq!(
            got,
            [
                (source, Some([127, 0, 0, 1].into()), b"to loopback".to_vec()),
                (source, Some([127, 0, 0, 2].into()), b"to .2".to_vec()),
            ]
        );
    }

    /// On a dual-stack socket IPv4 peers and destinations read as plain
    /// IPv4.
    #[test]
    fn dual_stack_sources_and_destinations_are_canonical() {
        let options = BindOptions::default().with_ipv6_only(false);
        let Ok(receiver) = bind("[::]:0".parse().unwrap(), options) else {
            return; // no IPv6 here
        };
        let state = UdpSocketState::new((&receiver).into()).unwrap();
        let port = receiver.local_addr().unwrap().port();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"v4", ("127.0.0.1", port)).unwrap();
        let (got, _) = read_all(&receiver, &state, &mut Received::with_slots(4), 1);
        assert_eq!(
            got,
            [(
                sender.local_addr().unwrap(),
                Some([127, 0, 0, 1].into()),
                b"v4".to_vec()
            )]
        );
    }
}
