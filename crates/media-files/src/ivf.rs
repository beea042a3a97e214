//! IVF: the simple container libvpx's tools write for VP8, VP9 and AV1.
//!
//! A 32-byte file header (`DKIF`, version 0, header length 32, the codec's
//! FourCC, width, height, time base, frame count) and then frames, each a
//! 12-byte header (size, 64-bit timestamp in time-base units) and the
//! frame's bytes. All integers are little-endian.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::read_exact_bounded;

const SIGNATURE: &[u8; 4] = b"DKIF";
const FILE_HEADER_LEN: u16 = 32;
const FRAME_HEADER_LEN: usize = 12;
/// Byte offset of the frame count in the file header.
const FRAME_COUNT_OFFSET: u64 = 24;

/// The largest frame a reader takes unless told otherwise: a 4K keyframe at
/// a high bitrate fits several times over.
pub const DEFAULT_MAX_FRAME_LEN: usize = 8 << 20;

/// The codec of an IVF file, by its FourCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fourcc {
    /// `VP80`
    Vp8,
    /// `VP90`
    Vp9,
    /// `AV01`
    Av1,
    /// Any other code, kept as written.
    Other([u8; 4]),
}

impl Fourcc {
    /// The four bytes in the file.
    pub fn bytes(self) -> [u8; 4] {
        match self {
            Self::Vp8 => *b"VP80",
            Self::Vp9 => *b"VP90",
            Self::Av1 => *b"AV01",
            Self::Other(code) => code,
        }
    }

    fn from_bytes(code: [u8; 4]) -> Self {
        match &code {
            b"VP80" => Self::Vp8,
            b"VP90" => Self::Vp9,
            b"AV01" => Self::Av1,
            _ => Self::Other(code),
        }
    }
}

/// The file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfHeader {
    /// The codec.
    pub fourcc: Fourcc,
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
    /// Time-base units per second (the time base's denominator): 90,000
    /// keeps RTP video timestamps as they are.
    pub timebase_rate: u32,
    /// Time-base numerator: a timestamp of 1 lasts `timebase_scale /
    /// timebase_rate` seconds.
    pub timebase_scale: u32,
    /// Frames in the file, as the writer counted them (some writers leave 0).
    pub frame_count: u32,
}

impl IvfHeader {
    /// A header for `fourcc` frames of `width` x `height` with timestamps in
    /// units of `1 / timebase_rate` s.
    pub fn new(fourcc: Fourcc, width: u16, height: u16, timebase_rate: u32) -> Self {
        Self {
            fourcc,
            width,
            height,
            timebase_rate,
            timebase_scale: 1,
            frame_count: 0,
        }
    }

    fn to_bytes(self) -> [u8; FILE_HEADER_LEN as usize] {
        let mut out = [0u8; FILE_HEADER_LEN as usize];
        out[0..4].copy_from_slice(SIGNATURE);
        // Version 0 at bytes 4..6.
        out[6..8].copy_from_slice(&FILE_HEADER_LEN.to_le_bytes());
        out[8..12].copy_from_slice(&self.fourcc.bytes());
        out[12..14].copy_from_slice(&self.width.to_le_bytes());
        out[14..16].copy_from_slice(&self.height.to_le_bytes());
        out[16..20].copy_from_slice(&self.timebase_rate.to_le_bytes());
        out[20..24].copy_from_slice(&self.timebase_scale.to_le_bytes());
        out[24..28].copy_from_slice(&self.frame_count.to_le_bytes());
        out
    }
}

/// One frame and its timestamp in time-base units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvfFrame {
    /// Presentation timestamp in time-base units.
    pub timestamp: u64,
    /// The compressed frame.
    pub data: Vec<u8>,
}

/// What went wrong reading an IVF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IvfError {
    /// The underlying reader or writer failed.
    #[error("IVF I/O: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with `DKIF`.
    #[error("not an IVF file: starts with {found:02x?}, expected \"DKIF\"")]
    BadSignature {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A version other than 0.
    #[error("IVF version {version} unsupported (only 0)")]
    UnsupportedVersion {
        /// The version field.
        version: u16,
    },
    /// A header length below 32.
    #[error("IVF header length {len} is shorter than 32 bytes")]
    BadHeaderLength {
        /// The header-length field.
        len: u16,
    },
    /// A frame larger than the reader's limit.
    #[error("IVF frame {index} claims {size} bytes, more than the limit {limit}")]
    FrameTooLarge {
        /// The frame's index in the file.
        index: u64,
        /// Its size field.
        size: u32,
        /// The reader's limit.
        limit: usize,
    },
    /// The file ends inside a header or a frame.
    #[error("IVF file ends inside {what} (frame {index}): {got} of {expected} bytes")]
    Truncated {
        /// "the file header", "a frame header" or "a frame".
        what: &'static str,
        /// The frame's index in the file.
        index: u64,
        /// Bytes needed.
        expected: usize,
        /// Bytes there.
        got: usize,
    },
}

/// Reads an IVF file frame by frame.
#[derive(Debug)]
pub struct IvfReader<R> {
    reader: R,
    header: IvfHeader,
    max_frame_len: usize,
    frames_read: u64,
}

impl<R: Read> IvfReader<R> {
    /// Reads the file header; frames up to [`DEFAULT_MAX_FRAME_LEN`].
    pub fn new(reader: R) -> Result<Self, IvfError> {
        Self::with_max_frame_len(reader, DEFAULT_MAX_FRAME_LEN)
    }

    /// Reads the file header; a frame over `max_frame_len` bytes is an error.
    pub fn with_max_frame_len(mut reader: R, max_frame_len: usize) -> Result<Self, IvfError> {
        let mut fixed = [0u8; FILE_HEADER_LEN as usize];
        let got = read_full(&mut reader, &mut fixed)?;
        if got >= 4 && &fixed[0..4] != SIGNATURE {
            return Err(IvfError::BadSignature {
                found: [fixed[0], fixed[1], fixed[2], fixed[3]],
            });
        }
        if got < fixed.len() {
            return Err(IvfError::Truncated {
                what: "the file header",
                index: 0,
                expected: fixed.len(),
                got,
            });
        }
        let u16_at = |at: usize| u16::from_le_bytes([fixed[at], fixed[at + 1]]);
        let u32_at = |at: usize| {
            u32::from_le_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]])
        };
        let version = u16_at(4);
        if version != 0 {
            return Err(IvfError::UnsupportedVersion { version });
        }
        let header_len = u16_at(6);
        if header_len < FILE_HEADER_LEN {
            return Err(IvfError::BadHeaderLength { len: header_len });
        }
        // A longer header carries fields we do not know: skip them.
        let extra = usize::from(header_len - FILE_HEADER_LEN);
        let skipped = io::copy(&mut (&mut reader).take(extra as u64), &mut io::sink())?;
        if skipped as usize != extra {
            return Err(IvfError::Truncated {
                what: "the file header",
                index: 0,
                expected: usize::from(header_len),
                got: fixed.len() + skipped as usize,
            });
        }
        let header = IvfHeader {
            fourcc: Fourcc::from_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            width: u16_at(12),
            height: u16_at(14),
            timebase_rate: u32_at(16),
            timebase_scale: u32_at(20),
            frame_count: u32_at(24),
        };
        Ok(Self {
            reader,
            header,
            max_frame_len,
            frames_read: 0,
        })
    }

    /// The file header.
    pub fn header(&self) -> &IvfHeader {
        &self.header
    }

    /// The next frame, or `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<IvfFrame>, IvfError> {
        let index = self.frames_read;
        let mut fixed = [0u8; FRAME_HEADER_LEN];
        match read_full(&mut self.reader, &mut fixed)? {
            0 => return Ok(None),
            FRAME_HEADER_LEN => {}
            got => {
                return Err(IvfError::Truncated {
                    what: "a frame header",
                    index,
                    expected: FRAME_HEADER_LEN,
                    got,
                })
            }
        }
        let size = u32::from_le_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]);
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&fixed[4..12]);
        let timestamp = u64::from_le_bytes(timestamp);
        if size as usize > self.max_frame_len {
            return Err(IvfError::FrameTooLarge {
                index,
                size,
                limit: self.max_frame_len,
            });
        }
        let mut data = Vec::new();
        if !read_exact_bounded(&mut self.reader, size as usize, &mut data)? {
            return Err(IvfError::Truncated {
                what: "a frame",
                index,
                expected: size as usize,
                got: data.len(),
            });
        }
        self.frames_read += 1;
        Ok(Some(IvfFrame { timestamp, data }))
    }
}

impl<R: Read> Iterator for IvfReader<R> {
    type Item = Result<IvfFrame, IvfError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

/// Fills `buf` as far as the reader goes; the count of bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Writes an IVF file.
#[derive(Debug)]
pub struct IvfWriter<W> {
    writer: W,
    frame_count: u32,
}

impl<W: Write> IvfWriter<W> {
    /// Writes `header` (its frame count as given; [`Self::finish`] corrects
    /// it on a seekable writer).
    pub fn new(mut writer: W, header: IvfHeader) -> io::Result<Self> {
        writer.write_all(&header.to_bytes())?;
        Ok(Self {
            writer,
            frame_count: 0,
        })
    }

    /// Appends a frame with its timestamp in time-base units.
    pub fn write_frame(&mut self, timestamp: u64, frame: &[u8]) -> io::Result<()> {
        let size = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "IVF frame over 4 GiB"))?;
        let mut fixed = [0u8; FRAME_HEADER_LEN];
        fixed[0..4].copy_from_slice(&size.to_le_bytes());
        fixed[4..12].copy_from_slice(&timestamp.to_le_bytes());
        self.writer.write_all(&fixed)?;
        self.writer.write_all(frame)?;
        self.frame_count = self.frame_count.saturating_add(1);
        Ok(())
    }

    /// Frames written so far.
    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// The underlying writer, as it is (frame count not corrected).
    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<W: Write + Seek> IvfWriter<W> {
    /// Writes the frame count into the header, flushes, and gives back the
    /// writer.
    pub fn finish(mut self) -> io::Result<W> {
        let end = self.writer.stream_position()?;
        self.writer.seek(SeekFrom::Start(FRAME_COUNT_OFFSET))?;
        self.writer.write_all(&self.frame_count.to_le_bytes())?;
        self.writer.seek(SeekFrom::Start(end))?;
        self.writer.flush()?;
        Ok(self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn file(frames: &[(u64, &[u8])]) -> Vec<u8> {
        let header = IvfHeader::new(Fourcc::Vp9, 640, 480, 90_000);
        let mut w = IvfWriter::new(Cursor::new(Vec::new()), header).unwrap();
        for (ts, data) in frames {
            w.write_frame(*ts, data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn round_trip_keeps_header_frames_and_count() {
        let bytes = file(&[(0, b"key"), (3_000, b"delta"), (9_000, b"")]);
        let mut r = IvfReader::new(&bytes[..]).unwrap();
        assert_eq!(
            *r.header(),
            IvfHeader {
                frame_count: 3,
                ..IvfHeader::new(Fourcc::Vp9, 640, 480, 90_000)
            }
        );
        let frames: Vec<_> = r.by_ref().map(Result::unwrap).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[1].timestamp, 3_000);
        assert_eq!(frames[1].data, b"delta");
        assert!(frames[2].data.is_empty());
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        assert!(matches!(
            IvfReader::new(&b"RIFF0000"[..]),
            Err(IvfError::BadSignature { .. })
        ));
        assert!(matches!(
            IvfReader::new(&b"DKIF"[..]),
            Err(IvfError::Truncated { got: 4, .. })
        ));
        let mut bytes = file(&[(0, b"abcdef")]);
        bytes.truncate(bytes.len() - 2);
        let mut r = IvfReader::new(&bytes[..]).unwrap();
        assert!(matches!(
            r.next_frame(),
            Err(IvfError::Truncated {
                what: "a frame",
                expected: 6,
                got: 4,
                ..
            })
        ));
        // A size field of 4 GiB is refused before any allocation.
        let mut bytes = file(&[]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        let mut r = IvfReader::new(&bytes[..]).unwrap();
        assert!(matches!(
            r.next_frame(),
            Err(IvfError::FrameTooLarge { size: u32::MAX, .. })
        ));
    }
}
