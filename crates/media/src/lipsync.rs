//! Lip sync (RFC 3550 §6.4.1, §7.1): the sender reports of a sender's audio
//! and video tracks map both RTP clocks onto its one wallclock, so a video
//! frame is shown when the audio of the same wallclock instant is heard.

use std::time::{Duration, Instant};

/// One stream's RTP-to-wallclock mapping, from its latest sender report.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Mapping {
    /// The report's wallclock, in seconds (NTP).
    ntp_seconds: f64,
    rtp_time: u32,
    clock_rate: u32,
}

impl Mapping {
    /// The wallclock (NTP seconds) of `rtp_timestamp`, within half the RTP
    /// clock's wrap of the report.
    fn wallclock(&self, rtp_timestamp: u32) -> f64 {
        let ticks = rtp_timestamp.wrapping_sub(self.rtp_time) as i32;
        self.ntp_seconds + f64::from(ticks) / f64::from(self.clock_rate)
    }
}

/// The 64-bit NTP timestamp in seconds.
fn ntp_seconds(ntp_time: u64) -> f64 {
    (ntp_time >> 32) as f64 + (ntp_time & 0xFFFF_FFFF) as f64 / 4_294_967_296.0
}

/// Aligns one sender's video to its audio (sans-IO). Feed it both
/// tracks' sender reports and what the audio plays when; ask when a video
/// frame is due.
#[derive(Debug, Clone, Default)]
pub struct LipSync {
    audio: Option<Mapping>,
    video: Option<Mapping>,
    /// The audio timestamp heard at an instant.
    playing: Option<(Instant, u32)>,
}

impl LipSync {
    /// An aligner with nothing known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The audio track's latest sender report (`clock_rate` 48 kHz for
    /// Opus).
    pub fn audio_report(&mut self, ntp_time: u64, rtp_time: u32, clock_rate: u32) {
        self.audio = Some(Mapping {
            ntp_seconds: ntp_seconds(ntp_time),
            rtp_time,
            clock_rate: clock_rate.max(1),
        });
    }

    /// The video track's latest sender report (90 kHz).
    pub fn video_report(&mut self, ntp_time: u64, rtp_time: u32, clock_rate: u32) {
        self.video = Some(Mapping {
            ntp_seconds: ntp_seconds(ntp_time),
            rtp_time,
            clock_rate: clock_rate.max(1),
        });
    }

    /// The audio of `rtp_timestamp` is heard at `at` (the playout clock's
    /// instant for the frame the jitter buffer gave).
    pub fn audio_played(&mut self, at: Instant, rtp_timestamp: u32) {
        self.playing = Some((at, rtp_timestamp));
    }

    /// How far the video of `video_timestamp` is from the audio heard
    /// last, on the sender's wallclock: positive when it is later (show
    /// it after that instant). `None` until both reports and a played
    /// audio frame are known.
    pub fn offset(&self, video_timestamp: u32) -> Option<f64> {
        let (audio, video, (_, heard)) = (self.audio?, self.video?, self.playing?);
        Some(video.wallclock(video_timestamp) - audio.wallclock(heard))
    }

    /// When to show the frame of `video_timestamp` so it matches the
    /// audio: the instant its audio is (or was) heard. A frame whose audio
    /// is past is due at once (`at` of the last audio played, or earlier).
    pub fn video_due(&self, video_timestamp: u32) -> Option<Instant> {
        let offset = self.offset(video_timestamp)?;
        let (at, _) = self.playing?;
        let shift = Duration::from_secs_f64(offset.abs().min(3_600.0));
        Some(if offset >= 0.0 {
            at + shift
        } else {
            at.checked_sub(shift).unwrap_or(at)
        })
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the clock once for a start time
mod tests {
    use super::*;

    /// NTP of `seconds` after an arbitrary 2026 instant.
    fn ntp(seconds: f64) -> u64 {
        let t = 3_976_000_000.0 + seconds;
        ((t.floor() as u64) << 32) | ((t.fract() * 4_294_967_296.0) as u64)
    }

    #[test]
    fn video_is_due_when_its_audio_is_heard() {
        let heard = Instant::now();
        let mut sync = LipSync::new();
        assert_eq!(sync.video_due(0), None);
        // Both reports at wallclock 10 s; audio and video clocks start
        // anywhere (here near their wrap).
        sync.audio_report(ntp(10.0), u32::MAX - 4_800, 48_000);
        sync.video_report(ntp(10.5), 1_000, 90_000);
        // The audio of wallclock 11 s (1 s after its report) is heard now.
        sync.audio_played(heard, (u32::MAX - 4_800).wrapping_add(48_000));
        // Video of wallclock 11.04 s: 40 ms later.
        let video_11_04 = 1_000 + (0.54 * 90_000.0) as u32;
        let due = sync.video_due(video_11_04).unwrap();
        assert!(
            (due - heard).as_secs_f64() - 0.04 < 1e-6,
            "{:?}",
            due - heard
        );
        // Video of wallclock 10.9 s is 100 ms behind: due 100 ms ago.
        let video_10_9 = 1_000 + (0.4 * 90_000.0) as u32;
        let offset = sync.offset(video_10_9).unwrap();
        assert!((offset + 0.1).abs() < 1e-6, "{offset}");
        assert!(sync.video_due(video_10_9).unwrap() <= heard);
    }
}
