//! The line-level parser (RFC 8866 §5, §9): splits lines, enforces the order
//! of line types and the configured [`Limits`].

use crate::attribute::Attribute;
use crate::error::{ParseError, ParseErrorKind};
use crate::media::MediaDescription;
use crate::session::{Bandwidth, Connection, Origin, SessionDescription, Timing};

/// Bounds on what a parse may accept, so hostile input cannot make us
/// allocate without bound (DESIGN.md: every allocation driven by a peer has a
/// limit).
///
/// The defaults fit any browser offer seen in practice (a Chromium offer with
/// audio, video and data after gathering is about 8 KiB) with wide margin,
/// including SFU offers with dozens of transceivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    max_bytes: usize,
    max_lines: usize,
    max_media: usize,
}

impl Default for Limits {
    /// 256 KiB, 8192 lines, 256 media sections.
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024,
            max_lines: 8192,
            max_media: 256,
        }
    }
}

impl Limits {
    /// Largest input in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Most lines.
    pub fn max_lines(&self) -> usize {
        self.max_lines
    }

    /// Most `m=` sections.
    pub fn max_media(&self) -> usize {
        self.max_media
    }

    /// Sets the largest input in bytes.
    pub fn with_max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    /// Sets the most lines.
    pub fn with_max_lines(mut self, n: usize) -> Self {
        self.max_lines = n;
        self
    }

    /// Sets the most `m=` sections.
    pub fn with_max_media(mut self, n: usize) -> Self {
        self.max_media = n;
        self
    }
}

const SESSION_ORDER: &str = "session lines in the order v o s i u e p c b t r z k a, then m";
const MEDIA_ORDER: &str = "media lines in the order i c b k a, or the next m";

/// Rank of a session-level line type in RFC 8866 §5 order, and whether it may repeat.
fn session_rank(t: u8) -> Option<(u8, bool)> {
    Some(match t {
        b'v' => (0, false),
        b'o' => (1, false),
        b's' => (2, false),
        b'i' => (3, false),
        b'u' => (4, false),
        b'e' => (5, true),
        b'p' => (6, true),
        b'c' => (7, false),
        b'b' => (8, true),
        b't' | b'r' => (9, true),
        b'z' => (10, false),
        b'k' => (11, false),
        b'a' => (12, true),
        _ => return None,
    })
}

/// Rank of a media-level line type, and whether it may repeat.
fn media_rank(t: u8) -> Option<(u8, bool)> {
    Some(match t {
        b'i' => (1, false),
        b'c' => (2, true),
        b'b' => (3, true),
        b'k' => (4, false),
        b'a' => (5, true),
        _ => return None,
    })
}

const KNOWN_TYPES: &[u8] = b"vosiuepcbtrzkam";

struct Session {
    origin: Option<Origin>,
    name: Option<String>,
    sd: SessionDescription,
}

pub(crate) fn parse_bytes(b: &[u8], limits: &Limits) -> Result<SessionDescription, ParseError> {
    check_size(b.len(), limits)?;
    match std::str::from_utf8(b) {
        Ok(s) => parse_session(s, limits),
        Err(e) => {
            let prefix = b.get(..e.valid_up_to()).unwrap_or_default();
            let line = 1 + prefix.iter().filter(|c| **c == b'\n').count();
            Err(ParseError::new(line, ParseErrorKind::InvalidUtf8))
        }
    }
}

fn check_size(size: usize, limits: &Limits) -> Result<(), ParseError> {
    if size > limits.max_bytes {
        return Err(ParseError::new(
            0,
            ParseErrorKind::TooLarge {
                size,
                limit: limits.max_bytes,
            },
        ));
    }
    Ok(())
}

pub(crate) fn parse_session(s: &str, limits: &Limits) -> Result<SessionDescription, ParseError> {
    check_size(s.len(), limits)?;
    let mut st = Session {
        origin: None,
        name: None,
        sd: SessionDescription::new(Origin {
            username: String::new(),
            session_id: 0,
            session_version: 0,
            net_type: String::new(),
            addr_type: String::new(),
            unicast_address: String::new(),
        }),
    };
    st.sd.timings.clear();
    st.sd.session_name.clear();

    // One pass over the whole input (memchr-fast) instead of a byte loop per
    // line; only when it finds something do lines get checked one by one.
    let stray_control = has_stray_control(s);

    // Current rank within the session level, or within the current media section.
    let mut rank: Option<u8> = None;
    let mut in_media = false;
    let mut blank_line: Option<usize> = None;
    let mut last_line = 0usize;

    for (idx, raw) in s.split('\n').enumerate() {
        let lineno = idx + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            // Blank lines are tolerated only at the very end.
            blank_line.get_or_insert(lineno);
            continue;
        }
        if let Some(b) = blank_line {
            return Err(ParseError::new(b, ParseErrorKind::MalformedLine));
        }
        if lineno > limits.max_lines {
            return Err(ParseError::new(
                lineno,
                ParseErrorKind::TooManyLines {
                    limit: limits.max_lines,
                },
            ));
        }
        last_line = lineno;
        let err = |kind| ParseError::new(lineno, kind);
        if stray_control && line.bytes().any(|b| b == b'\r' || b == 0) {
            return Err(err(ParseErrorKind::InvalidCharacter));
        }
        let (t, value) = match line.as_bytes() {
            [t, b'=', ..] if t.is_ascii_alphabetic() => (*t, line.get(2..).unwrap_or_default()),
            _ => return Err(err(ParseErrorKind::MalformedLine)),
        };
        if !KNOWN_TYPES.contains(&t) {
            return Err(err(ParseErrorKind::UnknownLineType(char::from(t))));
        }
        if rank.is_none() && !in_media && t != b'v' {
            return Err(err(ParseErrorKind::UnexpectedLine {
                found: char::from(t),
                expected: "`v=0` first",
            }));
        }

        if t == b'm' {
            check_session_complete(&st, lineno)?;
            if st.sd.media.len() >= limits.max_media {
                return Err(err(ParseErrorKind::TooManyMediaSections {
                    limit: limits.max_media,
                }));
            }
            let m = MediaDescription::parse_m_line(value).map_err(|expected| {
                err(ParseErrorKind::InvalidField {
                    field: 'm',
                    expected,
                })
            })?;
            st.sd.media.push(m);
            in_media = true;
            rank = Some(0);
            continue;
        }

        let (r, repeats) = if in_media {
            media_rank(t)
        } else {
            session_rank(t)
        }
        .ok_or_else(|| {
            err(ParseErrorKind::UnexpectedLine {
                found: char::from(t),
                expected: if in_media { MEDIA_ORDER } else { SESSION_ORDER },
            })
        })?;
        if let Some(cur) = rank {
            if r < cur || (r == cur && !repeats) {
                return Err(err(ParseErrorKind::UnexpectedLine {
                    found: char::from(t),
                    expected: if in_media { MEDIA_ORDER } else { SESSION_ORDER },
                }));
            }
        }
        rank = Some(r);

        let invalid = |expected| {
            err(ParseErrorKind::InvalidField {
                field: char::from(t),
                expected,
            })
        };
        if t == b'a' {
            let a = Attribute::parse(value).map_err(err)?;
            match st.sd.media.last_mut() {
                Some(m) if in_media => m.attributes.push(a),
                _ => st.sd.attributes.push(a),
            }
            continue;
        }
        if in_media {
            let Some(m) = st.sd.media.last_mut() else {
                return Err(invalid("an `m=` line first"));
            };
            match t {
                b'i' => m.title = Some(value.to_owned()),
                b'c' => m.connections.push(
                    Connection::parse_value(value)
                        .map_err(|_| invalid("<nettype> <addrtype> <address>"))?,
                ),
                b'b' => m.bandwidths.push(
                    Bandwidth::parse_value(value).ok_or_else(|| invalid("<bwtype>:<bandwidth>"))?,
                ),
                _ => m.encryption_key = Some(value.to_owned()),
            }
            continue;
        }
        let sd = &mut st.sd;
        match t {
            b'v' => {
                if value != "0" {
                    return Err(invalid("version 0"));
                }
            }
            b'o' => {
                st.origin = Some(Origin::parse_value(value).ok_or_else(|| {
                    invalid("<username> <sess-id> <sess-version> <nettype> <addrtype> <address>")
                })?);
            }
            b's' => st.name = Some(value.to_owned()),
            b'i' => sd.session_information = Some(value.to_owned()),
            b'u' => sd.uri = Some(value.to_owned()),
            b'e' => sd.emails.push(value.to_owned()),
            b'p' => sd.phones.push(value.to_owned()),
            b'c' => {
                sd.connection = Some(
                    Connection::parse_value(value)
                        .map_err(|_| invalid("<nettype> <addrtype> <address>"))?,
                );
            }
            b'b' => sd.bandwidths.push(
                Bandwidth::parse_value(value).ok_or_else(|| invalid("<bwtype>:<bandwidth>"))?,
            ),
            b't' => sd.timings.push(
                Timing::parse_value(value).ok_or_else(|| invalid("<start-time> <stop-time>"))?,
            ),
            b'r' => match sd.timings.last_mut() {
                Some(timing) => timing.repeats.push(value.to_owned()),
                None => return Err(invalid("a `t=` line before `r=`")),
            },
            b'z' => sd.time_zones = Some(value.to_owned()),
            _ => sd.encryption_key = Some(value.to_owned()),
        }
    }

    if rank.is_none() && !in_media {
        return Err(ParseError::new(1, ParseErrorKind::Empty));
    }
    if !in_media {
        check_session_complete(&st, last_line + 1)?;
    }
    let Session {
        origin,
        name,
        mut sd,
    } = st;
    match (origin, name) {
        (Some(o), Some(n)) => {
            sd.origin = o;
            sd.session_name = n;
            Ok(sd)
        }
        // check_session_complete ran, so both are set.
        _ => Err(ParseError::new(
            last_line + 1,
            ParseErrorKind::Missing {
                expected: "`o=` and `s=`",
            },
        )),
    }
}

/// Whether `s` has a NUL, or a CR that does not end a line.
fn has_stray_control(s: &str) -> bool {
    let b = s.as_bytes();
    b.contains(&0)
        || s.match_indices('\r')
            .any(|(i, _)| !matches!(b.get(i + 1), Some(b'\n') | None))
}

/// RFC 8866 §5: `o=`, `s=` and at least one `t=` are required before media.
fn check_session_complete(st: &Session, lineno: usize) -> Result<(), ParseError> {
    let missing = |expected| {
        Err(ParseError::new(
            lineno,
            ParseErrorKind::Missing { expected },
        ))
    };
    if st.origin.is_none() {
        return missing("`o=` line");
    }
    if st.name.is_none() {
        return missing("`s=` line");
    }
    if st.sd.timings.is_empty() {
        return missing("`t=` line");
    }
    Ok(())
}
