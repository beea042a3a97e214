//! The trendline filter and the over-use detector with an adaptive
//! threshold (draft-ietf-rmcat-gcc-02 §5.3-5.4, as libwebrtc runs them
//! today: a least-squares slope of the smoothed accumulated delay over the
//! last groups instead of the draft's Kalman filter).

use std::collections::VecDeque;

/// What the delay gradient says about the bottleneck queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BandwidthUsage {
    /// The queue neither grows nor drains.
    #[default]
    Normal,
    /// The queue grows: we send more than the path carries.
    Overusing,
    /// The queue drains.
    Underusing,
}

/// Groups in the regression window.
const WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay.
const SMOOTHING: f64 = 0.9;
/// The slope is scaled by this and by the number of deltas seen (up to
/// [`MAX_DELTAS_SCALE`]) before comparing with the threshold.
const THRESHOLD_GAIN: f64 = 4.0;
const MAX_DELTAS_SCALE: f64 = 60.0;
/// §5.4: the adaptive threshold, its gains up and down, and its bounds, ms.
const INITIAL_THRESHOLD: f64 = 12.5;
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
const MIN_THRESHOLD: f64 = 6.0;
const MAX_THRESHOLD: f64 = 600.0;
/// §5.4: a trend this far over the threshold is a spike, not drift: the
/// threshold does not follow it.
const MAX_ADAPT_OFFSET: f64 = 15.0;
/// §5.4: over-use must last this long (ms) and show in two deltas.
const OVERUSE_TIME: f64 = 10.0;

/// Trendline estimator plus over-use detector.
#[derive(Debug, Clone)]
pub(crate) struct TrendlineDetector {
    num_deltas: usize,
    first_arrival: Option<i64>,
    accumulated_delay: f64,
    smoothed_delay: f64,
    window: VecDeque<(f64, f64)>,
    threshold: f64,
    last_threshold_update: Option<f64>,
    previous_trend: f64,
    time_over_using: Option<f64>,
    overuse_count: u32,
    state: BandwidthUsage,
}

impl Default for TrendlineDetector {
    fn default() -> Self {
        Self {
            num_deltas: 0,
            first_arrival: None,
            accumulated_delay: 0.0,
            smoothed_delay: 0.0,
            window: VecDeque::with_capacity(WINDOW + 1),
            threshold: INITIAL_THRESHOLD,
            last_threshold_update: None,
            previous_trend: 0.0,
            time_over_using: None,
            overuse_count: 0,
            state: BandwidthUsage::Normal,
        }
    }
}

impl TrendlineDetector {
    pub(crate) fn state(&self) -> BandwidthUsage {
        self.state
    }

    /// The modified trend against the current threshold, for plots.
    #[cfg(test)]
    pub(crate) fn threshold(&self) -> f64 {
        self.threshold
    }

    /// One group delta: `send_ms` and `arrival_ms` apart, the group's last
    /// packet arrived at `arrival_time` µs.
    pub(crate) fn update(&mut self, send_ms: f64, arrival_ms: f64, arrival_time: i64) {
        let delay = arrival_ms - send_ms;
        self.num_deltas = (self.num_deltas + 1).min(1000);
        self.accumulated_delay += delay;
        self.smoothed_delay =
            SMOOTHING * self.smoothed_delay + (1.0 - SMOOTHING) * self.accumulated_delay;
        let first = *self.first_arrival.get_or_insert(arrival_time);
        let now_ms = (arrival_time - first) as f64 / 1000.0;
        self.window.push_back((now_ms, self.smoothed_delay));
        if self.window.len() > WINDOW {
            self.window.pop_front();
        }
        let mut trend = self.previous_trend;
        if self.window.len() == WINDOW {
            if let Some(slope) = slope(&self.window) {
                trend = slope;
            }
        }
        self.detect(trend, send_ms, now_ms);
    }

    fn detect(&mut self, trend: f64, send_ms: f64, now_ms: f64) {
        if self.num_deltas < 2 {
            self.state = BandwidthUsage::Normal;
            return;
        }
        let modified = (self.num_deltas as f64).min(MAX_DELTAS_SCALE) * trend * THRESHOLD_GAIN;
        if modified > self.threshold {
            let time = match self.time_over_using {
                None => send_ms / 2.0,
                Some(t) => t + send_ms,
            };
            self.time_over_using = Some(time);
            self.overuse_count += 1;
            if time > OVERUSE_TIME && self.overuse_count > 1 && trend >= self.previous_trend {
                self.time_over_using = Some(0.0);
                self.overuse_count = 0;
                self.state = BandwidthUsage::Overusing;
            }
        } else if modified < -self.threshold {
            self.time_over_using = None;
            self.overuse_count = 0;
            self.state = BandwidthUsage::Underusing;
        } else {
            self.time_over_using = None;
            self.overuse_count = 0;
            self.state = BandwidthUsage::Normal;
        }
        self.previous_trend = trend;
        self.adapt_threshold(modified, now_ms);
    }

    /// §5.4: the threshold follows |trend| (fast down, slowly up), so
    /// competing TCP flows do not starve us and noise does not trigger.
    fn adapt_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = *self.last_threshold_update.get_or_insert(now_ms);
        if modified.abs() > self.threshold + MAX_ADAPT_OFFSET {
            self.last_threshold_update = Some(now_ms);
            return;
        }
        let k = if modified.abs() < self.threshold {
            K_DOWN
        } else {
            K_UP
        };
        let dt = (now_ms - last).clamp(0.0, 100.0);
        self.threshold += k * (modified.abs() - self.threshold) * dt;
        self.threshold = self.threshold.clamp(MIN_THRESHOLD, MAX_THRESHOLD);
        self.last_threshold_update = Some(now_ms);
    }
}

/// Least-squares slope of `points`; `None` when x does not vary.
fn slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den != 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut TrendlineDetector, groups: u32, extra_ms: f64, at: &mut i64) {
        for _ in 0..groups {
            *at += 20_000 + (extra_ms * 1000.0) as i64;
            d.update(20.0, 20.0 + extra_ms, *at);
        }
    }

    #[test]
    fn growing_delay_is_overuse_and_draining_is_underuse() {
        let mut d = TrendlineDetector::default();
        let mut at = 0;
        feed(&mut d, 40, 0.0, &mut at);
        assert_eq!(d.state(), BandwidthUsage::Normal);
        // Each group arrives 2 ms later than sent: the queue grows.
        feed(&mut d, 15, 2.0, &mut at);
        assert_eq!(d.state(), BandwidthUsage::Overusing);
        feed(&mut d, 25, -2.0, &mut at);
        assert_eq!(d.state(), BandwidthUsage::Underusing);
    }

    #[test]
    fn threshold_stays_in_bounds() {
        let mut d = TrendlineDetector::default();
        let mut at = 0;
        feed(&mut d, 500, 0.0, &mut at);
        assert_eq!(d.threshold(), MIN_THRESHOLD);
        for i in 0..2000 {
            let extra = if i % 2 == 0 { 30.0 } else { -30.0 };
            feed(&mut d, 1, extra, &mut at);
        }
        assert!((MIN_THRESHOLD..=MAX_THRESHOLD).contains(&d.threshold()));
    }
}
