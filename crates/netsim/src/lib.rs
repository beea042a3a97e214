//! A deterministic simulated network on virtual time, for testing sans-IO
//! protocol cores (ICE agents, STUN/TURN servers, DTLS, SCTP) together.
//!
//! - A [`Network`] holds hosts, NATs and the links between them. Each host
//!   runs one [`Node`]: a sans-IO core that takes datagrams and timeouts and
//!   gives back datagrams and its next timeout.
//! - Time is virtual: [`Network::step`] jumps to the next event (a datagram
//!   arriving, or the soonest node timeout) and never sleeps or reads a clock.
//! - Links ([`LinkConfig`]) model delay, jitter, independent and
//!   Gilbert-Elliott burst loss, reordering, duplication, MTU and bandwidth
//!   with a bounded drop-tail queue. NATs ([`NatConfig`]) have the RFC 4787
//!   mapping and filtering behaviours, mapping timeouts, hairpinning and port
//!   allocation. A firewall can drop all UDP of a host or NAT.
//! - Every random choice comes from one ChaCha8 generator seeded by
//!   [`Network::new`]: a run is replayed exactly from its seed. When a test
//!   panics while a `Network` is alive, the seed is printed;
//!   [`seed_from_env_or`] lets `NETSIM_SEED=…` replay it.
//!
//! Two hosts on the internet, 20 ms apart each way:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use realtimer_netsim::{LinkConfig, Mailbox, Network};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now(); // the origin of virtual time
//! let mut net = Network::new(7, start);
//! let alice = net.add_host(&["192.0.2.1".parse().unwrap()], None);
//! let bob = net.add_host(&["198.51.100.1".parse().unwrap()], None);
//! net.set_uplink(alice, LinkConfig::default().delay(Duration::from_millis(15)));
//! net.set_uplink(bob, LinkConfig::default().delay(Duration::from_millis(5)));
//! let a = net.attach(alice, Mailbox::bind(5000));
//! let b = net.attach(bob, Mailbox::bind(6000));
//!
//! net.node_mut::<Mailbox>(a).send_to("198.51.100.1:6000".parse().unwrap(), &b"hello"[..]);
//! net.run_for(Duration::from_secs(1));
//!
//! let got = net.node::<Mailbox>(b).received();
//! assert_eq!(got.len(), 1);
//! assert_eq!(got[0].at, start + Duration::from_millis(20)); // 15 ms up + 5 ms down
//! assert_eq!(got[0].datagram.source, "192.0.2.1:5000".parse().unwrap());
//! assert_eq!(&got[0].datagram.contents[..], b"hello");
//! assert_eq!(net.stats().delivered, 1);
//! ```

// Library code never unwraps: misuse gets a panic with a message instead.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod link;
mod mailbox;
mod nat;
mod network;
mod seed;
mod stats;

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

pub use link::{Direction, GilbertElliott, LinkConfig, Loss, DEFAULT_QUEUE_BYTES};
pub use mailbox::{Mailbox, Received};
pub use nat::{NatBehavior, NatConfig, PortAllocation};
pub use network::{Device, Network};
pub use seed::{seed_from_env_or, SEED_ENV};
pub use stats::{DropCause, Drops, NetStats, TraceEntry, TraceEvent};

/// A UDP datagram as a node sends or receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Where it comes from. On send, an unspecified IP (`0.0.0.0` or `::`)
    /// stands for the host's first address of the destination's family.
    pub source: SocketAddr,
    /// Where it goes.
    pub destination: SocketAddr,
    /// The UDP payload.
    pub contents: Bytes,
}

/// A sans-IO core attached to a host.
///
/// The network follows the drain rule for the node: after every
/// `handle_datagram` and `handle_timeout` (and after [`Network::attach`] and
/// [`Network::node_mut`]) it calls `poll_transmit` until it returns `None`.
pub trait Node: std::any::Any {
    /// A datagram arrived for this host.
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram);
    /// The time returned by [`Node::poll_timeout`] has come.
    fn handle_timeout(&mut self, now: Instant);
    /// The next datagram to send. Its source must be one of the host's
    /// addresses, or unspecified (then the host's first address of the
    /// destination's family is used).
    fn poll_transmit(&mut self, now: Instant) -> Option<Datagram>;
    /// When this node wants [`Node::handle_timeout`] called, if ever. A time
    /// in the past fires at the current virtual time.
    fn poll_timeout(&self) -> Option<Instant>;
}

/// A host: a machine with one or more IP addresses, on the internet or
/// behind a NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub(crate) usize);

/// A NAT between a private network and the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NatId(pub(crate) usize);

/// A node attached to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) usize);
