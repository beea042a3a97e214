//! The standing queue at the bottleneck, from feedback: each packet's
//! arrival time (receiver's clock) minus its send time (ours) is the
//! one-way delay plus an unknown clock offset; above its recent minimum it
//! is queuing. The least of one feedback's packets is the standing queue
//! (the frame bursts of the others go).
//!
//! Like libwebrtc's congestion window pushback, a long standing queue
//! pushes the target down until it drains: after the capacity drops, the
//! AIMD back-off to 85% of the new rate alone drains a queue in about
//! 6.7 times its delay; this drains it in about a second.

use std::time::{Duration, Instant};

use crate::history::PacketResult;
use crate::micros;

/// The minimum delay is kept over two windows of this.
const BASE_WINDOW: Duration = Duration::from_secs(10);
/// No pushback under this standing queue (frame bursts and jitter).
const PUSHBACK_START: Duration = Duration::from_millis(50);
/// The pushback aims to drain the queue within this.
const DRAIN_TIME: Duration = Duration::from_secs(1);
/// Never pushes back below this fraction of the target.
const MIN_PUSHBACK: f64 = 0.5;

/// Tracks the standing queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueDelay {
    epoch: Option<Instant>,
    /// Minimum offset of the current and previous windows, and when the
    /// current window began.
    current_min: Option<i64>,
    previous_min: Option<i64>,
    window_start: Option<Instant>,
    standing: Duration,
}

impl QueueDelay {
    /// The standing queue as of the last feedback.
    pub(crate) fn standing(&self) -> Duration {
        self.standing
    }

    pub(crate) fn on_feedback(&mut self, now: Instant, results: &[PacketResult]) {
        let epoch = *self.epoch.get_or_insert(now);
        let window_start = *self.window_start.get_or_insert(now);
        if now.saturating_duration_since(window_start) >= BASE_WINDOW {
            self.previous_min = self.current_min.take();
            self.window_start = Some(now);
        }
        let mut least = None;
        for r in results {
            let Some(arrival) = r.arrival else { continue };
            let sent = if r.send_time >= epoch {
                micros(r.send_time.duration_since(epoch))
            } else {
                -micros(epoch.duration_since(r.send_time))
            };
            let offset = arrival - sent;
            least = Some(least.map_or(offset, |l: i64| l.min(offset)));
            self.current_min = Some(self.current_min.map_or(offset, |m| m.min(offset)));
        }
        let base = match (self.current_min, self.previous_min) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(base) => base,
                None => return,
            },
        };
        if let Some(least) = least {
            self.standing = Duration::from_micros(u64::try_from(least - base).unwrap_or(0));
        }
    }

    /// The fraction of the target to send while the queue stands.
    pub(crate) fn pushback(&self) -> f64 {
        if self.standing <= PUSHBACK_START {
            return 1.0;
        }
        (1.0 - self.standing.as_secs_f64() / DRAIN_TIME.as_secs_f64()).max(MIN_PUSHBACK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(send_time: Instant, arrival: i64) -> PacketResult {
        PacketResult {
            send_time,
            size: 1000,
            probe_cluster: None,
            arrival: Some(arrival),
        }
    }

    #[test]
    fn a_standing_queue_pushes_back_until_it_drains() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut q = QueueDelay::default();
        // 30 ms one way plus a clock offset of 5 s: no queue.
        q.on_feedback(
            ms(0),
            &[result(ms(0), 5_030_000), result(ms(10), 5_040_000)],
        );
        assert_eq!((q.standing(), q.pushback()), (Duration::ZERO, 1.0));
        // 300 ms of queue for every packet of this feedback.
        q.on_feedback(
            ms(400),
            &[result(ms(100), 5_430_000), result(ms(110), 5_440_000)],
        );
        assert_eq!(q.standing(), Duration::from_millis(300));
        assert!((q.pushback() - 0.7).abs() < 1e-9);
        // A burst inside one feedback is not a standing queue.
        q.on_feedback(
            ms(500),
            &[result(ms(470), 5_500_000), result(ms(471), 5_560_000)],
        );
        assert_eq!((q.standing(), q.pushback()), (Duration::ZERO, 1.0));
    }
}
