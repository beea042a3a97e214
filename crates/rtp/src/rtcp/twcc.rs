//! Transport-wide congestion control feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): RTPFB FMT 15,
//! the arrival time of every packet numbered by the transport-wide sequence
//! number header extension (§2), so the sender can run its delay-based
//! estimator.

use super::{packet_type, write_packet, Body};
use crate::{be16, be32, ParseError, WriteError};

/// One packet's fate in a feedback packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketArrival {
    /// §3.1.1 symbol 00: not received (yet).
    NotReceived,
    /// §3.1.1 symbols 01 (small delta, 0..=255) and 10 (large or negative
    /// delta): received, `delta` ticks of 250 µs after the previous received
    /// packet of this feedback (the first: after the reference time).
    Received {
        /// Receive delta in 250 µs ticks (§3.1.5).
        delta: i16,
    },
}

impl PacketArrival {
    /// The 2-bit status symbol (§3.1.1).
    fn symbol(self) -> u8 {
        match self {
            Self::NotReceived => 0,
            Self::Received { delta: 0..=255 } => 1,
            Self::Received { .. } => 2,
        }
    }
}

/// A transport-wide feedback packet (§3.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransportFeedback {
    /// Who sends the feedback.
    pub sender_ssrc: u32,
    /// The media source (libwebrtc puts the first media SSRC it received;
    /// the feedback is transport-wide, whatever this says).
    pub media_ssrc: u32,
    /// The transport-wide sequence number of `packets[0]`.
    pub base_sequence: u16,
    /// §3.1: 24-bit signed reference time in multiples of 64 ms, in a time
    /// base of the feedback sender's choice; only differences mean anything.
    pub reference_time: u32,
    /// §3.1: counts feedback packets sent, so the sender can see lost ones.
    pub feedback_count: u8,
    /// What became of packets `base_sequence`, `base_sequence + 1`, ...
    /// (at most 65535; wrapping).
    pub packets: Vec<PacketArrival>,
}

/// µs per receive delta tick (§3.1.5: 250 µs).
pub const DELTA_TICK_MICROS: i64 = 250;
/// µs per reference time unit (§3.1: 64 ms).
pub const REFERENCE_TIME_MICROS: i64 = 64_000;
/// §3.1: the reference time is 24 bits.
const REFERENCE_TIME_MASK: u32 = 0x00FF_FFFF;

/// §3.1.3: a run-length chunk repeats one symbol up to 8191 times.
const MAX_RUN: usize = 0x1FFF;
/// §3.1.4: a status vector chunk holds 14 one-bit or 7 two-bit symbols.
const ONE_BIT_SYMBOLS: usize = 14;
const TWO_BIT_SYMBOLS: usize = 7;

impl TransportFeedback {
    /// FMT of transport-wide feedback in an RTPFB packet.
    pub const FORMAT: u8 = 15;

    /// Each packet's sequence number and, if received, its arrival in µs
    /// since the feedback sender's time base (`reference_time` × 64 ms plus
    /// the deltas so far).
    pub fn arrivals(&self) -> impl Iterator<Item = (u16, Option<i64>)> + '_ {
        let mut at = i64::from(self.reference_time) * REFERENCE_TIME_MICROS;
        self.packets.iter().enumerate().map(move |(i, p)| {
            let seq = self.base_sequence.wrapping_add(i as u16);
            match p {
                PacketArrival::NotReceived => (seq, None),
                PacketArrival::Received { delta } => {
                    at += i64::from(*delta) * DELTA_TICK_MICROS;
                    (seq, Some(at))
                }
            }
        })
    }

    pub(super) fn parse(body: Body<'_>) -> Result<Self, ParseError> {
        let fixed = body.get(0..16, "transport-cc feedback header")?;
        let count = usize::from(be16(fixed, 10));
        let mut feedback = Self {
            sender_ssrc: be32(fixed, 0),
            media_ssrc: be32(fixed, 4),
            base_sequence: be16(fixed, 8),
            reference_time: be32(fixed, 12) >> 8,
            feedback_count: fixed[15],
            packets: Vec::with_capacity(count),
        };
        // §3.1.2: packet status chunks until `count` symbols are known.
        let mut symbols = Vec::with_capacity(count);
        let mut at = 16;
        while symbols.len() < count {
            let chunk = be16(body.get(at..at + 2, "packet status chunk")?, 0);
            let left = count - symbols.len();
            if chunk & 0x8000 == 0 {
                // §3.1.3: run length chunk, 2-bit symbol and 13-bit length.
                let symbol = (chunk >> 13) as u8 & 0b11;
                let run = usize::from(chunk & 0x1FFF);
                symbols.extend(std::iter::repeat_n(symbol, run.min(left)));
            } else if chunk & 0x4000 == 0 {
                // §3.1.4: 14 one-bit symbols (received with small delta or not).
                symbols
                    .extend((0..ONE_BIT_SYMBOLS.min(left)).map(|i| (chunk >> (13 - i)) as u8 & 1));
            } else {
                symbols.extend(
                    (0..TWO_BIT_SYMBOLS.min(left)).map(|i| (chunk >> (12 - 2 * i)) as u8 & 0b11),
                );
            }
            at += 2;
        }
        // §3.1.5: a receive delta for every received packet, in order.
        for symbol in symbols {
            let arrival = match symbol {
                0 => PacketArrival::NotReceived,
                1 => {
                    let delta = body.get(at..at + 1, "small receive delta")?[0];
                    at += 1;
                    PacketArrival::Received {
                        delta: i16::from(delta),
                    }
                }
                2 => {
                    let delta = be16(body.get(at..at + 2, "large receive delta")?, 0);
                    at += 2;
                    PacketArrival::Received {
                        delta: delta as i16,
                    }
                }
                _ => {
                    return Err(ParseError::Malformed {
                        offset: body.at + at,
                        what: "reserved transport-cc status symbol 11",
                    })
                }
            };
            feedback.packets.push(arrival);
        }
        // What follows is zero padding to a 32-bit boundary (§3.1).
        Ok(feedback)
    }

    /// Appends the packet to `out`: status chunks picked to be compact
    /// (runs where packets repeat a status, vectors elsewhere), then the
    /// deltas, zero-padded to 32 bits.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        let count = u16::try_from(self.packets.len()).map_err(|_| WriteError::TooMany {
            what: "transport-cc packet statuses",
            count: self.packets.len(),
            max: usize::from(u16::MAX),
        })?;
        if self.reference_time > REFERENCE_TIME_MASK {
            return Err(WriteError::Invalid {
                what: "transport-cc reference time over 24 bits",
            });
        }
        write_packet(out, usize::from(Self::FORMAT), packet_type::RTPFB, |out| {
            out.extend_from_slice(&self.sender_ssrc.to_be_bytes());
            out.extend_from_slice(&self.media_ssrc.to_be_bytes());
            out.extend_from_slice(&self.base_sequence.to_be_bytes());
            out.extend_from_slice(&count.to_be_bytes());
            let reference = self.reference_time << 8 | u32::from(self.feedback_count);
            out.extend_from_slice(&reference.to_be_bytes());
            let symbols: Vec<u8> = self.packets.iter().map(|p| p.symbol()).collect();
            write_chunks(&symbols, out);
            for p in &self.packets {
                match *p {
                    PacketArrival::Received { delta: d @ 0..=255 } => out.push(d as u8),
                    PacketArrival::Received { delta } => {
                        out.extend_from_slice(&delta.to_be_bytes());
                    }
                    PacketArrival::NotReceived => {}
                }
            }
            while out.len() % 4 != 0 {
                out.push(0);
            }
            Ok(())
        })
    }
}

/// Encodes status symbols as chunks (§3.1.3, §3.1.4): a run-length chunk
/// where a run is long enough to beat the vector that could hold it (or
/// ends the list), otherwise a one-bit vector when the next 14 symbols need
/// no large delta, else a two-bit vector of 7.
fn write_chunks(symbols: &[u8], out: &mut Vec<u8>) {
    let mut at = 0;
    while at < symbols.len() {
        let rest = &symbols[at..];
        let run = rest
            .iter()
            .take(MAX_RUN)
            .take_while(|&&s| s == rest[0])
            .count();
        let one_bit = rest.iter().take(ONE_BIT_SYMBOLS).all(|&s| s < 2);
        let vector_len = if one_bit {
            ONE_BIT_SYMBOLS
        } else {
            TWO_BIT_SYMBOLS
        };
        if run >= vector_len || run == rest.len() {
            out.extend_from_slice(&(u16::from(rest[0]) << 13 | run as u16).to_be_bytes());
            at += run;
        } else if one_bit {
            let mut chunk = 0x8000u16;
            for (i, &s) in rest.iter().take(ONE_BIT_SYMBOLS).enumerate() {
                chunk |= u16::from(s) << (13 - i);
            }
            out.extend_from_slice(&chunk.to_be_bytes());
            at += ONE_BIT_SYMBOLS;
        } else {
            let mut chunk = 0xC000u16;
            for (i, &s) in rest.iter().take(TWO_BIT_SYMBOLS).enumerate() {
                chunk |= u16::from(s) << (12 - 2 * i);
            }
            out.extend_from_slice(&chunk.to_be_bytes());
            at += TWO_BIT_SYMBOLS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CompoundPacket, RtcpPacket};
    use super::*;

    fn parse(data: &[u8]) -> TransportFeedback {
        let packets: Vec<_> = CompoundPacket::new(data).collect::<Result<_, _>>().unwrap();
        match &packets[..] {
            [RtcpPacket::TransportFeedback(f)] => f.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn received(delta: i16) -> PacketArrival {
        PacketArrival::Received { delta }
    }

    /// Chrome's feedback as captured in pion/rtcp's tests: one run-length
    /// chunk, one small delta of 148 ticks (37 ms), 3 bytes of RTCP padding.
    #[test]
    fn chrome_run_length_with_padding() {
        let f = parse(&[
            0xaf, 0xcd, 0x00, 0x05, 0xfa, 0x17, 0xfa, 0x17, 0x43, 0x03, 0x2f, 0xa0, 0x00, 0x99,
            0x00, 0x01, 0x3d, 0xe8, 0x02, 0x17, 0x20, 0x01, 0x94, 0x01,
        ]);
        assert_eq!(f.sender_ssrc, 0xfa17_fa17);
        assert_eq!(f.media_ssrc, 0x4303_2fa0);
        assert_eq!(f.base_sequence, 153);
        assert_eq!(f.reference_time, 0x3de802);
        assert_eq!(f.feedback_count, 23);
        assert_eq!(f.packets, [received(148)]);
        let arrival = 0x3de802 * REFERENCE_TIME_MICROS + 37_000;
        assert_eq!(f.arrivals().collect::<Vec<_>>(), [(153, Some(arrival))]);
    }

    /// pion/rtcp: two runs (2 large deltas, 4 small ones).
    #[test]
    fn two_runs_large_and_small_deltas() {
        let f = parse(&[
            0x8f, 0xcd, 0x00, 0x07, 0xfa, 0x17, 0xfa, 0x17, 0x19, 0x3d, 0xd8, 0xbb, 0x01, 0x74,
            0x00, 0x06, 0x45, 0xb1, 0x5a, 0x40, 0x40, 0x02, 0x20, 0x04, 0x1f, 0xfe, 0x1f, 0x9a,
            0xd0, 0x00, 0xd0, 0x00,
        ]);
        assert_eq!((f.base_sequence, f.feedback_count), (372, 64));
        assert_eq!(
            f.packets,
            [
                received(0x1ffe),
                received(0x1f9a),
                received(0xd0),
                received(0),
                received(0xd0),
                received(0),
            ]
        );
        // Written again: same bytes (no padding needed).
        let mut out = Vec::new();
        f.write(&mut out).unwrap();
        assert_eq!(parse(&out), f);
        assert_eq!(out.len(), 32);
    }

    /// pion/rtcp's example of two-bit status vectors: the second vector
    /// holds symbol 11, which the draft reserves (§3.1.1) and libwebrtc
    /// refuses too; guessing a meaning would misplace every later delta.
    #[test]
    fn reserved_symbol_is_refused() {
        let data = [
            0xaf, 0xcd, 0x00, 0x06, 0xfa, 0x17, 0xfa, 0x17, 0x19, 0x3d, 0xd8, 0xbb, 0x01, 0x74,
            0x00, 0x0e, 0x45, 0xb1, 0x5a, 0x40, 0xd8, 0x00, 0xf0, 0xff, 0xd0, 0x00, 0x00, 0x03,
        ];
        assert!(matches!(CompoundPacket::new(&data).next(), Some(Err(_))));
        // The symbol alone, in a run: refused by name.
        let run_of_reserved = [
            0x8f, 0xcd, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x01, 0x00, 0x01, 0, 0, 0, 0,
            0x60, 0x01, 0x00, 0x00,
        ];
        assert!(matches!(
            CompoundPacket::new(&run_of_reserved).next(),
            Some(Err(ParseError::Malformed { .. }))
        ));
    }

    #[test]
    fn round_trips_losses_and_negative_deltas() {
        let mut packets = vec![received(4), PacketArrival::NotReceived, received(-3)];
        packets.extend(std::iter::repeat_n(PacketArrival::NotReceived, 300));
        packets.extend((0..40).map(|i| received(i * 7)));
        packets.extend((0..20).map(|i| {
            if i % 3 == 0 {
                PacketArrival::NotReceived
            } else {
                received(1)
            }
        }));
        let f = TransportFeedback {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_sequence: 65530,
            reference_time: 0xFF_FFFF,
            feedback_count: 255,
            packets,
        };
        let mut out = Vec::new();
        f.write(&mut out).unwrap();
        assert_eq!(out.len() % 4, 0);
        assert_eq!(parse(&out), f);
        let seqs: Vec<u16> = f.arrivals().map(|(s, _)| s).take(7).collect();
        assert_eq!(seqs, [65530, 65531, 65532, 65533, 65534, 65535, 0]);
        let too_late = TransportFeedback {
            reference_time: 0x100_0000,
            ..f
        };
        assert!(too_late.write(&mut Vec::new()).is_err());
    }

    #[test]
    fn truncated_deltas_are_an_error() {
        // One received packet, its one-byte delta and a byte of padding.
        let data = [
            0x8f, 0xcd, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x01, 0x00, 0x01, 0, 0, 0, 0,
            0x20, 0x01, 0x00, 0x00,
        ];
        assert_eq!(parse(&data).packets, [received(0)]);
        // The status chunk announced by the count is missing.
        let short = [
            0x8f, 0xcd, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x01, 0x00, 0x01, 0, 0, 0, 0,
        ];
        assert!(CompoundPacket::new(&short).next().unwrap().is_err());
    }
}
