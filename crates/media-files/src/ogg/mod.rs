//! Ogg (RFC 3533) and Ogg Opus (RFC 7845).
//!
//! [`OggOpusWriter`] records Opus packets as RTP carries them: each packet
//! with its start on the 48 kHz timeline (an [`crate::RtpTimeline`] gives
//! it), gaps filled with empty Opus frames that a decoder conceals, so the
//! file's time matches the call's. [`OggOpusReader`] reads any Ogg Opus
//! file back as packets with their durations.

mod opus;
mod page;

pub use opus::{
    opus_packet_samples, OggOpusPacket, OggOpusReader, OggOpusWriter, OpusHead, OpusPacketError,
    OpusPlacement, DEFAULT_MAX_OPUS_PACKET_LEN, OPUS_SAMPLE_RATE,
};
pub use page::{OggPacket, OggPacketReader, OggPage, OggPageReader, OggStreamWriter, NO_GRANULE};

/// What went wrong reading or writing an Ogg or Ogg Opus file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OggError {
    /// The underlying reader or writer failed.
    #[error("Ogg I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A page does not start with `OggS` (RFC 3533 §6).
    #[error("Ogg page {page} does not start with \"OggS\"")]
    BadCapturePattern {
        /// Index of the page in the file.
        page: u64,
    },
    /// A stream structure version other than 0.
    #[error("Ogg page {page} has version {version}, only 0 exists")]
    UnsupportedVersion {
        /// Index of the page in the file.
        page: u64,
        /// The version byte.
        version: u8,
    },
    /// A page whose CRC does not match its bytes.
    #[error("Ogg page {page}: CRC {expected:#010x} in the page, {computed:#010x} computed")]
    BadCrc {
        /// Index of the page in the file.
        page: u64,
        /// The CRC field.
        expected: u32,
        /// The CRC of the page's bytes.
        computed: u32,
    },
    /// The file ends inside a page.
    #[error("Ogg file ends inside {what} of page {page}")]
    Truncated {
        /// "a page header", "a segment table" or "a page body".
        what: &'static str,
        /// Index of the page in the file.
        page: u64,
    },
    /// The first page does not begin a stream.
    #[error("the first Ogg page does not begin a logical stream (no BOS flag)")]
    MissingBos,
    /// A packet longer than the reader's limit.
    #[error("Ogg packet longer than the limit of {limit} bytes")]
    PacketTooLarge {
        /// The reader's limit.
        limit: usize,
    },
    /// The stream is not Opus, or its identification header is malformed
    /// (RFC 7845 §5.1).
    #[error("bad OpusHead: {reason}")]
    BadOpusHead {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The comment header is missing or malformed (RFC 7845 §5.2).
    #[error("bad OpusTags: {reason}")]
    BadOpusTags {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An audio packet that is not a valid Opus packet (RFC 6716 §3).
    #[error("Opus packet {index}: {source}")]
    BadOpusPacket {
        /// Index of the audio packet.
        index: u64,
        /// What is wrong with it.
        source: OpusPacketError,
    },
}
