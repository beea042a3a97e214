//! RTP timestamps on a 64-bit timeline.

/// Unwraps the 32-bit timestamps of one RTP stream (RFC 3550 §5.1: they
/// start at a random value and wrap) into ticks since the stream's first
/// packet.
///
/// A packet later than the previous one by less than half the 32-bit range
/// moves forward, a wrap included; one earlier by less than half (reordered,
/// or a retransmission) lands before it. Gaps stay: a stream that pauses for
/// two seconds keeps two seconds between its packets, which is what a
/// recording must show.
#[derive(Debug, Clone, Copy)]
pub struct RtpTimeline {
    clock_rate: u32,
    /// The latest (furthest forward) timestamp seen and its ticks.
    latest: Option<(u32, i64)>,
}

impl RtpTimeline {
    /// A timeline for a stream whose RTP clock ticks `clock_rate` times a
    /// second (90,000 for video, 48,000 for Opus).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            latest: None,
        }
    }

    /// The RTP clock rate.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Ticks of `rtp_timestamp` since the first packet: 0 for the first one,
    /// negative for a packet reordered before it.
    pub fn ticks(&mut self, rtp_timestamp: u32) -> i64 {
        let Some((latest, latest_ticks)) = self.latest else {
            self.latest = Some((rtp_timestamp, 0));
            return 0;
        };
        // The signed 32-bit difference is the step, across a wrap too.
        let step = i64::from(rtp_timestamp.wrapping_sub(latest) as i32);
        let ticks = latest_ticks + step;
        if step > 0 {
            self.latest = Some((rtp_timestamp, ticks));
        }
        ticks
    }

    /// [`Self::ticks`] in nanoseconds (negative before the first packet).
    pub fn nanos(&mut self, rtp_timestamp: u32) -> i64 {
        let ticks = self.ticks(rtp_timestamp);
        (i128::from(ticks) * 1_000_000_000 / i128::from(self.clock_rate)) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_zero_and_counts_ticks() {
        let mut t = RtpTimeline::new(90_000);
        assert_eq!(t.ticks(1_000), 0);
        assert_eq!(t.ticks(4_000), 3_000);
        assert_eq!(t.nanos(91_000), 1_000_000_000);
    }

    #[test]
    fn unwraps_across_the_32_bit_boundary() {
        let mut t = RtpTimeline::new(48_000);
        assert_eq!(t.ticks(u32::MAX - 959), 0);
        assert_eq!(t.ticks(0), 960);
        assert_eq!(t.ticks(960), 1_920);
        // Many wraps later, still increasing.
        let mut ts = 960u32;
        let mut expected = 1_920i64;
        for _ in 0..20 {
            ts = ts.wrapping_add(1 << 30);
            expected += 1 << 30;
            assert_eq!(t.ticks(ts), expected);
        }
    }

    #[test]
    fn keeps_gaps_and_places_reordered_packets_before() {
        let mut t = RtpTimeline::new(48_000);
        assert_eq!(t.ticks(10_000), 0);
        // Two seconds of silence stay two seconds.
        assert_eq!(t.ticks(10_000 + 96_000), 96_000);
        // A late packet from before the gap does not move the timeline.
        assert_eq!(t.ticks(10_960), 960);
        assert_eq!(t.ticks(10_000 + 96_960), 96_960);
        // Reordered before the first packet.
        let mut t = RtpTimeline::new(90_000);
        t.ticks(5);
        assert_eq!(t.ticks(u32::MAX), -6);
    }
}
