//! DTLS 1.2 (RFC 6347) for WebRTC, sans-IO over OpenSSL.
//!
//! - [`Dtls`] is one connection: datagrams and the time go in
//!   ([`Dtls::handle_input`], [`Dtls::handle_timeout`]), datagrams, events
//!   and the next timeout come out ([`Dtls::poll_transmit`],
//!   [`Dtls::poll_event`], [`Dtls::poll_timeout`]). No socket, no clock.
//! - OpenSSL runs the handshake and the record layer over an in-memory
//!   datagram pipe that keeps record boundaries; flights are fragmented to
//!   [`DtlsConfig::mtu`] (1200 bytes by default).
//! - Retransmission is ours, on the caller's clock (RFC 6347 §4.2.4), so
//!   tests on virtual time are deterministic; see [`Dtls`].
//! - Peers authenticate by certificate fingerprint (RFC 8827 §6.5,
//!   RFC 8122): the peer's certificate must hash to the fingerprint from its
//!   SDP or the connection fails with [`DtlsError::FingerprintMismatch`].
//! - `use_srtp` (RFC 5764) negotiates an [`SrtpProfile`]; the keys come out
//!   with [`DtlsEvent::Connected`] as [`SrtpKeyingMaterial`].
//!
//! ```
//! use std::time::{Duration, Instant, SystemTime};
//! use realtimer_dtls::{Certificate, Dtls, DtlsConfig, DtlsEvent, Role};
//!
//! # #[allow(clippy::disallowed_methods)]
//! # let (now, wall) = (Instant::now(), SystemTime::now());
//! let alice_cert = Certificate::generate(wall)?;
//! let bob_cert = Certificate::generate(wall)?;
//! let (alice_fp, bob_fp) = (alice_cert.fingerprint().clone(), bob_cert.fingerprint().clone());
//! let mut alice = Dtls::new(DtlsConfig::new(alice_cert), Role::Client, bob_fp, now)?;
//! let mut bob = Dtls::new(DtlsConfig::new(bob_cert), Role::Server, alice_fp, now)?;
//!
//! // A perfect network: move datagrams until both sides are quiet.
//! loop {
//!     let mut moved = false;
//!     while let Some(d) = alice.poll_transmit() { bob.handle_input(now, &d)?; moved = true; }
//!     while let Some(d) = bob.poll_transmit() { alice.handle_input(now, &d)?; moved = true; }
//!     if !moved { break; }
//! }
//! assert!(matches!(alice.poll_event(), Some(DtlsEvent::Connected { .. })));
//! assert!(matches!(bob.poll_event(), Some(DtlsEvent::Connected { .. })));
//! alice.send(b"hello")?;
//! bob.handle_input(now, &alice.poll_transmit().unwrap())?;
//! assert_eq!(bob.poll_event(), Some(DtlsEvent::ApplicationData("hello".into())));
//! # Ok::<(), realtimer_dtls::DtlsError>(())
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod certificate;
mod config;
mod connection;
mod error;
mod pipe;
mod protection;
mod record;

pub use certificate::{check_fingerprint, fingerprint_of_der, Certificate};
pub use config::{DtlsConfig, Role, SrtpProfile};
pub use connection::{Dtls, DtlsEvent, DtlsState, SrtpKeyingMaterial, MAX_APPLICATION_DATA};
pub use error::{alert_name, DtlsError};
/// A certificate fingerprint (RFC 8122 §5): one definition, the SDP
/// crate's; [`fingerprint_of_der`] computes one, [`check_fingerprint`]
/// says whether a peer's can authenticate it.
pub use realtimer_sdp::Fingerprint;
/// The hash functions of `a=fingerprint` (RFC 8122 §5): one definition,
/// the SDP crate's.
pub use realtimer_sdp::HashFunction;
