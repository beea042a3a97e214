//! Send-side bandwidth estimation and pacing for WebRTC, sans-IO.
//!
//! After draft-ietf-rmcat-gcc-02 and what libwebrtc's goog_cc does today:
//!
//! - [`SendSideBwe`] takes every packet sent ([`SentPacket`], numbered by
//!   the transport-wide sequence number) and every transport-wide feedback
//!   packet, and keeps a target bitrate: the least of a delay-based
//!   estimate (packet groups, trendline filter, over-use detector with an
//!   adaptive threshold, AIMD rate control), a loss-based limit, and a
//!   REMB cap if the peer sends one, pushed down while a standing queue
//!   drains (as libwebrtc's congestion window pushback). It probes the path at start and
//!   while probes keep succeeding, and periodically while the application
//!   sends less than the target. When feedback stops coming for what was
//!   sent, the target falls ([`SendSideBwe::on_feedback_timeout`]).
//! - [`Pacer`] sends queued packets at the pacing rate in bursts of a few
//!   milliseconds, audio first, and sends probe clusters at their rate.
//!
//! Time comes from the caller (`now: Instant` on every call); nothing
//! here reads a clock, owns a socket or spawns.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use realtimer_bwe::{Bitrate, BweConfig, SendSideBwe, SentPacket};
//! use realtimer_rtp::rtcp::{PacketArrival, TransportFeedback};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let start = Instant::now();
//! let mut bwe = SendSideBwe::new(BweConfig::default());
//! for seq in 0..100u16 {
//!     let at = start + Duration::from_millis(10 * u64::from(seq));
//!     bwe.on_packet_sent(at, SentPacket { sequence: seq, size: 1000, probe_cluster: None });
//! }
//! // Everything arrived 10 ms apart, as sent: no queue builds up.
//! let feedback = TransportFeedback {
//!     base_sequence: 0,
//!     packets: vec![PacketArrival::Received { delta: 40 }; 100],
//!     ..Default::default()
//! };
//! bwe.on_transport_feedback(start + Duration::from_millis(1050), &feedback);
//! assert!(bwe.target() >= BweConfig::default().start);
//! ```

// Library code never unwraps: peer input gets typed errors.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod acked;
mod alr;
mod bitrate;
mod delay;
mod history;
mod layers;
mod loss;
mod pacer;
mod probe;
mod queue;

use std::time::{Duration, Instant};

use realtimer_rtp::rtcp::TransportFeedback;

pub use bitrate::Bitrate;
pub use delay::BandwidthUsage;
pub use history::{SentPacket, MAX_HISTORY};
pub use layers::{allocate_layers, pick_layer, LAYER_START_SHARE};
pub use pacer::{Paced, Pacer, PacerFull, PacketKind, DEFAULT_MAX_QUEUED};
pub use probe::{ProbeCluster, ProbeClusterId, PROBE_DURATION};

use acked::AckedBitrate;
use alr::AlrDetector;
use delay::DelayBasedBwe;
use history::{PacketResult, SendHistory};
use loss::LossBasedBwe;
use probe::{ProbeController, ProbeEstimator};
use queue::QueueDelay;

/// libwebrtc paces at this multiple of the target, so a frame leaves well
/// within its frame interval and the queue stays short.
pub const PACING_FACTOR: f64 = 2.5;
/// Over-use seen this recently makes moderate loss count as congestion.
const CONGESTION_MEMORY: Duration = Duration::from_secs(1);
/// A REMB caps the target this long: receivers repeat it about every
/// second (draft-alvestrand-rmcat-remb-03 §2.2 sends it on every change,
/// libwebrtc at least once a second), so a peer that stopped sending it
/// (it moved to transport-wide feedback, or renegotiated) no longer holds
/// the estimate down.
pub const REMB_TIMEOUT: Duration = Duration::from_secs(3);
/// Packets sent this long ago with no transport-wide feedback since make
/// the target fall by [`FEEDBACK_TIMEOUT_FACTOR`], and again after each
/// further such interval. Receivers send feedback every 50-100 ms (RFC
/// 8888 §3.1 asks for one at least every frame or RTT; libwebrtc sends at
/// least every 250 ms), so a second of silence means the peer is gone, its
/// path is cut or it stopped reading: sending on at the last estimate
/// until consent expires (RFC 7675 §5.1: 30 s) would fill a path that
/// may be congested. libwebrtc likewise cuts its estimate when feedback
/// times out (and stops sending past its congestion window).
pub const FEEDBACK_TIMEOUT: Duration = Duration::from_secs(1);
/// What the target is multiplied by per [`FEEDBACK_TIMEOUT`] without
/// feedback (the first time from the acknowledged rate, when lower: an
/// estimate far above what was sent says nothing of the path): from
/// 1 Mbit/s sent to the 30 kbit/s minimum in 5 s.
pub const FEEDBACK_TIMEOUT_FACTOR: f64 = 0.5;

/// `d` in whole µs (saturating), for arithmetic with arrival times.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Where the estimate starts and the bounds it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BweConfig {
    /// The first target, before any feedback (libwebrtc: 300 kbit/s).
    pub start: Bitrate,
    /// The target never goes under this.
    pub min: Bitrate,
    /// Nor over this.
    pub max: Bitrate,
    /// Probe at start (3× and 6× the start rate) and further while probes
    /// succeed.
    pub initial_probing: bool,
}

impl Default for BweConfig {
    fn default() -> Self {
        Self {
            start: Bitrate::kbps(300),
            min: Bitrate::kbps(30),
            max: Bitrate::kbps(20_000),
            initial_probing: true,
        }
    }
}

/// The send-side estimator.
#[derive(Debug, Clone)]
pub struct SendSideBwe {
    config: BweConfig,
    history: SendHistory,
    /// What the last feedback reported, kept for its allocation.
    results: Vec<PacketResult>,
    delay: DelayBasedBwe,
    loss: LossBasedBwe,
    acked: AckedBitrate,
    alr: AlrDetector,
    probes: ProbeController,
    probe_estimator: ProbeEstimator,
    queue: QueueDelay,
    rtt: Option<Duration>,
    /// The last REMB and when it came.
    remb: Option<(Bitrate, Instant)>,
    last_overuse: Option<Instant>,
    target: Bitrate,
    /// The first packet sent since the last feedback, when it left.
    unanswered_since: Option<Instant>,
    /// When the target last fell for want of feedback.
    last_timeout_cut: Option<Instant>,
}

impl SendSideBwe {
    /// An estimator at `config.start`.
    pub fn new(config: BweConfig) -> Self {
        let max = config.max.max(config.min);
        let start = config.start.clamp(config.min, max);
        let mut probes = ProbeController::new(max);
        if !config.initial_probing {
            // Nothing to wait for: straight to ALR probing only.
            probes.on_probe_result_disabled();
        }
        Self {
            config,
            history: SendHistory::default(),
            results: Vec::new(),
            delay: DelayBasedBwe::new(start, config.min, max),
            loss: LossBasedBwe::default(),
            acked: AckedBitrate::default(),
            alr: AlrDetector::default(),
            probes,
            probe_estimator: ProbeEstimator::default(),
            queue: QueueDelay::default(),
            rtt: None,
            remb: None,
            last_overuse: None,
            target: start,
            unanswered_since: None,
            last_timeout_cut: None,
        }
    }

    /// The target bitrate for everything we send (encoders, FEC, RTX).
    pub fn target(&self) -> Bitrate {
        self.target
    }

    /// The pacing rate: [`PACING_FACTOR`] × the target.
    pub fn pacing_rate(&self) -> Bitrate {
        self.target.scale(PACING_FACTOR)
    }

    /// What the delay detector says now.
    pub fn usage(&self) -> BandwidthUsage {
        self.delay.usage()
    }

    /// The rate the receiver got over the last 150 ms, when known.
    pub fn acknowledged_bitrate(&self) -> Option<Bitrate> {
        self.acked.rate()
    }

    /// The loss fraction of the last measured interval.
    pub fn loss_fraction(&self) -> f64 {
        self.loss.loss()
    }

    /// The standing queue at the bottleneck as of the last feedback (the
    /// least queuing delay of its packets).
    pub fn standing_queue(&self) -> Duration {
        self.queue.standing()
    }

    /// The round-trip time seen through feedback, smoothed.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Whether the application sends well under the target (since when).
    pub fn application_limited_since(&self) -> Option<Instant> {
        self.alr.since()
    }

    /// A packet left (after the pacer, with its transport-wide sequence
    /// number).
    pub fn on_packet_sent(&mut self, now: Instant, packet: SentPacket) {
        self.history.on_sent(now, packet);
        self.unanswered_since.get_or_insert(now);
        if packet.probe_cluster.is_none() {
            self.alr.on_sent(now, packet.size, self.target);
        }
    }

    /// An RTT measured elsewhere (RTCP receiver reports, RFC 3550 §6.4.1).
    pub fn on_rtt(&mut self, rtt: Duration) {
        self.set_rtt(rtt);
    }

    fn set_rtt(&mut self, sample: Duration) {
        let rtt = match self.rtt {
            None => sample,
            Some(rtt) => rtt.mul_f64(0.9) + sample.mul_f64(0.1),
        };
        self.rtt = Some(rtt);
        self.delay.set_rtt(rtt);
    }

    /// The peer's REMB (draft-alvestrand-rmcat-remb-03) at `now`: a cap on
    /// the target, for peers that estimate on their side, until
    /// [`REMB_TIMEOUT`] passes without another.
    pub fn on_remb(&mut self, now: Instant, bitrate: Bitrate) {
        self.remb = Some((bitrate, now));
        self.update_target(now);
    }

    /// The application wants to send at `rate`: above the target, a probe
    /// cluster at that rate (then further while results keep up), for
    /// [`SendSideBwe::poll_probe`].
    pub fn request_probe(&mut self, now: Instant, rate: Bitrate) {
        if rate > self.target {
            self.probes.request(now, rate);
        }
    }

    /// Transport-wide feedback arrived at `now`.
    pub fn on_transport_feedback(&mut self, now: Instant, feedback: &TransportFeedback) {
        // The peer reads and answers: no timeout runs.
        self.unanswered_since = None;
        self.last_timeout_cut = None;
        // The results buffer is the estimator's, reused feedback after
        // feedback; taken out while the parts read it.
        let mut results = std::mem::take(&mut self.results);
        self.history.on_feedback(feedback, &mut results);
        self.on_results(now, &results);
        self.results = results;
    }

    fn on_results(&mut self, now: Instant, results: &[PacketResult]) {
        if results.is_empty() {
            return;
        }
        let mut lost = 0;
        let mut received = 0;
        let mut newest_send = None;
        let mut probe = None;
        for r in results {
            match r.arrival {
                None => lost += 1,
                Some(arrival) => {
                    received += 1;
                    self.acked.on_received(arrival, r.size);
                    newest_send =
                        Some(newest_send.map_or(r.send_time, |t: Instant| t.max(r.send_time)));
                    if let Some((_, rate)) = self.probe_estimator.on_result(r) {
                        probe = Some(rate);
                    }
                }
            }
        }
        self.queue.on_feedback(now, results);
        if let Some(sent) = newest_send {
            self.set_rtt(now.saturating_duration_since(sent));
        }
        let before = self.delay.estimate();
        let estimate = self
            .delay
            .on_feedback(now, results, self.acked.rate(), probe);
        if self.delay.usage() == BandwidthUsage::Overusing {
            self.last_overuse = Some(now);
        }
        if estimate < before {
            self.probes.on_drop(now, before);
        }
        let congested = self
            .last_overuse
            .is_some_and(|t| now.saturating_duration_since(t) < CONGESTION_MEMORY);
        self.loss.on_feedback(
            now,
            lost,
            received,
            self.target,
            estimate,
            congested,
            self.rtt.unwrap_or(Duration::from_millis(100)),
        );
        self.update_target(now);
        if let Some(rate) = probe {
            self.probes
                .on_probe_result(now, rate.min(self.target.max(rate)));
        }
        self.probes.on_alr(now, self.alr.since(), self.target);
    }

    fn update_target(&mut self, now: Instant) {
        let mut target = self.delay.estimate();
        if let Some(limit) = self.loss.limit() {
            target = target.min(limit);
        }
        self.remb = self
            .remb
            .filter(|(_, at)| now.saturating_duration_since(*at) < REMB_TIMEOUT);
        if let Some((remb, _)) = self.remb {
            target = target.min(remb);
        }
        target = target.scale(self.queue.pushback());
        self.target = target.clamp(self.config.min, self.config.max.max(self.config.min));
    }

    /// When [`SendSideBwe::on_feedback_timeout`] has something to do:
    /// [`FEEDBACK_TIMEOUT`] after the first packet sent since the last
    /// feedback, then after each cut. `None` while nothing waits for an
    /// answer.
    pub fn feedback_deadline(&self) -> Option<Instant> {
        let since = self.unanswered_since?;
        Some(self.last_timeout_cut.unwrap_or(since) + FEEDBACK_TIMEOUT)
    }

    /// The clock reached `now`: past [`SendSideBwe::feedback_deadline`]
    /// the target falls by [`FEEDBACK_TIMEOUT_FACTOR`] (the first time
    /// from the acknowledged rate if that is lower; never under the
    /// minimum) and the delay-based rate control goes on from there once
    /// feedback comes back. Whether the target fell.
    pub fn on_feedback_timeout(&mut self, now: Instant) -> bool {
        if self.feedback_deadline().is_none_or(|d| now < d) {
            return false;
        }
        let before = self.target;
        let from = match (self.last_timeout_cut, self.acked.rate()) {
            (None, Some(acked)) => before.min(acked),
            _ => before,
        };
        self.last_timeout_cut = Some(now);
        self.delay
            .set_estimate(now, from.scale(FEEDBACK_TIMEOUT_FACTOR));
        self.update_target(now);
        self.target < before
    }

    /// The next probe cluster to send, if one is due: hand it to
    /// [`Pacer::start_probe`].
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbeCluster> {
        let drained =
            self.queue.pushback() >= 1.0 && self.delay.usage() != BandwidthUsage::Overusing;
        let cluster = self.probes.poll(now, self.target, drained)?;
        self.probe_estimator.on_cluster(&cluster);
        Some(cluster)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realtimer_rtp::rtcp::PacketArrival;

    /// Feedback on 100 packets of 1000 bytes sent 10 ms apart from `start`
    /// (sequence numbers from `base`), all arrived as sent.
    fn steady(bwe: &mut SendSideBwe, start: Instant, base: u16) -> Instant {
        for i in 0..100u16 {
            let at = start + Duration::from_millis(10 * u64::from(i));
            bwe.on_packet_sent(
                at,
                SentPacket {
                    sequence: base + i,
                    size: 1000,
                    probe_cluster: None,
                },
            );
        }
        let feedback = TransportFeedback {
            base_sequence: base,
            packets: vec![PacketArrival::Received { delta: 40 }; 100],
            ..Default::default()
        };
        let now = start + Duration::from_millis(1050);
        bwe.on_transport_feedback(now, &feedback);
        now
    }

    #[test]
    fn a_remb_caps_the_target_until_it_is_no_longer_repeated() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut bwe = SendSideBwe::new(BweConfig::default());
        bwe.on_remb(t0, Bitrate::kbps(100));
        assert_eq!(bwe.target(), Bitrate::kbps(100));
        let now = steady(&mut bwe, t0, 0);
        assert_eq!(bwe.target(), Bitrate::kbps(100));
        // No REMB for longer than REMB_TIMEOUT: the estimate alone.
        steady(&mut bwe, now + REMB_TIMEOUT, 100);
        assert!(
            bwe.target() >= BweConfig::default().start,
            "{:?}",
            bwe.target()
        );
    }

    #[test]
    fn the_target_falls_while_feedback_stops_and_climbs_once_it_is_back() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut bwe = SendSideBwe::new(BweConfig::default());
        let mut now = steady(&mut bwe, t0, 0);
        let before = bwe.target();
        assert_eq!(bwe.feedback_deadline(), None, "nothing in flight");
        // Packets go on leaving every 10 ms; no feedback comes back.
        let mut seq = 100u16;
        let mut targets = Vec::new();
        for _ in 0..600 {
            now += Duration::from_millis(10);
            bwe.on_packet_sent(
                now,
                SentPacket {
                    sequence: seq,
                    size: 1000,
                    probe_cluster: None,
                },
            );
            seq += 1;
            bwe.on_feedback_timeout(now);
            targets.push(bwe.target());
        }
        // Nothing for the first second, then halved each second.
        assert_eq!(targets[95], before, "{targets:?}");
        assert!(targets[105] <= before.scale(0.5), "{:?}", targets[105]);
        assert!(targets[205] <= before.scale(0.25), "{:?}", targets[205]);
        assert_eq!(bwe.target(), BweConfig::default().min);
        // Feedback comes back: the timeout stops, the estimate climbs.
        let low = bwe.target();
        let mut base = seq;
        for _ in 0..5 {
            now = steady(&mut bwe, now, base);
            base += 100;
            assert!(!bwe.on_feedback_timeout(now));
        }
        assert!(bwe.target() > low, "{:?}", bwe.target());
    }

    #[test]
    fn the_application_asking_for_more_starts_a_probe_there() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let config = BweConfig {
            initial_probing: false,
            ..BweConfig::default()
        };
        let mut bwe = SendSideBwe::new(config);
        assert_eq!(bwe.poll_probe(t0), None);
        // Below the target: nothing to find out.
        bwe.request_probe(t0, Bitrate::kbps(200));
        assert_eq!(bwe.poll_probe(t0), None);
        bwe.request_probe(t0, Bitrate::kbps(2500));
        let cluster = bwe.poll_probe(t0).expect("a probe");
        assert_eq!(cluster.rate, Bitrate::kbps(2500));
        assert_eq!(bwe.poll_probe(t0), None);
    }
}
