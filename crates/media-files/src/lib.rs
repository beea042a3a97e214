//! Media files for recording and playback, from and to the frames and
//! packets RTP carries.
//!
//! - [`ivf`]: the IVF container of libvpx (VP8, VP9, AV1), read and write.
//! - [`ogg`]: Ogg pages (RFC 3533) and Ogg Opus (RFC 7845): `OpusHead`,
//!   `OpusTags`, granule positions, pre-skip, page CRC; read and write.
//! - [`annexb`]: H.264 Annex B byte streams (start codes, NAL units, access
//!   units), read and write.
//! - [`webm`]: WebM (Matroska) recordings with one video track (VP8, VP9,
//!   AV1) and one Opus track, written by a small EBML writer of our own.
//! - [`frame_size`]: the picture size in a VP8 or VP9 keyframe's header,
//!   for the container headers of a recording.
//! - [`RtpTimeline`]: 32-bit RTP timestamps unwrapped to a 64-bit timeline
//!   that starts at the first packet, so wraps vanish and gaps stay.
//!
//! Readers take bytes written by anyone: they return typed errors on bad
//! input, never panic, and bound every allocation by a limit the caller can
//! see.
//!
//! ```
//! use realtimer_media_files::ivf::{Fourcc, IvfHeader, IvfReader, IvfWriter};
//! let header = IvfHeader::new(Fourcc::Vp8, 320, 240, 90_000);
//! let mut writer = IvfWriter::new(Vec::new(), header).unwrap();
//! writer.write_frame(0, b"frame").unwrap();
//! let bytes = writer.into_inner();
//! let mut reader = IvfReader::new(&bytes[..]).unwrap();
//! assert_eq!(reader.header().fourcc, Fourcc::Vp8);
//! let frame = reader.next_frame().unwrap().unwrap();
//! assert_eq!((frame.timestamp, &frame.data[..]), (0, &b"frame"[..]));
//! ```

// Library code never unwraps: file input gets typed errors.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod annexb;
pub mod frame_size;
pub mod ivf;
pub mod ogg;
mod timeline;
pub mod webm;

pub use timeline::RtpTimeline;

/// Reads up to `len` bytes, growing the buffer only as bytes arrive, so a
/// length field that lies costs no more memory than the file holds.
fn read_exact_bounded<R: std::io::Read>(
    reader: &mut R,
    len: usize,
    out: &mut Vec<u8>,
) -> std::io::Result<bool> {
    use std::io::Read;
    out.clear();
    let got = reader.take(len as u64).read_to_end(out)?;
    Ok(got == len)
}
