//! The acknowledged bitrate: what the receiver got, by the arrival times
//! feedback reports. The delay-based controller backs off to a fraction
//! of it and never runs far ahead of it.
//!
//! Video arrives in frame bursts, so the bytes of one 150 ms window swing
//! by a third around the rate the link carries (measured on a 2.5 Mbit/s
//! tbf link: windows from 1.5 to 2.5 Mbit/s while the link ran full). A
//! back-off from the raw window of a dip cut the target to 1.4 Mbit/s
//! where 2.0 was due, and the additive increase took 10 s to win it back.
//! So each window's rate is a sample for a Bayesian estimate, as
//! libwebrtc's acknowledged bitrate estimator does: a sample far from the
//! estimate is less certain, and weighs less, than one near it.

use crate::Bitrate;

/// The first window, µs of arrival time: long enough to hold a few frames
/// before there is an estimate to weigh samples against.
const INITIAL_WINDOW_MICROS: i64 = 500_000;
/// The window once an estimate exists: short enough that a back-off right
/// after the capacity drops starts from the new rate, not the old one.
const WINDOW_MICROS: i64 = 150_000;
/// A sample's uncertainty (kbit/s) is this times its distance from the
/// estimate relative to the estimate.
const UNCERTAINTY_SCALE: f64 = 10.0;
/// The estimate's variance grows by this (kbit/s squared) between
/// samples, so it keeps following the link.
const PROCESS_NOISE: f64 = 5.0;
/// The variance before the first sample.
const INITIAL_VARIANCE: f64 = 50.0;

/// Arrivals summed over windows, each window's rate folded into the
/// estimate.
#[derive(Debug, Clone)]
pub(crate) struct AckedBitrate {
    /// Bytes of the window under way.
    window_bytes: usize,
    /// Arrival time the window under way has covered, µs.
    window_elapsed: i64,
    /// The latest arrival seen.
    latest: Option<i64>,
    estimate_kbps: Option<f64>,
    variance: f64,
}

impl Default for AckedBitrate {
    fn default() -> Self {
        Self {
            window_bytes: 0,
            window_elapsed: 0,
            latest: None,
            estimate_kbps: None,
            variance: INITIAL_VARIANCE,
        }
    }
}

impl AckedBitrate {
    /// A packet of `size` bytes arrived at `arrival` µs (receiver's clock).
    /// A packet reordered behind the latest counts in the window under way.
    pub(crate) fn on_received(&mut self, arrival: i64, size: usize) {
        let window = if self.estimate_kbps.is_some() {
            WINDOW_MICROS
        } else {
            INITIAL_WINDOW_MICROS
        };
        if let Some(latest) = self.latest {
            let gap = arrival - latest;
            if gap > 0 {
                self.window_elapsed += gap;
                self.latest = Some(arrival);
                if gap > window {
                    // Nothing arrived for a window: that silence is the
                    // sender's, not the link's.
                    self.window_bytes = 0;
                    self.window_elapsed %= window;
                }
            }
        } else {
            self.latest = Some(arrival);
        }
        if self.window_elapsed >= window {
            let sample = self.window_bytes as f64 * 8.0 * 1000.0 / window as f64;
            self.window_elapsed -= window;
            self.window_bytes = 0;
            self.update(sample);
        }
        self.window_bytes += size;
    }

    /// Folds a window's rate (kbit/s) into the estimate.
    fn update(&mut self, sample: f64) {
        let Some(estimate) = self.estimate_kbps else {
            self.estimate_kbps = Some(sample);
            return;
        };
        let uncertainty = UNCERTAINTY_SCALE * (estimate - sample).abs() / estimate.max(1.0);
        let sample_variance = uncertainty * uncertainty;
        let predicted = self.variance + PROCESS_NOISE;
        let total = sample_variance + predicted;
        self.estimate_kbps = Some((sample_variance * estimate + predicted * sample) / total);
        self.variance = sample_variance * predicted / total;
    }

    /// The estimate; `None` until the first window has passed.
    pub(crate) fn rate(&self) -> Option<Bitrate> {
        self.estimate_kbps.map(|k| Bitrate::from_f64(k * 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_steady_rate() {
        let mut a = AckedBitrate::default();
        // 1000 bytes every 10 ms: 800 kbit/s.
        for i in 0..50 {
            a.on_received(i * 10_000, 1000);
            assert_eq!(a.rate(), None);
        }
        for i in 50..300 {
            a.on_received(i * 10_000, 1000);
        }
        let rate = a.rate().unwrap().as_bps();
        assert!((790_000..=810_000).contains(&rate), "{rate}");
    }

    #[test]
    fn a_dip_of_one_window_moves_the_estimate_less_than_a_new_rate_does() {
        let mut a = AckedBitrate::default();
        let mut at = 0;
        let mut feed = |a: &mut AckedBitrate, micros: i64, packets: i64| {
            for _ in 0..packets {
                at += micros;
                a.on_received(at, 1000);
            }
        };
        // 2.4 Mbit/s: 1000 bytes every 3.33 ms, for 3 s.
        feed(&mut a, 3_333, 900);
        let before = a.rate().unwrap().as_f64();
        // One window at 1.2 Mbit/s (a frame came late).
        feed(&mut a, 6_667, 23);
        let dip = a.rate().unwrap().as_f64();
        assert!(dip > 0.8 * before, "{dip} after {before}");
        // The link halved for good: the estimate follows within a second.
        feed(&mut a, 6_667, 150);
        let after = a.rate().unwrap().as_f64();
        assert!(after < 1.35e6, "{after}");
    }
}
