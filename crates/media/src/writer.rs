//! Samples (whole encoded frames or audio packets with their duration) to
//! RTP packets of one track.

use std::time::Duration;

use bytes::Bytes;

use crate::format::{Packetizer, PayloadFormat};

/// RTP payload bytes per packet: 1,200, which with the RTP header, its
/// extensions (MID, transport-wide sequence) and the SRTP tag stays under
/// the 1,280-byte IPv6 minimum MTU, as browsers do.
pub const MAX_PAYLOAD: usize = 1_200;

/// One RTP packet of a track, before the connection adds SSRC and header
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingPacket {
    /// The track's sequence number (the connection maps it to the wire's).
    pub sequence_number: u16,
    /// The RTP timestamp, in the codec's clock.
    pub timestamp: u32,
    /// Video: the last packet of a frame (RFC 7741 §4.1, RFC 6184 §5.1).
    /// Audio: the first packet of the stream (RFC 3551 §4.1).
    pub marker: bool,
    /// The payload.
    pub payload: Bytes,
}

/// Turns one track's samples into RTP packets: the format's payloads, a
/// timestamp that advances by each sample's duration in the codec's clock
/// (RFC 3550 §5.1; the remainder carried so 30 fps at 90 kHz stays exact
/// over hours), and consecutive sequence numbers from a random start.
#[derive(Debug, Clone)]
pub struct SampleWriter {
    format: PayloadFormat,
    packetizer: Packetizer,
    clock_rate: u32,
    max_payload: usize,
    sequence: u16,
    timestamp: u32,
    /// Nanoseconds times clock rate not yet a whole tick.
    remainder: u128,
    started: bool,
    payloads: Vec<Vec<u8>>,
}

impl SampleWriter {
    /// A writer for `format` in `clock_rate` Hz whose first packet has
    /// sequence number `first_sequence` and timestamp `first_timestamp`
    /// (both random per RFC 3550 §5.1; the caller draws them).
    pub fn new(
        format: PayloadFormat,
        clock_rate: u32,
        first_sequence: u16,
        first_timestamp: u32,
    ) -> Self {
        Self {
            format,
            packetizer: format.packetizer(first_sequence & 0x7FFF),
            clock_rate: clock_rate.max(1),
            max_payload: MAX_PAYLOAD,
            sequence: first_sequence,
            timestamp: first_timestamp,
            remainder: 0,
            started: false,
            payloads: Vec::new(),
        }
    }

    /// The format it writes.
    pub fn format(&self) -> PayloadFormat {
        self.format
    }

    /// The timestamp the next sample gets.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Appends the packets of one sample to `out`: `data` is one encoded
    /// frame (H.264: an Annex B access unit) or one audio packet, shown
    /// for `duration`. An empty video frame sends nothing (and still
    /// takes its time).
    pub fn write(&mut self, data: &[u8], duration: Duration, out: &mut Vec<OutgoingPacket>) {
        let timestamp = self.timestamp;
        self.advance(duration);
        if data.is_empty() && !self.format.is_audio() {
            return;
        }
        self.payloads.clear();
        self.packetizer
            .packetize(data, self.max_payload, &mut self.payloads);
        let count = self.payloads.len();
        for (i, payload) in self.payloads.drain(..).enumerate() {
            let marker = if self.format.is_audio() {
                !self.started
            } else {
                i + 1 == count
            };
            self.started = true;
            out.push(OutgoingPacket {
                sequence_number: self.sequence,
                timestamp,
                marker,
                payload: Bytes::from(payload),
            });
            self.sequence = self.sequence.wrapping_add(1);
        }
    }

    fn advance(&mut self, duration: Duration) {
        let scaled = duration.as_nanos() * u128::from(self.clock_rate) + self.remainder;
        let ticks = scaled / 1_000_000_000;
        self.remainder = scaled % 1_000_000_000;
        self.timestamp = self.timestamp.wrapping_add(ticks as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_durations_exactly() {
        let mut w = SampleWriter::new(PayloadFormat::Vp8, 90_000, 65_535, u32::MAX - 1000);
        let mut out = Vec::new();
        let frame_30fps = Duration::from_nanos(33_333_333);
        for _ in 0..3_000 {
            w.write(&[0x10, 1, 2], frame_30fps, &mut out);
        }
        // 100 s at 90 kHz, off by at most a tick from the rounding of 1/30 s.
        let elapsed = w.next_timestamp().wrapping_sub(u32::MAX - 1000);
        assert!((8_999_999..=9_000_000).contains(&elapsed), "{elapsed}");
        assert_eq!(
            (out[0].sequence_number, out[1].sequence_number),
            (65_535, 0)
        );
        assert_eq!(out[1].timestamp.wrapping_sub(out[0].timestamp), 2_999);
        assert!(
            out.iter().all(|p| p.marker),
            "one packet a frame, each the last"
        );
    }

    #[test]
    fn large_frames_are_split_and_marked_at_their_end() {
        let mut w = SampleWriter::new(PayloadFormat::Vp8, 90_000, 7, 0);
        let mut out = Vec::new();
        w.write(&vec![0u8; 3_000], Duration::from_millis(33), &mut out);
        assert_eq!(out.len(), 3);
        assert!(out
            .iter()
            .all(|p| p.payload.len() <= MAX_PAYLOAD && p.timestamp == 0));
        assert_eq!(
            out.iter().map(|p| p.marker).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(
            out.iter().map(|p| p.sequence_number).collect::<Vec<_>>(),
            [7, 8, 9]
        );
        w.write(&[], Duration::from_millis(33), &mut out);
        assert_eq!(out.len(), 3, "an empty video frame sends nothing");
    }

    #[test]
    fn audio_marks_the_first_packet_only() {
        let mut w = SampleWriter::new(PayloadFormat::Opus, 48_000, 0, 0);
        let mut out = Vec::new();
        for _ in 0..3 {
            w.write(&[0xFC, 1], Duration::from_millis(20), &mut out);
        }
        assert_eq!(
            out.iter()
                .map(|p| (p.marker, p.timestamp))
                .collect::<Vec<_>>(),
            [(true, 0), (false, 960), (false, 1920)]
        );
    }
}
