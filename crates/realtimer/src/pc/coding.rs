//! Raw media on tracks (the `codecs` feature): [`TrackLocal`] encodes I420
//! or RGBA frames and PCM with the negotiated codec, [`TrackRemote`]
//! decodes what it receives, through realtimer-codecs (libvpx, OpenH264,
//! libopus).

use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use realtimer_codecs::apm::{AudioProcessingConfig, AudioProcessor};
use realtimer_codecs::fmtp::{H264Params, OpusParams};
use realtimer_codecs::opus::{OpusDecoder, OpusEncoder, OpusEncoderConfig};
use realtimer_codecs::{
    video_decoder, video_encoder, CodecError, I420Frame, VideoCodec, VideoDecoder, VideoEncoder,
    VideoEncoderConfig,
};
use realtimer_media::{
    AudioJitterBuffer, AudioJitterConfig, AudioJitterStats, PayloadFormat, Playout,
};
use tracing::debug;

use crate::{Codec, RtcError};

use super::media::{Sample, TrackLocal, TrackRemote};

/// Why raw media could not be sent or received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The connection refused it (closed, track not added...).
    #[error(transparent)]
    Rtc(#[from] RtcError),
    /// The encoder or decoder failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// No codec is negotiated for the track yet.
    #[error("no codec negotiated for this track yet")]
    NotNegotiated,
    /// The negotiated codec is not the kind of media given (video frames
    /// to an Opus track, PCM to a video track).
    #[error("the track's codec {name} does not take this kind of media")]
    WrongKind {
        /// The negotiated codec's encoding name.
        name: String,
    },
}

/// The video target before the first bandwidth estimate: what browsers
/// start a 720p call at.
pub const DEFAULT_VIDEO_BITRATE: u32 = 1_000_000;
/// The estimate's share a video encoder is given at least and at most.
const VIDEO_BITRATE_RANGE: (u64, u64) = (50_000, 20_000_000);
/// A new target is passed to the encoder when it moves by more than a
/// tenth (OpenH264 restarts on a change, with a keyframe).
const RETARGET_FRACTION: u32 = 10;

/// A decoded picture and when it is to be shown.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    /// The picture.
    pub picture: I420Frame,
    /// The RTP timestamp of its packets (90 kHz).
    pub timestamp: u32,
    /// It was a keyframe.
    pub keyframe: bool,
    /// When its last packet arrived.
    pub arrived: Instant,
}

/// Decoded audio: interleaved 16-bit PCM at 48 kHz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// The samples, `channels` interleaved.
    pub pcm: Vec<i16>,
    /// 1 or 2.
    pub channels: u8,
    /// The RTP timestamp (48 kHz) of the first sample.
    pub timestamp: u32,
    /// Samples (per channel) at the start of `pcm` made up for lost
    /// packets: from the in-band FEC of this packet for the one just
    /// before, by loss concealment for any earlier.
    pub concealed_samples: usize,
}

struct VideoEncoding {
    codec: Codec,
    size: (u32, u32),
    encoder: Box<dyn VideoEncoder>,
    bitrate: u32,
    timestamp_90k: u64,
}

struct AudioEncoding {
    codec: Codec,
    channels: u8,
    encoder: OpusEncoder,
    frame: Duration,
    pending: Vec<i16>,
}

/// A track's encoders, made for the negotiated codec on first use and
/// again when it or the frame size changes.
#[derive(Default)]
pub(super) struct Encoding {
    video: Option<VideoEncoding>,
    audio: Option<AudioEncoding>,
    /// `set_audio_processing`'s processor and the PCM not yet processed
    /// (it takes 10 ms at a time).
    processing: Option<(SharedProcessor, Vec<i16>)>,
}

/// One audio processor shared by the track it cleans (capture) and the
/// track whose playout is its far end (render).
type SharedProcessor = Arc<Mutex<AudioProcessor>>;

/// Locks a shared processor (a panic elsewhere leaves it usable).
fn lock(p: &SharedProcessor) -> std::sync::MutexGuard<'_, AudioProcessor> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::fmt::Debug for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoding")
            .field(
                "video",
                &self
                    .video
                    .as_ref()
                    .map(|v| (&v.codec.name, v.size, v.bitrate)),
            )
            .field(
                "audio",
                &self.audio.as_ref().map(|a| (&a.codec.name, a.channels)),
            )
            .finish()
    }
}

impl TrackLocal {
    /// Encodes `frame` with the negotiated video codec (VP8, VP9 or H.264
    /// in the negotiated profile, level and packetization mode) and sends
    /// it as a sample lasting `duration`. The encoder aims at
    /// [`TrackLocal::target_bitrate`] (1 Mbit/s before an estimate), makes
    /// a keyframe when the peer asks (PLI, FIR), and is made again when
    /// the frame size changes. Encoding is CPU work done here: call it
    /// from a task that may block for a few milliseconds.
    pub async fn write_video_frame(
        &self,
        frame: &I420Frame,
        duration: Duration,
    ) -> Result<(), MediaError> {
        let sending = self.sending()?;
        let codec = self.packetized_codec()?.ok_or(MediaError::NotNegotiated)?;
        let kind =
            VideoCodec::from_encoding_name(&codec.name).ok_or_else(|| MediaError::WrongKind {
                name: codec.name.clone(),
            })?;
        let target = sending.target_bps.map_or(DEFAULT_VIDEO_BITRATE, |bps| {
            bps.clamp(VIDEO_BITRATE_RANGE.0, VIDEO_BITRATE_RANGE.1) as u32
        });
        let encoded = {
            let mut encoding = self
                .inner()
                .encoding
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let size = (frame.width(), frame.height());
            let state = match &mut encoding.video {
                Some(v) if v.codec == codec && v.size == size => v,
                slot => {
                    let fps = (1.0 / duration.as_secs_f64().max(1e-3))
                        .round()
                        .clamp(1.0, 120.0);
                    let config = VideoEncoderConfig {
                        width: size.0,
                        height: size.1,
                        bitrate_bps: target,
                        framerate: fps as u32,
                        h264: H264Params::from_fmtp(codec.fmtp.as_deref().unwrap_or("")),
                    };
                    slot.insert(VideoEncoding {
                        encoder: video_encoder(kind, &config)?,
                        codec: codec.clone(),
                        size,
                        bitrate: target,
                        timestamp_90k: 0,
                    })
                }
            };
            if state.bitrate.abs_diff(target) > state.bitrate / RETARGET_FRACTION {
                state.encoder.set_bitrate(target)?;
                state.bitrate = target;
            }
            if self.take_keyframe_request() {
                state.encoder.request_keyframe();
            }
            let encoded = state.encoder.encode(frame, state.timestamp_90k)?;
            state.timestamp_90k += (duration.as_secs_f64() * 90_000.0).round() as u64;
            encoded
        };
        // A frame the encoder dropped sends nothing but takes its time.
        let data = encoded.map(|e| e.data).unwrap_or_default();
        self.write_sample(Sample::new(data, duration)).await?;
        Ok(())
    }

    /// [`TrackLocal::write_video_frame`] for an RGBA picture (8 bits a
    /// channel, `width * 4` bytes a row), converted to I420 first.
    pub async fn write_rgba_frame(
        &self,
        width: u32,
        height: u32,
        rgba: &[u8],
        duration: Duration,
    ) -> Result<(), MediaError> {
        let frame = I420Frame::from_rgba(width, height, rgba)?;
        self.write_video_frame(&frame, duration).await
    }

    /// Encodes interleaved 16-bit PCM at 48 kHz (`channels` 1 or 2) with
    /// Opus as negotiated (in-band FEC when the peer said
    /// `useinbandfec=1`, packets of 20 ms or the `minptime` it asked for,
    /// DTX on `usedtx=1`), and sends each packet as a sample. Any length:
    /// what does not fill a packet waits for the next call.
    pub async fn write_audio(&self, pcm: &[i16], channels: u8) -> Result<(), MediaError> {
        let codec = self.packetized_codec()?.ok_or(MediaError::NotNegotiated)?;
        if PayloadFormat::from_codec(&codec.name, None) != Some(PayloadFormat::Opus) {
            return Err(MediaError::WrongKind { name: codec.name });
        }
        let (packets, frame) = {
            let mut encoding = self
                .inner()
                .encoding
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let encoding = &mut *encoding;
            let state = match &mut encoding.audio {
                Some(a) if a.codec == codec && a.channels == channels => a,
                slot => {
                    let params = OpusParams::from_fmtp(codec.fmtp.as_deref().unwrap_or(""));
                    let config = OpusEncoderConfig {
                        channels,
                        ..OpusEncoderConfig::from_params(&params)
                    };
                    slot.insert(AudioEncoding {
                        encoder: OpusEncoder::new(&config)?,
                        codec: codec.clone(),
                        channels,
                        frame: Duration::from_millis(u64::from(config.frame_ms)),
                        pending: Vec::new(),
                    })
                }
            };
            match &mut encoding.processing {
                Some((processor, raw)) => {
                    let mut processor = lock(processor);
                    if processor.frame_len() != 480 * usize::from(channels) {
                        return Err(CodecError::UnsupportedChannels { channels }.into());
                    }
                    raw.extend_from_slice(pcm);
                    let mut at = 0;
                    while raw.len() - at >= processor.frame_len() {
                        let frame = &mut raw[at..at + processor.frame_len()];
                        processor.process_capture(frame, 0)?;
                        at += frame.len();
                    }
                    state.pending.extend(raw.drain(..at));
                }
                None => state.pending.extend_from_slice(pcm),
            }
            let chunk = state.encoder.frame_samples() * usize::from(channels);
            let mut packets = Vec::new();
            let mut at = 0;
            while state.pending.len() - at >= chunk {
                packets.push(state.encoder.encode(&state.pending[at..at + chunk])?);
                at += chunk;
            }
            state.pending.drain(..at);
            (packets, state.frame)
        };
        for packet in packets {
            self.write_sample(Sample::new(packet, frame)).await?;
        }
        Ok(())
    }
}

impl TrackLocal {
    /// Processes what [`TrackLocal::write_audio`] is given before it is
    /// encoded, as a browser processes its microphone: the echo of
    /// `far_end`'s [`TrackRemote::play_audio`] output removed (what the
    /// loudspeaker played, found again in the microphone), noise
    /// suppressed, the level evened out, as `config` says. `channels` is
    /// what `write_audio` will be given. Through WebRTC's AudioProcessing
    /// module (`codecs::apm`); [`CodecError::NotBuilt`] where this build
    /// lacks it.
    pub async fn set_audio_processing(
        &self,
        config: AudioProcessingConfig,
        channels: u8,
        far_end: Option<&TrackRemote>,
    ) -> Result<(), MediaError> {
        let processor = Arc::new(Mutex::new(AudioProcessor::new(config, channels)?));
        if let Some(remote) = far_end {
            remote.decoding.lock().await.echo_reference = Some(Arc::clone(&processor));
        }
        self.inner()
            .encoding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .processing = Some((processor, Vec::new()));
        Ok(())
    }
}

/// Gives `pcm` (as played, `channels` interleaved) to `processor` as its
/// far end, 10 ms at a time in the processor's channel count; a partial
/// last frame is left out.
fn render(processor: &SharedProcessor, pcm: &[i16], channels: u8) -> Result<(), CodecError> {
    let mut processor = lock(processor);
    let to = processor.frame_len() / 480;
    let from = usize::from(channels.max(1));
    let mut frame = Vec::with_capacity(processor.frame_len());
    for chunk in pcm.chunks_exact(480 * from) {
        frame.clear();
        for sample in chunk.chunks_exact(from) {
            let mean = sample.iter().map(|&s| i32::from(s)).sum::<i32>() / from as i32;
            match to {
                1 => frame.push(mean as i16),
                _ if from == 2 => frame.extend_from_slice(sample),
                _ => frame.extend_from_slice(&[sample[0], sample[0]]),
            }
        }
        processor.process_render(&frame)?;
    }
    Ok(())
}

struct AudioDecoding {
    decoder: OpusDecoder,
    channels: u8,
    /// Samples (per channel) of the last packet: what a lost one is
    /// assumed to have held.
    last_samples: usize,
}

/// `play_audio`'s state: the jitter buffer, its decoder and the playout
/// clock.
struct AudioPlayout {
    buffer: AudioJitterBuffer,
    decoder: AudioDecoding,
    /// When the next frame is due.
    next: Instant,
}

/// A track's decoders, made for the codec of what arrives.
#[derive(Default)]
pub(super) struct Decoding {
    video: Option<(VideoCodec, Box<dyn VideoDecoder>)>,
    audio: Option<AudioDecoding>,
    playout: Option<AudioPlayout>,
    /// The processor this track's playout is the far end of.
    echo_reference: Option<SharedProcessor>,
}

impl std::fmt::Debug for Decoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoding")
            .field("video", &self.video.as_ref().map(|v| v.0))
            .field("audio", &self.audio.as_ref().map(|a| a.channels))
            .field("playout", &self.playout.as_ref().map(|p| p.buffer.stats()))
            .finish()
    }
}

fn video_codec(format: PayloadFormat) -> Option<VideoCodec> {
    match format {
        PayloadFormat::Vp8 => Some(VideoCodec::Vp8),
        PayloadFormat::Vp9 => Some(VideoCodec::Vp9),
        PayloadFormat::H264 { .. } => Some(VideoCodec::H264),
        _ => None,
    }
}

impl TrackRemote {
    /// An Opus decoder for this track: stereo when the negotiated `fmtp`
    /// says `stereo=1`, else mono.
    fn opus_decoding(&self) -> Result<AudioDecoding, MediaError> {
        let opus = self
            .info()
            .codecs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case("opus"));
        let params = OpusParams::from_fmtp(opus.and_then(|c| c.fmtp.as_deref()).unwrap_or(""));
        let channels = if params.stereo { 2 } else { 1 };
        Ok(AudioDecoding {
            decoder: OpusDecoder::new(channels)?,
            channels,
            last_samples: 960,
        })
    }

    /// The next frame of audio at the pace it is played: waits for the
    /// playout clock (one frame, 20 ms for usual Opus, after the last
    /// call), takes in the packets that came meanwhile, and gives what
    /// the jitter buffer ([`AudioJitterBuffer`]) says to play, decoded:
    /// the due packet, a lost one rebuilt from the next one's in-band FEC,
    /// concealment, or silence before playout starts. Its delay follows
    /// the measured jitter. `Ok(None)` once the connection is gone. Use
    /// either this or the other reads of the track.
    pub async fn play_audio(&self) -> Result<Option<AudioFrame>, MediaError> {
        let mut packets = self.packets.lock().await;
        let mut decoding = self.decoding.lock().await;
        let decoding = &mut *decoding;
        let opus = self
            .info()
            .codecs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case("opus"))
            .cloned()
            .ok_or_else(|| MediaError::WrongKind {
                name: self
                    .info()
                    .codecs
                    .first()
                    .map_or_else(String::new, |c| c.name.clone()),
            })?;
        let state = match &mut decoding.playout {
            Some(p) => p,
            slot => {
                let fec = opus
                    .fmtp
                    .as_deref()
                    .is_some_and(|f| OpusParams::from_fmtp(f).use_inband_fec);
                let config = AudioJitterConfig {
                    clock_rate: opus.clock_rate,
                    fec,
                    ..AudioJitterConfig::default()
                };
                slot.insert(AudioPlayout {
                    buffer: AudioJitterBuffer::new(config),
                    decoder: self.opus_decoding()?,
                    next: super::now(),
                })
            }
        };
        let deadline = tokio::time::Instant::from_std(state.next);
        loop {
            tokio::select! {
                packet = packets.recv() => match packet.map(|p| self.unwrap_red(p)) {
                    Some(Some(u)) if u.primary.payload_type == opus.payload_type => {
                        let (now, p) = (super::now(), u.packet);
                        state.buffer.insert(now, p.sequence_number, p.timestamp, u.primary.data);
                        // RED's copies of earlier packets fill what was lost.
                        for block in u.redundant {
                            if block.payload_type == opus.payload_type {
                                state.buffer.insert_redundant(
                                    now,
                                    p.timestamp,
                                    block.timestamp_offset,
                                    block.data,
                                );
                            }
                        }
                    }
                    Some(_) => {}
                    None => return Ok(None),
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let now = super::now();
        let frame = Duration::from_secs_f64(
            f64::from(state.buffer.frame_samples()) / f64::from(opus.clock_rate),
        );
        // The clock ticks on from where it was; a caller that fell behind
        // by more than a frame starts afresh.
        state.next = if now > state.next + frame {
            now + frame
        } else {
            state.next + frame
        };
        let d = &mut state.decoder;
        let mut pcm = Vec::new();
        let (decoded, concealed) = match state.buffer.pull(now) {
            Playout::Packet(p) => (d.decoder.decode(&p, &mut pcm)?, 0),
            Playout::Fec { next, samples } => {
                let n = d.decoder.decode_fec(&next, samples as usize, &mut pcm)?;
                (n, n)
            }
            Playout::Conceal { samples } => {
                let n = d.decoder.conceal(samples as usize, &mut pcm)?;
                (n, n)
            }
            Playout::Silence { samples } => {
                pcm.resize(samples as usize * usize::from(d.channels), 0);
                (samples as usize, 0)
            }
        };
        d.last_samples = decoded;
        self.playout().audio = Some(state.buffer.stats());
        if let Some(processor) = &decoding.echo_reference {
            render(processor, &pcm, d.channels)?;
        }
        Ok(Some(AudioFrame {
            pcm,
            channels: d.channels,
            timestamp: state.buffer.pulled_timestamp().unwrap_or(0),
            concealed_samples: concealed,
        }))
    }

    /// [`TrackRemote::play_audio`]'s jitter buffer statistics, Chrome's
    /// `inbound-rtp` names (`jitterBufferDelay`, `concealedSamples`...);
    /// `None` before the first call.
    pub async fn audio_stats(&self) -> Option<AudioJitterStats> {
        Some(self.decoding.lock().await.playout.as_ref()?.buffer.stats())
    }

    /// The next decoded picture (from [`TrackRemote::read_sample`]'s
    /// frames, decoded with the codec of their payload type); `Ok(None)`
    /// once the connection is gone. A frame the decoder refuses is
    /// skipped and a keyframe asked for.
    pub async fn read_video_frame(&self) -> Result<Option<VideoFrame>, MediaError> {
        let mut decoding = self.decoding.lock().await;
        loop {
            let Some(frame) = self.read_sample().await else {
                return Ok(None);
            };
            let Some(codec) = video_codec(frame.format) else {
                return Err(MediaError::WrongKind {
                    name: format!("{:?}", frame.format),
                });
            };
            let decoder = match &mut decoding.video {
                Some((c, d)) if *c == codec => d,
                slot => &mut slot.insert((codec, video_decoder(codec)?)).1,
            };
            match decoder.decode(&frame.data) {
                Ok(Some(picture)) => {
                    let mut stats = self.playout();
                    stats.frames_decoded += 1;
                    stats.key_frames_decoded += u64::from(frame.keyframe);
                    stats.frame_delay += super::now()
                        .saturating_duration_since(frame.arrived)
                        .as_secs_f64();
                    drop(stats);
                    return Ok(Some(VideoFrame {
                        picture,
                        timestamp: frame.timestamp,
                        keyframe: frame.keyframe,
                        arrived: frame.arrived,
                    }));
                }
                Ok(None) => {}
                Err(e) => {
                    debug!("frame not decoded, asking for a keyframe: {e}");
                    let _ = self.request_keyframe().await;
                }
            }
        }
    }

    /// The next Opus packet decoded to PCM, with what was lost before it
    /// made up (in-band FEC for the packet just before when the sender
    /// added it, loss concealment otherwise); `Ok(None)` once the
    /// connection is gone. Stereo when the negotiated `fmtp` says
    /// `stereo=1`, else mono.
    pub async fn read_audio(&self) -> Result<Option<AudioFrame>, MediaError> {
        let mut decoding = self.decoding.lock().await;
        let Some(frame) = self.read_sample().await else {
            return Ok(None);
        };
        if frame.format != PayloadFormat::Opus {
            return Err(MediaError::WrongKind {
                name: format!("{:?}", frame.format),
            });
        }
        let state = match &mut decoding.audio {
            Some(a) => a,
            slot => slot.insert(self.opus_decoding()?),
        };
        let mut pcm = Vec::new();
        let mut concealed = 0;
        for i in 0..frame.skipped_before {
            concealed += if i + 1 == frame.skipped_before {
                state
                    .decoder
                    .decode_fec(&frame.data, state.last_samples, &mut pcm)?
            } else {
                state.decoder.conceal(state.last_samples, &mut pcm)?
            };
        }
        let decoded = state.decoder.decode(&frame.data, &mut pcm)?;
        state.last_samples = decoded;
        Ok(Some(AudioFrame {
            pcm,
            channels: state.channels,
            timestamp: frame.timestamp.wrapping_sub(concealed as u32),
            concealed_samples: concealed,
        }))
    }
}
