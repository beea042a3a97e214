//! The sample API between two PeerConnections on loopback: raw frames
//! and PCM encoded with the negotiated codec (VP8, VP9, H.264, Opus),
//! packetized, sent over SRTP, reassembled and decoded on the other side;
//! the test pattern's counter and the tone read back, a keyframe request
//! answered by a keyframe.

#![cfg(feature = "codecs")]

use std::time::Duration;

use realtimer::codecs::source::{read_frame_counter, tone_power, TestPattern, Tone};
use realtimer::{
    Codec, MediaError, MediaKind, ModificationError, PeerConnection, RtcError, Sample, StateError,
    TrackLocal, TrackRemote,
};
use realtimer_test_support::pair::{
    config, connect_track, connect_track_to, negotiate, pump_tracks,
};
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
    // getStats reports what read_video_frame decoded.
    let report = b.get_stats().await.unwrap();
    let inbound = report
        .inbound_rtp
        .iter()
        .find(|s| s.kind == "video")
        .unwrap();
    assert!(
        inbound.frames_decoded >= counters.len() as u64
            && inbound.key_frames_decoded >= 2
            && inbound.jitter_buffer_emitted_count == inbound.frames_decoded,
        "{name}: {inbound:?}"
    );
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

/// Sends a 440 Hz tone, 10 ms at a time on a steady clock (the track
/// gathers 20 ms packets).
fn send_tone(local: TrackLocal) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tone = Tone::new(440.0, 48_000, 1);
        let mut pcm = vec![0i16; 480];
        let mut clock = tokio::time::interval(Duration::from_millis(10));
        loop {
            clock.tick().await;
            tone.fill(&mut pcm);
            if local.write_audio(&pcm, 1).await.is_err() {
                break;
            }
        }
    })
}

fn opus() -> Codec {
    Codec::new(111, "opus", 48_000, Some(2)).with_fmtp("minptime=10;useinbandfec=1")
}

/// The tone's power against 1 kHz's in `pcm`, the mean over 20 ms
/// windows (a concealed or skipped frame shifts the phase, which a
/// single window over all would count against the tone): the tone must
/// dominate.
fn assert_tone(pcm: &[i16]) {
    let mean = |f: f64| {
        let windows = pcm.chunks_exact(960);
        let n = windows.len() as f64;
        windows.map(|w| tone_power(w, 1, 48_000, f)).sum::<f64>() / n
    };
    let (at_440, at_1000) = (mean(440.0), mean(1_000.0));
    // A third of full scale is 1/9 in power; Opus keeps most of it.
    assert!(
        at_440 > 0.05 && at_440 > 100.0 * at_1000,
        "440 Hz {at_440}, 1 kHz {at_1000}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_carries_a_440_hz_tone() {
    let (a, b, local, remote) = connect(MediaKind::Audio, opus()).await;
    let sender = send_tone(local);
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
    assert_tone(&pcm);
    sender.abort();
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_plays_out_through_the_jitter_buffer_at_its_pace() {
    let (a, b, local, remote) = connect(MediaKind::Audio, opus()).await;
    let sender = send_tone(local);
    let mut pcm = Vec::new();
    let started = tokio::time::Instant::now();
    let mut frames = 0;
    timeout(Duration::from_secs(30), async {
        // Until 1 s of the tone has played after the decoder's ramp-up.
        while pcm.len() < 48_000 {
            let frame = remote.play_audio().await.unwrap().expect("connection open");
            assert_eq!((frame.channels, frame.pcm.len()), (1, 960));
            frames += 1;
            let playing = remote
                .audio_stats()
                .await
                .unwrap()
                .jitter_buffer_emitted_count
                > 10 * 960;
            if playing {
                pcm.extend_from_slice(&frame.pcm);
            }
        }
    })
    .await
    .expect("a second of playout within 30 s");
    // One frame each 20 ms of the playout clock.
    assert!(
        started.elapsed() >= Duration::from_millis(20) * (frames - 1),
        "{frames} frames in {:?}",
        started.elapsed()
    );
    let stats = remote.audio_stats().await.unwrap();
    eprintln!("{stats:?}");
    // getStats carries the jitter buffer's counters, Chrome's names.
    let report = b.get_stats().await.unwrap();
    let inbound = report
        .inbound_rtp
        .iter()
        .find(|s| s.kind == "audio")
        .unwrap();
    assert_eq!(
        (
            inbound.jitter_buffer_emitted_count,
            inbound.jitter_buffer_delay,
            inbound.concealed_samples
        ),
        (
            stats.jitter_buffer_emitted_count,
            stats.jitter_buffer_delay,
            stats.concealed_samples
        )
    );
    let json = report.to_json();
    for member in [
        "jitterBufferDelay",
        "jitterBufferEmittedCount",
        "concealedSamples",
    ] {
        assert!(json.contains(member), "{member} in {json}");
    }
    assert_tone(&pcm);
    // What played came out of the buffer and is counted. (How long it
    // waited and how much was concealed depend on how the two tasks are
    // scheduled, up to seconds on a starved machine; the netsim test of
    // realtimer-media checks both on a deterministic link.)
    let played = u64::from(frames) * 960;
    assert!(stats.jitter_buffer_emitted_count >= 48_000, "{stats:?}");
    assert!(
        stats.jitter_buffer_emitted_count + stats.concealed_samples <= played,
        "{frames} frames: {stats:?}"
    );
    sender.abort();
    a.close().await;
    b.close().await;
}

/// setCodecPreferences on a track: given before `add_track`, the offer
/// carries only VP9 of the default codecs (VP8 first), so VP9 is what the
/// track sends and the other side decodes; after `add_track`, a codec of
/// the other kind or one the connection lacks is InvalidModification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codec_preferences_make_vp9_the_sent_codec() {
    let vp9 = Codec::new(0, "VP9", 90_000, None);
    let a = PeerConnection::new(config(None)).await.unwrap();
    let b = PeerConnection::new(config(None)).await.unwrap();
    let (tracks_tx, mut tracks) = tokio::sync::mpsc::unbounded_channel();
    pump_tracks(&a, b.clone(), tokio::sync::mpsc::unbounded_channel().0);
    pump_tracks(&b, a.clone(), tracks_tx);
    let local = TrackLocal::new(MediaKind::Video, "stream", "video");
    local.set_codec_preferences(&[vp9]).await.unwrap();
    a.add_track(local.clone()).await.unwrap();
    for wrong in [opus(), Codec::new(0, "H265", 90_000, None)] {
        let refused = local.set_codec_preferences(&[wrong]).await;
        assert!(
            matches!(
                refused,
                Err(RtcError::InvalidModification(
                    ModificationError::CodecNotSupported { .. }
                ))
            ),
            "{refused:?}"
        );
    }
    negotiate(&a, &b).await;
    let offer = a.current_local_description().unwrap().sdp;
    assert!(
        offer.contains("VP9/90000") && !offer.contains("VP8/90000"),
        "{offer}"
    );
    let remote = timeout(Duration::from_secs(10), tracks.recv())
        .await
        .expect("track event within 10 s")
        .unwrap();
    assert_eq!(local.codec().map(|c| c.name), Some("VP9".into()));
    let sender = tokio::spawn(async move {
        let mut pattern = TestPattern::new(320, 240);
        while local
            .write_video_frame(&pattern.next_frame(), FRAME)
            .await
            .is_ok()
        {
            tokio::time::sleep(FRAME).await;
        }
    });
    let frame = timeout(Duration::from_secs(30), remote.read_video_frame())
        .await
        .expect("a decoded frame within 30 s")
        .unwrap()
        .expect("connection open");
    assert_eq!((frame.picture.width(), frame.picture.height()), (320, 240));
    sender.abort();
    a.close().await;
    b.close().await;
}

/// A negotiated codec without a payload format here (PCMU) refuses
/// samples and raw PCM with its own error, naming the codec, instead of
/// dropping them; its RTP packets still go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codec_samples_cannot_be_packetized_for_is_refused_by_name() {
    let pcmu = || {
        let mut c = config(None);
        c.rtc.codecs = vec![Codec::new(0, "PCMU", 8_000, Some(1))];
        c
    };
    let (a, b, local, _remote) = connect_track_to(pcmu(), pcmu(), MediaKind::Audio).await;
    let refused = local
        .write_sample(Sample::new(vec![0xFFu8; 160], Duration::from_millis(20)))
        .await;
    assert!(
        matches!(
            &refused,
            Err(RtcError::InvalidState(StateError::UnsupportedCodec { codec, .. })) if codec == "PCMU"
        ),
        "{refused:?}"
    );
    let raw = local.write_audio(&[0i16; 960], 1).await;
    assert!(
        matches!(
            &raw,
            Err(MediaError::Rtc(RtcError::InvalidState(
                StateError::UnsupportedCodec { .. }
            )))
        ),
        "{raw:?}"
    );
    a.close().await;
    b.close().await;
}

/// A room with a loudspeaker and a microphone: a sends a 440 Hz tone to
/// b, which plays it out; what b plays comes back into c's microphone at
/// half the level (the echo) and c sends it on to d. The tone's power at
/// d over its last second, with c's audio processing as `config` (b's
/// playout its far end) or without.
async fn echo_heard_at_the_far_side(
    config: Option<realtimer::codecs::apm::AudioProcessingConfig>,
) -> f64 {
    let (a, b, tone_out, played) = connect(MediaKind::Audio, opus()).await;
    let (c, d, microphone, heard) = connect(MediaKind::Audio, opus()).await;
    if let Some(config) = config {
        microphone
            .set_audio_processing(config, 1, Some(&played))
            .await
            .unwrap();
    }
    let sender = send_tone(tone_out);
    let room = tokio::spawn(async move {
        while let Ok(Some(frame)) = played.play_audio().await {
            let echo: Vec<i16> = frame
                .pcm
                .iter()
                .step_by(usize::from(frame.channels))
                .map(|s| s / 2)
                .collect();
            if microphone.write_audio(&echo, 1).await.is_err() {
                break;
            }
        }
    });
    let mut pcm = Vec::new();
    timeout(Duration::from_secs(30), async {
        // 4 s: the canceller converges within the first two.
        while pcm.len() < 4 * 48_000 {
            let frame = heard.read_audio().await.unwrap().expect("connection open");
            pcm.extend(frame.pcm.iter().step_by(usize::from(frame.channels)));
        }
    })
    .await
    .expect("4 s of audio within 30 s");
    sender.abort();
    room.abort();
    for pc in [a, b, c, d] {
        pc.close().await;
    }
    let last = &pcm[pcm.len() - 48_000..];
    last.chunks_exact(960)
        .map(|w| tone_power(w, 1, 48_000, 440.0))
        .sum::<f64>()
        / 50.0
}

/// The echo of what b played, captured back, is cut by at least 20 dB by
/// echo cancellation in `write_audio` with b's `play_audio` as the far
/// end (noise suppression off: it would cut a steady tone as noise by
/// itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_cancellation_removes_the_played_tone_from_the_microphone() {
    if !realtimer::codecs::apm::AudioProcessor::AVAILABLE {
        println!("skipped: built without webrtc-audio-processing");
        return;
    }
    let without = echo_heard_at_the_far_side(None).await;
    let with = echo_heard_at_the_far_side(Some(realtimer::codecs::apm::AudioProcessingConfig {
        echo_cancellation: true,
        noise_suppression: false,
        gain_control: false,
    }))
    .await;
    let db = 10.0 * (without / with.max(1e-12)).log10();
    println!(
        "echo at the far side: {without:.4} without, {with:.6} with processing: {db:.1} dB down"
    );
    assert!(
        without > 0.01,
        "the echo is heard without processing: {without}"
    );
    assert!(db >= 20.0, "{db:.1} dB");
}
