//! The loss-based limit (draft-ietf-rmcat-gcc-02 §6): heavy loss cuts the
//! rate by half the loss fraction. Unlike the draft's 2% rule, moderate
//! loss (2-10%) only holds the rate when the delay-based detector saw the
//! queue grow too: loss on a link whose queue does not grow is random
//! (radio, policing), and backing off from it starves the flow for nothing
//! (libwebrtc's loss-based v2 reaches the same end by another road).

use std::time::{Duration, Instant};

use crate::Bitrate;

/// §6: loss above this fraction is congestion.
const HIGH_LOSS: f64 = 0.10;
/// §6: loss below this is noise.
const LOW_LOSS: f64 = 0.02;
/// Loss is measured over at least this many packets...
const MIN_PACKETS: u32 = 50;
/// ...and this much time.
const MIN_INTERVAL: Duration = Duration::from_millis(500);
/// A cut takes an RTT plus this to show before the next.
const DECREASE_INTERVAL: Duration = Duration::from_millis(300);
/// After a cut the limit recovers this much per second.
const RECOVERY_PER_SECOND: f64 = 1.08;

/// The loss-based limit on the target.
#[derive(Debug, Clone, Default)]
pub(crate) struct LossBasedBwe {
    lost: u32,
    total: u32,
    since: Option<Instant>,
    limit: Option<Bitrate>,
    last_decrease: Option<Instant>,
    last_update: Option<Instant>,
    loss: f64,
}

impl LossBasedBwe {
    /// The loss fraction of the last complete interval.
    pub(crate) fn loss(&self) -> f64 {
        self.loss
    }

    pub(crate) fn limit(&self) -> Option<Bitrate> {
        self.limit
    }

    /// Feedback reported `lost` and `received` packets; `target` is the
    /// current target, `delay_estimate` the delay-based one, `congested`
    /// whether the delay detector saw over-use lately.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_feedback(
        &mut self,
        now: Instant,
        lost: u32,
        received: u32,
        target: Bitrate,
        delay_estimate: Bitrate,
        congested: bool,
        rtt: Duration,
    ) {
        let since = *self.since.get_or_insert(now);
        self.lost += lost;
        self.total += lost + received;
        if let (Some(limit), Some(last)) = (self.limit, self.last_update) {
            let dt = now.saturating_duration_since(last).as_secs_f64().min(1.0);
            let recovered = limit.scale(RECOVERY_PER_SECOND.powf(dt));
            self.limit = (recovered < delay_estimate).then_some(recovered);
        }
        self.last_update = Some(now);
        if self.total < MIN_PACKETS || now.saturating_duration_since(since) < MIN_INTERVAL {
            return;
        }
        self.loss = f64::from(self.lost) / f64::from(self.total);
        self.lost = 0;
        self.total = 0;
        self.since = Some(now);
        let can_decrease = self
            .last_decrease
            .is_none_or(|t| now.saturating_duration_since(t) >= rtt + DECREASE_INTERVAL);
        if self.loss > HIGH_LOSS && can_decrease {
            let cut = target.scale(1.0 - 0.5 * self.loss);
            self.limit = Some(self.limit.map_or(cut, |l| l.min(cut)));
            self.last_decrease = Some(now);
        } else if self.loss > LOW_LOSS && congested {
            self.limit = Some(self.limit.map_or(target, |l| l.min(target)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_loss_cuts_random_loss_does_not() {
        #[allow(clippy::disallowed_methods)]
        let mut now = Instant::now();
        let rtt = Duration::from_millis(100);
        let rate = Bitrate::kbps(1000);
        let mut l = LossBasedBwe::default();
        for _ in 0..20 {
            now += Duration::from_millis(100);
            l.on_feedback(now, 1, 19, rate, rate, false, rtt);
        }
        assert_eq!(l.limit(), None);
        assert!((l.loss() - 0.05).abs() < 1e-9);
        for _ in 0..6 {
            now += Duration::from_millis(100);
            l.on_feedback(now, 4, 16, rate, rate, false, rtt);
        }
        // 20% loss: cut by 10%, then it recovers over seconds.
        let cut = l.limit().unwrap();
        assert!(cut <= Bitrate::kbps(900), "{cut}");
        for _ in 0..30 {
            now += Duration::from_millis(100);
            l.on_feedback(now, 0, 20, rate, rate, false, rtt);
        }
        assert_eq!(l.limit(), None);
    }
}
