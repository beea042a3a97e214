//! Every fixture round-trips byte-exact (after normalizing line endings to
//! `\r\n`), and typed values of the real browser SDPs are what we expect.
//!
//! When `REALTIMER_CHROMIUM_SDP_DIR` is set, every `*.sdp` (and
//! `candidates.txt`) in that directory is round-tripped too: `scripts/test`
//! captures them fresh from the installed Chromium with
//! `tests/browser/capture-sdp.mjs`.

use std::path::{Path, PathBuf};

use realtimer_sdp::{
    Attribute, Candidate, CandidateProtocol, CandidateType, Direction, HashFunction, MediaType,
    ParseErrorKind, RidDirection, SessionDescription, Setup, TcpType,
};

fn fixtures(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 64);
    for line in s.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn round_trip(path: &Path) -> SessionDescription {
    let text = read(path);
    let sd = SessionDescription::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let out = sd.to_string();
    assert_eq!(
        out,
        normalize(&text),
        "{} does not round-trip",
        path.display()
    );
    let again = SessionDescription::parse(&out).expect("re-parse");
    assert_eq!(again, sd, "{}: parse(serialize(x)) != x", path.display());
    sd
}

fn sdp_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sdp"))
        .collect();
    files.sort();
    files
}

fn round_trip_candidates(path: &Path) -> Vec<Candidate> {
    read(path)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let c: Candidate = line
                .parse()
                .unwrap_or_else(|e| panic!("{}: {line}: {e}", path.display()));
            let value = line
                .trim_start_matches("a=")
                .trim_start_matches("candidate:");
            assert_eq!(c.to_string(), value);
            assert_eq!(format!("candidate:{c}"), c.to_attribute_string());
            c
        })
        .collect()
}

#[test]
fn all_committed_fixtures_round_trip() {
    let mut n = 0;
    for sub in [
        "chromium",
        "firefox",
        "rfc",
        "libwebrtc",
        "pion",
        "werift",
        "aiortc",
        "gstreamer",
    ] {
        for f in sdp_files(&fixtures(sub)) {
            round_trip(&f);
            n += 1;
        }
    }
    assert!(n >= 40, "only {n} fixtures");
    assert!(round_trip_candidates(&fixtures("chromium/candidates.txt")).len() >= 8);
    assert_eq!(
        round_trip_candidates(&fixtures("rfc/candidates.txt")).len(),
        7
    );
}

#[test]
fn fresh_chromium_captures_round_trip() {
    let Some(dir) = std::env::var_os("REALTIMER_CHROMIUM_SDP_DIR") else {
        eprintln!("REALTIMER_CHROMIUM_SDP_DIR is not set: skipping fresh Chromium captures");
        return;
    };
    let dir = PathBuf::from(dir);
    let files = sdp_files(&dir);
    assert!(!files.is_empty(), "no *.sdp in {}", dir.display());
    for f in &files {
        round_trip(f);
    }
    let cands = dir.join("candidates.txt");
    let n = if cands.exists() {
        round_trip_candidates(&cands).len()
    } else {
        0
    };
    eprintln!(
        "round-tripped {} fresh Chromium SDPs and {n} candidates from {}",
        files.len(),
        dir.display()
    );
}

#[test]
fn chromium_offer_typed_values() {
    let sd = round_trip(&fixtures("chromium/offer-audio-video-data-gathered.sdp"));
    assert!(sd.origin.username == "-" && sd.session_name == "-");
    let bundle = sd.bundle_group().expect("BUNDLE group");
    assert_eq!(bundle.mids, ["0", "1", "2"]);
    let mids: Vec<_> = sd.media.iter().filter_map(|m| m.mid()).collect();
    assert_eq!(mids, ["0", "1", "2"]);
    assert!(sd.attributes.contains(&Attribute::ExtmapAllowMixed));
    assert!(sd.attributes.iter().any(|a| matches!(a,
        Attribute::MsidSemantic(m) if m.leading_space && m.semantic == "WMS" && m.identifiers.len() == 1)));

    let kinds: Vec<_> = sd.media.iter().map(|m| m.media.clone()).collect();
    assert_eq!(
        kinds,
        [MediaType::Audio, MediaType::Video, MediaType::Application]
    );
    for m in &sd.media {
        let fp = m
            .attributes
            .iter()
            .find_map(|a| match a {
                Attribute::Fingerprint(f) => Some(f),
                _ => None,
            })
            .expect("fingerprint");
        assert_eq!(fp.hash, HashFunction::Sha256);
        assert_eq!(fp.value.len(), 32);
        assert!(m.attributes.contains(&Attribute::Setup(Setup::ActPass)));
        assert!(m
            .attributes
            .contains(&Attribute::IceOptions(vec!["trickle".into()])));
        let cands: Vec<_> = m.candidates().collect();
        assert!(!cands.is_empty());
        assert!(cands.iter().all(|c| c.typ == CandidateType::Host));
        assert!(cands
            .iter()
            .any(|c| c.protocol() == Some(CandidateProtocol::Udp) && c.ip().is_some()));
        assert!(cands.iter().any(|c| c.tcp_type == Some(TcpType::Active)));
    }
    let audio = &sd.media[0];
    assert_eq!(audio.direction(), Direction::SendRecv);
    assert!(audio.attributes.iter().any(|a| matches!(a,
        Attribute::Rtpmap(r) if r.payload_type == 111 && r.encoding_name == "opus"
            && r.clock_rate == 48000 && r.encoding_params == Some(2))));
    assert!(audio.attributes.iter().any(|a| matches!(a,
        Attribute::Fmtp(f) if f.payload_type() == Some(111) && f.parameter("useinbandfec") == Some("1"))));
    assert!(audio.attributes.contains(&Attribute::RtcpMux));
    let video = &sd.media[1];
    assert!(video.attributes.iter().any(|a| matches!(a,
        Attribute::SsrcGroup(g) if g.semantics == "FID" && g.ssrcs.len() == 2)));
    assert!(video.attributes.iter().any(|a| matches!(a,
        Attribute::RtcpFb(f) if f.feedback == "nack" && f.parameter.as_deref() == Some("pli"))));
    assert!(video
        .attributes
        .iter()
        .any(|a| matches!(a, Attribute::Other { name, .. } if name == "rtcp-xr")));
    let data = &sd.media[2];
    assert_eq!(data.protocol, "UDP/DTLS/SCTP");
    assert_eq!(data.formats, ["webrtc-datachannel"]);
    assert!(data.attributes.contains(&Attribute::SctpPort(5000)));
    assert!(data.attributes.contains(&Attribute::MaxMessageSize(262144)));
}

#[test]
fn chromium_mdns_candidates() {
    let sd = round_trip(&fixtures("chromium/offer-data-mdns-gathered.sdp"));
    let cands: Vec<_> = sd.media[0].candidates().collect();
    assert!(!cands.is_empty());
    for c in cands {
        assert!(c.is_mdns(), "{c}");
        assert_eq!(c.ip(), None);
        assert_eq!(c.typ, CandidateType::Host);
        assert!(c.address.len() == 36 + ".local".len(), "{}", c.address);
    }
    let trickled = round_trip_candidates(&fixtures("chromium/candidates.txt"));
    assert!(trickled.iter().any(|c| c.is_mdns() && c.ufrag.is_some()));
}

#[test]
fn chromium_answer_and_simulcast() {
    let sd = round_trip(&fixtures("chromium/answer-audio-video-data.sdp"));
    for m in &sd.media {
        assert!(m.attributes.contains(&Attribute::Setup(Setup::Active)));
    }
    let sim = round_trip(&fixtures("chromium/offer-simulcast.sdp"));
    let video = &sim.media[0];
    assert_eq!(video.direction(), Direction::SendOnly);
    let rids: Vec<_> = video
        .attributes
        .iter()
        .filter_map(|a| match a {
            Attribute::Rid(r) if r.direction == RidDirection::Send => Some(r.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(rids, ["q", "h", "f"]);
    assert!(video.attributes.iter().any(|a| matches!(a,
        Attribute::Simulcast(s) if s.lists.len() == 1 && s.lists[0].streams.len() == 3)));
}

#[test]
fn firefox_offer_typed_values() {
    let sd = round_trip(&fixtures("firefox/offer-gathered.sdp"));
    assert!(sd.origin.username.ends_with("THIS_IS_SDPARTA-128.0"));
    assert!(sd.attributes.iter().any(|a| matches!(a,
        Attribute::MsidSemantic(m) if !m.leading_space && m.identifiers == ["*"])));
    let audio = &sd.media[0];
    let cands: Vec<_> = audio.candidates().collect();
    assert_eq!(cands.len(), 4);
    assert!(cands[0].is_mdns() && cands[0].typ == CandidateType::Host);
    assert_eq!(cands[0].protocol(), Some(CandidateProtocol::Udp));
    assert_eq!(cands[1].tcp_type, Some(TcpType::Active));
    assert_eq!(cands[2].typ, CandidateType::ServerReflexive);
    assert_eq!(cands[3].typ, CandidateType::Relay);
    assert_eq!(cands[3].related_address.as_deref(), Some("203.0.113.5"));
    assert_eq!(cands[3].related_port, Some(52613));
    assert!(audio.attributes.contains(&Attribute::EndOfCandidates));
    assert!(audio.attributes.iter().any(|a| matches!(a,
        Attribute::Extmap(e) if e.id == 2 && e.direction == Some(Direction::RecvOnly))));
    assert!(sd.media[1].attributes.contains(&Attribute::BundleOnly));

    let answer = round_trip(&fixtures("firefox/answer-audio-video-data.sdp"));
    assert_eq!(answer.media[0].direction(), Direction::RecvOnly);
    assert!(answer.media[1].attributes.iter().any(|a| matches!(a,
        Attribute::Simulcast(s) if s.lists[0].direction == RidDirection::Recv
            && s.lists[0].streams[2][0].paused)));
}

#[test]
fn every_line_type() {
    let sd = round_trip(&fixtures("rfc/all-line-types-lf.sdp"));
    assert_eq!(sd.session_name, " ");
    assert_eq!(sd.emails.len(), 2);
    assert_eq!(sd.timings.len(), 2);
    assert_eq!(sd.timings[0].repeats.len(), 2);
    assert!(sd.time_zones.is_some() && sd.encryption_key.is_some());
    assert!(sd.attributes.contains(&Attribute::IceLite));
    assert!(sd.attributes.contains(&Attribute::Other {
        name: "x-empty-value".into(),
        value: Some(String::new())
    }));
    let audio = &sd.media[0];
    assert_eq!(audio.num_ports, Some(2));
    assert_eq!(audio.connections.len(), 2);
    assert_eq!(audio.direction(), Direction::Inactive);
    assert!(audio.attributes.iter().any(|a| matches!(a,
        Attribute::Rtcp(r) if r.port == 53020 && r.connection.as_ref().is_some_and(|c| c.addr_type == "IP6"))));
    assert!(audio
        .attributes
        .iter()
        .any(|a| matches!(a, Attribute::RtcpFb(f) if f.payload_type.is_none())));
    let data = &sd.media[2];
    assert!(data.attributes.contains(&Attribute::MaxMessageSize(0)));
    assert!(data.attributes.iter().any(|a| matches!(a,
        Attribute::Fingerprint(f) if f.hash == HashFunction::Sha512 && f.value.len() == 64)));
}

/// Data-channel SDPs of other stacks, captured by tests/peers/js/relay.js
/// `--dump` between the interop peers: each offer and answer parses, with
/// the values that matter typed.
#[test]
fn other_stacks_data_channel_offers_and_answers() {
    for (peer, msid_semantic) in [("libwebrtc", " WMS"), ("pion", ""), ("werift", "WMS *")] {
        for kind in ["offer", "answer"] {
            let path = fixtures(&format!("{peer}/{kind}-data.sdp"));
            let sd = round_trip(&path);
            let m = &sd.media[0];
            assert_eq!(m.media, MediaType::Application, "{peer} {kind}");
            let port = m.attributes.iter().find_map(|a| match a {
                Attribute::SctpPort(p) => Some(*p),
                _ => None,
            });
            assert_eq!(port, Some(5000), "{peer} {kind}");
            let creds = sd
                .media
                .iter()
                .flat_map(|m| &m.attributes)
                .chain(&sd.attributes)
                .filter(|a| matches!(a, Attribute::IceUfrag(_) | Attribute::IcePwd(_)))
                .count();
            assert_eq!(creds, 2, "{peer} {kind}: ice-ufrag and ice-pwd");
            let semantic = sd.attributes.iter().find_map(|a| match a {
                Attribute::MsidSemantic(m) => Some(m.to_string()),
                _ => None,
            });
            assert_eq!(
                semantic.as_deref().unwrap_or(""),
                msid_semantic,
                "{peer} {kind}"
            );
        }
    }
}

/// GStreamer webrtcbin's offer: its second section has port 0 and
/// `a=bundle-only` (RFC 8843 §6), and `a=rtcp-mux-only` (RFC 8858).
#[test]
fn gstreamer_offer_typed_values() {
    let sd = round_trip(&fixtures("gstreamer/offer-audio-video.sdp"));
    assert_eq!(sd.media.len(), 2);
    let audio = &sd.media[1];
    assert_eq!((audio.media.clone(), audio.port), (MediaType::Audio, 0));
    assert!(audio.attributes.contains(&Attribute::BundleOnly));
    assert!(audio
        .attributes
        .iter()
        .any(|a| matches!(a, Attribute::Rtpmap(r) if r.encoding_name == "OPUS")));
}

#[test]
fn an_odd_attribute_that_changes_nothing_is_kept_as_unknown() {
    // libwebrtc's answer, with the semantic followed by a space and no
    // identifiers, as another stack writes it: libwebrtc accepts it.
    let text = read(&fixtures("libwebrtc/answer-data.sdp"))
        .replace("a=msid-semantic: WMS\r\n", "a=msid-semantic: WMS \r\n");
    assert!(text.contains("a=msid-semantic: WMS \r\n"));
    let sd = SessionDescription::parse(&text).expect("an odd msid-semantic is not fatal");
    assert_eq!(sd.to_string(), text, "kept verbatim");
    assert!(sd.attributes.contains(&Attribute::Other {
        name: "msid-semantic".into(),
        value: Some(" WMS ".into()),
    }));
    // Flags with a value, an extmap or rtcp-fb without its fields, a bad
    // max-message-size: kept as they came, the rest of the section typed.
    for odd in [
        "a=rtcp-mux:1",
        "a=extmap:x",
        "a=rtcp-fb:",
        "a=max-message-size:big",
        "a=msid:",
        "a=ssrc:x",
        "a=simulcast:",
    ] {
        let sd = SessionDescription::parse(&format!(
            "{HEAD}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n{odd}\r\na=rtpmap:111 opus/48000/2\r\n"
        ))
        .unwrap_or_else(|e| panic!("{odd}: {e}"));
        let attrs = &sd.media[0].attributes;
        assert!(
            matches!(&attrs[1], Attribute::Other { .. }),
            "{odd}: {attrs:?}"
        );
        assert!(matches!(&attrs[2], Attribute::Rtpmap(_)), "{odd}");
    }
}

#[test]
fn a_malformed_value_that_matters_refuses_the_description() {
    for (odd, name) in [
        ("a=fingerprint:sha-256 zz", "fingerprint"),
        ("a=ice-ufrag", "ice-ufrag"),
        ("a=ice-pwd", "ice-pwd"),
        ("a=setup:sideways", "setup"),
        ("a=candidate:1 1 udp 1 1.2.3.4 99999 typ host", "candidate"),
        ("a=rtpmap:111 opus", "rtpmap"),
        ("a=fmtp:x", "fmtp"),
        ("a=sctp-port:70000", "sctp-port"),
        ("a=group:", "group"),
        ("a=mid", "mid"),
    ] {
        let (line, kind) = parse_err(&format!(
            "{HEAD}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n{odd}\r\n"
        ));
        assert_eq!(line, 6, "{odd}");
        assert!(
            matches!(kind, ParseErrorKind::InvalidAttribute { name: n, .. } if n == name),
            "{odd}: {kind:?}"
        );
    }
}

fn parse_err(s: &str) -> (usize, ParseErrorKind) {
    let e = SessionDescription::parse(s).expect_err("should fail");
    (e.line, e.kind)
}

const HEAD: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

#[test]
fn errors_name_the_line_and_what_was_expected() {
    // Truncated lines.
    assert_eq!(parse_err("v=0\r\no=- 1 2 IN IP4\r\n").0, 2);
    assert!(matches!(
        parse_err("v=0\r\no=- 1 2 IN IP4\r\n").1,
        ParseErrorKind::InvalidField { field: 'o', .. }
    ));
    assert_eq!(parse_err("v=0\r\no"), (2, ParseErrorKind::MalformedLine));
    assert_eq!(
        parse_err(&format!("{HEAD}m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/")),
        (
            6,
            ParseErrorKind::InvalidAttribute {
                name: "rtpmap",
                expected: "clock rate"
            }
        )
    );
    // Bad m= lines.
    assert_eq!(
        parse_err(&format!("{HEAD}m=audio 70000 RTP/AVP 0\r\n")),
        (
            5,
            ParseErrorKind::InvalidField {
                field: 'm',
                expected: "port"
            }
        )
    );
    assert_eq!(
        parse_err(&format!("{HEAD}m=audio 9\r\n")),
        (
            5,
            ParseErrorKind::InvalidField {
                field: 'm',
                expected: "protocol"
            }
        )
    );
    // Bad candidate.
    assert_eq!(
        parse_err(&format!(
            "{HEAD}m=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 1 1.2.3.4 99999 typ host\r\n"
        )),
        (
            7,
            ParseErrorKind::InvalidAttribute {
                name: "candidate",
                expected: "port"
            }
        )
    );
    // Order and missing lines.
    assert!(matches!(
        parse_err("o=- 1 2 IN IP4 127.0.0.1\r\n"),
        (1, ParseErrorKind::UnexpectedLine { found: 'o', .. })
    ));
    assert!(matches!(
        parse_err("v=0\r\ns=-\r\no=- 1 2 IN IP4 127.0.0.1\r\n"),
        (3, ParseErrorKind::UnexpectedLine { found: 'o', .. })
    ));
    assert_eq!(
        parse_err("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\n"),
        (
            4,
            ParseErrorKind::Missing {
                expected: "`t=` line"
            }
        )
    );
    assert_eq!(
        parse_err(&format!("{HEAD}x=1\r\n")),
        (5, ParseErrorKind::UnknownLineType('x'))
    );
    assert_eq!(parse_err(""), (1, ParseErrorKind::Empty));
    assert_eq!(
        parse_err(&format!("{HEAD}\r\na=ice-lite\r\n")),
        (5, ParseErrorKind::MalformedLine)
    );
    assert_eq!(
        parse_err(&format!("{HEAD}a=x:a\rb\r\n")),
        (5, ParseErrorKind::InvalidCharacter)
    );
    assert!(matches!(
        parse_err(&format!("{HEAD}a=setup:sideways\r\n")),
        (5, ParseErrorKind::InvalidAttribute { name: "setup", .. })
    ));
    // A trailing blank line and LF endings are fine.
    assert!(SessionDescription::parse(&format!("{HEAD}\r\n")).is_ok());
    assert!(SessionDescription::parse(&HEAD.replace("\r\n", "\n")).is_ok());
}

#[test]
fn limits_bound_the_input() {
    use realtimer_sdp::Limits;
    let big = format!("{HEAD}{}", "a=x-pad:0123456789\r\n".repeat(20_000));
    let (line, kind) = parse_err(&big);
    assert_eq!(line, 0);
    assert!(matches!(
        kind,
        ParseErrorKind::TooLarge { limit: 262144, .. }
    ));

    let limits = Limits::default().with_max_lines(10);
    let e =
        SessionDescription::parse_with_limits(&format!("{HEAD}{}", "a=x\r\n".repeat(10)), &limits)
            .unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (11, ParseErrorKind::TooManyLines { limit: 10 })
    );

    let limits = Limits::default().with_max_media(2);
    let e = SessionDescription::parse_with_limits(
        &format!("{HEAD}{}", "m=audio 9 RTP/AVP 0\r\n".repeat(3)),
        &limits,
    )
    .unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (7, ParseErrorKind::TooManyMediaSections { limit: 2 })
    );

    let e = SessionDescription::parse_bytes(b"v=0\r\no=\xff", &Limits::default()).unwrap_err();
    assert_eq!((e.line, e.kind), (2, ParseErrorKind::InvalidUtf8));
}
