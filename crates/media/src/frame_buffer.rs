//! Received RTP packets to whole frames in decode order: reordering,
//! waiting a bounded time for a missing packet (the connection NACKs it,
//! RFC 4585 §6.2.1, and the sender resends it), giving up on it after that
//! and then asking for a keyframe (PLI, RFC 4585 §6.3.1) and dropping
//! frames until one comes, dropping packets that come after their frame
//! was handed out or given up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_rtp::payload::Depacketizer;

use crate::format::{AnyDepacketizer, PayloadFormat};

/// How long to wait and how much to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameBufferConfig {
    /// How long a missing packet is waited for once a later one came,
    /// before the frames it belongs to are given up. For video, long
    /// enough for a NACK and the retransmission (a round trip and the
    /// sender's pacing); for audio, only reordering.
    pub max_wait: Duration,
    /// Packets held at most; past it the oldest frame is given up.
    pub max_packets: usize,
    /// Bytes of one frame at most; a larger frame is dropped.
    pub max_frame_bytes: usize,
    /// Least time between two keyframe requests while none has come.
    pub keyframe_request_interval: Duration,
}

impl FrameBufferConfig {
    /// For video: 400 ms for a retransmission, room for two NACK rounds
    /// (the connection asks again after 150 ms) on a path of up to 100 ms
    /// round trip with jitter (on netsim with 20 ms + 50 ms jitter each
    /// way and 5% loss, 200 ms kept 51% of 300 frames, 300 ms 76%,
    /// 400 ms 93%); 2,048 packets (a 4K keyframe at 1,200 bytes a packet
    /// is about 700), 8 MB frames, a keyframe request every 200 ms while
    /// stuck (libwebrtc's interval).
    pub fn video() -> Self {
        Self {
            max_wait: Duration::from_millis(400),
            max_packets: 2_048,
            max_frame_bytes: 8 << 20,
            keyframe_request_interval: Duration::from_millis(200),
        }
    }

    /// For audio: 40 ms for a reordered packet, then it counts as lost
    /// (its decoder conceals it); 256 packets (5 s of 20 ms packets).
    pub fn audio() -> Self {
        Self {
            max_wait: Duration::from_millis(40),
            max_packets: 256,
            max_frame_bytes: 64 << 10,
            keyframe_request_interval: Duration::from_millis(500),
        }
    }

    /// The configuration for `format`'s kind.
    pub fn for_format(format: PayloadFormat) -> Self {
        if format.is_audio() {
            Self::audio()
        } else {
            Self::video()
        }
    }
}

/// A whole frame (or audio packet) out of a [`FrameBuffer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// Its payload format (which decoder takes it).
    pub format: PayloadFormat,
    /// The codec bytes (H.264: an Annex B access unit).
    pub data: Bytes,
    /// The RTP timestamp of its packets.
    pub timestamp: u32,
    /// A decoder can start from it.
    pub keyframe: bool,
    /// The sequence numbers of its first and last packet.
    pub sequence_numbers: (u16, u16),
    /// When its last packet arrived.
    pub arrived: Instant,
    /// Frames (audio: packets) given up or dropped just before this one.
    pub skipped_before: u32,
}

/// What a [`FrameBuffer`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameBufferStats {
    /// Frames handed out.
    pub frames: u64,
    /// Frames that could not be assembled (a packet missing past the
    /// wait, a lost start, too large, malformed) or were dropped while
    /// waiting for a keyframe.
    pub frames_dropped: u64,
    /// Packets that came after their place was handed out or given up.
    pub packets_late: u64,
    /// Packets that came twice.
    pub packets_duplicate: u64,
    /// Keyframe requests made ([`FrameBuffer::poll_keyframe_request`]).
    pub keyframe_requests: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    timestamp: u32,
    marker: bool,
    payload: Bytes,
    arrived: Instant,
}

/// Where the frame at the head ends.
enum Extent {
    /// Its packets are `head..=last`, all here.
    Complete(u64),
    /// Its packets run from the head to `last` without a marker yet.
    Partial(u64),
}

/// The receive buffer of one track (sans-IO: time comes from the caller).
/// Feed it packets with [`FrameBuffer::insert`]; take frames with
/// [`FrameBuffer::poll_frame`], keyframe requests with
/// [`FrameBuffer::poll_keyframe_request`], and call again at
/// [`FrameBuffer::poll_timeout`].
#[derive(Debug)]
pub struct FrameBuffer {
    format: PayloadFormat,
    depacketizer: AnyDepacketizer,
    config: FrameBufferConfig,
    /// Packets by extended sequence number, none below `next`.
    packets: BTreeMap<u64, Stored>,
    /// The extended sequence number of the next packet to hand out.
    next: Option<u64>,
    highest: Option<u64>,
    /// Since when the head has waited for a missing packet.
    gap_since: Option<Instant>,
    /// Video after a loss: frames wait for a keyframe.
    need_keyframe: bool,
    /// A keyframe request should go out.
    keyframe_wanted: bool,
    last_request: Option<Instant>,
    skipped: u32,
    /// A frame was handed out or given up: `next` only moves forward.
    started: bool,
    stats: FrameBufferStats,
}

/// A sequence number this far ahead of the highest restarts the buffer
/// (the sender restarted its numbering), as libwebrtc's packet buffer does
/// for a jump past its size.
const RESTART_JUMP: u64 = 3_000;

impl FrameBuffer {
    /// A buffer for `format`. Video starts waiting for a keyframe.
    pub fn new(format: PayloadFormat, config: FrameBufferConfig) -> Self {
        Self {
            format,
            depacketizer: format.depacketizer(),
            config,
            packets: BTreeMap::new(),
            next: None,
            highest: None,
            gap_since: None,
            need_keyframe: !format.is_audio(),
            keyframe_wanted: false,
            last_request: None,
            skipped: 0,
            started: false,
            stats: FrameBufferStats::default(),
        }
    }

    /// The format it assembles.
    pub fn format(&self) -> PayloadFormat {
        self.format
    }

    /// What it has done so far.
    pub fn stats(&self) -> FrameBufferStats {
        self.stats
    }

    /// Packets held now.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether it holds no packet.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Adds a received packet (any order, repeats allowed).
    pub fn insert(
        &mut self,
        now: Instant,
        sequence_number: u16,
        timestamp: u32,
        marker: bool,
        payload: Bytes,
    ) {
        let ext = match self.highest {
            None => 1 << 32 | u64::from(sequence_number),
            Some(h) => {
                h.wrapping_add_signed(i64::from(sequence_number.wrapping_sub(h as u16) as i16))
            }
        };
        let next = *self.next.get_or_insert(ext);
        let highest = self.highest.unwrap_or(ext);
        if ext > highest + RESTART_JUMP {
            // A new numbering: what is held belongs to the old one.
            self.stats.frames_dropped += u64::from(!self.packets.is_empty());
            self.packets.clear();
            self.next = Some(ext);
            self.gap_since = None;
            self.need_keyframe |= !self.format.is_audio();
        } else if ext < next && !self.started && next - ext < self.config.max_packets as u64 {
            // Reordered before anything was handed out: the stream
            // starts earlier than its first arrival said.
            self.next = Some(ext);
        } else if ext < next {
            self.stats.packets_late += 1;
            return;
        }
        if self.packets.contains_key(&ext) {
            self.stats.packets_duplicate += 1;
            return;
        }
        self.highest = Some(highest.max(ext));
        self.packets.insert(
            ext,
            Stored {
                timestamp,
                marker,
                payload,
                arrived: now,
            },
        );
        while self.packets.len() > self.config.max_packets {
            self.give_up_head();
        }
    }

    /// The next whole frame in decode order, if one is ready now.
    pub fn poll_frame(&mut self, now: Instant) -> Option<ReceivedFrame> {
        loop {
            let next = self.next?;
            let Some((&first, _)) = self.packets.first_key_value() else {
                self.gap_since = None;
                return None;
            };
            if first != next {
                // The head packet is missing and a later one is here.
                if !self.waited_enough(now) {
                    return None;
                }
                self.next = Some(first);
                self.started = true;
                self.lost();
                continue;
            }
            match self.extent(next) {
                Extent::Complete(last) => {
                    if !self.started && !self.starts_frame(next) && !self.waited_enough(now) {
                        // The first arrival may not be the stream's first
                        // packet: its start may still come.
                        return None;
                    }
                    self.gap_since = None;
                    if let Some(frame) = self.take(next, last) {
                        return Some(frame);
                    }
                }
                Extent::Partial(last) => {
                    let later = self.packets.range(last + 1..).next().is_some();
                    if !later {
                        // The rest of the frame is on its way.
                        self.gap_since = None;
                        return None;
                    }
                    if !self.waited_enough(now) {
                        return None;
                    }
                    self.remove(next, last);
                    self.next = Some(last + 1);
                    self.started = true;
                    self.stats.frames_dropped += 1;
                    self.skipped += 1;
                    self.lost();
                }
            }
        }
    }

    /// Whether a keyframe request (PLI) should go out now; then it counts
    /// as sent. Asked when a frame was given up or could not be decoded
    /// from, and again every [`FrameBufferConfig::keyframe_request_interval`]
    /// until a keyframe comes.
    pub fn poll_keyframe_request(&mut self, now: Instant) -> bool {
        let due = self.keyframe_wanted
            && self
                .last_request
                .is_none_or(|t| now >= t + self.config.keyframe_request_interval);
        if due {
            self.last_request = Some(now);
            self.stats.keyframe_requests += 1;
        }
        due
    }

    /// When to poll again: a missing packet's wait ends, or a keyframe
    /// request is due again.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let gap = self.gap_since.map(|t| t + self.config.max_wait);
        let request = self
            .keyframe_wanted
            .then(|| {
                self.last_request
                    .map(|t| t + self.config.keyframe_request_interval)
            })
            .flatten();
        gap.into_iter().chain(request).min()
    }

    fn waited_enough(&mut self, now: Instant) -> bool {
        let since = *self.gap_since.get_or_insert(now);
        now >= since + self.config.max_wait
    }

    /// A packet was given up: video can no longer decode what depends on it.
    fn lost(&mut self) {
        if !self.format.is_audio() {
            self.need_keyframe = true;
            self.keyframe_wanted = true;
        } else {
            self.skipped += 1;
        }
    }

    /// Whether the packet at `seq` begins a frame.
    fn starts_frame(&mut self, seq: u64) -> bool {
        let Some(p) = self.packets.get(&seq) else {
            return false;
        };
        let mut scratch = Vec::new();
        matches!(
            self.depacketizer.depacketize(&p.payload, &mut scratch),
            Ok(true)
        )
    }

    fn extent(&self, head: u64) -> Extent {
        let mut last = head;
        let mut timestamp = None;
        for (&seq, p) in self.packets.range(head..) {
            if seq != last + u64::from(timestamp.is_some()) {
                break;
            }
            if self.format.is_audio() {
                return Extent::Complete(seq);
            }
            match timestamp {
                // The next frame began without a marker on this one.
                Some(ts) if ts != p.timestamp => return Extent::Complete(last),
                _ => timestamp = Some(p.timestamp),
            }
            last = seq;
            if p.marker {
                return Extent::Complete(seq);
            }
        }
        Extent::Partial(last)
    }

    fn remove(&mut self, first: u64, last: u64) {
        let rest = self.packets.split_off(&(last + 1));
        self.packets.retain(|&k, _| k < first);
        self.packets.extend(rest);
    }

    /// Assembles `first..=last` and hands it out if it decodes from here.
    fn take(&mut self, first: u64, last: u64) -> Option<ReceivedFrame> {
        let rest = self.packets.split_off(&(last + 1));
        let packets = std::mem::replace(&mut self.packets, rest);
        self.next = Some(last + 1);
        self.started = true;
        let mut data = Vec::new();
        let mut whole = true;
        let (mut timestamp, mut arrived) = (0, None);
        for (i, p) in packets.values().enumerate() {
            match self.depacketizer.depacketize(&p.payload, &mut data) {
                Ok(starts) if i == 0 && !starts => whole = false,
                Ok(_) => {}
                Err(_) => whole = false,
            }
            if data.len() > self.config.max_frame_bytes {
                whole = false;
            }
            if !whole {
                break;
            }
            timestamp = p.timestamp;
            arrived = Some(p.arrived);
        }
        let keyframe = whole && self.format.is_keyframe(&data);
        if !whole || (self.need_keyframe && !keyframe) {
            self.stats.frames_dropped += 1;
            self.skipped += 1;
            if !self.format.is_audio() {
                self.need_keyframe = true;
                self.keyframe_wanted = true;
            }
            return None;
        }
        if keyframe && !self.format.is_audio() {
            self.need_keyframe = false;
            self.keyframe_wanted = false;
            self.last_request = None;
        }
        self.stats.frames += 1;
        Some(ReceivedFrame {
            format: self.format,
            data: Bytes::from(data),
            timestamp,
            keyframe,
            sequence_numbers: (first as u16, last as u16),
            arrived: arrived?,
            skipped_before: std::mem::take(&mut self.skipped),
        })
    }

    /// Over the packet bound: the oldest frame goes.
    fn give_up_head(&mut self) {
        let Some((&first, _)) = self.packets.first_key_value() else {
            return;
        };
        let last = match self.extent(first) {
            Extent::Complete(last) | Extent::Partial(last) => last,
        };
        self.remove(first, last);
        self.next = Some(last + 1);
        self.started = true;
        self.gap_since = None;
        self.stats.frames_dropped += 1;
        self.skipped += 1;
        self.lost();
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the clock once for a start time
mod tests {
    use super::*;
    use crate::writer::{OutgoingPacket, SampleWriter};

    const FRAME: Duration = Duration::from_millis(33);

    /// `count` VP8 frames of `packets` packets each: a keyframe first and
    /// where `keyframes` says, inter frames otherwise; byte 1 is the
    /// frame's index.
    fn vp8_frames(count: u8, packets: usize, keyframes: &[u8]) -> Vec<OutgoingPacket> {
        let mut w = SampleWriter::new(PayloadFormat::Vp8, 90_000, 65_530, 0);
        let mut out = Vec::new();
        for i in 0..count {
            let tag = if i == 0 || keyframes.contains(&i) {
                0x10
            } else {
                0x11
            };
            let mut frame = vec![tag, i];
            frame.resize((packets - 1) * 1_196 + 10, i);
            w.write(&frame, FRAME, &mut out);
        }
        out
    }

    fn insert(b: &mut FrameBuffer, now: Instant, p: &OutgoingPacket) {
        b.insert(
            now,
            p.sequence_number,
            p.timestamp,
            p.marker,
            p.payload.clone(),
        );
    }

    fn drain(b: &mut FrameBuffer, now: Instant) -> Vec<u8> {
        std::iter::from_fn(|| b.poll_frame(now))
            .map(|f| f.data[1])
            .collect()
    }

    #[test]
    fn reordered_packets_make_whole_frames_in_order_across_the_wrap() {
        let now = Instant::now();
        let packets = vp8_frames(6, 3, &[]);
        let mut b = FrameBuffer::new(PayloadFormat::Vp8, FrameBufferConfig::video());
        // Each frame's packets in reverse, frames 2 and 3 swapped.
        let mut order: Vec<usize> = (0..18).collect();
        order.chunks_mut(3).for_each(|c| c.reverse());
        order.swap(6, 9);
        order.swap(7, 10);
        order.swap(8, 11);
        let mut got = Vec::new();
        for i in order {
            insert(&mut b, now, &packets[i]);
            got.extend(drain(&mut b, now));
        }
        assert_eq!(got, [0, 1, 2, 3, 4, 5]);
        let s = b.stats();
        assert_eq!((s.frames, s.frames_dropped, s.keyframe_requests), (6, 0, 0));
        assert!(b.is_empty() && b.poll_timeout().is_none());
    }

    #[test]
    fn a_retransmission_within_the_wait_loses_nothing() {
        let t0 = Instant::now();
        let packets = vp8_frames(4, 2, &[]);
        let mut b = FrameBuffer::new(PayloadFormat::Vp8, FrameBufferConfig::video());
        let mut got = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            if i != 3 {
                insert(&mut b, t0, p);
                got.extend(drain(&mut b, t0));
            }
        }
        assert_eq!(got, [0]);
        let wait = FrameBufferConfig::video().max_wait;
        assert_eq!(b.poll_timeout(), Some(t0 + wait));
        let later = t0 + wait - Duration::from_millis(50);
        insert(&mut b, later, &packets[3]);
        assert_eq!(drain(&mut b, later), [1, 2, 3]);
        assert!(!b.poll_keyframe_request(later));
    }

    #[test]
    fn a_loss_past_the_wait_asks_for_a_keyframe_and_drops_until_one() {
        let t0 = Instant::now();
        let packets = vp8_frames(8, 2, &[5]);
        let mut b = FrameBuffer::new(PayloadFormat::Vp8, FrameBufferConfig::video());
        for (i, p) in packets.iter().enumerate().take(10) {
            if i != 3 {
                insert(&mut b, t0, p);
            }
        }
        assert_eq!(drain(&mut b, t0), [0]);
        let FrameBufferConfig {
            max_wait,
            keyframe_request_interval: interval,
            ..
        } = FrameBufferConfig::video();
        let late = t0 + max_wait;
        assert_eq!(drain(&mut b, late), [], "frames 2-4 need frame 1");
        assert!(b.poll_keyframe_request(late));
        assert!(!b.poll_keyframe_request(late + interval / 2));
        assert_eq!(b.poll_timeout(), Some(late + interval));
        assert!(
            b.poll_keyframe_request(late + interval),
            "again while stuck"
        );
        // The retransmission comes too late: dropped.
        insert(&mut b, late, &packets[3]);
        assert_eq!(b.stats().packets_late, 1);
        for p in &packets[10..] {
            insert(&mut b, late, p);
        }
        assert_eq!(drain(&mut b, late), [5, 6, 7]);
        let s = b.stats();
        assert_eq!((s.frames, s.frames_dropped, s.keyframe_requests), (4, 4, 2));
        assert!(
            !b.poll_keyframe_request(late + Duration::from_secs(5)),
            "a keyframe came"
        );
    }

    #[test]
    fn a_stream_joined_mid_frame_or_without_a_keyframe_waits_for_one() {
        let now = Instant::now();
        let packets = vp8_frames(4, 2, &[3]);
        let mut b = FrameBuffer::new(PayloadFormat::Vp8, FrameBufferConfig::video());
        for p in &packets[1..] {
            insert(&mut b, now, p);
        }
        assert_eq!(drain(&mut b, now), [], "its start may still come");
        let wait = FrameBufferConfig::video().max_wait;
        assert_eq!(drain(&mut b, now + wait), [3]);
        assert_eq!(b.stats().frames_dropped, 3);
    }

    #[test]
    fn audio_skips_a_lost_packet_after_a_short_wait() {
        let t0 = Instant::now();
        let mut w = SampleWriter::new(PayloadFormat::Opus, 48_000, 100, 0);
        let mut packets = Vec::new();
        for i in 0..5u8 {
            w.write(&[0xFC, i], Duration::from_millis(20), &mut packets);
        }
        let mut b = FrameBuffer::new(PayloadFormat::Opus, FrameBufferConfig::audio());
        for (i, p) in packets.iter().enumerate() {
            if i != 2 {
                insert(&mut b, t0, p);
            }
        }
        assert_eq!(drain(&mut b, t0), [0, 1]);
        let frames: Vec<_> =
            std::iter::from_fn(|| b.poll_frame(t0 + Duration::from_millis(40))).collect();
        assert_eq!(
            frames
                .iter()
                .map(|f| (f.data[1], f.skipped_before))
                .collect::<Vec<_>>(),
            [(3, 1), (4, 0)]
        );
        assert!(!b.poll_keyframe_request(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn memory_is_bounded_when_a_frame_never_completes() {
        let now = Instant::now();
        let config = FrameBufferConfig {
            max_packets: 16,
            ..FrameBufferConfig::video()
        };
        let mut b = FrameBuffer::new(PayloadFormat::Vp8, config);
        // Frame 0's packets, never its marker, then more frames.
        for seq in 0..100u16 {
            b.insert(
                now,
                seq,
                u32::from(seq / 50),
                false,
                Bytes::from_static(&[0x90, 0x80, 0, 0, 0x10]),
            );
            assert!(b.len() <= 16);
        }
        assert!(b.stats().frames_dropped > 0);
    }

    #[test]
    fn a_sequence_restart_starts_over() {
        let now = Instant::now();
        let packets = vp8_frames(3, 1, &[2]);
        let mut b = FrameBuffer::new(PayloadFormat::Vp8, FrameBufferConfig::video());
        insert(&mut b, now, &packets[0]);
        assert_eq!(drain(&mut b, now), [0]);
        for p in &packets[1..] {
            let mut p = p.clone();
            p.sequence_number = p.sequence_number.wrapping_add(20_000);
            insert(&mut b, now, &p);
        }
        assert_eq!(drain(&mut b, now), [2]);
    }

    proptest::proptest! {
        #[test]
        fn any_arrival_order_hands_out_frames_in_order_and_stays_bounded(
            arrivals in proptest::collection::vec((0u16..64, proptest::bool::ANY, 0u32..8, 0u64..400), 0..300)
        ) {
            let t0 = Instant::now();
            let config = FrameBufferConfig { max_packets: 32, ..FrameBufferConfig::video() };
            let mut b = FrameBuffer::new(PayloadFormat::H264 { packetization_mode: 1 }, config);
            let mut last = None;
            for (seq, marker, ts, ms) in arrivals {
                let now = t0 + Duration::from_millis(ms);
                b.insert(now, 65_500u16.wrapping_add(seq), ts, marker, Bytes::from_static(&[0x65, 1]));
                proptest::prop_assert!(b.len() <= 32);
                while let Some(f) = b.poll_frame(now) {
                    let first = f.sequence_numbers.0;
                    if let Some(l) = last {
                        proptest::prop_assert!(first.wrapping_sub(l) as i16 > 0);
                    }
                    last = Some(f.sequence_numbers.1);
                }
                let _ = b.poll_keyframe_request(now);
            }
        }
    }
}
