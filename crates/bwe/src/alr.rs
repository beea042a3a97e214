//! Application-limited region detection: the application sends less than
//! the target, so feedback says nothing about the capacity above what was
//! sent (the acknowledged rate underestimates it). Periodic probes then
//! keep the estimate honest.

use std::time::{Duration, Instant};

use crate::Bitrate;

/// Budget refilled at this fraction of the target.
const BANDWIDTH_USAGE: f64 = 0.65;
/// The budget window.
const WINDOW: Duration = Duration::from_millis(500);
/// In ALR when this much of the budget is left unused...
const START_RATIO: f64 = 0.8;
/// ...out of it below this.
const STOP_RATIO: f64 = 0.5;

/// A leaky budget of what the target allows against what was sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct AlrDetector {
    budget: f64,
    last: Option<Instant>,
    since: Option<Instant>,
}

impl AlrDetector {
    /// Since when the application has been limited, if it is.
    pub(crate) fn since(&self) -> Option<Instant> {
        self.since
    }

    pub(crate) fn on_sent(&mut self, now: Instant, size: usize, target: Bitrate) {
        let elapsed = self
            .last
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(WINDOW);
        self.last = Some(now);
        let full = target.scale(BANDWIDTH_USAGE).bytes_in(WINDOW);
        self.budget += target.scale(BANDWIDTH_USAGE).bytes_in(elapsed) - size as f64;
        self.budget = self.budget.clamp(-full, full);
        let ratio = if full > 0.0 { self.budget / full } else { 0.0 };
        if ratio > START_RATIO && self.since.is_none() {
            self.since = Some(now);
        } else if ratio < STOP_RATIO {
            self.since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sending_a_tenth_of_the_target_is_application_limited() {
        #[allow(clippy::disallowed_methods)]
        let mut now = Instant::now();
        let target = Bitrate::kbps(1000);
        let mut alr = AlrDetector::default();
        // 100 kbit/s: 125 bytes every 10 ms.
        for _ in 0..100 {
            now += Duration::from_millis(10);
            alr.on_sent(now, 125, target);
        }
        assert!(alr.since().is_some());
        // Now the full target (1250 bytes per 10 ms).
        for _ in 0..100 {
            now += Duration::from_millis(10);
            alr.on_sent(now, 1250, target);
        }
        assert_eq!(alr.since(), None);
    }
}
