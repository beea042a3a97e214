//! H.264 Annex B byte streams: NAL units behind start codes (`00 00 01` or
//! `00 00 00 01`, H.264 §B.1), grouped into access units (one picture
//! each, §7.4.1.2.3), as encoders write them and `.h264` files hold them.

use std::io::{self, Read, Write};

pub use realtimer_rtp::payload::h264::{is_keyframe, nal_units};

/// The largest access unit a reader takes unless told otherwise.
pub const DEFAULT_MAX_ACCESS_UNIT_LEN: usize = 8 << 20;

/// The start code written before each NAL unit: the 4-byte form, which
/// H.264 §B.1.2 asks for before parameter sets and the first NAL unit of an
/// access unit and which every reader accepts everywhere.
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// H.264 Table 7-1: NAL unit types.
const SLICE: u8 = 1;
const IDR_SLICE: u8 = 5;
const SEI: u8 = 6;
const SPS: u8 = 7;
const PPS: u8 = 8;
const AUD: u8 = 9;

/// What went wrong reading an Annex B stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnnexBError {
    /// The underlying reader failed.
    #[error("Annex B I/O: {0}")]
    Io(#[from] io::Error),
    /// Bytes other than zeros before the first start code (§B.2 allows only
    /// leading zero bytes).
    #[error("the stream does not start with a start code ({skipped} bytes of other data first)")]
    NoStartCode {
        /// Bytes before the first start code.
        skipped: usize,
    },
    /// An access unit longer than the reader's limit.
    #[error("Annex B access unit longer than the limit of {limit} bytes")]
    AccessUnitTooLarge {
        /// The reader's limit.
        limit: usize,
    },
}

/// Offsets of the start codes in `stream` and where each NAL unit begins,
/// as `(start_code_offset, nal_offset)`; a 4-byte start code's leading zero
/// belongs to it.
fn start_codes(stream: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = from
            + stream
                .get(from..)?
                .windows(3)
                .position(|w| w == [0, 0, 1])?;
        from = at + 3;
        let code = if at > 0 && stream[at - 1] == 0 {
            at - 1
        } else {
            at
        };
        Some((code, at + 3))
    })
}

/// Whether the NAL unit whose bytes start at `nal` begins a new access unit
/// after one that already holds a slice (H.264 §7.4.1.2.3), or `None` when
/// too few of its bytes are there to tell.
fn starts_access_unit(nal: &[u8]) -> Option<bool> {
    let nal_type = nal.first()? & 0x1F;
    Some(match nal_type {
        SEI | SPS | PPS | AUD | 14..=18 => true,
        // §7.3.3: first_mb_in_slice is the slice header's first field, an
        // ue(v) that is 0 exactly when its first bit is 1.
        SLICE | IDR_SLICE => nal.get(1)? & 0x80 != 0,
        _ => false,
    })
}

/// The length of the access unit at the start of `buf` (which starts at a
/// start code), or `None` when more bytes are needed to find its end. With
/// `at_end`, the rest of the buffer closes the last access unit.
fn access_unit_len(buf: &[u8], at_end: bool) -> Option<usize> {
    let mut has_slice = false;
    for (code, nal) in start_codes(buf) {
        let Some(new_unit) = starts_access_unit(&buf[nal..]) else {
            return at_end.then_some(buf.len());
        };
        if has_slice && new_unit {
            return Some(code);
        }
        has_slice |= matches!(buf[nal] & 0x1F, SLICE | IDR_SLICE);
    }
    at_end.then_some(buf.len())
}

/// Checks that `stream` opens with zeros then a start code (§B.2); the
/// offset of that start code.
fn first_start_code(stream: &[u8]) -> Result<Option<usize>, AnnexBError> {
    match start_codes(stream).next() {
        Some((code, _)) if stream[..code].iter().all(|&b| b == 0) => Ok(Some(code)),
        Some((code, _)) => Err(AnnexBError::NoStartCode { skipped: code }),
        None if stream.iter().all(|&b| b == 0) => Ok(None),
        None => Err(AnnexBError::NoStartCode {
            skipped: stream.len(),
        }),
    }
}

/// The access units of a whole Annex B stream in memory, each as its bytes
/// with their start codes; allocates nothing.
pub fn access_units(stream: &[u8]) -> AccessUnits<'_> {
    AccessUnits {
        rest: stream,
        started: false,
    }
}

/// Iterator of [`access_units`].
#[derive(Debug, Clone)]
pub struct AccessUnits<'a> {
    rest: &'a [u8],
    started: bool,
}

impl<'a> Iterator for AccessUnits<'a> {
    type Item = Result<&'a [u8], AnnexBError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            match first_start_code(self.rest) {
                Ok(Some(at)) => self.rest = &self.rest[at..],
                Ok(None) => self.rest = &[],
                Err(e) => {
                    self.rest = &[];
                    return Some(Err(e));
                }
            }
        }
        if self.rest.is_empty() {
            return None;
        }
        let len = access_unit_len(self.rest, true).unwrap_or(self.rest.len());
        let (unit, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Ok(unit))
    }
}

/// Reads access units from a byte stream, holding at most one access unit
/// and one read chunk in memory.
#[derive(Debug)]
pub struct AnnexBReader<R> {
    reader: R,
    buf: Vec<u8>,
    max_access_unit_len: usize,
    at_end: bool,
    started: bool,
}

/// Bytes asked of the reader at a time.
const READ_CHUNK: usize = 64 << 10;

impl<R: Read> AnnexBReader<R> {
    /// Access units of at most [`DEFAULT_MAX_ACCESS_UNIT_LEN`] bytes.
    pub fn new(reader: R) -> Self {
        Self::with_max_access_unit_len(reader, DEFAULT_MAX_ACCESS_UNIT_LEN)
    }

    /// Access units of at most `max_access_unit_len` bytes.
    pub fn with_max_access_unit_len(reader: R, max_access_unit_len: usize) -> Self {
        Self {
            reader,
            buf: Vec::new(),
            max_access_unit_len,
            at_end: false,
            started: false,
        }
    }

    /// The next access unit (its NAL units with their start codes), or
    /// `None` at the end of the stream.
    pub fn next_access_unit(&mut self) -> Result<Option<Vec<u8>>, AnnexBError> {
        loop {
            if !self.started && (self.at_end || start_codes(&self.buf).next().is_some()) {
                self.started = true;
                let at = first_start_code(&self.buf)?.unwrap_or(self.buf.len());
                self.buf.drain(..at);
            }
            if self.started {
                if let Some(len) = access_unit_len(&self.buf, self.at_end) {
                    if len == 0 {
                        return Ok(None);
                    }
                    if len > self.max_access_unit_len {
                        return Err(self.too_large());
                    }
                    let rest = self.buf.split_off(len);
                    return Ok(Some(std::mem::replace(&mut self.buf, rest)));
                }
            }
            if self.buf.len() > self.max_access_unit_len {
                return Err(self.too_large());
            }
            let had = self.buf.len();
            let got = (&mut self.reader)
                .take(READ_CHUNK as u64)
                .read_to_end(&mut self.buf)?;
            debug_assert_eq!(self.buf.len(), had + got);
            self.at_end = got == 0;
        }
    }

    fn too_large(&mut self) -> AnnexBError {
        self.buf.clear();
        AnnexBError::AccessUnitTooLarge {
            limit: self.max_access_unit_len,
        }
    }
}

impl<R: Read> Iterator for AnnexBReader<R> {
    type Item = Result<Vec<u8>, AnnexBError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_access_unit().transpose()
    }
}

/// Writes an Annex B stream.
#[derive(Debug)]
pub struct AnnexBWriter<W> {
    writer: W,
}

impl<W: Write> AnnexBWriter<W> {
    /// Writes into `writer`.
    pub fn new(writer: W) -> Self {
        Self { writer }
    }

    /// Writes one access unit given as NAL units without start codes (as an
    /// RTP depacketizer gives them), each behind a 4-byte start code.
    pub fn write_nal_units<'a>(
        &mut self,
        nal_units: impl IntoIterator<Item = &'a [u8]>,
    ) -> io::Result<()> {
        for nal in nal_units {
            self.writer.write_all(&START_CODE)?;
            self.writer.write_all(nal)?;
        }
        Ok(())
    }

    /// Writes one access unit that is already in Annex B form (as encoders
    /// give them), with its start codes made 4 bytes long.
    pub fn write_access_unit(&mut self, access_unit: &[u8]) -> io::Result<()> {
        self.write_nal_units(nal_units(access_unit))
    }

    /// The underlying writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS_NAL: &[u8] = &[0x67, 0x42, 0xC0, 0x1F];
    const PPS_NAL: &[u8] = &[0x68, 0xCE, 0x3C, 0x80];
    /// Slices with first_mb_in_slice 0 (first header bit 1) and 5 (not).
    const IDR_FIRST: &[u8] = &[0x65, 0x88, 0x84];
    const IDR_LATER: &[u8] = &[0x65, 0x05, 0x12];
    const P_FIRST: &[u8] = &[0x41, 0x9A, 0x02];

    fn stream() -> Vec<u8> {
        let mut w = AnnexBWriter::new(Vec::new());
        w.write_nal_units([SPS_NAL, PPS_NAL, IDR_FIRST, IDR_LATER])
            .unwrap();
        w.write_nal_units([P_FIRST]).unwrap();
        w.write_nal_units([P_FIRST]).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn groups_nal_units_into_access_units() {
        let bytes = stream();
        let units: Vec<_> = access_units(&bytes).map(Result::unwrap).collect();
        assert_eq!(units.len(), 3);
        assert_eq!(
            nal_units(units[0]).collect::<Vec<_>>(),
            [SPS_NAL, PPS_NAL, IDR_FIRST, IDR_LATER]
        );
        assert!(is_keyframe(units[0]));
        assert!(!is_keyframe(units[1]));
        assert_eq!(nal_units(units[2]).collect::<Vec<_>>(), [P_FIRST]);
    }

    #[test]
    fn streaming_reader_agrees_with_the_slice_reader_at_any_chunking() {
        let mut bytes = vec![0, 0];
        bytes.extend(stream());
        // 3-byte start codes too.
        bytes.extend_from_slice(&[0, 0, 1]);
        bytes.extend_from_slice(P_FIRST);
        let expected: Vec<Vec<u8>> = access_units(&bytes).map(|u| u.unwrap().to_vec()).collect();
        assert_eq!(expected.len(), 4);
        // A reader that gives one byte at a time finds the same boundaries.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let got: Vec<_> = AnnexBReader::new(Trickle(&bytes))
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        assert!(matches!(
            access_units(b"junk\0\0\x01\x65\x88").next(),
            Some(Err(AnnexBError::NoStartCode { skipped: 4 }))
        ));
        assert!(access_units(&[0, 0, 0]).next().is_none());
        let bytes = stream();
        let mut r = AnnexBReader::with_max_access_unit_len(&bytes[..], 8);
        assert!(matches!(
            r.next_access_unit(),
            Err(AnnexBError::AccessUnitTooLarge { limit: 8 })
        ));
    }
}
