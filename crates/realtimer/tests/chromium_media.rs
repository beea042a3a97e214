//! Media with headless Chromium (fake camera and microphone): the test
//! serves tests/browser/media-interop.html and a WebSocket for signaling
//! from http://localhost, and tests/browser/dc-interop.mjs opens it.
//!
//! - Chromium -> Rust, one run per video codec (VP8, VP9, H.264): the
//!   page offers its 320x240 camera with only that codec and its
//!   microphone; we answer, decode the video to frames of the camera's
//!   size and play the Opus audio through the jitter buffer to PCM with
//!   energy in it; there Chromium sends its Opus in RED (RFC 2198), which
//!   we put first in our answer, unwrapped into the jitter buffer. The
//!   VP8 run also records both to WebM from
//!   `read_sample`, and ffprobe reads the file back: codec, size, and a
//!   duration within 10% of the time recorded.
//! - Rust -> Chromium: we offer the test pattern (VP8) and a 440 Hz tone;
//!   the page reads the pattern's frame counters back from a canvas and
//!   finds the tone's peak with a WebAudio analyser.
#![cfg(feature = "codecs")]
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use realtimer::codecs::opus::OpusDecoder;
use realtimer::codecs::source::TestPattern;
use realtimer::codecs::{video_decoder, VideoCodec};
use realtimer::{MediaKind, PeerConnection, TrackLocal, TrackRemote};
use realtimer_media_files::webm::{WebmAudioTrack, WebmVideoCodec, WebmVideoTrack, WebmWriter};
use realtimer_media_files::RtpTimeline;
use realtimer_test_support::impaired_relay::Impairment;
use serde_json::{json, Value};
use tokio::time::Instant;

// Each includer (these tests, the chromium_media bench) uses a part.
#[allow(dead_code)]
mod chromium_page;
mod page_server;

use chromium_page::{
    audio_to_page, codecs_with_red, connect, have_chromium, message, node_output, open_page,
    spawn_tone, AudioToPage, Connected,
};

const PAGE: &str = include_str!("../../../tests/browser/media-interop.html");
const BENCH_PAGE: &str = include_str!("../../../tests/browser/media-bench.html");

/// Root mean square of 16-bit PCM.
fn rms(pcm: &[i16]) -> f64 {
    let sum: f64 = pcm.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / pcm.len().max(1) as f64).sqrt()
}

/// Frames of video and seconds of audio each run waits for (the
/// recording lasts as long as the longer).
const FRAMES: usize = 60;
const AUDIO_SECONDS: usize = 5;

/// Chromium sends its camera with `codec` and its microphone.
async fn chromium_sends(codec: &str) {
    if !have_chromium(codec) {
        return;
    }
    let page = open_page(PAGE, &format!("case=send&codec={codec}")).await;
    // Where we play the audio out, RED (RFC 2198) comes first in our
    // answer, so Chromium wraps its Opus in it (it offers red/48000/2);
    // the recording takes plain Opus.
    let record = codec == "VP8";
    let codecs = (!record).then(codecs_with_red);
    let Connected {
        pc,
        mut tracks,
        mut messages,
        to_page,
        node,
        ..
    } = connect(page, codecs, None).await;
    let settings = message(&mut messages, "settings").await;
    let size = (
        settings["width"].as_u64().unwrap() as u32,
        settings["height"].as_u64().unwrap() as u32,
    );
    println!("the page's camera: {size:?}");
    let (mut video, mut audio) = (None, None);
    while video.is_none() || audio.is_none() {
        let track = tokio::time::timeout(Duration::from_secs(60), tracks.recv())
            .await
            .expect("both tracks within 60 s")
            .unwrap();
        match track.kind() {
            MediaKind::Video => video = Some(track),
            _ => audio = Some(track),
        }
    }
    let (video, audio) = (video.unwrap(), audio.unwrap());
    let negotiated: Vec<_> = video.info().codecs.iter().map(|c| c.name.clone()).collect();
    println!("video codecs: {negotiated:?}");
    assert!(
        negotiated.iter().all(|n| n.eq_ignore_ascii_case(codec)
            || n.eq_ignore_ascii_case("rtx")
            || n.eq_ignore_ascii_case("red")
            || n.eq_ignore_ascii_case("ulpfec")),
        "{negotiated:?}"
    );
    let audio_codecs: Vec<_> = audio.info().codecs.iter().map(|c| c.name.clone()).collect();
    println!("audio codecs: {audio_codecs:?}");
    if !record {
        assert_eq!(audio_codecs.first().map(String::as_str), Some("red"));
    }
    let work =
        std::env::temp_dir().join(format!("realtimer-chromium-media-{}", std::process::id()));
    let outcome = tokio::time::timeout(Duration::from_secs(120), async {
        if record {
            record_webm(&video, &audio, size, &work).await
        } else {
            let played = decode(&video, &audio, size).await;
            check_inbound_stats(&pc, &played).await;
            None
        }
    })
    .await
    .expect("the frames and audio within 120 s");
    to_page.send(json!({"type": "done"})).unwrap();
    let result = message(&mut messages, "result").await;
    node_output(node).await;
    assert_eq!(result["failed"], json!([]), "the page: {result}");
    if let Some((path, recorded)) = outcome {
        check_recording(&path, size, recorded);
        let _ = std::fs::remove_dir_all(&work);
    }
    pc.close().await;
}

/// `FRAMES` decoded frames of the camera's size, and `AUDIO_SECONDS` of
/// played-out audio with energy in it; the jitter buffer's counters.
async fn decode(
    video: &TrackRemote,
    audio: &TrackRemote,
    size: (u32, u32),
) -> realtimer::AudioJitterStats {
    let frames = async {
        for _ in 0..FRAMES {
            let frame = video.read_video_frame().await.unwrap().expect("open");
            assert_eq!((frame.picture.width(), frame.picture.height()), size);
        }
    };
    let pcm = async {
        let mut pcm = Vec::new();
        while pcm.len() < AUDIO_SECONDS * 48_000 {
            let frame = audio.play_audio().await.unwrap().expect("open");
            pcm.extend(frame.pcm.iter().step_by(usize::from(frame.channels)));
        }
        pcm
    };
    let ((), pcm) = tokio::join!(frames, pcm);
    let stats = audio.audio_stats().await.unwrap();
    println!("audio: rms {:.0}, {stats:?}", rms(&pcm));
    assert_energy(&pcm);
    stats
}

/// getStats' inbound-rtp entries carry what was played out: the audio
/// jitter buffer's counters and the frames decoded.
async fn check_inbound_stats(pc: &PeerConnection, played: &realtimer::AudioJitterStats) {
    let report = pc.get_stats().await.unwrap();
    let of = |kind| report.inbound_rtp.iter().find(|s| s.kind == kind).unwrap();
    let (audio, video) = (of("audio"), of("video"));
    println!("inbound-rtp: {audio:?} {video:?}");
    assert_eq!(
        audio.jitter_buffer_emitted_count,
        played.jitter_buffer_emitted_count
    );
    assert!(audio.jitter_buffer_delay > 0.0 && audio.jitter_buffer_target_delay > 0.0);
    assert!(video.frames_decoded >= FRAMES as u64 && video.key_frames_decoded >= 1);
}

/// The fake microphone beeps: over seconds of it, the PCM is far from
/// silence (a silent or all-concealed stream has an RMS near 0).
fn assert_energy(pcm: &[i16]) {
    let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!(
        rms(pcm) > 100.0 && peak > 3_000,
        "rms {}, peak {peak}",
        rms(pcm)
    );
}

/// Records `FRAMES` frames and the audio meanwhile to WebM from
/// `read_sample`, decoding them too (frames of the camera's size, audio
/// with energy). Each track's RTP timeline starts where its first sample
/// arrived on the recording's clock. Returns the file and the time
/// recorded (from the first sample written to the last).
async fn record_webm(
    video: &TrackRemote,
    audio: &TrackRemote,
    size: (u32, u32),
    work: &std::path::Path,
) -> Option<(PathBuf, Duration)> {
    std::fs::create_dir_all(work).unwrap();
    let path = work.join("chromium.webm");
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let webm = WebmWriter::new(
        file,
        Some(WebmVideoTrack {
            codec: WebmVideoCodec::Vp8,
            width: size.0 as u16,
            height: size.1 as u16,
        }),
        Some(WebmAudioTrack { channels: 1 }),
    )
    .unwrap();
    let webm = std::sync::Mutex::new(webm);
    let clock = std::sync::Mutex::new((None::<Instant>, Instant::now()));
    // Nanoseconds from the recording's start to now, and the latest
    // sample's time.
    let arrived = || {
        let mut c = clock.lock().unwrap();
        let now = Instant::now();
        c.1 = now;
        now.duration_since(*c.0.get_or_insert(now)).as_nanos() as i64
    };
    let video_done = std::sync::atomic::AtomicBool::new(false);
    let frames = async {
        let mut decoder = video_decoder(VideoCodec::Vp8).unwrap();
        let mut timeline = RtpTimeline::new(90_000);
        let mut offset = None;
        let mut decoded = 0;
        while decoded < FRAMES {
            let frame = video.read_sample().await.expect("open");
            if offset.is_none() && !frame.keyframe {
                continue;
            }
            let now = arrived();
            let at = *offset.get_or_insert(now) + timeline.nanos(frame.timestamp);
            webm.lock()
                .unwrap()
                .write_video(&frame.data, at, frame.keyframe)
                .unwrap();
            if let Some(picture) = decoder.decode(&frame.data).unwrap() {
                assert_eq!((picture.width(), picture.height()), size);
                decoded += 1;
            }
        }
        video_done.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let sound = async {
        let mut decoder = OpusDecoder::new(1).unwrap();
        let mut timeline = RtpTimeline::new(48_000);
        let mut offset = None;
        let mut pcm = Vec::new();
        while pcm.len() < AUDIO_SECONDS * 48_000
            || !video_done.load(std::sync::atomic::Ordering::Relaxed)
        {
            let packet = audio.read_sample().await.expect("open");
            let now = arrived();
            let at = *offset.get_or_insert(now) + timeline.nanos(packet.timestamp);
            webm.lock().unwrap().write_audio(&packet.data, at).unwrap();
            decoder.decode(&packet.data, &mut pcm).unwrap();
        }
        pcm
    };
    let ((), pcm) = tokio::join!(frames, sound);
    let (first, last) = *clock.lock().unwrap();
    let recorded = last.duration_since(first.unwrap());
    webm.into_inner().unwrap().finish().unwrap();
    println!("audio: rms {:.0}", rms(&pcm));
    assert_energy(&pcm);
    Some((path, recorded))
}

/// ffprobe reads the recording: VP8 of the camera's size, Opus, and a
/// duration within 10% of the time recorded.
fn check_recording(path: &std::path::Path, size: (u32, u32), recorded: Duration) {
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries"])
        .arg("stream=codec_name,width,height:format=duration")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("cannot run ffprobe");
    let info: Value = serde_json::from_slice(&probe.stdout).unwrap();
    println!("ffprobe: {info}; recorded for {recorded:?}");
    let streams = info["streams"].as_array().unwrap();
    let video = streams
        .iter()
        .find(|s| s["codec_name"] == "vp8")
        .expect("a VP8 stream");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(u64::from(size.0)), Some(u64::from(size.1)))
    );
    assert!(streams.iter().any(|s| s["codec_name"] == "opus"), "{info}");
    let duration: f64 = info["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let recorded = recorded.as_secs_f64();
    assert!(
        (duration - recorded).abs() <= 0.1 * recorded,
        "ffprobe says {duration} s, recorded {recorded} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sends_vp8_and_opus_rust_decodes_and_records_webm() {
    chromium_sends("VP8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sends_vp9_and_opus_rust_decodes() {
    chromium_sends("VP9").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_sends_h264_and_opus_rust_decodes() {
    chromium_sends("H264").await;
}

/// We send the test pattern and a 440 Hz tone; the page reads them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sends_pattern_and_tone_chromium_reads_them_back() {
    if !have_chromium("the pattern and tone") {
        return;
    }
    let page = open_page(PAGE, "case=recv").await;
    let mut connected = connect(page, None, None).await;
    let video = TrackLocal::new(MediaKind::Video, "rust", "pattern");
    let audio = TrackLocal::new(MediaKind::Audio, "rust", "tone");
    connected.offer_tracks(&[&video, &audio]).await;
    let Connected {
        pc,
        mut messages,
        node,
        ..
    } = connected;
    let pattern = tokio::spawn(async move {
        let mut pattern = TestPattern::new(320, 240);
        let mut clock = tokio::time::interval(Duration::from_nanos(33_333_333));
        loop {
            clock.tick().await;
            let frame = pattern.next_frame();
            match video
                .write_video_frame(&frame, Duration::from_nanos(33_333_333))
                .await
            {
                Ok(()) | Err(realtimer::MediaError::NotNegotiated) => {}
                Err(_) => break,
            }
        }
    });
    let tone = spawn_tone(vec![audio]);
    let result = message(&mut messages, "result").await;
    pattern.abort();
    tone.abort();
    node_output(node).await;
    println!("the page: {result}");
    assert_eq!(result["failed"], json!([]), "the page: {result}");
    assert_eq!(result["passed"].as_array().map(Vec::len), Some(5));
    pc.close().await;
}

/// We send Opus in RED (RFC 2198, two copies a packet) when Chromium
/// takes it, through a relay that loses our RTP in pairs (3% of packets
/// start a loss of two): Chromium rebuilds both from the copies and plays
/// through. Opus' in-band FEC alone rebuilds only the second of a pair
/// (from the packet after it), so without RED every pair is a concealment
/// event; with it, at most a quarter of them (a loaded machine may stall
/// playout now and then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sends_red_chromium_plays_through_loss() {
    if !have_chromium("RED through loss") {
        return;
    }
    let pairs = Impairment {
        loss: 0.03,
        burst: 2,
        jitter: Duration::ZERO,
        seed: 2198,
    };
    const LOST: u64 = 40;
    let AudioToPage {
        pc,
        track: audio,
        relay,
        page,
    } = audio_to_page(BENCH_PAGE, Some(codecs_with_red()), pairs).await;
    let tone = spawn_tone(vec![audio.clone()]);
    // Until LOST packets were dropped (about 670 sent, 13 s).
    let dropped = || {
        relay
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |r| r.counts.dropped.load(Ordering::Relaxed))
    };
    tokio::time::timeout(Duration::from_secs(120), async {
        while dropped() < LOST {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        let r = relay.lock().unwrap();
        panic!(
            "{LOST} packets dropped within 120 s; the relay: {:?}",
            r.as_ref().map(|r| &r.counts)
        )
    });
    // The last dropped ones have had time to be rebuilt and played.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = page.finish_jitter(tone).await;
    let dropped = dropped();
    println!("dropped {dropped}; Chromium: {stats}");
    assert_eq!(audio.red_payload_type(), Some(63), "Chromium took RED");
    let inbound = &stats["inbound"];
    // Chromium's RED splitter drops the copies of packets it has: two a
    // packet, less the ones that rebuilt a loss.
    let (received, discarded) = (
        inbound["packetsReceived"].as_u64().unwrap(),
        inbound["packetsDiscarded"].as_u64().unwrap(),
    );
    assert!(
        discarded >= received,
        "{discarded} copies discarded of {received} packets"
    );
    let lost = inbound["packetsLost"].as_u64().unwrap();
    assert!(
        lost >= dropped / 2,
        "Chromium lost {lost} of {dropped} dropped"
    );
    // Without RED every dropped pair costs at least one concealment (in-band
    // FEC rebuilds only the second of two losses): 20 events for 20 pairs.
    // With it, runs saw 3-6 (start-up and scheduling account for the rest).
    let events = inbound["concealmentEvents"].as_u64().unwrap();
    assert!(
        events <= dropped / 2 / 2,
        "Chromium concealed {events} times for {} pairs dropped",
        dropped / 2
    );
    pc.close().await;
}
