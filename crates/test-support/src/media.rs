//! Media files for tests of the peers that play and record.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Test media made by ffmpeg (installed by `scripts/test`): 4 s of VP8
/// test pattern in IVF, 4 s of a 440 Hz tone in Ogg Opus.
pub fn test_clips(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (video, audio) = (dir.join("clip.ivf"), dir.join("tone.ogg"));
    ffmpeg_lavfi("testsrc=size=320x240:rate=30", &["-c", "libvpx"], &video);
    ffmpeg_lavfi("sine=frequency=440:duration=4", &["-c", "libopus"], &audio);
    (video, audio)
}

/// A 4 s 320x240 VP9 (profile 0: 4:2:0) IVF clip in `dir`, made by
/// ffmpeg's libvpx-vp9 in its realtime mode (a second or two).
pub fn vp9_clip(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join("clip-vp9.ivf");
    let encode = [
        "-pix_fmt",
        "yuv420p",
        "-c",
        "libvpx-vp9",
        "-deadline",
        "realtime",
    ];
    ffmpeg_lavfi("testsrc=size=320x240:rate=30", &encode, &out);
    out
}

/// 4 s of ffmpeg's lavfi source `input`, encoded with `encode` to `out`.
fn ffmpeg_lavfi(input: &str, encode: &[&str], out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i", input])
        .args(["-t", "4"])
        .args(encode)
        .arg(out)
        .status()
        .expect("cannot run ffmpeg (scripts/test installs it)");
    assert!(status.success(), "ffmpeg failed making {}", out.display());
}
