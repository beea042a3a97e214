//! The delay-based estimate (draft-ietf-rmcat-gcc-02 §5): packet groups,
//! the trendline of their delay variation, the over-use detector and AIMD
//! rate control.

mod inter_arrival;
mod rate_control;
mod trendline;

use std::time::{Duration, Instant};

pub use trendline::BandwidthUsage;

use crate::history::PacketResult;
use crate::Bitrate;
use inter_arrival::InterArrival;
use rate_control::AimdRateControl;
use trendline::TrendlineDetector;

/// Delay-based bandwidth estimation from transport-wide feedback.
#[derive(Debug, Clone)]
pub(crate) struct DelayBasedBwe {
    inter_arrival: InterArrival,
    detector: TrendlineDetector,
    rate_control: AimdRateControl,
}

impl DelayBasedBwe {
    pub(crate) fn new(start: Bitrate, min: Bitrate, max: Bitrate) -> Self {
        Self {
            inter_arrival: InterArrival::default(),
            detector: TrendlineDetector::default(),
            rate_control: AimdRateControl::new(start, min, max),
        }
    }

    pub(crate) fn estimate(&self) -> Bitrate {
        self.rate_control.rate()
    }

    pub(crate) fn usage(&self) -> BandwidthUsage {
        self.detector.state()
    }

    pub(crate) fn set_rtt(&mut self, rtt: Duration) {
        self.rate_control.set_rtt(rtt);
    }

    /// Puts the estimate at `rate` (within the bounds); the rate control
    /// goes on from there.
    pub(crate) fn set_estimate(&mut self, now: Instant, rate: Bitrate) {
        self.rate_control.set_estimate(now, rate);
    }

    /// One feedback's results: the detector sees every group, the rate
    /// control acts once on where it ended (over-use anywhere in the
    /// feedback counts). A probe result above the estimate, with no
    /// over-use, replaces it.
    pub(crate) fn on_feedback(
        &mut self,
        now: Instant,
        results: &[PacketResult],
        acked: Option<Bitrate>,
        probe: Option<Bitrate>,
    ) -> Bitrate {
        let mut overuse = false;
        let mut any = false;
        for r in results {
            let Some(arrival) = r.arrival else { continue };
            any = true;
            if let Some(d) = self.inter_arrival.on_packet(r.send_time, arrival, r.size) {
                self.detector
                    .update(d.send_ms, d.arrival_ms, d.arrival_time);
                overuse |= self.detector.state() == BandwidthUsage::Overusing;
            }
        }
        if !any {
            return self.estimate();
        }
        let usage = if overuse {
            BandwidthUsage::Overusing
        } else {
            self.detector.state()
        };
        match probe {
            Some(probe) if !overuse && probe > self.estimate() => {
                self.rate_control.set_estimate(now, probe);
                self.estimate()
            }
            _ => self.rate_control.update(now, usage, acked),
        }
    }
}
