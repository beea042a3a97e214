//! A plain UDP endpoint node for tests: send datagrams, read what came.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;

use crate::{Datagram, Node};

/// A datagram a [`Mailbox`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The virtual time it arrived.
    pub at: Instant,
    /// The datagram, with its source as the receiver sees it (after NATs).
    pub datagram: Datagram,
}

/// A node that sends what it is told to, now or at a given time, and keeps
/// everything its host receives (whatever the port).
#[derive(Debug, Clone, Default)]
pub struct Mailbox {
    port: u16,
    outbox: VecDeque<Datagram>,
    /// Sends at a later time, in (time, insertion) order.
    scheduled: BTreeMap<(Instant, u64), Datagram>,
    next_seq: u64,
    received: Vec<Received>,
}

impl Mailbox {
    /// A mailbox sending from `port` on its host's address.
    pub fn bind(port: u16) -> Self {
        Mailbox {
            port,
            ..Mailbox::default()
        }
    }

    /// The port it sends from.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends `contents` to `destination` from the bound port, at the next
    /// step.
    pub fn send_to(&mut self, destination: SocketAddr, contents: impl Into<Bytes>) {
        let source = self.unspecified_source(destination);
        self.send(Datagram {
            source,
            destination,
            contents: contents.into(),
        });
    }

    /// Sends a datagram as given (its source may name any of the host's
    /// addresses and any port).
    pub fn send(&mut self, datagram: Datagram) {
        self.outbox.push_back(datagram);
    }

    /// Sends `contents` to `destination` at virtual time `at`.
    pub fn send_at(&mut self, at: Instant, destination: SocketAddr, contents: impl Into<Bytes>) {
        let source = self.unspecified_source(destination);
        self.scheduled.insert(
            (at, self.next_seq),
            Datagram {
                source,
                destination,
                contents: contents.into(),
            },
        );
        self.next_seq += 1;
    }

    /// Everything received so far, oldest first.
    pub fn received(&self) -> &[Received] {
        &self.received
    }

    /// Takes everything received so far.
    pub fn take_received(&mut self) -> Vec<Received> {
        std::mem::take(&mut self.received)
    }

    fn unspecified_source(&self, destination: SocketAddr) -> SocketAddr {
        let ip = match destination {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        SocketAddr::new(ip, self.port)
    }
}

impl Node for Mailbox {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        self.received.push(Received { at: now, datagram });
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            self.outbox.push_back(entry.remove());
        }
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.scheduled.keys().next().map(|&(at, _)| at)
    }
}
