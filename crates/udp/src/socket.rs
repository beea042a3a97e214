//! Socket settings the drivers share: binding with large buffers, the DF
//! bit, and keeping the kernel's GRO switch on.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::OnceLock;

use quinn_udp::UdpSocketState;
use socket2::{Domain, Protocol, Socket, Type};

/// How [`bind`] sets a socket up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BindOptions {
    /// Kernel send and receive buffers asked for, in bytes (the kernel caps
    /// them at `net.core.rmem_max` / `wmem_max`; not getting them is not an
    /// error). A burst must fit while the driver is busy, or the kernel
    /// drops it.
    pub buffer: usize,
    /// An IPv6 socket takes IPv6 only (`IPV6_V6ONLY`), so `0.0.0.0:P` and
    /// `[::]:P` can both be bound; otherwise an IPv6 wildcard is
    /// dual-stack and IPv4 peers appear v4-mapped (see [`canonical`]).
    pub ipv6_only: bool,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions {
            buffer: 1 << 20,
            ipv6_only: true,
        }
    }
}

impl BindOptions {
    /// These options with `buffer` bytes of kernel buffers.
    pub fn with_buffer(mut self, buffer: usize) -> Self {
        self.buffer = buffer;
        self
    }

    /// These options, IPv6-only or dual-stack.
    pub fn with_ipv6_only(mut self, ipv6_only: bool) -> Self {
        self.ipv6_only = ipv6_only;
        self
    }
}

/// Binds a non-blocking UDP socket on `address` with `options`. Wrap it in
/// the event loop's type (mio's or tokio's `from_std`) and give it a
/// [`UdpSocketState`] for batched sends and receives.
pub fn bind(address: SocketAddr, options: BindOptions) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(options.ipv6_only)?;
    }
    // Larger buffers absorb bursts; failing to get them is not fatal.
    if let Err(e) = socket.set_recv_buffer_size(options.buffer) {
        tracing::debug!(%address, "SO_RCVBUF: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(options.buffer) {
        tracing::debug!(%address, "SO_SNDBUF: {e}");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(socket.into())
}

/// Lets datagrams sent from `socket` be fragmented (no DF bit) when they
/// are larger than the path MTU. quinn-udp asks for the DF bit on every
/// socket it drives (IP_PMTUDISC_PROBE, and IPV6_DONTFRAG); a TURN server
/// sets it on application data only when the client asked (RFC 8656 §14).
/// IPv6 has no DF bit: there the sender alone fragments, unless
/// IPV6_DONTFRAG (RFC 3542 §11.2) forbids it.
pub fn allow_fragmentation(socket: &impl AsFd, local: SocketAddr) -> io::Result<()> {
    use rustix::net::sockopt;
    if local.is_ipv4() {
        sockopt::set_ip_mtu_discover(socket, sockopt::Ipv4PathMtuDiscovery::DONT)?;
    } else {
        sockopt::set_ipv6_mtu_discover(socket, sockopt::Ipv6PathMtuDiscovery::DONT)?;
        // rustix has no setter for this one.
        nix::sys::socket::setsockopt(
            socket.as_fd().as_raw_fd(),
            nix::sys::socket::sockopt::Ipv6DontFrag,
            &false,
        )?;
    }
    Ok(())
}

/// A socket with `UDP_GRO` on for as long as the process runs. Linux turns
/// a static key on when the first socket enables GRO (it counts as UDP
/// encapsulation) and off after the last one closes, patching kernel code
/// each time (about 80 µs each way, with an interrupt to every CPU).
static GRO_KEEPER: OnceLock<Option<std::net::UdpSocket>> = OnceLock::new();

/// Keeps one GRO socket open for the rest of the process, so programs that
/// open and close sockets often (a connection each) skip the kernel's
/// switch each time. `v6`: try the IPv6 loopback first. The socket also
/// asks for receive stamps (`SO_TIMESTAMPNS`), which keeps the kernel's
/// stamping switched on too: its first user turns it on through a work
/// queue, and until that ran a datagram is stamped only when read.
pub fn keep_gro_enabled(v6: bool) {
    GRO_KEEPER.get_or_init(|| {
        let loopback: IpAddr = if v6 {
            Ipv6Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::LOCALHOST.into()
        };
        let socket = std::net::UdpSocket::bind((loopback, 0)).ok()?;
        UdpSocketState::new((&socket).into()).ok()?;
        Some(socket)
    });
}

/// `::ffff:a.b.c.d` as `a.b.c.d`: a dual-stack socket reports IPv4 peers
/// v4-mapped; protocol cores work with plain IPv4.
pub fn canonical(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip().to_canonical(), address.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_let_datagrams_fragment_unless_asked() {
        use rustix::net::sockopt::{ip_mtu_discover, Ipv4PathMtuDiscovery};
        let socket = bind("127.0.0.1:0".parse().unwrap(), BindOptions::default()).unwrap();
        let local = socket.local_addr().unwrap();
        let _state = UdpSocketState::new((&socket).into()).unwrap();
        // quinn-udp set the DF bit: what RFC 8656 §14 wants only on request.
        assert_eq!(
            ip_mtu_discover(&socket).unwrap(),
            Ipv4PathMtuDiscovery::PROBE
        );
        allow_fragmentation(&socket, local).unwrap();
        assert_eq!(
            ip_mtu_discover(&socket).unwrap(),
            Ipv4PathMtuDiscovery::DONT
        );
    }

    #[test]
    fn ipv6_sockets_let_datagrams_fragment_too() {
        use nix::sys::socket::{getsockopt, sockopt::Ipv6DontFrag};
        let Ok(socket) = bind("[::1]:0".parse().unwrap(), BindOptions::default()) else {
            return; // no IPv6 loopback here
        };
        let local = socket.local_addr().unwrap();
        let _state = UdpSocketState::new((&socket).into()).unwrap();
        assert!(getsockopt(socket.as_raw_fd(), Ipv6DontFrag).unwrap());
        allow_fragmentation(&socket, local).unwrap();
        assert!(!getsockopt(socket.as_raw_fd(), Ipv6DontFrag).unwrap());
    }

    #[test]
    fn ipv6_only_or_dual_stack_as_asked() {
        let v6_only = || BindOptions::default().with_ipv6_only(true);
        let Ok(only) = bind("[::]:0".parse().unwrap(), v6_only()) else {
            return; // no IPv6 here
        };
        let port = only.local_addr().unwrap().port();
        // The IPv4 wildcard on the same port is still free.
        bind(SocketAddr::from(([0, 0, 0, 0], port)), v6_only()).unwrap();
        let dual = bind("[::]:0".parse().unwrap(), v6_only().with_ipv6_only(false)).unwrap();
        let to = SocketAddr::from(([127, 0, 0, 1], dual.local_addr().unwrap().port()));
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"v4", to).unwrap();
        dual.set_nonblocking(false).unwrap();
        let mut buf = [0; 8];
        let (n, from) = dual.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"v4");
        assert!(from.ip().to_canonical().is_ipv4());
        assert_eq!(canonical(from), sender.local_addr().unwrap());
    }
}
