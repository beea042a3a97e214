//! Address attribute values: MAPPED-ADDRESS and the XOR family (RFC 8489 §14.1, §14.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::AttributeError;
use crate::message::{TransactionId, MAGIC_COOKIE};

/// Address family byte of RFC 8489 §14.1.
const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

/// Length of an address value: 4 header bytes and 4 or 16 address bytes.
pub(crate) fn encoded_len(address: &SocketAddr) -> usize {
    match address {
        SocketAddr::V4(_) => 8,
        SocketAddr::V6(_) => 20,
    }
}

/// RFC 8489 §14.2: the port is XORed with the cookie's top 16 bits, an IPv4
/// address with the cookie, an IPv6 address with the cookie and the
/// transaction id.
fn xor_mask(transaction_id: &TransactionId) -> [u8; 16] {
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(transaction_id.as_bytes());
    mask
}

/// Writes an address value into `out` (exactly [`encoded_len`] bytes).
pub(crate) fn encode(out: &mut [u8], address: &SocketAddr, xor_with: Option<&TransactionId>) {
    let mask = xor_with.map(xor_mask).unwrap_or([0; 16]);
    out[0] = 0;
    let port = address.port() ^ u16::from_be_bytes([mask[0], mask[1]]);
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match address.ip() {
        IpAddr::V4(ip) => {
            out[1] = FAMILY_IPV4;
            for (i, b) in ip.octets().iter().enumerate() {
                out[4 + i] = b ^ mask[i];
            }
        }
        IpAddr::V6(ip) => {
            out[1] = FAMILY_IPV6;
            for (i, b) in ip.octets().iter().enumerate() {
                out[4 + i] = b ^ mask[i];
            }
        }
    }
}

/// Reads an address value; `xor_with` undoes the XOR of the XOR-* attributes.
pub(crate) fn decode(
    value: &[u8],
    xor_with: Option<&TransactionId>,
) -> Result<SocketAddr, AttributeError> {
    if value.len() < 4 {
        return Err(AttributeError::BadLength {
            actual: value.len(),
            expected: "8 (IPv4) or 20 (IPv6)",
        });
    }
    let mask = xor_with.map(xor_mask).unwrap_or([0; 16]);
    let port = u16::from_be_bytes([value[2], value[3]]) ^ u16::from_be_bytes([mask[0], mask[1]]);
    let address = &value[4..];
    let ip = match (value[1], address.len()) {
        (FAMILY_IPV4, 4) => {
            let mut octets = [0u8; 4];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = address[i] ^ mask[i];
            }
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        (FAMILY_IPV6, 16) => {
            let mut octets = [0u8; 16];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = address[i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        (FAMILY_IPV4 | FAMILY_IPV6, _) => {
            return Err(AttributeError::BadLength {
                actual: value.len(),
                expected: "8 (IPv4) or 20 (IPv6)",
            })
        }
        (family, _) => return Err(AttributeError::UnknownAddressFamily(family)),
    };
    Ok(SocketAddr::new(ip, port))
}

/// The family byte of REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY
/// (RFC 8656 §18.6, §18.11), which use the same codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 (0x01).
    V4,
    /// IPv6 (0x02).
    V6,
}

impl AddressFamily {
    pub(crate) fn from_byte(b: u8) -> Result<Self, AttributeError> {
        match b {
            FAMILY_IPV4 => Ok(AddressFamily::V4),
            FAMILY_IPV6 => Ok(AddressFamily::V6),
            other => Err(AttributeError::UnknownAddressFamily(other)),
        }
    }

    pub(crate) fn to_byte(self) -> u8 {
        match self {
            AddressFamily::V4 => FAMILY_IPV4,
            AddressFamily::V6 => FAMILY_IPV6,
        }
    }

    /// The family of an address.
    pub fn of(address: &SocketAddr) -> Self {
        if address.is_ipv4() {
            AddressFamily::V4
        } else {
            AddressFamily::V6
        }
    }
}
