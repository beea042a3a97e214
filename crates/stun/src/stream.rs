//! STUN and TURN over a stream (RFC 8489 §6.2.2, RFC 8656 §3.1, §12.5):
//! over TCP and TLS, STUN messages and ChannelData follow each other on the
//! byte stream, and each ChannelData message is padded to a multiple of 4
//! bytes. [`StreamDecoder`] cuts the stream back into messages, sans-IO,
//! with a bounded buffer. It lives here, not in the TURN server crate,
//! because TURN clients (the ICE agent) read the same framing.

use crate::channel_data::{self, ChannelData};
use crate::message::{HEADER_LEN, MAGIC_COOKIE};

/// The longest message the 16-bit length fields allow: a STUN header plus
/// 65532 bytes of attributes (a multiple of 4), or a ChannelData header
/// plus 65535 bytes padded to 65536.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + 65_532;
/// The read size when no longer message is pending.
const READ_CHUNK: usize = 8192;
/// The buffer never grows past one longest message plus one read.
const MAX_BUFFER: usize = MAX_FRAME_LEN + READ_CHUNK;

/// Why a stream cannot be read as TURN: the connection must be closed,
/// as the message boundaries are lost (RFC 8656 §12.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The first byte starts neither STUN (0..=3) nor ChannelData
    /// (0x40..=0x7F) (RFC 7983).
    #[error("a stream message starts with {0:#04x}: neither STUN nor ChannelData")]
    UnknownMessage(u8),
    /// A STUN header without the magic cookie (RFC 8489 §5).
    #[error("a STUN header on the stream lacks the magic cookie")]
    NoMagicCookie,
    /// A STUN length that is not a multiple of 4 (RFC 8489 §5).
    #[error("STUN message length {0} is not a multiple of 4")]
    UnalignedLength(usize),
}

/// Cuts a TURN byte stream into STUN and ChannelData messages.
///
/// The caller reads into [`StreamDecoder::read_buf`], reports with
/// [`StreamDecoder::filled`], then takes messages with
/// [`StreamDecoder::next_message`] until it returns `Ok(None)`. The buffer
/// grows only to hold the message being read, at most [`MAX_FRAME_LEN`]
/// plus one read, so a peer announcing a huge length or sending garbage
/// costs bounded memory and gets an error.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl StreamDecoder {
    /// An empty decoder; it allocates on the first read.
    pub fn new() -> Self {
        Self::default()
    }

    /// Free space to read into: never empty.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let pending = self.pending_len().unwrap_or(0);
        let want = pending.max(self.end + READ_CHUNK).min(MAX_BUFFER);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        } else if self.end == 0 && self.buf.len() > READ_CHUNK {
            // A long message has gone: give its memory back.
            self.buf.truncate(READ_CHUNK);
            self.buf.shrink_to_fit();
        }
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`StreamDecoder::read_buf`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Bytes received and not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The bytes received and not yet returned as a message: what follows
    /// a ConnectionBind on a data connection is no longer TURN, but the
    /// peer's data (RFC 6062 §5.4).
    pub fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The next whole message (a STUN message, or ChannelData with its
    /// padding), `Ok(None)` until more bytes arrive.
    pub fn next_message(&mut self) -> Result<Option<&[u8]>, StreamError> {
        let Some(len) = self.frame_len()? else {
            return Ok(None);
        };
        if self.buffered() < len {
            return Ok(None);
        }
        let message = &self.buf[self.start..self.start + len];
        self.start += len;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        Ok(Some(message))
    }

    /// The length of the message at the head, once its header is in.
    fn frame_len(&self) -> Result<Option<usize>, StreamError> {
        let head = &self.buf[self.start..self.end];
        let Some(&first) = head.first() else {
            return Ok(None);
        };
        if channel_data::is_channel_data(head) {
            return Ok(ChannelData::frame_len(head));
        }
        if first > 3 {
            return Err(StreamError::UnknownMessage(first));
        }
        if head.len() < 8 {
            return Ok(None);
        }
        if head[4..8] != MAGIC_COOKIE.to_be_bytes() {
            return Err(StreamError::NoMagicCookie);
        }
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        if len % 4 != 0 {
            return Err(StreamError::UnalignedLength(len));
        }
        Ok(Some(HEADER_LEN + len))
    }

    /// The length the message at the head needs, when known and valid.
    fn pending_len(&self) -> Option<usize> {
        self.frame_len().ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(decoder: &mut StreamDecoder, mut bytes: &[u8], chunk: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let space = decoder.read_buf();
            assert!(!space.is_empty());
            let n = space.len().min(chunk).min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            decoder.filled(n);
            bytes = &bytes[n..];
            while let Some(m) = decoder.next_message().unwrap() {
                out.push(m.to_vec());
            }
        }
        out
    }

    fn stun(attributes: usize) -> Vec<u8> {
        let mut m = vec![0, 1, (attributes >> 8) as u8, attributes as u8];
        m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&[9; 12]);
        m.resize(20 + attributes, 7);
        m
    }

    #[test]
    fn stun_and_padded_channel_data_are_cut_apart_at_any_chunk_size() {
        let mut stream = stun(8);
        let mut cd = Vec::new();
        assert!(ChannelData::encode(0x4001, b"hello", true, &mut cd));
        stream.extend_from_slice(&cd);
        stream.extend_from_slice(&stun(0));
        let mut big = Vec::new();
        assert!(ChannelData::encode(0x4002, &[5; 65_535], true, &mut big));
        stream.extend_from_slice(&big);
        for chunk in [1, 3, 7, 8192, 100_000] {
            let mut decoder = StreamDecoder::new();
            let messages = feed(&mut decoder, &stream, chunk);
            assert_eq!(messages, vec![stun(8), cd.clone(), stun(0), big.clone()]);
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn garbage_is_an_error_and_memory_stays_bounded() {
        let mut decoder = StreamDecoder::new();
        let space = decoder.read_buf();
        // A TLS ClientHello on the plain TCP port.
        space[..3].copy_from_slice(&[0x16, 3, 1]);
        decoder.filled(3);
        assert_eq!(
            decoder.next_message(),
            Err(StreamError::UnknownMessage(0x16))
        );

        let mut decoder = StreamDecoder::new();
        let mut bad = stun(0);
        bad[4] = 0;
        assert_eq!(
            feed_err(&mut decoder, &bad),
            Err(StreamError::NoMagicCookie)
        );
        let mut decoder = StreamDecoder::new();
        assert_eq!(
            feed_err(&mut decoder, &stun(6)[..8]),
            Err(StreamError::UnalignedLength(6))
        );

        // The longest announced message never grows the buffer past the cap.
        let mut decoder = StreamDecoder::new();
        let mut header = vec![0, 1, 0xFF, 0xFC];
        header.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        let mut sent = 0;
        let space = decoder.read_buf();
        space[..8].copy_from_slice(&header);
        decoder.filled(8);
        while decoder.next_message().unwrap().is_none() {
            let space = decoder.read_buf();
            let n = space.len();
            decoder.filled(n);
            sent += n;
            assert!(decoder.buf.len() <= MAX_BUFFER && sent < 2 * MAX_BUFFER);
        }
        assert!(sent + 8 >= MAX_FRAME_LEN);
    }

    fn feed_err(decoder: &mut StreamDecoder, bytes: &[u8]) -> Result<Option<Vec<u8>>, StreamError> {
        let space = decoder.read_buf();
        space[..bytes.len()].copy_from_slice(bytes);
        decoder.filled(bytes.len());
        decoder.next_message().map(|m| m.map(<[u8]>::to_vec))
    }
}
