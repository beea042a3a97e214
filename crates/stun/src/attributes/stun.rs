//! The attributes of STUN itself (RFC 8489 §14).

use super::{
    address_attribute, check_text, decode_text, exact, text_attribute, AttributeType,
    DecodeAttribute, EncodeAttribute,
};
use crate::error::AttributeError;
use crate::message::{padded, TransactionId};

/// RFC 8489 §14.9, §14.10, §14.14: "fewer than 128 characters (which can be
/// as long as 763 bytes)".
const SHORT_TEXT_CHARS: Option<usize> = Some(127);
const SHORT_TEXT_BYTES: usize = 763;

address_attribute!(
    /// MAPPED-ADDRESS: the reflexive address, unXORed, for RFC 3489 clients (RFC 8489 §14.1).
    MappedAddress, MAPPED_ADDRESS, xor = false
);
address_attribute!(
    /// XOR-MAPPED-ADDRESS: the client's reflexive transport address (RFC 8489 §14.2).
    XorMappedAddress, XOR_MAPPED_ADDRESS, xor = true
);
address_attribute!(
    /// ALTERNATE-SERVER: where a 300 (Try Alternate) response sends the client (RFC 8489 §14.15).
    AlternateServer, ALTERNATE_SERVER, xor = false
);
text_attribute!(
    /// USERNAME: "fewer than 509 bytes" of UTF-8 (RFC 8489 §14.3).
    Username, USERNAME, max_bytes = 508, max_chars = None
);
text_attribute!(
    /// REALM: the long-term credential realm (RFC 8489 §14.9).
    Realm, REALM, max_bytes = SHORT_TEXT_BYTES, max_chars = SHORT_TEXT_CHARS
);
text_attribute!(
    /// NONCE: the server's nonce for long-term credentials (RFC 8489 §14.10).
    Nonce, NONCE, max_bytes = SHORT_TEXT_BYTES, max_chars = SHORT_TEXT_CHARS
);
text_attribute!(
    /// SOFTWARE: a description of the sender's software (RFC 8489 §14.14).
    Software, SOFTWARE, max_bytes = SHORT_TEXT_BYTES, max_chars = SHORT_TEXT_CHARS
);
text_attribute!(
    /// ALTERNATE-DOMAIN: the name to check the alternate server's certificate
    /// against, at most 255 bytes (RFC 8489 §14.16).
    AlternateDomain, ALTERNATE_DOMAIN, max_bytes = 255, max_chars = None
);

/// USERHASH: SHA-256 of the username and realm, for anonymity (RFC 8489 §14.4).
/// See [`crate::userhash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Userhash(pub [u8; 32]);

impl DecodeAttribute<'_> for Userhash {
    const TYPE: AttributeType = AttributeType::USERHASH;
    fn decode(value: &[u8], _: &TransactionId) -> Result<Self, AttributeError> {
        exact::<32>(value, "32").map(Userhash)
    }
}

impl EncodeAttribute for Userhash {
    const TYPE: AttributeType = AttributeType::USERHASH;
    fn value_len(&self) -> Result<usize, AttributeError> {
        Ok(32)
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(&self.0);
    }
}

/// ERROR-CODE: a number 300..=699 and a reason phrase (RFC 8489 §14.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode<'a> {
    /// The code, e.g. 401; the class is its hundreds digit.
    pub code: u16,
    /// A human-readable reason.
    pub reason: &'a str,
}

impl<'a> ErrorCode<'a> {
    /// 300 Try Alternate.
    pub const TRY_ALTERNATE: u16 = 300;
    /// 400 Bad Request.
    pub const BAD_REQUEST: u16 = 400;
    /// 401 Unauthenticated.
    pub const UNAUTHENTICATED: u16 = 401;
    /// 403 Forbidden (RFC 8656).
    pub const FORBIDDEN: u16 = 403;
    /// 420 Unknown Attribute.
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    /// 437 Allocation Mismatch (RFC 8656).
    pub const ALLOCATION_MISMATCH: u16 = 437;
    /// 438 Stale Nonce.
    pub const STALE_NONCE: u16 = 438;
    /// 440 Address Family not Supported (RFC 8656).
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: u16 = 440;
    /// 441 Wrong Credentials (RFC 8656).
    pub const WRONG_CREDENTIALS: u16 = 441;
    /// 442 Unsupported Transport Protocol (RFC 8656).
    pub const UNSUPPORTED_TRANSPORT_PROTOCOL: u16 = 442;
    /// 443 Peer Address Family Mismatch (RFC 8656).
    pub const PEER_ADDRESS_FAMILY_MISMATCH: u16 = 443;
    /// 446 Connection Already Exists (RFC 6062 §6.3).
    pub const CONNECTION_ALREADY_EXISTS: u16 = 446;
    /// 447 Connection Timeout or Failure (RFC 6062 §6.3).
    pub const CONNECTION_TIMEOUT_OR_FAILURE: u16 = 447;
    /// 486 Allocation Quota Reached (RFC 8656).
    pub const ALLOCATION_QUOTA_REACHED: u16 = 486;
    /// 487 Role Conflict (RFC 8445).
    pub const ROLE_CONFLICT: u16 = 487;
    /// 500 Server Error.
    pub const SERVER_ERROR: u16 = 500;
    /// 508 Insufficient Capacity (RFC 8656).
    pub const INSUFFICIENT_CAPACITY: u16 = 508;

    /// An error code with a reason phrase.
    pub fn new(code: u16, reason: &'a str) -> Self {
        ErrorCode { code, reason }
    }
}

/// The class/number pair shared by ERROR-CODE and ADDRESS-ERROR-CODE.
pub(crate) fn decode_code(class_byte: u8, number: u8) -> Result<u16, AttributeError> {
    let class = class_byte & 0x07;
    if !(3..=6).contains(&class) || number > 99 {
        return Err(AttributeError::BadErrorCode { class, number });
    }
    Ok(u16::from(class) * 100 + u16::from(number))
}

pub(crate) fn check_code(code: u16) -> Result<(), AttributeError> {
    if (300..700).contains(&code) {
        Ok(())
    } else {
        Err(AttributeError::BadErrorCode {
            class: (code / 100).min(255) as u8,
            number: (code % 100) as u8,
        })
    }
}

impl<'a> DecodeAttribute<'a> for ErrorCode<'a> {
    const TYPE: AttributeType = AttributeType::ERROR_CODE;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        if value.len() < 4 {
            return Err(AttributeError::BadLength {
                actual: value.len(),
                expected: "at least 4",
            });
        }
        let code = decode_code(value[2], value[3])?;
        let reason = decode_text(&value[4..], SHORT_TEXT_BYTES, SHORT_TEXT_CHARS)?;
        Ok(ErrorCode { code, reason })
    }
}

impl EncodeAttribute for ErrorCode<'_> {
    const TYPE: AttributeType = AttributeType::ERROR_CODE;
    fn value_len(&self) -> Result<usize, AttributeError> {
        check_code(self.code)?;
        check_text(self.reason, SHORT_TEXT_BYTES, SHORT_TEXT_CHARS)?;
        Ok(4 + self.reason.len())
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].fill(0);
        out[2] = (self.code / 100) as u8;
        out[3] = (self.code % 100) as u8;
        out[4..].copy_from_slice(self.reason.as_bytes());
    }
}

/// UNKNOWN-ATTRIBUTES: the comprehension-required types a 420 response
/// did not understand (RFC 8489 §14.13). Borrowed; iterate with [`Self::iter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnknownAttributes<'a>(&'a [u8]);

impl<'a> UnknownAttributes<'a> {
    /// The listed attribute types.
    pub fn iter(&self) -> impl Iterator<Item = AttributeType> + 'a {
        self.0
            .chunks_exact(2)
            .map(|c| AttributeType(u16::from_be_bytes([c[0], c[1]])))
    }
}

impl<'a> DecodeAttribute<'a> for UnknownAttributes<'a> {
    const TYPE: AttributeType = AttributeType::UNKNOWN_ATTRIBUTES;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        if value.len() % 2 != 0 {
            return Err(AttributeError::BadLength {
                actual: value.len(),
                expected: "a multiple of 2",
            });
        }
        Ok(UnknownAttributes(value))
    }
}

/// The types to list in an UNKNOWN-ATTRIBUTES attribute being encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAttributeList<'a>(pub &'a [AttributeType]);

impl EncodeAttribute for UnknownAttributeList<'_> {
    const TYPE: AttributeType = AttributeType::UNKNOWN_ATTRIBUTES;
    fn value_len(&self) -> Result<usize, AttributeError> {
        Ok(self.0.len() * 2)
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        for (chunk, t) in out.chunks_exact_mut(2).zip(self.0) {
            chunk.copy_from_slice(&t.0.to_be_bytes());
        }
    }
}

/// PASSWORD-ALGORITHM: the algorithm the client chose, with its parameters
/// (RFC 8489 §14.12). Also one entry of PASSWORD-ALGORITHMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasswordAlgorithmParams<'a> {
    /// The algorithm number (1 MD5, 2 SHA-256; RFC 8489 §18.5).
    pub algorithm: u16,
    /// Its parameters (none for MD5 and SHA-256).
    pub parameters: &'a [u8],
}

impl<'a> PasswordAlgorithmParams<'a> {
    /// Reads one entry; returns it and the bytes it used, padding included.
    fn read(value: &'a [u8]) -> Result<(Self, usize), AttributeError> {
        let bad = || AttributeError::BadLength {
            actual: value.len(),
            expected: "4 bytes and the parameters' padded length",
        };
        let header = value.get(..4).ok_or_else(bad)?;
        let algorithm = u16::from_be_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let parameters = value.get(4..4 + length).ok_or_else(bad)?;
        let used = (4 + padded(length)).min(value.len());
        Ok((
            PasswordAlgorithmParams {
                algorithm,
                parameters,
            },
            used,
        ))
    }

    fn encoded_len(&self) -> usize {
        4 + padded(self.parameters.len())
    }

    fn write(&self, out: &mut [u8]) {
        out[..2].copy_from_slice(&self.algorithm.to_be_bytes());
        out[2..4].copy_from_slice(&(self.parameters.len() as u16).to_be_bytes());
        out[4..4 + self.parameters.len()].copy_from_slice(self.parameters);
        out[4 + self.parameters.len()..].fill(0);
    }
}

impl<'a> DecodeAttribute<'a> for PasswordAlgorithmParams<'a> {
    const TYPE: AttributeType = AttributeType::PASSWORD_ALGORITHM;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let (params, _) = PasswordAlgorithmParams::read(value)?;
        Ok(params)
    }
}

impl EncodeAttribute for PasswordAlgorithmParams<'_> {
    const TYPE: AttributeType = AttributeType::PASSWORD_ALGORITHM;
    fn value_len(&self) -> Result<usize, AttributeError> {
        Ok(4 + self.parameters.len())
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].copy_from_slice(&self.algorithm.to_be_bytes());
        out[2..4].copy_from_slice(&(self.parameters.len() as u16).to_be_bytes());
        out[4..].copy_from_slice(self.parameters);
    }
}

/// PASSWORD-ALGORITHMS: the algorithms a server accepts, in its order of
/// preference (RFC 8489 §14.11). Decoding checks every entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasswordAlgorithms<'a>(&'a [u8]);

impl<'a> PasswordAlgorithms<'a> {
    /// The listed algorithms.
    pub fn iter(&self) -> impl Iterator<Item = PasswordAlgorithmParams<'a>> + 'a {
        let mut rest = self.0;
        std::iter::from_fn(move || {
            let (params, used) = PasswordAlgorithmParams::read(rest).ok()?;
            rest = &rest[used..];
            Some(params)
        })
    }
}

impl<'a> DecodeAttribute<'a> for PasswordAlgorithms<'a> {
    const TYPE: AttributeType = AttributeType::PASSWORD_ALGORITHMS;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let mut rest = value;
        while !rest.is_empty() {
            let (_, used) = PasswordAlgorithmParams::read(rest)?;
            rest = &rest[used..];
        }
        Ok(PasswordAlgorithms(value))
    }
}

/// The algorithms to list in a PASSWORD-ALGORITHMS attribute being encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordAlgorithmList<'a>(pub &'a [PasswordAlgorithmParams<'a>]);

impl EncodeAttribute for PasswordAlgorithmList<'_> {
    const TYPE: AttributeType = AttributeType::PASSWORD_ALGORITHMS;
    fn value_len(&self) -> Result<usize, AttributeError> {
        Ok(self
            .0
            .iter()
            .map(PasswordAlgorithmParams::encoded_len)
            .sum())
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        let mut at = 0;
        for entry in self.0 {
            let len = entry.encoded_len();
            entry.write(&mut out[at..at + len]);
            at += len;
        }
    }
}
