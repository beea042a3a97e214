//! Messages waiting for TSNs: one queue per stream, served round robin at
//! message boundaries, so a large message on one data channel does not hold
//! back the others for more than itself. Fragments of one message keep
//! consecutive TSNs (RFC 9260 §6.9), so streams only take turns between
//! messages.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::send::Reliability;

/// A user message waiting to be cut into DATA chunks.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) id: u64,
    pub(crate) stream: u16,
    pub(crate) ssn: u16,
    pub(crate) ppid: u32,
    pub(crate) unordered: bool,
    pub(crate) payload: Bytes,
    /// Bytes already cut into chunks.
    pub(crate) offset: usize,
    pub(crate) reliability: Reliability,
    pub(crate) created: Instant,
}

/// The per-stream queues and the round-robin cursor.
#[derive(Debug, Default)]
pub(crate) struct OutboundQueue {
    streams: BTreeMap<u16, VecDeque<Outbound>>,
    /// The stream whose front message is being cut into chunks.
    current: Option<u16>,
    /// Where the next turn starts.
    next: u16,
}

impl OutboundQueue {
    pub(crate) fn push(&mut self, message: Outbound) {
        self.streams
            .entry(message.stream)
            .or_default()
            .push_back(message);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    pub(crate) fn has_stream(&self, stream: u16) -> bool {
        self.streams.contains_key(&stream)
    }

    pub(crate) fn has_message(&self, id: u64) -> bool {
        self.streams.values().any(|q| q.iter().any(|m| m.id == id))
    }

    /// The message to cut next: the one in progress, else the front of the
    /// next stream in turn.
    pub(crate) fn front_mut(&mut self) -> Option<&mut Outbound> {
        let stream = match self.current {
            Some(s) if self.streams.contains_key(&s) => s,
            _ => {
                let s = self
                    .streams
                    .range(self.next..)
                    .next()
                    .or_else(|| self.streams.iter().next())
                    .map(|(s, _)| *s)?;
                self.current = Some(s);
                s
            }
        };
        self.streams.get_mut(&stream).and_then(VecDeque::front_mut)
    }

    /// The message in progress is fully cut: the next stream takes its turn.
    pub(crate) fn pop_front(&mut self) {
        let Some(stream) = self.current.take() else {
            return;
        };
        if let Some(q) = self.streams.get_mut(&stream) {
            q.pop_front();
            if q.is_empty() {
                self.streams.remove(&stream);
            }
        }
        self.next = stream.wrapping_add(1);
    }

    /// Takes a message out (abandoned before all of it was cut).
    pub(crate) fn remove_message(&mut self, id: u64) -> Option<Outbound> {
        let (&stream, queue) = self
            .streams
            .iter_mut()
            .find(|(_, q)| q.iter().any(|m| m.id == id))?;
        let index = queue.iter().position(|m| m.id == id)?;
        let message = queue.remove(index);
        if index == 0 && self.current == Some(stream) {
            self.current = None;
        }
        if queue.is_empty() {
            self.streams.remove(&stream);
        }
        message
    }
}
