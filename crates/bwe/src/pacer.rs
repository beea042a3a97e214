//! The pacer: packets leave at the pacing rate in bursts of a few
//! milliseconds instead of all at once when an encoder hands over a frame,
//! so the bottleneck queue sees a smooth flow and the delay-based estimate
//! sees the path, not our own bursts. Audio first and never held, then
//! retransmissions, then video; probes at their cluster's rate, padding
//! when a probe finds nothing queued. Its next send time is one more
//! deadline for the caller's timeout.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::probe::{ProbeCluster, ProbeClusterId};
use crate::Bitrate;

/// How much a burst may carry, in time at the pacing rate.
const BURST: Duration = Duration::from_millis(5);
/// The queue drains within this whatever the pacing rate (libwebrtc's
/// queue time limit): an encoder overshooting a low estimate gets late,
/// not unbounded.
const MAX_QUEUE_TIME: Duration = Duration::from_secs(2);
/// Padding packets are at most this big.
const MAX_PADDING: usize = 1200;
/// Default bound of the queue, packets.
pub const DEFAULT_MAX_QUEUED: usize = 4096;

/// What a packet is, for its priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketKind {
    /// Sent first and never held back (a few kbit/s, the most delay
    /// sensitive).
    Audio,
    /// Retransmissions before new video (the receiver waits for them).
    Retransmission,
    /// Video and everything else.
    Video,
}

impl PacketKind {
    fn queue(self) -> usize {
        match self {
            Self::Audio => 0,
            Self::Retransmission => 1,
            Self::Video => 2,
        }
    }
}

/// The queue is full: the packet comes back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pacer queue is full")]
pub struct PacerFull<T>(pub T);

/// What the pacer lets go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Paced<T> {
    /// A queued packet.
    Packet {
        /// The packet as enqueued.
        packet: T,
        /// Its size as enqueued.
        size: usize,
        /// The probe it belongs to, to tell the estimator.
        probe_cluster: Option<ProbeClusterId>,
    },
    /// The caller should send a padding packet of about `size` bytes (RTP
    /// padding or a retransmission of recent media) for the probe.
    Padding {
        /// Bytes wanted.
        size: usize,
        /// The probe it belongs to.
        probe_cluster: ProbeClusterId,
    },
}

#[derive(Debug, Clone)]
struct Queued<T> {
    packet: T,
    size: usize,
}

#[derive(Debug, Clone, Copy)]
struct ActiveProbe {
    cluster: ProbeCluster,
    start: Instant,
    bytes: usize,
    packets: usize,
}

/// A leaky-bucket pacer over packets of type `T`.
#[derive(Debug, Clone)]
pub struct Pacer<T> {
    queues: [VecDeque<Queued<T>>; 3],
    queued_bytes: usize,
    max_queued: usize,
    rate: Bitrate,
    /// Bytes sent beyond what the rate has paid off.
    debt: f64,
    last_update: Option<Instant>,
    probes: VecDeque<ProbeCluster>,
    probe: Option<ActiveProbe>,
}

impl<T> Pacer<T> {
    /// A pacer at `rate` holding at most `max_queued` packets.
    pub fn new(rate: Bitrate, max_queued: usize) -> Self {
        Self {
            queues: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            queued_bytes: 0,
            max_queued,
            rate,
            debt: 0.0,
            last_update: None,
            probes: VecDeque::new(),
            probe: None,
        }
    }

    /// Sets the pacing rate (libwebrtc paces at 2.5× the target, so a
    /// frame leaves well within its frame interval).
    pub fn set_rate(&mut self, now: Instant, rate: Bitrate) {
        self.update(now);
        self.rate = rate;
    }

    /// Queues a probe cluster at `now`; it goes after the current one.
    pub fn start_probe(&mut self, now: Instant, cluster: ProbeCluster) {
        self.update(now);
        self.probes.push_back(cluster);
    }

    /// Packets waiting.
    pub fn queued_packets(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// Bytes waiting.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Queues a packet of `size` bytes at `now`; when the queue holds its
    /// bound, the packet comes back in the error.
    pub fn enqueue(
        &mut self,
        now: Instant,
        kind: PacketKind,
        size: usize,
        packet: T,
    ) -> Result<(), PacerFull<T>> {
        if self.queued_packets() >= self.max_queued {
            return Err(PacerFull(packet));
        }
        self.update(now);
        self.queues[kind.queue()].push_back(Queued { packet, size });
        self.queued_bytes += size;
        Ok(())
    }

    /// The rate the queue drains at: the pacing rate, or faster when the
    /// queue would otherwise wait longer than [`MAX_QUEUE_TIME`].
    fn drain_rate(&self) -> Bitrate {
        let needed = Bitrate::from_bytes(self.queued_bytes as u64, MAX_QUEUE_TIME);
        self.rate.max(needed)
    }

    fn update(&mut self, now: Instant) {
        if let Some(last) = self.last_update {
            let paid = self
                .drain_rate()
                .bytes_in(now.saturating_duration_since(last));
            self.debt = (self.debt - paid).max(0.0);
        }
        self.last_update = Some(now.max(self.last_update.unwrap_or(now)));
    }

    fn burst_bytes(&self) -> f64 {
        self.drain_rate().bytes_in(BURST)
    }

    fn pop(&mut self, audio_too: bool) -> Option<Queued<T>> {
        let skip = usize::from(!audio_too);
        let queued = self.queues[skip..]
            .iter_mut()
            .find_map(VecDeque::pop_front)?;
        self.queued_bytes -= queued.size;
        Some(queued)
    }

    /// When the probe under way may send its next packet.
    fn probe_due(probe: &ActiveProbe) -> Instant {
        let at = probe
            .cluster
            .rate
            .time_for(probe.bytes as f64)
            .unwrap_or(Duration::ZERO);
        probe.start + at
    }

    /// The next packet to send at `now`, if any may leave. Call until
    /// `None`, then wait for [`Pacer::poll_timeout`].
    pub fn poll_send(&mut self, now: Instant) -> Option<Paced<T>> {
        self.update(now);
        if let Some(audio) = self.queues[0].pop_front() {
            self.queued_bytes -= audio.size;
            self.debt += audio.size as f64;
            return Some(Paced::Packet {
                packet: audio.packet,
                size: audio.size,
                probe_cluster: None,
            });
        }
        if self.probe.is_none() {
            self.probe = self.probes.pop_front().map(|cluster| ActiveProbe {
                cluster,
                start: now,
                bytes: 0,
                packets: 0,
            });
        }
        if let Some(mut probe) = self.probe {
            if Self::probe_due(&probe) > now {
                return None;
            }
            let id = probe.cluster.id;
            let sent = match self.pop(false) {
                Some(q) => {
                    probe.bytes += q.size;
                    Paced::Packet {
                        packet: q.packet,
                        size: q.size,
                        probe_cluster: Some(id),
                    }
                }
                None => {
                    let size = (probe.cluster.min_bytes / probe.cluster.min_packets.max(1))
                        .clamp(200, MAX_PADDING);
                    probe.bytes += size;
                    Paced::Padding {
                        size,
                        probe_cluster: id,
                    }
                }
            };
            probe.packets += 1;
            let done = probe.bytes >= probe.cluster.min_bytes
                && probe.packets >= probe.cluster.min_packets;
            self.probe = (!done).then_some(probe);
            return Some(sent);
        }
        if self.debt >= self.burst_bytes().max(1.0) {
            return None;
        }
        let q = self.pop(false)?;
        self.debt += q.size as f64;
        Some(Paced::Packet {
            packet: q.packet,
            size: q.size,
            probe_cluster: None,
        })
    }

    /// When [`Pacer::poll_send`] may have a packet next; `None` when
    /// nothing waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let last = self.last_update?;
        if !self.queues[0].is_empty() {
            return Some(last);
        }
        if let Some(probe) = &self.probe {
            return Some(Self::probe_due(probe));
        }
        if !self.probes.is_empty() {
            return Some(last);
        }
        if self.queued_packets() == 0 {
            return None;
        }
        let over = self.debt - self.burst_bytes() + 1.0;
        Some(last + self.drain_rate().time_for(over).unwrap_or(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(pacer: &mut Pacer<u32>, now: Instant) -> Vec<Paced<u32>> {
        std::iter::from_fn(|| pacer.poll_send(now)).collect()
    }

    fn ids(sent: &[Paced<u32>]) -> Vec<u32> {
        sent.iter()
            .filter_map(|p| match p {
                Paced::Packet { packet, .. } => Some(*packet),
                Paced::Padding { .. } => None,
            })
            .collect()
    }

    #[test]
    fn audio_then_retransmissions_then_video_at_the_pacing_rate() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        // 1.6 Mbit/s: 1000 bytes every 5 ms; a burst is 5 ms (1000 bytes).
        let mut pacer = Pacer::new(Bitrate::kbps(1600), 100);
        for id in 0..4 {
            pacer.enqueue(t0, PacketKind::Video, 1000, id).unwrap();
        }
        pacer
            .enqueue(t0, PacketKind::Retransmission, 1000, 10)
            .unwrap();
        pacer.enqueue(t0, PacketKind::Audio, 100, 20).unwrap();
        // Audio goes regardless; then one burst.
        assert_eq!(ids(&drain(&mut pacer, t0)), [20, 10]);
        let next = pacer.poll_timeout().unwrap();
        assert!(
            next > t0 && next <= t0 + Duration::from_millis(6),
            "{next:?}"
        );
        assert_eq!(ids(&drain(&mut pacer, next)), [0]);
        // 3 more packets take about 3 × 5 ms.
        let mut now = next;
        let mut sent = Vec::new();
        while let Some(at) = pacer.poll_timeout() {
            now = at;
            sent.extend(ids(&drain(&mut pacer, now)));
        }
        assert_eq!(sent, [1, 2, 3]);
        let took = now - next;
        assert!(
            took >= Duration::from_millis(14) && took <= Duration::from_millis(16),
            "{took:?}"
        );
        assert_eq!((pacer.queued_packets(), pacer.queued_bytes()), (0, 0));
    }

    #[test]
    fn probes_go_at_their_rate_with_padding_when_nothing_waits() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut pacer = Pacer::new(Bitrate::kbps(300), 100);
        pacer.enqueue(t0, PacketKind::Video, 1000, 1).unwrap();
        let cluster = ProbeCluster {
            id: ProbeClusterId(7),
            rate: Bitrate::kbps(2000),
            min_packets: 5,
            min_bytes: 5000,
        };
        pacer.start_probe(t0, cluster);
        let mut now = t0;
        let mut sent = Vec::new();
        while let Some(at) = pacer.poll_timeout() {
            now = at;
            sent.extend(drain(&mut pacer, now));
        }
        // The media packet first, then padding until 5000 bytes and 5 packets.
        assert!(matches!(
            sent[0],
            Paced::Packet {
                packet: 1,
                probe_cluster: Some(ProbeClusterId(7)),
                ..
            }
        ));
        let padding: usize = sent[1..]
            .iter()
            .map(|p| match p {
                Paced::Padding {
                    size,
                    probe_cluster,
                } => {
                    assert_eq!(*probe_cluster, ProbeClusterId(7));
                    *size
                }
                Paced::Packet { .. } => panic!("{p:?}"),
            })
            .sum();
        assert_eq!(sent.len(), 5);
        assert_eq!(padding, 4000);
        // 4000 bytes at 2 Mbit/s: the last leaves 16 ms after the first.
        assert_eq!(now - t0, Duration::from_millis(16));
    }

    #[test]
    fn a_full_queue_gives_the_packet_back() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut pacer = Pacer::new(Bitrate::kbps(300), 2);
        assert_eq!(pacer.poll_timeout(), None);
        pacer.enqueue(t0, PacketKind::Video, 10, 1).unwrap();
        pacer.enqueue(t0, PacketKind::Audio, 10, 2).unwrap();
        assert_eq!(
            pacer.enqueue(t0, PacketKind::Video, 10, 3),
            Err(PacerFull(3))
        );
        // Something waits: due now.
        assert_eq!(pacer.poll_timeout(), Some(t0));
    }
}
