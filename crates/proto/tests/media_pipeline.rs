//! The media pipeline (realtimer-media) over two cores on the simulated
//! network: video through 50 ms of jitter and 5% loss recovered by NACK
//! and keyframe requests, and lip sync from the sender reports.

mod common;

use std::time::Duration;

use common::Pair;
use realtimer_media::{FrameBuffer, FrameBufferConfig, LipSync, PayloadFormat, SampleWriter};
use realtimer_netsim::{LinkConfig, Loss};
use realtimer_proto::{Feedback, MediaKind, MediaRef, RtcEvent, RtpPacket};

const FRAME: Duration = Duration::from_nanos(33_333_333);

fn lan() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(5))
}

/// a sends tracks of `kinds` to b; connected. The transceivers on each side.
fn call(seed: u64, kinds: &[MediaKind]) -> (Pair, Vec<MediaRef>, Vec<MediaRef>) {
    let mut p = Pair::new(seed, lan());
    let a = p.a;
    let senders = kinds
        .iter()
        .map(|&k| p.with(a, |rtc, _| rtc.add_track(k, "s", k.as_str()).unwrap()))
        .collect();
    p.negotiate();
    let receivers = p
        .node(p.b)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            RtcEvent::Track(r, _) => Some(*r),
            _ => None,
        })
        .collect();
    assert!(p.run_until(Duration::from_secs(10), |x, y| x.connected()
        && y.connected()));
    (p, senders, receivers)
}

fn rtp(payload_type: u8, p: realtimer_media::OutgoingPacket) -> RtpPacket {
    RtpPacket {
        payload_type,
        sequence_number: p.sequence_number,
        timestamp: p.timestamp,
        marker: p.marker,
        ssrc: 0,
        payload: p.payload,
    }
}

#[test]
fn video_recovers_from_jitter_and_loss_by_nack_and_keyframe_requests() {
    let (mut p, senders, receivers) = call(51, &[MediaKind::Video]);
    let (a, b) = (p.a, p.b);
    let (sender, receiver) = (senders[0], receivers[0]);
    let impaired = LinkConfig::default()
        .delay(Duration::from_millis(20))
        .jitter(Duration::from_millis(50))
        .loss(Loss::Independent(0.05));
    for node in [a, b] {
        let host = p.net.node_host(node);
        p.net.set_uplink(host, impaired.clone());
    }
    let mut writer = SampleWriter::new(PayloadFormat::Vp8, 90_000, 1_000, 0);
    let mut buffer = FrameBuffer::new(PayloadFormat::Vp8, FrameBufferConfig::video());
    let (mut seen_a, mut seen_b) = (p.node(a).events.len(), p.node(b).events.len());
    let mut keyframe_asked = false;
    let (mut got, mut keyframes_sent) = (Vec::new(), 0);
    const FRAMES: u16 = 300;
    for i in 0..FRAMES + 10 {
        if i < FRAMES {
            // Frames of 3 packets; a keyframe first and when asked.
            let key = i == 0 || std::mem::take(&mut keyframe_asked);
            keyframes_sent += u32::from(key);
            let mut frame = vec![if key { 0x10 } else { 0x11 }, (i >> 8) as u8, i as u8];
            frame.resize(3_000, 0xAB);
            let mut packets = Vec::new();
            writer.write(&frame, FRAME, &mut packets);
            p.with(a, |rtc, now| {
                for packet in packets {
                    rtc.write_rtp(now, sender, &rtp(96, packet)).unwrap();
                }
            });
        }
        p.run_until(FRAME, |_, _| false);
        let node_a = p.node(a);
        keyframe_asked |= node_a.events[seen_a..].iter().any(
            |(_, e)| matches!(e, RtcEvent::Feedback(m, Feedback::Keyframe(_)) if *m == sender),
        );
        seen_a = node_a.events.len();
        let node_b = p.node(b);
        for (at, e) in &node_b.events[seen_b..] {
            if let RtcEvent::Rtp(m, pkt) = e {
                assert_eq!(*m, receiver);
                buffer.insert(
                    *at,
                    pkt.sequence_number,
                    pkt.timestamp,
                    pkt.marker,
                    pkt.payload.clone(),
                );
            }
        }
        seen_b = node_b.events.len();
        let now = p.net.now();
        while let Some(frame) = buffer.poll_frame(now) {
            got.push(u16::from_be_bytes([frame.data[1], frame.data[2]]));
        }
        if buffer.poll_keyframe_request(now) {
            p.with(b, |rtc, _| rtc.request_keyframe(receiver).unwrap());
        }
    }
    let stats = buffer.stats();
    eprintln!(
        "{} of {FRAMES} frames, {keyframes_sent} keyframes sent, {stats:?}",
        got.len()
    );
    assert!(got.windows(2).all(|w| w[1] > w[0]), "decode order: {got:?}");
    // 5% of packets lost, 14% of 3-packet frames hit: NACK brings most
    // back, a keyframe request the rest.
    assert!(
        got.len() >= usize::from(FRAMES) * 85 / 100,
        "{} of {FRAMES}: {stats:?}",
        got.len()
    );
    // And it ends decoding: the last second's frames came.
    assert!(
        got.iter().filter(|&&i| i >= FRAMES - 30).count() >= 20,
        "{got:?}"
    );
    assert!(
        stats.frames_dropped == 0 || stats.keyframe_requests > 0,
        "{stats:?}"
    );
    assert!(keyframes_sent <= 1 + stats.keyframe_requests as u32);
}

#[test]
fn sender_reports_put_audio_and_video_on_one_wallclock() {
    let (mut p, senders, receivers) = call(53, &[MediaKind::Audio, MediaKind::Video]);
    let (a, b) = (p.a, p.b);
    // Audio every 20 ms and video every 40 ms from the same start, clocks
    // from unrelated random origins.
    let mut audio = SampleWriter::new(PayloadFormat::Opus, 48_000, 7, 1_234_567);
    let mut video = SampleWriter::new(PayloadFormat::Vp8, 90_000, 9, 4_000_000_000);
    let (audio_start, video_start) = (audio.next_timestamp(), video.next_timestamp());
    for i in 0..200u32 {
        let mut packets = Vec::new();
        audio.write(&[0xFC, 0], Duration::from_millis(20), &mut packets);
        let audio_packets = std::mem::take(&mut packets);
        if i % 2 == 0 {
            video.write(&[0x10, 1, 2], Duration::from_millis(40), &mut packets);
        }
        p.with(a, |rtc, now| {
            for packet in audio_packets {
                rtc.write_rtp(now, senders[0], &rtp(111, packet)).unwrap();
            }
            for packet in packets {
                rtc.write_rtp(now, senders[1], &rtp(96, packet)).unwrap();
            }
        });
        p.run_until(Duration::from_millis(20), |_, _| false);
    }
    let mut sync = LipSync::new();
    for (_, e) in &p.node(b).events {
        if let RtcEvent::SenderReport(m, clock) = e {
            if *m == receivers[0] {
                sync.audio_report(clock.ntp_time, clock.rtp_time, 48_000);
            } else if *m == receivers[1] {
                sync.video_report(clock.ntp_time, clock.rtp_time, 90_000);
            }
        }
    }
    // The audio of 2 s after the start is heard now: the video of 2 s is
    // due now, and that of 2.2 s 200 ms later.
    let now = p.net.now();
    sync.audio_played(now, audio_start.wrapping_add(2 * 48_000));
    let offset = sync
        .offset(video_start.wrapping_add(2 * 90_000))
        .expect("both reports came");
    assert!(offset.abs() < 0.005, "video {offset} s off the audio");
    let due = sync
        .video_due(video_start.wrapping_add(2 * 90_000 + 18_000))
        .unwrap();
    let after = (due - now).as_secs_f64();
    assert!((after - 0.2).abs() < 0.005, "{after}");
}
