//! Ogg Opus (RFC 7845): the identification and comment headers, granule
//! positions at 48 kHz, pre-skip.

use std::io::{Read, Write};

use super::page::{OggPacketReader, OggStreamWriter};
use super::OggError;

/// RFC 7845 §4: granule positions count samples at 48 kHz, whatever the
/// input rate.
pub const OPUS_SAMPLE_RATE: u32 = 48_000;

/// The longest packet a reader takes unless told otherwise. Audio packets
/// are at most 120 ms of 1,275-byte frames (RFC 6716 §3.2.5), far below;
/// the comment header may carry pictures, which beyond this are refused.
pub const DEFAULT_MAX_OPUS_PACKET_LEN: usize = 1 << 20;

/// RFC 6716 §3.2.5: a packet holds at most 120 ms.
const MAX_PACKET_SAMPLES: u32 = 5_760;

/// RFC 7845 §4.2: 80 ms lets the decoder converge when a recording starts
/// in the middle of a stream, as one started from RTP does.
const RECORDING_PRE_SKIP: u16 = 3_840;

const HEAD_MAGIC: &[u8; 8] = b"OpusHead";
const TAGS_MAGIC: &[u8; 8] = b"OpusTags";
const VENDOR: &str = "realtimer";

/// Why bytes are not an Opus packet (RFC 6716 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpusPacketError {
    /// A packet needs at least its TOC byte (§3.1).
    #[error("empty packet: no TOC byte")]
    Empty,
    /// A code 3 packet without its frame count byte (§3.2.5).
    #[error("code 3 packet without a frame count byte")]
    MissingFrameCount,
    /// A code 3 packet that counts 0 frames (§3.2.5, rule R5).
    #[error("code 3 packet with 0 frames")]
    NoFrames,
    /// More than 120 ms of audio (§3.2.5, rule R5).
    #[error("{samples} samples at 48 kHz, more than 120 ms")]
    TooLong {
        /// Samples the TOC claims.
        samples: u32,
    },
}

/// Samples at 48 kHz in an Opus packet, from its TOC byte (RFC 6716 §3.1)
/// and, for code 3, its frame count (§3.2.5).
pub fn opus_packet_samples(packet: &[u8]) -> Result<u32, OpusPacketError> {
    let toc = *packet.first().ok_or(OpusPacketError::Empty)?;
    let config = toc >> 3;
    // §3.1 Table 2: SILK-only 10/20/40/60 ms, Hybrid 10/20 ms, CELT-only
    // 2.5/5/10/20 ms.
    let frame_samples: u32 = match config {
        0..=11 => [480, 960, 1_920, 2_880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => {
            let count = packet.get(1).ok_or(OpusPacketError::MissingFrameCount)? & 0x3F;
            if count == 0 {
                return Err(OpusPacketError::NoFrames);
            }
            u32::from(count)
        }
    };
    let samples = frame_samples * frames;
    if samples > MAX_PACKET_SAMPLES {
        return Err(OpusPacketError::TooLong { samples });
    }
    Ok(samples)
}

/// The identification header (RFC 7845 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusHead {
    /// Output channels.
    pub channels: u8,
    /// Samples at 48 kHz to drop from the start of the decoded audio.
    pub pre_skip: u16,
    /// The sample rate of the encoder's input, for information only.
    pub input_sample_rate: u32,
    /// Gain in Q7.8 dB to apply on output.
    pub output_gain: i16,
    /// Channel mapping family: 0 (mono or stereo, one stream) for what we
    /// write.
    pub mapping_family: u8,
    /// For families other than 0: the stream count, the coupled stream
    /// count and the mapping of each output channel.
    pub mapping_table: Option<(u8, u8, Vec<u8>)>,
}

impl OpusHead {
    /// A header for a recording from RTP: mono or stereo, 80 ms pre-skip
    /// (RFC 7845 §4.2), 48 kHz input, no gain.
    pub fn for_recording(channels: u8) -> Self {
        Self {
            channels: channels.clamp(1, 2),
            pre_skip: RECORDING_PRE_SKIP,
            input_sample_rate: OPUS_SAMPLE_RATE,
            output_gain: 0,
            mapping_family: 0,
            mapping_table: None,
        }
    }

    /// The header as a packet.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(21 + usize::from(self.channels));
        out.extend_from_slice(HEAD_MAGIC);
        out.push(1);
        out.push(self.channels);
        out.extend_from_slice(&self.pre_skip.to_le_bytes());
        out.extend_from_slice(&self.input_sample_rate.to_le_bytes());
        out.extend_from_slice(&self.output_gain.to_le_bytes());
        out.push(self.mapping_family);
        if let Some((streams, coupled, mapping)) = &self.mapping_table {
            out.push(*streams);
            out.push(*coupled);
            out.extend_from_slice(mapping);
        }
        out
    }

    /// Parses the header packet.
    pub fn parse(packet: &[u8]) -> Result<Self, OggError> {
        let bad = |reason| OggError::BadOpusHead { reason };
        if packet.len() < 19 || &packet[..8] != HEAD_MAGIC {
            return Err(bad("not an OpusHead packet"));
        }
        // §5.1: the upper four bits are the major version; only 0 is known.
        if packet[8] & 0xF0 != 0 {
            return Err(bad("major version other than 0"));
        }
        let channels = packet[9];
        if channels == 0 {
            return Err(bad("0 channels"));
        }
        let mapping_family = packet[18];
        let mapping_table = if mapping_family == 0 {
            if channels > 2 {
                return Err(bad("mapping family 0 with more than 2 channels"));
            }
            None
        } else {
            let table = packet
                .get(19..21 + usize::from(channels))
                .ok_or(bad("channel mapping table cut short"))?;
            let (streams, coupled) = (table[0], table[1]);
            if streams == 0 || coupled > streams {
                return Err(bad("stream counts out of range"));
            }
            Some((streams, coupled, table[2..].to_vec()))
        };
        Ok(Self {
            channels,
            pre_skip: u16::from_le_bytes([packet[10], packet[11]]),
            input_sample_rate: u32::from_le_bytes([packet[12], packet[13], packet[14], packet[15]]),
            output_gain: i16::from_le_bytes([packet[16], packet[17]]),
            mapping_family,
            mapping_table,
        })
    }
}

/// How [`OggOpusWriter::write_packet`] placed a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpusPlacement {
    /// Right after the previous packet.
    Appended,
    /// After empty frames that fill a gap of this many samples.
    AfterGap {
        /// Samples at 48 kHz of the gap.
        filled_samples: u64,
    },
    /// Dropped: it starts before the end of what is written (reordered or
    /// repeated).
    DroppedLate,
}

/// Writes an Ogg Opus file from packets placed on a 48 kHz timeline.
#[derive(Debug)]
pub struct OggOpusWriter<W> {
    stream: OggStreamWriter<W>,
    stereo: bool,
    pre_skip: u64,
    /// Samples written: where the next packet starts.
    written_samples: u64,
    packets_per_page: usize,
    pending_packets: usize,
    packets_given: u64,
    dropped_late: u64,
}

impl<W: Write> OggOpusWriter<W> {
    /// Writes the identification and comment headers, each on a page of its
    /// own (RFC 7845 §3), for a stream numbered `serial`.
    pub fn new(writer: W, head: &OpusHead, serial: u32) -> Result<Self, OggError> {
        let mut stream = OggStreamWriter::new(writer, serial);
        stream.write_packet(&head.to_bytes(), 0)?;
        stream.flush_page(false)?;
        // §5.2: vendor string, then no user comments.
        let mut tags = Vec::with_capacity(8 + 4 + VENDOR.len() + 4);
        tags.extend_from_slice(TAGS_MAGIC);
        tags.extend_from_slice(&(VENDOR.len() as u32).to_le_bytes());
        tags.extend_from_slice(VENDOR.as_bytes());
        tags.extend_from_slice(&0u32.to_le_bytes());
        stream.write_packet(&tags, 0)?;
        stream.flush_page(false)?;
        Ok(Self {
            stream,
            stereo: head.channels == 2,
            pre_skip: u64::from(head.pre_skip),
            written_samples: 0,
            packets_per_page: 5,
            pending_packets: 0,
            packets_given: 0,
            dropped_late: 0,
        })
    }

    /// Packets gathered on a page before it is written (5 by default: 100
    /// ms of 20 ms packets, what a crash can lose).
    pub fn with_packets_per_page(mut self, packets: usize) -> Self {
        self.packets_per_page = packets.max(1);
        self
    }

    /// Writes `packet`, whose first sample is `start` samples (48 kHz) after
    /// the start of the recording. A gap since the previous packet is
    /// filled with empty frames, which a decoder conceals (RFC 6716 §3.2.1:
    /// a frame of length 0 is a lost frame), so the file keeps the stream's
    /// timing.
    pub fn write_packet(&mut self, packet: &[u8], start: u64) -> Result<OpusPlacement, OggError> {
        let index = self.packets_given;
        self.packets_given += 1;
        let samples = opus_packet_samples(packet)
            .map_err(|source| OggError::BadOpusPacket { index, source })?;
        if start < self.written_samples {
            self.dropped_late += 1;
            return Ok(OpusPlacement::DroppedLate);
        }
        let gap = start - self.written_samples;
        let mut left = gap;
        // Whole 20 ms frames, up to six (120 ms) a packet, then 2.5 ms ones;
        // less than 2.5 ms is not representable and is let go.
        for (config, frame) in [(31u8, 960u64), (28, 120)] {
            while left >= frame {
                let count = (left / frame).min(u64::from(MAX_PACKET_SAMPLES) / frame);
                let toc = config << 3 | u8::from(self.stereo) << 2 | 3;
                self.append(&[toc, count as u8], count * frame)?;
                left -= count * frame;
            }
        }
        self.written_samples += left;
        self.append(packet, u64::from(samples))?;
        Ok(if gap == 0 {
            OpusPlacement::Appended
        } else {
            OpusPlacement::AfterGap {
                filled_samples: gap - left,
            }
        })
    }

    /// Packets dropped because they started before the end of the file.
    pub fn dropped_late(&self) -> u64 {
        self.dropped_late
    }

    /// Samples at 48 kHz written, gaps included.
    pub fn written_samples(&self) -> u64 {
        self.written_samples
    }

    /// Writes the last page, marked as the end of the stream, and gives back
    /// the writer. Without it the last packets are lost.
    pub fn finish(mut self) -> Result<W, OggError> {
        self.stream.flush_page(true)?;
        let mut writer = self.stream.into_inner();
        writer.flush()?;
        Ok(writer)
    }

    fn append(&mut self, packet: &[u8], samples: u64) -> Result<(), OggError> {
        if self.pending_packets >= self.packets_per_page {
            self.stream.flush_page(false)?;
            self.pending_packets = 0;
        }
        self.written_samples += samples;
        // §4: the granule position counts the pre-skip too.
        let granule = self.pre_skip + self.written_samples;
        self.stream.write_packet(packet, granule as i64)?;
        self.pending_packets += 1;
        Ok(())
    }
}

/// An audio packet of an Ogg Opus file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OggOpusPacket {
    /// The Opus packet.
    pub data: Vec<u8>,
    /// Its samples at 48 kHz, from its TOC.
    pub samples: u32,
    /// The page's granule position when this packet is the last to end on
    /// its page.
    pub granule_position: Option<i64>,
}

/// Reads an Ogg Opus file: its headers, then its audio packets.
#[derive(Debug)]
pub struct OggOpusReader<R> {
    packets: OggPacketReader<R>,
    head: OpusHead,
    vendor: String,
    audio_packets: u64,
}

impl<R: Read> OggOpusReader<R> {
    /// Reads the headers; packets up to [`DEFAULT_MAX_OPUS_PACKET_LEN`].
    pub fn new(reader: R) -> Result<Self, OggError> {
        Self::with_max_packet_len(reader, DEFAULT_MAX_OPUS_PACKET_LEN)
    }

    /// Reads the headers; a packet over `max_packet_len` is an error.
    pub fn with_max_packet_len(reader: R, max_packet_len: usize) -> Result<Self, OggError> {
        let mut packets = OggPacketReader::new(reader, max_packet_len);
        let head = packets.next_packet()?.ok_or(OggError::BadOpusHead {
            reason: "empty file",
        })?;
        let head = OpusHead::parse(&head.data)?;
        let bad_tags = |reason| OggError::BadOpusTags { reason };
        let tags = packets.next_packet()?.ok_or(bad_tags("missing"))?.data;
        if tags.len() < 16 || &tags[..8] != TAGS_MAGIC {
            return Err(bad_tags("not an OpusTags packet"));
        }
        let vendor_len = u32::from_le_bytes([tags[8], tags[9], tags[10], tags[11]]) as usize;
        let vendor = tags
            .get(12..12usize.saturating_add(vendor_len))
            .ok_or(bad_tags("vendor string cut short"))?;
        Ok(Self {
            packets,
            head,
            vendor: String::from_utf8_lossy(vendor).into_owned(),
            audio_packets: 0,
        })
    }

    /// The identification header.
    pub fn head(&self) -> &OpusHead {
        &self.head
    }

    /// The vendor string of the comment header.
    pub fn vendor(&self) -> &str {
        &self.vendor
    }

    /// The next audio packet, or `None` at the end of the stream.
    pub fn next_packet(&mut self) -> Result<Option<OggOpusPacket>, OggError> {
        let Some(packet) = self.packets.next_packet()? else {
            return Ok(None);
        };
        let index = self.audio_packets;
        self.audio_packets += 1;
        let samples = opus_packet_samples(&packet.data)
            .map_err(|source| OggError::BadOpusPacket { index, source })?;
        Ok(Some(OggOpusPacket {
            data: packet.data,
            samples,
            granule_position: packet.granule_position,
        }))
    }
}

impl<R: Read> Iterator for OggOpusReader<R> {
    type Item = Result<OggOpusPacket, OggError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CELT-only fullband 20 ms mono packet (config 31, code 0).
    const PACKET_20MS: &[u8] = &[31 << 3, 0xAA, 0xBB];

    #[test]
    fn toc_gives_the_duration() {
        assert_eq!(opus_packet_samples(PACKET_20MS), Ok(960));
        // SILK 60 ms, code 0.
        assert_eq!(opus_packet_samples(&[3 << 3]), Ok(2_880));
        // Hybrid 10 ms, code 1: two frames.
        assert_eq!(opus_packet_samples(&[12 << 3 | 1]), Ok(960));
        // CELT 2.5 ms, code 3 with 48 frames: exactly 120 ms.
        assert_eq!(opus_packet_samples(&[28 << 3 | 3, 48]), Ok(5_760));
        assert_eq!(
            opus_packet_samples(&[31 << 3 | 3, 7]),
            Err(OpusPacketError::TooLong { samples: 6_720 })
        );
        assert_eq!(opus_packet_samples(&[]), Err(OpusPacketError::Empty));
        assert_eq!(
            opus_packet_samples(&[31 << 3 | 3]),
            Err(OpusPacketError::MissingFrameCount)
        );
    }

    #[test]
    fn round_trip_keeps_packets_granules_and_gaps() {
        let head = OpusHead::for_recording(2);
        let mut w = OggOpusWriter::new(Vec::new(), &head, 99)
            .unwrap()
            .with_packets_per_page(2);
        assert_eq!(
            w.write_packet(PACKET_20MS, 0).unwrap(),
            OpusPlacement::Appended
        );
        assert_eq!(
            w.write_packet(PACKET_20MS, 960).unwrap(),
            OpusPlacement::Appended
        );
        // 300 ms lost: 15 frames of 20 ms, then the packet.
        assert_eq!(
            w.write_packet(PACKET_20MS, 1_920 + 14_400).unwrap(),
            OpusPlacement::AfterGap {
                filled_samples: 14_400
            }
        );
        // A retransmission of an old packet is dropped.
        assert_eq!(
            w.write_packet(PACKET_20MS, 960).unwrap(),
            OpusPlacement::DroppedLate
        );
        assert_eq!(w.written_samples(), 1_920 + 14_400 + 960);
        let bytes = w.finish().unwrap();

        let mut r = OggOpusReader::new(&bytes[..]).unwrap();
        assert_eq!(*r.head(), head);
        assert_eq!(r.vendor(), VENDOR);
        let packets: Vec<_> = r.by_ref().map(Result::unwrap).collect();
        let total: u64 = packets.iter().map(|p| u64::from(p.samples)).sum();
        assert_eq!(total, 1_920 + 14_400 + 960);
        // Fillers are empty frames: a TOC and a frame count, nothing else.
        assert!(packets[2..packets.len() - 1]
            .iter()
            .all(|p| p.data.len() == 2));
        assert_eq!(packets.last().unwrap().data, PACKET_20MS);
        // The last granule is pre-skip plus every sample.
        let last = packets
            .iter()
            .rev()
            .find_map(|p| p.granule_position)
            .unwrap();
        assert_eq!(last, 3_840 + (1_920 + 14_400 + 960) as i64);
    }

    #[test]
    fn bad_headers_give_typed_errors() {
        let mut head = OpusHead::for_recording(1).to_bytes();
        head[9] = 0;
        assert!(matches!(
            OpusHead::parse(&head),
            Err(OggError::BadOpusHead {
                reason: "0 channels"
            })
        ));
        let mut stream = OggStreamWriter::new(Vec::new(), 1);
        stream
            .write_packet(&OpusHead::for_recording(1).to_bytes(), 0)
            .unwrap();
        stream.flush_page(false).unwrap();
        stream.write_packet(b"OpusTags\xff\xff\xff\xff", 0).unwrap();
        stream.flush_page(true).unwrap();
        let bytes = stream.into_inner();
        assert!(matches!(
            OggOpusReader::new(&bytes[..]),
            Err(OggError::BadOpusTags { .. })
        ));
    }
}
