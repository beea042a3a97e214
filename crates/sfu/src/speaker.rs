//! Who speaks in a room, from the audio levels publishers put in their
//! packets (RFC 6464), without decoding.
//!
//! Dominant speaker identification in the spirit of Volfin and Cohen,
//! "Dominant Speaker Identification for Multipoint Videoconferencing"
//! (Jitsi Videobridge's): speech activity is judged over a longer time
//! scale than a packet, and a challenger must stay above the current
//! speaker for a while before the floor changes, so a cough, a laugh or
//! two people talking over each other do not make the announcement flap.
//! Ours is the simple form of that idea, with these steps:
//! - each packet's level (-dBov) becomes an activity, the decibels above
//!   [`SpeakerConfig::floor`] (quieter is 0: background noise);
//! - every [`SpeakerConfig::tick`] each participant's mean activity over
//!   the tick updates an exponential moving average (weight 1/4, so about
//!   four ticks of memory); a participant who sent no level counts 0;
//! - the loudest average at or above [`SpeakerConfig::speaking`] is the
//!   candidate; with nobody speaking the floor is taken at once;
//! - a candidate other than the current speaker takes over only after
//!   leading it by [`SpeakerConfig::margin`] for
//!   [`SpeakerConfig::switch_ticks`] ticks in a row, and at least
//!   [`SpeakerConfig::min_hold`] after the last change (hysteresis);
//! - after [`SpeakerConfig::silence`] with nobody speaking the room is
//!   announced silent.
//!
//! The V bit (voice activity) is not used: browsers set it from their
//! own voice detection, which is off when the page turns audio
//! processing off, and the level alone ranks speakers.

use std::time::{Duration, Instant};

use realtimer_proto::AudioLevel;

/// Fixed-point scale of the averages: 1/256 dB.
const SCALE: u32 = 256;

/// How the dominant speaker is chosen (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// How often the averages move and the speaker may change.
    pub tick: Duration,
    /// The level (-dBov) at and under which a packet counts as silence.
    pub floor: u8,
    /// The average activity (dB above the floor) of someone speaking.
    pub speaking: u8,
    /// How much louder (dB of average activity) a challenger must be.
    pub margin: u8,
    /// Ticks in a row a challenger must lead by the margin.
    pub switch_ticks: u32,
    /// Least time between two changes of speaker.
    pub min_hold: Duration,
    /// Nobody speaking this long: the room is announced silent.
    pub silence: Duration,
}

impl Default for SpeakerConfig {
    /// Ticks of 200 ms; silence at -70 dBov and below (browsers measure
    /// speech at about -20 to -40 dBov); speaking from 10 dB above it; a
    /// challenger leads by 4 dB for 3 ticks (600 ms); a speaker keeps the
    /// floor at least 1 s; silence after 2 s.
    fn default() -> Self {
        SpeakerConfig {
            tick: Duration::from_millis(200),
            floor: 70,
            speaking: 10,
            margin: 4,
            switch_ticks: 3,
            min_hold: Duration::from_secs(1),
            silence: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone)]
struct Voice<K> {
    id: K,
    /// This tick's activity, summed, and its packets.
    sum: u32,
    count: u32,
    /// The moving average, in 1/[`SCALE`] dB.
    average: u32,
}

/// The dominant speaker of one room: levels in, changes out, on the
/// caller's clock. `K` names participants.
#[derive(Debug, Clone)]
pub struct SpeakerDetector<K> {
    config: SpeakerConfig,
    voices: Vec<Voice<K>>,
    current: Option<K>,
    /// The last change (or the first level).
    changed_at: Option<Instant>,
    /// Who leads the current speaker by the margin, for how many ticks.
    challenger: Option<(K, u32)>,
    /// Since when nobody speaks.
    quiet_since: Option<Instant>,
    /// The current speaker left: announce whoever (or nobody) is next.
    vacated: bool,
}

impl<K: Copy + PartialEq> SpeakerDetector<K> {
    /// Nobody speaking yet.
    pub fn new(config: SpeakerConfig) -> SpeakerDetector<K> {
        SpeakerDetector {
            config,
            voices: Vec::new(),
            current: None,
            changed_at: None,
            challenger: None,
            quiet_since: None,
            vacated: false,
        }
    }

    /// Who speaks now, as last announced.
    pub fn current(&self) -> Option<K> {
        self.current
    }

    /// A packet of `id`'s audio with this level.
    pub fn record(&mut self, id: K, level: AudioLevel) {
        let activity = u32::from(self.config.floor.saturating_sub(level.level));
        let voice = match self.voices.iter_mut().position(|v| v.id == id) {
            Some(i) => &mut self.voices[i],
            None => {
                self.voices.push(Voice {
                    id,
                    sum: 0,
                    count: 0,
                    average: 0,
                });
                self.voices.last_mut().expect("just pushed")
            }
        };
        // Saturating: a flood of packets in one tick cannot overflow.
        voice.sum = voice.sum.saturating_add(activity);
        voice.count = voice.count.saturating_add(1);
    }

    /// `id` left: it no longer speaks. If it was the speaker, the next
    /// tick announces who is.
    pub fn remove(&mut self, id: K) {
        self.voices.retain(|v| v.id != id);
        if self.challenger.is_some_and(|(c, _)| c == id) {
            self.challenger = None;
        }
        if self.current == Some(id) {
            self.current = None;
            self.vacated = true;
        }
    }

    /// Whether anyone's levels are tracked.
    pub fn is_empty(&self) -> bool {
        self.voices.is_empty()
    }

    /// One tick (every [`SpeakerConfig::tick`]): the averages move; the
    /// new speaker if it changed (`Some(None)`: silence now).
    pub fn tick(&mut self, now: Instant) -> Option<Option<K>> {
        for v in &mut self.voices {
            let mean = v.sum.checked_div(v.count).unwrap_or(0);
            let sample = mean.min(u32::from(u8::MAX)) * SCALE;
            // average += (sample - average) / 4, in integers.
            v.average = (v.average * 3 + sample) / 4;
            v.sum = 0;
            v.count = 0;
        }
        let speaking = u32::from(self.config.speaking) * SCALE;
        let loudest = self
            .voices
            .iter()
            .filter(|v| v.average >= speaking)
            .max_by_key(|v| v.average)
            .map(|v| (v.id, v.average));
        let Some((candidate, loudness)) = loudest else {
            self.challenger = None;
            let since = *self.quiet_since.get_or_insert(now);
            let silent = now.saturating_duration_since(since) >= self.config.silence;
            if std::mem::take(&mut self.vacated) || (self.current.is_some() && silent) {
                return self.change(now, None);
            }
            return None;
        };
        self.quiet_since = None;
        let Some(current) = self.current else {
            self.vacated = false;
            return self.change(now, Some(candidate));
        };
        if candidate == current {
            self.challenger = None;
            return None;
        }
        let held = self
            .voices
            .iter()
            .find(|v| v.id == current)
            .map_or(0, |v| v.average);
        if loudness < held + u32::from(self.config.margin) * SCALE {
            self.challenger = None;
            return None;
        }
        let ticks = match self.challenger {
            Some((c, n)) if c == candidate => n + 1,
            _ => 1,
        };
        self.challenger = Some((candidate, ticks));
        let settled = self
            .changed_at
            .is_none_or(|at| now.saturating_duration_since(at) >= self.config.min_hold);
        if ticks >= self.config.switch_ticks && settled {
            return self.change(now, Some(candidate));
        }
        None
    }

    fn change(&mut self, now: Instant, to: Option<K>) -> Option<Option<K>> {
        self.current = to;
        self.changed_at = Some(now);
        self.challenger = None;
        Some(to)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the clock once for a start time
mod tests {
    use super::*;

    fn level(level: u8) -> AudioLevel {
        AudioLevel { level, voice: true }
    }

    /// Runs `seconds` of 20 ms packets, `levels(participant, t)` giving
    /// each packet's level (`None`: no packet), ticking on time; returns
    /// the changes with their times in milliseconds.
    fn run(
        d: &mut SpeakerDetector<u8>,
        start: Instant,
        from_ms: u64,
        to_ms: u64,
        levels: impl Fn(u8, u64) -> Option<u8>,
    ) -> Vec<(u64, Option<u8>)> {
        let mut changes = Vec::new();
        let tick = d.config.tick.as_millis() as u64;
        for t in (from_ms..to_ms).step_by(20) {
            for p in 1..=3 {
                if let Some(l) = levels(p, t) {
                    d.record(p, level(l));
                }
            }
            if (t + 20) % tick == 0 {
                let now = start + Duration::from_millis(t + 20);
                if let Some(c) = d.tick(now) {
                    changes.push((t + 20, c));
                }
            }
        }
        changes
    }

    #[test]
    fn the_one_who_talks_is_announced_then_silence() {
        let start = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        // 1 speaks at -25 dBov for 3 s; 2 and 3 send silence; then all
        // are silent.
        let changes = run(&mut d, start, 0, 8000, |p, t| {
            Some(if p == 1 && t < 3000 { 25 } else { 127 })
        });
        assert_eq!(changes.len(), 2, "{changes:?}");
        let (at, who) = changes[0];
        assert_eq!(who, Some(1));
        assert!(at <= 400, "announced at {at} ms");
        let (at, who) = changes[1];
        assert_eq!(who, None);
        // The average decays under the threshold (about 1.2 s), then 2 s
        // of silence.
        assert!((5600..=6800).contains(&at), "silence at {at} ms");
    }

    #[test]
    fn the_floor_changes_only_after_the_challenger_leads_for_a_while() {
        let start = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        // 1 speaks; at 2 s, 2 speaks louder and 1 goes on more quietly.
        let changes = run(&mut d, start, 0, 5000, |p, t| match (p, t < 2000) {
            (1, true) => Some(30),
            (1, false) => Some(45),
            (2, false) => Some(20),
            _ => Some(127),
        });
        assert_eq!(changes[0].1, Some(1));
        assert_eq!(changes.len(), 2, "{changes:?}");
        let (at, who) = changes[1];
        assert_eq!(who, Some(2));
        // Three ticks of leading by the margin: not before 2.6 s.
        assert!((2600..=3400).contains(&at), "switched at {at} ms");
    }

    #[test]
    fn short_bursts_and_talking_over_each_other_do_not_flap() {
        let start = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        // 1 talks steadily; 2 coughs (100 ms at -10 dBov) every second;
        // 3 alternates with 1 every 300 ms at the same loudness.
        let changes = run(&mut d, start, 0, 10_000, |p, t| match p {
            1 => Some(if (t / 300) % 2 == 0 { 25 } else { 60 }),
            2 => Some(if t % 1000 < 100 { 10 } else { 127 }),
            _ => Some(if (t / 300) % 2 == 1 { 25 } else { 60 }),
        });
        assert!(changes.len() <= 2, "the speaker flapped: {changes:?}");
        assert!(
            changes.iter().all(|(_, who)| *who != Some(2)),
            "{changes:?}"
        );
    }

    #[test]
    fn a_speaker_who_leaves_hands_the_floor_on() {
        let start = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        let changes = run(&mut d, start, 0, 1000, |p, _| match p {
            1 => Some(20),
            2 => Some(35),
            _ => None,
        });
        assert_eq!(changes, vec![(200, Some(1))]);
        d.remove(1);
        assert_eq!(d.current(), None);
        let changes = run(&mut d, start, 1000, 1400, |p, _| (p == 2).then_some(35));
        assert_eq!(changes, vec![(1200, Some(2))]);
        // Alone and quiet: the vacated floor is announced empty at once.
        d.remove(2);
        assert!(d.is_empty());
        assert_eq!(d.tick(start + Duration::from_millis(1600)), Some(None));
        assert_eq!(d.tick(start + Duration::from_millis(1800)), None);
    }
}
