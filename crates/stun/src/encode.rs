//! Writing messages into a caller's buffer (RFC 8489 §5, §14).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::attributes::{AttributeType, EncodeAttribute};
use crate::credentials::IntegrityKey;
use crate::error::EncodeError;
use crate::message::{
    message_type, padded, Class, Method, TransactionId, FINGERPRINT_XOR, HEADER_LEN, MAGIC_COOKIE,
};

/// Writes one message at the end of a `Vec<u8>` the caller owns and reuses.
///
/// The header's length field is kept up to date after every attribute, so
/// MESSAGE-INTEGRITY and FINGERPRINT, added last, cover the right bytes.
///
/// ```
/// use realtimer_stun::{attributes::Username, Class, IntegrityKey, MessageEncoder, Method, TransactionId};
/// let mut buf = Vec::with_capacity(1500);
/// let key = IntegrityKey::short_term("remote-pwd").unwrap();
/// let mut enc = MessageEncoder::new(&mut buf, Class::Request, Method::BINDING, TransactionId::new([1; 12]));
/// enc.add(&Username("remote:local")).unwrap();
/// enc.add_message_integrity(&key).unwrap();
/// let len = enc.add_fingerprint().unwrap();
/// assert_eq!(len, buf.len());
/// ```
#[derive(Debug)]
pub struct MessageEncoder<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
    transaction_id: TransactionId,
    padding: u8,
}

impl<'b> MessageEncoder<'b> {
    /// Starts a message at the end of `buf` with its header.
    pub fn new(
        buf: &'b mut Vec<u8>,
        class: Class,
        method: Method,
        transaction_id: TransactionId,
    ) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&message_type(class, method).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(transaction_id.as_bytes());
        MessageEncoder {
            buf,
            start,
            transaction_id,
            padding: 0,
        }
    }

    /// The byte used to pad attributes to 4 bytes. RFC 8489 §14 says zero,
    /// which is the default; RFC 5389 allowed any value, and some encoders
    /// (and the RFC 5769 vectors) use spaces.
    pub fn with_padding_byte(mut self, padding: u8) -> Self {
        self.padding = padding;
        self
    }

    /// Appends a typed attribute.
    pub fn add<A: EncodeAttribute>(&mut self, attribute: &A) -> Result<&mut Self, EncodeError> {
        let len = attribute
            .value_len()
            .map_err(|error| EncodeError::Attribute {
                attribute: A::TYPE,
                error,
            })?;
        let at = self.reserve(A::TYPE, len)?;
        attribute.write_value(&mut self.buf[at..at + len], &self.transaction_id);
        Ok(self)
    }

    /// Appends an attribute given as raw bytes (for types this crate does not
    /// know).
    pub fn add_raw(
        &mut self,
        attribute_type: AttributeType,
        value: &[u8],
    ) -> Result<&mut Self, EncodeError> {
        let at = self.reserve(attribute_type, value.len())?;
        self.buf[at..at + value.len()].copy_from_slice(value);
        Ok(self)
    }

    /// Appends MESSAGE-INTEGRITY, HMAC-SHA1 over the message so far (RFC 8489 §14.5).
    pub fn add_message_integrity(&mut self, key: &IntegrityKey) -> Result<&mut Self, EncodeError> {
        let at = self.reserve(AttributeType::MESSAGE_INTEGRITY, 20)?;
        let mut mac =
            Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
        mac.update(&self.buf[self.start..at - 4]);
        let digest = mac.finalize().into_bytes();
        self.buf[at..at + 20].copy_from_slice(&digest);
        Ok(self)
    }

    /// Appends MESSAGE-INTEGRITY-SHA256, the full 32-byte HMAC-SHA256 over
    /// the message so far (RFC 8489 §14.6).
    pub fn add_message_integrity_sha256(
        &mut self,
        key: &IntegrityKey,
    ) -> Result<&mut Self, EncodeError> {
        let at = self.reserve(AttributeType::MESSAGE_INTEGRITY_SHA256, 32)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(&self.buf[self.start..at - 4]);
        let digest = mac.finalize().into_bytes();
        self.buf[at..at + 32].copy_from_slice(&digest);
        Ok(self)
    }

    /// Appends FINGERPRINT, which must be last (RFC 8489 §14.7), and returns
    /// the message's length.
    pub fn add_fingerprint(mut self) -> Result<usize, EncodeError> {
        let at = self.reserve(AttributeType::FINGERPRINT, 4)?;
        let crc = crc32fast::hash(&self.buf[self.start..at - 4]) ^ FINGERPRINT_XOR;
        self.buf[at..at + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(self.finish())
    }

    /// Ends the message and returns its length in bytes.
    pub fn finish(self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends an attribute header and room for a padded value, updates the
    /// message length, and returns the value's offset.
    fn reserve(&mut self, attribute_type: AttributeType, len: usize) -> Result<usize, EncodeError> {
        let body = self.buf.len() - self.start - HEADER_LEN;
        let new_body = body + 4 + padded(len);
        if len > usize::from(u16::MAX) || new_body > usize::from(u16::MAX) {
            return Err(EncodeError::MessageTooLong(new_body));
        }
        self.buf.extend_from_slice(&attribute_type.0.to_be_bytes());
        self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        let at = self.buf.len();
        self.buf.resize(at + len, 0);
        self.buf.resize(at + padded(len), self.padding);
        let length_field = self.start + 2;
        self.buf[length_field..length_field + 2].copy_from_slice(&(new_body as u16).to_be_bytes());
        Ok(at)
    }
}
