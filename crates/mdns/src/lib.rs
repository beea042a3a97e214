//! Multicast DNS (RFC 6762) for ICE, sans-IO.
//!
//! Browsers hide their host addresses behind random `.local` names
//! (draft-ietf-mmusic-mdns-ice-candidates): a peer learns
//! `1f4712db-ea17-4bcf-a596-105139dfd8bf.local` instead of `192.168.1.5`
//! and must ask the link for the address. [`Mdns`] does both halves: it
//! answers queries for the names we publish ([`Mdns::register`]) and
//! resolves the names peers give us ([`Mdns::resolve`]).
//!
//! Like every core in realtimer it has no socket and reads no clock: feed
//! it received packets ([`Mdns::handle_input`]) and timeouts
//! ([`Mdns::handle_timeout`]); drain [`Mdns::poll_transmit`] and
//! [`Mdns::poll_event`]; wake it at [`Mdns::poll_timeout`].
//!
//! Only what ICE needs: `A` and `AAAA` records for unique names (random
//! UUIDs need no probing, draft-ietf-mmusic-mdns-ice-candidates §3.1.1),
//! one-shot and continuous queries, legacy unicast answers (§6.7).
//! Service discovery (PTR/SRV/TXT), probing and known-answer suppression
//! are not implemented.

mod message;
mod service;

pub use message::{Message, MessageError, Question, Record, RecordData, MAX_MESSAGE};
pub use realtimer_net::Transmit;
pub use service::{
    Mdns, MdnsConfig, MdnsEvent, RegisterError, MDNS_PORT, MDNS_V4_GROUP, MDNS_V6_GROUP,
};
