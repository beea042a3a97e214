//! Typed errors for decoding, encoding and integrity checks.

use crate::attributes::AttributeType;

/// Why a datagram is not a well-formed STUN message (RFC 8489 §5, §14).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than the 20 header bytes.
    #[error("truncated header: {len} bytes, a STUN header needs 20")]
    TruncatedHeader {
        /// Bytes available.
        len: usize,
    },
    /// The two most significant bits of the first byte are not zero (RFC 8489 §5).
    #[error("not STUN: the first two bits are {0:#04b}, must be 0")]
    LeadingBitsSet(u8),
    /// The magic cookie is not 0x2112A442 (RFC 8489 §5).
    #[error("bad magic cookie {0:#010x}, expected 0x2112a442")]
    BadMagicCookie(u32),
    /// The length field is not a multiple of 4 (RFC 8489 §5): an attribute
    /// is missing its padding.
    #[error("message length {0} is not a multiple of 4")]
    LengthNotMultipleOfFour(u16),
    /// The length field disagrees with the bytes received.
    #[error("message length field says {declared} bytes after the header, {available} available")]
    LengthMismatch {
        /// The header's length field.
        declared: usize,
        /// Bytes after the header.
        available: usize,
    },
    /// An attribute's value runs past the end of the message.
    #[error("attribute {attribute} at offset {offset} declares {length} bytes, past the end of the message")]
    AttributeOverrun {
        /// The attribute's type.
        attribute: AttributeType,
        /// Offset of the attribute in the message.
        offset: usize,
        /// Its declared value length.
        length: u16,
    },
    /// More attributes than [`crate::MAX_ATTRIBUTES`].
    #[error("more than {0} attributes")]
    TooManyAttributes(usize),
    /// An attribute follows FINGERPRINT, which must be last (RFC 8489 §14.7).
    #[error("attribute {attribute} follows FINGERPRINT, which must be last")]
    AttributeAfterFingerprint {
        /// The offending attribute.
        attribute: AttributeType,
    },
    /// FINGERPRINT does not match the message's CRC-32 (RFC 8489 §14.7).
    #[error("FINGERPRINT mismatch: message says {received:#010x}, computed {computed:#010x}")]
    FingerprintMismatch {
        /// The value in the message.
        received: u32,
        /// The value computed over the message.
        computed: u32,
    },
    /// An attribute's value is malformed.
    #[error("attribute {attribute}: {error}")]
    Attribute {
        /// The attribute's type.
        attribute: AttributeType,
        /// What is wrong with it.
        error: AttributeError,
    },
}

/// What is wrong with one attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// The value has the wrong length.
    #[error("length {actual}, expected {expected}")]
    BadLength {
        /// The value's length.
        actual: usize,
        /// What the attribute requires, in words.
        expected: &'static str,
    },
    /// A text value is not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// A text value has more characters or bytes than the RFC allows.
    #[error("too long: {actual} {unit}, at most {max}")]
    TooLong {
        /// The length found.
        actual: usize,
        /// The limit.
        max: usize,
        /// "bytes" or "characters".
        unit: &'static str,
    },
    /// An address family other than IPv4 (0x01) or IPv6 (0x02).
    #[error("unknown address family {0:#04x}")]
    UnknownAddressFamily(u8),
    /// An ERROR-CODE class outside 3..=6 or number outside 0..=99 (RFC 8489 §14.8).
    #[error("error code class {class} number {number} out of range")]
    BadErrorCode {
        /// The class (hundreds digit).
        class: u8,
        /// The number (0..=99).
        number: u8,
    },
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The message would exceed the 16-bit length field.
    #[error("message too long: {0} bytes after the header, at most 65535")]
    MessageTooLong(usize),
    /// An attribute value breaks the limits the RFC puts on it.
    #[error("attribute {attribute}: {error}")]
    Attribute {
        /// The attribute's type.
        attribute: AttributeType,
        /// What is wrong with it.
        error: AttributeError,
    },
}

/// Why MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 did not verify (RFC 8489 §14.5, §14.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The message carries neither integrity attribute.
    #[error("message has no MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256")]
    Missing,
    /// The HMAC does not match: wrong key or altered message.
    #[error("{0} mismatch")]
    Mismatch(AttributeType),
}
