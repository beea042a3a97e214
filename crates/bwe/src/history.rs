//! What was sent, by transport-wide sequence number, until feedback says
//! what became of it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use realtimer_rtp::rtcp::TransportFeedback;

use crate::ProbeClusterId;

/// Most packets remembered; the oldest go first.
pub const MAX_HISTORY: usize = 16_384;
/// Packets older than this are forgotten: feedback for them is not coming.
const MAX_AGE: Duration = Duration::from_secs(60);

/// A packet as it leaves: what the estimator needs to know of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentPacket {
    /// Its transport-wide sequence number.
    pub sequence: u16,
    /// Its size on the wire (RTP header, payload, padding; what the
    /// bottleneck carries, give or take the same UDP/IP overhead for all).
    pub size: usize,
    /// The probe cluster it belongs to, if it was sent as a probe.
    pub probe_cluster: Option<ProbeClusterId>,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    send_time: Instant,
    size: usize,
    probe_cluster: Option<ProbeClusterId>,
    reported: bool,
}

/// What feedback said of one packet, joined with how it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketResult {
    pub(crate) send_time: Instant,
    pub(crate) size: usize,
    pub(crate) probe_cluster: Option<ProbeClusterId>,
    /// Arrival in µs in the receiver's time base; `None` when lost.
    pub(crate) arrival: Option<i64>,
}

/// The packets sent and not yet reported on, in a window of consecutive
/// extended sequence numbers (a packet takes its number as it leaves, so
/// they are consecutive): one slot a packet, reused, where a map
/// allocated and freed a node for each (perf put the feedback path's
/// allocations above the estimator's own work).
#[derive(Debug, Clone, Default)]
pub(crate) struct SendHistory {
    /// The slot of extended sequence number `first + i` at `i`; `None`
    /// once reported received.
    window: VecDeque<Option<Record>>,
    first: u64,
    highest: Option<u64>,
}

impl SendHistory {
    pub(crate) fn on_sent(&mut self, now: Instant, packet: SentPacket) {
        let seq = self.extend(packet.sequence);
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        let record = Some(Record {
            send_time: now,
            size: packet.size,
            probe_cluster: packet.probe_cluster,
            reported: false,
        });
        let end = self.first + self.window.len() as u64;
        if self.window.is_empty() || seq >= end + MAX_HISTORY as u64 || seq < self.first {
            if seq < self.first && !self.window.is_empty() {
                // Older than the window: its feedback would find nothing.
                return;
            }
            self.window.clear();
            self.first = seq;
            self.window.push_back(record);
        } else if seq < end {
            self.window[(seq - self.first) as usize] = record;
        } else {
            // A number skipped (a packet refused after it was numbered)
            // leaves an empty slot.
            for _ in end..seq {
                self.window.push_back(None);
            }
            self.window.push_back(record);
        }
        while self.window.len() > MAX_HISTORY
            || self.window.front().is_some_and(|r| match r {
                None => true,
                Some(r) => now.saturating_duration_since(r.send_time) > MAX_AGE,
            })
        {
            self.window.pop_front();
            self.first += 1;
        }
    }

    /// The packets `feedback` reports on for the first time, in sequence
    /// (so send) order, into `results` (cleared first, its allocation
    /// kept from one feedback to the next). A packet reported lost and
    /// later received counts as received then.
    pub(crate) fn on_feedback(
        &mut self,
        feedback: &TransportFeedback,
        results: &mut Vec<PacketResult>,
    ) {
        results.clear();
        for (sequence, arrival) in feedback.arrivals() {
            let seq = self.extend(sequence);
            let Some(index) = seq.checked_sub(self.first) else {
                continue;
            };
            let Some(slot) = self.window.get_mut(index as usize) else {
                continue;
            };
            let Some(record) = slot.as_mut() else {
                continue;
            };
            if record.reported && arrival.is_none() {
                continue;
            }
            record.reported = true;
            results.push(PacketResult {
                send_time: record.send_time,
                size: record.size,
                probe_cluster: record.probe_cluster,
                arrival,
            });
            if arrival.is_some() {
                *slot = None;
            }
        }
        while self.window.front().is_some_and(Option::is_none) {
            self.window.pop_front();
            self.first += 1;
        }
    }

    /// The extended sequence number closest to the highest sent.
    fn extend(&self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            return u64::from(seq) + (1 << 32);
        };
        let diff = seq.wrapping_sub(highest as u16) as i16;
        highest.wrapping_add_signed(i64::from(diff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realtimer_rtp::rtcp::PacketArrival;

    #[test]
    fn a_skipped_number_leaves_a_hole_and_the_window_stays_bounded() {
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let mut h = SendHistory::default();
        let sent = |h: &mut SendHistory, seq: u16| {
            h.on_sent(
                start,
                SentPacket {
                    sequence: seq,
                    size: 1000,
                    probe_cluster: None,
                },
            )
        };
        for seq in [0u16, 1, 2, 4] {
            sent(&mut h, seq);
        }
        let feedback = TransportFeedback {
            base_sequence: 0,
            packets: vec![PacketArrival::Received { delta: 4 }; 5],
            ..Default::default()
        };
        let mut results = Vec::new();
        h.on_feedback(&feedback, &mut results);
        assert_eq!(results.len(), 4);
        // Reported packets leave; nothing reported, the window is bounded.
        assert!(h.window.is_empty());
        for seq in 0..3 * MAX_HISTORY {
            sent(&mut h, seq as u16);
        }
        assert_eq!(h.window.len(), MAX_HISTORY);
    }

    #[test]
    fn joins_feedback_with_sends_across_the_wrap() {
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let mut h = SendHistory::default();
        for (i, seq) in [65534u16, 65535, 0].into_iter().enumerate() {
            let at = start + Duration::from_millis(i as u64);
            h.on_sent(
                at,
                SentPacket {
                    sequence: seq,
                    size: 100 + i,
                    probe_cluster: None,
                },
            );
        }
        let feedback = TransportFeedback {
            base_sequence: 65534,
            packets: vec![
                PacketArrival::Received { delta: 4 },
                PacketArrival::NotReceived,
                PacketArrival::Received { delta: 8 },
            ],
            ..Default::default()
        };
        let mut results = Vec::new();
        h.on_feedback(&feedback, &mut results);
        let summary: Vec<_> = results.iter().map(|r| (r.size, r.arrival)).collect();
        assert_eq!(summary, [(100, Some(1000)), (101, None), (102, Some(3000))]);
        // Reported again: only the late arrival of the lost one counts.
        let again = TransportFeedback {
            base_sequence: 65535,
            packets: vec![PacketArrival::Received { delta: 20 }],
            ..Default::default()
        };
        h.on_feedback(&again, &mut results);
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].size, 101);
        h.on_feedback(&feedback, &mut results);
        assert!(results.is_empty());
    }
}
