//! Counters and the optional event trace.

use std::net::SocketAddr;
use std::time::Instant;

/// Why the network dropped a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropCause {
    /// The link's loss model lost it.
    Loss,
    /// Bigger than the link's MTU.
    Mtu,
    /// The link's bandwidth queue was full (drop-tail).
    Queue,
    /// A firewall drops all UDP of the sending or receiving host or NAT.
    Firewall,
    /// Sent to a NAT's public address and port that has no live mapping
    /// (never made, or timed out).
    NatNoMapping,
    /// A mapping exists but the NAT's filtering refuses the sender.
    NatFiltering,
    /// Sent from behind a NAT to its own public address, which it does not
    /// hairpin.
    Hairpinning,
    /// The NAT has no free port for a new mapping, or no public address of
    /// the destination's family.
    NatExhausted,
    /// No host or NAT has the destination address (where the sender is), or
    /// the source and destination families differ.
    NoRoute,
    /// The destination host has no node attached.
    NoNode,
    /// The node's source address is not one of its host's.
    BadSource,
}

/// Datagrams dropped, by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Drops {
    /// See [`DropCause::Loss`].
    pub loss: u64,
    /// See [`DropCause::Mtu`].
    pub mtu: u64,
    /// See [`DropCause::Queue`].
    pub queue: u64,
    /// See [`DropCause::Firewall`].
    pub firewall: u64,
    /// See [`DropCause::NatNoMapping`].
    pub nat_no_mapping: u64,
    /// See [`DropCause::NatFiltering`].
    pub nat_filtering: u64,
    /// See [`DropCause::Hairpinning`].
    pub hairpinning: u64,
    /// See [`DropCause::NatExhausted`].
    pub nat_exhausted: u64,
    /// See [`DropCause::NoRoute`].
    pub no_route: u64,
    /// See [`DropCause::NoNode`].
    pub no_node: u64,
    /// See [`DropCause::BadSource`].
    pub bad_source: u64,
}

impl Drops {
    /// The count for one cause.
    pub fn get(&self, cause: DropCause) -> u64 {
        *self.slot(cause)
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.loss
            + self.mtu
            + self.queue
            + self.firewall
            + self.nat_no_mapping
            + self.nat_filtering
            + self.hairpinning
            + self.nat_exhausted
            + self.no_route
            + self.no_node
            + self.bad_source
    }

    pub(crate) fn count(&mut self, cause: DropCause) {
        *self.slot_mut(cause) += 1;
    }

    fn slot(&self, cause: DropCause) -> &u64 {
        match cause {
            DropCause::Loss => &self.loss,
            DropCause::Mtu => &self.mtu,
            DropCause::Queue => &self.queue,
            DropCause::Firewall => &self.firewall,
            DropCause::NatNoMapping => &self.nat_no_mapping,
            DropCause::NatFiltering => &self.nat_filtering,
            DropCause::Hairpinning => &self.hairpinning,
            DropCause::NatExhausted => &self.nat_exhausted,
            DropCause::NoRoute => &self.no_route,
            DropCause::NoNode => &self.no_node,
            DropCause::BadSource => &self.bad_source,
        }
    }

    fn slot_mut(&mut self, cause: DropCause) -> &mut u64 {
        match cause {
            DropCause::Loss => &mut self.loss,
            DropCause::Mtu => &mut self.mtu,
            DropCause::Queue => &mut self.queue,
            DropCause::Firewall => &mut self.firewall,
            DropCause::NatNoMapping => &mut self.nat_no_mapping,
            DropCause::NatFiltering => &mut self.nat_filtering,
            DropCause::Hairpinning => &mut self.hairpinning,
            DropCause::NatExhausted => &mut self.nat_exhausted,
            DropCause::NoRoute => &mut self.no_route,
            DropCause::NoNode => &mut self.no_node,
            DropCause::BadSource => &mut self.bad_source,
        }
    }
}

/// What the network did with datagrams so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct NetStats {
    /// Datagrams nodes sent.
    pub sent: u64,
    /// Copies links added ([`crate::LinkConfig::duplicate_probability`]).
    pub duplicated: u64,
    /// Datagrams handed to a node (duplicates count again).
    pub delivered: u64,
    /// Datagrams dropped, by cause.
    pub dropped: Drops,
    /// Events processed by [`crate::Network::step`]: arrivals at a hop and
    /// node timeouts.
    pub steps: u64,
}

/// One thing that happened to a datagram, recorded when tracing is on
/// ([`crate::Network::record_trace`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceEntry {
    /// When.
    pub at: Instant,
    /// What.
    pub event: TraceEvent,
    /// The datagram's source as seen at that point (after NAT translation
    /// for deliveries).
    pub source: SocketAddr,
    /// The datagram's destination at that point.
    pub destination: SocketAddr,
    /// The UDP payload length.
    pub len: usize,
}

/// The kind of a [`TraceEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TraceEvent {
    /// A node sent it.
    Sent,
    /// A node received it.
    Delivered,
    /// The network dropped it.
    Dropped(DropCause),
}
