//! DCEP messages (RFC 8832 §5): DATA_CHANNEL_OPEN and DATA_CHANNEL_ACK.

use bytes::{BufMut, Bytes};

/// RFC 8832 §8.2.1: message types.
const OPEN: u8 = 0x03;
const ACK: u8 = 0x02;
/// The longest label or protocol accepted (the 16-bit length allows 65535;
/// nobody needs more than this, and the bound caps what a peer makes us hold).
pub const MAX_LABEL_LEN: usize = 16 * 1024;

/// How a channel delivers (RFC 8832 §5.1 channel types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelType {
    /// 0x00 / 0x80: reliable.
    Reliable,
    /// 0x01 / 0x81: at most this many retransmissions.
    MaxRetransmits(u32),
    /// 0x02 / 0x82: retransmitted for at most this many milliseconds.
    MaxLifetime(u32),
}

/// DATA_CHANNEL_OPEN (RFC 8832 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenMessage {
    /// Reliability.
    pub channel_type: ChannelType,
    /// Unordered delivery (the 0x80 bit).
    pub unordered: bool,
    /// Priority (RFC 8831 §6.4: 128 below normal, 256 normal, 512 high, 1024 extra high).
    pub priority: u16,
    /// The label.
    pub label: String,
    /// The sub-protocol.
    pub protocol: String,
}

/// A DCEP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DcepMessage {
    /// DATA_CHANNEL_OPEN.
    Open(OpenMessage),
    /// DATA_CHANNEL_ACK.
    Ack,
}

/// Why a DCEP message does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DcepError {
    /// Empty message.
    #[error("empty DCEP message")]
    Empty,
    /// A message type other than OPEN (3) or ACK (2).
    #[error("unknown DCEP message type {0:#04x}")]
    UnknownType(u8),
    /// Shorter than its fixed part.
    #[error("DATA_CHANNEL_OPEN of {0} bytes is shorter than 12")]
    Truncated(usize),
    /// An unknown channel type.
    #[error("unknown channel type {0:#04x}")]
    UnknownChannelType(u8),
    /// Label and protocol lengths disagree with the message length.
    #[error("label ({label}) and protocol ({protocol}) lengths do not fit the {available} bytes after the header")]
    BadLengths {
        /// Declared label length.
        label: usize,
        /// Declared protocol length.
        protocol: usize,
        /// Bytes after the 12-byte header.
        available: usize,
    },
    /// Label or protocol over [`MAX_LABEL_LEN`].
    #[error("label or protocol longer than {MAX_LABEL_LEN} bytes")]
    TooLong,
    /// Label or protocol not UTF-8 (RFC 8832 §5.1 says UTF-8).
    #[error("label or protocol is not UTF-8")]
    NotUtf8,
}

impl DcepMessage {
    /// Parses a message that arrived with PPID 50.
    pub fn parse(data: &[u8]) -> Result<Self, DcepError> {
        match data.first() {
            None => Err(DcepError::Empty),
            Some(&ACK) => Ok(DcepMessage::Ack),
            Some(&OPEN) => {
                if data.len() < 12 {
                    return Err(DcepError::Truncated(data.len()));
                }
                let unordered = data[1] & 0x80 != 0;
                let reliability = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                let channel_type = match data[1] & 0x7f {
                    0x00 => ChannelType::Reliable,
                    0x01 => ChannelType::MaxRetransmits(reliability),
                    0x02 => ChannelType::MaxLifetime(reliability),
                    _ => return Err(DcepError::UnknownChannelType(data[1])),
                };
                let priority = u16::from_be_bytes([data[2], data[3]]);
                let label_len = usize::from(u16::from_be_bytes([data[8], data[9]]));
                let protocol_len = usize::from(u16::from_be_bytes([data[10], data[11]]));
                if label_len > MAX_LABEL_LEN || protocol_len > MAX_LABEL_LEN {
                    return Err(DcepError::TooLong);
                }
                let rest = &data[12..];
                if label_len + protocol_len > rest.len() {
                    return Err(DcepError::BadLengths {
                        label: label_len,
                        protocol: protocol_len,
                        available: rest.len(),
                    });
                }
                let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| DcepError::NotUtf8);
                Ok(DcepMessage::Open(OpenMessage {
                    channel_type,
                    unordered,
                    priority,
                    label: text(&rest[..label_len])?,
                    protocol: text(&rest[label_len..label_len + protocol_len])?,
                }))
            }
            Some(&other) => Err(DcepError::UnknownType(other)),
        }
    }

    /// The message's bytes.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            DcepMessage::Ack => Bytes::from_static(&[ACK]),
            DcepMessage::Open(open) => {
                let mut out = Vec::with_capacity(12 + open.label.len() + open.protocol.len());
                let (kind, reliability) = match open.channel_type {
                    ChannelType::Reliable => (0x00, 0),
                    ChannelType::MaxRetransmits(n) => (0x01, n),
                    ChannelType::MaxLifetime(ms) => (0x02, ms),
                };
                out.put_u8(OPEN);
                out.put_u8(kind | if open.unordered { 0x80 } else { 0 });
                out.put_u16(open.priority);
                out.put_u32(reliability);
                out.put_u16(open.label.len().min(MAX_LABEL_LEN) as u16);
                out.put_u16(open.protocol.len().min(MAX_LABEL_LEN) as u16);
                out.put_slice(&open.label.as_bytes()[..open.label.len().min(MAX_LABEL_LEN)]);
                out.put_slice(&open.protocol.as_bytes()[..open.protocol.len().min(MAX_LABEL_LEN)]);
                Bytes::from(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_round_trips_and_bad_input_is_named() {
        let open = DcepMessage::Open(OpenMessage {
            channel_type: ChannelType::MaxLifetime(150),
            unordered: true,
            priority: 512,
            label: "chät".into(),
            protocol: "p".into(),
        });
        let bytes = open.to_bytes();
        assert_eq!(&bytes[..4], &[0x03, 0x82, 0x02, 0x00]);
        assert_eq!(DcepMessage::parse(&bytes), Ok(open));
        assert_eq!(DcepMessage::parse(&[0x02]), Ok(DcepMessage::Ack));
        assert_eq!(DcepMessage::parse(&[]), Err(DcepError::Empty));
        assert_eq!(DcepMessage::parse(&[0x07]), Err(DcepError::UnknownType(7)));
        assert_eq!(
            DcepMessage::parse(&[0x03, 0, 0, 0]),
            Err(DcepError::Truncated(4))
        );
        assert_eq!(
            DcepMessage::parse(&[0x03, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DcepError::UnknownChannelType(5))
        );
        assert!(matches!(
            DcepMessage::parse(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, b'a']),
            Err(DcepError::BadLengths { label: 5, .. })
        ));
        assert_eq!(
            DcepMessage::parse(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff]),
            Err(DcepError::NotUtf8)
        );
    }
}
