//! The ICE agent (RFC 8445), with trickle (RFC 8838) and consent freshness
//! (RFC 7675), sans-IO.
//!
//! The agent never touches a socket or a clock. Its driver tells it the local
//! addresses it has sockets on ([`IceAgent::gather`]), hands it every STUN
//! datagram those sockets receive ([`IceAgent::handle_receive`]) and calls
//! [`IceAgent::handle_timeout`] when [`IceAgent::poll_timeout`] says; in
//! return it sends what [`IceAgent::poll_transmit`] gives (from the named
//! local address) and reacts to [`IceAgent::poll_event`]. Application data
//! goes over [`IceAgent::selected_pair`].
//!
//! With [`IceConfig::turn_servers`] the agent is a TURN client (RFC 8656):
//! it allocates relayed candidates, keeps them alive and wraps what they
//! send ([`IceAgent::send_data`], [`IceAgent::encapsulate`],
//! [`IceAgent::handle_receive_data`]). Servers reached over TCP or TLS
//! live on a connection the driver opens when asked
//! ([`IceEvent::OpenTurnConnection`]); their messages come out of
//! [`IceAgent::poll_turn_stream`], and [`TurnStreamDecoder`] cuts the
//! server's bytes back into messages. [`IceConfig::relay_only`] is the
//! browser's `iceTransportPolicy: "relay"`.
//!
//! ```
//! use std::time::Instant;
//! use realtimer_ice::{IceAgent, IceConfig, IceEvent};
//!
//! let now = Instant::now();
//! let mut agent = IceAgent::new(IceConfig { allow_loopback: true, ..IceConfig::default() }, true);
//! agent.gather(now, &["127.0.0.1:5000".parse().unwrap()]);
//! let mut candidates = Vec::new();
//! while let Some(event) = agent.poll_event() {
//!     if let IceEvent::LocalCandidate(c) = event {
//!         candidates.push(c.to_sdp(None).to_string());
//!     }
//! }
//! assert_eq!(candidates.len(), 1);
//! assert!(candidates[0].contains("127.0.0.1 5000 typ host"));
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod agent;
mod candidate;
mod checklist;
mod config;
mod consent;
mod event;
mod gather;
mod relay;
mod requests;

pub use agent::{IceAgent, IceCredentials, IceError};
pub use candidate::{candidate_priority, pair_priority, Candidate, CandidateError, CandidateKind};
pub use config::{IceConfig, TurnServer};
pub use event::{FailureReason, IceConnectionState, IceEvent, IceGatheringState, SelectedPair};
/// Cuts what a TURN server sends on a TCP or TLS connection into STUN
/// and ChannelData messages (RFC 8656 §3.1, §12.5), bounded: the server
/// side's decoder, shared.
pub use realtimer_net::{Transmit, Transport};
pub use realtimer_stun::{StreamDecoder as TurnStreamDecoder, StreamError};
pub use relay::{ReceivedData, TurnStreamTransmit};
