//! What every sans-IO core in realtimer hands its driver: a [`Transmit`]
//! (bytes, where from, where to, over what [`Transport`]).
//!
//! The cores (STUN transactions, mDNS, the ICE agent, the TURN server, the
//! peer connection's `Rtc`) read no socket and no clock; each has a
//! `poll_transmit` that returns this one type, so a driver that serves
//! several of them (the `PeerConnection` sends ICE, DTLS and SRTP from one
//! socket; `realtimer serve` runs the TURN server next to mDNS) needs no
//! conversions. The crate depends on `bytes` only, so the lowest core can
//! use it.

use std::net::SocketAddr;

use bytes::Bytes;

/// The transport protocol a message travels over: part of the 5-tuple
/// (RFC 8656 §2.2), and what a `turn:` URL's `?transport=` or a `turns:`
/// URL chooses (RFC 7065 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Transport {
    /// Datagrams.
    #[default]
    Udp,
    /// A TCP connection.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// True over TCP and TLS: messages are framed on a byte stream (for
    /// TURN, ChannelData is padded, RFC 8656 §12.5), and STUN requests are
    /// sent once, not retransmitted (RFC 8489 §6.2.2).
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }

    /// `udp`, `tcp` or `tls`: a `turn:` URL's `?transport=` (RFC 7065),
    /// W3C webrtc-stats' `relayProtocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// A message for the driver to send.
///
/// Over UDP, `source` is the local address (socket) to send from: a
/// candidate's base, a TURN listener or relayed address. An unspecified IP
/// (`0.0.0.0`, `::`) in it leaves the choice of interface to the routing
/// table. Over a stream, the message goes on the connection between
/// `source` and `destination`, already framed.
///
/// `C` is the buffer: [`Bytes`] for the cores that queue or clone what they
/// send; the TURN server uses `Vec<u8>` so that the driver can hand each
/// buffer back for the next message (`Server::recycle`): relaying a packet
/// allocates nothing, which `Bytes::from(Vec)` with spare capacity would.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit<C = Bytes> {
    /// How to send it.
    pub transport: Transport,
    /// The local address to send from.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes.
    pub contents: C,
}

impl<C> Transmit<C> {
    /// A datagram from `source` to `destination`.
    pub fn udp(source: SocketAddr, destination: SocketAddr, contents: C) -> Self {
        Self {
            transport: Transport::Udp,
            source,
            destination,
            contents,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_tcp_and_tls_and_names_are_the_url_ones() {
        assert!(!Transport::Udp.is_stream());
        assert!(Transport::Tcp.is_stream());
        assert!(Transport::Tls.is_stream());
        let names: Vec<_> = [Transport::Udp, Transport::Tcp, Transport::Tls]
            .map(Transport::as_str)
            .into();
        assert_eq!(names, ["udp", "tcp", "tls"]);
        assert_eq!(Transport::default(), Transport::Udp);
    }
}
