//! AIMD rate control (draft-ietf-rmcat-gcc-02 §5.5): increase while the
//! detector says normal, multiplicatively far from the last congestion
//! point and additively near it; on over-use, go to β times what the
//! receiver got.

use std::time::{Duration, Instant};

use super::BandwidthUsage;
use crate::Bitrate;

/// §5.5: the rate after over-use is β × the incoming rate.
const BETA: f64 = 0.85;
/// §5.5: multiplicative increase of at most 8% per second.
const MULTIPLICATIVE_PER_SECOND: f64 = 1.08;
/// Frames per second assumed to size the additive increase (one packet per
/// response time, §5.5).
const FRAME_RATE: f64 = 30.0;
/// Largest packet assumed, bytes.
const PACKET_BYTES: f64 = 1200.0;
/// The least additive increase, bps per second.
const MIN_ADDITIVE_BPS: f64 = 4000.0;
/// §5.5: the response time is the RTT plus this (the detector's delay).
const DETECTOR_DELAY: Duration = Duration::from_millis(100);
/// libwebrtc: the estimate never runs further ahead of what got through
/// than 1.5× plus this.
const THROUGHPUT_HEADROOM_BPS: f64 = 10_000.0;

/// §5.5: the incoming rate at past over-uses: its mean and normalized
/// variance say where the link's capacity is, so increases slow near it.
#[derive(Debug, Clone, Copy, Default)]
struct LinkCapacity {
    estimate_kbps: Option<f64>,
    deviation_kbps: f64,
}

impl LinkCapacity {
    fn upper_bound(&self) -> Option<f64> {
        self.estimate_kbps
            .map(|e| e + 3.0 * (self.deviation_kbps * e).sqrt())
    }

    fn lower_bound(&self) -> Option<f64> {
        self.estimate_kbps
            .map(|e| (e - 3.0 * (self.deviation_kbps * e).sqrt()).max(0.0))
    }

    fn on_overuse(&mut self, acked: Bitrate) {
        let sample = acked.as_f64() / 1000.0;
        let estimate = match self.estimate_kbps {
            None => sample,
            Some(e) => 0.95 * e + 0.05 * sample,
        };
        let norm = estimate.max(1.0);
        let error = estimate - sample;
        self.deviation_kbps =
            (0.95 * self.deviation_kbps + 0.05 * error * error / norm).clamp(0.4, 2.5);
        self.estimate_kbps = Some(estimate);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateState {
    Hold,
    Increase,
    Decrease,
}

/// The delay-based estimate's AIMD controller.
#[derive(Debug, Clone)]
pub(crate) struct AimdRateControl {
    rate: Bitrate,
    min: Bitrate,
    max: Bitrate,
    state: RateState,
    capacity: LinkCapacity,
    last_change: Option<Instant>,
    rtt: Duration,
}

impl AimdRateControl {
    pub(crate) fn new(start: Bitrate, min: Bitrate, max: Bitrate) -> Self {
        Self {
            rate: start,
            min,
            max,
            state: RateState::Hold,
            capacity: LinkCapacity::default(),
            last_change: None,
            rtt: Duration::from_millis(200),
        }
    }

    pub(crate) fn rate(&self) -> Bitrate {
        self.rate
    }

    pub(crate) fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// A probe measured `rate` getting through: jump there.
    pub(crate) fn set_estimate(&mut self, now: Instant, rate: Bitrate) {
        self.rate = rate.clamp(self.min, self.max);
        self.last_change = Some(now);
    }

    /// §5.5 state machine: `usage` moves the state, the state moves the
    /// rate; `acked` is what the receiver got lately.
    pub(crate) fn update(
        &mut self,
        now: Instant,
        usage: BandwidthUsage,
        acked: Option<Bitrate>,
    ) -> Bitrate {
        self.state = match (usage, self.state) {
            (BandwidthUsage::Overusing, _) => RateState::Decrease,
            (BandwidthUsage::Underusing, _) => RateState::Hold,
            (BandwidthUsage::Normal, RateState::Hold) => RateState::Increase,
            (BandwidthUsage::Normal, state) => state,
        };
        let since = self
            .last_change
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(Duration::from_secs(1));
        match self.state {
            RateState::Hold => {}
            RateState::Increase => {
                if let (Some(acked), Some(upper)) = (acked, self.capacity.upper_bound()) {
                    if acked.as_f64() / 1000.0 > upper {
                        // The link grew: forget where it used to saturate.
                        self.capacity = LinkCapacity::default();
                    }
                }
                let increase = if self.capacity.estimate_kbps.is_some() {
                    self.additive_increase(since)
                } else {
                    let factor = MULTIPLICATIVE_PER_SECOND.powf(since.as_secs_f64()) - 1.0;
                    (self.rate.as_f64() * factor).max(1000.0 * since.as_secs_f64())
                };
                let mut increased = self.rate.as_f64() + increase;
                if let Some(acked) = acked {
                    let limit = 1.5 * acked.as_f64() + THROUGHPUT_HEADROOM_BPS;
                    if self.rate.as_f64() < limit {
                        increased = increased.min(limit);
                    } else {
                        increased = self.rate.as_f64();
                    }
                }
                self.rate = Bitrate::from_f64(increased);
            }
            RateState::Decrease => {
                if let Some(acked) = acked {
                    let mut decreased = BETA * acked.as_f64();
                    if decreased > self.rate.as_f64() {
                        if let Some(capacity) = self.capacity.estimate_kbps {
                            decreased = BETA * capacity * 1000.0;
                        }
                    }
                    if decreased < self.rate.as_f64() {
                        self.rate = Bitrate::from_f64(decreased);
                    }
                    if self
                        .capacity
                        .lower_bound()
                        .is_some_and(|lower| acked.as_f64() / 1000.0 < lower)
                    {
                        self.capacity = LinkCapacity::default();
                    }
                    self.capacity.on_overuse(acked);
                } else {
                    self.rate = self.rate.scale(BETA);
                }
                self.state = RateState::Hold;
            }
        }
        self.rate = self.rate.clamp(self.min, self.max);
        self.last_change = Some(now);
        self.rate
    }

    /// §5.5: near convergence, about one packet more per response time.
    fn additive_increase(&self, since: Duration) -> f64 {
        let response = (self.rtt + DETECTOR_DELAY).as_secs_f64();
        let bits_per_frame = self.rate.as_f64() / FRAME_RATE;
        let packets_per_frame = (bits_per_frame / (8.0 * PACKET_BYTES)).ceil().max(1.0);
        let packet_bits = bits_per_frame / packets_per_frame;
        (packet_bits / response).max(MIN_ADDITIVE_BPS) * since.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increases_then_backs_off_to_beta_times_acked() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut c = AimdRateControl::new(
            Bitrate::kbps(1000),
            Bitrate::kbps(30),
            Bitrate::kbps(10_000),
        );
        let mut now = t0;
        for _ in 0..10 {
            now += Duration::from_millis(100);
            c.update(now, BandwidthUsage::Normal, Some(Bitrate::kbps(1000)));
        }
        // About 8% in a second (compounded per step), far under 1.5x acked.
        let rate = c.rate().as_bps();
        assert!((1_070_000..1_090_000).contains(&rate), "{rate}");
        now += Duration::from_millis(100);
        let after = c.update(now, BandwidthUsage::Overusing, Some(Bitrate::kbps(900)));
        assert_eq!(after, Bitrate::kbps(765));
        // Held while the queue drains, then additive near the old capacity.
        now += Duration::from_millis(100);
        assert_eq!(
            c.update(now, BandwidthUsage::Underusing, Some(Bitrate::kbps(900))),
            after
        );
        now += Duration::from_secs(1);
        let before = c.update(now, BandwidthUsage::Normal, Some(Bitrate::kbps(765)));
        now += Duration::from_secs(1);
        let additive = c.update(now, BandwidthUsage::Normal, Some(Bitrate::kbps(765)));
        // 765 kbit/s at 30 fps: 3 packets of 8500 bits a frame, one more
        // per 300 ms response time.
        let per_second = additive.as_bps() - before.as_bps();
        assert!((4_000..40_000).contains(&per_second), "{per_second}");
    }

    #[test]
    fn never_runs_far_ahead_of_throughput() {
        #[allow(clippy::disallowed_methods)]
        let mut now = Instant::now();
        let mut c = AimdRateControl::new(
            Bitrate::kbps(1000),
            Bitrate::kbps(30),
            Bitrate::kbps(10_000),
        );
        for _ in 0..100 {
            now += Duration::from_millis(100);
            c.update(now, BandwidthUsage::Normal, Some(Bitrate::kbps(200)));
        }
        assert_eq!(c.rate(), Bitrate::kbps(1000));
    }
}
