//! The wire format: round trips, checksums, and refusal of bad input.

use bytes::Bytes;
use proptest::prelude::*;
use realtimer_sctp::*;

fn data_chunk() -> impl Strategy<Value = Chunk> {
    (
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<[bool; 4]>(),
        proptest::collection::vec(any::<u8>(), 0..100),
    )
        .prop_map(|(tsn, stream, ssn, ppid, f, payload)| {
            Chunk::Data(DataChunk {
                tsn,
                stream,
                ssn,
                ppid,
                unordered: f[0],
                beginning: f[1],
                ending: f[2],
                immediate: f[3],
                payload: Bytes::from(payload),
            })
        })
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn init() -> impl Strategy<Value = Init> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        bytes(40),
        any::<bool>(),
    )
        .prop_map(
            |(
                initiate_tag,
                a_rwnd,
                outbound_streams,
                inbound_streams,
                initial_tsn,
                cookie,
                fwd,
            )| {
                let mut params = vec![Param::SupportedExtensions(Bytes::from_static(&[130, 192]))];
                if fwd {
                    params.push(Param::ForwardTsnSupported);
                }
                if !cookie.is_empty() {
                    params.push(Param::StateCookie(cookie));
                }
                Init {
                    initiate_tag,
                    a_rwnd,
                    outbound_streams,
                    inbound_streams,
                    initial_tsn,
                    params,
                }
            },
        )
}

fn chunk() -> impl Strategy<Value = Chunk> {
    prop_oneof![
        data_chunk(),
        init().prop_map(Chunk::Init),
        init().prop_map(Chunk::InitAck),
        (
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec((any::<u16>(), any::<u16>()), 0..8),
            proptest::collection::vec(any::<u32>(), 0..4)
        )
            .prop_map(|(c, w, g, d)| Chunk::Sack(Sack {
                cumulative_tsn_ack: c,
                a_rwnd: w,
                gap_blocks: g
                    .into_iter()
                    .map(|(start, end)| GapAckBlock { start, end })
                    .collect(),
                duplicate_tsns: d,
            })),
        bytes(30).prop_map(Chunk::Heartbeat),
        bytes(30).prop_map(Chunk::HeartbeatAck),
        (any::<bool>(), bytes(20)).prop_map(|(t, c)| Chunk::Abort {
            reflected_tag: t,
            causes: c
        }),
        any::<u32>().prop_map(|c| Chunk::Shutdown {
            cumulative_tsn_ack: c
        }),
        Just(Chunk::ShutdownAck),
        any::<bool>().prop_map(|t| Chunk::ShutdownComplete { reflected_tag: t }),
        bytes(20).prop_map(Chunk::Error),
        bytes(60).prop_map(Chunk::CookieEcho),
        Just(Chunk::CookieAck),
        (
            any::<u32>(),
            proptest::collection::vec((any::<u16>(), any::<u16>()), 0..6)
        )
            .prop_map(|(t, s)| Chunk::ForwardTsn(ForwardTsn {
                new_cumulative_tsn: t,
                streams: s
                    .into_iter()
                    .map(|(stream, ssn)| ForwardTsnStream { stream, ssn })
                    .collect(),
            })),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<u16>(), 0..5),
            any::<u32>()
        )
            .prop_map(|(a, b, c, s, r)| Chunk::ReConfig(ReConfig {
                params: vec![
                    ReconfigParam::OutgoingReset {
                        request_seq: a,
                        response_seq: b,
                        last_tsn: c,
                        streams: s.clone()
                    },
                    ReconfigParam::Response {
                        response_seq: b,
                        result: r
                    },
                    ReconfigParam::IncomingReset {
                        request_seq: a,
                        streams: s
                    },
                ],
            })),
    ]
}

proptest! {
    #[test]
    fn write_then_parse_gives_the_same_packet(
        source_port in any::<u16>(),
        destination_port in any::<u16>(),
        verification_tag in any::<u32>(),
        chunks in proptest::collection::vec(chunk(), 0..8),
    ) {
        let packet = Packet {
            header: CommonHeader { source_port, destination_port, verification_tag },
            chunks,
        };
        let bytes = packet.to_bytes();
        prop_assert_eq!(bytes.len(), packet.encoded_len());
        prop_assert_eq!(bytes.len() % 4, 0);
        prop_assert_eq!(Packet::parse(&bytes).unwrap(), packet);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Packet::parse(&Bytes::from(data));
    }

    #[test]
    fn mutated_packets_never_panic(chunks in proptest::collection::vec(chunk(), 1..5), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let packet = Packet { header: CommonHeader { source_port: 5000, destination_port: 5000, verification_tag: 1 }, chunks };
        let mut bytes = packet.to_bytes().to_vec();
        for (at, v) in flips {
            let at = 12 + at % (bytes.len() - 12);
            bytes[at] = v;
        }
        // Fix the checksum so the chunk parsers see the damage.
        let fixed = reseal(&bytes);
        let _ = Packet::parse(&fixed);
    }
}

/// Recomputes the CRC32c of a hand-made packet.
fn reseal(bytes: &[u8]) -> Bytes {
    let mut copy = bytes.to_vec();
    copy[8..12].fill(0);
    let crc = crc32c_of(&copy);
    copy[8..12].copy_from_slice(&crc.to_le_bytes());
    Bytes::from(copy)
}

/// CRC32c (Castagnoli), bit by bit: an independent check of the crate's.
fn crc32c_of(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn checksum_is_crc32c_little_endian() {
    assert_eq!(
        crc32c_of(b"123456789"),
        0xE306_9283,
        "the CRC32c check value"
    );
    let packet = Packet {
        header: CommonHeader {
            source_port: 5000,
            destination_port: 5000,
            verification_tag: 0,
        },
        chunks: vec![Chunk::CookieAck],
    };
    let bytes = packet.to_bytes();
    assert_eq!(&bytes[..], &reseal(&bytes)[..]);
    let mut bad = bytes.to_vec();
    bad[12] = 99;
    assert!(matches!(
        Packet::parse(&Bytes::from(bad)),
        Err(ParseError::BadChecksum { .. })
    ));
}

#[test]
fn bad_lengths_are_named() {
    assert_eq!(
        Packet::parse(&Bytes::from_static(&[0; 11])),
        Err(ParseError::TooShort(11))
    );
    // A chunk claiming 2 bytes (below its own header).
    let p = reseal(&[0x13, 0x88, 0x13, 0x88, 0, 0, 0, 1, 0, 0, 0, 0, 11, 0, 0, 2]);
    assert!(matches!(
        Packet::parse(&p),
        Err(ParseError::BadChunkLength { length: 2, .. })
    ));
    // A chunk running past the packet.
    let p = reseal(&[
        0x13, 0x88, 0x13, 0x88, 0, 0, 0, 1, 0, 0, 0, 0, 0, 3, 0, 40, 0, 0, 0, 0,
    ]);
    assert!(matches!(
        Packet::parse(&p),
        Err(ParseError::BadChunkLength { length: 40, .. })
    ));
    // A DATA chunk too short for its header.
    let p = reseal(&[
        0x13, 0x88, 0x13, 0x88, 0, 0, 0, 1, 0, 0, 0, 0, 0, 3, 0, 8, 0, 0, 0, 1,
    ]);
    assert!(matches!(
        Packet::parse(&p),
        Err(ParseError::BadChunk {
            chunk: ChunkType::DATA,
            ..
        })
    ));
    // A SACK whose counts run past its end.
    let mut sack = vec![0x13, 0x88, 0x13, 0x88, 0, 0, 0, 1, 0, 0, 0, 0, 3, 0, 0, 16];
    sack.extend_from_slice(&[0, 0, 0, 1, 0, 1, 0, 0, 0, 200, 0, 0]);
    assert!(matches!(
        Packet::parse(&reseal(&sack)),
        Err(ParseError::BadChunk {
            chunk: ChunkType::SACK,
            ..
        })
    ));
    // A truncated chunk header.
    let p = reseal(&[0x13, 0x88, 0x13, 0x88, 0, 0, 0, 1, 0, 0, 0, 0, 11, 0]);
    assert!(matches!(
        Packet::parse(&p),
        Err(ParseError::TruncatedChunkHeader { offset: 12 })
    ));
}

#[test]
fn unknown_chunks_are_kept_with_their_flags() {
    let packet = Packet {
        header: CommonHeader {
            source_port: 1,
            destination_port: 2,
            verification_tag: 3,
        },
        chunks: vec![Chunk::Unknown {
            chunk_type: ChunkType(0x40),
            flags: 0xA5,
            value: Bytes::from_static(b"xyz"),
        }],
    };
    assert_eq!(Packet::parse(&packet.to_bytes()).unwrap(), packet);
}
