//! Audio and video in the `Rtc` core: JSEP with Chromium's offers, two
//! cores negotiating tracks on the simulated network.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Pair;
use realtimer_netsim::LinkConfig;
use realtimer_proto::{
    ArgumentError, Codec, Direction, Feedback, KeyframeRequest, MediaKind, ModificationError,
    RtcConfig, RtcError, RtcEvent, RtpPacket, SdpError, SessionDescription, StateError,
};

const CHROMIUM_OFFER: &str =
    include_str!("../../sdp/tests/fixtures/chromium/offer-audio-video-data.sdp");

fn lan() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(5))
}

/// The `index`-th media section of `sdp` (from its `m=` line to the next).
fn section(sdp: &str, index: usize) -> String {
    sdp.split("\r\nm=")
        .nth(index + 1)
        .map(|s| format!("m={s}"))
        .unwrap_or_default()
}

/// GStreamer webrtcbin's offer: its audio section has port 0 and
/// `a=bundle-only` (RFC 8843 §6), so it is wanted inside the bundle, not
/// rejected (it was, and webrtcbin's audio never flowed).
#[test]
fn answers_a_bundle_only_section_of_gstreamers_offer() {
    const GSTREAMER_OFFER: &str =
        include_str!("../../sdp/tests/fixtures/gstreamer/offer-audio-video.sdp");
    let mut p = Pair::new(41, lan());
    let b = p.b;
    p.with(b, |rtc, now| {
        rtc.set_remote_description(now, SessionDescription::offer(GSTREAMER_OFFER))
            .unwrap()
    });
    let kinds: Vec<_> = p
        .node(b)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            RtcEvent::Track(_, info) => Some((info.kind, info.mid.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (MediaKind::Video, "video0".to_owned()),
            (MediaKind::Audio, "audio1".to_owned())
        ]
    );
    let answer = p.with(b, |rtc, _| rtc.create_answer().unwrap());
    let sdp = &answer.sdp;
    assert!(sdp.contains("a=group:BUNDLE video0 audio1\r\n"), "{sdp}");
    assert!(
        section(sdp, 1).starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"),
        "{sdp}"
    );
}

#[test]
fn answers_chromiums_audio_video_and_data_offer() {
    let mut p = Pair::new(40, lan());
    let b = p.b;
    p.with(b, |rtc, now| {
        rtc.set_remote_description(now, SessionDescription::offer(CHROMIUM_OFFER))
            .unwrap()
    });
    let tracks: Vec<_> = p
        .node(b)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            RtcEvent::Track(r, info) => Some((*r, info.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(tracks.len(), 2, "one track event per sending section");
    assert_eq!(tracks[0].1.kind, MediaKind::Audio);
    assert_eq!(tracks[0].1.mid, "0");
    assert_eq!(
        tracks[0].1.stream_ids,
        vec!["5cfb755e-4be4-46ea-9217-5f05cea47e7f".to_owned()]
    );
    assert_eq!(tracks[1].1.kind, MediaKind::Video);
    assert_eq!(tracks[1].1.codecs[0].name, "VP8");
    // addTrack reuses the transceivers the offer made: no new section.
    let (audio, video) = p.with(b, |rtc, _| {
        (
            rtc.add_track(MediaKind::Audio, "echo", "a").unwrap(),
            rtc.add_track(MediaKind::Video, "echo", "v").unwrap(),
        )
    });
    assert_eq!((audio, video), (tracks[0].0, tracks[1].0));
    let answer = p.with(b, |rtc, _| rtc.create_answer().unwrap());
    let sdp = &answer.sdp;
    assert!(sdp.contains("a=group:BUNDLE 0 1 2\r\n"), "{sdp}");
    // Chromium offers transport-wide congestion control: the answer takes
    // its extension id and asks for the feedback on every codec.
    for m in [section(sdp, 0), section(sdp, 1)] {
        assert!(
            m.contains("a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"),
            "{m}"
        );
        assert!(m.contains(" transport-cc\r\n"), "{m}");
    }
    let audio_section = section(sdp, 0);
    assert!(
        audio_section.starts_with("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"),
        "{audio_section}"
    );
    for line in [
        "a=mid:0",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=msid:echo a",
        "a=setup:active",
    ] {
        assert!(audio_section.contains(line), "no {line}:\n{audio_section}");
    }
    assert!(!audio_section.contains("abs-send-time"));
    // The audio level (RFC 6464) with Chromium's id, in audio only.
    assert!(
        audio_section.contains("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"),
        "{audio_section}"
    );
    assert!(!section(sdp, 1).contains("ssrc-audio-level"));
    let video_section = section(sdp, 1);
    // VP8 first, then the offered VP9 profile 0, H.264 mode 1 and AV1,
    // with the offerer's payload types, each with its rtx (RFC 4588 §8.6);
    // red is not taken.
    assert!(
        video_section.starts_with("m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 102 103 45 46\r\n"),
        "{video_section}"
    );
    for line in [
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=fmtp:103 apt=102",
    ] {
        assert!(video_section.contains(line), "no {line}:\n{video_section}");
    }
    for line in [
        "a=rtcp-fb:96 nack\r\n",
        "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:96 ccm fir",
        "a=ssrc:",
        "msid:echo v",
    ] {
        assert!(video_section.contains(line), "no {line}:\n{video_section}");
    }
    assert!(section(sdp, 2).starts_with("m=application 9 UDP/DTLS/SCTP"));
    p.with(b, |rtc, now| {
        rtc.set_local_description(now, answer).unwrap()
    });
    assert_eq!(
        p.with(b, |rtc, _| rtc.transceiver_mid(video).map(str::to_owned)),
        Some("1".into())
    );
}

#[test]
fn unknown_codecs_and_sections_are_rejected_in_place() {
    let offer = CHROMIUM_OFFER
        .replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 speex/48000/2")
        .replace("m=application 9 UDP/DTLS/SCTP", "m=text 9 RTP/AVP");
    let mut p = Pair::new(41, lan());
    let b = p.b;
    p.with(b, |rtc, now| {
        rtc.set_remote_description(now, SessionDescription::offer(offer))
            .unwrap()
    });
    let answer = p.with(b, |rtc, _| rtc.create_answer().unwrap()).sdp;
    // Audio has no codec we take: port 0, mid kept; video is the bundle tag.
    assert!(section(&answer, 0).starts_with("m=audio 0 "), "{answer}");
    assert!(section(&answer, 0).contains("a=mid:0"));
    assert!(section(&answer, 1).contains("a=recvonly"), "{answer}");
    assert!(section(&answer, 2).starts_with("m=text 0 "), "{answer}");
    assert!(answer.contains("a=group:BUNDLE 1\r\n"), "{answer}");
}

#[test]
fn tracks_negotiate_between_two_cores_and_reoffers_keep_m_line_order() {
    let mut p = Pair::new(42, lan());
    let (a, b) = (p.a, p.b);
    p.with(a, |rtc, _| {
        rtc.add_track(MediaKind::Video, "s", "cam").unwrap();
    });
    assert!(p
        .node(a)
        .events
        .iter()
        .any(|(_, e)| *e == RtcEvent::NegotiationNeeded));
    p.negotiate();
    let track = p.node(b).events.iter().find_map(|(_, e)| match e {
        RtcEvent::Track(r, info) => Some((*r, info.clone())),
        _ => None,
    });
    let (_, info) = track.expect("b got the track");
    assert_eq!(info.kind, MediaKind::Video);
    assert_eq!(info.track_id.as_deref(), Some("cam"));
    assert!(p.run_until(Duration::from_secs(10), |x, y| x.connected()
        && y.connected()));
    // A second track: the re-offer keeps video at 0, data at 1, adds audio.
    p.with(a, |rtc, _| {
        rtc.add_transceiver(MediaKind::Audio, Direction::RecvOnly)
            .unwrap();
    });
    let offer = p.with(a, |rtc, _| rtc.create_offer().unwrap()).sdp;
    assert!(section(&offer, 0).starts_with("m=video"), "{offer}");
    assert!(section(&offer, 1).starts_with("m=application"), "{offer}");
    assert!(section(&offer, 2).starts_with("m=audio"), "{offer}");
    assert!(section(&offer, 2).contains("a=recvonly"), "{offer}");
    assert!(offer.contains("a=group:BUNDLE 0 1 2\r\n"), "{offer}");
}

/// a sends a video track to b; both connected with SRTP keys; NACKed
/// packets go again over RTX.
fn video_call(seed: u64) -> (Pair, realtimer_proto::MediaRef, realtimer_proto::MediaRef) {
    let mut config = RtcConfig::default();
    config.send_rtx = true;
    Pair::video_call(seed, lan(), config)
}

fn packet(seq: u16, payload: &'static [u8]) -> RtpPacket {
    RtpPacket {
        payload_type: 96,
        sequence_number: seq,
        timestamp: 3000 * u32::from(seq),
        marker: true,
        ssrc: 0,
        payload: Bytes::from_static(payload),
    }
}

fn received(p: &Pair, id: realtimer_netsim::NodeId) -> Vec<(realtimer_proto::MediaRef, RtpPacket)> {
    p.node(id)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            RtcEvent::Rtp(r, pkt) => Some((*r, pkt.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn rtp_flows_and_keyframe_requests_go_back() {
    let (mut p, sender, receiver) = video_call(43);
    let (a, b) = (p.a, p.b);
    for seq in 1..=20u16 {
        p.with(a, |rtc, now| {
            rtc.write_rtp(now, sender, &packet(seq, b"frame")).unwrap()
        });
        p.run_until(Duration::from_millis(33), |_, _| false);
    }
    assert!(p.run_until(Duration::from_secs(1), |_, y| received_len(y) >= 20));
    let got = received(&p, b);
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|(r, _)| *r == receiver));
    assert_eq!(got[0].1.sequence_number, 1);
    assert_eq!(got[19].1.timestamp, 60_000);
    assert_eq!(&got[0].1.payload[..], b"frame");
    assert!(got[0].1.marker);
    // The SSRC is a's track's, the same on every packet.
    assert!(got
        .iter()
        .all(|(_, x)| x.ssrc == got[0].1.ssrc && x.ssrc != 0));
    // b asks for a keyframe: a hears a PLI for its track.
    p.with(b, |rtc, _| rtc.request_keyframe(receiver).unwrap());
    let pli = RtcEvent::Feedback(sender, Feedback::Keyframe(KeyframeRequest::Pli));
    assert!(p.run_until(Duration::from_secs(1), |x, _| x
        .events
        .iter()
        .any(|(_, e)| *e == pli)));
    // A NACK is answered by a itself on its RTX stream (RFC 4588): b
    // already has 3 and 5, so it drops the repairs as duplicates; 40 was
    // never sent. The application hears nothing of it.
    let failures = |p: &mut Pair| {
        p.with(b, |rtc, now| rtc.stats(now))
            .transport
            .srtp_unprotect_failures
    };
    let before = failures(&mut p);
    p.with(b, |rtc, _| {
        rtc.request_retransmission(receiver, &[3, 5, 40]).unwrap()
    });
    p.run_until(Duration::from_millis(200), |_, _| false);
    assert_eq!(failures(&mut p), before);
    let sent = p.with(a, |rtc, now| rtc.stats(now)).outbound_rtp;
    assert_eq!(sent[0].retransmitted_packets_sent, 2);
    assert_eq!(sent[0].retransmitted_bytes_sent, 2 * 5);
    assert!(!p
        .node(a)
        .events
        .iter()
        .any(|(_, e)| matches!(e, RtcEvent::Feedback(_, f) if *f != Feedback::Keyframe(KeyframeRequest::Pli))));
    // Reports flow every second; nothing else surfaces from them.
    p.run_until(Duration::from_secs(3), |_, _| false);
    assert_eq!(received(&p, b).len(), 20);
    // getStats: both ends count the stream under the same SSRC.
    let sent = p.with(a, |rtc, now| rtc.stats(now)).outbound_rtp;
    let got = p.with(b, |rtc, now| rtc.stats(now)).inbound_rtp;
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].packets_sent, sent[0].bytes_sent), (20, 100));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ssrc, sent[0].ssrc);
    assert_eq!((got[0].kind, got[0].mid.as_deref()), ("video", Some("0")));
    assert_eq!((got[0].packets_received, got[0].packets_lost), (20, 0));
    // Payload bytes on both sides (headers are not counted).
    assert_eq!(got[0].bytes_received, sent[0].bytes_sent);
    let json = p.with(b, |rtc, now| rtc.stats(now)).to_json();
    assert!(json.contains("\"type\":\"inbound-rtp\""), "{json}");
}

#[test]
fn audio_levels_go_out_in_the_extension_and_come_in_as_events() {
    let mut p = Pair::new(47, lan());
    let a = p.a;
    let sender = p.with(a, |rtc, _| {
        rtc.add_track(MediaKind::Audio, "s", "mic").unwrap()
    });
    let offer = p.with(a, |rtc, _| rtc.create_offer().unwrap());
    assert!(offer
        .sdp
        .contains("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"));
    p.negotiate();
    assert!(p.run_until(Duration::from_secs(10), |x, y| x.connected()
        && y.connected()));
    let level = |level, voice| realtimer_proto::AudioLevel { level, voice };
    for (seq, told) in [
        (1u16, None),
        (2, Some(level(25, true))),
        (3, Some(level(127, false))),
    ] {
        p.with(a, |rtc, now| {
            rtc.set_audio_level(sender, told).unwrap();
            let packet = RtpPacket {
                payload_type: 111,
                timestamp: 960 * u32::from(seq),
                ..packet(seq, b"opus")
            };
            rtc.write_rtp(now, sender, &packet).unwrap()
        });
        p.run_until(Duration::from_millis(20), |_, _| false);
    }
    assert!(p.run_until(Duration::from_secs(1), |_, y| received_len(y) >= 3));
    // Each level right before its packet; the packet without one has none.
    let events: Vec<_> = p
        .node(p.b)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            RtcEvent::AudioLevel(_, l) => Some(Some(*l)),
            RtcEvent::Rtp(..) => Some(None),
            _ => None,
        })
        .collect();
    assert_eq!(
        events,
        vec![
            None,
            Some(level(25, true)),
            None,
            Some(level(127, false)),
            None
        ]
    );
}

#[test]
fn restarted_sequence_numbers_go_out_continued_and_nacks_repair_loss() {
    let (mut p, sender, receiver) = video_call(45);
    let (a, b) = (p.a, p.b);
    let host = p.net.node_host(a);
    p.net
        .set_uplink(host, lan().loss(realtimer_netsim::Loss::Independent(0.2)));
    // The application restarts its numbering (a new source) and jumps:
    // reusing 1..=20 would reuse SRTP indices, so the wire continues.
    let app_seqs = (1..=20u16).chain(1..=20).chain(10_000..10_010);
    for (i, seq) in app_seqs.enumerate() {
        let mut pkt = packet(seq, b"frame");
        pkt.timestamp = 3000 * i as u32;
        p.with(a, |rtc, now| rtc.write_rtp(now, sender, &pkt).unwrap());
        p.run_until(Duration::from_millis(10), |_, _| false);
    }
    // b asks for what it misses until it has everything (NACKs and
    // retransmissions are lossy too).
    let wire = |p: &Pair| -> std::collections::BTreeSet<u16> {
        received(p, b)
            .iter()
            .map(|(_, x)| x.sequence_number)
            .collect()
    };
    let first = wire(&p).len();
    assert!(first < 50, "the link lost nothing");
    for _ in 0..20 {
        let got = wire(&p);
        let missing: Vec<u16> = (1..=50u16).filter(|s| !got.contains(s)).collect();
        if missing.is_empty() {
            break;
        }
        p.with(b, |rtc, _| {
            rtc.request_retransmission(receiver, &missing).unwrap()
        });
        p.run_until(Duration::from_millis(100), |_, _| false);
    }
    assert_eq!(wire(&p), (1..=50u16).collect());
    // Each wire number carries the packet sent under it: timestamps in
    // sending order.
    for (_, x) in received(&p, b) {
        assert_eq!(x.timestamp, 3000 * u32::from(x.sequence_number - 1));
    }
}

#[test]
fn receivers_ask_for_lost_video_by_themselves() {
    let (mut p, sender, _) = video_call(48);
    let (a, b) = (p.a, p.b);
    let host = p.net.node_host(a);
    p.net
        .set_uplink(host, lan().loss(realtimer_netsim::Loss::Independent(0.1)));
    for seq in 1..=60u16 {
        if seq == 51 {
            // The last ones arrive, so every loss shows as a gap.
            p.net.set_uplink(host, lan());
        }
        p.with(a, |rtc, now| {
            rtc.write_rtp(now, sender, &packet(seq, b"frame")).unwrap()
        });
        p.run_until(Duration::from_millis(10), |_, _| false);
    }
    p.run_until(Duration::from_secs(2), |_, _| false);
    let got: std::collections::BTreeSet<u16> = received(&p, b)
        .iter()
        .map(|(_, x)| x.sequence_number)
        .collect();
    assert_eq!(got, (1..=60u16).collect());
    let lost = p.with(b, |rtc, now| rtc.stats(now)).inbound_rtp[0].packets_lost;
    assert_eq!(lost, 0, "every loss was repaired");
    // Repaired over RTX (RFC 4588): a's offer paired its SSRCs, the
    // repairs went on the RTX SSRC, b counts one stream only.
    let offer = p.with(a, |rtc, _| rtc.local_description().unwrap().sdp.clone());
    assert!(offer.contains("a=ssrc-group:FID "), "{offer}");
    let sent = p.with(a, |rtc, now| rtc.stats(now)).outbound_rtp;
    assert!(sent[0].retransmitted_packets_sent > 0);
    let got = p.with(b, |rtc, now| rtc.stats(now)).inbound_rtp;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ssrc, sent[0].ssrc);
}

#[test]
fn answers_must_match_the_offer_and_offers_are_bounded() {
    let mut p = Pair::new(46, lan());
    let (a, b) = (p.a, p.b);
    let offer = p.with(a, |rtc, now| {
        rtc.add_track(MediaKind::Audio, "s", "mic").unwrap();
        rtc.add_track(MediaKind::Video, "s", "cam").unwrap();
        let offer = rtc.create_offer().unwrap();
        rtc.set_local_description(now, offer.clone()).unwrap();
        offer
    });
    let answer = p.with(b, |rtc, now| {
        rtc.set_remote_description(now, offer.clone()).unwrap();
        let answer = rtc.create_answer().unwrap();
        rtc.set_local_description(now, answer.clone()).unwrap();
        answer.sdp
    });
    let (audio, video) = (section(&answer, 0), section(&answer, 1));
    let tampered = [
        // A mid of none of our sections.
        answer.replace("a=mid:1\r\n", "a=mid:7\r\n"),
        // Video where our audio was, and the other way round.
        answer
            .replace(&audio, "@")
            .replace(&video, &audio)
            .replace('@', &video),
        // A section missing.
        answer.replace(&format!("{video}\r\n"), ""),
    ];
    for sdp in tampered {
        let refused = p.with(a, |rtc, now| {
            rtc.set_remote_description(now, SessionDescription::answer(sdp.clone()))
        });
        assert!(
            matches!(
                &refused,
                Err(RtcError::InvalidSdp(
                    SdpError::AnswerSectionCount { .. } | SdpError::AnswerSectionMismatch { .. }
                ))
            ),
            "{refused:?}\n{sdp}"
        );
    }
    // The real answer still applies: nothing changed on the way.
    p.with(a, |rtc, now| {
        rtc.set_remote_description(now, SessionDescription::answer(answer.clone()))
            .unwrap()
    });

    // Offers: a repeated mid, and more sections than a peer may add.
    let first_media = section(&offer.sdp, 0) + "\r\n";
    let repeated = format!("{}{}", offer.sdp, first_media);
    let huge = (0..300).fold(offer.sdp.clone(), |sdp, i| {
        sdp + &first_media.replace("a=mid:0\r\n", &format!("a=mid:x{i}\r\n"))
    });
    for (sdp, repeats) in [(repeated, true), (huge, false)] {
        let mut fresh = Pair::new(47, lan());
        let c = fresh.b;
        let refused = fresh.with(c, |rtc, now| {
            rtc.set_remote_description(now, SessionDescription::offer(sdp))
        });
        assert!(
            match &refused {
                Err(RtcError::InvalidSdp(SdpError::DuplicateMid { mid, .. })) =>
                    repeats && mid == "0",
                // The SDP parser's own limit comes first.
                Err(RtcError::InvalidSdp(SdpError::Parse(e))) => {
                    !repeats
                        && e.kind
                            == realtimer_sdp::ParseErrorKind::TooManyMediaSections { limit: 256 }
                }
                _ => false,
            },
            "{refused:?}"
        );
    }
}

fn received_len(n: &common::RtcNode) -> usize {
    n.events
        .iter()
        .filter(|(_, e)| matches!(e, RtcEvent::Rtp(..)))
        .count()
}

#[test]
fn writes_before_negotiation_or_without_a_track_are_refused() {
    let mut p = Pair::new(44, lan());
    let a = p.a;
    let (track, recv_only) = p.with(a, |rtc, now| {
        let t = rtc.add_track(MediaKind::Audio, "s", "mic").unwrap();
        let r = rtc
            .add_transceiver(MediaKind::Video, Direction::RecvOnly)
            .unwrap();
        assert!(matches!(
            rtc.write_rtp(now, t, &packet(1, b"x")),
            Err(RtcError::InvalidState(StateError::NotSending { media })) if media == t
        ));
        (t, r)
    });
    p.negotiate();
    assert!(p.run_until(Duration::from_secs(10), |x, y| x.connected()
        && y.connected()));
    p.with(a, |rtc, now| {
        assert!(matches!(
            rtc.write_rtp(now, recv_only, &packet(1, b"x")),
            Err(RtcError::InvalidState(StateError::NoTrack { media })) if media == recv_only
        ));
        // VP8's payload type on the audio track: not negotiated there.
        assert!(matches!(
            rtc.write_rtp(now, track, &packet(1, b"x")),
            Err(RtcError::TypeError(ArgumentError::PayloadType {
                payload_type: 96,
                media,
            })) if media == track
        ));
        let mut opus = packet(1, b"x");
        opus.payload_type = 111;
        rtc.write_rtp(now, track, &opus).unwrap();
    });
}

#[test]
fn hostile_media_datagrams_are_dropped() {
    let (mut p, _, _) = video_call(45);
    let b = p.b;
    let mut seed = 0x1234_5678_u64;
    p.with(b, |rtc, now| {
        let from = "10.0.0.1:5000".parse().unwrap();
        let to = "10.0.0.2:5000".parse().unwrap();
        for len in 0..400usize {
            let mut d = vec![0u8; len % 60 + 1];
            for byte in &mut d {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *byte = (seed >> 56) as u8;
            }
            // RTP/RTCP range (RFC 7983), with RTCP packet types half the time.
            d[0] = 0x80 | (d[0] & 0x3f);
            if len % 2 == 0 && d.len() > 1 {
                d[1] = 200 + (d[1] % 8);
            }
            rtc.handle_receive(now, from, to, &d);
        }
    });
    assert!(p.node(b).connected());
}

#[test]
fn rollback_of_a_remote_offer_forgets_its_transceivers() {
    let mut p = Pair::new(46, lan());
    let b = p.b;
    let (audio, negotiation_needed) = p.with(b, |rtc, now| {
        rtc.set_remote_description(now, SessionDescription::offer(CHROMIUM_OFFER))
            .unwrap();
        // A track added meanwhile reuses the offer's audio transceiver.
        let audio = rtc.add_track(MediaKind::Audio, "s", "mic").unwrap();
        rtc.set_remote_description(now, SessionDescription::rollback())
            .unwrap();
        (audio, rtc.transceiver_mid(audio).is_none())
    });
    assert!(negotiation_needed, "the track's transceiver lost its mid");
    assert!(p
        .node(b)
        .events
        .iter()
        .any(|(_, e)| *e == RtcEvent::NegotiationNeeded));
    // Our offer has the track alone, plus the data section: the offer's
    // video transceiver is gone.
    let offer = p.with(b, |rtc, _| rtc.create_offer().unwrap()).sdp;
    assert!(section(&offer, 0).starts_with("m=audio"), "{offer}");
    assert!(section(&offer, 0).contains("a=msid:s mic"), "{offer}");
    assert!(section(&offer, 1).starts_with("m=application"), "{offer}");
    assert!(!offer.contains("m=video"), "{offer}");
    assert_eq!(
        p.with(b, |rtc, _| rtc.transceiver_kind(audio)),
        Some(MediaKind::Audio)
    );
}

/// Every packet a sends is numbered transport-wide; b's feedback on them
/// reaches a's estimator, which says its estimate in an event and in
/// getStats; on a link of 1 Mbit/s it ramps above what a sends (probing)
/// but never past what the link carries plus the AIMD headroom.
#[test]
fn transport_wide_feedback_drives_the_estimate() {
    let (mut p, sender, _) = video_call(51);
    let (a, b) = (p.a, p.b);
    let host = p.net.node_host(a);
    p.net
        .set_uplink(host, lan().bandwidth(1_000_000, 64 * 1024));
    let payload: &'static [u8] = &[0u8; 1000];
    // 50 packets of 1000 bytes a second: 400 kbit/s for 3 s.
    for seq in 1..=150u16 {
        p.with(a, |rtc, now| {
            rtc.write_rtp(now, sender, &packet(seq, payload)).unwrap()
        });
        p.run_until(Duration::from_millis(20), |_, _| false);
    }
    let estimates: Vec<u64> = p
        .node(a)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            RtcEvent::BandwidthEstimate(bps) => Some(*bps),
            _ => None,
        })
        .collect();
    assert!(!estimates.is_empty(), "no estimate event");
    let available = p.with(a, |rtc, _| rtc.available_outgoing_bitrate());
    let available = available.expect("a measured estimate");
    assert!((300_000..=1_600_000).contains(&available), "{available}");
    let stats = p.with(a, |rtc, now| rtc.stats(now));
    let pair = stats.candidate_pairs.iter().find(|c| c.selected).unwrap();
    assert_eq!(pair.available_outgoing_bitrate, Some(available));
    assert!(stats.to_json().contains("\"availableOutgoingBitrate\":"));
    // b sent nothing: it estimates nothing.
    assert_eq!(p.with(b, |rtc, _| rtc.available_outgoing_bitrate()), None);
    assert_eq!(received(&p, b).len(), 150);
}

/// Probes filled with the last media packets again on RTX (payload
/// padding) rather than 255-byte padding-only packets: while a sends
/// 1000-byte packets at 100 kbit/s, the start-up probes (900 and 1800
/// kbit/s) go out in datagrams as big as the media's, b gets each media
/// packet once (the copies are duplicates), a counts none of it as
/// retransmitted, and the estimate leaves the 300 kbit/s start.
#[test]
fn probes_are_padded_with_media_packets_on_rtx() {
    let (mut p, sender, _) = video_call(53);
    let (a, b) = (p.a, p.b);
    let host = p.net.node_host(a);
    p.net
        .set_uplink(host, lan().bandwidth(2_500_000, 64 * 1024));
    p.net.record_trace(true);
    let from = p.net.host_addresses(host).to_vec();
    let payload: &'static [u8] = &[7u8; 1000];
    for seq in 1..=25u16 {
        p.with(a, |rtc, now| {
            rtc.write_rtp(now, sender, &packet(seq, payload)).unwrap()
        });
        p.run_until(Duration::from_millis(80), |_, _| false);
    }
    let sizes: Vec<usize> = p
        .net
        .trace()
        .iter()
        .filter(|e| e.event == realtimer_netsim::TraceEvent::Sent && from.contains(&e.source.ip()))
        .map(|e| e.len)
        .collect();
    let big = sizes.iter().filter(|&&n| n >= 1000).count();
    let small = sizes.iter().filter(|&&n| (100..1000).contains(&n)).count();
    // 25 media packets, the probes' copies beside them; the small ones
    // are RTCP and a padding packet's remainder now and then.
    assert!(big >= 25 + 10, "{big} big of {sizes:?}");
    assert!(small < big / 2, "{small} small of {sizes:?}");
    assert_eq!(received(&p, b).len(), 25);
    let stats = p.with(a, |rtc, now| rtc.stats(now));
    let out = stats
        .outbound_rtp
        .iter()
        .find(|o| o.kind == "video")
        .unwrap();
    assert_eq!(out.retransmitted_bytes_sent, 0);
    let available = p
        .with(a, |rtc, _| rtc.available_outgoing_bitrate())
        .unwrap();
    assert!(available > 600_000, "{available}");
}

/// Where transport-cc is negotiated, a's packets leave through its pacer:
/// a burst of 100 video packets written at once (an encoder's keyframe,
/// 100 kB) reaches b spread over about a second at 2.5× the 300 kbit/s
/// start target (initial probing off, so no probe takes them faster), not
/// in one burst; an audio packet written after them overtakes all but
/// the first (which left at once); the encoders' targets share the
/// estimate.
#[test]
fn packets_leave_at_the_pacing_rate_audio_first() {
    let mut config = RtcConfig::default();
    config.bwe.initial_probing = false;
    let mut p = Pair::with_config(52, lan(), config);
    let (a, b) = (p.a, p.b);
    let (video, audio) = p.with(a, |rtc, _| {
        (
            rtc.add_track(MediaKind::Video, "s", "cam").unwrap(),
            rtc.add_track(MediaKind::Audio, "s", "mic").unwrap(),
        )
    });
    p.negotiate();
    assert!(p.run_until(Duration::from_secs(10), |x, y| x.connected()
        && y.connected()));
    let payload: &'static [u8] = &[0u8; 1000];
    let start = p.with(a, |rtc, now| {
        for seq in 1..=100u16 {
            rtc.write_rtp(now, video, &packet(seq, payload)).unwrap();
        }
        let mut opus = packet(1, b"opus");
        opus.payload_type = 111;
        rtc.write_rtp(now, audio, &opus).unwrap();
        now
    });
    assert!(p.run_until(Duration::from_secs(5), |_, y| received_len(y) >= 101));
    let arrivals: Vec<(std::time::Instant, u8)> = p
        .node(b)
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            RtcEvent::Rtp(_, x) => Some((*at, x.payload_type)),
            _ => None,
        })
        .collect();
    assert_eq!(arrivals.len(), 101);
    // Audio second, although written last.
    assert_eq!(arrivals[1].1, 111, "{arrivals:?}");
    // 100 × ~1040 bytes at 750 kbit/s take about 1.1 s; unpaced they took
    // the link's 5 ms.
    let spread = arrivals[100].0 - arrivals[1].0;
    assert!(
        spread >= Duration::from_millis(800) && spread <= Duration::from_millis(2100),
        "{spread:?}"
    );
    assert!(arrivals[100].0 - start <= Duration::from_millis(2100));
    // The estimate split: audio its share, video the rest.
    let (v, au, total) = p.with(a, |rtc, _| {
        (
            rtc.target_bitrate(video).unwrap(),
            rtc.target_bitrate(audio).unwrap(),
            rtc.available_outgoing_bitrate().unwrap(),
        )
    });
    assert_eq!(au, 64_000);
    assert_eq!(v + au, total);
}

/// The payload types of the `index`-th section's `m=` line.
fn m_line_payload_types(sdp: &str, index: usize) -> Vec<String> {
    let section = section(sdp, index);
    let line = section.lines().next().unwrap_or_default();
    line.split(' ').skip(3).map(str::to_owned).collect()
}

/// setCodecPreferences (W3C webrtc-pc §5.4): an offer lists only the
/// preferred codecs, in their order (each with its RTX), so the answer
/// has no other, and answering Chromium's offer keeps only the preferred
/// ones; a codec the connection lacks, or of the other kind, is
/// InvalidModificationError.
#[test]
fn codec_preferences_order_and_filter_a_transceivers_codecs() {
    let vp8 = Codec::new(0, "VP8", 90_000, None);
    let vp9 = Codec::new(0, "VP9", 90_000, None).with_fmtp("profile-id=0");
    let mut p = Pair::new(43, lan());
    let (a, b) = (p.a, p.b);
    let video = p.with(a, |rtc, _| {
        rtc.add_track(MediaKind::Video, "s", "cam").unwrap()
    });
    p.with(a, |rtc, _| {
        rtc.set_codec_preferences(video, &[vp9.clone(), vp8.clone()])
            .unwrap()
    });
    let offer = p.with(a, |rtc, _| rtc.create_offer().unwrap()).sdp;
    // VP9 (98) and its RTX first, then VP8 (96) and its RTX; no H.264 or AV1.
    let types = m_line_payload_types(&offer, 0);
    assert_eq!(types.len(), 4, "{offer}");
    assert_eq!(types[0], "98", "{offer}");
    assert!(types.contains(&"96".to_owned()), "{offer}");
    assert!(!offer.contains("H264") && !offer.contains("AV1"), "{offer}");
    p.negotiate();
    let info = p.node(b).events.iter().find_map(|(_, e)| match e {
        RtcEvent::Track(_, info) => Some(info.clone()),
        _ => None,
    });
    // b answers in its own order (RFC 8829 §5.3.1), among the two offered.
    let mut names: Vec<String> = info
        .expect("b got the track")
        .codecs
        .iter()
        .map(|c| c.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["VP8", "VP9"]);
    let negotiated = p.with(a, |rtc, _| rtc.transceiver_codecs(video).len());
    assert_eq!(negotiated, 2);

    // Errors: Opus on a video transceiver, a codec the connection lacks.
    let opus = Codec::new(0, "opus", 48_000, Some(2));
    for codec in [opus, Codec::new(0, "H265", 90_000, None)] {
        let e = p
            .with(a, |rtc, _| rtc.set_codec_preferences(video, &[codec]))
            .unwrap_err();
        assert!(
            matches!(
                e,
                RtcError::InvalidModification(ModificationError::CodecNotSupported { .. })
            ),
            "{e}"
        );
    }

    // Answering Chromium's offer (VP8, VP9, H.264, AV1...) with VP9 only.
    let mut p = Pair::new(44, lan());
    let b = p.b;
    let answer = p.with(b, |rtc, now| {
        let video = rtc.add_track(MediaKind::Video, "s", "cam").unwrap();
        rtc.set_codec_preferences(video, std::slice::from_ref(&vp9))
            .unwrap();
        rtc.set_remote_description(now, SessionDescription::offer(CHROMIUM_OFFER))
            .unwrap();
        rtc.create_answer().unwrap().sdp
    });
    let types = m_line_payload_types(&answer, 1);
    assert_eq!(types, ["98", "99"], "{answer}");
}
