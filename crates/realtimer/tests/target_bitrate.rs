//! The per-track target as an event: `TrackLocal::target_bitrate_changed`
//! wakes when the core's `TargetBitrate` for the track moves, and agrees
//! with the getter.

use std::time::Duration;

use bytes::Bytes;
use realtimer::{MediaKind, RtpPacket};
use realtimer_test_support::pair::{config, connect_track};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_track_hears_its_target_move() {
    let (a, b, local, remote) = connect_track(config(None), MediaKind::Video).await;
    let reader = tokio::spawn(async move { while remote.read_rtp().await.is_some() {} });
    let writer = {
        let local = local.clone();
        tokio::spawn(async move {
            for seq in 0u16.. {
                let packet = RtpPacket {
                    payload_type: 96,
                    sequence_number: seq,
                    timestamp: u32::from(seq) * 3000,
                    marker: true,
                    ssrc: 0,
                    payload: Bytes::from(vec![7u8; 1000]),
                };
                let _ = local.write_rtp(packet).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // The first feedback sets a target; probing then moves it.
    let first = timeout(Duration::from_secs(20), local.target_bitrate_changed())
        .await
        .expect("a target within 20 s")
        .expect("connected");
    assert!(first > 0);
    let moved = timeout(Duration::from_secs(20), local.target_bitrate_changed())
        .await
        .expect("the target moves within 20 s")
        .expect("connected");
    assert_ne!(moved, first);
    assert!(local.target_bitrate().is_some());
    writer.abort();
    a.close().await;
    b.close().await;
    reader.abort();
}
