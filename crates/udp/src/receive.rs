//! Batched receives: one `recvmmsg` into [`BATCH_SIZE`] slots, each a
//! datagram or a GRO train of datagrams of one size from one source, with
//! the time the kernel received it (`SO_TIMESTAMPNS`).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// When the kernel received it, on the [`Instant`] clock: the socket's
    /// `SO_TIMESTAMPNS` stamp (quinn-udp turns it on for every socket on
    /// Linux) moved from the wall clock to the monotonic one at the read.
    /// A receiver's transport-wide feedback must say when a packet
    /// arrived, not when a busy driver got to it: reads that bunch
    /// datagrams up would otherwise look like a link faster than it is.
    /// Without a stamp (another OS), the time of the read.
    pub arrival: Instant,
}

/// Longest time a stamp may lie before its read: older ones (the wall
/// clock was set back, or a stall longer than any queue holds) count as
/// received at the read.
const MAX_STAMP_AGE: Duration = Duration::from_secs(2);

/// The two clocks read together just after a receive, to move the
/// kernel's wall-clock stamps onto the [`Instant`] clock.
#[derive(Debug, Clone, Copy)]
struct ReadClocks {
    instant: Instant,
    wall: Duration,
}

impl ReadClocks {
    #[allow(clippy::disallowed_methods)] // the IO layer owns the clock: this is a read's time
    fn now() -> Self {
        ReadClocks {
            instant: Instant::now(),
            wall: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    /// `stamp` (since the Unix epoch) on the `Instant` clock: as long
    /// before the read as the wall clock says, never after it.
    fn arrival(&self, stamp: Option<Duration>) -> Instant {
        let age = stamp.map_or(Duration::ZERO, |s| self.wall.saturating_sub(s));
        if age > MAX_STAMP_AGE {
            return self.instant;
        }
        self.instant.checked_sub(age).unwrap_or(self.instant)
    }
}

/// Buffers for batched receives, reused from call to call.
pub struct Received {
    data: Vec<u8>,
    metas: [RecvMeta; BATCH_SIZE],
    slots: usize,
    /// The clocks at the last read.
    read_at: ReadClocks,
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
            read_at: ReadClocks::now(),
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
        let count = state.recv(
            UdpSockRef::from(socket),
            &mut slices,
            &mut self.metas[..self.slots],
        )?;
        self.read_at = ReadClocks::now();
        Ok(count)
    }

    /// When the last [`Received::read`] that got something returned, on
    /// the [`Instant`] clock: no datagram of it arrived later.
    pub fn read_at(&self) -> Instant {
        self.read_at.instant
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
                // A GRO train carries one stamp: its first segment's.
                let arrival = self.read_at.arrival(meta.timestamp);
                slot[..meta.len.min(slot.len())]
                    .chunks(stride)
                    .map(move |contents| Datagram {
                        source,
                        destination,
                        contents,
                        arrival,
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

    /// The kernel's stamp, not the read, is the arrival: a datagram read
    /// 150 ms after it came reports when it came (Linux; elsewhere there is
    /// no stamp and the read's time stands).
    #[test]
    #[allow(clippy::disallowed_methods)] // a test waits on the real clock
    fn a_delayed_read_reports_the_kernel_arrival() {
        let receiver = bind("127.0.0.1:0".parse().unwrap(), BindOptions::default()).unwrap();
        let state = UdpSocketState::new((&receiver).into()).unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // The first socket asking for stamps turns the kernel's stamping on
        // through a work queue; until it runs, datagrams are stamped when
        // read. (`keep_gro_enabled`'s socket keeps it on in a driver.)
        std::thread::sleep(Duration::from_millis(50));
        let sent_at = Instant::now();
        sender
            .send_to(b"early", receiver.local_addr().unwrap())
            .unwrap();
        let sent = Instant::now();
        std::thread::sleep(Duration::from_millis(150));
        let mut received = Received::with_slots(1);
        let count = received.read(&receiver, &state).unwrap();
        let arrivals: Vec<Instant> = received.datagrams(count).map(|d| d.arrival).collect();
        assert_eq!(arrivals.len(), 1);
        assert!(received.read_at() >= sent_at + Duration::from_millis(150));
        if cfg!(target_os = "linux") {
            // Loopback delivers within the send call; allow the clocks'
            // disagreement (they are read one after the other).
            let slack = Duration::from_millis(20);
            assert!(
                arrivals[0] + slack >= sent_at && arrivals[0] <= sent + slack,
                "arrival {:?} after the send, read {:?} after it",
                arrivals[0].saturating_duration_since(sent_at),
                received.read_at() - sent_at
            );
        }
    }

    #[test]
    fn stamps_map_onto_the_instant_clock_before_the_read() {
        let clocks = ReadClocks::now();
        let ms = Duration::from_millis;
        assert_eq!(clocks.arrival(None), clocks.instant);
        assert_eq!(
            clocks.arrival(Some(clocks.wall - ms(30))),
            clocks.instant - ms(30)
        );
        // A stamp after the read (the wall clock stepped): the read.
        assert_eq!(clocks.arrival(Some(clocks.wall + ms(30))), clocks.instant);
        // One older than any queue holds: the read.
        assert_eq!(
            clocks.arrival(Some(clocks.wall - ms(60_000))),
            clocks.instant
        );
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
