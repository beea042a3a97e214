//! Files ffmpeg writes are read by us, and files we write are read back by
//! ffprobe (Debian's ffmpeg; scripts/test installs it) with the right codec,
//! size and duration.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use realtimer_media_files::annexb::{access_units, is_keyframe, AnnexBWriter};
use realtimer_media_files::ivf::{Fourcc, IvfHeader, IvfReader, IvfWriter};
use realtimer_media_files::ogg::{OggOpusReader, OggOpusWriter, OpusPlacement};
use realtimer_media_files::webm::{WebmAudioTrack, WebmVideoCodec, WebmVideoTrack, WebmWriter};
use serde_json::Value;

/// A directory of this test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("media-files-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed: scripts/test installs it");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffprobe's view of a file: its streams (frames counted) and format.
fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe must be installed: scripts/test installs it");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Decodes the whole file with ffmpeg and returns what it complained of.
fn ffmpeg_decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stream<'a>(probe: &'a Value, codec_type: &str) -> &'a Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == codec_type)
        .unwrap_or_else(|| panic!("no {codec_type} stream in {probe}"))
}

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_f64().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

/// Runs ffmpeg with `args` (split at spaces) and `out` as its output file;
/// the file's bytes.
fn ffmpeg_to(out: &Path, args: &str) -> Vec<u8> {
    let mut all: Vec<&str> = args.split(' ').collect();
    let out_str = out.to_str().unwrap();
    all.push(out_str);
    ffmpeg(&all);
    fs::read(out).unwrap()
}

/// One second of ffmpeg's test pattern at 30 fps, 320x240, as IVF.
fn test_pattern_ivf(scratch: &Scratch, codec: &str) -> Vec<u8> {
    ffmpeg_to(
        &scratch.path(&format!("{codec}.ivf")),
        &format!(
            "-f lavfi -i testsrc=size=320x240:rate=30 -t 1 -c:v {codec} -b:v 300k \
             -deadline realtime -cpu-used 8 -f ivf"
        ),
    )
}

/// Checks that ffprobe sees the test pattern in `probe`: `codec`,
/// 320x240, 30 frames.
fn assert_test_pattern(probe: &Value, codec: &str) {
    let video = stream(probe, "video");
    assert_eq!(video["codec_name"], codec);
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(number(&video["nb_read_frames"]), 30.0, "{codec}");
}

#[test]
fn ivf_from_ffmpeg_reads_and_rewrites_for_ffprobe() {
    let scratch = Scratch::new("ivf");
    for (codec, fourcc, name) in [
        ("libvpx", Fourcc::Vp8, "vp8"),
        ("libvpx-vp9", Fourcc::Vp9, "vp9"),
        ("libaom-av1", Fourcc::Av1, "av1"),
    ] {
        let bytes = test_pattern_ivf(&scratch, codec);
        let mut reader = IvfReader::new(&bytes[..]).unwrap();
        let header = *reader.header();
        assert_eq!(
            (header.fourcc, header.width, header.height),
            (fourcc, 320, 240)
        );
        let frames: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
        assert_eq!(frames.len(), 30, "{name}");

        // Rewritten on a 90 kHz time base, as RTP timestamps would be.
        let ours = scratch.path(&format!("ours-{name}.ivf"));
        let mut w = IvfWriter::new(
            Cursor::new(Vec::new()),
            IvfHeader::new(fourcc, 320, 240, 90_000),
        )
        .unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write_frame(i as u64 * 3_000, &f.data).unwrap();
        }
        fs::write(&ours, w.finish().unwrap().into_inner()).unwrap();
        let probe = ffprobe(&ours);
        assert_test_pattern(&probe, name);
        // ffmpeg reads the header's frame count as a duration in time-base
        // units (libvpx's tools, as we do, write frames there), so the
        // frames' own times are what to check.
        let last = last_packet_time(&ours);
        assert!(
            (last - 29.0 / 30.0).abs() < 0.001,
            "{name} last frame at {last} s"
        );
        assert_eq!(ffmpeg_decode_errors(&ours), "");
    }
}

/// The presentation time of the last packet ffprobe reads, in seconds.
fn last_packet_time(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .fold(f64::MIN, f64::max)
}

/// One second of a 440 Hz tone as Ogg Opus, stereo, 20 ms packets.
fn tone_opus(scratch: &Scratch) -> Vec<u8> {
    ffmpeg_to(
        &scratch.path("tone.opus"),
        "-f lavfi -i sine=frequency=440:sample_rate=48000:duration=1 -ac 2 -c:a libopus -b:a 64k -frame_duration 20",
    )
}

#[test]
fn ogg_opus_from_ffmpeg_reads_and_rewrites_with_a_gap_for_ffprobe() {
    let scratch = Scratch::new("ogg");
    let bytes = tone_opus(&scratch);
    let mut reader = OggOpusReader::new(&bytes[..]).unwrap();
    assert_eq!(reader.head().channels, 2);
    let pre_skip = reader.head().pre_skip;
    let packets: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    let samples: u64 = packets.iter().map(|p| u64::from(p.samples)).sum();
    // ffmpeg's last granule position is pre-skip plus the samples it kept.
    let last_granule = packets
        .iter()
        .rev()
        .find_map(|p| p.granule_position)
        .unwrap();
    assert!(
        (48_000..48_000 + 2 * 960).contains(&samples),
        "{samples} samples"
    );
    assert_eq!(last_granule as u64, u64::from(pre_skip) + 48_000);

    // Rewritten as a recording from RTP would be: a 500 ms hole after the
    // first half second (25 packets lost in the network).
    let head = realtimer_media_files::ogg::OpusHead::for_recording(2);
    let mut w = OggOpusWriter::new(Vec::new(), &head, 7).unwrap();
    let mut start = 0u64;
    for (i, p) in packets.iter().enumerate() {
        if i == 25 {
            start += 24_000;
        }
        let placed = w.write_packet(&p.data, start).unwrap();
        assert_eq!(
            matches!(
                placed,
                OpusPlacement::AfterGap {
                    filled_samples: 24_000
                }
            ),
            i == 25
        );
        start += u64::from(p.samples);
    }
    let ours = scratch.path("ours.opus");
    fs::write(&ours, w.finish().unwrap()).unwrap();
    let probe = ffprobe(&ours);
    let audio = stream(&probe, "audio");
    assert_eq!(audio["codec_name"], "opus");
    assert_eq!(audio["channels"].as_u64(), Some(2));
    // The file lasts the call: the tone and the hole. ffprobe gives the last
    // granule position over 48 kHz, pre-skip included (its own files too:
    // 1 s of tone reads as 1.0065 s with libopus's 312 samples).
    let duration = number(&probe["format"]["duration"]);
    let expected = (3_840.0 + samples as f64 + 24_000.0) / 48_000.0;
    assert!(
        (duration - expected).abs() < 0.03,
        "duration {duration}, expected {expected}"
    );
    assert_eq!(ffmpeg_decode_errors(&ours), "");
}

#[test]
fn annexb_from_ffmpeg_reads_and_rewrites_for_ffprobe() {
    let scratch = Scratch::new("annexb");
    let bytes = ffmpeg_to(
        &scratch.path("x264.h264"),
        "-f lavfi -i testsrc=size=320x240:rate=30 -t 1 -c:v libx264 -pix_fmt yuv420p -profile:v baseline -g 10 -f h264",
    );
    let units: Vec<&[u8]> = access_units(&bytes).map(Result::unwrap).collect();
    assert_eq!(units.len(), 30);
    // A keyframe every 10 frames (-g 10).
    let keyframes: Vec<usize> = (0..30).filter(|&i| is_keyframe(units[i])).collect();
    assert_eq!(keyframes, [0, 10, 20]);

    let ours = scratch.path("ours.h264");
    let mut w = AnnexBWriter::new(Vec::new());
    for unit in &units {
        w.write_access_unit(unit).unwrap();
    }
    fs::write(&ours, w.finish().unwrap()).unwrap();
    let probe = ffprobe(&ours);
    assert_test_pattern(&probe, "h264");
    assert_eq!(ffmpeg_decode_errors(&ours), "");
}

#[test]
fn webm_recording_of_vp8_and_opus_reads_back_in_ffprobe() {
    let scratch = Scratch::new("webm");
    for (codec, webm_codec, name) in [
        ("libvpx", WebmVideoCodec::Vp8, "vp8"),
        ("libvpx-vp9", WebmVideoCodec::Vp9, "vp9"),
    ] {
        let ivf = test_pattern_ivf(&scratch, codec);
        let frames: Vec<_> = IvfReader::new(&ivf[..])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let opus = tone_opus(&scratch);
        let packets: Vec<_> = OggOpusReader::new(&opus[..])
            .unwrap()
            .map(Result::unwrap)
            .collect();

        let video = WebmVideoTrack {
            codec: webm_codec,
            width: 320,
            height: 240,
        };
        let mut w = WebmWriter::new(
            Cursor::new(Vec::new()),
            Some(video),
            Some(WebmAudioTrack { channels: 2 }),
        )
        .unwrap();
        // Interleaved by time, as packets arrive in a call.
        let (mut v, mut a) = (
            frames.iter().enumerate().peekable(),
            packets.iter().peekable(),
        );
        let mut audio_ns = 0i64;
        loop {
            let video_ns = v.peek().map(|(i, _)| *i as i64 * 1_000_000_000 / 30);
            let video_first = match (video_ns, a.peek()) {
                (None, None) => break,
                (Some(t), Some(_)) => t <= audio_ns,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if let (true, Some(t)) = (video_first, video_ns) {
                let (_, f) = v.next().unwrap();
                w.write_video(&f.data, t, is_vpx_keyframe(webm_codec, &f.data))
                    .unwrap();
            } else if let Some(p) = a.next() {
                w.write_audio(&p.data, audio_ns).unwrap();
                audio_ns += i64::from(p.samples) * 1_000_000_000 / 48_000;
            }
        }
        let ours = scratch.path(&format!("ours-{name}.webm"));
        fs::write(&ours, w.finish().unwrap().into_inner()).unwrap();
        let probe = ffprobe(&ours);
        assert!(probe["format"]["format_name"]
            .as_str()
            .unwrap()
            .contains("webm"));
        assert_test_pattern(&probe, name);
        let audio = stream(&probe, "audio");
        assert_eq!(audio["codec_name"], "opus");
        assert_eq!(audio["channels"].as_u64(), Some(2));
        let duration = number(&probe["format"]["duration"]);
        assert!((duration - 1.0).abs() < 0.1, "{name} duration {duration}");
        assert_eq!(ffmpeg_decode_errors(&ours), "");
    }
}

/// Whether a VP8 or VP9 (profile 0) frame is a keyframe: VP8's frame tag
/// (RFC 6386 §9.1) has it in bit 0, VP9's uncompressed header in the bit
/// after the frame marker, the profile and show_existing_frame.
fn is_vpx_keyframe(codec: WebmVideoCodec, frame: &[u8]) -> bool {
    match codec {
        WebmVideoCodec::Vp8 => frame[0] & 0x01 == 0,
        _ => frame[0] & 0x04 == 0,
    }
}
