//! The sample API between two PeerConnections on loopback: raw frames
//! and PCM encoded with the negotiated codec (VP8, VP9, H.264, Opus),
//! packetized, sent over SRTP, reassembled and decoded on the other side;
//! the test pattern's counter and the tone read back, a keyframe request
//! answered by a keyframe.

#![cfg(feature = "codecs")]

use std::time::Duration;

use realtimer::codecs::source::{read_frame_counter, tone_power, TestPattern, Tone};
use realtimer::{Codec, MediaKind, PeerConnection, TrackLocal, TrackRemote};
use realtimer_test_support::pair::{config, connect_track};
use tokio::time::timeout;

/// A sends one track of `kind` to b, offering only `codec`.
async fn connect(
    kind: MediaKind,
    codec: Codec,
) -> (PeerConnection, PeerConnection, TrackLocal, TrackRemote) {
    let mut offerer = config(None);
    offerer.rtc.codecs = vec![codec];
    connect_track(offerer, kind).await
}

const FRAME: Duration = Duration::from_nanos(33_333_333);

/// Sends the test pattern (320x240) until `frames` decoded frames came
/// back in order; asks for a keyframe halfway and expects one.
async fn video_round_trip(codec: Codec) {
    let name = codec.name.clone();
    let (a, b, local, remote) = connect(MediaKind::Video, codec).await;
    assert_eq!(local.codec().map(|c| c.name), Some(name.clone()));
    let sender = tokio::spawn(async move {
        let mut pattern = TestPattern::new(320, 240);
        loop {
            let frame = pattern.next_frame();
            if local.write_video_frame(&frame, FRAME).await.is_err() {
                break;
            }
            tokio::time::sleep(FRAME).await;
        }
    });
    let mut counters = Vec::new();
    let mut asked_at = None;
    let mut keyframe_after_ask = false;
    timeout(Duration::from_secs(60), async {
        while counters.len() < 40 || !keyframe_after_ask {
            let frame = remote
                .read_video_frame()
                .await
                .unwrap()
                .expect("connection open");
            assert_eq!(
                (frame.picture.width(), frame.picture.height()),
                (320, 240),
                "{name}"
            );
            let counter = read_frame_counter(&frame.picture).expect("the counter reads back");
            if let Some(&last) = counters.last() {
                assert!(counter > last, "{name}: frame {counter} after {last}");
            }
            counters.push(counter);
            if asked_at.is_some() && frame.keyframe {
                keyframe_after_ask = true;
            }
            if counters.len() == 20 {
                remote.request_keyframe().await.unwrap();
                asked_at = Some(counter);
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("{name}: 40 frames and a keyframe on request within 60 s; got {counters:?}")
    });
    // On loopback nothing is lost: the counters run without gaps once
    // the first keyframe arrived.
    let gaps = counters.windows(2).filter(|w| w[1] != w[0] + 1).count();
    assert_eq!(gaps, 0, "{name}: {counters:?}");
    let stats = remote.frame_stats().await.unwrap();
    assert!(stats.frames >= 40, "{name}: {stats:?}");
    sender.abort();
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_frames_decode_with_their_counters() {
    video_round_trip(Codec::new(96, "VP8", 90_000, None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp9_frames_decode_with_their_counters() {
    video_round_trip(Codec::new(98, "VP9", 90_000, None).with_fmtp("profile-id=0")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_frames_decode_with_their_counters() {
    video_round_trip(
        Codec::new(102, "H264", 90_000, None)
            .with_fmtp("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_carries_a_440_hz_tone() {
    let codec = Codec::new(111, "opus", 48_000, Some(2)).with_fmtp("minptime=10;useinbandfec=1");
    let (a, b, local, remote) = connect(MediaKind::Audio, codec).await;
    let sender = tokio::spawn(async move {
        let mut tone = Tone::new(440.0, 48_000, 1);
        // 10 ms at a time: the track gathers 20 ms packets.
        let mut pcm = vec![0i16; 480];
        loop {
            tone.fill(&mut pcm);
            if local.write_audio(&pcm, 1).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let mut pcm = Vec::new();
    let mut packets = 0;
    timeout(Duration::from_secs(30), async {
        while packets < 50 {
            let frame = remote.read_audio().await.unwrap().expect("connection open");
            assert_eq!((frame.channels, frame.concealed_samples), (1, 0));
            assert_eq!(frame.pcm.len(), 960, "20 ms packets");
            packets += 1;
            // The decoder's first packets ramp up; measure the last second.
            if packets > 10 {
                pcm.extend_from_slice(&frame.pcm);
            }
        }
    })
    .await
    .expect("50 Opus packets within 30 s");
    let at_440 = tone_power(&pcm, 1, 48_000, 440.0);
    let at_1000 = tone_power(&pcm, 1, 48_000, 1_000.0);
    // A third of full scale is 1/9 in power; Opus keeps most of it.
    assert!(
        at_440 > 0.05 && at_440 > 100.0 * at_1000,
        "440 Hz {at_440}, 1 kHz {at_1000}"
    );
    sender.abort();
    a.close().await;
    b.close().await;
}
