//! A TURN server core (RFC 8656), sans-IO.
//!
//! [`Server`] takes datagrams and the caller's clock and gives back
//! [`Transmit`]s, [`Event`]s and the next timeout, in the style of
//! quinn-proto: no sockets, no clock, no randomness it was not seeded with.
//!
//! - Requests: Binding, Allocate, Refresh, CreatePermission, ChannelBind,
//!   all but Binding under long-term credentials (RFC 8489 §9.2): 401 with
//!   REALM and NONCE, 438 when the nonce has expired.
//! - Credentials: static users and the time-limited REST scheme of coturn's
//!   `use-auth-secret` (username `expiry:user`, password
//!   `base64(HMAC-SHA1(secret, username))`), see [`Credentials`].
//! - Data: Send and Data indications (§11) and ChannelData (§12.4), see
//!   [`channel_data`].
//! - Client transports: UDP ([`Server::handle_client`]) and streams, TCP or
//!   TLS, whose bytes [`StreamDecoder`] cuts into messages for
//!   [`Server::handle_stream_message`] (RFC 8656 §3.1, ChannelData padded
//!   per §12.5). Relaying to peers is UDP, or TCP for clients on TCP or
//!   TLS that ask for it (RFC 6062: Connect, ConnectionAttempt,
//!   ConnectionBind; the driver opens, accepts and pipes the connections
//!   on [`Event::OpenTcpRelay`], [`Event::ConnectPeer`],
//!   [`Event::BindConnection`] and [`Event::ClosePeerConnection`]).
//! - Safety: peers on loopback, private, link-local, multicast or
//!   unspecified addresses are refused (403) unless allow-listed
//!   ([`PeerPolicy`]); quotas per user, per client IP and in total (486);
//!   limits on permissions and channels (508); a bandwidth cap per
//!   allocation.
//!
//! The driver binds a UDP socket when the core asks for a relay
//! ([`Event::OpenRelay`]) and reports back with [`Server::relay_opened`];
//! datagrams a relay receives go to [`Server::handle_peer`].
//!
//! ```
//! use std::time::Instant;
//! use realtimer_turn::{Credentials, Event, Server, ServerConfig};
//! let mut credentials = Credentials::new("example.org");
//! credentials.add_user("alice", "secret").unwrap();
//! let config = ServerConfig::new(credentials, [7; 16]);
//! let now = Instant::now();
//! let mut server = Server::new(config, now, 1_700_000_000).unwrap();
//! let listener = "192.0.2.1:3478".parse().unwrap();
//! let client = "198.51.100.7:40000".parse().unwrap();
//! server.handle_client(now, listener, client, b"not a TURN message");
//! assert!(server.poll_transmit().is_none());
//! assert!(server.poll_event().is_none());
//! ```

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod allocation;
mod auth;
mod auth_throttle;
mod config;
mod error;
mod metrics;
mod policy;
mod server;

pub use auth::{rest_password, Credentials};
pub use auth_throttle::AuthThrottleLimits;
pub use config::{ConfigError, Limits, ServerConfig};
pub use error::RequestError;
pub use metrics::{AuthFailure, Gauges, Metrics, Quota};
pub use policy::{is_denied_by_default, IpNet, IpNetParseError, PeerPolicy};
/// ChannelData and the stream framing are shared with TURN clients, so
/// they live in `realtimer-stun`; the server's API names them here too.
pub use realtimer_stun::{channel_data, StreamDecoder, StreamError, Transport};
pub use server::{Event, Server, Transmit};
