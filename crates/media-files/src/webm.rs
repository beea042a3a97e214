//! WebM recordings: a video track (VP8 or VP9) and an Opus track in a
//! Matroska segment, written by a small EBML writer.
//!
//! Why our own writer: the muxer crates on crates.io either wrap libwebm
//! (C++, built from source, `unsafe` glue) or target MP4; a recording needs
//! a dozen element types, each a few bytes, which this module writes
//! directly (Matroska spec, RFC 8794 for EBML).
//!
//! Layout: EBML header, then a Segment holding Info (time scale 1 ms,
//! duration), Tracks, and Clusters of SimpleBlocks. A cluster starts at each
//! video keyframe, every 5 s, and when a block's time no longer fits the
//! cluster's 16-bit offset; each cluster is buffered and written whole, so
//! only the segment size and the duration are patched at the end (hence
//! `Seek`). No Cues: players find clusters by reading them.

use std::io::{self, Seek, SeekFrom, Write};

use crate::ogg::{opus_packet_samples, OpusHead, OPUS_SAMPLE_RATE};

/// Matroska element IDs (their marker bits included).
mod id {
    pub(super) const EBML: u32 = 0x1A45_DFA3;
    pub(super) const EBML_VERSION: u32 = 0x4286;
    pub(super) const EBML_READ_VERSION: u32 = 0x42F7;
    pub(super) const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub(super) const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub(super) const DOC_TYPE: u32 = 0x4282;
    pub(super) const DOC_TYPE_VERSION: u32 = 0x4287;
    pub(super) const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub(super) const SEGMENT: u32 = 0x1853_8067;
    pub(super) const INFO: u32 = 0x1549_A966;
    pub(super) const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub(super) const DURATION: u32 = 0x4489;
    pub(super) const MUXING_APP: u32 = 0x4D80;
    pub(super) const WRITING_APP: u32 = 0x5741;
    pub(super) const TRACKS: u32 = 0x1654_AE6B;
    pub(super) const TRACK_ENTRY: u32 = 0xAE;
    pub(super) const TRACK_NUMBER: u32 = 0xD7;
    pub(super) const TRACK_UID: u32 = 0x73C5;
    pub(super) const TRACK_TYPE: u32 = 0x83;
    pub(super) const FLAG_LACING: u32 = 0x9C;
    pub(super) const CODEC_ID: u32 = 0x86;
    pub(super) const CODEC_PRIVATE: u32 = 0x63A2;
    pub(super) const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub(super) const VIDEO: u32 = 0xE0;
    pub(super) const PIXEL_WIDTH: u32 = 0xB0;
    pub(super) const PIXEL_HEIGHT: u32 = 0xBA;
    pub(super) const AUDIO: u32 = 0xE1;
    pub(super) const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub(super) const CHANNELS: u32 = 0x9F;
    pub(super) const CLUSTER: u32 = 0x1F43_B675;
    pub(super) const TIMESTAMP: u32 = 0xE7;
    pub(super) const SIMPLE_BLOCK: u32 = 0xA3;
}

/// Nanoseconds per timestamp tick: 1 ms, WebM's usual scale.
const TIMESTAMP_SCALE_NS: u64 = 1_000_000;
/// WebM guidelines: clusters of at most 5 s.
const MAX_CLUSTER_MS: i64 = 5_000;
/// Matroska Opus mapping: 80 ms of pre-roll after a seek.
const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;
/// An 8-byte EBML size of "unknown", patched at the end.
const UNKNOWN_SIZE_8: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// A video codec WebM carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebmVideoCodec {
    /// `V_VP8`
    Vp8,
    /// `V_VP9`
    Vp9,
}

/// The video track of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebmVideoTrack {
    /// Its codec.
    pub codec: WebmVideoCodec,
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
}

/// The Opus track of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebmAudioTrack {
    /// 1 or 2.
    pub channels: u8,
}

/// Which track a block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebmTrackKind {
    /// The video track.
    Video,
    /// The audio track.
    Audio,
}

/// What went wrong writing a WebM file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebmError {
    /// The underlying writer failed.
    #[error("WebM I/O: {0}")]
    Io(#[from] io::Error),
    /// A block for a track the file was not created with.
    #[error("no {kind:?} track in this recording")]
    NoSuchTrack {
        /// The track asked for.
        kind: WebmTrackKind,
    },
    /// A block before the start of the recording, or more than 32.7 s
    /// before the cluster it would join: Matroska offsets a block from its
    /// cluster by a signed 16-bit count of ms.
    #[error("block at {timestamp_ms} ms is too far before its cluster at {cluster_ms} ms")]
    TooEarly {
        /// The block's time.
        timestamp_ms: i64,
        /// The cluster's time.
        cluster_ms: i64,
    },
}

/// Appends an EBML variable-length size (RFC 8794 §4), shortest form that is
/// not all ones (which would mean "unknown").
fn write_size(out: &mut Vec<u8>, size: u64) {
    let mut len = 1;
    while len < 8 && size >= (1u64 << (7 * len)) - 1 {
        len += 1;
    }
    let marked = size | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

fn write_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

fn element(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    write_id(out, id);
    write_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn uint_element(out: &mut Vec<u8>, id: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    element(out, id, &bytes[skip..]);
}

fn float_element(out: &mut Vec<u8>, id: u32, value: f64) {
    element(out, id, &value.to_be_bytes());
}

fn master(out: &mut Vec<u8>, id: u32, fill: impl FnOnce(&mut Vec<u8>)) {
    let mut body = Vec::new();
    fill(&mut body);
    element(out, id, &body);
}

/// Matroska TrackType values.
const TRACK_TYPE_VIDEO: u64 = 1;
const TRACK_TYPE_AUDIO: u64 = 2;

/// The fields every track entry starts with: its number (also its UID: one
/// recording, no collisions to avoid), its type, and no lacing (one frame a
/// block).
fn track_entry_head(entry: &mut Vec<u8>, number: u64, track_type: u64) {
    uint_element(entry, id::TRACK_NUMBER, number);
    uint_element(entry, id::TRACK_UID, number);
    uint_element(entry, id::TRACK_TYPE, track_type);
    uint_element(entry, id::FLAG_LACING, 0);
}

/// Writes a WebM file with up to one video and one Opus track.
#[derive(Debug)]
pub struct WebmWriter<W: Write + Seek> {
    writer: W,
    video: Option<WebmVideoTrack>,
    audio: Option<WebmAudioTrack>,
    /// Offset of the segment's size field and of its first child.
    segment_size_at: u64,
    segment_data_at: u64,
    /// Offset of the Duration value (8-byte float).
    duration_at: u64,
    /// The open cluster's time and body.
    cluster: Option<(i64, Vec<u8>)>,
    /// Latest end time of any block, in ms.
    end_ms: i64,
    blocks: u64,
}

impl<W: Write + Seek> WebmWriter<W> {
    /// Writes the EBML header, the Info and the Tracks of a recording with
    /// the given tracks.
    pub fn new(
        mut writer: W,
        video: Option<WebmVideoTrack>,
        audio: Option<WebmAudioTrack>,
    ) -> io::Result<Self> {
        let mut head = Vec::with_capacity(256);
        master(&mut head, id::EBML, |h| {
            uint_element(h, id::EBML_VERSION, 1);
            uint_element(h, id::EBML_READ_VERSION, 1);
            uint_element(h, id::EBML_MAX_ID_LENGTH, 4);
            uint_element(h, id::EBML_MAX_SIZE_LENGTH, 8);
            element(h, id::DOC_TYPE, b"webm");
            uint_element(h, id::DOC_TYPE_VERSION, 4);
            uint_element(h, id::DOC_TYPE_READ_VERSION, 2);
        });
        let start = writer.stream_position()?;
        write_id(&mut head, id::SEGMENT);
        let segment_size_at = start + head.len() as u64;
        head.extend_from_slice(&UNKNOWN_SIZE_8);
        let segment_data_at = start + head.len() as u64;
        let mut duration_offset = 0;
        let mut info_body_len = 0;
        let info_at = head.len();
        master(&mut head, id::INFO, |info| {
            uint_element(info, id::TIMESTAMP_SCALE, TIMESTAMP_SCALE_NS);
            element(info, id::MUXING_APP, b"realtimer");
            element(info, id::WRITING_APP, b"realtimer");
            write_id(info, id::DURATION);
            write_size(info, 8);
            duration_offset = info.len();
            info.extend_from_slice(&0f64.to_be_bytes());
            info_body_len = info.len();
        });
        let info_head_len = head.len() - info_at - info_body_len;
        let duration_at = start + (info_at + info_head_len + duration_offset) as u64;
        master(&mut head, id::TRACKS, |tracks| {
            let mut number = 1;
            if let Some(v) = video {
                master(tracks, id::TRACK_ENTRY, |t| {
                    track_entry_head(t, number, TRACK_TYPE_VIDEO);
                    let codec: &[u8] = match v.codec {
                        WebmVideoCodec::Vp8 => b"V_VP8",
                        WebmVideoCodec::Vp9 => b"V_VP9",
                    };
                    element(t, id::CODEC_ID, codec);
                    master(t, id::VIDEO, |vid| {
                        uint_element(vid, id::PIXEL_WIDTH, u64::from(v.width));
                        uint_element(vid, id::PIXEL_HEIGHT, u64::from(v.height));
                    });
                });
                number += 1;
            }
            if let Some(a) = audio {
                master(tracks, id::TRACK_ENTRY, |t| {
                    track_entry_head(t, number, TRACK_TYPE_AUDIO);
                    element(t, id::CODEC_ID, b"A_OPUS");
                    // The Opus mapping's CodecPrivate is the OpusHead; no
                    // pre-skip: RTP packets carry no encoder delay to trim.
                    let head = OpusHead {
                        pre_skip: 0,
                        ..OpusHead::for_recording(a.channels)
                    };
                    element(t, id::CODEC_PRIVATE, &head.to_bytes());
                    uint_element(t, id::SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS);
                    master(t, id::AUDIO, |aud| {
                        float_element(aud, id::SAMPLING_FREQUENCY, f64::from(OPUS_SAMPLE_RATE));
                        uint_element(aud, id::CHANNELS, u64::from(head.channels));
                    });
                });
            }
        });
        writer.write_all(&head)?;
        Ok(Self {
            writer,
            video,
            audio,
            segment_size_at,
            segment_data_at,
            duration_at,
            cluster: None,
            end_ms: 0,
            blocks: 0,
        })
    }

    /// Appends a video frame shown at `timestamp_ns` (on the recording's
    /// timeline, shared with the audio track, from 0).
    pub fn write_video(
        &mut self,
        frame: &[u8],
        timestamp_ns: i64,
        keyframe: bool,
    ) -> Result<(), WebmError> {
        if self.video.is_none() {
            return Err(WebmError::NoSuchTrack {
                kind: WebmTrackKind::Video,
            });
        }
        self.write_block(1, frame, timestamp_ns, keyframe, 0)
    }

    /// Appends an Opus packet that starts at `timestamp_ns`.
    pub fn write_audio(&mut self, packet: &[u8], timestamp_ns: i64) -> Result<(), WebmError> {
        if self.audio.is_none() {
            return Err(WebmError::NoSuchTrack {
                kind: WebmTrackKind::Audio,
            });
        }
        let track = if self.video.is_some() { 2 } else { 1 };
        let duration_ms = opus_packet_samples(packet)
            .map_or(0, |s| i64::from(s) * 1_000 / i64::from(OPUS_SAMPLE_RATE));
        self.write_block(track, packet, timestamp_ns, true, duration_ms)
    }

    /// Blocks written.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    fn write_block(
        &mut self,
        track: u8,
        data: &[u8],
        timestamp_ns: i64,
        keyframe: bool,
        duration_ms: i64,
    ) -> Result<(), WebmError> {
        let ms = timestamp_ns.div_euclid(TIMESTAMP_SCALE_NS as i64);
        if ms < 0 {
            return Err(WebmError::TooEarly {
                timestamp_ms: ms,
                cluster_ms: 0,
            });
        }
        let video_key = keyframe && track == 1 && self.video.is_some();
        let new_cluster = match &self.cluster {
            None => true,
            Some((start, _)) => {
                (video_key && ms > *start)
                    || ms - start >= MAX_CLUSTER_MS
                    || ms - start > i64::from(i16::MAX)
            }
        };
        if new_cluster {
            self.flush_cluster()?;
            self.cluster = Some((ms, Vec::with_capacity(64 << 10)));
        }
        let Some((start, body)) = &mut self.cluster else {
            unreachable!("a cluster was opened above");
        };
        let offset = i16::try_from(ms - *start).map_err(|_| WebmError::TooEarly {
            timestamp_ms: ms,
            cluster_ms: *start,
        })?;
        write_id(body, id::SIMPLE_BLOCK);
        write_size(body, 4 + data.len() as u64);
        // Track number as a 1-byte EBML size, the offset, the flags.
        body.push(0x80 | track);
        body.extend_from_slice(&offset.to_be_bytes());
        body.push(if keyframe { 0x80 } else { 0 });
        body.extend_from_slice(data);
        self.end_ms = self.end_ms.max(ms + duration_ms);
        self.blocks += 1;
        Ok(())
    }

    fn flush_cluster(&mut self) -> io::Result<()> {
        let Some((start, body)) = self.cluster.take() else {
            return Ok(());
        };
        let mut head = Vec::with_capacity(16);
        write_id(&mut head, id::CLUSTER);
        let mut timestamp = Vec::with_capacity(10);
        uint_element(&mut timestamp, id::TIMESTAMP, start.max(0) as u64);
        write_size(&mut head, (timestamp.len() + body.len()) as u64);
        self.writer.write_all(&head)?;
        self.writer.write_all(&timestamp)?;
        self.writer.write_all(&body)
    }

    /// Writes the last cluster, the segment's size and the duration, and
    /// gives back the writer. Without it the file has no duration and its
    /// last cluster is lost.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_cluster()?;
        let end = self.writer.stream_position()?;
        let size = end - self.segment_data_at;
        self.writer.seek(SeekFrom::Start(self.segment_size_at))?;
        self.writer
            .write_all(&(size | (1u64 << 56)).to_be_bytes())?;
        self.writer.seek(SeekFrom::Start(self.duration_at))?;
        self.writer
            .write_all(&(self.end_ms.max(0) as f64).to_be_bytes())?;
        self.writer.seek(SeekFrom::Start(end))?;
        self.writer.flush()?;
        Ok(self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn sizes_use_the_shortest_form_and_avoid_all_ones() {
        let sized = |n| {
            let mut v = Vec::new();
            write_size(&mut v, n);
            v
        };
        assert_eq!(sized(0), [0x80]);
        assert_eq!(sized(126), [0xFE]);
        // 127 in one byte would be 0xFF, "unknown".
        assert_eq!(sized(127), [0x40, 0x7F]);
        assert_eq!(sized(16_382), [0x7F, 0xFE]);
        assert_eq!(sized(16_383), [0x20, 0x3F, 0xFF]);
    }

    /// Finds `id` in `bytes` and returns the element's body (a shallow
    /// reader, enough to check what the writer put where).
    fn find(bytes: &[u8], id: &[u8]) -> usize {
        bytes.windows(id.len()).position(|w| w == id).unwrap() + id.len()
    }

    #[test]
    fn patches_segment_size_and_duration() {
        let video = WebmVideoTrack {
            codec: WebmVideoCodec::Vp8,
            width: 320,
            height: 240,
        };
        let audio = WebmAudioTrack { channels: 2 };
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), Some(video), Some(audio)).unwrap();
        let opus_20ms = [31 << 3, 1, 2, 3];
        for i in 0..100i64 {
            w.write_audio(&opus_20ms, i * 20_000_000).unwrap();
            if i % 3 == 0 {
                w.write_video(b"frame", i * 20_000_000, i % 30 == 0)
                    .unwrap();
            }
        }
        assert_eq!(w.blocks(), 134);
        let bytes = w.finish().unwrap().into_inner();
        // The segment's size reaches exactly the end of the file.
        let size_at = find(&bytes, &[0x18, 0x53, 0x80, 0x67]);
        let mut size = [0u8; 8];
        size.copy_from_slice(&bytes[size_at..size_at + 8]);
        assert_eq!(size[0], 0x01);
        let size = u64::from_be_bytes(size) & ((1 << 56) - 1);
        assert_eq!(size_at as u64 + 8 + size, bytes.len() as u64);
        // Duration: the last audio packet ends at 2 s.
        let d = find(&bytes, &[0x44, 0x89, 0x88]);
        let mut f = [0u8; 8];
        f.copy_from_slice(&bytes[d..d + 8]);
        assert_eq!(f64::from_be_bytes(f), 2_000.0);
        // A cluster per video keyframe (frames 0, 30, 60, 90).
        let clusters = bytes
            .windows(4)
            .filter(|w| *w == [0x1F, 0x43, 0xB6, 0x75])
            .count();
        assert_eq!(clusters, 4);
    }

    #[test]
    fn refuses_blocks_of_missing_tracks_and_far_before_their_cluster() {
        let mut w = WebmWriter::new(
            Cursor::new(Vec::new()),
            None,
            Some(WebmAudioTrack { channels: 1 }),
        )
        .unwrap();
        assert!(matches!(
            w.write_video(b"x", 0, true),
            Err(WebmError::NoSuchTrack {
                kind: WebmTrackKind::Video
            })
        ));
        w.write_audio(&[31 << 3], 40_000_000_000).unwrap();
        assert!(matches!(
            w.write_audio(&[31 << 3], 0),
            Err(WebmError::TooEarly { .. })
        ));
    }
}
