//! Tracks on the tokio side: [`TrackLocal`] (what we send, with the
//! peer's keyframe requests) and [`TrackRemote`] (what the peer sends).
//! Three levels each way: RTP packets (`write_rtp`, `read_rtp`), samples
//! (whole encoded frames: `write_sample`, `read_sample`, packetized by the
//! negotiated codec through realtimer-media), and with the `codecs`
//! feature raw frames and PCM that realtimer encodes and decodes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use realtimer_media::{
    FrameBuffer, FrameBufferConfig, PayloadFormat, ReceivedFrame, RedEncoder, SampleWriter,
};
use tokio::sync::{mpsc, watch};
use tracing::debug;

use crate::{
    Codec, Feedback, LayerTarget, MediaKind, MediaRef, RtpPacket, SendLayerInit, TrackInfo,
};
use crate::{RtcError, StateError};

use super::{call, now, Command};

/// Received RTP packets a [`TrackRemote`] holds for its reader; past it
/// the newest are dropped (late media is useless; the reader asks for a
/// keyframe to recover).
pub(super) const TRACK_QUEUE: usize = 512;

/// Feedback messages a [`TrackLocal`] holds for its reader; past it the
/// newest are dropped (keyframe requests repeat).
pub(super) const FEEDBACK_QUEUE: usize = 16;

/// A track we send (MediaStreamTrack + RTCRtpSender): made with
/// [`TrackLocal::new`], given to [`super::PeerConnection::add_track`],
/// then fed RTP packets with [`TrackLocal::write_rtp`]. Clones share the
/// track. A simulcast track ([`TrackLocal::simulcast`], RFC 8853) sends
/// several encodings of one source, each on its own SSRC and rid.
#[derive(Debug, Clone)]
pub struct TrackLocal {
    inner: Arc<LocalInner>,
}

#[derive(Debug)]
pub(super) struct LocalInner {
    kind: MediaKind,
    stream_id: String,
    track_id: String,
    /// Simulcast layers, lowest first; empty for one plain stream.
    layers: Vec<SendLayerInit>,
    binding: OnceLock<Binding>,
    /// setCodecPreferences given before the track was added: applied to
    /// its transceiver by `add_track`.
    preferred_codecs: Mutex<Vec<Codec>>,
    /// The packetizer of `write_sample`, for the codec (and RED payload
    /// type) it was made for, with its RED encoder when sending RED.
    writer: Mutex<Option<Packetizing>>,
    /// The packetizers of `write_sample_layer`, by rid.
    layer_writers: Mutex<HashMap<String, Packetizing>>,
    /// The encoders of `write_video_frame` and `write_audio`.
    #[cfg(feature = "codecs")]
    pub(super) encoding: Mutex<super::coding::Encoding>,
}

/// How `write_sample` turns samples into packets now.
#[derive(Debug)]
struct Packetizing {
    codec: Codec,
    red: Option<u8>,
    writer: SampleWriter,
    red_encoder: Option<RedEncoder>,
}

/// Earlier packets each RED packet we send carries (RFC 2198): two, so
/// two consecutive losses are rebuilt whole.
const RED_DISTANCE: usize = 2;

#[derive(Debug)]
struct Binding {
    media: MediaRef,
    commands: mpsc::Sender<Command>,
    feedback: tokio::sync::Mutex<mpsc::Receiver<Feedback>>,
    /// What the driver says about sending (codec, target bitrate).
    sending: watch::Receiver<Sending>,
    /// The peer asked for a keyframe since the encoder last looked.
    keyframe_wanted: Arc<AtomicBool>,
}

/// What a track sends with, as the driver last saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Sending {
    /// The negotiated codec samples are packetized for: the first one the
    /// pipeline carries; `None` before negotiation.
    pub(super) codec: Option<Codec>,
    /// The encoder's target, bits per second: the track's share of the
    /// bandwidth estimate; `None` until the first estimate.
    pub(super) target_bps: Option<u64>,
    /// The first negotiated codec's name when the pipeline packetizes
    /// none of them (`codec` is `None` then): samples are refused with
    /// [`StateError::UnsupportedCodec`] rather than dropped.
    pub(super) unsupported: Option<String>,
    /// A simulcast track's layers' targets (`Rtc::layer_targets`).
    pub(super) layers: Vec<LayerTarget>,
    /// RED's payload type when Opus samples go out wrapped in it (RFC
    /// 2198): `red` was negotiated ahead of `codec` with blocks of its
    /// payload type (fmtp `111/111`, or none).
    pub(super) red: Option<u8>,
}

/// The payload type of `red` in `codecs` when it comes before `codec`
/// (Opus) and its blocks are of that codec (RFC 2198 §5's fmtp lists the
/// blocks' payload types; Chromium writes `111/111`), so the peer prefers
/// it: samples of `codec` then go out in RED.
fn red_ahead_of(codecs: &[Codec], codec: &Codec) -> Option<u8> {
    if !codec.name.eq_ignore_ascii_case("opus") {
        return None;
    }
    let at = codecs.iter().position(|c| c == codec)?;
    codecs[..at]
        .iter()
        .find(|c| {
            c.name.eq_ignore_ascii_case("red")
                && c.clock_rate == codec.clock_rate
                && c.fmtp.as_deref().is_none_or(|f| {
                    f.split('/')
                        .all(|pt| pt.trim().parse::<u8>() == Ok(codec.payload_type))
                })
        })
        .map(|c| c.payload_type)
}

/// The driver's end of a [`TrackLocal`]: keyframe requests, the
/// negotiated codec and the target bitrate go to the track through it.
#[derive(Debug)]
pub(super) struct SenderEnd {
    feedback: mpsc::Sender<Feedback>,
    sending: watch::Sender<Sending>,
    keyframe_wanted: Arc<AtomicBool>,
    /// The track sends simulcast layers.
    simulcast: bool,
}

impl SenderEnd {
    /// Whether the track sends simulcast layers (their targets follow
    /// the track's).
    pub(super) fn is_simulcast(&self) -> bool {
        self.simulcast
    }

    /// A request of the peer's receiver: queued for
    /// [`TrackLocal::feedback`], and flagged for the track's encoder.
    pub(super) fn on_feedback(&self, feedback: Feedback) {
        if matches!(feedback, Feedback::Keyframe(_)) {
            self.keyframe_wanted.store(true, Ordering::Relaxed);
        }
        let _ = self.feedback.try_send(feedback);
    }

    /// After negotiation: the first codec of `codecs` the pipeline can
    /// packetize.
    pub(super) fn on_negotiated(&self, codecs: &[Codec]) {
        let codec = codecs
            .iter()
            .find(|c| PayloadFormat::from_codec(&c.name, c.fmtp.as_deref()).is_some())
            .cloned();
        let unsupported = codecs
            .first()
            .filter(|_| codec.is_none())
            .map(|c| c.name.clone());
        let red = codec.as_ref().and_then(|c| red_ahead_of(codecs, c));
        self.sending.send_if_modified(|s| {
            let changed = s.codec != codec || s.unsupported != unsupported || s.red != red;
            s.codec = codec;
            s.unsupported = unsupported;
            s.red = red;
            changed
        });
    }

    /// The core's target for this track moved to `bps` (its share of
    /// the estimate: audio first, up to 64 kbit/s each, video tracks
    /// share the rest).
    pub(super) fn on_target(&self, bps: u64) {
        self.sending.send_if_modified(|s| {
            let changed = s.target_bps != Some(bps);
            s.target_bps = Some(bps);
            changed
        });
    }

    /// A simulcast track's layers' targets moved (with the track's target,
    /// or the peer's answer paused a layer).
    pub(super) fn on_layer_targets(&self, layers: Vec<LayerTarget>) {
        self.sending.send_if_modified(|s| {
            let changed = s.layers != layers;
            s.layers = layers;
            changed
        });
    }
}

impl TrackLocal {
    /// A track of `kind` with id `track_id`, in stream `stream_id` (the
    /// peer sees both in `a=msid`, RFC 8830 §2).
    pub fn new(kind: MediaKind, stream_id: &str, track_id: &str) -> TrackLocal {
        Self::simulcast(kind, stream_id, track_id, &[])
    }

    /// A track sent as simulcast layers (RFC 8853), lowest first, e.g. a
    /// quarter, a half and the full size of a camera: each layer has its
    /// own SSRC, RTX SSRC and sequence numbers and carries its rid (RFC
    /// 8852) on every packet. Write each layer with
    /// [`TrackLocal::write_sample_layer`] or
    /// [`TrackLocal::write_rtp_layer`], encoded at its
    /// [`TrackLocal::layer_targets`]. A peer that answers without simulcast
    /// receives the first layer as a plain stream. `layers` empty: a plain
    /// track, as [`TrackLocal::new`]. The rids are checked when the track is
    /// added ([`super::PeerConnection::add_track`]: RFC 8851 characters, at
    /// most 16 bytes, distinct, 1 to 8 layers).
    pub fn simulcast(
        kind: MediaKind,
        stream_id: &str,
        track_id: &str,
        layers: &[SendLayerInit],
    ) -> TrackLocal {
        TrackLocal {
            inner: Arc::new(LocalInner {
                kind,
                stream_id: stream_id.to_owned(),
                track_id: track_id.to_owned(),
                layers: layers.to_vec(),
                binding: OnceLock::new(),
                preferred_codecs: Mutex::new(Vec::new()),
                writer: Mutex::new(None),
                layer_writers: Mutex::new(HashMap::new()),
                #[cfg(feature = "codecs")]
                encoding: Mutex::new(super::coding::Encoding::default()),
            }),
        }
    }

    /// Audio or video.
    pub fn kind(&self) -> MediaKind {
        self.inner.kind
    }

    /// The stream id.
    pub fn stream_id(&self) -> &str {
        &self.inner.stream_id
    }

    /// The track id.
    pub fn track_id(&self) -> &str {
        &self.inner.track_id
    }

    /// Its simulcast layers, lowest first (empty: one plain stream).
    pub fn layers(&self) -> &[SendLayerInit] {
        &self.inner.layers
    }

    /// What each simulcast layer's encoder should aim at now, lowest
    /// first: the track's [`TrackLocal::target_bitrate`] split over the
    /// layers, each up to its `max_bitrate`; a layer whose `bitrate` is
    /// `None` is paused (the estimate does not reach it, or the peer does
    /// not receive it): write nothing on it. Follows the estimate as
    /// [`TrackLocal::target_bitrate_changed`] does; empty before the first
    /// estimate and for a plain track.
    pub fn layer_targets(&self) -> Vec<LayerTarget> {
        self.inner
            .binding
            .get()
            .map(|b| b.sending.borrow().layers.clone())
            .unwrap_or_default()
    }

    /// Binds the track to a connection's transceiver (once); the driver's
    /// end, or `None` when it was bound already.
    pub(super) fn bind(
        &self,
        media: MediaRef,
        commands: mpsc::Sender<Command>,
    ) -> Option<SenderEnd> {
        let (feedback_tx, feedback) = mpsc::channel(FEEDBACK_QUEUE);
        let (sending_tx, sending) = watch::channel(Sending::default());
        let keyframe_wanted = Arc::new(AtomicBool::new(false));
        self.inner
            .binding
            .set(Binding {
                media,
                commands,
                feedback: tokio::sync::Mutex::new(feedback),
                sending,
                keyframe_wanted: keyframe_wanted.clone(),
            })
            .ok()?;
        Some(SenderEnd {
            feedback: feedback_tx,
            sending: sending_tx,
            keyframe_wanted,
            simulcast: !self.inner.layers.is_empty(),
        })
    }

    /// The codec [`TrackLocal::write_sample`] packetizes for: the first
    /// negotiated one realtimer carries (Opus, VP8, VP9, H.264); `None`
    /// before negotiation.
    pub fn codec(&self) -> Option<Codec> {
        self.inner.binding.get()?.sending.borrow().codec.clone()
    }

    /// The payload type of RED (RFC 2198) that [`TrackLocal::write_sample`]
    /// wraps Opus in, when the peer negotiated `red` ahead of Opus; `None`
    /// when samples go out plain (or before negotiation).
    pub fn red_payload_type(&self) -> Option<u8> {
        self.inner.binding.get()?.sending.borrow().red
    }

    /// What the encoder should aim at, bits per second: this track's share
    /// of the connection's bandwidth estimate (audio takes up to 64 kbit/s,
    /// video tracks share the rest); `None` before the first estimate.
    pub fn target_bitrate(&self) -> Option<u64> {
        self.inner.binding.get()?.sending.borrow().target_bps
    }

    /// setCodecPreferences (W3C webrtc-pc §5.4) of this track's
    /// transceiver: it offers and accepts only `codecs`, in this order
    /// (the first is the one asked for), e.g. `[VP9]` to send a VP9 file
    /// to a browser that prefers VP8. Each must be one of the connection's
    /// codecs (`PeerConnectionConfig::rtc.codecs`, by default
    /// [`Codec::defaults`]) of the track's kind, matched by name, clock
    /// rate and `profile-id`/`packetization-mode`; payload types are the
    /// connection's. Empty: all of them again. Given before
    /// [`super::PeerConnection::add_track`], it applies there (and
    /// `add_track` fails with the error); given after, it applies from the
    /// transceiver's next offer or answer (one already negotiated keeps its
    /// codecs until then).
    ///
    /// Errors: [`RtcError::InvalidModification`] with
    /// [`crate::ModificationError::CodecNotSupported`] for a codec of the
    /// other kind or one the connection does not have.
    pub async fn set_codec_preferences(&self, codecs: &[Codec]) -> Result<(), RtcError> {
        match self.inner.binding.get() {
            Some(b) => {
                let (media, codecs) = (b.media, codecs.to_vec());
                call(&b.commands, |r| {
                    Command::SetCodecPreferences(media, codecs, r)
                })
                .await
            }
            None => {
                *self
                    .inner
                    .preferred_codecs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = codecs.to_vec();
                Ok(())
            }
        }
    }

    /// The preferences given before the track was added.
    pub(super) fn preferred_codecs(&self) -> Vec<Codec> {
        self.inner
            .preferred_codecs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for [`TrackLocal::target_bitrate`] to move (the estimate
    /// changed by 5% or more, at most every 200 ms) and returns the new
    /// target, for an encoder that sleeps between frames or a simulcast
    /// sender choosing layers; `None` once the connection is gone (or
    /// before the track was added).
    pub async fn target_bitrate_changed(&self) -> Option<u64> {
        let mut sending = self.inner.binding.get()?.sending.clone();
        let last = sending.borrow_and_update().target_bps;
        loop {
            sending.changed().await.ok()?;
            let target = sending.borrow_and_update().target_bps;
            if target != last {
                return target;
            }
        }
    }

    /// Whether the peer asked for a keyframe (PLI or FIR) since the last
    /// call; for an application that encodes and uses
    /// [`TrackLocal::write_sample`].
    pub fn take_keyframe_request(&self) -> bool {
        self.inner
            .binding
            .get()
            .is_some_and(|b| b.keyframe_wanted.swap(false, Ordering::Relaxed))
    }

    /// Sends one sample: a whole encoded frame (H.264: an Annex B access
    /// unit; VP8, VP9: the encoder's frame) or one Opus packet, encoded
    /// with [`TrackLocal::codec`], shown for `duration`. It is split into
    /// RTP payloads by that codec's format (RFC 7587, 7741, 9628, 6184 in
    /// the negotiated packetization mode) under a timestamp that advances
    /// by each sample's duration. Opus goes out in RED (RFC 2198), each
    /// packet with copies of the two before it, when `red` was negotiated
    /// ahead of Opus (as Chromium offers `red/48000/2` first when it
    /// prefers it), so the peer rebuilds isolated losses whole. Before
    /// negotiation the sample is dropped
    /// (with a debug log), as with [`TrackLocal::write_rtp`]. One writer
    /// at a time. A negotiated codec the pipeline cannot packetize is
    /// refused with [`StateError::UnsupportedCodec`].
    pub async fn write_sample(&self, sample: Sample) -> Result<(), RtcError> {
        let packets = {
            let mut writer = self.inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            self.packetize(&mut writer, &sample)?
        };
        self.write_packets(None, packets).await
    }

    /// Hands one sample's packets to the connection in one message (one
    /// wakeup of its driver a frame, not one a packet: a 720p frame is
    /// about six packets). Waits while the command queue is full.
    async fn write_packets(
        &self,
        rid: Option<&str>,
        packets: Vec<RtpPacket>,
    ) -> Result<(), RtcError> {
        let b = self.binding()?;
        if let Some(rid) = rid {
            self.check_rid(b.media, rid)?;
        }
        if packets.is_empty() {
            return Ok(());
        }
        b.commands
            .send(Command::WriteSample(
                b.media,
                rid.map(str::to_owned),
                packets,
            ))
            .await
            .map_err(|_| RtcError::from(StateError::Closed))
    }

    /// [`TrackLocal::write_sample`] on the simulcast layer `rid`: each
    /// layer has its own packetizer (sequence numbers and timestamps).
    /// Fails for a rid the track was not made with
    /// ([`crate::ArgumentError::UnknownRid`]).
    pub async fn write_sample_layer(&self, rid: &str, sample: Sample) -> Result<(), RtcError> {
        let packets = {
            let mut writers = self
                .inner
                .layer_writers
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut slot = writers.remove(rid);
            let packets = self.packetize(&mut slot, &sample);
            if let Some(w) = slot {
                writers.insert(rid.to_owned(), w);
            }
            packets?
        };
        self.write_packets(Some(rid), packets).await
    }

    /// `sample` as RTP packets of the codec samples are packetized for,
    /// by the packetizer in `slot` (made anew when the codec changed);
    /// none before negotiation (with a debug log).
    fn packetize(
        &self,
        slot: &mut Option<Packetizing>,
        sample: &Sample,
    ) -> Result<Vec<RtpPacket>, RtcError> {
        let media = self.binding()?.media;
        let Some(codec) = self.packetized_codec()? else {
            debug!(track = %self.inner.track_id, "sample dropped: no codec negotiated yet");
            return Ok(Vec::new());
        };
        let red = self.binding()?.sending.borrow().red;
        let p = match slot {
            Some(p) if p.codec == codec && p.red == red => p,
            slot => {
                let format = PayloadFormat::from_codec(&codec.name, codec.fmtp.as_deref())
                    .ok_or_else(|| StateError::UnsupportedCodec {
                        media,
                        codec: codec.name.clone(),
                    })?;
                // RFC 3550 §5.1: random first sequence number and timestamp.
                let writer =
                    SampleWriter::new(format, codec.clock_rate, rand::random(), rand::random());
                slot.insert(Packetizing {
                    red_encoder: red.map(|_| RedEncoder::new(codec.payload_type, RED_DISTANCE)),
                    codec: codec.clone(),
                    red,
                    writer,
                })
            }
        };
        let mut out = Vec::new();
        p.writer.write(&sample.data, sample.duration, &mut out);
        if let Some(encoder) = &mut p.red_encoder {
            for packet in &mut out {
                packet.payload = encoder.encode(packet.timestamp, &packet.payload);
            }
        }
        let payload_type = red.unwrap_or(codec.payload_type);
        Ok(out
            .into_iter()
            .map(|p| RtpPacket {
                payload_type,
                sequence_number: p.sequence_number,
                timestamp: p.timestamp,
                marker: p.marker,
                ssrc: 0,
                payload: p.payload,
            })
            .collect())
    }

    /// Sends an RTP packet: the payload type must be one of the
    /// negotiated codecs; the SSRC is the track's own (the packet's is
    /// ignored). Waits while the connection's command queue is full.
    /// Packets written before negotiation allows sending are dropped
    /// (with a debug log), as a browser's sender sends nothing then.
    pub async fn write_rtp(&self, packet: RtpPacket) -> Result<(), RtcError> {
        let b = self.binding()?;
        b.commands
            .send(Command::WriteRtp(b.media, packet))
            .await
            .map_err(|_| RtcError::from(StateError::Closed))
    }

    /// [`TrackLocal::write_rtp`] on the simulcast layer `rid`: the SSRC is
    /// the layer's, the rid goes in the packet's header extension. Fails
    /// for a rid the track was not made with; a packet on a layer the peer
    /// does not receive is dropped (with a debug log).
    pub async fn write_rtp_layer(&self, rid: &str, packet: RtpPacket) -> Result<(), RtcError> {
        let b = self.binding()?;
        self.check_rid(b.media, rid)?;
        b.commands
            .send(Command::WriteRtpLayer(b.media, rid.to_owned(), packet))
            .await
            .map_err(|_| RtcError::from(StateError::Closed))
    }

    /// Fails for a rid the track was not made with.
    fn check_rid(&self, media: MediaRef, rid: &str) -> Result<(), RtcError> {
        if self.inner.layers.iter().any(|l| l.rid == rid) {
            return Ok(());
        }
        Err(crate::ArgumentError::UnknownRid {
            rid: rid.to_owned(),
            media,
        }
        .into())
    }

    /// The next request of the peer's receiver: a keyframe (PLI or FIR);
    /// `None` once the connection is gone. Lost packets (NACK) are resent
    /// by the connection itself. One reader at a time.
    pub async fn feedback(&self) -> Option<Feedback> {
        let b = self.binding().ok()?;
        b.feedback.lock().await.recv().await
    }

    #[cfg(feature = "codecs")]
    pub(super) fn inner(&self) -> &LocalInner {
        &self.inner
    }

    /// The codec samples are packetized for: `None` before negotiation,
    /// [`StateError::UnsupportedCodec`] when the negotiated one has no
    /// payload format here.
    pub(super) fn packetized_codec(&self) -> Result<Option<Codec>, RtcError> {
        let b = self.binding()?;
        let sending = b.sending.borrow();
        match (&sending.codec, &sending.unsupported) {
            (None, Some(name)) => Err(StateError::UnsupportedCodec {
                media: b.media,
                codec: name.clone(),
            }
            .into()),
            (codec, _) => Ok(codec.clone()),
        }
    }

    /// The state the driver keeps current: codec and target bitrate.
    #[cfg(feature = "codecs")]
    pub(super) fn sending(&self) -> Result<Sending, RtcError> {
        Ok(self.binding()?.sending.borrow().clone())
    }

    fn binding(&self) -> Result<&Binding, RtcError> {
        self.inner
            .binding
            .get()
            .ok_or(RtcError::from(StateError::TrackNotAdded))
    }
}

/// One sample to send: a whole encoded frame or audio packet and how long
/// it is shown or played (RTP timestamps advance by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The encoded bytes.
    pub data: Bytes,
    /// Its duration: 1/30 s for a frame of 30 fps video, 20 ms for a
    /// usual Opus packet.
    pub duration: Duration,
}

impl Sample {
    /// A sample of `data` lasting `duration`.
    pub fn new(data: impl Into<Bytes>, duration: Duration) -> Self {
        Self {
            data: data.into(),
            duration,
        }
    }
}

/// What a [`TrackRemote`]'s reads played out: the inbound-rtp members
/// a jitter buffer and a decoder own (Chrome's names), which `get_stats`
/// adds to the core's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct PlayoutStats {
    /// `play_audio`'s jitter buffer.
    pub(super) audio: Option<realtimer_media::AudioJitterStats>,
    /// Video frames decoded, keyframes among them.
    pub(super) frames_decoded: u64,
    pub(super) key_frames_decoded: u64,
    /// Video frames `read_sample`'s buffer gave up.
    pub(super) frames_dropped: u64,
    /// Seconds decoded frames waited between their last packet and
    /// their decoding, summed.
    pub(super) frame_delay: f64,
}

impl PlayoutStats {
    /// Writes these members into `stats`, the inbound-rtp entry of the
    /// stream they were played from.
    pub(super) fn fill(&self, stats: &mut crate::InboundRtpStats) {
        if let Some(a) = &self.audio {
            stats.jitter_buffer_delay = a.jitter_buffer_delay;
            stats.jitter_buffer_target_delay = a.jitter_buffer_target_delay;
            stats.jitter_buffer_emitted_count = a.jitter_buffer_emitted_count;
            stats.concealed_samples = a.concealed_samples;
            stats.concealment_events = a.concealment_events;
            stats.removed_samples_for_acceleration = a.removed_samples_for_acceleration;
            stats.fec_packets_received = a.fec_packets_received;
            stats.fec_packets_discarded = a.fec_packets_received.saturating_sub(a.fec_recovered);
        }
        if self.frames_decoded > 0 || self.frames_dropped > 0 {
            stats.jitter_buffer_delay = self.frame_delay;
            stats.jitter_buffer_emitted_count = self.frames_decoded;
            stats.frames_decoded = self.frames_decoded;
            stats.key_frames_decoded = self.key_frames_decoded;
            stats.frames_dropped = self.frames_dropped;
        }
    }
}

/// A received packet and its RED blocks (the packet's own payload as
/// the primary when it is not RED).
#[derive(Debug)]
pub(super) struct Unwrapped {
    pub(super) packet: RtpPacket,
    pub(super) primary: realtimer_media::RedBlock,
    pub(super) redundant: Vec<realtimer_media::RedBlock>,
}

/// What [`super::PeerConnection::add_track`] returns (RTCRtpSender).
#[derive(Debug, Clone)]
pub struct RtpSender {
    pub(super) track: TrackLocal,
}

impl RtpSender {
    /// The track it sends.
    pub fn track(&self) -> &TrackLocal {
        &self.track
    }
}

/// A track the peer sends (the `track` event's MediaStreamTrack and
/// RTCRtpReceiver): read its RTP packets, ask for keyframes.
#[derive(Debug, Clone)]
pub struct TrackRemote {
    info: TrackInfo,
    media: MediaRef,
    commands: mpsc::Sender<Command>,
    pub(super) packets: Arc<tokio::sync::Mutex<mpsc::Receiver<RtpPacket>>>,
    /// The latest sender report's clock.
    clock: watch::Receiver<Option<crate::SenderClock>>,
    /// `read_sample`'s buffer, for one payload type.
    frames: Arc<tokio::sync::Mutex<Option<(u8, FrameBuffer)>>>,
    /// What the reads played out, for `get_stats` (the driver holds the
    /// other end).
    pub(super) playout: Arc<Mutex<PlayoutStats>>,
    /// The decoders of `read_video_frame` and `read_audio`.
    #[cfg(feature = "codecs")]
    pub(super) decoding: Arc<tokio::sync::Mutex<super::coding::Decoding>>,
}

impl TrackRemote {
    pub(super) fn new(
        info: TrackInfo,
        media: MediaRef,
        commands: mpsc::Sender<Command>,
        packets: mpsc::Receiver<RtpPacket>,
        clock: watch::Receiver<Option<crate::SenderClock>>,
        playout: Arc<Mutex<PlayoutStats>>,
    ) -> TrackRemote {
        TrackRemote {
            info,
            media,
            commands,
            packets: Arc::new(tokio::sync::Mutex::new(packets)),
            clock,
            frames: Arc::new(tokio::sync::Mutex::new(None)),
            playout,
            #[cfg(feature = "codecs")]
            decoding: Arc::default(),
        }
    }

    /// Audio or video.
    pub fn kind(&self) -> MediaKind {
        self.info.kind
    }

    /// Its mid, stream ids, track id and negotiated codecs.
    pub fn info(&self) -> &TrackInfo {
        &self.info
    }

    /// The next RTP packet; `None` once the connection is gone. Clones
    /// share one queue, and so do [`TrackRemote::read_sample`] and the
    /// decoded reads: use one of them.
    pub async fn read_rtp(&self) -> Option<RtpPacket> {
        self.packets.lock().await.recv().await
    }

    /// The next whole frame (audio: packet) in decode order, depacketized
    /// by its payload type's codec; `None` once the connection is gone.
    /// Packets are reordered; a missing one is waited for while the
    /// connection NACKs it (video: up to 400 ms; audio: 40 ms, then it is
    /// skipped and counted in [`ReceivedFrame::skipped_before`]); after a
    /// video loss frames are dropped until a keyframe, which is asked for
    /// (PLI) at once and every 200 ms until it comes. Packets of codecs
    /// the pipeline does not carry are skipped.
    pub async fn read_sample(&self) -> Option<ReceivedFrame> {
        let mut packets = self.packets.lock().await;
        let mut frames = self.frames.lock().await;
        loop {
            let t = now();
            if let Some((_, buffer)) = &mut *frames {
                if let Some(frame) = buffer.poll_frame(t) {
                    if self.info.kind == MediaKind::Video {
                        self.playout().frames_dropped = buffer.stats().frames_dropped;
                    }
                    return Some(frame);
                }
                if buffer.poll_keyframe_request(t) {
                    let media = self.media;
                    let _ = self.commands.try_send(Command::RequestKeyframe(
                        media,
                        tokio::sync::oneshot::channel().0,
                    ));
                }
            }
            let deadline = frames.as_ref().and_then(|(_, b)| b.poll_timeout());
            let packet = match deadline {
                Some(d) => match tokio::time::timeout_at(d.into(), packets.recv()).await {
                    Ok(p) => p?,
                    Err(_) => continue,
                },
                None => packets.recv().await?,
            };
            // RED (RFC 2198): the primary block is the packet.
            let packet = match self.unwrap_red(packet) {
                Some(red) => RtpPacket {
                    payload_type: red.primary.payload_type,
                    payload: red.primary.data,
                    ..red.packet
                },
                None => continue,
            };
            let buffer = match &mut *frames {
                Some((pt, buffer)) if *pt == packet.payload_type => buffer,
                slot => {
                    let Some(format) = self
                        .info
                        .codecs
                        .iter()
                        .find(|c| c.payload_type == packet.payload_type)
                        .and_then(|c| PayloadFormat::from_codec(&c.name, c.fmtp.as_deref()))
                    else {
                        continue;
                    };
                    let buffer = FrameBuffer::new(format, FrameBufferConfig::for_format(format));
                    &mut slot.insert((packet.payload_type, buffer)).1
                }
            };
            buffer.insert(
                now(),
                packet.sequence_number,
                packet.timestamp,
                packet.marker,
                packet.payload,
            );
        }
    }

    /// The packet's RED blocks when its payload type is the negotiated
    /// `red` (RFC 2198), else the packet as its own primary block;
    /// `None` for a RED payload that does not parse (it is dropped).
    pub(super) fn unwrap_red(&self, packet: RtpPacket) -> Option<Unwrapped> {
        let is_red =
            self.info.codecs.iter().any(|c| {
                c.payload_type == packet.payload_type && c.name.eq_ignore_ascii_case("red")
            });
        let red = if is_red {
            match realtimer_media::parse_red(&packet.payload) {
                Ok(red) => red,
                Err(e) => {
                    debug!("RED packet dropped: {e}");
                    return None;
                }
            }
        } else {
            realtimer_media::RedPacket {
                redundant: Vec::new(),
                primary: realtimer_media::RedBlock {
                    payload_type: packet.payload_type,
                    timestamp_offset: 0,
                    data: packet.payload.clone(),
                },
            }
        };
        Some(Unwrapped {
            redundant: red.redundant,
            primary: red.primary,
            packet,
        })
    }

    /// The counters `get_stats` reports for this track.
    pub(super) fn playout(&self) -> std::sync::MutexGuard<'_, PlayoutStats> {
        self.playout.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The RTP-to-wallclock mapping of the sender's latest report (RFC
    /// 3550 §6.4.1); with the audio track's, a [`realtimer_media::LipSync`]
    /// tells when to show each video frame. `None` before the first.
    pub fn sender_clock(&self) -> Option<crate::SenderClock> {
        *self.clock.borrow()
    }

    /// What `read_sample`'s buffer has done so far (frames handed out and
    /// dropped, late packets, keyframe requests).
    pub async fn frame_stats(&self) -> Option<realtimer_media::FrameBufferStats> {
        Some(self.frames.lock().await.as_ref()?.1.stats())
    }

    /// Asks the sender for a keyframe (a PLI, RFC 4585 §6.3.1).
    pub async fn request_keyframe(&self) -> Result<(), RtcError> {
        let media = self.media;
        call(&self.commands, |r| Command::RequestKeyframe(media, r)).await
    }

    /// Asks the sender to send these packets again (a generic NACK, RFC
    /// 4585 §6.2.1; at most [`crate::MAX_NACKED`]).
    pub async fn request_retransmission(&self, lost: Vec<u16>) -> Result<(), RtcError> {
        let media = self.media;
        call(&self.commands, |r| {
            Command::RequestRetransmission(media, lost, r)
        })
        .await
    }
}
