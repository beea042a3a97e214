//! Bandwidth probing: bursts of packets at a rate above the estimate
//! (probe clusters), whose receive rate says whether the path carries it.
//! The [`ProbeController`] decides when and how fast (at start, again
//! while results keep up, periodically while the application is limited);
//! the [`ProbeEstimator`] turns a cluster's feedback into a rate.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::history::PacketResult;
use crate::micros;
use crate::Bitrate;

/// Names a probe cluster; packets sent for it carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeClusterId(pub u32);

/// A burst to send at `rate`: at least `min_packets` packets and
/// `min_bytes` bytes (media if queued, padding otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCluster {
    /// Which cluster.
    pub id: ProbeClusterId,
    /// How fast to send it.
    pub rate: Bitrate,
    /// Fewest packets.
    pub min_packets: usize,
    /// Fewest bytes (the rate over [`PROBE_DURATION`]).
    pub min_bytes: usize,
}

/// How long a probe lasts at its rate (libwebrtc: at least 15 ms; longer
/// probes measure through the 250 µs feedback resolution better).
pub const PROBE_DURATION: Duration = Duration::from_millis(30);
/// Fewest packets in a probe.
const MIN_PACKETS: usize = 5;
/// Initial probes at these multiples of the start rate.
const INITIAL_FACTORS: [f64; 2] = [3.0, 6.0];
/// A result above this fraction of the probe's rate probes again...
const FURTHER_THRESHOLD: f64 = 0.7;
/// ...at this multiple of the result.
const FURTHER_FACTOR: f64 = 2.0;
/// A result later than this after its probe ends the probing.
const RESULT_TIMEOUT: Duration = Duration::from_secs(1);
/// While application limited, probe this often.
const ALR_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// After a delay-based drop, probe back at the rate before it this long
/// after the last drop (once the queue drained).
const RECOVERY_PROBE_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Nothing sent yet.
    Init,
    /// Waiting for the result of a probe at `rate`; `further`: a result
    /// that keeps up probes higher.
    Waiting {
        rate: Bitrate,
        since: Instant,
        further: bool,
    },
    /// Probing ended; only ALR probes from now.
    Done,
}

/// Decides when to probe.
#[derive(Debug, Clone)]
pub(crate) struct ProbeController {
    phase: Phase,
    pending: VecDeque<ProbeCluster>,
    next_id: u32,
    max: Bitrate,
    last_probe: Option<Instant>,
    /// A probe back to the rate before a drop, and when it is due.
    recovery: Option<(Instant, Bitrate)>,
}

impl ProbeController {
    pub(crate) fn new(max: Bitrate) -> Self {
        Self {
            phase: Phase::Init,
            pending: VecDeque::new(),
            next_id: 0,
            max,
            last_probe: None,
            recovery: None,
        }
    }

    fn probe(&mut self, now: Instant, rate: Bitrate) {
        self.probe_at(now, rate, true);
    }

    fn probe_at(&mut self, now: Instant, rate: Bitrate, further: bool) {
        let rate = rate.min(self.max);
        let id = ProbeClusterId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.pending.push_back(ProbeCluster {
            id,
            rate,
            min_packets: MIN_PACKETS,
            min_bytes: rate.bytes_in(PROBE_DURATION) as usize,
        });
        self.phase = Phase::Waiting {
            rate,
            since: now,
            further,
        };
        self.last_probe = Some(now);
    }

    /// The next cluster to send, if one is due; `drained`: the bottleneck
    /// queue is short, so a recovery probe may go.
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        estimate: Bitrate,
        drained: bool,
    ) -> Option<ProbeCluster> {
        if self.phase == Phase::Init {
            for factor in INITIAL_FACTORS {
                self.probe(now, estimate.scale(factor));
            }
        }
        if let Some((due, rate)) = self.recovery {
            let idle = self.pending.is_empty() && !matches!(self.phase, Phase::Waiting { .. });
            if now >= due && drained && idle {
                self.recovery = None;
                if rate > estimate {
                    self.probe_at(now, rate, false);
                }
            }
        }
        if let Phase::Waiting { since, .. } = self.phase {
            if now.saturating_duration_since(since) > RESULT_TIMEOUT {
                self.phase = Phase::Done;
            }
        }
        self.pending.pop_front()
    }

    /// A new estimate after a probe result: probe further while results
    /// keep up with the probes.
    pub(crate) fn on_probe_result(&mut self, now: Instant, result: Bitrate) {
        if let Phase::Waiting { rate, further, .. } = self.phase {
            if further && result.as_f64() > FURTHER_THRESHOLD * rate.as_f64() && rate < self.max {
                self.probe(now, result.scale(FURTHER_FACTOR));
            } else {
                self.phase = Phase::Done;
            }
        }
    }

    /// The application asked for `rate`: probe there now (in place of
    /// the initial probes if none went yet), then further while results
    /// keep up.
    pub(crate) fn request(&mut self, now: Instant, rate: Bitrate) {
        self.probe(now, rate);
    }

    /// The delay-based estimate dropped from `before` (an over-use): a
    /// probe at `before` goes [`RECOVERY_PROBE_DELAY`] after the last
    /// drop of a series, once the queue drained, and the estimate jumps
    /// to what it measures. A back-off on a passing over-use (an
    /// encoder's overshoot at start, a key frame) otherwise costs seconds
    /// of additive increase: on the 2.5 Mbit/s tbf link with Chromium one
    /// at 0.7 s cut 2.3 to 1.6 Mbit/s and the estimate needed 8 s to
    /// climb back. After a real drop of the capacity the probe saturates
    /// and measures the new rate, which the estimate already is.
    /// (libwebrtc probes after a large drop only while application
    /// limited.)
    pub(crate) fn on_drop(&mut self, now: Instant, before: Bitrate) {
        let rate = self.recovery.map_or(before, |(_, r)| r.max(before));
        self.recovery = Some((now + RECOVERY_PROBE_DELAY, rate.min(self.max)));
    }

    /// No initial probing: only ALR probes.
    pub(crate) fn on_probe_result_disabled(&mut self) {
        self.phase = Phase::Done;
    }

    /// While application limited since `alr_since`, probe every few
    /// seconds at twice the estimate.
    pub(crate) fn on_alr(&mut self, now: Instant, alr_since: Option<Instant>, estimate: Bitrate) {
        let Some(since) = alr_since else { return };
        let last = self.last_probe.map_or(since, |l| l.max(since));
        if self.phase == Phase::Done && now.saturating_duration_since(last) >= ALR_PROBE_INTERVAL {
            self.probe(now, estimate.scale(FURTHER_FACTOR));
        }
    }
}

/// Most clusters measured at once.
const MAX_CLUSTERS: usize = 8;
/// A cluster's result needs this fraction of its packets reported.
const MIN_RECEIVED_FRACTION: f64 = 0.8;
/// Send or receive spans beyond this are not a probe.
const MAX_SPAN_MICROS: i64 = 1_000_000;
/// libwebrtc: a receive rate under 90% of the send rate means the probe
/// hit the bottleneck; the result is then a bit under the receive rate.
const SATURATION_RATIO: f64 = 0.9;
const SATURATED_RESULT: f64 = 0.95;

#[derive(Debug, Clone, Copy)]
struct ClusterStats {
    first_send: Instant,
    last_send: Instant,
    last_send_size: usize,
    sent_bytes: usize,
    first_arrival: i64,
    first_arrival_size: usize,
    last_arrival: i64,
    received_bytes: usize,
    received: usize,
    min_packets: usize,
}

/// Measures probe clusters from feedback.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProbeEstimator {
    clusters: BTreeMap<ProbeClusterId, ClusterStats>,
    min_packets: BTreeMap<ProbeClusterId, usize>,
}

impl ProbeEstimator {
    /// A cluster starts: its size is known.
    pub(crate) fn on_cluster(&mut self, cluster: &ProbeCluster) {
        self.min_packets.insert(cluster.id, cluster.min_packets);
        while self.min_packets.len() > MAX_CLUSTERS {
            if let Some((id, _)) = self.min_packets.pop_first() {
                self.clusters.remove(&id);
            }
        }
    }

    /// A reported packet; the cluster's rate when it now has enough.
    pub(crate) fn on_result(&mut self, r: &PacketResult) -> Option<(ProbeClusterId, Bitrate)> {
        let id = r.probe_cluster?;
        let arrival = r.arrival?;
        let min_packets = *self.min_packets.get(&id)?;
        let stats = self.clusters.entry(id).or_insert(ClusterStats {
            first_send: r.send_time,
            last_send: r.send_time,
            last_send_size: r.size,
            sent_bytes: 0,
            first_arrival: arrival,
            first_arrival_size: r.size,
            last_arrival: arrival,
            received_bytes: 0,
            received: 0,
            min_packets,
        });
        if r.send_time < stats.first_send {
            stats.first_send = r.send_time;
        }
        if r.send_time >= stats.last_send {
            stats.last_send = r.send_time;
            stats.last_send_size = r.size;
        }
        if arrival < stats.first_arrival {
            stats.first_arrival = arrival;
            stats.first_arrival_size = r.size;
        }
        stats.last_arrival = stats.last_arrival.max(arrival);
        stats.sent_bytes += r.size;
        stats.received_bytes += r.size;
        stats.received += 1;
        if (stats.received as f64) < MIN_RECEIVED_FRACTION * stats.min_packets as f64 {
            return None;
        }
        let send_span = micros(stats.last_send.duration_since(stats.first_send));
        let receive_span = stats.last_arrival - stats.first_arrival;
        if !(1..=MAX_SPAN_MICROS).contains(&send_span)
            || !(1..=MAX_SPAN_MICROS).contains(&receive_span)
        {
            return None;
        }
        // The last packet sent took no send time; the first received, no
        // receive time.
        let send_rate = (stats.sent_bytes - stats.last_send_size) as f64 * 8e6 / send_span as f64;
        let receive_rate =
            (stats.received_bytes - stats.first_arrival_size) as f64 * 8e6 / receive_span as f64;
        if receive_rate > 2.0 * send_rate {
            return None;
        }
        let mut result = send_rate.min(receive_rate);
        if receive_rate < SATURATION_RATIO * send_rate {
            result = SATURATED_RESULT * receive_rate;
        }
        Some((id, Bitrate::from_f64(result)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_probes_then_further_while_results_keep_up() {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut c = ProbeController::new(Bitrate::kbps(5000));
        let first = c.poll(now, Bitrate::kbps(300), true).unwrap();
        let second = c.poll(now, Bitrate::kbps(300), true).unwrap();
        assert_eq!(
            (first.rate, second.rate),
            (Bitrate::kbps(900), Bitrate::kbps(1800))
        );
        assert_eq!(second.min_bytes, 6750);
        assert_eq!(c.poll(now, Bitrate::kbps(300), true), None);
        c.on_probe_result(now, Bitrate::kbps(1700));
        let further = c.poll(now, Bitrate::kbps(1700), true).unwrap();
        assert_eq!(further.rate, Bitrate::kbps(3400));
        // The path carried 2000 of 3400: done.
        c.on_probe_result(now, Bitrate::kbps(2000));
        assert_eq!(c.poll(now, Bitrate::kbps(2000), true), None);
    }

    #[test]
    fn a_drop_is_probed_back_once_the_queue_drained() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut c = ProbeController::new(Bitrate::kbps(5000));
        c.on_probe_result_disabled();
        let low = Bitrate::kbps(1600);
        c.on_drop(t0, Bitrate::kbps(2000));
        // A second drop of the series: the probe goes back to the first
        // rate, a second after the last drop.
        c.on_drop(t0 + Duration::from_millis(300), Bitrate::kbps(1800));
        let due = t0 + Duration::from_millis(1300);
        assert_eq!(c.poll(due - Duration::from_millis(1), low, true), None);
        assert_eq!(c.poll(due, low, false), None, "the queue still stands");
        let probe = c.poll(due, low, true).expect("a recovery probe");
        assert_eq!(probe.rate, Bitrate::kbps(2000));
        // It measured the rate: no further probing from it.
        c.on_probe_result(due, Bitrate::kbps(1950));
        assert_eq!(c.poll(due, Bitrate::kbps(1950), true), None);
    }

    #[test]
    fn a_saturated_probe_measures_the_bottleneck() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut e = ProbeEstimator::default();
        let cluster = ProbeCluster {
            id: ProbeClusterId(1),
            rate: Bitrate::kbps(4000),
            min_packets: 5,
            min_bytes: 15_000,
        };
        e.on_cluster(&cluster);
        // 1000-byte packets sent every 2 ms (4 Mbit/s), arriving every 4 ms.
        let mut result = None;
        for i in 0..15u64 {
            result = e.on_result(&PacketResult {
                send_time: t0 + Duration::from_millis(2 * i),
                size: 1000,
                probe_cluster: Some(ProbeClusterId(1)),
                arrival: Some(50_000 + 4000 * i as i64),
            });
        }
        let (id, rate) = result.unwrap();
        assert_eq!(id, ProbeClusterId(1));
        assert_eq!(rate, Bitrate::kbps(1900));
    }
}
