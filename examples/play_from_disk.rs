//! Play from disk: stream a VP8 video file (IVF) and an Opus audio file
//! (Ogg) into a room of `realtimer serve`, in real time.
//!
//! ```text
//! ffmpeg -f lavfi -i testsrc=size=320x240:rate=30 -t 10 -c:v libvpx video.ivf
//! ffmpeg -f lavfi -i sine=frequency=440:duration=10 -c:a libopus audio.ogg
//! play-from-disk --room demo --video video.ivf --audio audio.ogg
//! ```
//!
//! Open the web app's video call page in the same room to watch. Nothing
//! is decoded or encoded: each VP8 frame is split into RTP payloads (RFC
//! 7741) and each Opus packet is one payload (RFC 7587), sent when its
//! timestamp is due. The payload types are the ones the two sides agreed
//! on, read from the other side's description. At the end of the files
//! the program says bye and exits.
#![allow(clippy::print_stdout)] // an example prints what it does

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use realtimer::{
    MediaKind, PeerConnection, PeerConnectionEvent, PeerConnectionState, RtpPacket, TrackLocal,
};
use realtimer_media_files::ivf::IvfReader;
use realtimer_media_files::ogg::OggOpusReader;
use realtimer_rtp::payload::vp8::Vp8Packetizer;
use tokio::sync::watch;
use tokio::time::Instant;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// Where and which room.
    #[command(flatten)]
    room: realtimer_examples::RoomArgs,
    /// A VP8 video in IVF.
    #[arg(long)]
    video: Option<PathBuf>,
    /// An Opus audio in Ogg.
    #[arg(long)]
    audio: Option<PathBuf>,
}

/// Largest RTP payload we send: with the RTP, SRTP, UDP and IP headers
/// it stays under a 1280-byte path MTU.
const MAX_PAYLOAD: usize = 1100;

/// The payload type the descriptions give `codec` (`a=rtpmap:PT NAME/...`,
/// RFC 8866 §6.6).
fn payload_type(sdp: &str, codec: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let (pt, rest) = line.strip_prefix("a=rtpmap:")?.split_once(' ')?;
        let name = rest.split('/').next()?;
        name.eq_ignore_ascii_case(codec)
            .then(|| pt.parse().ok())
            .flatten()
    })
}

/// Sends the IVF file's frames on `track`, each when its time comes.
async fn play_video(pc: PeerConnection, track: TrackLocal, path: PathBuf) -> Result<u64, Error> {
    let mut reader = IvfReader::new(BufReader::new(File::open(path)?))?;
    let header = *reader.header();
    let sdp = pc.remote_description().ok_or("no remote description")?.sdp;
    let payload_type = payload_type(&sdp, "VP8").ok_or("the other side takes no VP8")?;
    let mut packetizer = Vp8Packetizer::new(0);
    let (start, mut sequence_number, mut frames) = (Instant::now(), 0u16, 0);
    let mut payloads = Vec::new();
    while let Some(frame) = reader.next_frame()? {
        // IVF timestamps count time-base units; RTP video counts 90 kHz.
        let seconds = frame.timestamp as f64 * f64::from(header.timebase_scale)
            / f64::from(header.timebase_rate);
        tokio::time::sleep_until(start + Duration::from_secs_f64(seconds)).await;
        let timestamp = (seconds * 90_000.0) as u32;
        payloads.clear();
        packetizer.packetize(&frame.data, MAX_PAYLOAD, &mut payloads);
        let last = payloads.len() - 1;
        for (i, payload) in payloads.drain(..).enumerate() {
            track
                .write_rtp(RtpPacket {
                    payload_type,
                    sequence_number,
                    timestamp,
                    marker: i == last,
                    ssrc: 0,
                    payload: Bytes::from(payload),
                })
                .await?;
            sequence_number = sequence_number.wrapping_add(1);
        }
        frames += 1;
    }
    Ok(frames)
}

/// Sends the Ogg file's Opus packets on `track`, each when its time
/// comes.
async fn play_audio(pc: PeerConnection, track: TrackLocal, path: PathBuf) -> Result<u64, Error> {
    let mut reader = OggOpusReader::new(BufReader::new(File::open(path)?))?;
    let sdp = pc.remote_description().ok_or("no remote description")?.sdp;
    let payload_type = payload_type(&sdp, "opus").ok_or("the other side takes no Opus")?;
    let (start, mut sequence_number, mut samples, mut packets) = (Instant::now(), 0u16, 0u64, 0);
    while let Some(packet) = reader.next_packet()? {
        // Opus's RTP clock is 48 kHz whatever the audio's rate.
        tokio::time::sleep_until(start + Duration::from_micros(samples * 1_000 / 48)).await;
        track
            .write_rtp(RtpPacket {
                payload_type,
                sequence_number,
                timestamp: samples as u32,
                marker: false,
                ssrc: 0,
                payload: Bytes::from(packet.data),
            })
            .await?;
        sequence_number = sequence_number.wrapping_add(1);
        samples += u64::from(packet.samples);
        packets += 1;
    }
    Ok(packets)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    realtimer_examples::init_logging();
    let args = Args::parse();
    if args.video.is_none() && args.audio.is_none() {
        return Err("nothing to play: give --video, --audio or both".into());
    }
    let pc = args.room.peer_connection().await?;
    let video = TrackLocal::new(MediaKind::Video, "disk", "video");
    let audio = TrackLocal::new(MediaKind::Audio, "disk", "audio");
    if args.video.is_some() {
        pc.add_track(video.clone()).await?;
    }
    if args.audio.is_some() {
        pc.add_track(audio.clone()).await?;
    }
    // Playing starts once the connection is up.
    let (state_tx, mut state_rx) = watch::channel(PeerConnectionState::New);
    let on_event = move |event| {
        if let PeerConnectionEvent::ConnectionStateChange(state) = event {
            let _ = state_tx.send(state);
        }
    };
    let playing = {
        let pc = pc.clone();
        async move {
            if state_rx
                .wait_for(|s| *s == PeerConnectionState::Connected)
                .await
                .is_err()
            {
                return;
            }
            println!("connected: playing");
            let video = args
                .video
                .map(|path| tokio::spawn(play_video(pc.clone(), video, path)));
            let audio = args
                .audio
                .map(|path| tokio::spawn(play_audio(pc.clone(), audio, path)));
            for (kind, task) in [("video frames", video), ("audio packets", audio)] {
                let Some(task) = task else { continue };
                match task.await {
                    Ok(Ok(count)) => println!("sent {count} {kind}"),
                    Ok(Err(e)) => println!("{kind}: {e}"),
                    Err(e) => println!("{kind}: {e}"),
                }
            }
            // Let the last packets (and their retransmissions) arrive.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    realtimer_examples::run_in_room(&args.room, pc, on_event, playing).await?;
    println!("done");
    Ok(())
}
