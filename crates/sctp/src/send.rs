//! The sending side: fragmentation, TSN assignment, retransmission (RFC
//! 9260 §6.3 with RFC 6298 RTO), fast retransmit and recovery (§7.2.4),
//! congestion control (§7.2), and partial reliability (RFC 3758).
//!
//! Congestion control is SCTP's Reno-like scheme with one modern change:
//! slow start counts acknowledged bytes up to two MTUs per SACK
//! (Appropriate Byte Counting, RFC 3465, L = 2), which makes up for delayed
//! SACKs acknowledging two packets at a time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::chunk::{DataChunk, ForwardTsn, ForwardTsnStream, Sack};
use crate::queue::{Outbound, OutboundQueue};
use crate::tsn::unwrap_tsn;

/// How hard a message is tried (RFC 3758, RFC 8831 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reliability {
    /// Retransmitted until acknowledged.
    #[default]
    Reliable,
    /// Given up after this many retransmissions.
    MaxRetransmits(u32),
    /// Given up this long after `send`.
    MaxLifetime(Duration),
}

/// A DATA chunk that has a TSN.
#[derive(Debug)]
struct Sent {
    tsn: u64,
    chunk: DataChunk,
    message: u64,
    reliability: Reliability,
    created: Instant,
    transmissions: u32,
    sent_at: Option<Instant>,
    /// Waiting to be (re)transmitted.
    needs_send: bool,
    /// Acknowledged by a gap block.
    acked: bool,
    /// Given up (PR-SCTP).
    abandoned: bool,
    miss_indications: u32,
    /// Fast-retransmitted already: not again until a timeout (RFC 9260 §7.2.4).
    fast_retransmitted: bool,
    /// Counted in `flight_size`.
    in_flight: bool,
}

/// Timers and parameters of the sender.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SenderConfig {
    pub(crate) mtu: usize,
    pub(crate) rto_initial: Duration,
    pub(crate) rto_min: Duration,
    pub(crate) rto_max: Duration,
    pub(crate) send_buffer: usize,
    pub(crate) initial_cwnd_packets: usize,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The send buffer is full: wait for the buffered amount to fall.
    #[error("send buffer full ({buffered} bytes queued, limit {limit})")]
    BufferFull {
        /// Bytes queued.
        buffered: usize,
        /// The limit.
        limit: usize,
    },
    /// Larger than the peer's max-message-size.
    #[error("message of {size} bytes is larger than the peer's max-message-size {max}")]
    TooLarge {
        /// The message size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The association is not established or is closing.
    #[error("the association is not open")]
    NotOpen,
    /// The stream is being reset.
    #[error("stream {0} is closing")]
    StreamClosing(u16),
}

/// What a SACK did.
#[derive(Debug, Default)]
pub(crate) struct SackOutcome {
    /// The cumulative ack moved.
    pub(crate) advanced: bool,
}

#[derive(Debug)]
pub(crate) struct Sender {
    config: SenderConfig,
    next_tsn: u64,
    cumulative_ack: u64,
    next_message: u64,
    pending: OutboundQueue,
    sent: VecDeque<Sent>,
    ssn: HashMap<u16, u16>,
    /// Bytes queued but not yet transmitted, per stream (bufferedAmount).
    buffered: HashMap<u16, usize>,
    /// Bytes held: not yet acknowledged or abandoned.
    held: usize,
    pub(crate) cwnd: usize,
    pub(crate) ssthresh: usize,
    partial_bytes_acked: usize,
    flight_size: usize,
    pub(crate) peer_rwnd: usize,
    srtt: Option<Duration>,
    rttvar: Duration,
    pub(crate) rto: Duration,
    pub(crate) t3: Option<Instant>,
    fast_recovery_until: Option<u64>,
    /// RFC 3758 §3.5: the peer's ack point moved past abandoned chunks.
    advanced_peer_ack: u64,
    pub(crate) forward_tsn_pending: bool,
    /// Consecutive retransmission timeouts without progress.
    pub(crate) timeouts: u32,
    max_payload: usize,
    pub(crate) retransmissions: u64,
    /// Some sent chunk may wait for retransmission: scan for it.
    resend_marked: bool,
    /// When messages with a lifetime expire, soonest first.
    expiries: BinaryHeap<Reverse<(Instant, u64)>>,
    pub(crate) t3_expiries: u64,
    pub(crate) fast_retransmits: u64,
}

/// Sender figures for stats and tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderStats {
    /// Congestion window (bytes).
    pub cwnd: usize,
    /// Slow-start threshold (bytes).
    pub ssthresh: usize,
    /// Bytes in flight.
    pub flight_size: usize,
    /// The peer's window as we last learned it, less what is in flight.
    pub peer_rwnd: usize,
    /// Current retransmission timeout.
    pub rto: Duration,
    /// Smoothed round-trip time.
    pub srtt: Option<Duration>,
    /// Chunks sent but not yet cumulatively acknowledged.
    pub outstanding_chunks: usize,
    /// DATA chunks sent again, in all.
    pub retransmissions: u64,
    /// Retransmission timer expiries.
    pub t3_expiries: u64,
    /// Fast retransmit episodes.
    pub fast_retransmits: u64,
}

/// Common header 12 + DATA header 16, kept below the MTU.
const DATA_OVERHEAD: usize = 12 + 16;

impl Sender {
    pub(crate) fn new(config: SenderConfig, initial_tsn: u32, peer_rwnd: u32) -> Self {
        let start = (1u64 << 32) + u64::from(initial_tsn);
        Sender {
            config,
            next_tsn: start,
            cumulative_ack: start - 1,
            next_message: 0,
            pending: OutboundQueue::default(),
            sent: VecDeque::new(),
            ssn: HashMap::new(),
            buffered: HashMap::new(),
            held: 0,
            // RFC 9260 §7.2.1: min(4 MTU, max(2 MTU, 4380)); a larger start
            // (RFC 6928) is configurable.
            cwnd: config.initial_cwnd_packets * config.mtu,
            ssthresh: peer_rwnd as usize,
            partial_bytes_acked: 0,
            flight_size: 0,
            peer_rwnd: peer_rwnd as usize,
            srtt: None,
            rttvar: Duration::ZERO,
            rto: config.rto_initial,
            t3: None,
            fast_recovery_until: None,
            advanced_peer_ack: start - 1,
            forward_tsn_pending: false,
            timeouts: 0,
            max_payload: config.mtu - DATA_OVERHEAD,
            retransmissions: 0,
            resend_marked: false,
            expiries: BinaryHeap::new(),
            t3_expiries: 0,
            fast_retransmits: 0,
        }
    }

    /// Queues a message.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send(
        &mut self,
        now: Instant,
        stream: u16,
        ppid: u32,
        payload: Bytes,
        unordered: bool,
        reliability: Reliability,
    ) -> Result<(), SendError> {
        if self.held + payload.len() > self.config.send_buffer {
            return Err(SendError::BufferFull {
                buffered: self.held,
                limit: self.config.send_buffer,
            });
        }
        let ssn = if unordered {
            0
        } else {
            let next = self.ssn.entry(stream).or_insert(0);
            let ssn = *next;
            *next = next.wrapping_add(1);
            ssn
        };
        self.held += payload.len();
        *self.buffered.entry(stream).or_insert(0) += payload.len();
        if let Reliability::MaxLifetime(lifetime) = reliability {
            self.expiries
                .push(Reverse((now + lifetime, self.next_message)));
        }
        self.pending.push(Outbound {
            id: self.next_message,
            stream,
            ssn,
            ppid,
            unordered,
            payload,
            offset: 0,
            reliability,
            created: now,
        });
        self.next_message += 1;
        Ok(())
    }

    /// Bytes queued on a stream but not yet sent.
    pub(crate) fn buffered_amount(&self, stream: u16) -> usize {
        self.buffered.get(&stream).copied().unwrap_or(0)
    }

    /// True when nothing waits or is unacknowledged.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.sent.iter().all(|s| s.abandoned)
    }

    /// The last TSN handed out.
    pub(crate) fn last_tsn(&self) -> u32 {
        (self.next_tsn - 1) as u32
    }

    /// Stream SSNs start again at 0 after an outgoing reset (RFC 6525 §5.1.4).
    pub(crate) fn reset_stream(&mut self, stream: u16) {
        self.ssn.remove(&stream);
    }

    /// True when messages of this stream still wait or fly.
    pub(crate) fn stream_has_data(&self, stream: u16) -> bool {
        self.pending.has_stream(stream)
            || self
                .sent
                .iter()
                .any(|s| s.chunk.stream == stream && !s.acked && !s.abandoned)
    }

    /// RFC 3758 §3.5: a message whose lifetime ran out is abandoned at once,
    /// in flight or not, so the receiver is not held up waiting for it.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(Reverse((at, message))) = self.expiries.peek().copied() {
            if at > now {
                return;
            }
            self.expiries.pop();
            let live = self.pending.has_message(message)
                || self
                    .sent
                    .iter()
                    .any(|s| s.message == message && !s.acked && !s.abandoned);
            if live {
                self.abandon_message(message);
            }
        }
    }

    /// When the next message's lifetime runs out.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.expiries.peek().map(|Reverse((at, _))| *at)
    }

    fn abandon_due(&self, s: &Sent, now: Instant) -> bool {
        match s.reliability {
            Reliability::Reliable => false,
            Reliability::MaxRetransmits(n) => s.transmissions > n,
            Reliability::MaxLifetime(d) => now >= s.created + d,
        }
    }

    /// Gives up a whole message: its chunks with TSNs, and what was not
    /// cut yet (RFC 3758 §3.5).
    fn abandon_message(&mut self, message: u64) {
        for s in self
            .sent
            .iter_mut()
            .filter(|s| s.message == message && !s.abandoned)
        {
            s.abandoned = true;
            s.needs_send = false;
            if s.in_flight {
                s.in_flight = false;
                self.flight_size -= s.chunk.payload.len();
            }
            if !s.acked {
                self.held -= s.chunk.payload.len();
            }
            if s.transmissions == 0 {
                if let Some(b) = self.buffered.get_mut(&s.chunk.stream) {
                    *b = b.saturating_sub(s.chunk.payload.len());
                }
            }
        }
        {
            if let Some(m) = self.pending.remove_message(message) {
                let rest = m.payload.len() - m.offset;
                self.held -= rest;
                if let Some(b) = self.buffered.get_mut(&m.stream) {
                    *b = b.saturating_sub(rest);
                }
            }
        }
        self.forward_tsn_pending = true;
    }

    /// DATA chunks to send now, within `room` bytes, the congestion window
    /// and the peer's window: retransmissions first (RFC 9260 §6.1).
    pub(crate) fn next_chunks(&mut self, now: Instant, mut room: usize, out: &mut Vec<DataChunk>) {
        if self.resend_marked {
            // Partial reliability: give up what is due before sending it again.
            let due: Vec<u64> = self
                .sent
                .iter()
                .filter(|s| s.needs_send && !s.abandoned && self.abandon_due(s, now))
                .map(|s| s.message)
                .collect();
            for m in due {
                self.abandon_message(m);
            }
        }
        self.expire(now);
        // Retransmissions: also bound by cwnd (after a timeout cwnd is 1 MTU).
        if self.resend_marked {
            for i in 0..self.sent.len() {
                let s = &self.sent[i];
                if !s.needs_send || s.abandoned {
                    continue;
                }
                let size = s.chunk.payload.len() + 16;
                if size > room || (self.flight_size >= self.cwnd && !out.is_empty()) {
                    return;
                }
                room -= size;
                self.transmit(i, now, out);
            }
            self.resend_marked = false;
        }
        // New data: cwnd and the peer's window (§6.1 rules A and B); with a
        // zero window one chunk may probe when nothing is in flight.
        loop {
            if self.flight_size >= self.cwnd {
                return;
            }
            let probe = self.flight_size == 0;
            if self.peer_rwnd == 0 && !probe {
                return;
            }
            let Some(m) = self.pending.front_mut() else {
                return;
            };
            let len = (m.payload.len() - m.offset).min(self.max_payload);
            if len + 16 > room {
                return;
            }
            if len > self.peer_rwnd && !probe {
                return;
            }
            room -= len + 16;
            let chunk = DataChunk {
                tsn: self.next_tsn as u32,
                stream: m.stream,
                ssn: m.ssn,
                ppid: m.ppid,
                unordered: m.unordered,
                beginning: m.offset == 0,
                ending: m.offset + len == m.payload.len(),
                immediate: false,
                payload: m.payload.slice(m.offset..m.offset + len),
            };
            m.offset += len;
            let (id, reliability, created) = (m.id, m.reliability, m.created);
            if m.offset == m.payload.len() {
                self.pending.pop_front();
            }
            self.sent.push_back(Sent {
                tsn: self.next_tsn,
                chunk,
                message: id,
                reliability,
                created,
                transmissions: 0,
                sent_at: None,
                needs_send: true,
                acked: false,
                abandoned: false,
                miss_indications: 0,
                fast_retransmitted: false,
                in_flight: false,
            });
            self.next_tsn += 1;
            let i = self.sent.len() - 1;
            self.transmit(i, now, out);
        }
    }

    fn transmit(&mut self, i: usize, now: Instant, out: &mut Vec<DataChunk>) {
        let s = &mut self.sent[i];
        if s.transmissions == 0 {
            if let Some(b) = self.buffered.get_mut(&s.chunk.stream) {
                *b = b.saturating_sub(s.chunk.payload.len());
            }
        }
        if s.transmissions > 0 {
            self.retransmissions += 1;
        }
        s.transmissions += 1;
        s.sent_at = Some(now);
        s.needs_send = false;
        s.miss_indications = 0;
        if !s.in_flight {
            s.in_flight = true;
            self.flight_size += s.chunk.payload.len();
        }
        self.peer_rwnd = self.peer_rwnd.saturating_sub(s.chunk.payload.len());
        out.push(s.chunk.clone());
        if self.t3.is_none() {
            self.t3 = Some(now + self.rto);
        }
    }

    /// RFC 9260 §6.2.1, §7.2: a SACK acknowledges, reports gaps, moves the
    /// windows.
    pub(crate) fn handle_sack(&mut self, now: Instant, sack: &Sack) -> SackOutcome {
        let mut outcome = SackOutcome::default();
        let cumulative = unwrap_tsn(sack.cumulative_tsn_ack, self.cumulative_ack);
        if cumulative < self.cumulative_ack || cumulative >= self.next_tsn {
            return outcome; // old, or acknowledges what we never sent
        }
        let flight_before = self.flight_size;
        let mut bytes_acked = 0;
        let mut rtt_sample = None;
        // RFC 9260 §7.2.4 (HTNA): only TSNs below the highest TSN this SACK
        // newly acknowledges count a miss.
        let mut highest_newly_acked: Option<u64> = None;
        // Cumulative acknowledgement.
        while self.sent.front().is_some_and(|s| s.tsn <= cumulative) {
            let Some(s) = self.sent.pop_front() else {
                break;
            };
            if !s.acked && !s.abandoned {
                bytes_acked += s.chunk.payload.len();
                self.held -= s.chunk.payload.len();
                highest_newly_acked = Some(s.tsn);
            }
            if s.in_flight {
                self.flight_size -= s.chunk.payload.len();
            }
            if s.transmissions == 1 && !s.acked {
                rtt_sample = s.sent_at.map(|t| now.saturating_duration_since(t));
            }
        }
        if cumulative > self.cumulative_ack {
            outcome.advanced = true;
            self.cumulative_ack = cumulative;
            self.timeouts = 0;
        }
        if self.advanced_peer_ack < self.cumulative_ack {
            self.advanced_peer_ack = self.cumulative_ack;
        }
        // Gap blocks.
        for block in &sack.gap_blocks {
            if block.start == 0 || block.end < block.start {
                continue;
            }
            let (start, end) = (
                cumulative + u64::from(block.start),
                cumulative + u64::from(block.end),
            );
            // `sent` holds consecutive TSNs from cumulative + 1: index directly.
            let first = self.sent.front().map_or(u64::MAX, |s| s.tsn);
            let from = start.saturating_sub(first) as usize;
            let to = (end.saturating_sub(first) as usize + 1).min(self.sent.len());
            for s in self.sent.range_mut(from.min(to)..to) {
                if !s.acked && !s.abandoned {
                    s.acked = true;
                    s.needs_send = false;
                    highest_newly_acked = Some(highest_newly_acked.map_or(s.tsn, |h| h.max(s.tsn)));
                    bytes_acked += s.chunk.payload.len();
                    self.held -= s.chunk.payload.len();
                    if s.in_flight {
                        s.in_flight = false;
                        self.flight_size -= s.chunk.payload.len();
                    }
                    if s.transmissions == 1 {
                        rtt_sample = s.sent_at.map(|t| now.saturating_duration_since(t));
                    }
                }
            }
        }
        if let Some(rtt) = rtt_sample {
            self.update_rto(rtt);
        }
        // Fast retransmit (§7.2.4): three reports of a hole, once per chunk.
        let mut lost = false;
        if let Some(highest) = highest_newly_acked.filter(|_| !sack.gap_blocks.is_empty()) {
            for s in self.sent.iter_mut() {
                if s.tsn >= highest {
                    break;
                }
                if !s.acked && !s.abandoned && s.in_flight && !s.fast_retransmitted {
                    s.miss_indications += 1;
                    if s.miss_indications == 3 {
                        s.needs_send = true;
                        s.fast_retransmitted = true;
                        self.resend_marked = true;
                        s.in_flight = false;
                        self.flight_size -= s.chunk.payload.len();
                        lost = true;
                    }
                }
            }
        }
        let in_recovery = self
            .fast_recovery_until
            .is_some_and(|t| self.cumulative_ack < t);
        if !in_recovery {
            self.fast_recovery_until = None;
        }
        if lost && !in_recovery {
            self.ssthresh = (self.cwnd / 2).max(4 * self.config.mtu);
            self.cwnd = self.ssthresh;
            self.partial_bytes_acked = 0;
            self.fast_recovery_until = Some(self.next_tsn - 1);
            self.fast_retransmits += 1;
        } else if outcome.advanced && !in_recovery {
            let window_full = flight_before + self.config.mtu >= self.cwnd;
            if self.cwnd <= self.ssthresh {
                if window_full {
                    self.cwnd += bytes_acked.min(2 * self.config.mtu);
                }
            } else {
                self.partial_bytes_acked += bytes_acked;
                if self.partial_bytes_acked >= self.cwnd && window_full {
                    self.partial_bytes_acked -= self.cwnd;
                    self.cwnd += self.config.mtu;
                }
            }
        }
        // §6.2.1: the peer's window less what is still in flight.
        self.peer_rwnd = (sack.a_rwnd as usize).saturating_sub(self.flight_size);
        // T3: stop when nothing is outstanding, restart on progress.
        if self.flight_size == 0 && !self.sent.iter().any(|s| s.needs_send) {
            self.t3 = None;
        } else if outcome.advanced {
            self.t3 = Some(now + self.rto);
        }
        self.update_forward_tsn();
        outcome
    }

    /// An RTT measured outside data (a HEARTBEAT ACK, RFC 9260 §8.3).
    pub(crate) fn rtt_sample(&mut self, rtt: Duration) {
        self.update_rto(rtt);
    }

    /// RFC 6298 §2.
    fn update_rto(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + rtt / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        self.rto = (srtt + 4 * self.rttvar).clamp(self.config.rto_min, self.config.rto_max);
    }

    /// The smoothed round-trip time, once measured.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// Bytes held against the send buffer.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    pub(crate) fn stats(&self) -> SenderStats {
        SenderStats {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            flight_size: self.flight_size,
            peer_rwnd: self.peer_rwnd,
            rto: self.rto,
            srtt: self.srtt,
            outstanding_chunks: self.sent.len(),
            retransmissions: self.retransmissions,
            t3_expiries: self.t3_expiries,
            fast_retransmits: self.fast_retransmits,
        }
    }

    /// RFC 9260 §6.3.3: the retransmission timer expired.
    pub(crate) fn handle_t3(&mut self, now: Instant) {
        self.t3 = None;
        if self.sent.iter().all(|s| s.acked || s.abandoned) {
            return;
        }
        self.timeouts += 1;
        self.t3_expiries += 1;
        self.ssthresh = (self.cwnd / 2).max(4 * self.config.mtu);
        self.cwnd = self.config.mtu;
        self.partial_bytes_acked = 0;
        self.fast_recovery_until = None;
        self.rto = (self.rto * 2).min(self.config.rto_max);
        for s in self.sent.iter_mut() {
            if !s.acked && !s.abandoned {
                s.needs_send = true;
                s.fast_retransmitted = false;
                self.resend_marked = true;
                if s.in_flight {
                    s.in_flight = false;
                    self.flight_size -= s.chunk.payload.len();
                }
            }
        }
        self.t3 = Some(now + self.rto);
        self.update_forward_tsn();
    }

    /// RFC 3758 §3.5 C1-C3: move the advanced peer ack point over abandoned
    /// chunks and say whether a FORWARD TSN is due.
    fn update_forward_tsn(&mut self) {
        let mut point = self.advanced_peer_ack.max(self.cumulative_ack);
        for s in &self.sent {
            if s.tsn == point + 1 && s.abandoned {
                point = s.tsn;
            } else if s.tsn > point {
                break;
            }
        }
        if point > self.cumulative_ack {
            self.advanced_peer_ack = point;
            self.forward_tsn_pending = true;
        } else {
            self.forward_tsn_pending = false;
        }
    }

    /// The FORWARD TSN to send, if the ack point moved past abandoned data.
    pub(crate) fn forward_tsn(&mut self) -> Option<ForwardTsn> {
        self.update_forward_tsn();
        if !self.forward_tsn_pending {
            return None;
        }
        self.forward_tsn_pending = false;
        let mut streams: Vec<ForwardTsnStream> = Vec::new();
        for s in self
            .sent
            .iter()
            .filter(|s| s.tsn <= self.advanced_peer_ack && s.abandoned && !s.chunk.unordered)
        {
            match streams.iter_mut().find(|f| f.stream == s.chunk.stream) {
                Some(f) => f.ssn = s.chunk.ssn,
                None => streams.push(ForwardTsnStream {
                    stream: s.chunk.stream,
                    ssn: s.chunk.ssn,
                }),
            }
        }
        Some(ForwardTsn {
            new_cumulative_tsn: self.advanced_peer_ack as u32,
            streams,
        })
    }
}
