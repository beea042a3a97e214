//! TURN servers reached over TCP or TLS (RFC 8656 §3.1): the allocation
//! lives on a connection the driver opens when asked; what goes to the
//! server leaves through [`IceAgent::poll_turn_stream`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::{AllocationState, Relays, TurnRequestKind};
use realtimer_net::Transmit;

use crate::agent::IceAgent;

/// Bytes for the TCP or TLS connection to a TURN server: one whole STUN
/// or (padded) ChannelData message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct TurnStreamTransmit {
    /// Index of the server in [`crate::IceConfig::turn_servers`] (the one
    /// [`crate::IceEvent::OpenTurnConnection`] named).
    pub server: usize,
    /// The message.
    pub contents: Bytes,
}

impl Relays {
    /// The server index of the TCP or TLS connection a transmit from
    /// `source` to `destination` belongs on, if it does.
    fn stream_of(&self, source: SocketAddr, destination: SocketAddr) -> Option<usize> {
        self.allocations
            .iter()
            .find(|a| {
                a.transport.is_stream()
                    && a.state != AllocationState::Connecting
                    && a.base == source
                    && a.server == destination
            })
            .map(|a| a.server_index)
    }
}

impl IceAgent {
    /// The connection asked for by [`crate::IceEvent::OpenTurnConnection`] is up,
    /// from local address `local`: the Allocate goes out on it. The
    /// driver must not give a `local` equal to a UDP base it gathered on
    /// (a TCP port can equal the UDP socket's: connect again then).
    pub fn turn_connected(&mut self, now: Instant, server: usize, local: SocketAddr) {
        let Some(i) = self
            .relays
            .allocations
            .iter()
            .position(|a| a.server_index == server && a.state == AllocationState::Connecting)
        else {
            return;
        };
        debug!(server = %self.relays.allocations[i].server, %local, "TURN connection up");
        self.relays.allocations[i].base = local;
        self.relays.allocations[i].state = AllocationState::Requesting;
        self.send_turn_request(now, i, TurnRequestKind::Allocate, 0);
    }

    /// The connection to TURN server `server` failed or closed: its
    /// allocation is gone (RFC 8656 §3.1), and with it the relayed
    /// candidate.
    pub fn turn_disconnected(&mut self, _now: Instant, server: usize) {
        for i in 0..self.relays.allocations.len() {
            let a = &mut self.relays.allocations[i];
            if a.server_index != server
                || !a.transport.is_stream()
                || a.state == AllocationState::Failed
            {
                continue;
            }
            debug!(server = %a.server, "TURN connection lost: allocation gone");
            a.state = AllocationState::Failed;
            self.relays.transactions.cancel_where(|c| c.allocation == i);
        }
        self.maybe_finish_gathering();
        self.update_state();
    }

    /// The next message for a TCP or TLS connection to a TURN server.
    pub fn poll_turn_stream(&mut self) -> Option<TurnStreamTransmit> {
        let next = self.relays.stream_out.pop_front();
        if next.is_none() && self.relays.stream_out.capacity() > 0 {
            self.relays.stream_out = VecDeque::new();
        }
        next
    }

    /// Moves a transmit bound for a TURN server's TCP or TLS connection to
    /// [`IceAgent::poll_turn_stream`]'s queue; others pass.
    pub(crate) fn divert_to_stream(&mut self, transmit: Transmit) -> Option<Transmit> {
        match self.relays.stream_of(transmit.source, transmit.destination) {
            None => Some(transmit),
            Some(server) => {
                self.relays.stream_out.push_back(TurnStreamTransmit {
                    server,
                    contents: transmit.contents,
                });
                None
            }
        }
    }
}
