//! Batched UDP for realtimer's drivers (the PeerConnection's, the TURN
//! server's, and the load generators of the benchmarks).
//!
//! A bulk data channel or a busy TURN relay moves tens of thousands of
//! datagrams a second; one system call and one wake-up per datagram is
//! where the time goes. This crate batches both ways:
//!
//! - [`SendQueue`]: datagrams queued during a round go out grouped, a run of
//!   same-size datagrams from one socket to one destination as one GSO send
//!   (`UDP_SEGMENT`), single datagrams to many destinations in one
//!   `sendmmsg`.
//! - [`Received`]: one `recvmmsg` fills up to [`BATCH_SIZE`] slots, each a
//!   datagram or a GRO train of datagrams of one size (`UDP_GRO`), split
//!   again by their stride, with the local address each came to
//!   (`IP_PKTINFO` / `IPV6_RECVPKTINFO`) and when the kernel received it
//!   (`SO_TIMESTAMPNS`, on the `Instant` clock).
//! - [`bind`], [`allow_fragmentation`], [`keep_gro_enabled`]: the socket
//!   settings the drivers share (buffers, IPv6-only or dual-stack, the DF
//!   bit).
//!
//! The system calls are behind quinn-udp (GSO, GRO, pktinfo), rustix
//! (`sendmmsg`, `IP_MTU_DISCOVER`) and nix (`IPV6_DONTFRAG`), so this crate
//! keeps `unsafe` forbidden like the rest of the workspace. Sockets are
//! anything with a file descriptor ([`AsFd`](std::os::fd::AsFd)): std, mio
//! or tokio sockets; readiness (waiting until a socket is readable or
//! writable) is the caller's.
//!
//! ```
//! use realtimer_udp::{bind, BindOptions, Received, SendQueue, UdpSocketState};
//!
//! let a = bind("127.0.0.1:0".parse()?, BindOptions::default())?;
//! let b = bind("127.0.0.1:0".parse()?, BindOptions::default())?;
//! let (a_state, b_state) = (UdpSocketState::new((&a).into())?, UdpSocketState::new((&b).into())?);
//! let (a_addr, b_addr) = (a.local_addr()?, b.local_addr()?);
//!
//! // Three datagrams of one size to one destination: one GSO send.
//! let mut queue = SendQueue::new(a_state.max_gso_segments());
//! for n in 0..3u8 {
//!     queue.push(a_addr, b_addr, &[n; 100]);
//! }
//! queue.try_send_from(&a, &a_state)?;
//!
//! // One recvmmsg (GRO may hand them over as one train).
//! let mut received = Received::new();
//! let mut got = Vec::new();
//! while got.len() < 3 {
//!     match received.read(&b, &b_state) {
//!         Ok(count) => got.extend(received.datagrams(count).map(|d| (d.source, d.contents[0]))),
//!         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! assert_eq!(got, [(a_addr, 0), (a_addr, 1), (a_addr, 2)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod receive;
mod send;
mod socket;

pub use quinn_udp::{UdpSocketState, BATCH_SIZE};
pub use receive::{Datagram, Received, RECEIVE_SLOT};
pub use send::{SendQueue, Sockets, MAX_GSO_BYTES};
pub use socket::{allow_fragmentation, bind, canonical, keep_gro_enabled, BindOptions};
