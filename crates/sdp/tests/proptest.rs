//! `parse(serialize(x)) == x` for arbitrary models, and the parser never
//! panics on arbitrary text. The strategies generate every typed attribute.

use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use realtimer_sdp::{
    Attribute, Bandwidth, Candidate, CandidateType, Connection, Direction, Extmap, Fingerprint,
    Fmtp, Group, HashFunction, MediaDescription, MediaType, Msid, MsidSemantic, Origin, Rid,
    RidDirection, Rtcp, RtcpFb, Rtpmap, SessionDescription, Setup, Simulcast, SimulcastList,
    SimulcastRid, Ssrc, SsrcGroup, TcpType, Timing, KNOWN_ATTRIBUTES,
};

/// A non-empty run of visible ASCII (no spaces).
fn token() -> impl Strategy<Value = String> {
    "[!-~]{1,10}"
}

/// Free text: printable ASCII with spaces, possibly empty, plus a non-ASCII letter.
fn text() -> impl Strategy<Value = String> {
    "[ -~é]{0,16}"
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::SendRecv),
        Just(Direction::SendOnly),
        Just(Direction::RecvOnly),
        Just(Direction::Inactive),
    ]
}

fn rid_direction() -> impl Strategy<Value = RidDirection> {
    prop_oneof![Just(RidDirection::Send), Just(RidDirection::Recv)]
}

fn connection() -> impl Strategy<Value = Connection> {
    (token(), token(), token()).prop_map(|(net_type, addr_type, address)| Connection {
        net_type,
        addr_type,
        address,
    })
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    ("[A-Z]{1,4}", any::<u64>()).prop_map(|(bw_type, bandwidth)| Bandwidth { bw_type, bandwidth })
}

fn candidate() -> impl Strategy<Value = Candidate> {
    let known = [
        "raddr",
        "rport",
        "tcptype",
        "generation",
        "ufrag",
        "network-id",
        "network-cost",
    ];
    let typ = prop_oneof![
        Just(CandidateType::Host),
        Just(CandidateType::ServerReflexive),
        Just(CandidateType::PeerReflexive),
        Just(CandidateType::Relay),
        "[a-z]{1,6}"
            .prop_filter("not a known type", |s| !["host", "srflx", "prflx", "relay"]
                .contains(&s.as_str()))
            .prop_map(CandidateType::Other),
    ];
    let tcp = prop_oneof![
        Just(TcpType::Active),
        Just(TcpType::Passive),
        Just(TcpType::SimultaneousOpen)
    ];
    let ext = (
        "[a-z][a-z0-9-]{0,8}"
            .prop_filter("unknown extension", move |s| !known.contains(&s.as_str())),
        token(),
    );
    (
        (
            "[A-Za-z0-9+/]{1,32}",
            any::<u16>(),
            token(),
            any::<u32>(),
            token(),
            any::<u16>(),
            typ,
        ),
        (of(token()), of(any::<u16>()), of(tcp), of(any::<u32>())),
        (
            of(token()),
            of(any::<u32>()),
            of(any::<u32>()),
            vec(ext, 0..3),
        ),
    )
        .prop_map(
            |(
                (foundation, component, transport, priority, address, port, typ),
                (related_address, related_port, tcp_type, generation),
                (ufrag, network_id, network_cost, extensions),
            )| Candidate {
                foundation,
                component,
                transport,
                priority,
                address,
                port,
                typ,
                related_address,
                related_port,
                tcp_type,
                generation,
                ufrag,
                network_id,
                network_cost,
                extensions,
            },
        )
}

fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    let hash = prop_oneof![
        Just(HashFunction::Sha1),
        Just(HashFunction::Sha224),
        Just(HashFunction::Sha256),
        Just(HashFunction::Sha384),
        Just(HashFunction::Sha512),
        Just(HashFunction::Md5),
        Just(HashFunction::Md2),
        "[A-Z][A-Z0-9-]{0,7}".prop_map(HashFunction::Other),
    ];
    (hash, vec(any::<u8>(), 1..64)).prop_map(|(hash, value)| Fingerprint { hash, value })
}

fn simulcast() -> impl Strategy<Value = Simulcast> {
    let rid =
        ("[A-Za-z0-9]{1,4}", any::<bool>()).prop_map(|(id, paused)| SimulcastRid { id, paused });
    let streams = vec(vec(rid, 1..3), 1..4);
    (rid_direction(), streams.clone(), of(streams)).prop_map(|(direction, first, second)| {
        let mut lists = vec![SimulcastList {
            direction,
            streams: first,
        }];
        if let Some(streams) = second {
            let direction = match direction {
                RidDirection::Send => RidDirection::Recv,
                _ => RidDirection::Send,
            };
            lists.push(SimulcastList { direction, streams });
        }
        Simulcast { lists }
    })
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        (token(), vec(token(), 0..4))
            .prop_map(|(semantics, mids)| Attribute::Group(Group { semantics, mids })),
        (any::<bool>(), token(), vec(token(), 0..3)).prop_map(
            |(leading_space, semantic, identifiers)| {
                Attribute::MsidSemantic(MsidSemantic {
                    leading_space,
                    semantic,
                    identifiers,
                })
            }
        ),
        (token(), of(token())).prop_map(|(stream_id, track_id)| Attribute::Msid(Msid {
            stream_id,
            track_id
        })),
        text().prop_map(Attribute::Mid),
        text().prop_map(Attribute::IceUfrag),
        text().prop_map(Attribute::IcePwd),
        vec(token(), 1..3).prop_map(Attribute::IceOptions),
        Just(Attribute::IceLite),
        fingerprint().prop_map(Attribute::Fingerprint),
        prop_oneof![
            Just(Setup::Active),
            Just(Setup::Passive),
            Just(Setup::ActPass),
            Just(Setup::HoldConn)
        ]
        .prop_map(Attribute::Setup),
        candidate().prop_map(|c| Attribute::Candidate(Box::new(c))),
        Just(Attribute::EndOfCandidates),
        (
            any::<u8>(),
            "[A-Za-z0-9-]{1,10}",
            any::<u32>(),
            of(any::<u32>())
        )
            .prop_map(
                |(payload_type, encoding_name, clock_rate, encoding_params)| {
                    Attribute::Rtpmap(Rtpmap {
                        payload_type,
                        encoding_name,
                        clock_rate,
                        encoding_params,
                    })
                }
            ),
        (token(), text()).prop_map(|(format, params)| Attribute::Fmtp(Fmtp { format, params })),
        (any::<u16>(), of(connection()))
            .prop_map(|(port, connection)| Attribute::Rtcp(Rtcp { port, connection })),
        (of(any::<u8>()), token(), of(text())).prop_map(|(payload_type, feedback, parameter)| {
            Attribute::RtcpFb(RtcpFb {
                payload_type,
                feedback,
                parameter,
            })
        }),
        Just(Attribute::RtcpMux),
        Just(Attribute::RtcpRsize),
        (any::<u16>(), of(direction()), token(), of(text())).prop_map(
            |(id, direction, uri, attributes)| {
                Attribute::Extmap(Extmap {
                    id,
                    direction,
                    uri,
                    attributes,
                })
            }
        ),
        Just(Attribute::ExtmapAllowMixed),
        (any::<u32>(), "[a-z][a-z0-9-]{0,8}", of(text())).prop_map(|(ssrc, attribute, value)| {
            Attribute::Ssrc(Ssrc {
                ssrc,
                attribute,
                value,
            })
        }),
        (token(), vec(any::<u32>(), 0..4))
            .prop_map(|(semantics, ssrcs)| Attribute::SsrcGroup(SsrcGroup { semantics, ssrcs })),
        (token(), rid_direction(), of(text())).prop_map(|(id, direction, params)| Attribute::Rid(
            Rid {
                id,
                direction,
                params
            }
        )),
        simulcast().prop_map(Attribute::Simulcast),
        any::<u16>().prop_map(Attribute::SctpPort),
        any::<u64>().prop_map(Attribute::MaxMessageSize),
        direction().prop_map(Attribute::Direction),
        Just(Attribute::BundleOnly),
        (
            "[a-z][a-z0-9-]{0,12}"
                .prop_filter("unknown name", |n| !KNOWN_ATTRIBUTES.contains(&n.as_str())),
            of(text())
        )
            .prop_map(|(name, value)| Attribute::Other { name, value }),
    ]
}

fn media() -> impl Strategy<Value = MediaDescription> {
    let media_type = prop_oneof![
        Just(MediaType::Audio),
        Just(MediaType::Video),
        Just(MediaType::Application),
        Just(MediaType::Text),
        Just(MediaType::Message),
        "[a-z]{1,8}"
            .prop_filter("unknown media", |s| {
                !["audio", "video", "application", "text", "message"].contains(&s.as_str())
            })
            .prop_map(MediaType::Other),
    ];
    (
        (
            media_type,
            any::<u16>(),
            of(any::<u16>()),
            token(),
            vec(token(), 0..4),
        ),
        (
            of(text()),
            vec(connection(), 0..2),
            vec(bandwidth(), 0..2),
            of(text()),
        ),
        vec(attribute(), 0..10),
    )
        .prop_map(
            |(
                (media, port, num_ports, protocol, formats),
                (title, connections, bandwidths, key),
                attributes,
            )| {
                let mut m = MediaDescription::new(media, port, &protocol, formats);
                m.num_ports = num_ports;
                m.title = title;
                m.connections = connections;
                m.bandwidths = bandwidths;
                m.encryption_key = key;
                m.attributes = attributes;
                m
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    let origin = (
        token(),
        any::<u64>(),
        any::<u64>(),
        token(),
        token(),
        token(),
    )
        .prop_map(
            |(username, session_id, session_version, net_type, addr_type, unicast_address)| {
                Origin {
                    username,
                    session_id,
                    session_version,
                    net_type,
                    addr_type,
                    unicast_address,
                }
            },
        );
    let timing =
        (any::<u64>(), any::<u64>(), vec(text(), 0..2)).prop_map(|(start, stop, repeats)| Timing {
            start,
            stop,
            repeats,
        });
    (
        (
            origin,
            text(),
            of(text()),
            of(text()),
            vec(text(), 0..2),
            vec(text(), 0..2),
        ),
        (
            of(connection()),
            vec(bandwidth(), 0..2),
            vec(timing, 1..3),
            of(text()),
            of(text()),
        ),
        vec(attribute(), 0..8),
        vec(media(), 0..4),
    )
        .prop_map(
            |(
                (origin, name, info, uri, emails, phones),
                (connection, bandwidths, timings, zones, key),
                attributes,
                media,
            )| {
                let mut sd = SessionDescription::new(origin);
                sd.session_name = name;
                sd.session_information = info;
                sd.uri = uri;
                sd.emails = emails;
                sd.phones = phones;
                sd.connection = connection;
                sd.bandwidths = bandwidths;
                sd.timings = timings;
                sd.time_zones = zones;
                sd.encryption_key = key;
                sd.attributes = attributes;
                sd.media = media;
                sd
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn session_round_trips(sd in session()) {
        let text = sd.to_string();
        let parsed = SessionDescription::parse(&text);
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, text);
        prop_assert_eq!(parsed.ok(), Some(sd));
    }

    #[test]
    fn candidate_round_trips(c in candidate()) {
        let text = c.to_string();
        prop_assert_eq!(text.parse::<Candidate>().ok(), Some(c.clone()));
        prop_assert_eq!(c.to_attribute_string().parse::<Candidate>().ok(), Some(c));
    }

    #[test]
    fn parser_never_panics(s in "(([vosiuepcbtrzkam]=[ -~]{0,40})?\r?\n){0,30}") {
        if let Ok(sd) = SessionDescription::parse(&s) {
            prop_assert_eq!(SessionDescription::parse(&sd.to_string()).ok(), Some(sd));
        }
    }

    #[test]
    fn attribute_lines_never_panic(a in "a=[a-z-]{1,18}(:[ -~]{0,40})?") {
        let s = format!("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n{a}\r\n");
        if let Ok(sd) = SessionDescription::parse(&s) {
            prop_assert_eq!(sd.to_string(), s);
        }
    }
}
