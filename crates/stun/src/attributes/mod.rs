//! Attribute types and typed values (RFC 8489 §14, RFC 8445 §16.1, RFC 8656 §18).
//!
//! Each attribute is a small type that implements [`DecodeAttribute`] (read
//! from a borrowed value) and [`EncodeAttribute`] (written into the
//! encoder's buffer). [`Attribute`] gathers them all for walking a message.

use std::fmt;

use crate::error::AttributeError;
use crate::message::{RawAttribute, TransactionId};

mod ice;
mod stun;
mod turn;

pub use self::ice::{IceControlled, IceControlling, Priority, UseCandidate};
pub use self::stun::{
    AlternateDomain, AlternateServer, ErrorCode, MappedAddress, Nonce, PasswordAlgorithmList,
    PasswordAlgorithmParams, PasswordAlgorithms, Realm, Software, UnknownAttributeList,
    UnknownAttributes, Userhash, Username, XorMappedAddress,
};
pub use self::turn::{
    AdditionalAddressFamily, AddressErrorCode, ChannelNumber, ConnectionId, Data, DontFragment,
    EvenPort, Icmp, Lifetime, RequestedAddressFamily, RequestedTransport, ReservationToken,
    XorPeerAddress, XorRelayedAddress,
};
pub use crate::address::AddressFamily;

/// A 16-bit attribute type (RFC 8489 §14, §18.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeType(pub u16);

macro_rules! attribute_types {
    ($($name:ident = $value:expr, $text:expr, $doc:expr;)*) => {
        impl AttributeType {
            $(#[doc = $doc] pub const $name: AttributeType = AttributeType($value);)*

            /// The attribute's name in its RFC, if this crate knows it.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(AttributeType::$name => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

attribute_types! {
    MAPPED_ADDRESS = 0x0001, "MAPPED-ADDRESS", "MAPPED-ADDRESS (RFC 8489 §14.1).";
    USERNAME = 0x0006, "USERNAME", "USERNAME (RFC 8489 §14.3).";
    MESSAGE_INTEGRITY = 0x0008, "MESSAGE-INTEGRITY", "MESSAGE-INTEGRITY, HMAC-SHA1 (RFC 8489 §14.5).";
    ERROR_CODE = 0x0009, "ERROR-CODE", "ERROR-CODE (RFC 8489 §14.8).";
    UNKNOWN_ATTRIBUTES = 0x000A, "UNKNOWN-ATTRIBUTES", "UNKNOWN-ATTRIBUTES (RFC 8489 §14.13).";
    CHANNEL_NUMBER = 0x000C, "CHANNEL-NUMBER", "CHANNEL-NUMBER (RFC 8656 §18.1).";
    LIFETIME = 0x000D, "LIFETIME", "LIFETIME (RFC 8656 §18.2).";
    XOR_PEER_ADDRESS = 0x0012, "XOR-PEER-ADDRESS", "XOR-PEER-ADDRESS (RFC 8656 §18.3).";
    DATA = 0x0013, "DATA", "DATA (RFC 8656 §18.4).";
    REALM = 0x0014, "REALM", "REALM (RFC 8489 §14.9).";
    NONCE = 0x0015, "NONCE", "NONCE (RFC 8489 §14.10).";
    XOR_RELAYED_ADDRESS = 0x0016, "XOR-RELAYED-ADDRESS", "XOR-RELAYED-ADDRESS (RFC 8656 §18.5).";
    REQUESTED_ADDRESS_FAMILY = 0x0017, "REQUESTED-ADDRESS-FAMILY", "REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6).";
    EVEN_PORT = 0x0018, "EVEN-PORT", "EVEN-PORT (RFC 8656 §18.7).";
    REQUESTED_TRANSPORT = 0x0019, "REQUESTED-TRANSPORT", "REQUESTED-TRANSPORT (RFC 8656 §18.8).";
    DONT_FRAGMENT = 0x001A, "DONT-FRAGMENT", "DONT-FRAGMENT (RFC 8656 §18.9).";
    MESSAGE_INTEGRITY_SHA256 = 0x001C, "MESSAGE-INTEGRITY-SHA256", "MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).";
    PASSWORD_ALGORITHM = 0x001D, "PASSWORD-ALGORITHM", "PASSWORD-ALGORITHM (RFC 8489 §14.12).";
    USERHASH = 0x001E, "USERHASH", "USERHASH (RFC 8489 §14.4).";
    XOR_MAPPED_ADDRESS = 0x0020, "XOR-MAPPED-ADDRESS", "XOR-MAPPED-ADDRESS (RFC 8489 §14.2).";
    RESERVATION_TOKEN = 0x0022, "RESERVATION-TOKEN", "RESERVATION-TOKEN (RFC 8656 §18.10).";
    PRIORITY = 0x0024, "PRIORITY", "PRIORITY (RFC 8445 §16.1).";
    USE_CANDIDATE = 0x0025, "USE-CANDIDATE", "USE-CANDIDATE (RFC 8445 §16.1).";
    CONNECTION_ID = 0x002A, "CONNECTION-ID", "CONNECTION-ID (RFC 6062 §6.2.1).";
    ADDITIONAL_ADDRESS_FAMILY = 0x8000, "ADDITIONAL-ADDRESS-FAMILY", "ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11).";
    ADDRESS_ERROR_CODE = 0x8001, "ADDRESS-ERROR-CODE", "ADDRESS-ERROR-CODE (RFC 8656 §18.12).";
    PASSWORD_ALGORITHMS = 0x8002, "PASSWORD-ALGORITHMS", "PASSWORD-ALGORITHMS (RFC 8489 §14.11).";
    ALTERNATE_DOMAIN = 0x8003, "ALTERNATE-DOMAIN", "ALTERNATE-DOMAIN (RFC 8489 §14.16).";
    ICMP = 0x8004, "ICMP", "ICMP (RFC 8656 §18.13).";
    SOFTWARE = 0x8022, "SOFTWARE", "SOFTWARE (RFC 8489 §14.14).";
    ALTERNATE_SERVER = 0x8023, "ALTERNATE-SERVER", "ALTERNATE-SERVER (RFC 8489 §14.15).";
    FINGERPRINT = 0x8028, "FINGERPRINT", "FINGERPRINT (RFC 8489 §14.7).";
    ICE_CONTROLLED = 0x8029, "ICE-CONTROLLED", "ICE-CONTROLLED (RFC 8445 §16.1).";
    ICE_CONTROLLING = 0x802A, "ICE-CONTROLLING", "ICE-CONTROLLING (RFC 8445 §16.1).";
}

impl AttributeType {
    /// RFC 8489 §14: types 0x0000-0x7FFF are comprehension-required; an agent
    /// that does not know one must not process the message as if it did.
    pub fn is_comprehension_required(self) -> bool {
        self.0 < 0x8000
    }

    /// True when this crate knows the attribute.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }
}

impl fmt::Debug for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "AttributeType({:#06x})", self.0),
        }
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An attribute that can be read from a message's borrowed bytes.
pub trait DecodeAttribute<'a>: Sized {
    /// The attribute's type.
    const TYPE: AttributeType;
    /// Reads the value (without padding). The transaction id is for the XOR
    /// address attributes.
    fn decode(value: &'a [u8], transaction_id: &TransactionId) -> Result<Self, AttributeError>;
}

/// An attribute that can be written by [`crate::MessageEncoder`].
pub trait EncodeAttribute {
    /// The attribute's type.
    const TYPE: AttributeType;
    /// The value's length without padding, or why the value breaks the RFC's
    /// limits (we never send what we would refuse to receive).
    fn value_len(&self) -> Result<usize, AttributeError>;
    /// Writes exactly `value_len()` bytes.
    fn write_value(&self, out: &mut [u8], transaction_id: &TransactionId);
}

/// RFC 8489 §14.3 and friends: a UTF-8 value with limits on bytes and characters.
pub(crate) fn decode_text(
    value: &[u8],
    max_bytes: usize,
    max_chars: Option<usize>,
) -> Result<&str, AttributeError> {
    let text = std::str::from_utf8(value).map_err(|_| AttributeError::NotUtf8)?;
    check_text(text, max_bytes, max_chars)?;
    Ok(text)
}

pub(crate) fn check_text(
    text: &str,
    max_bytes: usize,
    max_chars: Option<usize>,
) -> Result<(), AttributeError> {
    if text.len() > max_bytes {
        return Err(AttributeError::TooLong {
            actual: text.len(),
            max: max_bytes,
            unit: "bytes",
        });
    }
    if let Some(max_chars) = max_chars {
        let chars = text.chars().count();
        if chars > max_chars {
            return Err(AttributeError::TooLong {
                actual: chars,
                max: max_chars,
                unit: "characters",
            });
        }
    }
    Ok(())
}

pub(crate) fn exact<const N: usize>(
    value: &[u8],
    expected: &'static str,
) -> Result<[u8; N], AttributeError> {
    value.try_into().map_err(|_| AttributeError::BadLength {
        actual: value.len(),
        expected,
    })
}

/// Declares a text attribute: a borrowed `&str` with byte and character limits.
macro_rules! text_attribute {
    ($(#[$doc:meta])* $name:ident, $type:ident, max_bytes = $max_bytes:expr, max_chars = $max_chars:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name<'a>(pub &'a str);

        impl<'a> DecodeAttribute<'a> for $name<'a> {
            const TYPE: AttributeType = AttributeType::$type;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
                decode_text(value, $max_bytes, $max_chars).map($name)
            }
        }

        impl EncodeAttribute for $name<'_> {
            const TYPE: AttributeType = AttributeType::$type;
            fn value_len(&self) -> Result<usize, AttributeError> {
                check_text(self.0, $max_bytes, $max_chars).map(|()| self.0.len())
            }
            fn write_value(&self, out: &mut [u8], _: &TransactionId) {
                out.copy_from_slice(self.0.as_bytes());
            }
        }
    };
}

/// Declares an address attribute, plain or XORed.
macro_rules! address_attribute {
    ($(#[$doc:meta])* $name:ident, $type:ident, xor = $xor:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub std::net::SocketAddr);

        impl DecodeAttribute<'_> for $name {
            const TYPE: AttributeType = AttributeType::$type;
            fn decode(value: &[u8], tid: &TransactionId) -> Result<Self, AttributeError> {
                crate::address::decode(value, $xor.then_some(tid)).map($name)
            }
        }

        impl EncodeAttribute for $name {
            const TYPE: AttributeType = AttributeType::$type;
            fn value_len(&self) -> Result<usize, AttributeError> {
                Ok(crate::address::encoded_len(&self.0))
            }
            fn write_value(&self, out: &mut [u8], tid: &TransactionId) {
                crate::address::encode(out, &self.0, $xor.then_some(tid));
            }
        }
    };
}

/// Declares an attribute whose value is one big-endian unsigned integer.
macro_rules! integer_attribute {
    ($(#[$doc:meta])* $name:ident($int:ty), $type:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub $int);

        impl DecodeAttribute<'_> for $name {
            const TYPE: AttributeType = AttributeType::$type;
            fn decode(value: &[u8], _: &TransactionId) -> Result<Self, AttributeError> {
                const LEN: usize = std::mem::size_of::<$int>();
                exact::<LEN>(value, stringify!($int)).map(|b| $name(<$int>::from_be_bytes(b)))
            }
        }

        impl EncodeAttribute for $name {
            const TYPE: AttributeType = AttributeType::$type;
            fn value_len(&self) -> Result<usize, AttributeError> {
                Ok(std::mem::size_of::<$int>())
            }
            fn write_value(&self, out: &mut [u8], _: &TransactionId) {
                out.copy_from_slice(&self.0.to_be_bytes());
            }
        }
    };
}

/// Declares an attribute with an empty value: its presence is the message.
macro_rules! flag_attribute {
    ($(#[$doc:meta])* $name:ident, $type:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name;

        impl DecodeAttribute<'_> for $name {
            const TYPE: AttributeType = AttributeType::$type;
            fn decode(value: &[u8], _: &TransactionId) -> Result<Self, AttributeError> {
                exact::<0>(value, "0").map(|_| $name)
            }
        }

        impl EncodeAttribute for $name {
            const TYPE: AttributeType = AttributeType::$type;
            fn value_len(&self) -> Result<usize, AttributeError> {
                Ok(0)
            }
            fn write_value(&self, _: &mut [u8], _: &TransactionId) {}
        }
    };
}

pub(crate) use {address_attribute, flag_attribute, integer_attribute, text_attribute};

/// Declares [`Attribute`], one variant per typed attribute, and its decoder.
macro_rules! attribute_enum {
    ($($variant:ident($ty:ty),)*) => {
        /// Any attribute, decoded by type; unknown types stay raw.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        #[allow(missing_docs)]
        pub enum Attribute<'a> {
            $($variant($ty),)*
            /// An attribute this crate does not know, kept as it came.
            Unknown(RawAttribute<'a>),
        }

        impl<'a> Attribute<'a> {
            /// Decodes one raw attribute by its type.
            pub fn decode(raw: RawAttribute<'a>, tid: &TransactionId) -> Result<Self, AttributeError> {
                $(if raw.attribute_type == <$ty as DecodeAttribute<'a>>::TYPE {
                    return <$ty as DecodeAttribute<'a>>::decode(raw.value, tid).map(Attribute::$variant);
                })*
                Ok(Attribute::Unknown(raw))
            }
        }
    };
}

attribute_enum! {
    MappedAddress(MappedAddress),
    XorMappedAddress(XorMappedAddress),
    Username(Username<'a>),
    Userhash(Userhash),
    ErrorCode(ErrorCode<'a>),
    UnknownAttributes(UnknownAttributes<'a>),
    Realm(Realm<'a>),
    Nonce(Nonce<'a>),
    PasswordAlgorithms(PasswordAlgorithms<'a>),
    PasswordAlgorithm(PasswordAlgorithmParams<'a>),
    Software(Software<'a>),
    AlternateServer(AlternateServer),
    AlternateDomain(AlternateDomain<'a>),
    Priority(Priority),
    UseCandidate(UseCandidate),
    IceControlled(IceControlled),
    IceControlling(IceControlling),
    ChannelNumber(ChannelNumber),
    Lifetime(Lifetime),
    XorPeerAddress(XorPeerAddress),
    Data(Data<'a>),
    XorRelayedAddress(XorRelayedAddress),
    RequestedAddressFamily(RequestedAddressFamily),
    EvenPort(EvenPort),
    RequestedTransport(RequestedTransport),
    DontFragment(DontFragment),
    ReservationToken(ReservationToken),
    AdditionalAddressFamily(AdditionalAddressFamily),
    AddressErrorCode(AddressErrorCode<'a>),
    Icmp(Icmp),
    ConnectionId(ConnectionId),
}
