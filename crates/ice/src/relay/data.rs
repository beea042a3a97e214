//! Application data through relays (RFC 8656 §11, §12): what relayed
//! candidates send is wrapped for their TURN server, what a server relays
//! is unwrapped, so DTLS and SRTP see datagrams from and to the peer.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use realtimer_stun::is_stun;

use realtimer_net::Transmit;

use crate::agent::IceAgent;

/// An application datagram received, as if straight from the peer
/// (see [`IceAgent::handle_receive_data`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedData<'a> {
    /// The sender: the peer, also for data a TURN server relayed.
    pub source: SocketAddr,
    /// Where it arrived: a host base, or our relayed address.
    pub destination: SocketAddr,
    /// The payload (DTLS, SRTP...).
    pub contents: &'a [u8],
}

impl IceAgent {
    /// [`IceAgent::handle_receive`] for drivers that carry application data
    /// over TURN: returns the application datagram (not STUN, RFC 7983) to
    /// hand to DTLS or SRTP, or `None` when the datagram was ICE's own (or
    /// dropped as malformed). What came through one of our relays, in a
    /// Data indication or ChannelData (RFC 8656 §11.4, §12.5), comes out
    /// unwrapped, as if the peer had sent it straight to the relayed
    /// candidate; anything else comes out as it was received.
    pub fn handle_receive_data<'a>(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &'a [u8],
    ) -> Option<ReceivedData<'a>> {
        if let Some((peer, relayed, inner)) = self.relays.unwrap(source, destination, contents) {
            if is_stun(inner) {
                self.handle_stun(now, peer, relayed, inner);
                return None;
            }
            return Some(ReceivedData {
                source: peer,
                destination: relayed,
                contents: inner,
            });
        }
        if self.handle_receive(now, source, destination, contents) {
            None
        } else {
            Some(ReceivedData {
                source,
                destination,
                contents,
            })
        }
    }

    /// Application data for the selected pair, ready to send: plain from
    /// its base to the remote candidate, or, when the local candidate is
    /// relayed, wrapped in ChannelData or a Send indication (RFC 8656 §11,
    /// §12) to the TURN server. `None` before a pair is selected or once
    /// the agent is closed.
    pub fn send_data(&mut self, payload: &[u8]) -> Option<Transmit> {
        if self.closed {
            return None;
        }
        let selected = self.selected.as_ref()?;
        let transmit = Transmit::udp(
            selected.local_base,
            selected.remote.address,
            Bytes::copy_from_slice(payload),
        );
        self.encapsulate(transmit)
    }

    /// Makes an application datagram that a local candidate's base sends
    /// ready for the wire: unchanged from a host base, wrapped in
    /// ChannelData or a Send indication to the TURN server (RFC 8656 §11.1,
    /// §12.4) from a relayed one (`None`, and the message waits in
    /// [`IceAgent::poll_turn_stream`], when that server is reached over
    /// TCP or TLS). For drivers that pick the route
    /// themselves (DTLS answering before a pair is selected, its last
    /// alert after [`IceAgent::close`]). `None` when the relayed address's
    /// allocation is gone (closing the agent releases them).
    pub fn encapsulate(&mut self, transmit: Transmit) -> Option<Transmit> {
        if self.relays.allocations.is_empty() {
            return Some(transmit);
        }
        self.wrap_relayed(transmit)
            .and_then(|t| self.divert_to_stream(t))
    }
}
