//! What the forwarding task counts, for `/metrics`: the unit's counters
//! ([`realtimer_sfu::SfuStats`]), its participants and rooms, the events
//! a signaling front did not read, and how long a datagram stays in the
//! server (from the kernel's receive stamp to the datagrams it caused
//! handed back to the kernel): the added latency of forwarding, measured
//! where it happens, the socket's queue included.
//!
//! The task owns the unit; it copies the counters here after each turn,
//! and a `/metrics` scrape reads them without asking it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use realtimer_sfu::SfuStats;

use crate::latency::LatencyHistogram;

/// The forwarding task's counters, shared with the HTTP side.
#[derive(Debug, Default)]
pub struct SfuMetrics {
    forwarded: AtomicU64,
    dropped_queue_full: AtomicU64,
    unrouted: AtomicU64,
    routed_addresses: AtomicU64,
    datagrams_received: AtomicU64,
    datagrams_sent: AtomicU64,
    send_errors: AtomicU64,
    events_dropped: AtomicU64,
    whip_sessions_refused: AtomicU64,
    participants: AtomicU64,
    rooms: AtomicU64,
    /// From a datagram's arrival to each datagram its handling sent.
    dwell: LatencyHistogram,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SfuMetricsSnapshot {
    /// RTP packets written to subscribers' connections.
    pub forwarded: u64,
    /// Forwards dropped because a subscriber's send queue was full.
    pub dropped_queue_full: u64,
    /// Datagrams no participant claimed.
    pub unrouted: u64,
    /// Source addresses the unit routes datagrams by (bounded by its
    /// participants' ICE candidates).
    pub routed_addresses: u64,
    /// Datagrams read from the unit's sockets.
    pub datagrams_received: u64,
    /// Datagrams handed to the kernel (those it refused too).
    pub datagrams_sent: u64,
    /// Of those, the ones the kernel refused (its buffer full, an
    /// unreachable peer).
    pub send_errors: u64,
    /// Events a participant's signaling front did not take in time.
    pub events_dropped: u64,
    /// WHIP/WHEP offers refused because `MAX_SESSIONS` sessions exist.
    pub whip_sessions_refused: u64,
    /// Participants now.
    pub participants: u64,
    /// Rooms now.
    pub rooms: u64,
}

impl SfuMetrics {
    /// The unit's counters after a turn of the task.
    pub(crate) fn update(&self, stats: SfuStats, participants: usize, rooms: usize) {
        self.forwarded.store(stats.forwarded, Ordering::Relaxed);
        self.dropped_queue_full
            .store(stats.dropped_queue_full, Ordering::Relaxed);
        self.unrouted.store(stats.unrouted, Ordering::Relaxed);
        self.routed_addresses
            .store(stats.routed_addresses, Ordering::Relaxed);
        self.participants
            .store(participants as u64, Ordering::Relaxed);
        self.rooms.store(rooms as u64, Ordering::Relaxed);
    }

    pub(crate) fn received(&self) {
        self.datagrams_received.fetch_add(1, Ordering::Relaxed);
    }

    /// `count` datagrams handed to the kernel `dwell` after the one whose
    /// handling made them arrived (`None`: made by a timer or a command).
    pub(crate) fn sent(&self, dwell: Option<Duration>, count: u64) {
        self.datagrams_sent.fetch_add(count, Ordering::Relaxed);
        if let Some(d) = dwell {
            self.dwell.record_many(d, count);
        }
    }

    /// A WHIP/WHEP offer refused: the sessions are at their bound.
    pub(crate) fn whip_session_refused(&self) {
        self.whip_sessions_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Of the datagrams sent, `count` the kernel refused (its buffer full,
    /// an unreachable peer).
    pub(crate) fn refused(&self, count: u64) {
        self.send_errors.fetch_add(count, Ordering::Relaxed);
    }

    pub(crate) fn event_dropped(&self) -> u64 {
        self.events_dropped.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The counters now.
    pub fn snapshot(&self) -> SfuMetricsSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SfuMetricsSnapshot {
            forwarded: load(&self.forwarded),
            dropped_queue_full: load(&self.dropped_queue_full),
            unrouted: load(&self.unrouted),
            routed_addresses: load(&self.routed_addresses),
            datagrams_received: load(&self.datagrams_received),
            datagrams_sent: load(&self.datagrams_sent),
            send_errors: load(&self.send_errors),
            events_dropped: load(&self.events_dropped),
            whip_sessions_refused: load(&self.whip_sessions_refused),
            participants: load(&self.participants),
            rooms: load(&self.rooms),
        }
    }

    /// Everything in the Prometheus text format (0.0.4), names prefixed
    /// `realtimer_sfu_`.
    pub fn prometheus(&self) -> String {
        let s = self.snapshot();
        let lines = [
            (
                "participants",
                "gauge",
                "Participants of the forwarding unit now.",
                s.participants,
            ),
            (
                "rooms",
                "gauge",
                "Rooms of the forwarding unit now.",
                s.rooms,
            ),
            (
                "forwarded_packets_total",
                "counter",
                "RTP packets written to subscribers' connections.",
                s.forwarded,
            ),
            (
                "dropped_queue_full_total",
                "counter",
                "Forwarded packets dropped because the subscriber's send queue was full.",
                s.dropped_queue_full,
            ),
            (
                "unrouted_datagrams_total",
                "counter",
                "Datagrams no participant claimed.",
                s.unrouted,
            ),
            (
                "routed_addresses",
                "gauge",
                "Source addresses datagrams are routed by (ICE candidates of the participants).",
                s.routed_addresses,
            ),
            (
                "datagrams_received_total",
                "counter",
                "Datagrams read from the forwarding unit's sockets.",
                s.datagrams_received,
            ),
            (
                "datagrams_sent_total",
                "counter",
                "Datagrams the forwarding unit handed to the kernel.",
                s.datagrams_sent,
            ),
            (
                "send_errors_total",
                "counter",
                "Of the datagrams sent, those the kernel refused.",
                s.send_errors,
            ),
            (
                "events_dropped_total",
                "counter",
                "Participant events dropped because their signaling front did not read.",
                s.events_dropped,
            ),
            (
                "whip_sessions_refused_total",
                "counter",
                "WHIP/WHEP offers refused because the server holds its most sessions.",
                s.whip_sessions_refused,
            ),
        ];
        let mut out: String = lines
            .iter()
            .map(|(name, kind, help, value)| {
                format!(
                    "# HELP realtimer_sfu_{name} {help}\n# TYPE realtimer_sfu_{name} {kind}\nrealtimer_sfu_{name} {value}\n"
                )
            })
            .collect();
        out.push_str(&self.dwell.prometheus(
            "realtimer_sfu_dwell_seconds",
            "From a datagram's arrival (kernel stamp) to each datagram its handling sent (forwarding's added latency).",
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let m = SfuMetrics::default();
        let mut stats = SfuStats::default();
        stats.forwarded = 7;
        stats.dropped_queue_full = 2;
        stats.unrouted = 1;
        stats.routed_addresses = 4;
        m.update(stats, 3, 1);
        m.received();
        m.sent(Some(Duration::from_micros(50)), 1);
        m.sent(None, 1);
        m.refused(1);
        assert_eq!(m.event_dropped(), 1);
        m.whip_session_refused();
        let text = m.prometheus();
        for line in [
            "realtimer_sfu_participants 3\n",
            "realtimer_sfu_rooms 1\n",
            "realtimer_sfu_forwarded_packets_total 7\n",
            "realtimer_sfu_dropped_queue_full_total 2\n",
            "realtimer_sfu_unrouted_datagrams_total 1\n",
            "realtimer_sfu_routed_addresses 4\n",
            "realtimer_sfu_datagrams_received_total 1\n",
            "realtimer_sfu_datagrams_sent_total 2\n",
            "realtimer_sfu_send_errors_total 1\n",
            "realtimer_sfu_events_dropped_total 1\n",
            "realtimer_sfu_whip_sessions_refused_total 1\n",
            "# TYPE realtimer_sfu_dwell_seconds histogram\n",
            "realtimer_sfu_dwell_seconds_count 1\n",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
