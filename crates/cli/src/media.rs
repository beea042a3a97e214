//! `realtimer play FILE... --room R` and `realtimer record --room R OUT`:
//! media files to and from the web app's video call page (`web/call.html`)
//! with no codec in between.
//!
//! `play` reads an IVF file (VP8 or VP9) and/or an Ogg Opus file through
//! realtimer-media-files and sends each frame or packet as one sample
//! (`TrackLocal::write_sample`: packetized per RFC 7741, 9628 or 7587) at
//! the file's own timing. `record` takes the other side's tracks as
//! whole frames (`TrackRemote::read_sample`: reordered, NACKed, keyframes
//! asked for) and writes them to IVF (video), Ogg (audio) or WebM (both),
//! on each track's RTP timeline.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use realtimer::{Codec, MediaKind, ReceivedFrame, Sample, TrackLocal, TrackRemote};
use realtimer_media_files::frame_size;
use realtimer_media_files::ivf::{Fourcc, IvfHeader, IvfReader, IvfWriter};
use realtimer_media_files::ogg::{OggOpusReader, OggOpusWriter, OpusHead};
use realtimer_media_files::webm::{WebmAudioTrack, WebmVideoCodec, WebmVideoTrack, WebmWriter};
use realtimer_media_files::RtpTimeline;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::peer::{ctrl_c, Ended, EndedWatch, Peer, PeerArgs, PeerError};

/// How long `play` stays after the last sample.
const LINGER: Duration = Duration::from_millis(500);

/// `realtimer play` options.
#[derive(Debug, Args)]
pub(crate) struct PlayArgs {
    /// An IVF file (VP8, VP9) and/or an Ogg Opus file.
    #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Play the files again and again (until the other side leaves or
    /// Ctrl-C).
    #[arg(long = "loop")]
    repeat: bool,
    #[command(flatten)]
    peer: PeerArgs,
}

/// `realtimer record` options.
#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// The file to write: `.ivf` (video), `.ogg` (audio) or `.webm`
    /// (both).
    #[arg(value_name = "OUT")]
    out: PathBuf,
    /// Stop after this many seconds (default: when the other side leaves,
    /// or Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    seconds: Option<f64>,
    /// Ask the other side for this video codec only (default: whichever
    /// of VP8 and VP9 it prefers).
    #[arg(long = "video-codec", value_name = "CODEC")]
    video_codec: Option<VideoCodec>,
    #[command(flatten)]
    peer: PeerArgs,
}

/// A video codec `play` and `record` carry without transcoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum VideoCodec {
    /// VP8 (RFC 7741).
    Vp8,
    /// VP9 profile 0 (RFC 9628).
    Vp9,
}

impl VideoCodec {
    /// The codec as the connection names it, for `setCodecPreferences`.
    fn codec(self) -> Codec {
        match self {
            VideoCodec::Vp8 => Codec::new(0, "VP8", 90_000, None),
            VideoCodec::Vp9 => Codec::new(0, "VP9", 90_000, None).with_fmtp("profile-id=0"),
        }
    }
}

/// Makes `track` offer and accept only `codec` (W3C setCodecPreferences),
/// so the other side's first choice cannot be another.
async fn prefer(track: &TrackLocal, codec: VideoCodec) -> Result<(), PeerError> {
    track
        .set_codec_preferences(&[codec.codec()])
        .await
        .map_err(|e| PeerError::Protocol(format!("codec preferences: {e}")))
}

/// A file to play, opened.
enum Source {
    Video(IvfReader<BufReader<File>>, PathBuf),
    Audio(OggOpusReader<BufReader<File>>, PathBuf),
}

fn bad_file(path: &Path, why: impl std::fmt::Display) -> PeerError {
    PeerError::Io {
        what: format!("reading {}", path.display()),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string()),
    }
}

fn open_source(path: &Path) -> Result<Source, PeerError> {
    let file = || {
        File::open(path)
            .map(BufReader::new)
            .map_err(PeerError::io(format!("opening {}", path.display())))
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "ivf" => {
            let reader = IvfReader::new(file()?).map_err(|e| bad_file(path, e))?;
            match reader.header().fourcc {
                Fourcc::Vp8 | Fourcc::Vp9 => Ok(Source::Video(reader, path.to_owned())),
                other => Err(bad_file(
                    path,
                    format!("{other:?}: only VP8 and VP9 are played"),
                )),
            }
        }
        "ogg" | "opus" | "oga" => Ok(Source::Audio(
            OggOpusReader::new(file()?).map_err(|e| bad_file(path, e))?,
            path.to_owned(),
        )),
        _ => Err(bad_file(
            path,
            "expected an .ivf (VP8, VP9) or .ogg (Opus) file",
        )),
    }
}

/// What `play` and `record` need of a session with the other side: a
/// room's peer ([`Peer`]) or a WHIP/WHEP endpoint's
/// ([`crate::whip::WhipSession`]).
pub(crate) trait MediaSession {
    /// Waits until the connection is up.
    async fn connected(&self) -> Result<(), PeerError>;
    /// What resolves once the session ended without us.
    fn ended(&self) -> EndedWatch;
    /// The other side's next track; `None` once the session is over.
    async fn remote_track(&mut self) -> Option<TrackRemote>;
    /// Ends the session from our side.
    async fn hang_up(self);
}

impl MediaSession for Peer {
    async fn connected(&self) -> Result<(), PeerError> {
        Peer::connected(self).await
    }
    fn ended(&self) -> EndedWatch {
        Peer::ended(self)
    }
    async fn remote_track(&mut self) -> Option<TrackRemote> {
        Peer::remote_track(self).await
    }
    async fn hang_up(self) {
        Peer::hang_up(self).await;
    }
}

/// The files to play, opened, and a track of their kind for each.
pub(crate) struct Playlist {
    sources: Vec<Source>,
    tracks: Vec<TrackLocal>,
}

impl Playlist {
    /// Opens `files` (at most one of each kind); the tracks are in stream
    /// `stream`. The video track offers and accepts only the file's codec
    /// (a browser would otherwise pick VP8 for a VP9 file).
    pub(crate) async fn open(files: &[PathBuf], stream: &str) -> Result<Playlist, PeerError> {
        let sources = files
            .iter()
            .map(|p| open_source(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tracks = Vec::new();
        for (source, path) in sources.iter().zip(files) {
            let kind = match source {
                Source::Video(..) => MediaKind::Video,
                Source::Audio(..) => MediaKind::Audio,
            };
            if tracks.iter().any(|t: &TrackLocal| t.kind() == kind) {
                return Err(bad_file(
                    path,
                    format!("a second {kind} file: give one of each kind"),
                ));
            }
            let track = TrackLocal::new(kind, stream, &format!("play-{kind}"));
            if let Source::Video(reader, _) = source {
                let codec = match reader.header().fourcc {
                    Fourcc::Vp9 => VideoCodec::Vp9,
                    _ => VideoCodec::Vp8,
                };
                prefer(&track, codec).await?;
            }
            tracks.push(track);
        }
        Ok(Playlist { sources, tracks })
    }

    /// The tracks, to add to the connection before its offer.
    pub(crate) fn tracks(&self) -> Vec<TrackLocal> {
        self.tracks.clone()
    }
}

/// Runs `realtimer play`.
pub(crate) async fn play(args: PlayArgs) -> Result<(), PeerError> {
    let playlist = Playlist::open(&args.files, "realtimer-play").await?;
    let peer = Peer::join_media(&args.peer, playlist.tracks()).await?;
    play_on(peer, playlist, args.repeat).await
}

/// Plays `playlist` to the other side of `peer` once it is connected,
/// then hangs up.
pub(crate) async fn play_on(
    peer: impl MediaSession,
    playlist: Playlist,
    repeat: bool,
) -> Result<(), PeerError> {
    let Playlist { sources, tracks } = playlist;
    let ended = peer.ended();
    let result = tokio::select! {
        result = async {
            peer.connected().await?;
            let players = sources.into_iter().zip(tracks).map(|(source, track)| {
                tokio::spawn(async move { play_source(source, track, repeat).await })
            });
            let players: Vec<_> = players.collect();
            for player in players {
                player.await.map_err(|e| PeerError::Protocol(format!("a player stopped: {e}")))??;
            }
            // The last packets (and any retransmission the receiver asks
            // for) leave before the hang-up.
            tokio::time::sleep(LINGER).await;
            Ok(())
        } => result,
        ended = ended.wait() => match ended {
            Ended::Left => { info!("the other side left"); Ok(()) }
            Ended::Failed => Err(PeerError::ConnectionFailed { reason: "the connection failed".into() }),
            Ended::SignalingClosed => Err(PeerError::Signaling(realtimer_signaling::ClientError::Closed)),
        },
        () = ctrl_c() => Err(PeerError::Interrupted),
    };
    peer.hang_up().await;
    result
}

/// Whether the negotiated codec carries the file's.
fn check_codec(track: &TrackLocal, wanted: &str, path: &Path) -> Result<(), PeerError> {
    match track.codec() {
        Some(codec) if codec.name.eq_ignore_ascii_case(wanted) => Ok(()),
        Some(codec) => Err(bad_file(
            path,
            format!(
                "the other side chose {} for {}; this file is {wanted} (no transcoding)",
                codec.name,
                track.kind()
            ),
        )),
        None => Err(PeerError::ConnectionFailed {
            reason: format!("no {} codec was negotiated", track.kind()),
        }),
    }
}

/// Sends one file's frames or packets at its timing, from now.
async fn play_source(source: Source, track: TrackLocal, repeat: bool) -> Result<(), PeerError> {
    match source {
        Source::Video(mut reader, path) => {
            let header = *reader.header();
            let wanted = if header.fourcc == Fourcc::Vp9 {
                "VP9"
            } else {
                "VP8"
            };
            check_codec(&track, wanted, &path)?;
            let tick = Duration::from_secs_f64(
                f64::from(header.timebase_scale.max(1)) / f64::from(header.timebase_rate.max(1)),
            );
            let mut frames = 0u64;
            loop {
                let started = Instant::now();
                let mut next = reader.next_frame().map_err(|e| bad_file(&path, e))?;
                let first = next.as_ref().map_or(0, |f| f.timestamp);
                while let Some(frame) = next {
                    next = reader.next_frame().map_err(|e| bad_file(&path, e))?;
                    let at = tick
                        * u32::try_from(frame.timestamp.saturating_sub(first)).unwrap_or(u32::MAX);
                    let duration = match &next {
                        Some(n) => {
                            tick * u32::try_from(n.timestamp.saturating_sub(frame.timestamp))
                                .unwrap_or(1)
                        }
                        None => Duration::from_millis(33),
                    };
                    tokio::time::sleep_until(started + at).await;
                    track
                        .write_sample(Sample::new(frame.data, duration))
                        .await?;
                    frames += 1;
                    if frames == 1 || frames % 300 == 0 {
                        info!(frames, "video frames sent");
                    }
                }
                if !repeat {
                    break;
                }
                reader = match open_source(&path)? {
                    Source::Video(reader, _) => reader,
                    Source::Audio(..) => unreachable_source(&path)?,
                };
            }
            info!(frames, "{} played", path.display());
        }
        Source::Audio(mut reader, path) => {
            check_codec(&track, "opus", &path)?;
            let mut packets = 0u64;
            loop {
                let started = Instant::now();
                let mut at = Duration::ZERO;
                while let Some(packet) = reader.next_packet().map_err(|e| bad_file(&path, e))? {
                    let duration =
                        Duration::from_micros(u64::from(packet.samples) * 1_000_000 / 48_000);
                    tokio::time::sleep_until(started + at).await;
                    track
                        .write_sample(Sample::new(packet.data, duration))
                        .await?;
                    at += duration;
                    packets += 1;
                }
                if !repeat {
                    break;
                }
                reader = match open_source(&path)? {
                    Source::Audio(reader, _) => reader,
                    Source::Video(..) => unreachable_source(&path)?,
                };
            }
            info!(packets, "{} played", path.display());
        }
    }
    Ok(())
}

/// A file that changed kind between two opens.
fn unreachable_source<T>(path: &Path) -> Result<T, PeerError> {
    Err(bad_file(path, "the file changed while playing"))
}

/// Where a recording goes, by the file's extension.
enum Sink {
    Ivf(Option<IvfWriter<BufWriter<File>>>, RtpTimeline),
    Ogg(OggOpusWriter<BufWriter<File>>, RtpTimeline),
    Webm(
        Option<WebmWriter<BufWriter<File>>>,
        RtpTimeline,
        RtpTimeline,
    ),
}

/// A file being recorded: where it goes, what of the media it takes.
pub(crate) struct Recording {
    path: PathBuf,
    sink: Sink,
    /// The file, until the sink's writer takes it (at the first keyframe
    /// for IVF and WebM).
    out: Option<BufWriter<File>>,
    want_video: bool,
    want_audio: bool,
}

impl Recording {
    /// Creates `path`; its extension says what it records.
    pub(crate) fn create(path: &Path) -> Result<Recording, PeerError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (want_video, want_audio) = match ext.as_str() {
            "ivf" => (true, false),
            "ogg" | "opus" => (false, true),
            "webm" => (true, true),
            _ => return Err(bad_file(path, "write to an .ivf, .ogg or .webm file")),
        };
        let out =
            File::create(path).map_err(PeerError::io(format!("creating {}", path.display())))?;
        let mut out = Some(BufWriter::new(out));
        let sink = match ext.as_str() {
            "ivf" => Sink::Ivf(None, RtpTimeline::new(90_000)),
            "webm" => Sink::Webm(None, RtpTimeline::new(90_000), RtpTimeline::new(48_000)),
            _ => {
                let writer = OggOpusWriter::new(
                    out.take()
                        .ok_or_else(|| PeerError::Protocol("no output".into()))?,
                    &OpusHead::for_recording(2),
                    rand::random(),
                )
                .map_err(|e| bad_file(path, e))?;
                Sink::Ogg(writer, RtpTimeline::new(48_000))
            }
        };
        Ok(Recording {
            path: path.to_owned(),
            sink,
            out,
            want_video,
            want_audio,
        })
    }
}

/// Receive-only in effect: these tracks are never written, but they give
/// our own offer its audio and video sections; the video one asks for
/// `video_codec` only, when given.
pub(crate) async fn record_tracks(
    video_codec: Option<VideoCodec>,
) -> Result<Vec<TrackLocal>, PeerError> {
    let video = TrackLocal::new(MediaKind::Video, "realtimer-record", "record-video");
    if let Some(codec) = video_codec {
        prefer(&video, codec).await?;
    }
    Ok(vec![
        TrackLocal::new(MediaKind::Audio, "realtimer-record", "record-audio"),
        video,
    ])
}

/// Runs `realtimer record`.
pub(crate) async fn record(args: RecordArgs) -> Result<(), PeerError> {
    let recording = Recording::create(&args.out)?;
    let tracks = record_tracks(args.video_codec).await?;
    let peer = Peer::join_media(&args.peer, tracks).await?;
    record_on(peer, recording, args.seconds).await
}

/// Records what the other side of `peer` sends into `recording` until it
/// leaves, `seconds` pass or Ctrl-C; then hangs up.
pub(crate) async fn record_on(
    mut peer: impl MediaSession,
    recording: Recording,
    seconds: Option<f64>,
) -> Result<(), PeerError> {
    let Recording {
        path,
        mut sink,
        mut out,
        want_video,
        want_audio,
    } = recording;
    let (frames_tx, mut frames_rx) = mpsc::channel::<(MediaKind, ReceivedFrame)>(64);
    let ended = peer.ended();
    let deadline = async {
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s.max(0.0))).await,
            None => std::future::pending().await,
        }
    };
    let mut counts = (0u64, 0u64);
    let result = tokio::select! {
        result = async {
            loop {
                tokio::select! {
                    track = peer.remote_track() => {
                        let Some(track) = track else { return Ok(()) };
                        let kind = track.kind();
                        if (kind == MediaKind::Video && want_video) || (kind == MediaKind::Audio && want_audio) {
                            info!(%kind, "recording a track");
                            tokio::spawn(read_frames(track, frames_tx.clone()));
                        }
                    }
                    frame = frames_rx.recv() => {
                        let Some((kind, frame)) = frame else { return Ok(()) };
                        write_frame(&mut sink, &mut out, kind, &frame).map_err(|e| bad_file(&path, e))?;
                        if kind == MediaKind::Video { counts.0 += 1 } else { counts.1 += 1 }
                    }
                }
            }
        } => result,
        () = deadline => Ok(()),
        _ = ended.wait() => Ok(()),
        () = ctrl_c() => Err(PeerError::Interrupted),
    };
    // Frames already read from the tracks go in too.
    while let Ok((kind, frame)) = frames_rx.try_recv() {
        write_frame(&mut sink, &mut out, kind, &frame).map_err(|e| bad_file(&path, e))?;
        if kind == MediaKind::Video {
            counts.0 += 1
        } else {
            counts.1 += 1
        }
    }
    peer.hang_up().await;
    finish(sink).map_err(|e| bad_file(&path, e))?;
    println!(
        "recorded {} video frames and {} audio packets to {}",
        counts.0,
        counts.1,
        path.display()
    );
    if counts == (0, 0) && result.is_ok() {
        return Err(PeerError::Incomplete {
            what: "no media arrived".into(),
        });
    }
    result
}

/// Moves a track's whole frames to the writer.
async fn read_frames(track: TrackRemote, frames: mpsc::Sender<(MediaKind, ReceivedFrame)>) {
    let kind = track.kind();
    while let Some(frame) = track.read_sample().await {
        if frames.send((kind, frame)).await.is_err() {
            break;
        }
    }
}

/// The width and height in a keyframe's header (VP8: RFC 6386 §9.1;
/// VP9: its uncompressed header, VP9 bitstream §6.2), as the container
/// headers take them; 0x0 when unreadable (the players read the frames'
/// own sizes then).
fn keyframe_size(frame: &ReceivedFrame) -> (u16, u16) {
    let size = match frame.format {
        realtimer::PayloadFormat::Vp9 => frame_size::vp9_keyframe_size(&frame.data),
        _ => frame_size::vp8_keyframe_size(&frame.data),
    };
    match size {
        Ok(Some(size)) => (
            u16::try_from(size.width).unwrap_or(0),
            u16::try_from(size.height).unwrap_or(0),
        ),
        Ok(None) => (0, 0),
        Err(e) => {
            warn!("keyframe header: {e}; the file's header says 0x0");
            (0, 0)
        }
    }
}

type WriteError = Box<dyn std::error::Error + Send + Sync>;

/// Writes a frame; video waits for its first keyframe (a file starts
/// with one, and IVF and WebM take the size from it).
fn write_frame(
    sink: &mut Sink,
    out: &mut Option<BufWriter<File>>,
    kind: MediaKind,
    frame: &ReceivedFrame,
) -> Result<(), WriteError> {
    let vp9 = matches!(frame.format, realtimer::PayloadFormat::Vp9);
    match (sink, kind) {
        (Sink::Ivf(writer, timeline), MediaKind::Video) => {
            if writer.is_none() {
                if !frame.keyframe {
                    return Ok(());
                }
                let (w, h) = keyframe_size(frame);
                let fourcc = if vp9 { Fourcc::Vp9 } else { Fourcc::Vp8 };
                let file = out.take().ok_or("the output is gone")?;
                *writer = Some(IvfWriter::new(file, IvfHeader::new(fourcc, w, h, 90_000))?);
            }
            let ticks = timeline.ticks(frame.timestamp);
            if let (Some(writer), Ok(ticks)) = (writer, u64::try_from(ticks)) {
                writer.write_frame(ticks, &frame.data)?;
            }
        }
        (Sink::Ogg(writer, timeline), MediaKind::Audio) => {
            if let Ok(start) = u64::try_from(timeline.ticks(frame.timestamp)) {
                writer.write_packet(&frame.data, start)?;
            }
        }
        (Sink::Webm(writer, video, audio), kind) => {
            if writer.is_none() {
                if kind != MediaKind::Video || !frame.keyframe {
                    return Ok(());
                }
                let (width, height) = keyframe_size(frame);
                let codec = if vp9 {
                    WebmVideoCodec::Vp9
                } else {
                    WebmVideoCodec::Vp8
                };
                let file = out.take().ok_or("the output is gone")?;
                *writer = Some(WebmWriter::new(
                    file,
                    Some(WebmVideoTrack {
                        codec,
                        width,
                        height,
                    }),
                    Some(WebmAudioTrack { channels: 2 }),
                )?);
            }
            let Some(writer) = writer else { return Ok(()) };
            match kind {
                MediaKind::Video => {
                    let at = video.nanos(frame.timestamp);
                    if at >= 0 {
                        writer.write_video(&frame.data, at, frame.keyframe)?;
                    }
                }
                _ => {
                    let at = audio.nanos(frame.timestamp);
                    if at >= 0 {
                        writer.write_audio(&frame.data, at)?;
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Completes the file (sizes, counts, the last page).
fn finish(sink: Sink) -> Result<(), WriteError> {
    fn flush<W: Write + Seek>(mut w: W) -> std::io::Result<()> {
        w.flush()
    }
    match sink {
        Sink::Ivf(Some(writer), _) => flush(writer.finish()?)?,
        Sink::Ogg(writer, _) => flush(writer.finish()?)?,
        Sink::Webm(Some(writer), ..) => flush(writer.finish()?)?,
        _ => warn!("no keyframe arrived: the file is empty"),
    }
    Ok(())
}
