//! The STUN header and a borrowed view of a whole message (RFC 8489 §5, §14).

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::attributes::{Attribute, AttributeType, DecodeAttribute};
use crate::credentials::IntegrityKey;
use crate::error::{DecodeError, IntegrityError};

/// RFC 8489 §5: the fixed value in bytes 4..8 of every message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header in bytes.
pub const HEADER_LEN: usize = 20;
/// The most attributes one message may carry before decoding refuses it.
///
/// A 1500-byte datagram holds at most 370 empty attributes; real messages carry
/// fewer than 20. The bound keeps hostile messages from costing more than a
/// short walk.
pub const MAX_ATTRIBUTES: usize = 64;

/// RFC 8489 §14.7: FINGERPRINT is the CRC-32 of the message XOR this value.
pub(crate) const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// The 96-bit transaction id (RFC 8489 §5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId([u8; 12]);

impl TransactionId {
    /// A transaction id from its bytes. RFC 8489 §5 asks that they be
    /// cryptographically random; the caller owns the random source.
    pub const fn new(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }

    /// The id's bytes.
    pub const fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The message class (RFC 8489 §5): two bits spread through the message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request, answered by a success or error response.
    Request,
    /// An indication, never answered.
    Indication,
    /// A success response.
    SuccessResponse,
    /// An error response.
    ErrorResponse,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::SuccessResponse => 0b10,
            Class::ErrorResponse => 0b11,
        }
    }

    fn from_bits(bits: u16) -> Self {
        match bits & 0b11 {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::SuccessResponse,
            _ => Class::ErrorResponse,
        }
    }

    /// True for success and error responses.
    pub fn is_response(self) -> bool {
        matches!(self, Class::SuccessResponse | Class::ErrorResponse)
    }
}

/// A 12-bit STUN method (RFC 8489 §18.2, RFC 8656 §17, RFC 6062 §6.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Method(u16);

impl Method {
    /// Binding (RFC 8489).
    pub const BINDING: Method = Method(0x001);
    /// Allocate (RFC 8656 §7).
    pub const ALLOCATE: Method = Method(0x003);
    /// Refresh (RFC 8656 §8).
    pub const REFRESH: Method = Method(0x004);
    /// Send indication (RFC 8656 §11).
    pub const SEND: Method = Method(0x006);
    /// Data indication (RFC 8656 §11).
    pub const DATA: Method = Method(0x007);
    /// CreatePermission (RFC 8656 §10).
    pub const CREATE_PERMISSION: Method = Method(0x008);
    /// ChannelBind (RFC 8656 §12).
    pub const CHANNEL_BIND: Method = Method(0x009);
    /// Connect (RFC 6062 §4.3).
    pub const CONNECT: Method = Method(0x00A);
    /// ConnectionBind (RFC 6062 §4.4).
    pub const CONNECTION_BIND: Method = Method(0x00B);
    /// ConnectionAttempt (RFC 6062 §4.5).
    pub const CONNECTION_ATTEMPT: Method = Method(0x00C);

    /// A method from its number; `None` above the 12-bit range.
    pub const fn new(value: u16) -> Option<Self> {
        if value <= 0x0FFF {
            Some(Method(value))
        } else {
            None
        }
    }

    /// The method's number.
    pub const fn value(self) -> u16 {
        self.0
    }

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Method::BINDING => "Binding",
            Method::ALLOCATE => "Allocate",
            Method::REFRESH => "Refresh",
            Method::SEND => "Send",
            Method::DATA => "Data",
            Method::CREATE_PERMISSION => "CreatePermission",
            Method::CHANNEL_BIND => "ChannelBind",
            Method::CONNECT => "Connect",
            Method::CONNECTION_BIND => "ConnectionBind",
            Method::CONNECTION_ATTEMPT => "ConnectionAttempt",
            _ => return None,
        })
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Method({:#05x})", self.0),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// RFC 8489 §5: the class bits C1 and C0 sit at bits 8 and 4 of the type,
/// between the method's bits M11..M7, M6..M4 and M3..M0.
pub(crate) fn message_type(class: Class, method: Method) -> u16 {
    let m = method.0;
    let c = class.bits();
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

fn split_message_type(t: u16) -> (Class, Method) {
    let method = (t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80);
    let class = ((t >> 4) & 1) | ((t >> 7) & 2);
    (Class::from_bits(class), Method(method))
}

/// A quick test for demultiplexing (RFC 7983 §7): the first byte is 0..=3
/// and bytes 4..8 hold the magic cookie.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] < 4 && datagram[4..8] == MAGIC_COOKIE.to_be_bytes()
}

/// The receiver's ICE ufrag that a STUN message's USERNAME names:
/// "LFRAG:RFRAG" as the sender writes it, the receiver's first (RFC 8445
/// §7.2.2). What a socket shared by many ICE agents routes checks by.
pub fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let message = Message::decode(datagram).ok()?;
    let crate::attributes::Username(name) =
        message.get::<crate::attributes::Username<'_>>().ok()??;
    name.split_once(':').map(|(local, _)| local)
}

/// One attribute as it stands in the message: type and unpadded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// The attribute type.
    pub attribute_type: AttributeType,
    /// The value, without padding.
    pub value: &'a [u8],
}

/// A decoded STUN message that borrows the datagram it came from.
///
/// Decoding checks the header, walks every attribute once, and checks
/// FINGERPRINT when present. Attributes after MESSAGE-INTEGRITY other than
/// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are ignored, as RFC 8489 §14.5
/// says, and so are attributes after MESSAGE-INTEGRITY-SHA256 other than
/// FINGERPRINT (§14.6).
#[derive(Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    class: Class,
    method: Method,
    transaction_id: TransactionId,
    /// End of the attributes that count: the offset of the first integrity
    /// attribute or FINGERPRINT, or the end of the message.
    attributes_end: usize,
    /// Offset of the MESSAGE-INTEGRITY attribute header.
    integrity: Option<usize>,
    /// Offset of the MESSAGE-INTEGRITY-SHA256 attribute header.
    integrity_sha256: Option<usize>,
    has_fingerprint: bool,
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_struct("Message");
        list.field("class", &self.class)
            .field("method", &self.method)
            .field("transaction_id", &self.transaction_id);
        let attributes: Vec<AttributeType> =
            self.raw_attributes().map(|a| a.attribute_type).collect();
        list.field("attributes", &attributes)
            .field("integrity", &self.integrity.is_some())
            .field("integrity_sha256", &self.integrity_sha256.is_some())
            .field("fingerprint", &self.has_fingerprint)
            .finish()
    }
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

impl<'a> Message<'a> {
    /// Decodes one whole message; `bytes` must be exactly the message (one UDP
    /// datagram, or one frame cut by [`Message::frame_len`] from a stream).
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::TruncatedHeader { len: bytes.len() });
        }
        if bytes[0] & 0xC0 != 0 {
            return Err(DecodeError::LeadingBitsSet(bytes[0] >> 6));
        }
        let cookie = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if cookie != MAGIC_COOKIE {
            return Err(DecodeError::BadMagicCookie(cookie));
        }
        let length = read_u16(bytes, 2);
        if length % 4 != 0 {
            return Err(DecodeError::LengthNotMultipleOfFour(length));
        }
        let available = bytes.len() - HEADER_LEN;
        if usize::from(length) != available {
            return Err(DecodeError::LengthMismatch {
                declared: usize::from(length),
                available,
            });
        }
        let (class, method) = split_message_type(read_u16(bytes, 0));
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&bytes[8..HEADER_LEN]);

        let mut message = Message {
            bytes,
            class,
            method,
            transaction_id: TransactionId(tid),
            attributes_end: bytes.len(),
            integrity: None,
            integrity_sha256: None,
            has_fingerprint: false,
        };
        message.walk_attributes()?;
        Ok(message)
    }

    /// The length of the message at the start of a stream buffer (STUN over
    /// TCP or TLS, RFC 8489 §6.2.2), once its header has arrived.
    pub fn frame_len(stream: &[u8]) -> Option<usize> {
        (stream.len() >= 4).then(|| HEADER_LEN + usize::from(read_u16(stream, 2)))
    }

    /// One pass over the attributes: structure, order rules, FINGERPRINT.
    fn walk_attributes(&mut self) -> Result<(), DecodeError> {
        let bytes = self.bytes;
        let end = bytes.len();
        let mut offset = HEADER_LEN;
        let mut count = 0usize;
        // `end` is a multiple of 4 (checked in `decode`) and so is every
        // `offset`: a whole 4-byte attribute header always remains.
        while offset < end {
            let attribute = AttributeType(read_u16(bytes, offset));
            let length = read_u16(bytes, offset + 2);
            let value_end = offset + 4 + usize::from(length);
            if value_end > end {
                return Err(DecodeError::AttributeOverrun {
                    attribute,
                    offset,
                    length,
                });
            }
            // Both are multiples of 4, so the padding fits wherever the value does.
            let padded_end = offset + 4 + padded(usize::from(length));
            count += 1;
            if count > MAX_ATTRIBUTES {
                return Err(DecodeError::TooManyAttributes(MAX_ATTRIBUTES));
            }
            let value = &bytes[offset + 4..value_end];
            match attribute {
                AttributeType::FINGERPRINT => {
                    if padded_end < end {
                        let attribute = AttributeType(read_u16(bytes, padded_end));
                        return Err(DecodeError::AttributeAfterFingerprint { attribute });
                    }
                    let received = fixed_value::<4>(attribute, value)?;
                    let received = u32::from_be_bytes(received);
                    let computed = crc32fast::hash(&bytes[..offset]) ^ FINGERPRINT_XOR;
                    if received != computed {
                        return Err(DecodeError::FingerprintMismatch { received, computed });
                    }
                    self.has_fingerprint = true;
                    self.attributes_end = self.attributes_end.min(offset);
                }
                AttributeType::MESSAGE_INTEGRITY
                    if self.integrity.is_none() && self.integrity_sha256.is_none() =>
                {
                    fixed_value::<20>(attribute, value)?;
                    self.integrity = Some(offset);
                    self.attributes_end = offset;
                }
                AttributeType::MESSAGE_INTEGRITY_SHA256 if self.integrity_sha256.is_none() => {
                    // RFC 8489 §14.6: 16 to 32 bytes, a multiple of 4.
                    if !(16..=32).contains(&value.len()) || value.len() % 4 != 0 {
                        return Err(DecodeError::Attribute {
                            attribute,
                            error: crate::AttributeError::BadLength {
                                actual: value.len(),
                                expected: "16 to 32, a multiple of 4",
                            },
                        });
                    }
                    self.integrity_sha256 = Some(offset);
                    self.attributes_end = self.attributes_end.min(offset);
                }
                _ => {}
            }
            offset = padded_end;
        }
        Ok(())
    }

    /// The message class.
    pub fn class(&self) -> Class {
        self.class
    }

    /// The message method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }

    /// The whole message as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True when the message ends with a FINGERPRINT that matched.
    pub fn has_fingerprint(&self) -> bool {
        self.has_fingerprint
    }

    /// True when the message carries MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some() || self.integrity_sha256.is_some()
    }

    /// The attributes that count, in order, up to the first integrity
    /// attribute or FINGERPRINT. Their structure was checked by `decode`.
    pub fn raw_attributes(&self) -> RawAttributes<'a> {
        RawAttributes {
            bytes: &self.bytes[..self.attributes_end],
            offset: HEADER_LEN,
        }
    }

    /// The attributes that count, each decoded by its type; unknown types
    /// come as [`Attribute::Unknown`].
    pub fn attributes(&self) -> impl Iterator<Item = Result<Attribute<'a>, DecodeError>> + 'a {
        let tid = self.transaction_id;
        self.raw_attributes().map(move |raw| {
            Attribute::decode(raw, &tid).map_err(|error| DecodeError::Attribute {
                attribute: raw.attribute_type,
                error,
            })
        })
    }

    /// The first attribute of type `A`, decoded; `Ok(None)` when absent.
    /// RFC 8489 §14: only the first of duplicate attributes needs processing.
    pub fn get<A: DecodeAttribute<'a>>(&self) -> Result<Option<A>, DecodeError> {
        match self.raw(A::TYPE) {
            None => Ok(None),
            Some(value) => A::decode(value, &self.transaction_id)
                .map(Some)
                .map_err(|error| DecodeError::Attribute {
                    attribute: A::TYPE,
                    error,
                }),
        }
    }

    /// The value of the first attribute of this type, if any.
    pub fn raw(&self, attribute_type: AttributeType) -> Option<&'a [u8]> {
        self.raw_attributes()
            .find(|a| a.attribute_type == attribute_type)
            .map(|a| a.value)
    }

    /// True when an attribute of this type is present.
    pub fn contains(&self, attribute_type: AttributeType) -> bool {
        self.raw(attribute_type).is_some()
    }

    /// Comprehension-required attributes (type below 0x8000) this crate does
    /// not know. RFC 8489 §6.3.1: a request carrying any gets a 420 error
    /// response listing them in UNKNOWN-ATTRIBUTES.
    pub fn unknown_comprehension_required(&self) -> impl Iterator<Item = AttributeType> + 'a {
        self.raw_attributes()
            .map(|a| a.attribute_type)
            .filter(|t| t.is_comprehension_required() && !t.is_known())
    }

    /// Checks MESSAGE-INTEGRITY-SHA256 when present, otherwise
    /// MESSAGE-INTEGRITY (RFC 8489 §9.1.3, §9.2.4).
    pub fn verify_integrity(&self, key: &IntegrityKey) -> Result<(), IntegrityError> {
        if let Some(offset) = self.integrity_sha256 {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
                .expect("HMAC accepts keys of any length");
            let value = self.integrity_value(offset);
            self.feed_integrity_input(&mut mac, offset);
            return mac
                .verify_truncated_left(value)
                .map_err(|_| IntegrityError::Mismatch(AttributeType::MESSAGE_INTEGRITY_SHA256));
        }
        if let Some(offset) = self.integrity {
            let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes())
                .expect("HMAC accepts keys of any length");
            self.feed_integrity_input(&mut mac, offset);
            return mac
                .verify_slice(self.integrity_value(offset))
                .map_err(|_| IntegrityError::Mismatch(AttributeType::MESSAGE_INTEGRITY));
        }
        Err(IntegrityError::Missing)
    }

    fn integrity_value(&self, offset: usize) -> &'a [u8] {
        let length = usize::from(read_u16(self.bytes, offset + 2));
        &self.bytes[offset + 4..offset + 4 + length]
    }

    /// RFC 8489 §14.5: the HMAC covers the message up to the integrity
    /// attribute, with the header's length field set as if that attribute
    /// were the last one.
    fn feed_integrity_input<M: Mac>(&self, mac: &mut M, offset: usize) {
        let value_len = usize::from(read_u16(self.bytes, offset + 2));
        let length_as_if_last = (offset + 4 + value_len - HEADER_LEN) as u16;
        mac.update(&self.bytes[..2]);
        mac.update(&length_as_if_last.to_be_bytes());
        mac.update(&self.bytes[4..offset]);
    }
}

/// Iterator over the attributes of a decoded message.
#[derive(Debug, Clone)]
pub struct RawAttributes<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = RawAttribute<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // `Message::decode` checked every header and length, so these reads stay
        // in bounds; `get` keeps that true even if it did not.
        let header = self.bytes.get(self.offset..self.offset + 4)?;
        let attribute_type = AttributeType(u16::from_be_bytes([header[0], header[1]]));
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let start = self.offset + 4;
        let value = self.bytes.get(start..start + length)?;
        self.offset = start + padded(length);
        Some(RawAttribute {
            attribute_type,
            value,
        })
    }
}

/// Length rounded up to a multiple of 4 (RFC 8489 §14).
pub(crate) fn padded(length: usize) -> usize {
    (length + 3) & !3
}

fn fixed_value<const N: usize>(
    attribute: AttributeType,
    value: &[u8],
) -> Result<[u8; N], DecodeError> {
    value.try_into().map_err(|_| DecodeError::Attribute {
        attribute,
        error: crate::AttributeError::BadLength {
            actual: value.len(),
            expected: match N {
                4 => "4",
                20 => "20",
                _ => "a fixed length",
            },
        },
    })
}
