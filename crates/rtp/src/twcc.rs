//! The receiver's side of transport-wide congestion control
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01): the sequence
//! number header extension (§2) and a generator of feedback packets (§3.1)
//! from what arrived. Time comes from the caller.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::nack::extend;
use crate::rtcp::{PacketArrival, TransportFeedback, DELTA_TICK_MICROS, REFERENCE_TIME_MICROS};

/// The `a=extmap` URI of the transport-wide sequence number (§2).
pub const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// §2: the extension element carries the 16-bit transport-wide sequence
/// number; `None` when the element has another length.
pub fn parse_transport_sequence(data: &[u8]) -> Option<u16> {
    <[u8; 2]>::try_from(data).ok().map(u16::from_be_bytes)
}

/// Most arrivals waiting for feedback; older ones are reported (or given
/// up) first, so a peer sending faster than we report cannot grow memory.
pub const MAX_PENDING_ARRIVALS: usize = 2048;
/// Most packet statuses in one feedback: about 1 KiB of RTCP at worst
/// (a status vector chunk per 7 packets plus two bytes of delta each).
const MAX_STATUSES: u64 = 512;

/// How often feedback goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackConfig {
    /// Feedback goes out this long after the first packet it reports
    /// arrived (libwebrtc sends every 50-250 ms depending on the rate).
    pub interval: Duration,
    /// Or as soon as this many packets wait, whichever comes first.
    pub max_packets: usize,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(50),
            max_packets: 100,
        }
    }
}

/// Records when packets numbered by the transport-wide sequence arrived and
/// builds feedback for them (one generator per transport, whatever the
/// SSRC).
#[derive(Debug, Clone)]
pub struct TransportFeedbackGenerator {
    config: FeedbackConfig,
    sender_ssrc: u32,
    media_ssrc: u32,
    /// Arrival times count 250 µs ticks since this instant.
    epoch: Option<Instant>,
    highest: Option<u64>,
    /// The first extended sequence number not yet reported.
    next_base: Option<u64>,
    arrivals: BTreeMap<u64, Instant>,
    feedback_count: u8,
    due: Option<Instant>,
}

impl TransportFeedbackGenerator {
    /// A generator whose feedback says `sender_ssrc` sent it about
    /// `media_ssrc` (any of the received streams).
    pub fn new(config: FeedbackConfig, sender_ssrc: u32, media_ssrc: u32) -> Self {
        Self {
            config,
            sender_ssrc,
            media_ssrc,
            epoch: None,
            highest: None,
            next_base: None,
            arrivals: BTreeMap::new(),
            feedback_count: 0,
            due: None,
        }
    }

    /// Records that the packet numbered `sequence` arrived at `now`. One
    /// already reported is ignored (its loss was said; the sender has moved
    /// on), a duplicate keeps its first arrival.
    pub fn on_packet(&mut self, now: Instant, sequence: u16) {
        let seq = match self.highest {
            Some(highest) => extend(highest, sequence),
            None => u64::from(sequence) + (1 << 32),
        };
        if self.next_base.is_some_and(|base| seq < base) {
            return;
        }
        self.epoch.get_or_insert(now);
        self.next_base.get_or_insert(seq);
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        self.arrivals.entry(seq).or_insert(now);
        if self.arrivals.len() > MAX_PENDING_ARRIVALS {
            if let Some((oldest, _)) = self.arrivals.pop_first() {
                self.next_base = Some(oldest + 1);
            }
        }
        self.due.get_or_insert(now + self.config.interval);
    }

    /// When [`TransportFeedbackGenerator::poll_feedback`] has something to
    /// send.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due
    }

    /// The next feedback packet, if one is due at `now` (the interval has
    /// passed, or enough packets wait). Call until `None`: a long gap or a
    /// delta over ±8 s splits the report.
    pub fn poll_feedback(&mut self, now: Instant) -> Option<TransportFeedback> {
        let due =
            self.due.is_some_and(|d| d <= now) || self.arrivals.len() >= self.config.max_packets;
        if !due {
            return None;
        }
        let (Some(epoch), Some(mut base)) = (self.epoch, self.next_base) else {
            self.due = None;
            return None;
        };
        let Some((&first_seq, &first_arrival)) = self.arrivals.first_key_value() else {
            self.due = None;
            return None;
        };
        // Losses only until the first arrival would not fit: start later.
        if first_seq - base >= MAX_STATUSES {
            base = first_seq;
        }
        let ticks = |at: Instant| {
            let micros = i64::try_from(at.duration_since(epoch).as_micros()).unwrap_or(i64::MAX);
            (micros + DELTA_TICK_MICROS / 2) / DELTA_TICK_MICROS
        };
        let ticks_per_reference = REFERENCE_TIME_MICROS / DELTA_TICK_MICROS;
        let reference = ticks(first_arrival) / ticks_per_reference;
        let mut previous = reference * ticks_per_reference;
        let mut packets = Vec::new();
        let mut last = base;
        for (&seq, &arrival) in &self.arrivals {
            if seq - base >= MAX_STATUSES {
                break;
            }
            let t = ticks(arrival);
            let Ok(delta) = i16::try_from(t - previous) else {
                break;
            };
            packets.resize((seq - base) as usize, PacketArrival::NotReceived);
            packets.push(PacketArrival::Received { delta });
            previous = t;
            last = seq;
        }
        self.arrivals = self.arrivals.split_off(&(last + 1));
        self.next_base = Some(last + 1);
        let feedback = TransportFeedback {
            sender_ssrc: self.sender_ssrc,
            media_ssrc: self.media_ssrc,
            base_sequence: base as u16,
            reference_time: (reference as u32) & 0x00FF_FFFF,
            feedback_count: self.feedback_count,
            packets,
        };
        self.feedback_count = self.feedback_count.wrapping_add(1);
        self.due = (!self.arrivals.is_empty()).then_some(now + self.config.interval);
        if self.arrivals.len() >= self.config.max_packets {
            self.due = Some(now);
        }
        Some(feedback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Arrival times as the sender rebuilds them, relative to the first.
    fn relative_arrivals(f: &TransportFeedback) -> Vec<(u16, Option<i64>)> {
        let all: Vec<_> = f.arrivals().collect();
        let first = all.iter().find_map(|(_, a)| *a).unwrap();
        all.into_iter()
            .map(|(s, a)| (s, a.map(|a| a - first)))
            .collect()
    }

    #[test]
    fn reports_arrivals_losses_and_reordering_after_the_interval() {
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let mut g = TransportFeedbackGenerator::new(FeedbackConfig::default(), 1, 2);
        g.on_packet(start, 65534);
        g.on_packet(start + ms(5), 0); // 65535 lost so far, wraps
        g.on_packet(start + ms(6), 2);
        g.on_packet(start + ms(7), 1); // reordered
        g.on_packet(start + ms(8), 1); // duplicate: first arrival kept
        assert_eq!(g.poll_timeout(), Some(start + ms(50)));
        assert!(g.poll_feedback(start + ms(49)).is_none());
        let f = g.poll_feedback(start + ms(50)).unwrap();
        assert_eq!(
            (f.sender_ssrc, f.media_ssrc, f.base_sequence),
            (1, 2, 65534)
        );
        assert_eq!(
            relative_arrivals(&f),
            [
                (65534, Some(0)),
                (65535, None),
                (0, Some(5000)),
                (1, Some(7000)),
                (2, Some(6000)),
            ]
        );
        // Written and parsed: the same.
        let mut out = Vec::new();
        f.write(&mut out).unwrap();
        assert_eq!(g.poll_timeout(), None);
        // 65535 arriving now is too late; 3 starts the next feedback.
        g.on_packet(start + ms(60), 65535);
        assert_eq!(g.poll_timeout(), None);
        g.on_packet(start + ms(61), 3);
        let f = g.poll_feedback(start + ms(111)).unwrap();
        assert_eq!((f.base_sequence, f.feedback_count), (3, 1));
        assert_eq!(f.packets.len(), 1);
    }

    #[test]
    fn many_packets_trigger_feedback_and_memory_is_bounded() {
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let config = FeedbackConfig {
            interval: ms(1000),
            max_packets: 10,
        };
        let mut g = TransportFeedbackGenerator::new(config, 1, 2);
        for i in 0..10u16 {
            g.on_packet(start + ms(u64::from(i)), i);
        }
        assert_eq!(g.poll_feedback(start + ms(10)).unwrap().packets.len(), 10);
        // Nobody polls: at most MAX_PENDING_ARRIVALS are kept.
        for i in 0..5000u16 {
            g.on_packet(start + ms(20), 10 + i);
        }
        let mut reported = 0;
        while let Some(f) = g.poll_feedback(start + ms(21)) {
            assert!(f.packets.len() as u64 <= MAX_STATUSES);
            reported += f.packets.len();
        }
        assert_eq!(reported, MAX_PENDING_ARRIVALS);
    }

    #[test]
    fn a_long_pause_splits_the_deltas() {
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let mut g = TransportFeedbackGenerator::new(FeedbackConfig::default(), 1, 2);
        g.on_packet(start, 7);
        g.on_packet(start + Duration::from_secs(10), 8);
        let first = g.poll_feedback(start + Duration::from_secs(10)).unwrap();
        assert_eq!(first.packets.len(), 1);
        assert!(g.poll_feedback(start + Duration::from_secs(10)).is_none());
        let second = g
            .poll_feedback(start + Duration::from_secs(10) + ms(50))
            .unwrap();
        assert_eq!(second.base_sequence, 8);
        let at = |f: &TransportFeedback| f.arrivals().next().unwrap().1.unwrap();
        assert_eq!(at(&second) - at(&first), 10_000_000);
        assert_eq!(parse_transport_sequence(&[0x12, 0x34]), Some(0x1234));
        assert_eq!(parse_transport_sequence(&[1]), None);
    }
}
