//! Reflect: send back whatever arrives.
//!
//! Joins a room of `realtimer serve` and returns the other side's audio
//! and video (each remote track's RTP packets, sent again on a local
//! track of the same kind; nothing is decoded) and every message of its
//! data channels. Open the web app's video call page in a room and run
//! this program in the same room to see yourself come back.
//!
//! ```text
//! realtimer serve
//! reflect --server http://127.0.0.1:8080 --room demo
//! ```
//!
//! Keyframe requests of the receiver are passed on to the sender, and
//! lost packets are resent by the connection itself (it answers NACKs
//! from what it sent), so the returned video recovers from loss.
#![allow(clippy::print_stdout)] // an example prints what it does

use clap::Parser;
use realtimer::{Feedback, MediaKind, PeerConnectionEvent, TrackLocal, TrackRemote};

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// Where and which room.
    #[command(flatten)]
    room: realtimer_examples::RoomArgs,
}

/// Sends `remote`'s packets on `local` and `local`'s keyframe requests
/// to `remote`'s sender, until the connection goes.
async fn reflect(remote: TrackRemote, local: TrackLocal) {
    let upstream = remote.clone();
    let downstream = local.clone();
    let feedback = tokio::spawn(async move {
        while let Some(Feedback::Keyframe(_)) = downstream.feedback().await {
            if upstream.request_keyframe().await.is_err() {
                break;
            }
        }
    });
    let mut count = 0u64;
    while let Some(packet) = remote.read_rtp().await {
        if local.write_rtp(packet).await.is_err() {
            break;
        }
        count += 1;
        if count == 1 {
            println!("reflecting {} (mid {})", remote.kind(), remote.info().mid);
        }
    }
    println!("{} packets of {} reflected", count, remote.kind());
    feedback.abort();
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    realtimer_examples::init_logging();
    let args = Args::parse();
    let pc = args.room.peer_connection().await?;
    // One local track per kind, added before any offer so that the other
    // side's offer reuses their transceivers (RFC 8829 §5.10) and ours
    // carries both.
    let audio = TrackLocal::new(MediaKind::Audio, "reflect", "reflect-audio");
    let video = TrackLocal::new(MediaKind::Video, "reflect", "reflect-video");
    pc.add_track(audio.clone()).await?;
    pc.add_track(video.clone()).await?;
    let (mut audio, mut video) = (Some(audio), Some(video));
    let on_event = move |event| match event {
        PeerConnectionEvent::Track(remote) => {
            // Two sources must not share one SSRC: the first track of
            // each kind is reflected.
            let local = match remote.kind() {
                MediaKind::Audio => audio.take(),
                _ => video.take(),
            };
            if let Some(local) = local {
                tokio::spawn(reflect(remote, local));
            }
        }
        PeerConnectionEvent::DataChannel(channel) => {
            tokio::spawn(async move {
                while let Some(message) = channel.recv().await {
                    if channel.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
        _ => {}
    };
    realtimer_examples::run_in_room(&args.room, pc, on_event, std::future::pending()).await?;
    println!("done");
    Ok(())
}
