//! One allocation's state (RFC 8656 §2.2): relayed address, lifetime,
//! permissions, channels, and its share of bandwidth.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use realtimer_stun::TransactionId;

use realtimer_stun::Transport;

/// The 5-tuple of RFC 8656 §2.2: client address, the server address it
/// wrote to, and the transport between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FiveTuple {
    pub(crate) client: SocketAddr,
    pub(crate) listener: SocketAddr,
    pub(crate) transport: Transport,
}

/// A channel binding (RFC 8656 §12).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChannelBinding {
    pub(crate) peer: SocketAddr,
    pub(crate) expires: Instant,
}

#[derive(Debug)]
pub(crate) struct Allocation {
    pub(crate) relay: SocketAddr,
    /// A TCP allocation (RFC 6062): peers are reached over TCP connections
    /// rather than datagrams from `relay`.
    pub(crate) tcp: bool,
    /// Its relay sets the DF bit (DONT-FRAGMENT in the Allocate).
    pub(crate) dont_fragment: bool,
    /// The peer connections of a TCP allocation, by CONNECTION-ID.
    pub(crate) connections: HashSet<u32>,
    pub(crate) username: String,
    pub(crate) account: String,
    pub(crate) expires: Instant,
    /// RFC 8656 §9: by IP address only, the port does not count.
    pub(crate) permissions: HashMap<IpAddr, Instant>,
    pub(crate) channels: HashMap<u16, ChannelBinding>,
    pub(crate) peer_channels: HashMap<SocketAddr, u16>,
    pub(crate) bucket: Option<TokenBucket>,
    /// The Allocate that made it, so a retransmission gets the same answer
    /// (RFC 8656 §7.2).
    pub(crate) allocate_transaction: TransactionId,
    pub(crate) allocate_response: Vec<u8>,
}

impl Allocation {
    pub(crate) fn is_live(&self, now: Instant) -> bool {
        now < self.expires
    }

    pub(crate) fn permits(&self, peer: IpAddr, now: Instant) -> bool {
        self.permissions.get(&peer).is_some_and(|&e| now < e)
    }

    /// The channel bound to `peer`, if the binding is live.
    pub(crate) fn channel_for(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        let ch = *self.peer_channels.get(&peer)?;
        self.channels
            .get(&ch)
            .filter(|b| now < b.expires)
            .map(|_| ch)
    }

    /// The peer of a live channel.
    pub(crate) fn peer_for(&self, channel: u16, now: Instant) -> Option<SocketAddr> {
        self.channels
            .get(&channel)
            .filter(|b| now < b.expires)
            .map(|b| b.peer)
    }

    /// Drops expired permissions and channels.
    pub(crate) fn sweep(&mut self, now: Instant) {
        self.permissions.retain(|_, e| now < *e);
        let peer_channels = &mut self.peer_channels;
        self.channels.retain(|_, b| {
            let live = now < b.expires;
            if !live {
                peer_channels.remove(&b.peer);
            }
            live
        });
    }

    /// Takes `bytes` from the bucket; false when over the cap.
    pub(crate) fn take_bandwidth(&mut self, now: Instant, bytes: usize) -> bool {
        match &mut self.bucket {
            Some(bucket) => bucket.take(now, bytes as u64),
            None => true,
        }
    }
}

/// A token bucket in bytes that refills at `rate` per second and holds one
/// second's worth.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: u64,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u64, now: Instant) -> Self {
        TokenBucket {
            rate,
            tokens: rate,
            last: now,
        }
    }

    fn take(&mut self, now: Instant, bytes: u64) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        if elapsed >= Duration::from_micros(100) {
            let refill = (elapsed.as_micros().min(u128::from(u64::MAX)) as u64)
                .saturating_mul(self.rate)
                / 1_000_000;
            self.tokens = self.tokens.saturating_add(refill).min(self.rate);
            self.last = now;
        }
        if self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }
}
