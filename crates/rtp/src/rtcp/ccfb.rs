//! RTP control protocol feedback for congestion control (RFC 8888 §3.1):
//! RTPFB FMT 11, per stream the arrival time offset and ECN mark of each
//! packet by its RTP sequence number.

use super::{packet_type, write_packet, Body};
use crate::{be16, be32, ParseError, WriteError};

/// RFC 8888 §3.1: one report block says at most 16384 packets (a quarter of
/// the sequence number space).
pub const MAX_METRICS_PER_STREAM: usize = 16384;
/// RFC 8888 §3.1: the arrival time offset is 13 bits.
const ATO_MASK: u16 = 0x1FFF;

/// A received packet's metric block (RFC 8888 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketMetric {
    /// The ECN bits the packet arrived with (RFC 3168 §5: 0 not ECT, 1
    /// ECT(1), 2 ECT(0), 3 CE).
    pub ecn: u8,
    /// How long before the report timestamp the packet arrived, in 1/1024
    /// s; [`PacketMetric::OVER_RANGE`] for 8189/1024 s or more,
    /// [`PacketMetric::UNAVAILABLE`] when unknown.
    pub arrival_time_offset: u16,
}

impl PacketMetric {
    /// The offset is 0x1FFD/1024 s or more.
    pub const OVER_RANGE: u16 = 0x1FFE;
    /// The arrival time is unknown (or after the report timestamp).
    pub const UNAVAILABLE: u16 = 0x1FFF;

    /// The offset in µs, when it is a measurement.
    pub fn offset_micros(&self) -> Option<u64> {
        (self.arrival_time_offset < Self::OVER_RANGE)
            .then(|| u64::from(self.arrival_time_offset) * 1_000_000 / 1024)
    }
}

/// What one report block says about one stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamReport {
    /// The stream reported on.
    pub ssrc: u32,
    /// The RTP sequence number of `metrics[0]`.
    pub begin_sequence: u16,
    /// Packets `begin_sequence`, `begin_sequence + 1`, ...: `None` when not
    /// received (at most [`MAX_METRICS_PER_STREAM`]).
    pub metrics: Vec<Option<PacketMetric>>,
}

/// An RFC 8888 congestion control feedback packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CongestionControlFeedback {
    /// Who sends the feedback.
    pub sender_ssrc: u32,
    /// One block per stream.
    pub reports: Vec<StreamReport>,
    /// RFC 8888 §3.1: the middle 32 bits of the NTP time when the report was
    /// made; arrival time offsets count back from it.
    pub report_timestamp: u32,
}

impl CongestionControlFeedback {
    /// FMT of RFC 8888 feedback in an RTPFB packet (RFC 8888 §3.1).
    pub const FORMAT: u8 = 11;

    pub(super) fn parse(body: Body<'_>) -> Result<Self, ParseError> {
        let len = body.data.len();
        if len < 8 {
            return Err(ParseError::Truncated {
                offset: body.at,
                expected: "RFC 8888 sender SSRC and report timestamp",
            });
        }
        let mut feedback = Self {
            sender_ssrc: be32(body.data, 0),
            reports: Vec::new(),
            report_timestamp: be32(body.data, len - 4),
        };
        let end = len - 4;
        let mut at = 4;
        while at < end {
            let head = body.get(at..at + 8, "RFC 8888 report block header")?;
            let count = usize::from(be16(head, 6));
            if count > MAX_METRICS_PER_STREAM {
                return Err(ParseError::Malformed {
                    offset: body.at + at + 6,
                    what: "RFC 8888 num_reports over 16384",
                });
            }
            at += 8;
            let words = count.div_ceil(2) * 4;
            if at + words > end {
                return Err(ParseError::Truncated {
                    offset: body.at + at,
                    expected: "RFC 8888 packet metric blocks",
                });
            }
            let metrics = body.data[at..at + 2 * count]
                .chunks_exact(2)
                .map(|m| {
                    let m = be16(m, 0);
                    (m & 0x8000 != 0).then_some(PacketMetric {
                        ecn: (m >> 13) as u8 & 0b11,
                        arrival_time_offset: m & ATO_MASK,
                    })
                })
                .collect();
            at += words;
            feedback.reports.push(StreamReport {
                ssrc: be32(head, 0),
                begin_sequence: be16(head, 4),
                metrics,
            });
        }
        Ok(feedback)
    }

    /// Appends the packet to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WriteError> {
        if let Some(r) = self
            .reports
            .iter()
            .find(|r| r.metrics.len() > MAX_METRICS_PER_STREAM)
        {
            return Err(WriteError::TooMany {
                what: "RFC 8888 packet metrics in one report block",
                count: r.metrics.len(),
                max: MAX_METRICS_PER_STREAM,
            });
        }
        write_packet(out, usize::from(Self::FORMAT), packet_type::RTPFB, |out| {
            out.extend_from_slice(&self.sender_ssrc.to_be_bytes());
            for report in &self.reports {
                out.extend_from_slice(&report.ssrc.to_be_bytes());
                out.extend_from_slice(&report.begin_sequence.to_be_bytes());
                out.extend_from_slice(&(report.metrics.len() as u16).to_be_bytes());
                for metric in &report.metrics {
                    let m = metric.map_or(0, |m| {
                        0x8000 | u16::from(m.ecn & 0b11) << 13 | m.arrival_time_offset & ATO_MASK
                    });
                    out.extend_from_slice(&m.to_be_bytes());
                }
                if report.metrics.len() % 2 == 1 {
                    out.extend_from_slice(&[0, 0]);
                }
            }
            out.extend_from_slice(&self.report_timestamp.to_be_bytes());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CompoundPacket, RtcpPacket};
    use super::*;

    fn parse(data: &[u8]) -> Result<CongestionControlFeedback, ParseError> {
        match CompoundPacket::new(data).next().unwrap()? {
            RtcpPacket::CongestionControlFeedback(f) => Ok(f),
            other => panic!("{other:?}"),
        }
    }

    /// RFC 8888 §3.1 layout, by hand: one stream, packets 0xfffe, 0xffff
    /// (lost) and 0 (CE-marked, 1 s before the report timestamp).
    #[rustfmt::skip]
    const ONE_STREAM: [u8; 28] = [
        0x8b, 205, 0x00, 0x06,
        0x00, 0x00, 0x00, 0x07, // sender SSRC
        0x12, 0x34, 0x56, 0x78, // stream SSRC
        0xff, 0xfe, 0x00, 0x03, // begin_seq, num_reports
        0x80, 0x10, 0x00, 0x00, // R=1 ECN=0 ATO=16; not received
        0xe4, 0x00, 0x00, 0x00, // R=1 ECN=3 ATO=1024; padding
        0xde, 0xad, 0xbe, 0xef, // report timestamp
    ];

    #[test]
    fn parses_and_writes_one_stream() {
        let f = parse(&ONE_STREAM).unwrap();
        assert_eq!(f.sender_ssrc, 7);
        assert_eq!(f.report_timestamp, 0xdead_beef);
        assert_eq!(f.reports.len(), 1);
        let r = &f.reports[0];
        assert_eq!((r.ssrc, r.begin_sequence), (0x1234_5678, 0xfffe));
        assert_eq!(
            r.metrics,
            [
                Some(PacketMetric {
                    ecn: 0,
                    arrival_time_offset: 16
                }),
                None,
                Some(PacketMetric {
                    ecn: 3,
                    arrival_time_offset: 1024
                }),
            ]
        );
        assert_eq!(r.metrics[2].unwrap().offset_micros(), Some(1_000_000));
        let mut out = Vec::new();
        f.write(&mut out).unwrap();
        assert_eq!(out, ONE_STREAM);
    }

    #[test]
    fn empty_and_multi_stream_round_trip() {
        let f = CongestionControlFeedback {
            sender_ssrc: 1,
            reports: vec![
                StreamReport {
                    ssrc: 2,
                    begin_sequence: 5,
                    metrics: vec![],
                },
                StreamReport {
                    ssrc: 3,
                    begin_sequence: 9,
                    metrics: vec![
                        None,
                        Some(PacketMetric {
                            ecn: 1,
                            arrival_time_offset: PacketMetric::OVER_RANGE,
                        }),
                    ],
                },
            ],
            report_timestamp: 4,
        };
        let mut out = Vec::new();
        f.write(&mut out).unwrap();
        assert_eq!(parse(&out).unwrap(), f);
        let none = CongestionControlFeedback::default();
        out.clear();
        none.write(&mut out).unwrap();
        assert_eq!(parse(&out).unwrap(), none);
    }

    #[test]
    fn counts_past_the_packet_are_refused() {
        let mut lying = ONE_STREAM;
        lying[15] = 9;
        assert!(matches!(parse(&lying), Err(ParseError::Truncated { .. })));
        lying[14] = 0x50;
        assert!(matches!(parse(&lying), Err(ParseError::Malformed { .. })));
    }
}
