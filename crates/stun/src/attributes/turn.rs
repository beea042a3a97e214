//! The attributes TURN adds (RFC 8656 §18).

use super::{
    address_attribute, check_text, decode_text, exact, flag_attribute, integer_attribute,
    stun::{check_code, decode_code},
    AttributeType, DecodeAttribute, EncodeAttribute,
};
use crate::address::AddressFamily;
use crate::error::AttributeError;
use crate::message::TransactionId;

address_attribute!(
    /// XOR-PEER-ADDRESS: the peer's address as the server sees it (RFC 8656 §18.3).
    XorPeerAddress, XOR_PEER_ADDRESS, xor = true
);
address_attribute!(
    /// XOR-RELAYED-ADDRESS: the relayed transport address the server
    /// allocated (RFC 8656 §18.5).
    XorRelayedAddress, XOR_RELAYED_ADDRESS, xor = true
);
integer_attribute!(
    /// LIFETIME: seconds until the allocation expires (RFC 8656 §18.2).
    Lifetime(u32), LIFETIME
);
integer_attribute!(
    /// RESERVATION-TOKEN: names a port the server keeps for a later
    /// allocation (RFC 8656 §18.10).
    ReservationToken(u64), RESERVATION_TOKEN
);
integer_attribute!(
    /// CONNECTION-ID: names a TCP connection between the server and a peer
    /// of a TCP allocation (RFC 6062 §6.2.1).
    ConnectionId(u32), CONNECTION_ID
);
flag_attribute!(
    /// DONT-FRAGMENT: set the DF bit on relayed packets (RFC 8656 §18.9).
    DontFragment, DONT_FRAGMENT
);

/// CHANNEL-NUMBER: 0x4000..=0x4FFF, then two reserved bytes (RFC 8656 §18.1).
/// The range is the server's to check (it answers 400), not the codec's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelNumber(pub u16);

impl DecodeAttribute<'_> for ChannelNumber {
    const TYPE: AttributeType = AttributeType::CHANNEL_NUMBER;
    fn decode(value: &[u8], _: &TransactionId) -> Result<Self, AttributeError> {
        exact::<4>(value, "4").map(|b| ChannelNumber(u16::from_be_bytes([b[0], b[1]])))
    }
}

impl EncodeAttribute for ChannelNumber {
    const TYPE: AttributeType = AttributeType::CHANNEL_NUMBER;
    fn value_len(&self) -> Result<usize, AttributeError> {
        Ok(4)
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].copy_from_slice(&self.0.to_be_bytes());
        out[2..].fill(0);
    }
}

/// DATA: the application data of a Send or Data indication (RFC 8656 §18.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Data<'a>(pub &'a [u8]);

impl<'a> DecodeAttribute<'a> for Data<'a> {
    const TYPE: AttributeType = AttributeType::DATA;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        Ok(Data(value))
    }
}

impl EncodeAttribute for Data<'_> {
    const TYPE: AttributeType = AttributeType::DATA;
    fn value_len(&self) -> Result<usize, AttributeError> {
        Ok(self.0.len())
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(self.0);
    }
}

/// Declares a one-family attribute: the family byte, then three reserved bytes.
macro_rules! family_attribute {
    ($(#[$doc:meta])* $name:ident, $type:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub AddressFamily);

        impl DecodeAttribute<'_> for $name {
            const TYPE: AttributeType = AttributeType::$type;
            fn decode(value: &[u8], _: &TransactionId) -> Result<Self, AttributeError> {
                let b = exact::<4>(value, "4")?;
                AddressFamily::from_byte(b[0]).map($name)
            }
        }

        impl EncodeAttribute for $name {
            const TYPE: AttributeType = AttributeType::$type;
            fn value_len(&self) -> Result<usize, AttributeError> {
                Ok(4)
            }
            fn write_value(&self, out: &mut [u8], _: &TransactionId) {
                out[0] = self.0.to_byte();
                out[1..].fill(0);
            }
        }
    };
}

family_attribute!(
    /// REQUESTED-ADDRESS-FAMILY: the family of the relayed address wanted
    /// (RFC 8656 §18.6).
    RequestedAddressFamily, REQUESTED_ADDRESS_FAMILY
);
family_attribute!(
    /// ADDITIONAL-ADDRESS-FAMILY: ask for a second, IPv6, relayed address
    /// (RFC 8656 §18.11).
    AdditionalAddressFamily, ADDITIONAL_ADDRESS_FAMILY
);

/// EVEN-PORT: allocate an even port, optionally reserving the next one
/// (RFC 8656 §18.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvenPort {
    /// The R bit: also reserve the next higher port.
    pub reserve_next: bool,
}

impl DecodeAttribute<'_> for EvenPort {
    const TYPE: AttributeType = AttributeType::EVEN_PORT;
    fn decode(value: &[u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let b = exact::<1>(value, "1")?;
        Ok(EvenPort {
            reserve_next: b[0] & 0x80 != 0,
        })
    }
}

impl EncodeAttribute for EvenPort {
    const TYPE: AttributeType = AttributeType::EVEN_PORT;
    fn value_len(&self) -> Result<usize, AttributeError> {
        Ok(1)
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[0] = if self.reserve_next { 0x80 } else { 0 };
    }
}

/// REQUESTED-TRANSPORT: the IP protocol number of the allocation's relay,
/// then three reserved bytes (RFC 8656 §18.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestedTransport(pub u8);

impl RequestedTransport {
    /// UDP (17).
    pub const UDP: RequestedTransport = RequestedTransport(17);
    /// TCP (6), for RFC 6062 allocations.
    pub const TCP: RequestedTransport = RequestedTransport(6);
}

impl DecodeAttribute<'_> for RequestedTransport {
    const TYPE: AttributeType = AttributeType::REQUESTED_TRANSPORT;
    fn decode(value: &[u8], _: &TransactionId) -> Result<Self, AttributeError> {
        exact::<4>(value, "4").map(|b| RequestedTransport(b[0]))
    }
}

impl EncodeAttribute for RequestedTransport {
    const TYPE: AttributeType = AttributeType::REQUESTED_TRANSPORT;
    fn value_len(&self) -> Result<usize, AttributeError> {
        Ok(4)
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[0] = self.0;
        out[1..].fill(0);
    }
}

/// ADDRESS-ERROR-CODE: why one family of a dual allocation failed
/// (RFC 8656 §18.12): family, 13 reserved bits, class, number, reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressErrorCode<'a> {
    /// The family that failed.
    pub family: AddressFamily,
    /// The error code, 300..=699.
    pub code: u16,
    /// A human-readable reason.
    pub reason: &'a str,
}

impl<'a> DecodeAttribute<'a> for AddressErrorCode<'a> {
    const TYPE: AttributeType = AttributeType::ADDRESS_ERROR_CODE;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        if value.len() < 4 {
            return Err(AttributeError::BadLength {
                actual: value.len(),
                expected: "at least 4",
            });
        }
        Ok(AddressErrorCode {
            family: AddressFamily::from_byte(value[0])?,
            code: decode_code(value[2], value[3])?,
            reason: decode_text(&value[4..], 763, Some(127))?,
        })
    }
}

impl EncodeAttribute for AddressErrorCode<'_> {
    const TYPE: AttributeType = AttributeType::ADDRESS_ERROR_CODE;
    fn value_len(&self) -> Result<usize, AttributeError> {
        check_code(self.code)?;
        check_text(self.reason, 763, Some(127))?;
        Ok(4 + self.reason.len())
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[0] = self.family.to_byte();
        out[1] = 0;
        out[2] = (self.code / 100) as u8;
        out[3] = (self.code % 100) as u8;
        out[4..].copy_from_slice(self.reason.as_bytes());
    }
}

/// ICMP: an ICMP error the server received for relayed data (RFC 8656
/// §18.13): 16 reserved bits, a 7-bit type, a 9-bit code, 4 bytes of data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmp {
    /// ICMP type (7 bits).
    pub icmp_type: u8,
    /// ICMP code (9 bits).
    pub code: u16,
    /// The MTU for "packet too big" / "fragmentation needed", else zero.
    pub error_data: u32,
}

impl DecodeAttribute<'_> for Icmp {
    const TYPE: AttributeType = AttributeType::ICMP;
    fn decode(value: &[u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let b = exact::<8>(value, "8")?;
        let type_and_code = u16::from_be_bytes([b[2], b[3]]);
        Ok(Icmp {
            icmp_type: (type_and_code >> 9) as u8,
            code: type_and_code & 0x01FF,
            error_data: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

impl EncodeAttribute for Icmp {
    const TYPE: AttributeType = AttributeType::ICMP;
    fn value_len(&self) -> Result<usize, AttributeError> {
        if self.icmp_type > 0x7F || self.code > 0x01FF {
            return Err(AttributeError::BadLength {
                actual: 8,
                expected: "a 7-bit type and a 9-bit code",
            });
        }
        Ok(8)
    }
    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].fill(0);
        let type_and_code = (u16::from(self.icmp_type) << 9) | self.code;
        out[2..4].copy_from_slice(&type_and_code.to_be_bytes());
        out[4..].copy_from_slice(&self.error_data.to_be_bytes());
    }
}
