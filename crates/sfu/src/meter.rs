//! A bitrate over the last second, for limits and layer choice.

use std::time::{Duration, Instant};

/// The window a rate is measured over.
const WINDOW: Duration = Duration::from_secs(1);

/// Bytes counted in the current one-second window and the rate of the
/// last complete one.
#[derive(Debug, Clone, Default)]
pub struct BitrateMeter {
    start: Option<Instant>,
    bytes: u64,
    rate: u64,
}

impl BitrateMeter {
    /// Counts `bytes` at `now`; returns the rate in bit/s when a window
    /// just completed.
    pub fn add(&mut self, now: Instant, bytes: usize) -> Option<u64> {
        let start = *self.start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        let mut completed = None;
        if elapsed >= WINDOW {
            // A window with a gap after it is spread over the whole gap.
            self.rate = self.bytes * 8 * 1_000_000 / (elapsed.as_micros().max(1) as u64);
            self.bytes = 0;
            self.start = Some(now);
            completed = Some(self.rate);
        }
        self.bytes += bytes as u64;
        completed
    }

    /// The rate of the last complete window (bit/s).
    pub fn rate(&self) -> u64 {
        self.rate
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the clock once for a start time
mod tests {
    use super::*;

    #[test]
    fn measures_a_steady_rate() {
        let t0 = Instant::now();
        let mut m = BitrateMeter::default();
        let mut last = None;
        for i in 0..=100u64 {
            // 1000 bytes every 10 ms: 800 kbit/s.
            if let Some(r) = m.add(t0 + Duration::from_millis(10 * i), 1000) {
                last = Some(r);
            }
        }
        assert_eq!(last, Some(800_000));
        assert_eq!(m.rate(), 800_000);
    }
}
