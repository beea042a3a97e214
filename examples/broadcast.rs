//! Broadcast: one sender, many receivers.
//!
//! A broadcaster connection sends video to a hub, and the hub sends each
//! packet on to every viewer connection: the shape of a small SFU
//! (selective forwarding unit), all in one process on loopback so that
//! it runs anywhere. Each connection is a full `PeerConnection` with its
//! own DTLS and SRTP keys, so the hub decrypts each packet once and
//! encrypts it once per viewer. Nothing is decoded: the hub only moves
//! RTP payloads, and asks the broadcaster for a keyframe when a viewer
//! needs one.
//!
//! ```sh
//! cargo run -p realtimer-examples --bin broadcast -- --viewers 3 --packets 100
//! ```
//!
//! The broadcaster's "video" here is numbered packets (the payload is the
//! packet's number), so each viewer can check that it got every one, in
//! order; a real broadcaster sends camera frames (see `play-from-disk`).
#![allow(clippy::print_stdout)] // an example prints what it does

use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use realtimer::{
    Feedback, MediaKind, PeerConnection, PeerConnectionConfig, PeerConnectionEvent, RtpPacket,
    TrackLocal, TrackRemote,
};
use realtimer_examples::{negotiate, trickle};
use tokio::sync::broadcast;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// How many viewers.
    #[arg(long, default_value_t = 3)]
    viewers: usize,
    /// How many packets the broadcaster sends.
    #[arg(long, default_value_t = 100)]
    packets: u32,
}

/// VP8's payload type in our offers (`Codec::defaults`).
const VP8: u8 = 96;

/// Connects `sender` (offering) to `receiver` and returns the first
/// track the receiver is given.
async fn connect(sender: &PeerConnection, receiver: &PeerConnection) -> Result<TrackRemote, Error> {
    let _sender_events = trickle(sender, receiver);
    let mut receiver_events = trickle(receiver, sender);
    negotiate(sender, receiver).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), receiver_events.recv()).await? {
            Some(PeerConnectionEvent::Track(track)) => return Ok(track),
            Some(_) => {}
            None => return Err("the receiver closed".into()),
        }
    }
}

/// A viewer: counts the packets it gets and checks their order.
async fn view(n: usize, track: TrackRemote, expected: u32) -> Result<u32, Error> {
    let mut next = 0u32;
    while next < expected {
        let packet = tokio::time::timeout(Duration::from_secs(10), track.read_rtp())
            .await?
            .ok_or("the connection closed")?;
        let number = u32::from_be_bytes(packet.payload[..4].try_into()?);
        if number != next {
            return Err(format!("viewer {n}: packet {number}, expected {next}").into());
        }
        next += 1;
    }
    println!("viewer {n}: all {next} packets, in order");
    Ok(next)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    realtimer_examples::init_logging();
    let args = Args::parse();
    let config = PeerConnectionConfig::default().with_loopback(true);

    // The broadcaster and the hub's connection to it.
    let broadcaster = PeerConnection::new(config.clone()).await?;
    let camera = TrackLocal::new(MediaKind::Video, "broadcast", "camera");
    broadcaster.add_track(camera.clone()).await?;
    let hub_in = PeerConnection::new(config.clone()).await?;
    let upstream = connect(&broadcaster, &hub_in).await?;

    // One hub connection per viewer, each with its own outgoing track;
    // the hub's forwarding task hands every packet to all of them.
    let (packets, _) = broadcast::channel::<RtpPacket>(1024);
    let mut viewers = Vec::new();
    for n in 0..args.viewers {
        let hub_out = PeerConnection::new(config.clone()).await?;
        let viewer = PeerConnection::new(config.clone()).await?;
        let track = TrackLocal::new(MediaKind::Video, "broadcast", "camera");
        hub_out.add_track(track.clone()).await?;
        let remote = connect(&hub_out, &viewer).await?;
        hub_out
            .wait_for_connection_state(realtimer::PeerConnectionState::Connected)
            .await;
        let mut feed = packets.subscribe();
        let forwarded = track.clone();
        tokio::spawn(async move {
            while let Ok(packet) = feed.recv().await {
                if forwarded.write_rtp(packet).await.is_err() {
                    break;
                }
            }
        });
        // A viewer's keyframe request goes on to the broadcaster.
        let upstream = upstream.clone();
        tokio::spawn(async move {
            while let Some(Feedback::Keyframe(_)) = track.feedback().await {
                if upstream.request_keyframe().await.is_err() {
                    break;
                }
            }
        });
        viewers.push((n, remote, viewer, hub_out));
    }
    let forwarder = {
        let packets = packets.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            while let Some(packet) = upstream.read_rtp().await {
                let _ = packets.send(packet);
            }
        })
    };
    println!("{} viewers connected", viewers.len());

    let checks: Vec<_> = viewers
        .iter()
        .map(|(n, remote, _, _)| tokio::spawn(view(*n, remote.clone(), args.packets)))
        .collect();
    broadcaster
        .wait_for_connection_state(realtimer::PeerConnectionState::Connected)
        .await;
    for number in 0..args.packets {
        camera
            .write_rtp(RtpPacket {
                payload_type: VP8,
                sequence_number: number as u16,
                timestamp: number * 3000,
                marker: true,
                ssrc: 0,
                payload: Bytes::copy_from_slice(&number.to_be_bytes()),
            })
            .await?;
        // 30 packets a second would be real time; a little faster here.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for check in checks {
        check.await??;
    }
    forwarder.abort();
    broadcaster.close().await;
    hub_in.close().await;
    for (_, _, viewer, hub_out) in viewers {
        viewer.close().await;
        hub_out.close().await;
    }
    println!("done");
    Ok(())
}
