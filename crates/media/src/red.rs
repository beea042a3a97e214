//! RTP payload for redundant audio data (RED, RFC 2198), as Chromium
//! sends Opus with it (`red/48000/2`, fmtp `111/111`): each packet carries
//! the current Opus packet (the primary block, last) after copies of the
//! ones before it (redundant blocks), so a lost packet is rebuilt from the
//! next one whole, where Opus' in-band FEC gives only a lower-quality
//! version.
//!
//! Layout (RFC 2198 §3): a 4-byte header per redundant block — F=1, block
//! payload type (7 bits), timestamp offset (14 bits), block length (10
//! bits) — then a 1-byte header for the primary — F=0 and its payload
//! type — then the blocks' data in the same order.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use crate::writer::MAX_PAYLOAD;

/// Redundant blocks a packet may carry here: Chromium sends one or two;
/// RFC 2198 sets no limit, so one is set against a hostile peer (each
/// header costs 4 bytes, so a packet could otherwise list hundreds).
pub const MAX_REDUNDANT_BLOCKS: usize = 8;

/// One block of a RED packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedBlock {
    /// The payload type of the codec it is in (the primary's for Opus).
    pub payload_type: u8,
    /// How far its timestamp is before the packet's (0 for the primary).
    pub timestamp_offset: u16,
    /// The codec payload.
    pub data: Bytes,
}

/// A RED packet split into its blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedPacket {
    /// Copies of earlier packets, oldest first.
    pub redundant: Vec<RedBlock>,
    /// The packet's own payload.
    pub primary: RedBlock,
}

/// Why a RED payload could not be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedError {
    /// The headers end before the primary's header.
    #[error("RED headers cut short at byte {at}")]
    Truncated {
        /// Where the payload ended.
        at: usize,
    },
    /// More redundant blocks than [`MAX_REDUNDANT_BLOCKS`].
    #[error("more than {MAX_REDUNDANT_BLOCKS} redundant RED blocks")]
    TooManyBlocks,
    /// The redundant blocks' lengths add up past the payload.
    #[error("RED block lengths need {needed} bytes, the payload has {len}")]
    LengthsPastEnd {
        /// Bytes the headers and blocks need.
        needed: usize,
        /// Bytes there are.
        len: usize,
    },
}

/// Splits a RED payload (RFC 2198 §3) into its blocks; the data are
/// slices of `payload`, not copies.
pub fn parse_red(payload: &Bytes) -> Result<RedPacket, RedError> {
    let mut headers = Vec::new();
    let mut at = 0;
    loop {
        let first = *payload.get(at).ok_or(RedError::Truncated { at })?;
        let payload_type = first & 0x7F;
        if first & 0x80 == 0 {
            at += 1;
            break;
        }
        let h = payload.get(at..at + 4).ok_or(RedError::Truncated { at })?;
        if headers.len() == MAX_REDUNDANT_BLOCKS {
            return Err(RedError::TooManyBlocks);
        }
        let timestamp_offset = u16::from(h[1]) << 6 | u16::from(h[2] >> 2);
        let length = usize::from(h[2] & 0x03) << 8 | usize::from(h[3]);
        headers.push((payload_type, timestamp_offset, length));
        at += 4;
    }
    let primary_type = payload[at - 1] & 0x7F;
    let needed = at + headers.iter().map(|h| h.2).sum::<usize>();
    if needed > payload.len() {
        return Err(RedError::LengthsPastEnd {
            needed,
            len: payload.len(),
        });
    }
    let mut redundant = Vec::with_capacity(headers.len());
    for (payload_type, timestamp_offset, length) in headers {
        redundant.push(RedBlock {
            payload_type,
            timestamp_offset,
            data: payload.slice(at..at + length),
        });
        at += length;
    }
    Ok(RedPacket {
        redundant,
        primary: RedBlock {
            payload_type: primary_type,
            timestamp_offset: 0,
            data: payload.slice(at..),
        },
    })
}

/// The largest timestamp offset a redundant block's header holds (14
/// bits, RFC 2198 §3).
const MAX_TIMESTAMP_OFFSET: u32 = 0x3FFF;
/// The largest block a redundant block's header holds (10 bits).
const MAX_BLOCK_LENGTH: usize = 0x3FF;

/// Wraps each packet of one stream in RED (RFC 2198 §3) with copies of the
/// `distance` packets before it, so a receiver rebuilds up to `distance`
/// consecutive losses whole from the next packet that arrives (Chromium
/// plays them as received, without concealment). A copy is left out when
/// its header cannot say it (an offset past 14 bits or a block past 10
/// bits) or when the packet would pass [`MAX_PAYLOAD`] (the oldest first);
/// empty packets (DTX) are not copied.
#[derive(Debug, Clone)]
pub struct RedEncoder {
    /// The payload type of the blocks (Opus').
    block_payload_type: u8,
    distance: usize,
    /// The last `distance` packets: timestamp and payload.
    history: VecDeque<(u32, Bytes)>,
}

impl RedEncoder {
    /// An encoder of blocks of `block_payload_type` with up to `distance`
    /// (at most [`MAX_REDUNDANT_BLOCKS`]) copies in each packet.
    pub fn new(block_payload_type: u8, distance: usize) -> Self {
        let distance = distance.min(MAX_REDUNDANT_BLOCKS);
        Self {
            block_payload_type: block_payload_type & 0x7F,
            distance,
            history: VecDeque::with_capacity(distance + 1),
        }
    }

    /// The RED payload for the packet of `timestamp` carrying `payload`.
    pub fn encode(&mut self, timestamp: u32, payload: &Bytes) -> Bytes {
        let mut blocks: Vec<(u32, &Bytes)> = self
            .history
            .iter()
            .filter_map(|(t, data)| {
                let offset = timestamp.wrapping_sub(*t);
                ((1..=MAX_TIMESTAMP_OFFSET).contains(&offset) && data.len() <= MAX_BLOCK_LENGTH)
                    .then_some((offset, data))
            })
            .collect();
        let size = |blocks: &[(u32, &Bytes)]| {
            1 + payload.len() + blocks.iter().map(|(_, d)| 4 + d.len()).sum::<usize>()
        };
        while !blocks.is_empty() && size(&blocks) > MAX_PAYLOAD {
            blocks.remove(0);
        }
        let mut out = BytesMut::with_capacity(size(&blocks));
        for (offset, data) in &blocks {
            out.put_u8(0x80 | self.block_payload_type);
            // 14 bits of offset, then 10 of length.
            out.put_u8((offset >> 6) as u8);
            out.put_u8(((offset & 0x3F) << 2) as u8 | (data.len() >> 8) as u8);
            out.put_u8(data.len() as u8);
        }
        out.put_u8(self.block_payload_type);
        for (_, data) in &blocks {
            out.put_slice(data);
        }
        out.put_slice(payload);
        if self.distance > 0 && !payload.is_empty() {
            if self.history.len() == self.distance {
                self.history.pop_front();
            }
            self.history.push_back((timestamp, payload.clone()));
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2198 §3's layout with one redundant block, as Chromium sends
    /// Opus (payload type 111) 20 ms (960 ticks) apart.
    #[test]
    fn a_packet_with_one_redundant_block_splits() {
        let mut p = vec![0x80 | 111, (960 >> 6) as u8, ((960 & 0x3F) << 2) as u8, 3];
        p.push(111);
        p.extend_from_slice(b"old");
        p.extend_from_slice(b"new!");
        let red = parse_red(&Bytes::from(p)).unwrap();
        assert_eq!(red.redundant.len(), 1);
        assert_eq!(
            (
                red.redundant[0].payload_type,
                red.redundant[0].timestamp_offset
            ),
            (111, 960)
        );
        assert_eq!(&red.redundant[0].data[..], b"old");
        assert_eq!(
            (red.primary.payload_type, &red.primary.data[..]),
            (111, &b"new!"[..])
        );
    }

    /// What the encoder writes, the parser reads back: each packet its
    /// primary and copies of the two before it, oldest first, at their
    /// timestamp offsets.
    #[test]
    fn encoded_packets_carry_the_two_before_them() {
        let mut red = RedEncoder::new(111, 2);
        let packets: Vec<Bytes> = (0..5u8)
            .map(|i| Bytes::from(vec![i; 10 + usize::from(i)]))
            .collect();
        for (i, p) in packets.iter().enumerate() {
            let timestamp = 1_000u32.wrapping_add(960 * i as u32);
            let parsed = parse_red(&red.encode(timestamp, p)).unwrap();
            assert_eq!(parsed.primary.data, *p);
            assert_eq!(parsed.primary.payload_type, 111);
            let expected: Vec<(u16, Bytes)> = (i.saturating_sub(2)..i)
                .map(|j| ((960 * (i - j)) as u16, packets[j].clone()))
                .collect();
            let got: Vec<(u16, Bytes)> = parsed
                .redundant
                .iter()
                .map(|b| (b.timestamp_offset, b.data.clone()))
                .collect();
            assert_eq!(got, expected);
        }
    }

    /// Copies that would pass the payload bound or whose offset does not
    /// fit 14 bits are left out; the primary always goes.
    #[test]
    fn copies_that_do_not_fit_are_left_out() {
        let mut red = RedEncoder::new(111, 2);
        let big = Bytes::from(vec![1u8; 700]);
        red.encode(0, &big);
        let parsed = parse_red(&red.encode(960, &big)).unwrap();
        assert!(parsed.redundant.is_empty());
        let small = Bytes::from_static(b"opus");
        red.encode(1_920, &small);
        let parsed = parse_red(&red.encode(1_920 + 0x4000, &small)).unwrap();
        assert!(parsed.redundant.is_empty(), "offset past 14 bits");
        assert_eq!(parsed.primary.data, small);
    }

    #[test]
    fn a_primary_alone_is_its_payload() {
        let red = parse_red(&Bytes::from_static(&[111, 1, 2])).unwrap();
        assert!(red.redundant.is_empty());
        assert_eq!(&red.primary.data[..], &[1, 2]);
    }

    #[test]
    fn bad_packets_are_refused() {
        assert_eq!(parse_red(&Bytes::new()), Err(RedError::Truncated { at: 0 }));
        assert_eq!(
            parse_red(&Bytes::from_static(&[0x80 | 111, 0, 0])),
            Err(RedError::Truncated { at: 0 })
        );
        assert_eq!(
            parse_red(&Bytes::from_static(&[0x80 | 111, 0, 0, 9, 111, 1])),
            Err(RedError::LengthsPastEnd { needed: 14, len: 6 })
        );
        let many: Vec<u8> = std::iter::repeat_n([0x80 | 111, 0, 0, 0], MAX_REDUNDANT_BLOCKS + 1)
            .flatten()
            .chain([111])
            .collect();
        assert_eq!(parse_red(&Bytes::from(many)), Err(RedError::TooManyBlocks));
    }
}
