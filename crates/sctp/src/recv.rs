//! The receiving side: cumulative TSN, gap tracking, reassembly, ordered
//! and unordered delivery, SACKs and FORWARD TSN (RFC 9260 §6.2, §6.5,
//! §6.9; RFC 3758 §3.6).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use bytes::{Bytes, BytesMut};

use crate::chunk::{DataChunk, ForwardTsn, GapAckBlock, Sack};
use crate::tsn::{ssn_after, unwrap_tsn};

/// A whole user message, reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The stream it came on.
    pub stream: u16,
    /// Its payload protocol identifier.
    pub ppid: u32,
    /// The data.
    pub payload: Bytes,
}

/// What one stored fragment or waiting message costs beyond its payload:
/// counting it keeps a peer sending tiny chunks from filling memory with
/// bookkeeping while the window still looks open.
const STORED_OVERHEAD: usize = 64;

fn cost(payload: usize) -> usize {
    payload + STORED_OVERHEAD
}

/// The most gap blocks and duplicate TSNs one SACK reports.
const MAX_GAP_BLOCKS: usize = 64;
const MAX_DUPLICATES: usize = 32;

#[derive(Debug, Default)]
struct InboundStream {
    next_ssn: u16,
    /// Complete ordered messages waiting for earlier ones, by SSN.
    waiting: BTreeMap<u16, Message>,
}

/// What arrived and what to acknowledge.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// The highest TSN up to which everything arrived.
    cumulative_tsn: u64,
    /// TSNs above the cumulative one that arrived.
    received_above: BTreeSet<u64>,
    /// Fragments not yet part of a delivered message, by TSN.
    fragments: BTreeMap<u64, DataChunk>,
    streams: HashMap<u16, InboundStream>,
    duplicates: Vec<u32>,
    /// Bytes held in fragments and waiting messages.
    buffered: usize,
    /// Bytes of delivered messages the application has not read yet
    /// ([`Receiver::set_unread`]): they still occupy the receive buffer
    /// that the advertised window describes (RFC 9260 §6.2).
    unread: usize,
    window: usize,
    max_message_size: usize,
    pub(crate) delivered: VecDeque<Message>,
    /// DATA packets received since the last SACK.
    pub(crate) unacked_packets: u32,
    /// A SACK should go out now (gap, duplicate, or immediate flag).
    pub(crate) ack_now: bool,
}

/// What became of one DATA chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// New data.
    New,
    /// Already had it.
    Duplicate,
    /// No room: dropped (the peer will retransmit).
    Dropped,
}

impl Receiver {
    pub(crate) fn new(peer_initial_tsn: u32, window: usize, max_message_size: usize) -> Self {
        // Unwrapped TSNs start in the second 2^32 block so "initial − 1" is
        // always representable.
        let cumulative_tsn = (1u64 << 32) + u64::from(peer_initial_tsn) - 1;
        Receiver {
            cumulative_tsn,
            received_above: BTreeSet::new(),
            fragments: BTreeMap::new(),
            streams: HashMap::new(),
            duplicates: Vec::new(),
            buffered: 0,
            unread: 0,
            window,
            max_message_size,
            delivered: VecDeque::new(),
            unacked_packets: 0,
            ack_now: false,
        }
    }

    /// The receiver window left (RFC 9260 §6.2).
    pub(crate) fn a_rwnd(&self) -> u32 {
        self.window
            .saturating_sub(self.buffered + self.unread)
            .min(u32::MAX as usize) as u32
    }

    /// Sets how many bytes of delivered messages the application holds
    /// unread; true if that reopened a window that had closed below half,
    /// which the peer should hear about at once (a window update).
    pub(crate) fn set_unread(&mut self, bytes: usize) -> bool {
        let half = (self.window / 2) as u32;
        let before = self.a_rwnd();
        self.unread = bytes;
        before < half && self.a_rwnd() >= half
    }

    pub(crate) fn cumulative_tsn(&self) -> u32 {
        self.cumulative_tsn as u32
    }

    /// Takes one DATA chunk.
    pub(crate) fn receive(&mut self, chunk: DataChunk) -> Accepted {
        let tsn = unwrap_tsn(chunk.tsn, self.cumulative_tsn);
        if chunk.immediate {
            self.ack_now = true;
        }
        if tsn <= self.cumulative_tsn || self.received_above.contains(&tsn) {
            if self.duplicates.len() < MAX_DUPLICATES {
                self.duplicates.push(chunk.tsn);
            }
            self.ack_now = true;
            return Accepted::Duplicate;
        }
        // RFC 9260 §6.2: drop what does not fit, but always take the chunk
        // that moves the cumulative TSN, so a full window cannot deadlock.
        // Unread messages are the application's to drain, so a window
        // they fill refuses even that chunk: a peer that ignores the
        // window cannot grow the application's queue.
        let fills_gap = tsn == self.cumulative_tsn + 1;
        if self.unread >= self.window
            || (!fills_gap && self.buffered + self.unread + cost(chunk.payload.len()) > self.window)
        {
            self.ack_now = true;
            return Accepted::Dropped;
        }
        // A TSN far beyond the window is a confused or hostile peer.
        if tsn > self.cumulative_tsn + (self.window as u64).max(1 << 16) {
            return Accepted::Dropped;
        }
        self.received_above.insert(tsn);
        self.advance_cumulative();
        if !self.received_above.is_empty() {
            self.ack_now = true; // a gap: report it at once (RFC 9260 §6.7)
        }
        self.buffered += cost(chunk.payload.len());
        self.fragments.insert(tsn, chunk);
        self.reassemble_around(tsn);
        Accepted::New
    }

    fn advance_cumulative(&mut self) {
        while self.received_above.remove(&(self.cumulative_tsn + 1)) {
            self.cumulative_tsn += 1;
        }
    }

    /// Looks for a complete message containing `tsn`: fragments of a message
    /// have consecutive TSNs, from a B fragment to an E fragment.
    fn reassemble_around(&mut self, tsn: u64) {
        let Some(chunk) = self.fragments.get(&tsn) else {
            return;
        };
        let (stream, ssn, unordered) = (chunk.stream, chunk.ssn, chunk.unordered);
        let same_message =
            |c: &DataChunk| c.stream == stream && c.ssn == ssn && c.unordered == unordered;
        // Forward to the E fragment first: in-order arrival stops at the
        // first missing TSN, so the walk back runs once per message, not
        // once per fragment.
        let mut last = tsn;
        loop {
            let Some(c) = self.fragments.get(&last) else {
                return;
            };
            if !same_message(c) {
                return;
            }
            if c.ending {
                break;
            }
            last += 1;
        }
        let mut first = tsn;
        loop {
            let Some(c) = self.fragments.get(&first) else {
                return;
            };
            if !same_message(c) {
                return;
            }
            if c.beginning {
                break;
            }
            first -= 1;
        }
        let mut size = 0;
        let mut parts = Vec::with_capacity((last - first + 1) as usize);
        let mut ppid = 0;
        for t in first..=last {
            if let Some(c) = self.fragments.remove(&t) {
                if t == first {
                    ppid = c.ppid;
                }
                size += c.payload.len();
                parts.push(c.payload);
            }
        }
        self.buffered -= size + parts.len() * STORED_OVERHEAD;
        if size > self.max_message_size {
            // RFC 8831 §6.6: larger than we said we take; drop it.
            return;
        }
        let payload = if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            let mut joined = BytesMut::with_capacity(size);
            parts.iter().for_each(|p| joined.extend_from_slice(p));
            joined.freeze()
        };
        let message = Message {
            stream,
            ppid,
            payload,
        };
        if unordered {
            self.delivered.push_back(message);
        } else {
            self.deliver_ordered(ssn, message);
        }
    }

    fn deliver_ordered(&mut self, ssn: u16, message: Message) {
        let stream = self.streams.entry(message.stream).or_default();
        if ssn != stream.next_ssn && !ssn_after(ssn, stream.next_ssn) {
            return; // an old SSN: skipped by FORWARD TSN already
        }
        let id = message.stream;
        self.buffered += cost(message.payload.len());
        stream.waiting.insert(ssn, message);
        self.flush_stream(id);
    }

    fn flush_stream(&mut self, id: u16) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        while let Some(message) = stream.waiting.remove(&stream.next_ssn) {
            stream.next_ssn = stream.next_ssn.wrapping_add(1);
            self.buffered -= cost(message.payload.len());
            self.delivered.push_back(message);
        }
    }

    /// The SACK for what arrived so far (RFC 9260 §3.3.4).
    pub(crate) fn sack(&mut self) -> Sack {
        let mut gap_blocks = Vec::new();
        let mut run: Option<(u64, u64)> = None;
        for &tsn in &self.received_above {
            run = match run {
                Some((start, end)) if tsn == end + 1 => Some((start, tsn)),
                Some((start, end)) => {
                    gap_blocks.push(self.block(start, end));
                    Some((tsn, tsn))
                }
                None => Some((tsn, tsn)),
            };
            if gap_blocks.len() == MAX_GAP_BLOCKS {
                break;
            }
        }
        if let Some((start, end)) = run {
            if gap_blocks.len() < MAX_GAP_BLOCKS {
                gap_blocks.push(self.block(start, end));
            }
        }
        self.unacked_packets = 0;
        self.ack_now = false;
        Sack {
            cumulative_tsn_ack: self.cumulative_tsn as u32,
            a_rwnd: self.a_rwnd(),
            gap_blocks,
            duplicate_tsns: std::mem::take(&mut self.duplicates),
        }
    }

    fn block(&self, start: u64, end: u64) -> GapAckBlock {
        GapAckBlock {
            start: (start - self.cumulative_tsn).min(u64::from(u16::MAX)) as u16,
            end: (end - self.cumulative_tsn).min(u64::from(u16::MAX)) as u16,
        }
    }

    /// RFC 3758 §3.6: the peer abandoned everything up to a TSN.
    pub(crate) fn forward_tsn(&mut self, forward: &ForwardTsn) {
        let new_cumulative = unwrap_tsn(forward.new_cumulative_tsn, self.cumulative_tsn);
        if new_cumulative <= self.cumulative_tsn {
            self.ack_now = true;
            return;
        }
        // Fragments of abandoned messages go.
        let keep = self.fragments.split_off(&(new_cumulative + 1));
        let dropped: usize = self.fragments.values().map(|c| cost(c.payload.len())).sum();
        self.buffered -= dropped;
        self.fragments = keep;
        self.received_above = self.received_above.split_off(&(new_cumulative + 1));
        self.cumulative_tsn = new_cumulative;
        self.advance_cumulative();
        for skipped in &forward.streams {
            let stream = self.streams.entry(skipped.stream).or_default();
            // Deliver what waited up to the skipped SSN, then move past it.
            let mut ready = Vec::new();
            while let Some((&ssn, _)) = stream.waiting.first_key_value() {
                if ssn == skipped.ssn || ssn_after(skipped.ssn, ssn) {
                    if let Some(m) = stream.waiting.remove(&ssn) {
                        ready.push(m);
                    }
                } else {
                    break;
                }
            }
            if ssn_after(skipped.ssn.wrapping_add(1), stream.next_ssn) {
                stream.next_ssn = skipped.ssn.wrapping_add(1);
            }
            for m in ready {
                self.buffered -= cost(m.payload.len());
                self.delivered.push_back(m);
            }
            self.flush_stream(skipped.stream);
        }
        self.ack_now = true;
    }

    /// RFC 6525 §5.2.2: an incoming stream's SSN starts again at 0.
    pub(crate) fn reset_stream(&mut self, stream: u16) {
        if let Some(s) = self.streams.remove(&stream) {
            let held: usize = s.waiting.values().map(|m| cost(m.payload.len())).sum();
            self.buffered -= held;
        }
    }

    /// True when every TSN up to `last_tsn` has arrived.
    pub(crate) fn has_all_up_to(&self, last_tsn: u32) -> bool {
        unwrap_tsn(last_tsn, self.cumulative_tsn) <= self.cumulative_tsn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(tsn: u32, len: usize) -> DataChunk {
        DataChunk {
            tsn,
            stream: 0,
            ssn: 0,
            ppid: 53,
            unordered: true,
            beginning: true,
            ending: false, // never complete: held until the window is full
            immediate: false,
            payload: Bytes::from(vec![0; len]),
        }
    }

    #[test]
    fn tiny_chunks_cannot_fill_memory_past_the_window() {
        let window = 64 * 1024;
        let mut r = Receiver::new(1, window, 1 << 20);
        // TSN 1 never comes; 100,000 one-byte chunks after it.
        for tsn in 2..100_002u32 {
            r.receive(chunk(tsn, 1));
        }
        assert!(
            r.fragments.len() <= window / cost(1) + 1,
            "{} fragments held",
            r.fragments.len()
        );
        assert!(r.received_above.len() <= window / cost(1) + 1);
        assert!((r.a_rwnd() as usize) < cost(1), "the window is used up");
        // The chunk that fills the gap is still taken.
        assert_eq!(r.receive(chunk(1, 1)), Accepted::New);
    }
}
