use super::*;

fn parse_all(data: &[u8]) -> Result<Vec<RtcpPacket<'_>>, ParseError> {
    CompoundPacket::new(data).collect()
}

fn round_trip(packets: &[RtcpPacket<'_>]) {
    let mut out = Vec::new();
    for p in packets {
        p.write(&mut out).unwrap();
    }
    assert_eq!(parse_all(&out).unwrap(), packets);
}

fn block(ssrc: u32) -> ReportBlock {
    ReportBlock {
        ssrc,
        fraction_lost: 25,
        cumulative_lost: -3,
        extended_highest_sequence: 0x0001_0005,
        jitter: 120,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 65536,
    }
}

/// A compound packet as Chromium sends with video: SR with one report
/// block, SDES CNAME, then a REMB (PSFB FMT 15) and a transport-cc
/// feedback (RTPFB FMT 15).
#[rustfmt::skip]
const CHROMIUM_COMPOUND: &[u8] = &[
    // SR, RC=1, length 12 words
    0x81, 200, 0x00, 0x0c,
    0x11, 0x22, 0x33, 0x44,
    0xe9, 0x4e, 0x3d, 0x2a, 0x80, 0x00, 0x00, 0x00, // NTP
    0x00, 0x01, 0x5f, 0x90, // RTP time
    0x00, 0x00, 0x00, 0x64, // packets
    0x00, 0x00, 0x4e, 0x20, // octets
    0x55, 0x66, 0x77, 0x88, 0x0a, 0xff, 0xff, 0xfe, 0x00, 0x00, 0x10, 0x00,
    0x00, 0x00, 0x00, 0x10, 0x3d, 0x2a, 0x80, 0x00, 0x00, 0x00, 0x80, 0x00,
    // SDES, SC=1, CNAME "abcdefgh12345678" (16 bytes): 4 + 2 + 16 + 1 null -> 24 bytes
    0x81, 202, 0x00, 0x06,
    0x11, 0x22, 0x33, 0x44, 0x01, 0x10,
    b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8',
    0x00, 0x00,
    // REMB
    0x8f, 206, 0x00, 0x05,
    0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00,
    b'R', b'E', b'M', b'B', 0x01, 0x0b, 0xd0, 0x90, 0x55, 0x66, 0x77, 0x88,
    // transport-cc, base seq 1, 1 packet, received small delta
    0x8f, 205, 0x00, 0x05,
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
    0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x20, 0x01, 0x04, 0x00,
];

#[test]
fn parses_a_chromium_compound_packet() {
    let packets = parse_all(CHROMIUM_COMPOUND).unwrap();
    assert_eq!(packets.len(), 4);
    let RtcpPacket::SenderReport(sr) = &packets[0] else {
        panic!("{:?}", packets[0])
    };
    assert_eq!(sr.ssrc, 0x1122_3344);
    assert_eq!(sr.ntp_time, 0xe94e_3d2a_8000_0000);
    assert_eq!(
        (sr.rtp_time, sr.packet_count, sr.octet_count),
        (90_000, 100, 20_000)
    );
    assert_eq!(sr.reports[0].ssrc, 0x5566_7788);
    assert_eq!(sr.reports[0].fraction_lost, 10);
    assert_eq!(sr.reports[0].cumulative_lost, -2);
    assert_eq!(sr.reports[0].extended_highest_sequence, 0x1000);
    let RtcpPacket::SourceDescription(sdes) = &packets[1] else {
        panic!()
    };
    assert_eq!(sdes.chunks[0].cname(), Some(&b"abcdefgh12345678"[..]));
    let RtcpPacket::Remb(remb) = &packets[2] else {
        panic!("{:?}", packets[2])
    };
    assert_eq!(
        (remb.bitrate, &remb.ssrcs[..]),
        (1_000_000, &[0x5566_7788][..])
    );
    let RtcpPacket::TransportFeedback(twcc) = &packets[3] else {
        panic!("{:?}", packets[3])
    };
    assert_eq!((twcc.base_sequence, twcc.reference_time), (1, 1));
    assert_eq!(twcc.packets, [PacketArrival::Received { delta: 4 }]);
    // Written again: the same bytes.
    let mut out = Vec::new();
    for p in &packets {
        p.write(&mut out).unwrap();
    }
    assert_eq!(out, CHROMIUM_COMPOUND);
}

#[test]
fn reports_round_trip() {
    round_trip(&[
        RtcpPacket::SenderReport(SenderReport {
            ssrc: 1,
            ntp_time: u64::MAX,
            rtp_time: 2,
            packet_count: 3,
            octet_count: 4,
            reports: (0..31).map(block).collect(),
        }),
        RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: 9,
            reports: vec![],
        }),
        RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: 9,
            reports: vec![block(1), block(2)],
        }),
    ]);
    let too_many = ReceiverReport {
        ssrc: 0,
        reports: vec![block(0); 32],
    };
    let mut out = vec![1, 2, 3];
    assert!(matches!(
        too_many.write(&mut out),
        Err(WriteError::TooMany { count: 32, .. })
    ));
    assert_eq!(out, [1, 2, 3], "a failed write leaves the buffer as it was");
}

#[test]
fn cumulative_lost_is_clamped_to_24_bits() {
    let mut b = block(1);
    b.cumulative_lost = i32::MAX;
    let mut out = Vec::new();
    ReceiverReport {
        ssrc: 0,
        reports: vec![b],
    }
    .write(&mut out)
    .unwrap();
    let RtcpPacket::ReceiverReport(rr) = &parse_all(&out).unwrap()[0] else {
        panic!()
    };
    assert_eq!(rr.reports[0].cumulative_lost, 0x7F_FFFF);
}

#[test]
fn sdes_and_bye_round_trip() {
    round_trip(&[
        RtcpPacket::SourceDescription(SourceDescription::cname(7, "x")),
        RtcpPacket::SourceDescription(SourceDescription::cname(7, "four")),
        RtcpPacket::SourceDescription(SourceDescription {
            chunks: vec![
                SdesChunk {
                    ssrc: 1,
                    items: vec![],
                },
                SdesChunk {
                    ssrc: 2,
                    items: vec![
                        SdesItem {
                            kind: 2,
                            value: b"name",
                        },
                        SdesItem {
                            kind: SdesItem::CNAME,
                            value: b"cn",
                        },
                    ],
                },
            ],
        }),
        RtcpPacket::Bye(Bye {
            ssrcs: vec![1, 2],
            reason: None,
        }),
        RtcpPacket::Bye(Bye {
            ssrcs: vec![3],
            reason: Some(b"hang up"),
        }),
        RtcpPacket::Bye(Bye {
            ssrcs: vec![],
            reason: Some(b""),
        }),
    ]);
}

#[test]
fn feedback_round_trip() {
    round_trip(&[
        RtcpPacket::Pli(Pli {
            sender_ssrc: 1,
            media_ssrc: 2,
        }),
        RtcpPacket::Fir(Fir {
            sender_ssrc: 1,
            entries: vec![
                FirEntry {
                    ssrc: 5,
                    sequence_number: 9,
                },
                FirEntry {
                    ssrc: 6,
                    sequence_number: 255,
                },
            ],
        }),
        RtcpPacket::Nack(Nack::from_lost(1, 2, [10, 11, 26, 27, 100])),
    ]);
}

#[test]
fn nack_expands_and_packs_sequence_numbers() {
    // RFC 4585 §6.2.1: PID 65534, BLP bits 0 and 15 -> 65534, 65535, 14 (wraps).
    let pair = NackPair {
        pid: 65534,
        blp: 0x8001,
    };
    assert_eq!(pair.lost().collect::<Vec<_>>(), vec![65534, 65535, 14]);
    let lost = [65530u16, 65535, 0, 9, 10, 30];
    let nack = Nack::from_lost(1, 2, lost);
    assert_eq!(nack.pairs.len(), 2);
    assert_eq!(nack.lost().collect::<Vec<_>>(), lost);
    // Duplicates fold into the pair already naming them.
    assert_eq!(
        Nack::from_lost(0, 0, [5, 5, 6, 6])
            .lost()
            .collect::<Vec<_>>(),
        vec![5, 6]
    );
}

#[test]
fn padding_on_the_last_packet() {
    let mut out = Vec::new();
    Pli {
        sender_ssrc: 1,
        media_ssrc: 2,
    }
    .write(&mut out)
    .unwrap();
    // Add 4 bytes of padding: P bit, length + 1 word.
    out[0] |= 0x20;
    out[3] += 1;
    out.extend_from_slice(&[0, 0, 0, 4]);
    assert_eq!(
        parse_all(&out).unwrap(),
        vec![RtcpPacket::Pli(Pli {
            sender_ssrc: 1,
            media_ssrc: 2
        })]
    );
    *out.last_mut().unwrap() = 0;
    assert!(matches!(
        parse_all(&out),
        Err(ParseError::Padding { count: 0, .. })
    ));
    *out.last_mut().unwrap() = 13;
    assert!(matches!(
        parse_all(&out),
        Err(ParseError::Padding { count: 13, .. })
    ));
}

#[test]
fn malformed_packets_are_errors() {
    // Too short for a header, wrong version, length past the end.
    assert!(parse_all(&[0x80, 200]).is_err());
    assert!(matches!(
        parse_all(&[0x40, 200, 0, 0]),
        Err(ParseError::Version { .. })
    ));
    assert!(matches!(
        parse_all(&[0x80, 201, 0, 1, 0, 0]),
        Err(ParseError::Truncated { .. })
    ));
    // RR claims 2 blocks, has none.
    assert!(parse_all(&[0x82, 201, 0, 1, 0, 0, 0, 1]).is_err());
    // PLI without its SSRCs, NACK with a half entry.
    assert!(parse_all(&[0x81, 206, 0, 0]).is_err());
    let mut nack = Vec::new();
    Nack::from_lost(1, 2, [1]).write(&mut nack).unwrap();
    nack[0] |= 0x20;
    nack[15] = 2;
    assert!(matches!(
        parse_all(&nack),
        Err(ParseError::Malformed { .. })
    ));
    // SDES item running past the packet; BYE reason past the packet.
    assert!(parse_all(&[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, 0, 0]).is_err());
    assert!(parse_all(&[0x81, 203, 0, 2, 0, 0, 0, 1, 9, 0, 0, 0]).is_err());
    // An error ends the iteration.
    let mut good_then_bad = CHROMIUM_COMPOUND.to_vec();
    good_then_bad.extend_from_slice(&[0x80, 201, 0, 9]);
    let results: Vec<_> = CompoundPacket::new(&good_then_bad).collect();
    assert_eq!(results.len(), 5);
    assert!(results[4].is_err());
    // No truncation of a good compound packet panics.
    for n in 0..CHROMIUM_COMPOUND.len() {
        let _ = parse_all(&CHROMIUM_COMPOUND[..n]);
    }
}
