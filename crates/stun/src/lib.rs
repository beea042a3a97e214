//! STUN (RFC 8489): messages, attributes, credentials, and client transactions.
//!
//! - [`Message::decode`] borrows the datagram and checks its structure and
//!   FINGERPRINT without allocating; typed attributes come from
//!   [`Message::get`], and MESSAGE-INTEGRITY(-SHA256) from
//!   [`Message::verify_integrity`].
//! - [`MessageEncoder`] writes a message into a caller's buffer, adding
//!   integrity and fingerprint last.
//! - [`IntegrityKey`] holds short-term (ICE) or long-term (TURN) credentials.
//! - [`ClientTransactions`] retransmits requests on the caller's clock
//!   (RFC 8489 §6.2.1) and matches responses by transaction id.
//! - [`StreamDecoder`] cuts a TCP or TLS byte stream into STUN and TURN
//!   [`channel_data`] messages (RFC 8656 §12.5), for TURN clients and
//!   servers alike.
//!
//! ```
//! use realtimer_stun::{attributes::XorMappedAddress, Class, Message, MessageEncoder, Method, TransactionId};
//! let mut buf = Vec::new();
//! let tid = TransactionId::new([7; 12]);
//! let mapped = "192.0.2.1:32853".parse().unwrap();
//! let mut enc = MessageEncoder::new(&mut buf, Class::SuccessResponse, Method::BINDING, tid);
//! enc.add(&XorMappedAddress(mapped)).unwrap();
//! enc.add_fingerprint().unwrap();
//! let msg = Message::decode(&buf).unwrap();
//! assert_eq!(msg.get::<XorMappedAddress>().unwrap(), Some(XorMappedAddress(mapped)));
//! ```

// Library code never unwraps: peer input gets typed errors.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod address;
pub mod attributes;
pub mod channel_data;
mod credentials;
mod encode;
mod error;
mod message;
mod server;
mod stream;
mod transaction;
mod url;

pub use attributes::{AttributeType, DecodeAttribute, EncodeAttribute};
pub use credentials::{
    userhash, CredentialError, IntegrityKey, PasswordAlgorithm, PasswordPreparation,
};
pub use encode::MessageEncoder;
pub use error::{AttributeError, DecodeError, EncodeError, IntegrityError};
pub use message::{
    is_stun, local_ufrag, Class, Message, Method, RawAttribute, TransactionId, HEADER_LEN,
    MAGIC_COOKIE, MAX_ATTRIBUTES,
};
pub use realtimer_net::{Transmit, Transport};
pub use server::{BindingOutcome, BindingServer};
pub use stream::{StreamDecoder, StreamError, MAX_FRAME_LEN};
pub use transaction::{
    ClientTransactions, Matched, OutgoingRequest, RetransmitConfig, TransactionError,
    TransactionEvent,
};
pub use url::{Scheme, ServerUrl, UrlError, UrlTransport};
