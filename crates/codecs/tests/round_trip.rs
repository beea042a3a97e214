//! Encode -> decode round trips through the real libraries: the test
//! pattern's counter read back from decoded pixels, the tone found by
//! Goertzel, a lost Opus packet concealed and rebuilt from FEC.

use realtimer_codecs::fmtp::{H264Params, OpusParams};
use realtimer_codecs::opus::{OpusDecoder, OpusEncoder, OpusEncoderConfig};
use realtimer_codecs::source::{read_frame_counter, tone_power, TestPattern, Tone};
use realtimer_codecs::{video_decoder, video_encoder, VideoCodec, VideoEncoderConfig};
use realtimer_rtp::payload::h264::nal_units;

const CODECS: [VideoCodec; 3] = [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264];

/// Encodes `frames` frames of the test pattern; the bytes of each.
fn encode_pattern(
    codec: VideoCodec,
    config: &VideoEncoderConfig,
    frames: u32,
    keyframe_at: Option<u32>,
) -> Vec<(Vec<u8>, bool)> {
    let mut encoder = video_encoder(codec, config).unwrap();
    let mut pattern = TestPattern::new(config.width, config.height);
    let mut out = Vec::new();
    for i in 0..frames {
        if keyframe_at == Some(i) {
            encoder.request_keyframe();
        }
        let frame = pattern.next_frame();
        let encoded = encoder
            .encode(&frame, u64::from(i) * 3_000)
            .unwrap()
            .unwrap_or_else(|| panic!("{codec:?} dropped frame {i}"));
        out.push((encoded.data, encoded.keyframe));
    }
    out
}

#[test]
fn video_round_trip_reads_the_counter_back_from_every_frame() {
    for codec in CODECS {
        let config = VideoEncoderConfig {
            bitrate_bps: 600_000,
            ..VideoEncoderConfig::new(320, 240)
        };
        let frames = encode_pattern(codec, &config, 40, Some(25));
        let keyframes: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].1).collect();
        assert_eq!(
            keyframes,
            [0, 25],
            "{codec:?}: keyframes at start and on request only"
        );
        let mut decoder = video_decoder(codec).unwrap();
        for (i, (data, _)) in frames.iter().enumerate() {
            let picture = decoder
                .decode(data)
                .unwrap()
                .unwrap_or_else(|| panic!("{codec:?}: no picture for frame {i}"));
            assert_eq!((picture.width(), picture.height()), (320, 240));
            assert_eq!(
                read_frame_counter(&picture),
                Some(i as u32),
                "{codec:?} frame {i}"
            );
        }
        // A decoder that starts at the requested keyframe decodes from it.
        let mut late = video_decoder(codec).unwrap();
        let picture = late.decode(&frames[25].0).unwrap().unwrap();
        assert_eq!(read_frame_counter(&picture), Some(25), "{codec:?}");
    }
}

#[test]
fn target_bitrate_changes_the_frame_sizes() {
    for codec in CODECS {
        let bytes_at = |bps| -> usize {
            let config = VideoEncoderConfig {
                bitrate_bps: bps,
                ..VideoEncoderConfig::new(320, 240)
            };
            // After the first keyframe, what the rate controller settles on.
            encode_pattern(codec, &config, 60, None)[1..]
                .iter()
                .map(|(d, _)| d.len())
                .sum()
        };
        let (low, high) = (bytes_at(80_000), bytes_at(1_500_000));
        // 59 frames at 30 fps and 80 kbit/s: 19.7 kB, give or take.
        assert!(low < 30_000, "{codec:?}: {low} bytes at 80 kbit/s");
        assert!(
            high > 2 * low,
            "{codec:?}: {low} bytes at 80 kbit/s, {high} at 1.5 Mbit/s"
        );
    }
    // Changing a running encoder's target works too.
    for codec in CODECS {
        let mut encoder = video_encoder(codec, &VideoEncoderConfig::new(320, 240)).unwrap();
        encoder.set_bitrate(200_000).unwrap();
        let frame = TestPattern::new(320, 240).next_frame();
        assert!(encoder.encode(&frame, 0).unwrap().is_some());
    }
}

#[test]
fn h264_honours_profile_level_and_packetization_mode() {
    for (fmtp, profile_idc, level_idc) in [
        ("packetization-mode=1;profile-level-id=42e01f", 66, 31),
        ("packetization-mode=0;profile-level-id=42001f", 66, 31),
        ("packetization-mode=1;profile-level-id=4d0032", 77, 50),
    ] {
        let params = H264Params::from_fmtp(fmtp);
        let config = VideoEncoderConfig {
            bitrate_bps: 2_000_000,
            h264: params,
            ..VideoEncoderConfig::new(640, 480)
        };
        let frames = encode_pattern(VideoCodec::H264, &config, 3, None);
        let sps = nal_units(&frames[0].0)
            .find(|nal| nal[0] & 0x1F == 7)
            .expect("the first access unit has an SPS");
        assert_eq!((sps[1], sps[3]), (profile_idc, level_idc), "{fmtp}");
        let largest = frames
            .iter()
            .flat_map(|(d, _)| nal_units(d).map(<[u8]>::len).collect::<Vec<_>>())
            .max()
            .unwrap();
        if params.packetization_mode == 0 {
            assert!(largest <= 1_100, "{fmtp}: a NAL unit of {largest} bytes");
        } else {
            assert!(
                largest > 1_100,
                "{fmtp}: one slice a frame, {largest} bytes"
            );
        }
    }
}

/// One second of a 440 Hz tone through Opus; the decoded PCM.
fn opus_tone(config: &OpusEncoderConfig) -> (Vec<Vec<u8>>, Vec<i16>) {
    let mut encoder = OpusEncoder::new(config).unwrap();
    let channels = usize::from(config.channels);
    let mut tone = Tone::new(440.0, 48_000, channels);
    let mut pcm = vec![0i16; encoder.frame_samples() * channels];
    let mut packets = Vec::new();
    for _ in 0..48_000 / encoder.frame_samples() {
        tone.fill(&mut pcm);
        packets.push(encoder.encode(&pcm).unwrap());
    }
    let mut decoder = OpusDecoder::new(config.channels).unwrap();
    let mut out = Vec::new();
    for p in &packets {
        decoder.decode(p, &mut out).unwrap();
    }
    (packets, out)
}

#[test]
fn opus_round_trip_keeps_the_tone_as_the_fmtp_asks() {
    for fmtp in ["minptime=10;useinbandfec=1", "stereo=1;minptime=40"] {
        let params = OpusParams::from_fmtp(fmtp);
        let config = OpusEncoderConfig::from_params(&params);
        let channels = usize::from(config.channels);
        let (packets, pcm) = opus_tone(&config);
        assert_eq!(channels, if params.stereo { 2 } else { 1 });
        assert_eq!(packets.len() as u32, 1_000 / params.frame_ms());
        assert_eq!(pcm.len(), 48_000 * channels);
        // Past the codec's start-up, the tone and nothing much else.
        let steady = &pcm[4_800 * channels..];
        let at_440 = tone_power(steady, channels, 48_000, 440.0);
        assert!(at_440 > 0.05, "{fmtp}: power {at_440} at 440 Hz");
        for other in [220.0, 660.0, 1_000.0] {
            let p = tone_power(steady, channels, 48_000, other);
            assert!(p < at_440 / 100.0, "{fmtp}: {p} at {other} Hz vs {at_440}");
        }
    }
}

/// Mean squared difference of two PCM runs.
fn error(a: &[i16], b: &[i16]) -> f64 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    sum / a.len() as f64
}

#[test]
fn opus_conceals_a_lost_packet_and_rebuilds_it_from_fec() {
    let config = OpusEncoderConfig {
        channels: 1,
        bitrate_bps: 32_000,
        frame_ms: 20,
        inband_fec: true,
        expected_loss_percent: 20,
        dtx: false,
    };
    let (packets, reference) = opus_tone(&config);
    let lost = 30;
    let (start, end) = (lost * 960, (lost + 1) * 960);

    // Concealment: the decoder makes up the lost 20 ms.
    let mut plc = OpusDecoder::new(1).unwrap();
    let mut with_plc = Vec::new();
    // FEC: the decoder rebuilds them from the next packet.
    let mut fec = OpusDecoder::new(1).unwrap();
    let mut with_fec = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        if i == lost {
            assert_eq!(plc.conceal(960, &mut with_plc).unwrap(), 960);
            assert_eq!(
                fec.decode_fec(&packets[i + 1], 960, &mut with_fec).unwrap(),
                960
            );
            continue;
        }
        plc.decode(p, &mut with_plc).unwrap();
        fec.decode(p, &mut with_fec).unwrap();
    }
    assert_eq!((with_plc.len(), with_fec.len()), (48_000, 48_000));
    // Concealment keeps the tone going through the gap...
    let concealed = &with_plc[start..end];
    let at_440 = tone_power(concealed, 1, 48_000, 440.0);
    assert!(at_440 > 0.01, "concealed power {at_440} at 440 Hz");
    // ...and FEC comes closer to what was sent than concealment.
    let (plc_error, fec_error) = (
        error(concealed, &reference[start..end]),
        error(&with_fec[start..end], &reference[start..end]),
    );
    assert!(
        fec_error < plc_error / 2.0,
        "FEC error {fec_error:.0}, PLC error {plc_error:.0}"
    );
}

#[test]
fn bad_settings_and_input_give_typed_errors() {
    use realtimer_codecs::{CodecError, I420Frame};
    for codec in CODECS {
        let mut encoder = video_encoder(codec, &VideoEncoderConfig::new(320, 240)).unwrap();
        assert!(matches!(
            encoder.encode(&I420Frame::new(160, 120), 0),
            Err(CodecError::FrameSizeMismatch {
                expected: (320, 240),
                got: (160, 120),
                ..
            })
        ));
        // Garbage is an error or no picture, never a panic.
        let mut decoder = video_decoder(codec).unwrap();
        let _ = decoder.decode(&[0xFF; 64]);
    }
    assert!(matches!(
        video_encoder(VideoCodec::H264, &VideoEncoderConfig::new(321, 240)),
        Err(CodecError::UnsupportedSize { width: 321, .. })
    ));
    let h264_high10 = VideoEncoderConfig {
        h264: H264Params::from_fmtp("profile-level-id=6e001f"),
        ..VideoEncoderConfig::new(320, 240)
    };
    assert!(matches!(
        video_encoder(VideoCodec::H264, &h264_high10),
        Err(CodecError::UnsupportedProfile { profile_idc: 110 })
    ));
    let mono = OpusEncoderConfig::from_params(&OpusParams::default());
    let mut encoder = OpusEncoder::new(&mono).unwrap();
    assert!(matches!(
        encoder.encode(&[0; 100]),
        Err(CodecError::PcmLength {
            expected: 960,
            got: 100
        })
    ));
    assert!(matches!(
        OpusEncoder::new(&OpusEncoderConfig {
            frame_ms: 30,
            ..mono
        }),
        Err(CodecError::UnsupportedPacketDuration { ms: 30 })
    ));
    assert!(matches!(
        OpusDecoder::new(3),
        Err(CodecError::UnsupportedChannels { channels: 3 })
    ));
    assert!(matches!(
        OpusDecoder::new(1).unwrap().decode(&[], &mut Vec::new()),
        Err(CodecError::EmptyPacket)
    ));
}
