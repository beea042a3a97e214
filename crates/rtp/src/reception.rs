//! Reception statistics of one source, for the report blocks a receiver
//! sends (RFC 3550 §6.4.1, Appendix A.1, A.3 and A.8), on the caller's
//! clock.

use std::time::{Duration, Instant};

use crate::rtcp::{ReportBlock, SenderReport};

/// RFC 3550 Appendix A.1: a jump ahead of this many packets is a restart
/// or a mistake, not loss.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 Appendix A.1: packets this far behind the highest are late.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u64 = 1 << 16;

/// What a receiver has seen of one source: sequence numbers, loss,
/// interarrival jitter and the last sender report, turned into a
/// [`ReportBlock`] by [`ReceptionStats::report_block`].
#[derive(Debug, Clone)]
pub struct ReceptionStats {
    ssrc: u32,
    clock_rate: u32,
    /// Sequence state; `None` before the first packet.
    seq: Option<SequenceState>,
    /// Arrival time and RTP timestamp of the previous packet counted.
    previous: Option<(Instant, u32)>,
    /// Interarrival jitter estimate, in timestamp units.
    jitter: f64,
    /// Middle 32 bits of the last SR's NTP time, and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

/// RFC 3550 Appendix A.1's `source` sequence fields.
#[derive(Debug, Clone, Copy)]
struct SequenceState {
    max_seq: u16,
    /// Shifted count of sequence number cycles.
    cycles: u64,
    base_seq: u64,
    /// The sequence number after a suspicious jump; a packet with it
    /// confirms the jump as a restart.
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
}

impl SequenceState {
    fn new(seq: u16) -> Self {
        Self {
            max_seq: seq,
            cycles: 0,
            base_seq: u64::from(seq),
            bad_seq: None,
            received: 1,
            expected_prior: 0,
            received_prior: 0,
        }
    }

    fn extended_max(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    fn expected(&self) -> u64 {
        self.extended_max() + 1 - self.base_seq
    }

    /// RFC 3550 Appendix A.1 `update_seq`, without the probation of new
    /// sources (a WebRTC source is declared in SDP). Returns whether the
    /// packet counts.
    fn update(&mut self, seq: u16) -> bool {
        let delta = seq.wrapping_sub(self.max_seq);
        if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A big jump: the source restarted, or this packet is stray.
            if self.bad_seq == Some(seq) {
                *self = Self::new(seq);
                return true;
            }
            self.bad_seq = Some(seq.wrapping_add(1));
            return false;
        }
        // Otherwise a duplicate or a late packet: counted, max unchanged.
        self.received += 1;
        true
    }
}

impl ReceptionStats {
    /// Statistics of source `ssrc` whose RTP clock runs at `clock_rate` Hz
    /// (e.g. 90000 for video, 48000 for Opus).
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        Self {
            ssrc,
            clock_rate,
            seq: None,
            previous: None,
            jitter: 0.0,
            last_sr: None,
        }
    }

    /// Records an RTP packet of the source that arrived at `now`.
    pub fn on_rtp(&mut self, now: Instant, sequence_number: u16, timestamp: u32) {
        let counted = match &mut self.seq {
            Some(state) => state.update(sequence_number),
            None => {
                self.seq = Some(SequenceState::new(sequence_number));
                true
            }
        };
        if counted {
            self.update_jitter(now, timestamp);
        }
    }

    /// RFC 3550 §6.4.1, Appendix A.8: J += (|D(i-1, i)| - J) / 16, with
    /// D(i-1, i) = (R_i - R_i-1) - (S_i - S_i-1) in timestamp units. The
    /// timestamp difference is taken modulo 2^32, so the wrap of the RTP
    /// timestamp is no jump.
    fn update_jitter(&mut self, now: Instant, timestamp: u32) {
        if let Some((then, previous)) = self.previous {
            let arrival =
                now.saturating_duration_since(then).as_secs_f64() * f64::from(self.clock_rate);
            let sent = f64::from(timestamp.wrapping_sub(previous) as i32);
            self.jitter += ((arrival - sent).abs() - self.jitter) / 16.0;
        }
        self.previous = Some((now, timestamp));
    }

    /// Packets lost since the first one (RFC 3550 §6.4.1 "cumulative
    /// number of packets lost", before the 24-bit clamp): expected minus
    /// received, negative when duplicates outnumber losses; 0 before any.
    pub fn cumulative_lost(&self) -> i64 {
        self.seq
            .as_ref()
            .map_or(0, |s| s.expected() as i64 - s.received as i64)
    }

    /// The interarrival jitter estimate in seconds (RFC 3550 §6.4.1).
    pub fn jitter_seconds(&self) -> f64 {
        self.jitter / f64::from(self.clock_rate.max(1))
    }

    /// Records a sender report of the source that arrived at `now`, for
    /// the LSR and DLSR fields.
    pub fn on_sender_report(&mut self, now: Instant, report: &SenderReport) {
        self.last_sr = Some(((report.ntp_time >> 16) as u32, now));
    }

    /// The report block to send at `now` (RFC 3550 §6.4.1): loss since the
    /// previous call and since the start, extended highest sequence number,
    /// jitter, and the last SR's time and age. `None` before any packet.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let state = self.seq.as_mut()?;
        let expected = state.expected();
        // RFC 3550 Appendix A.3: the interval since the previous report.
        let expected_interval = expected - state.expected_prior;
        let received_interval = state.received - state.received_prior;
        state.expected_prior = expected;
        state.received_prior = state.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let cumulative_lost =
            (expected as i64 - state.received as i64).clamp(-0x80_0000, 0x7F_FFFF) as i32;
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => (lsr, to_1_65536(now.saturating_duration_since(at))),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost,
            extended_highest_sequence: state.extended_max() as u32,
            jitter: self.jitter.round() as u32,
            last_sr,
            delay_since_last_sr,
        })
    }
}

/// A duration in units of 1/65536 s (RFC 3550 §6.4.1 DLSR), saturating.
fn to_1_65536(d: Duration) -> u32 {
    (d.as_secs_f64() * 65536.0).min(f64::from(u32::MAX)) as u32
}

impl ReportBlock {
    /// RFC 3550 §6.4.1: the round-trip time the sender of an SR computes
    /// from a block that reports on it, given the block's arrival time as a
    /// 64-bit NTP timestamp: A - LSR - DLSR. `None` if the block names no
    /// SR or the result is negative (clocks or a stale block).
    pub fn round_trip_time(&self, arrival_ntp: u64) -> Option<Duration> {
        if self.last_sr == 0 {
            return None;
        }
        let arrival = (arrival_ntp >> 16) as u32;
        let rtt = arrival
            .wrapping_sub(self.last_sr)
            .wrapping_sub(self.delay_since_last_sr);
        // A wrapped (negative) result shows as a huge value.
        (rtt < 1 << 31).then(|| Duration::from_secs_f64(f64::from(rtt) / 65536.0))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the clock once for a start time
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds sequence numbers 20 ms apart (timestamps 960 apart at 48 kHz).
    fn feed(stats: &mut ReceptionStats, start: Instant, seqs: impl IntoIterator<Item = u16>) {
        for (i, seq) in seqs.into_iter().enumerate() {
            stats.on_rtp(
                start + 20 * MS * i as u32,
                seq,
                u32::from(seq).wrapping_mul(960),
            );
        }
    }

    #[test]
    fn no_loss_no_jitter() {
        let t0 = Instant::now();
        let mut stats = ReceptionStats::new(7, 48_000);
        assert_eq!(stats.report_block(t0), None);
        feed(&mut stats, t0, 1000..1100);
        let block = stats.report_block(t0 + 2 * Duration::from_secs(1)).unwrap();
        assert_eq!(block.ssrc, 7);
        assert_eq!((block.fraction_lost, block.cumulative_lost), (0, 0));
        assert_eq!(block.extended_highest_sequence, 1099);
        assert_eq!(block.jitter, 0);
        assert_eq!(stats.jitter_seconds(), 0.0);
        assert_eq!((block.last_sr, block.delay_since_last_sr), (0, 0));
    }

    #[test]
    fn loss_fraction_is_per_interval() {
        let t0 = Instant::now();
        let mut stats = ReceptionStats::new(1, 48_000);
        // 100 expected, every tenth missing.
        feed(&mut stats, t0, (0..100).filter(|s| s % 10 != 5));
        let block = stats.report_block(t0).unwrap();
        assert_eq!(block.cumulative_lost, 10);
        assert_eq!(block.fraction_lost, (10 * 256 / 100) as u8);
        // The next interval loses nothing: fraction 0, cumulative stays.
        feed(&mut stats, t0, 100..200);
        let block = stats.report_block(t0).unwrap();
        assert_eq!((block.fraction_lost, block.cumulative_lost), (0, 10));
        // Duplicates make the count negative (RFC 3550 §6.4.1).
        feed(&mut stats, t0, [199, 199, 199]);
        assert_eq!(stats.report_block(t0).unwrap().cumulative_lost, 7);
        assert_eq!(stats.cumulative_lost(), -3 + 10);
    }

    #[test]
    fn wrap_extends_the_sequence_number() {
        let t0 = Instant::now();
        let mut stats = ReceptionStats::new(1, 90_000);
        feed(&mut stats, t0, (65530..=65535).chain(0..5));
        // A late packet from before the wrap does not go back a cycle.
        feed(&mut stats, t0, [65534]);
        let block = stats.report_block(t0).unwrap();
        assert_eq!(block.extended_highest_sequence, 65536 + 4);
        assert_eq!(block.cumulative_lost, -1);
    }

    #[test]
    fn a_jump_is_a_restart_once_confirmed() {
        let t0 = Instant::now();
        let mut stats = ReceptionStats::new(1, 90_000);
        feed(&mut stats, t0, 0..10);
        // One stray packet far ahead is ignored...
        feed(&mut stats, t0, [40_000]);
        assert_eq!(stats.report_block(t0).unwrap().extended_highest_sequence, 9);
        // ...two in sequence restart the count there.
        feed(&mut stats, t0, [30_000, 30_001, 30_002]);
        let block = stats.report_block(t0).unwrap();
        assert_eq!(block.extended_highest_sequence, 30_002);
        assert_eq!(block.cumulative_lost, 0);
    }

    #[test]
    fn jitter_follows_arrival_variation() {
        let t0 = Instant::now();
        let mut stats = ReceptionStats::new(1, 90_000);
        // Packets every 33 ms of media time, arriving alternately 0 and
        // 10 ms late: |D| is 900 units every time, so J converges to 900.
        for i in 0..400u32 {
            let late = if i % 2 == 0 { Duration::ZERO } else { 10 * MS };
            stats.on_rtp(t0 + 33 * MS * i + late, i as u16, i * 2970);
        }
        let jitter = stats.report_block(t0).unwrap().jitter;
        assert!((895..=900).contains(&jitter), "{jitter}");
    }

    #[test]
    fn timestamp_wrap_is_no_jitter() {
        let t0 = Instant::now();
        // Packets 3000 units (1/30 s at 90 kHz) apart, arriving on time,
        // across 2^31 and across 2^32.
        for start in [0x7FFF_F000u32, 0xFFFF_F000] {
            let mut stats = ReceptionStats::new(1, 90_000);
            for k in 0..20u32 {
                let at = t0 + Duration::from_secs(k.into()) / 30;
                stats.on_rtp(at, k as u16, start.wrapping_add(3000 * k));
            }
            assert_eq!(stats.report_block(t0).unwrap().jitter, 0, "{start:#x}");
        }
    }

    #[test]
    fn last_sender_report_and_round_trip() {
        let t0 = Instant::now();
        let mut stats = ReceptionStats::new(1, 90_000);
        feed(&mut stats, t0, 0..3);
        let ntp = 0x1234_5678_9abc_def0;
        stats.on_sender_report(
            t0,
            &SenderReport {
                ssrc: 1,
                ntp_time: ntp,
                ..Default::default()
            },
        );
        let block = stats.report_block(t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(block.last_sr, 0x5678_9abc);
        assert_eq!(block.delay_since_last_sr, 32768);
        // The block arrives back 100 ms after the receiver sent it: the
        // sender's NTP clock then reads SR time + 500 ms + 100 ms.
        let arrival = ntp + (0.6 * 65536.0 * 65536.0) as u64;
        let rtt = block.round_trip_time(arrival).unwrap();
        assert!((rtt.as_secs_f64() - 0.1).abs() < 0.001, "{rtt:?}");
        assert_eq!(ReportBlock::default().round_trip_time(arrival), None);
    }
}
