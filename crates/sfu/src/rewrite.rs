//! One forwarded stream as one subscriber sees it: the publisher's
//! sequence numbers and timestamps mapped onto a stream that never jumps,
//! whatever was skipped (a pause, a layer or source switch).
//!
//! RFC 3550 §5.1: a receiver takes a sequence gap for loss (and asks for
//! the packets, RFC 4585 §6.2.1) and a timestamp jump for a long silence;
//! RFC 7667 §3.7 (selective forwarding middlebox) rewrites both so a
//! switch looks to the receiver like the same source carrying on.

use std::time::Instant;

/// Maps incoming (sequence number, timestamp) pairs to outgoing ones.
/// After [`StreamRewriter::resync`] the next packet continues right after
/// the last one sent: sequence number + 1, timestamp advanced by the
/// wall-clock time since, in the codec's clock.
#[derive(Debug, Clone)]
pub struct StreamRewriter {
    clock_rate: u32,
    mapping: Option<Mapping>,
    /// The newest packet sent: its outgoing sequence number, timestamp
    /// and when it went.
    last: Option<(u16, u32, Instant)>,
}

#[derive(Debug, Clone, Copy)]
struct Mapping {
    sequence_offset: u16,
    timestamp_offset: u32,
    /// The first incoming sequence number of this mapping: anything older
    /// belongs to what came before the switch and is not forwarded.
    first: u16,
}

/// Whether sequence number `a` is newer than `b` (RFC 3550 §A.1, modulo
/// 2^16).
fn newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

impl StreamRewriter {
    /// A rewriter for a codec clocked at `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> StreamRewriter {
        StreamRewriter {
            clock_rate: clock_rate.max(1),
            mapping: None,
            last: None,
        }
    }

    /// The clock of the codec it rewrites, Hz.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// The source changes or resumes after a pause: the next packet given
    /// starts a new mapping.
    pub fn resync(&mut self) {
        self.mapping = None;
    }

    /// Whether the next packet starts a new mapping.
    pub fn resyncing(&self) -> bool {
        self.mapping.is_none()
    }

    /// The outgoing sequence number and timestamp of an incoming packet,
    /// or `None` for a packet older than the last resync (a late
    /// retransmission of the previous source: its place is taken).
    pub fn rewrite(&mut self, now: Instant, sequence: u16, timestamp: u32) -> Option<(u16, u32)> {
        let mapping = match self.mapping {
            Some(m) => {
                if sequence != m.first && !newer(sequence, m.first) {
                    return None;
                }
                m
            }
            None => {
                let (out_sequence, out_timestamp) = match self.last {
                    Some((seq, ts, at)) => {
                        let elapsed = now.saturating_duration_since(at);
                        let ticks = (elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000)
                            .clamp(1, u128::from(u32::MAX / 2));
                        (seq.wrapping_add(1), ts.wrapping_add(ticks as u32))
                    }
                    None => (sequence, timestamp),
                };
                let m = Mapping {
                    sequence_offset: out_sequence.wrapping_sub(sequence),
                    timestamp_offset: out_timestamp.wrapping_sub(timestamp),
                    first: sequence,
                };
                self.mapping = Some(m);
                m
            }
        };
        let out = (
            sequence.wrapping_add(mapping.sequence_offset),
            timestamp.wrapping_add(mapping.timestamp_offset),
        );
        if self.last.is_none_or(|(seq, _, _)| newer(out.0, seq)) {
            self.last = Some((out.0, out.1, now));
        }
        Some(out)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the clock once for a start time
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn follows_the_source_and_keeps_late_packets() {
        let t0 = Instant::now();
        let mut r = StreamRewriter::new(90_000);
        assert_eq!(r.rewrite(t0, 65534, 1000), Some((65534, 1000)));
        assert_eq!(r.rewrite(t0, 0, 4000), Some((0, 4000)));
        // 65535 was late: it keeps its place.
        assert_eq!(r.rewrite(t0, 65535, 1000), Some((65535, 1000)));
    }

    #[test]
    fn a_switch_continues_where_the_last_source_stopped() {
        let t0 = Instant::now();
        let mut r = StreamRewriter::new(90_000);
        r.rewrite(t0, 100, 9000);
        r.rewrite(t0, 101, 9000);
        r.resync();
        // The new source numbers from elsewhere; 100 ms later.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(r.rewrite(t1, 40_000, 123), Some((102, 9000 + 9000)));
        assert_eq!(r.rewrite(t1, 40_001, 3123), Some((103, 9000 + 9000 + 3000)));
        // A late packet of the old source (or older than the switch) is
        // not forwarded: its sequence number is taken.
        assert_eq!(r.rewrite(t1, 39_999, 0), None);
    }

    #[test]
    fn a_pause_leaves_no_gap() {
        let t0 = Instant::now();
        let mut r = StreamRewriter::new(48_000);
        for i in 0..10u16 {
            r.rewrite(
                t0 + Duration::from_millis(20 * u64::from(i)),
                i,
                960 * u32::from(i),
            );
        }
        r.resync();
        // 500 packets skipped while paused; resumed 10 s later.
        let t1 = t0 + Duration::from_millis(180 + 10_000);
        let (seq, ts) = r.rewrite(t1, 510, 960 * 510).unwrap();
        assert_eq!(seq, 10);
        assert_eq!(ts, 960 * 9 + 480_000);
    }
}
