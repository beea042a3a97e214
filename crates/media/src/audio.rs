//! The audio jitter buffer: packets in, one frame of playout out each time
//! the sound card asks, with a delay that follows the measured jitter.
//!
//! - The target delay is the 95th percentile, over the last
//!   [`AudioJitterConfig::window`] packets, of how much later than the
//!   fastest one each packet arrived for its timestamp (the spread RFC 3550
//!   §6.4.1 jitter describes), clamped to
//!   [`AudioJitterConfig::min_delay`]..=[`AudioJitterConfig::max_delay`].
//! - Playout starts once the first packet has waited the target. A
//!   packet missing at its turn while later ones are here is lost: it is
//!   rebuilt from the next packet's in-band FEC when that is here (Opus
//!   LBRR, RFC 6716 §2.1.7) or concealed (PLC). When the buffer runs dry
//!   the gap is concealed without moving on (the delay grows, as NetEq's
//!   expand does); when it holds more than the target and a frame, one
//!   packet is skipped (acceleration).
//! - Bounded: at most [`AudioJitterConfig::max_packets`] packets; past it
//!   the oldest are dropped.
//! - [`AudioJitterStats`] are Chrome's `inbound-rtp` audio statistics
//!   (W3C webrtc-stats §8.6): `jitterBufferDelay`,
//!   `jitterBufferTargetDelay`, `jitterBufferEmittedCount`,
//!   `concealedSamples`, `concealmentEvents`,
//!   `removedSamplesForAcceleration`, `packetsDiscarded`. As in
//!   Chromium's NetEq, a packet rebuilt from in-band FEC is not
//!   concealment: NetEq decodes the FEC as a secondary packet, counted in
//!   `fecPacketsReceived` / `fecPacketsDiscarded`, and its samples leave
//!   the buffer like any other decoded packet's (`jitterBufferEmittedCount`,
//!   with the wait of the packet that carried them); only expansion (PLC)
//!   counts in `concealedSamples`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::opus_fec::opus_has_fec;

/// How the buffer adapts and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioJitterConfig {
    /// The RTP clock rate (48 kHz for Opus, RFC 7587 §4.1).
    pub clock_rate: u32,
    /// The least target delay.
    pub min_delay: Duration,
    /// The most target delay.
    pub max_delay: Duration,
    /// Packets held at most.
    pub max_packets: usize,
    /// Packets whose arrival spread sets the target.
    pub window: usize,
    /// Rebuild a lost packet from the next one's in-band FEC (the codec
    /// was negotiated with `useinbandfec=1`).
    pub fec: bool,
}

impl Default for AudioJitterConfig {
    /// Opus at 48 kHz with FEC: 20 ms to 500 ms of delay, 250 packets (5 s
    /// of 20 ms packets), the spread of the last 100 packets (2 s).
    fn default() -> Self {
        Self {
            clock_rate: 48_000,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(500),
            max_packets: 250,
            window: 100,
            fec: true,
        }
    }
}

/// What to play for one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Nothing yet: play `samples` of silence.
    Silence {
        /// Samples (per channel).
        samples: u32,
    },
    /// Decode this packet.
    Packet(Bytes),
    /// The packet due now was lost: rebuild `samples` from the in-band
    /// FEC of `next`, the packet after it (which is then played in turn).
    Fec {
        /// The next packet.
        next: Bytes,
        /// Samples (per channel) of the lost packet.
        samples: u32,
    },
    /// The packet due now is lost or late: conceal `samples` (PLC).
    Conceal {
        /// Samples (per channel).
        samples: u32,
    },
}

/// Chrome's jitter buffer statistics (W3C webrtc-stats §8.6).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AudioJitterStats {
    /// Packets inserted.
    pub packets_received: u64,
    /// Packets that came after their turn, or pushed out by the bound
    /// (`packetsDiscarded`).
    pub packets_discarded: u64,
    /// Sum over emitted samples of the time each waited between arrival
    /// and playout, in seconds (`jitterBufferDelay`).
    pub jitter_buffer_delay: f64,
    /// Sum over emitted samples of the target delay when each was played,
    /// in seconds (`jitterBufferTargetDelay`).
    pub jitter_buffer_target_delay: f64,
    /// Samples played from received packets, their in-band FEC included
    /// (`jitterBufferEmittedCount`).
    pub jitter_buffer_emitted_count: u64,
    /// Samples made up by loss concealment (PLC) for lost or late packets
    /// (`concealedSamples`); not those rebuilt from FEC.
    pub concealed_samples: u64,
    /// Runs of concealment (`concealmentEvents`).
    pub concealment_events: u64,
    /// Packets received that carry in-band FEC for the one before them
    /// (an LBRR frame: [`crate::opus_has_fec`]), Chromium's
    /// `fecPacketsReceived` for Opus.
    pub fec_packets_received: u64,
    /// Lost packets rebuilt from the next packet's in-band FEC (Chromium
    /// counts them as used secondary packets: `fecPacketsReceived` less
    /// `fecPacketsDiscarded`). A lost packet whose successor has no FEC
    /// is concealed.
    pub fec_recovered: u64,
    /// Lost packets rebuilt whole from a later packet's RED copy (RFC
    /// 2198), before their turn came.
    pub red_recovered: u64,
    /// Samples skipped to bring the delay down
    /// (`removedSamplesForAcceleration`).
    pub removed_samples_for_acceleration: u64,
}

impl AudioJitterStats {
    /// `jitterBufferDelay / jitterBufferEmittedCount`: the mean time a
    /// played sample waited.
    pub fn mean_delay(&self) -> Duration {
        if self.jitter_buffer_emitted_count == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(self.jitter_buffer_delay / self.jitter_buffer_emitted_count as f64)
    }
}

/// The audio jitter buffer of one stream (sans-IO).
#[derive(Debug)]
pub struct AudioJitterBuffer {
    config: AudioJitterConfig,
    /// Payload and arrival by extended timestamp.
    packets: BTreeMap<u64, (Bytes, Instant)>,
    highest: Option<u64>,
    /// The timestamp due at the next pull; `None` before playout starts.
    play: Option<u64>,
    /// Samples a packet holds (per channel), from consecutive packets.
    frame: u32,
    last: Option<(u16, u64)>,
    /// Arrival minus timestamp, in ms, of the last `window` packets.
    spread: VecDeque<f64>,
    target: Duration,
    /// The origin of the arrival clock the spread is measured on.
    epoch: Option<Instant>,
    concealing: bool,
    /// The timestamp of the frame the last pull gave.
    pulled: Option<u64>,
    stats: AudioJitterStats,
}

impl AudioJitterBuffer {
    /// An empty buffer; the first target is twice the least delay.
    pub fn new(config: AudioJitterConfig) -> Self {
        Self {
            config,
            packets: BTreeMap::new(),
            highest: None,
            play: None,
            frame: config.clock_rate / 50,
            last: None,
            spread: VecDeque::new(),
            target: (config.min_delay * 2).min(config.max_delay),
            epoch: None,
            concealing: false,
            pulled: None,
            stats: AudioJitterStats::default(),
        }
    }

    /// The statistics so far.
    pub fn stats(&self) -> AudioJitterStats {
        self.stats
    }

    /// The delay it aims at now.
    pub fn target_delay(&self) -> Duration {
        self.target
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether it holds no packet.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The RTP timestamp of the frame the last [`AudioJitterBuffer::pull`]
    /// gave (the one concealed, for a concealment); `None` before playout.
    pub fn pulled_timestamp(&self) -> Option<u32> {
        self.pulled.map(|t| t as u32)
    }

    /// Samples (per channel) one packet holds, as measured.
    pub fn frame_samples(&self) -> u32 {
        self.frame
    }

    /// Adds a packet received at `now`.
    pub fn insert(&mut self, now: Instant, sequence_number: u16, timestamp: u32, payload: Bytes) {
        let ext = match self.highest {
            None => 1 << 32 | u64::from(timestamp),
            Some(h) => h.wrapping_add_signed(i64::from(timestamp.wrapping_sub(h as u32) as i32)),
        };
        self.stats.packets_received += 1;
        if self.play.is_some_and(|p| ext < p) || self.packets.contains_key(&ext) {
            self.stats.packets_discarded += 1;
            return;
        }
        if let Some((seq, ts)) = self.last {
            let step = ext.wrapping_sub(ts);
            if sequence_number == seq.wrapping_add(1)
                && (self.config.clock_rate / 400..=self.config.clock_rate / 8)
                    .contains(&(step as u32))
                && step < u64::from(u32::MAX)
            {
                self.frame = step as u32;
            }
        }
        if opus_has_fec(&payload) {
            self.stats.fec_packets_received += 1;
        }
        self.last = Some((sequence_number, ext));
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.packets.insert(ext, (payload, now));
        while self.packets.len() > self.config.max_packets {
            self.packets.pop_first();
            self.stats.packets_discarded += 1;
        }
        self.measure(now, ext);
    }

    /// A redundant copy (RFC 2198) of the packet `timestamp_offset` ticks
    /// before `timestamp`, the packet that carried it: kept only when that
    /// packet is missing and its turn has not come. It is not counted as
    /// received nor measured for jitter (a copy arrives a packet late by
    /// design). Call after inserting the carrying packet's primary.
    pub fn insert_redundant(
        &mut self,
        now: Instant,
        timestamp: u32,
        timestamp_offset: u16,
        payload: Bytes,
    ) {
        let Some(highest) = self.highest else { return };
        let timestamp = timestamp.wrapping_sub(u32::from(timestamp_offset));
        let ext =
            highest.wrapping_add_signed(i64::from(timestamp.wrapping_sub(highest as u32) as i32));
        if payload.is_empty()
            || self.play.is_some_and(|p| ext < p)
            || self.packets.contains_key(&ext)
            || self.packets.len() >= self.config.max_packets
        {
            return;
        }
        self.stats.red_recovered += 1;
        self.packets.insert(ext, (payload, now));
    }

    fn measure(&mut self, now: Instant, ext: u64) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival_ms = now.duration_since(epoch).as_secs_f64() * 1e3;
        let ts_ms = ext as f64 * 1e3 / f64::from(self.config.clock_rate);
        self.spread.push_back(arrival_ms - ts_ms);
        if self.spread.len() > self.config.window {
            self.spread.pop_front();
        }
        let min = self.spread.iter().copied().fold(f64::INFINITY, f64::min);
        let mut late: Vec<f64> = self.spread.iter().map(|d| d - min).collect();
        late.sort_by(f64::total_cmp);
        let p95 = late[(late.len() * 95 / 100).min(late.len() - 1)];
        let target = Duration::from_secs_f64(p95.max(0.0) / 1e3);
        self.target = target.clamp(self.config.min_delay, self.config.max_delay);
    }

    fn frame_duration(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.frame) / f64::from(self.config.clock_rate))
    }

    /// What to play for the next frame ([`AudioJitterBuffer::frame_samples`]
    /// long), asked at `now` by the playout clock.
    pub fn pull(&mut self, now: Instant) -> Playout {
        let frame = self.frame;
        let Some(play) = self.play else {
            // Start once the first packet has waited the target.
            let Some((&first, &(_, arrived))) = self.packets.first_key_value() else {
                return Playout::Silence { samples: frame };
            };
            if now < arrived + self.target {
                return Playout::Silence { samples: frame };
            }
            self.play = Some(first);
            return self.pull(now);
        };
        // A packet whose timestamp the playout passed without meeting it
        // (off the frame grid, as after a change of frame size) can no
        // longer play: drop it, or it would sit until the bound.
        while let Some((&oldest, _)) = self.packets.first_key_value() {
            if oldest >= play {
                break;
            }
            self.packets.remove(&oldest);
            self.stats.packets_discarded += 1;
        }
        // Too much buffered: skip one packet (acceleration).
        let buffered = self.packets.last_key_value().map_or(0, |(&last, _)| {
            (last + u64::from(frame)).saturating_sub(play)
        });
        let buffered = Duration::from_secs_f64(buffered as f64 / f64::from(self.config.clock_rate));
        if buffered > self.target + 2 * self.frame_duration()
            && self.packets.contains_key(&(play + u64::from(frame)))
        {
            if self.packets.remove(&play).is_some() {
                self.stats.removed_samples_for_acceleration += u64::from(frame);
            }
            self.play = Some(play + u64::from(frame));
            return self.pull(now);
        }
        self.pulled = Some(play);
        if let Some((payload, arrived)) = self.packets.remove(&play) {
            self.play = Some(play + u64::from(frame));
            self.emitted(now, arrived);
            return Playout::Packet(payload);
        }
        let Some((&later, &(_, arrived))) = self.packets.range(play..).next() else {
            // Dry: conceal and wait (the delay grows by a frame).
            self.concealed();
            return Playout::Conceal { samples: frame };
        };
        // Lost: move on, from the next packet's FEC when it is here.
        self.play = Some(play + u64::from(frame));
        if self.config.fec
            && later == play + u64::from(frame)
            && opus_has_fec(&self.packets[&later].0)
        {
            self.stats.fec_recovered += 1;
            // Decoded from what arrived with the next packet, as that
            // packet's own samples will be: not concealment.
            self.emitted(now, arrived);
            let next = self.packets[&later].0.clone();
            return Playout::Fec {
                next,
                samples: frame,
            };
        }
        self.concealed();
        Playout::Conceal { samples: frame }
    }

    /// Counts a frame decoded from data that arrived at `arrived`.
    fn emitted(&mut self, now: Instant, arrived: Instant) {
        self.concealing = false;
        let samples = f64::from(self.frame);
        self.stats.jitter_buffer_emitted_count += u64::from(self.frame);
        self.stats.jitter_buffer_delay +=
            now.saturating_duration_since(arrived).as_secs_f64() * samples;
        self.stats.jitter_buffer_target_delay += self.target.as_secs_f64() * samples;
    }

    /// Counts a frame made up by loss concealment.
    fn concealed(&mut self) {
        if !self.concealing {
            self.stats.concealment_events += 1;
            self.concealing = true;
        }
        self.stats.concealed_samples += u64::from(self.frame);
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the clock once for a start time
mod tests {
    use super::*;

    /// An Opus SILK packet (wideband, 20 ms, mono) whose LBRR flag is set,
    /// numbered `i`.
    fn packet(i: u16) -> Bytes {
        let [hi, lo] = i.to_be_bytes();
        Bytes::copy_from_slice(&[9 << 3, 0b0100_0000, hi, lo])
    }

    /// Every tenth packet lost, each packet carrying a RED copy of the one
    /// before (as Chromium sends it): every loss is played whole from the
    /// copy, nothing concealed, and the copies neither count as received
    /// nor move the target.
    #[test]
    fn red_copies_fill_the_losses() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::new(AudioJitterConfig::default());
        let mut now = t0;
        let mut played = Vec::new();
        for i in 0..200u16 {
            if i % 10 != 5 {
                b.insert(now, i, u32::from(i) * 960, packet(i));
                if i > 0 {
                    b.insert_redundant(now, u32::from(i) * 960, 960, packet(i - 1));
                }
            }
            match b.pull(now) {
                Playout::Packet(p) => played.push(u16::from_be_bytes([p[2], p[3]])),
                Playout::Silence { .. } => {}
                other => panic!("{other:?} at {i}"),
            }
            now += Duration::from_millis(20);
        }
        let stats = b.stats();
        assert_eq!(
            (stats.red_recovered, stats.concealed_samples),
            (20, 0),
            "{stats:?}"
        );
        assert_eq!(stats.packets_received, 180);
        assert!(played.windows(2).all(|w| w[1] == w[0] + 1), "{played:?}");
        assert_eq!(b.target_delay(), AudioJitterConfig::default().min_delay);
    }

    /// One packet lost with the next one here: rebuilt from the next one's
    /// FEC, counted as emitted (with the wait of the packet that carried
    /// it) and as a FEC recovery, not as concealment (Chromium's
    /// `concealedSamples` leaves FEC out); two in a row: the first is
    /// concealed (played a frame behind, its turn finds the buffer dry
    /// once, then lost for good when the third comes), the second
    /// rebuilt.
    #[test]
    fn fec_recoveries_are_not_concealment() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::new(AudioJitterConfig::default());
        let mut now = t0;
        for i in 0..100u16 {
            if !matches!(i, 30 | 60 | 61) {
                b.insert(now, i, u32::from(i) * 960, packet(i));
            }
            let _ = b.pull(now);
            now += Duration::from_millis(20);
        }
        let s = b.stats();
        assert_eq!(s.fec_recovered, 2, "{s:?}");
        assert_eq!(
            (s.concealment_events, s.concealed_samples),
            (1, 2 * 960),
            "{s:?}"
        );
        let silent = 1; // the first pull, before the target was waited
        assert_eq!(
            s.jitter_buffer_emitted_count + s.concealed_samples,
            (100 - silent) * 960,
            "{s:?}"
        );
    }

    /// A loss whose next packet carries no FEC (CELT, as Opus sends music
    /// at higher rates) is concealed: decoding "FEC" from it would be
    /// loss concealment counted as a recovery.
    #[test]
    fn a_loss_before_a_packet_without_fec_is_concealed() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::new(AudioJitterConfig::default());
        let celt = |i: u16| {
            let [hi, lo] = i.to_be_bytes();
            Bytes::copy_from_slice(&[31 << 3, 0xff, hi, lo])
        };
        let mut now = t0;
        let mut concealed = 0;
        for i in 0..50u16 {
            if i != 20 {
                b.insert(now, i, u32::from(i) * 960, celt(i));
            }
            concealed += u32::from(matches!(b.pull(now), Playout::Conceal { .. }));
            now += Duration::from_millis(20);
        }
        let s = b.stats();
        assert_eq!((s.fec_recovered, s.fec_packets_received), (0, 0), "{s:?}");
        assert!(concealed >= 1 && s.concealed_samples >= 960, "{s:?}");
    }

    /// A packet off the frame grid (its timestamp between two turns) is
    /// passed by the playout: it is dropped as discarded rather than kept
    /// to the bound, and the buffer's fill is never negative (the fuzz
    /// target red_audio found that subtraction overflowing).
    #[test]
    fn a_packet_the_playout_passed_is_dropped() {
        let t0 = Instant::now();
        let mut b = AudioJitterBuffer::new(AudioJitterConfig::default());
        b.insert(t0, 0, 0, packet(0));
        b.insert(t0, 1, 960, packet(1));
        let mut now = t0 + b.target_delay();
        assert_eq!(b.pull(now), Playout::Packet(packet(0)));
        assert_eq!(b.pull(now), Playout::Packet(packet(1)));
        // Sequence 3 half a frame late: between the turns of 1920 and 2880.
        b.insert(now, 3, 2400, packet(3));
        for _ in 0..4 {
            now += Duration::from_millis(20);
            assert!(matches!(b.pull(now), Playout::Conceal { .. }));
        }
        assert!(b.is_empty());
        assert_eq!(b.stats().packets_discarded, 1);
        // The stream goes on at the turn the playout waits at (dry, it
        // does not move on).
        let next = b.pulled_timestamp().unwrap();
        b.insert(now, 9, next, packet(9));
        assert_eq!(b.pull(now), Playout::Packet(packet(9)));
    }

    #[test]
    fn a_burst_is_played_down_to_the_target_and_memory_stays_bounded() {
        let t0 = Instant::now();
        let config = AudioJitterConfig {
            max_packets: 30,
            ..AudioJitterConfig::default()
        };
        let mut b = AudioJitterBuffer::new(config);
        // 40 packets at once (a stalled link let go): the oldest 10 go.
        for i in 0..40u16 {
            b.insert(t0, i, u32::from(i) * 960, packet(i));
        }
        assert_eq!((b.len(), b.stats().packets_discarded), (30, 10));
        assert_eq!(b.pull(t0), Playout::Silence { samples: 960 });
        let mut now = t0 + b.target_delay();
        let mut played = Vec::new();
        for _ in 0..30 {
            match b.pull(now) {
                Playout::Packet(p) => played.push(u16::from_be_bytes([p[2], p[3]])),
                other => panic!("{other:?}"),
            }
            now += Duration::from_millis(20);
            if b.is_empty() {
                break;
            }
        }
        assert!(b.stats().removed_samples_for_acceleration > 0);
        assert!(played.windows(2).all(|w| w[1] > w[0]));
        assert_eq!(played.last(), Some(&39));
        assert_eq!(b.pulled_timestamp(), Some(39 * 960));
        // Then dry: concealment without moving on, and the next packet
        // still plays in its turn.
        assert_eq!(b.pull(now), Playout::Conceal { samples: 960 });
        b.insert(now, 40, 40 * 960, packet(40));
        assert_eq!(b.pull(now), Playout::Packet(packet(40)));
        let s = b.stats();
        assert_eq!((s.concealment_events, s.concealed_samples), (1, 960));
    }
}
