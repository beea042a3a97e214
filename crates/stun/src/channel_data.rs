//! ChannelData messages (RFC 8656 §12.4): a 4-byte header, channel number
//! and length, then the application data; over streams padded to 4 bytes.

/// The first channel number (RFC 8656 §12).
pub const MIN_CHANNEL: u16 = 0x4000;
/// The last channel number accepted: RFC 8656 §12 narrowed the range to
/// 0x4FFF, but RFC 5766 allowed up to 0x7FFF and coturn's clients
/// (`turnutils_uclient`) still pick numbers there, as coturn's server
/// accepts. Our client binds only 0x4000..=0x4FFF.
pub const MAX_CHANNEL: u16 = 0x7FFF;
/// The header's length.
pub const HEADER_LEN: usize = 4;

/// True when the first byte says ChannelData: 64..=79 for RFC 8656
/// channels (RFC 7983 §7), up to 127 for the RFC 5766 range.
pub fn is_channel_data(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(0x40..=0x7F))
}

/// A borrowed ChannelData message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The channel number, 0x4000..=0x7FFF.
    pub channel: u16,
    /// The application data.
    pub data: &'a [u8],
}

/// Why bytes are not a ChannelData message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelDataError {
    /// Fewer than the 4 header bytes.
    #[error("ChannelData shorter than its 4-byte header: {0} bytes")]
    TooShort(usize),
    /// The channel number is outside 0x4000..=0x7FFF.
    #[error("channel number {0:#06x} outside 0x4000..=0x7fff")]
    BadChannel(u16),
    /// The length field runs past the datagram (RFC 8656 §12.5: discard).
    #[error("ChannelData length {declared} but {available} bytes follow the header")]
    Overrun {
        /// The length field.
        declared: usize,
        /// Bytes after the header.
        available: usize,
    },
}

impl<'a> ChannelData<'a> {
    /// Reads a ChannelData message from one datagram. Bytes past the length
    /// (padding, RFC 8656 §12.5) are ignored.
    pub fn decode(datagram: &'a [u8]) -> Result<Self, ChannelDataError> {
        if datagram.len() < HEADER_LEN {
            return Err(ChannelDataError::TooShort(datagram.len()));
        }
        let channel = u16::from_be_bytes([datagram[0], datagram[1]]);
        if !(MIN_CHANNEL..=MAX_CHANNEL).contains(&channel) {
            return Err(ChannelDataError::BadChannel(channel));
        }
        let declared = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
        let available = datagram.len() - HEADER_LEN;
        if declared > available {
            return Err(ChannelDataError::Overrun {
                declared,
                available,
            });
        }
        Ok(ChannelData {
            channel,
            data: &datagram[HEADER_LEN..HEADER_LEN + declared],
        })
    }

    /// The length of the message at the start of a stream buffer, padding
    /// included (RFC 8656 §12.5: over TCP and TLS it is padded to 4).
    pub fn frame_len(stream: &[u8]) -> Option<usize> {
        (stream.len() >= HEADER_LEN).then(|| {
            let len = usize::from(u16::from_be_bytes([stream[2], stream[3]]));
            HEADER_LEN + ((len + 3) & !3)
        })
    }

    /// Appends the message to `out`; `pad` adds the stream padding. Data
    /// longer than 65535 bytes cannot be framed: returns false and writes nothing.
    pub fn encode(channel: u16, data: &[u8], pad: bool, out: &mut Vec<u8>) -> bool {
        let Ok(len) = u16::try_from(data.len()) else {
            return false;
        };
        out.extend_from_slice(&channel.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(data);
        if pad {
            out.resize(out.len() + ((4 - data.len() % 4) % 4), 0);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_and_without_padding() {
        let mut out = Vec::new();
        assert!(ChannelData::encode(0x4001, b"hello", false, &mut out));
        assert_eq!(out, [0x40, 0x01, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        let cd = ChannelData::decode(&out).unwrap();
        assert_eq!((cd.channel, cd.data), (0x4001, &b"hello"[..]));
        out.clear();
        assert!(ChannelData::encode(0x4FFF, b"hello", true, &mut out));
        assert_eq!(out.len(), 12);
        assert_eq!(ChannelData::frame_len(&out), Some(12));
        assert_eq!(ChannelData::decode(&out).unwrap().data, b"hello");
    }

    #[test]
    fn malformed_is_refused() {
        assert_eq!(
            ChannelData::decode(&[0x40]),
            Err(ChannelDataError::TooShort(1))
        );
        assert_eq!(
            ChannelData::decode(&[0x80, 0, 0, 0]),
            Err(ChannelDataError::BadChannel(0x8000))
        );
        assert_eq!(
            ChannelData::decode(&[0x40, 0, 0, 9, 1, 2]),
            Err(ChannelDataError::Overrun {
                declared: 9,
                available: 2
            })
        );
        assert!(!ChannelData::encode(
            0x4000,
            &vec![0; 70_000],
            false,
            &mut Vec::new()
        ));
    }
}
