//! Retransmission on generic NACK (RFC 4585 §6.2.1): the receiver's side
//! ([`NackRequester`]: which packets are missing, when to ask again) and
//! the sender's ([`RetransmitBuffer`]: the packets it can still resend).
//! Time comes from the caller.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::rtcp::Nack;

/// Most missing packets tracked; older ones are given up first.
pub const MAX_MISSING: usize = 1000;
/// A jump ahead of more packets than this is a restart, not loss.
const MAX_GAP: u64 = 3000;
/// Times a missing packet is asked for before giving up on it.
const MAX_TRIES: u8 = 3;
/// Most packets named in one NACK: at worst one 4-byte entry each, so the
/// packet stays well under an MTU; the rest wait for the next poll.
pub const MAX_NACK_PACKETS: usize = 200;

#[derive(Debug, Clone, Copy)]
struct Missing {
    last_asked: Option<Instant>,
    tries: u8,
}

/// The receiver's side of NACK for one source: packets that did not
/// arrive, asked for again at most every round-trip time, up to 3 times.
#[derive(Debug, Clone, Default)]
pub struct NackRequester {
    /// Highest extended sequence number received.
    highest: Option<u64>,
    missing: BTreeMap<u64, Missing>,
}

impl NackRequester {
    /// A requester that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a received packet: a jump ahead makes the skipped ones
    /// missing; a late one is no longer missing.
    pub fn on_packet(&mut self, sequence_number: u16) {
        let Some(highest) = self.highest else {
            self.highest = Some(u64::from(sequence_number));
            return;
        };
        let seq = extend(highest, sequence_number);
        if seq <= highest {
            self.missing.remove(&seq);
            return;
        }
        if seq - highest > MAX_GAP {
            // The source restarted or jumped: nothing to ask for.
            self.missing.clear();
        } else {
            for lost in highest + 1..seq {
                self.missing.insert(
                    lost,
                    Missing {
                        last_asked: None,
                        tries: 0,
                    },
                );
            }
            while self.missing.len() > MAX_MISSING {
                self.missing.pop_first();
            }
        }
        self.highest = Some(seq);
    }

    /// Whether a repair of `sequence_number` is wanted: it is missing, or
    /// beyond the highest received (a lost last packet shows no gap); any
    /// other repair is a duplicate.
    pub fn wants(&self, sequence_number: u16) -> bool {
        self.highest.is_none_or(|h| {
            let seq = extend(h, sequence_number);
            seq > h || self.missing.contains_key(&seq)
        })
    }

    /// The NACK to send at `now`, if a missing packet is due: never asked,
    /// or last asked at least `rtt` ago; the oldest [`MAX_NACK_PACKETS`]
    /// first. A packet asked for 3 times is given up two `rtt`s after the
    /// last ask: until then its repair may still come and is wanted (an
    /// RTX repair of a packet given up is dropped as a duplicate; on
    /// netsim's 5% loss with 50 ms jitter, giving up at the next poll
    /// threw away enough late repairs to cost 7% of the frames).
    pub fn poll_nack(
        &mut self,
        now: Instant,
        rtt: Duration,
        sender_ssrc: u32,
        media_ssrc: u32,
    ) -> Option<Nack> {
        let mut due = Vec::new();
        self.missing.retain(|&seq, m| {
            if due.len() == MAX_NACK_PACKETS
                || m.last_asked
                    .is_some_and(|at| now.saturating_duration_since(at) < rtt)
            {
                return true;
            }
            if m.tries >= MAX_TRIES {
                // Given up on, once the last ask had a round trip more
                // to be answered (until then a repair is still wanted).
                return m
                    .last_asked
                    .is_some_and(|at| now.saturating_duration_since(at) < 2 * rtt);
            }
            m.tries += 1;
            m.last_asked = Some(now);
            due.push(seq as u16);
            true
        });
        (!due.is_empty()).then(|| Nack::from_lost(sender_ssrc, media_ssrc, due))
    }

    /// How many packets are missing now.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }
}

/// The extended sequence number closest to `highest` (RFC 3550 A.1).
pub(crate) fn extend(highest: u64, seq: u16) -> u64 {
    let base = highest & !0xFFFF;
    let candidates = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
    candidates
        .into_iter()
        .map(|c| c.wrapping_add(u64::from(seq)))
        .filter(|&c| c < 1 << 62)
        .min_by_key(|&c| c.abs_diff(highest))
        .unwrap_or(u64::from(seq))
}

/// The sender's side of NACK for one source: the last `capacity` packets
/// sent, by sequence number, to resend when asked (RFC 4585 §6.2.1).
#[derive(Debug, Clone)]
pub struct RetransmitBuffer {
    /// Slot `seq % capacity`: the sequence number and the packet.
    slots: Vec<Option<(u16, Vec<u8>)>>,
}

impl RetransmitBuffer {
    /// A buffer of the last `capacity` packets (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: vec![None; capacity.clamp(1, 1 << 16)],
        }
    }

    fn slot(&self, seq: u16) -> usize {
        usize::from(seq) % self.slots.len()
    }

    /// Keeps a copy of a packet sent with `sequence_number`, replacing the
    /// oldest (its buffer is reused).
    pub fn insert(&mut self, sequence_number: u16, packet: &[u8]) {
        let slot = self.slot(sequence_number);
        match &mut self.slots[slot] {
            Some((seq, bytes)) => {
                *seq = sequence_number;
                bytes.clear();
                bytes.extend_from_slice(packet);
            }
            empty => *empty = Some((sequence_number, packet.to_vec())),
        }
    }

    /// The packet sent with `sequence_number`, if still kept.
    pub fn get(&self, sequence_number: u16) -> Option<&[u8]> {
        match &self.slots[self.slot(sequence_number)] {
            Some((seq, bytes)) if *seq == sequence_number => Some(bytes),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the clock once for a start time
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(50);

    #[test]
    fn missing_packets_are_asked_for_until_they_come() {
        let t0 = Instant::now();
        let mut r = NackRequester::new();
        for seq in [65533, 65534, 1, 2] {
            r.on_packet(seq);
        }
        assert_eq!(r.missing(), 2);
        assert!(r.wants(65535) && r.wants(0) && r.wants(3));
        assert!(!r.wants(65534) && !r.wants(2));
        let nack = r.poll_nack(t0, RTT, 1, 2).unwrap();
        assert_eq!((nack.sender_ssrc, nack.media_ssrc), (1, 2));
        assert_eq!(nack.lost().collect::<Vec<_>>(), vec![65535, 0]);
        // Not again within an RTT.
        assert!(r.poll_nack(t0 + RTT / 2, RTT, 1, 2).is_none());
        // 0 arrives late; 65535 is asked for again, up to 3 times.
        r.on_packet(0);
        let again = r.poll_nack(t0 + RTT, RTT, 1, 2).unwrap();
        assert_eq!(again.lost().collect::<Vec<_>>(), vec![65535]);
        assert!(r.poll_nack(t0 + 2 * RTT, RTT, 1, 2).is_some());
        // Asked 3 times: no more asks, but a repair is still wanted for
        // two round trips after the last ask, then it is given up.
        assert!(r.poll_nack(t0 + 3 * RTT, RTT, 1, 2).is_none());
        assert!(r.wants(65535));
        assert!(r
            .poll_nack(t0 + 4 * RTT - Duration::from_millis(1), RTT, 1, 2)
            .is_none());
        assert!(r.wants(65535));
        assert!(r.poll_nack(t0 + 4 * RTT, RTT, 1, 2).is_none());
        assert_eq!(r.missing(), 0);
        assert!(!r.wants(65535));
    }

    #[test]
    fn a_jump_is_not_loss_and_the_list_is_bounded() {
        let t0 = Instant::now();
        let mut r = NackRequester::new();
        r.on_packet(10);
        r.on_packet(30_000);
        assert_eq!(r.missing(), 0);
        assert!(r.poll_nack(t0, RTT, 1, 2).is_none());
        // Gaps piling up keep only the newest MAX_MISSING.
        let mut seq = 30_000u16;
        for _ in 0..100 {
            seq = seq.wrapping_add(20);
            r.on_packet(seq);
        }
        assert_eq!(r.missing(), MAX_MISSING);
        // One NACK names at most MAX_NACK_PACKETS, oldest first; the next
        // polls take the rest.
        let mut named = 0;
        let mut last = None;
        while let Some(nack) = r.poll_nack(t0, RTT, 1, 2) {
            assert!(nack.lost().count() <= MAX_NACK_PACKETS);
            named += nack.lost().count();
            last = nack.lost().last();
        }
        assert_eq!(named, MAX_MISSING);
        assert_eq!(last, Some(seq.wrapping_sub(1)));
    }

    #[test]
    fn extension_picks_the_closest_cycle() {
        assert_eq!(extend(5, 65535), 65535);
        assert_eq!(extend(65535, 2), 65538);
        assert_eq!(extend(65538, 65534), 65534);
        assert_eq!(extend(3 << 16, 10), (3 << 16) + 10);
    }

    #[test]
    fn retransmit_buffer_keeps_the_last_packets() {
        let mut b = RetransmitBuffer::new(4);
        for seq in 65534..=65535u16 {
            b.insert(seq, &seq.to_be_bytes());
        }
        for seq in 0..3u16 {
            b.insert(seq, &seq.to_be_bytes());
        }
        // 65534 was replaced by 2 (same slot); the rest are there.
        assert_eq!(b.get(65534), None);
        assert_eq!(b.get(65535), Some(&[0xff, 0xff][..]));
        assert_eq!(b.get(2), Some(&[0, 2][..]));
        assert_eq!(b.get(7), None);
        assert_eq!(RetransmitBuffer::new(0).get(0), None);
    }
}
