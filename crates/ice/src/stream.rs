//! Framing of STUN and ChannelData on a TCP or TLS connection to a TURN
//! server (RFC 8656 §3.1, §12.5), sans-IO.
//!
//! A stream carries STUN messages (first two bits 00, length in the
//! header, RFC 8489 §5) and ChannelData messages (first byte 0x40–0x4F,
//! length in the header, padded to a multiple of four over TCP, RFC 8656
//! §12.5), back to back. Anything else means the framing is lost and the
//! connection must be closed.

use bytes::{Buf, Bytes, BytesMut};

/// RFC 8489 §5: the STUN header.
const STUN_HEADER: usize = 20;
/// RFC 8656 §12.4: the ChannelData header.
const CHANNEL_HEADER: usize = 4;
/// The longest message either kind can announce (a 16-bit length plus
/// its header), so the buffer never needs to hold more than this plus
/// one read.
pub const MAX_FRAME: usize = STUN_HEADER + u16::MAX as usize;

/// Why a stream cannot be read any further: close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A byte that starts neither STUN nor ChannelData where a message
    /// should start.
    #[error("byte {0:#04x} at a message boundary starts neither STUN nor ChannelData")]
    BadFrame(u8),
    /// A STUN length that is not a multiple of 4 (RFC 8489 §5).
    #[error("STUN length {0} is not a multiple of 4")]
    BadStunLength(usize),
    /// More bytes pushed than one frame plus one read can need.
    #[error("more than {0} bytes buffered")]
    Overflow(usize),
}

/// Cuts the bytes read from a TURN server's stream into whole messages.
/// Bounded: it buffers at most one incomplete message plus what one
/// [`TurnStreamDecoder::push`] gave.
#[derive(Debug, Default)]
pub struct TurnStreamDecoder {
    buf: BytesMut,
    failed: Option<StreamError>,
}

impl TurnStreamDecoder {
    /// The most bytes one `push` may add (a driver's read buffer).
    pub const MAX_PUSH: usize = 64 * 1024;

    /// An empty decoder.
    pub fn new() -> Self {
        TurnStreamDecoder::default()
    }

    /// Appends bytes read from the stream; read them back with
    /// [`TurnStreamDecoder::next_message`] until `Ok(None)` before the
    /// next push.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        let limit = MAX_FRAME + Self::MAX_PUSH;
        if self.buf.len() + bytes.len() > limit {
            let e = StreamError::Overflow(limit);
            self.failed = Some(e);
            return Err(e);
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The next whole message (STUN, or ChannelData with its padding
    /// removed), `Ok(None)` when more bytes are needed, or an error once
    /// the framing is lost (then always that error).
    pub fn next_message(&mut self) -> Result<Option<Bytes>, StreamError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let Some(&first) = self.buf.first() else {
            return Ok(None);
        };
        if self.buf.len() < CHANNEL_HEADER {
            return Ok(None);
        }
        let length = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
        let (message, frame) = match first >> 6 {
            // RFC 8489 §5: the two most significant bits are 0.
            0 => {
                if length % 4 != 0 {
                    return self.fail(StreamError::BadStunLength(length));
                }
                (STUN_HEADER + length, STUN_HEADER + length)
            }
            // RFC 8656 §12: channel numbers 0x4000–0x4FFF; §12.5: padded
            // to a multiple of 4 over TCP.
            1 if first <= 0x4F => {
                let message = CHANNEL_HEADER + length;
                (message, message.next_multiple_of(4))
            }
            _ => return self.fail(StreamError::BadFrame(first)),
        };
        if self.buf.len() < frame {
            return Ok(None);
        }
        let mut out = self.buf.split_to(frame);
        out.truncate(message);
        if self.buf.is_empty() && self.buf.capacity() > MAX_FRAME {
            // A burst of large frames is over: give the memory back.
            self.buf = BytesMut::new();
        }
        Ok(Some(out.freeze()))
    }

    /// Bytes held, waiting for the rest of a message.
    pub fn buffered(&self) -> usize {
        self.buf.remaining()
    }

    fn fail(&mut self, e: StreamError) -> Result<Option<Bytes>, StreamError> {
        self.failed = Some(e);
        self.buf = BytesMut::new();
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun(length: u16, fill: u8) -> Vec<u8> {
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&length.to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        m.extend_from_slice(&[fill; 12]);
        m.extend(std::iter::repeat_n(fill, usize::from(length)));
        m
    }

    fn channel(number: u16, data: &[u8], pad: bool) -> Vec<u8> {
        let mut m = number.to_be_bytes().to_vec();
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(data);
        while pad && m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn splits_back_to_back_messages_fed_a_byte_at_a_time() {
        let mut wire = stun(8, 1);
        wire.extend(channel(0x4000, b"hello", true));
        wire.extend(stun(0, 2));
        wire.extend(channel(0x4FFF, b"", true));
        let mut d = TurnStreamDecoder::new();
        let mut out = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b)).unwrap();
            while let Some(m) = d.next_message().unwrap() {
                out.push(m.to_vec());
            }
        }
        assert_eq!(
            out,
            vec![
                stun(8, 1),
                channel(0x4000, b"hello", false),
                stun(0, 2),
                channel(0x4FFF, b"", false)
            ]
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn lost_framing_is_an_error_for_good() {
        let mut d = TurnStreamDecoder::new();
        d.push(&[0x80, 0, 0, 0]).unwrap();
        assert_eq!(d.next_message(), Err(StreamError::BadFrame(0x80)));
        d.push(&stun(0, 0)).unwrap();
        assert_eq!(d.next_message(), Err(StreamError::BadFrame(0x80)));

        let mut d = TurnStreamDecoder::new();
        d.push(&[0x00, 0x01, 0x00, 0x03]).unwrap();
        assert_eq!(d.next_message(), Err(StreamError::BadStunLength(3)));

        let mut d = TurnStreamDecoder::new();
        d.push(&[0x50, 0, 0, 0]).unwrap();
        assert_eq!(d.next_message(), Err(StreamError::BadFrame(0x50)));
    }

    #[test]
    fn the_buffer_is_bounded() {
        // A driver that pushes without reading messages out is stopped.
        let mut d = TurnStreamDecoder::new();
        let chunk = vec![0x40u8; TurnStreamDecoder::MAX_PUSH];
        d.push(&chunk).unwrap();
        d.push(&chunk).unwrap();
        assert_eq!(
            d.push(&chunk),
            Err(StreamError::Overflow(
                MAX_FRAME + TurnStreamDecoder::MAX_PUSH
            ))
        );
        assert!(matches!(d.next_message(), Err(StreamError::Overflow(_))));
    }
}
