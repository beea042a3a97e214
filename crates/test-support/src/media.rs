//! Media files for tests of the peers that play and record.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Test media made by ffmpeg (installed by `scripts/test`): 4 s of VP8
/// test pattern in IVF, 4 s of a 440 Hz tone in Ogg Opus.
pub fn test_clips(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (video, audio) = (dir.join("clip.ivf"), dir.join("tone.ogg"));
    for (input, codec, out) in [
        ("testsrc=size=320x240:rate=30", "libvpx", &video),
        ("sine=frequency=440:duration=4", "libopus", &audio),
    ] {
        let status = Command::new("ffmpeg")
            .args([
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                input,
                "-t",
                "4",
                "-c",
                codec,
            ])
            .arg(out)
            .status()
            .expect("cannot run ffmpeg (scripts/test installs it)");
        assert!(status.success(), "ffmpeg failed making {}", out.display());
    }
    (video, audio)
}
