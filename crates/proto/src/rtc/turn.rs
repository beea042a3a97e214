//! TURN servers reached over TCP or TLS (RFC 8656 §3.1): the driver owns
//! the connections, the ICE agent the allocations on them.

use std::net::SocketAddr;
use std::time::Instant;

use realtimer_ice::TurnStreamTransmit;

use super::Rtc;

impl Rtc {
    /// The connection asked for by [`crate::RtcEvent::OpenTurnConnection`]
    /// is up from local address `local` (which must differ from the UDP
    /// bases). Messages read from it go to [`Rtc::handle_receive`] as
    /// received from the server's address on `local`.
    pub fn turn_connected(&mut self, now: Instant, server: usize, local: SocketAddr) {
        self.ice.turn_connected(now, server, local);
        self.process(now);
    }

    /// The connection to TURN server `server` failed or closed: its
    /// allocation and relayed candidate are gone.
    pub fn turn_disconnected(&mut self, now: Instant, server: usize) {
        self.ice.turn_disconnected(now, server);
        self.process(now);
    }

    /// The next message to write on a TURN server's TCP or TLS connection.
    /// Poll it after [`Rtc::poll_transmit`], which moves what goes there
    /// to this queue.
    pub fn poll_turn_stream(&mut self) -> Option<TurnStreamTransmit> {
        self.ice.poll_turn_stream()
    }
}
