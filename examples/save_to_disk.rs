//! Save to disk: record the video (VP8, to IVF) and audio (Opus, to Ogg)
//! that the other side of a room sends.
//!
//! ```text
//! save-to-disk --room demo --video out.ivf --audio out.ogg
//! ```
//!
//! Open the web app's video call page in a room first (or run
//! `play-from-disk` there), then this program in the same room; hang up
//! to finish the files. The sender joins first because the room's
//! creator makes the offer, and this program has nothing of its own to
//! offer: it answers with the sender's sections. Nothing is
//! decoded: RTP payloads are joined into VP8 frames (RFC 7741; a frame
//! that lost a packet is dropped whole, and a keyframe is asked for) or
//! written as they are for Opus (RFC 7587), at the time their RTP
//! timestamps give, so gaps stay gaps. `ffprobe out.ivf` reads the
//! result.
#![allow(clippy::print_stdout)] // an example prints what it does

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use clap::Parser;
use realtimer::{MediaKind, PeerConnectionEvent, TrackRemote};
use realtimer_media_files::ivf::{Fourcc, IvfHeader, IvfWriter};
use realtimer_media_files::ogg::{OggOpusWriter, OpusHead};
use realtimer_media_files::RtpTimeline;
use realtimer_rtp::payload::vp8::{is_keyframe, Vp8Depacketizer};
use realtimer_rtp::payload::FrameAssembler;
use realtimer_rtp::{RtpHeader, RtpPacket};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// Where and which room.
    #[command(flatten)]
    room: realtimer_examples::RoomArgs,
    /// Where to write the video (IVF).
    #[arg(long, default_value = "out.ivf")]
    video: PathBuf,
    /// Where to write the audio (Ogg Opus).
    #[arg(long, default_value = "out.ogg")]
    audio: PathBuf,
}

/// Largest VP8 frame kept, against a sender that never sets the marker.
const MAX_FRAME: usize = 4 << 20;

/// The width and height of a VP8 keyframe (RFC 6386 §9.1).
fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    let size = frame.get(6..10)?;
    let width = u16::from_le_bytes([size[0], size[1]]) & 0x3FFF;
    let height = u16::from_le_bytes([size[2], size[3]]) & 0x3FFF;
    Some((width, height))
}

/// Writes `track`'s VP8 frames to `path` from the first keyframe on.
async fn record_video(track: TrackRemote, path: PathBuf) -> Result<u32, Error> {
    let mut frames = FrameAssembler::new(Vp8Depacketizer, MAX_FRAME);
    let mut timeline = RtpTimeline::new(90_000);
    let mut writer: Option<IvfWriter<BufWriter<File>>> = None;
    let mut bytes = Vec::new();
    // The track is announced with the description, before DTLS has made
    // the SRTP keys; this first request may come too early, and the
    // sender starts with a keyframe anyway.
    let _ = track.request_keyframe().await;
    while let Some(packet) = track.read_rtp().await {
        // The assembler reads RTP packets as bytes.
        bytes.clear();
        RtpHeader {
            marker: packet.marker,
            payload_type: packet.payload_type,
            sequence_number: packet.sequence_number,
            timestamp: packet.timestamp,
            ssrc: packet.ssrc,
            csrcs: Vec::new(),
            extensions: Vec::new(),
        }
        .write(false, &mut bytes)?;
        bytes.extend_from_slice(&packet.payload);
        let Some(frame) = frames.push(&RtpPacket::parse(&bytes)?) else {
            continue;
        };
        if writer.is_none() {
            if !is_keyframe(&frame.data) {
                let _ = track.request_keyframe().await;
                continue;
            }
            let (width, height) = keyframe_size(&frame.data).ok_or("short keyframe")?;
            let header = IvfHeader::new(Fourcc::Vp8, width, height, 90_000);
            writer = Some(IvfWriter::new(
                BufWriter::new(File::create(&path)?),
                header,
            )?);
            println!("recording {width}x{height} video to {}", path.display());
        }
        let ticks = timeline.ticks(frame.timestamp).max(0) as u64;
        if let Some(writer) = writer.as_mut() {
            writer.write_frame(ticks, &frame.data)?;
        }
    }
    match writer {
        Some(writer) => {
            let count = writer.frame_count();
            writer.finish()?;
            Ok(count)
        }
        None => Ok(0),
    }
}

/// Writes `track`'s Opus packets to `path`.
async fn record_audio(track: TrackRemote, path: PathBuf) -> Result<u64, Error> {
    let file = BufWriter::new(File::create(&path)?);
    let mut writer = OggOpusWriter::new(file, &OpusHead::for_recording(2), 1)?;
    let mut timeline = RtpTimeline::new(48_000);
    let mut packets = 0;
    println!("recording audio to {}", path.display());
    while let Some(packet) = track.read_rtp().await {
        let start = timeline.ticks(packet.timestamp);
        // A packet reordered before the first one has no place.
        if start >= 0 && !packet.payload.is_empty() {
            writer.write_packet(&packet.payload, start as u64)?;
            packets += 1;
        }
    }
    writer.finish()?;
    Ok(packets)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    realtimer_examples::init_logging();
    let args = Args::parse();
    let pc = args.room.peer_connection().await?;
    let mut recorders = Vec::new();
    let (mut video_path, mut audio_path) = (Some(args.video), Some(args.audio));
    let on_event = |event| {
        if let PeerConnectionEvent::Track(track) = event {
            let task = match track.kind() {
                MediaKind::Video => video_path.take().map(|path| {
                    tokio::spawn(async move { record_video(track, path).await.map(u64::from) })
                }),
                _ => audio_path
                    .take()
                    .map(|path| tokio::spawn(record_audio(track, path))),
            };
            recorders.extend(task);
        }
    };
    realtimer_examples::run_in_room(&args.room, pc, on_event, std::future::pending()).await?;
    for recorder in recorders {
        match recorder.await? {
            Ok(count) => println!("saved {count} frames or packets"),
            Err(e) => println!("recording failed: {e}"),
        }
    }
    println!("done");
    Ok(())
}
