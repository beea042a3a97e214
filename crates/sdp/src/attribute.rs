//! `a=` lines (RFC 8866 §5.13, §6): the typed attributes WebRTC uses, and
//! everything else kept verbatim.

use std::fmt;

use crate::candidate::Candidate;
use crate::dtls::{Fingerprint, Setup};
use crate::error::ParseErrorKind;
use crate::rtp::{Extmap, Fmtp, Rtcp, RtcpFb, Rtpmap, Ssrc, SsrcGroup};
use crate::simulcast::{Rid, Simulcast};
use crate::stream::{Group, Msid, MsidSemantic};
use crate::util::{parse_u16, parse_u64, write_u64, Fields};

/// Media direction (RFC 8866 §6.7; also the optional direction of `extmap`,
/// RFC 8285 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// `sendrecv`.
    SendRecv,
    /// `sendonly`.
    SendOnly,
    /// `recvonly`.
    RecvOnly,
    /// `inactive`.
    Inactive,
}

impl Direction {
    /// The keyword as written in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// Parses one of the four keywords.
    pub fn from_keyword(s: &str) -> Option<Self> {
        match s {
            "sendrecv" => Some(Self::SendRecv),
            "sendonly" => Some(Self::SendOnly),
            "recvonly" => Some(Self::RecvOnly),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `a=` line. Known attributes are typed; the rest are kept verbatim as
/// [`Attribute::Other`]. The order of attributes in a section is preserved.
///
/// A known attribute whose value does not follow its grammar is a parse
/// error when its value changes what we do (ICE credentials, fingerprint,
/// DTLS role, candidates, codecs, SCTP port, BUNDLE group, mid); any other
/// is kept as `Other`, verbatim, with a debug log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Attribute {
    /// `a=group` (RFC 5888 §5; BUNDLE: RFC 8843 §7.1).
    Group(Group),
    /// `a=msid-semantic` (draft-ietf-mmusic-msid, still sent by browsers).
    MsidSemantic(MsidSemantic),
    /// `a=msid` (RFC 8830 §2).
    Msid(Msid),
    /// `a=mid` (RFC 5888 §4; RFC 8843).
    Mid(String),
    /// `a=ice-ufrag` (RFC 8839 §5.4).
    IceUfrag(String),
    /// `a=ice-pwd` (RFC 8839 §5.4).
    IcePwd(String),
    /// `a=ice-options`, e.g. `trickle` (RFC 8839 §5.6; RFC 8840 §4.1.1).
    IceOptions(Vec<String>),
    /// `a=ice-lite` (RFC 8839 §5.3).
    IceLite,
    /// `a=fingerprint` (RFC 8122 §5).
    Fingerprint(Fingerprint),
    /// `a=setup` (RFC 4145 §4).
    Setup(Setup),
    /// `a=candidate` (RFC 8839 §5.1). Boxed: a candidate is several times
    /// larger than any other attribute.
    Candidate(Box<Candidate>),
    /// `a=end-of-candidates` (RFC 8840 §8.2).
    EndOfCandidates,
    /// `a=rtpmap` (RFC 8866 §6.6).
    Rtpmap(Rtpmap),
    /// `a=fmtp` (RFC 8866 §6.15).
    Fmtp(Fmtp),
    /// `a=rtcp` (RFC 3605 §2.1).
    Rtcp(Rtcp),
    /// `a=rtcp-fb` (RFC 4585 §4.2).
    RtcpFb(RtcpFb),
    /// `a=rtcp-mux` (RFC 5761 §5.1.1).
    RtcpMux,
    /// `a=rtcp-rsize` (RFC 5506 §5).
    RtcpRsize,
    /// `a=extmap` (RFC 8285 §5).
    Extmap(Extmap),
    /// `a=extmap-allow-mixed` (RFC 8285 §6).
    ExtmapAllowMixed,
    /// `a=ssrc` (RFC 5576 §4.1).
    Ssrc(Ssrc),
    /// `a=ssrc-group` (RFC 5576 §4.2).
    SsrcGroup(SsrcGroup),
    /// `a=rid` (RFC 8851 §10).
    Rid(Rid),
    /// `a=simulcast` (RFC 8853 §5.1).
    Simulcast(Simulcast),
    /// `a=sctp-port` (RFC 8841 §5.1).
    SctpPort(u16),
    /// `a=max-message-size` (RFC 8841 §6.1); 0 means no limit.
    MaxMessageSize(u64),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly`, `a=inactive` (RFC 8866 §6.7).
    Direction(Direction),
    /// `a=bundle-only` (RFC 8843 §6).
    BundleOnly,
    /// Any other attribute, verbatim: `a=<name>` or `a=<name>:<value>`;
    /// also a known one whose value does not parse, where the value changes
    /// nothing essential (see the type's doc).
    Other {
        /// Attribute name.
        name: String,
        /// Value after the first `:`, if there is a colon.
        value: Option<String>,
    },
}

/// The attribute names this crate parses into typed [`Attribute`] variants;
/// any other name becomes [`Attribute::Other`].
pub const KNOWN_ATTRIBUTES: [&str; 31] = [
    "group",
    "msid-semantic",
    "msid",
    "mid",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "fingerprint",
    "setup",
    "candidate",
    "end-of-candidates",
    "rtpmap",
    "fmtp",
    "rtcp",
    "rtcp-fb",
    "rtcp-mux",
    "rtcp-rsize",
    "extmap",
    "extmap-allow-mixed",
    "ssrc",
    "ssrc-group",
    "rid",
    "simulcast",
    "sctp-port",
    "max-message-size",
    "sendrecv",
    "sendonly",
    "recvonly",
    "inactive",
    "bundle-only",
];

/// Attributes whose value changes what a peer does with the session: a
/// malformed one refuses the whole description. Any other known attribute
/// that does not parse is kept as [`Attribute::Other`] (with a debug log),
/// as libwebrtc does: one odd line that changes nothing we do (Pion and
/// older libwebrtc write `a=msid-semantic: WMS ` with no identifiers, for
/// instance) must not stop a call.
const STRICT_ATTRIBUTES: [&str; 10] = [
    "candidate",
    "fingerprint",
    "ice-ufrag",
    "ice-pwd",
    "setup",
    "rtpmap",
    "fmtp",
    "sctp-port",
    "group",
    "mid",
];

/// Maps a known attribute name to the `&'static str` used in error reports.
fn static_name(name: &str) -> &'static str {
    KNOWN_ATTRIBUTES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("attribute")
}

impl Attribute {
    /// Parses the text after `a=`.
    pub(crate) fn parse(line: &str) -> Result<Self, ParseErrorKind> {
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (line, None),
        };
        if name.is_empty() || name.contains(' ') {
            return Err(ParseErrorKind::InvalidField {
                field: 'a',
                expected: "an attribute name without spaces",
            });
        }
        let other = || Self::Other {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        };
        match Self::parse_known(name, value) {
            None => Ok(other()),
            Some(Ok(a)) => Ok(a),
            Some(Err(expected)) if STRICT_ATTRIBUTES.contains(&name) => {
                Err(ParseErrorKind::InvalidAttribute {
                    name: static_name(name),
                    expected,
                })
            }
            Some(Err(expected)) => {
                tracing::debug!(
                    attribute = name,
                    expected,
                    "keeping a malformed attribute as unknown"
                );
                Ok(other())
            }
        }
    }

    /// `None` when the name is not one we type.
    fn parse_known(name: &str, value: Option<&str>) -> Option<Result<Self, &'static str>> {
        let Some(v) = value else {
            return match name {
                "ice-lite" => Some(Ok(Self::IceLite)),
                "end-of-candidates" => Some(Ok(Self::EndOfCandidates)),
                "rtcp-mux" => Some(Ok(Self::RtcpMux)),
                "rtcp-rsize" => Some(Ok(Self::RtcpRsize)),
                "extmap-allow-mixed" => Some(Ok(Self::ExtmapAllowMixed)),
                "bundle-only" => Some(Ok(Self::BundleOnly)),
                _ => Direction::from_keyword(name)
                    .map(|d| Ok(Self::Direction(d)))
                    .or_else(|| (static_name(name) == name).then_some(Err("`:` and a value"))),
            };
        };
        let r = match name {
            "candidate" => Candidate::parse_value(v).map(|c| Self::Candidate(Box::new(c))),
            "rtpmap" => Rtpmap::parse_value(v).map(Self::Rtpmap),
            "fmtp" => Fmtp::parse_value(v).map(Self::Fmtp),
            "rtcp-fb" => RtcpFb::parse_value(v).map(Self::RtcpFb),
            "extmap" => Extmap::parse_value(v).map(Self::Extmap),
            "ssrc" => Ssrc::parse_value(v).map(Self::Ssrc),
            "ssrc-group" => SsrcGroup::parse_value(v).map(Self::SsrcGroup),
            "mid" => Ok(Self::Mid(v.to_owned())),
            "msid" => Msid::parse_value(v).map(Self::Msid),
            "group" => Group::parse_value(v).map(Self::Group),
            "msid-semantic" => MsidSemantic::parse_value(v).map(Self::MsidSemantic),
            "ice-ufrag" => Ok(Self::IceUfrag(v.to_owned())),
            "ice-pwd" => Ok(Self::IcePwd(v.to_owned())),
            "ice-options" => {
                let mut f = Fields::new(v);
                let mut opts = Vec::new();
                while !f.is_done() {
                    match f.next_field() {
                        Some(o) => opts.push(o.to_owned()),
                        None => return Some(Err("space-separated option tags")),
                    }
                }
                Ok(Self::IceOptions(opts))
            }
            "fingerprint" => Fingerprint::parse_value(v).map(Self::Fingerprint),
            "setup" => Setup::parse_value(v).map(Self::Setup),
            "rtcp" => Rtcp::parse_value(v).map(Self::Rtcp),
            "rid" => Rid::parse_value(v).map(Self::Rid),
            "simulcast" => Simulcast::parse_value(v).map(Self::Simulcast),
            "sctp-port" => parse_u16(v).map(Self::SctpPort).ok_or("a port number"),
            "max-message-size" => parse_u64(v)
                .map(Self::MaxMessageSize)
                .ok_or("a size in bytes"),
            "ice-lite" | "end-of-candidates" | "rtcp-mux" | "rtcp-rsize" | "extmap-allow-mixed"
            | "bundle-only" | "sendrecv" | "sendonly" | "recvonly" | "inactive" => Err("no value"),
            _ => return None,
        };
        Some(r)
    }

    /// The attribute name as written after `a=`.
    pub fn name(&self) -> &str {
        match self {
            Self::Group(_) => "group",
            Self::MsidSemantic(_) => "msid-semantic",
            Self::Msid(_) => "msid",
            Self::Mid(_) => "mid",
            Self::IceUfrag(_) => "ice-ufrag",
            Self::IcePwd(_) => "ice-pwd",
            Self::IceOptions(_) => "ice-options",
            Self::IceLite => "ice-lite",
            Self::Fingerprint(_) => "fingerprint",
            Self::Setup(_) => "setup",
            Self::Candidate(_) => "candidate",
            Self::EndOfCandidates => "end-of-candidates",
            Self::Rtpmap(_) => "rtpmap",
            Self::Fmtp(_) => "fmtp",
            Self::Rtcp(_) => "rtcp",
            Self::RtcpFb(_) => "rtcp-fb",
            Self::RtcpMux => "rtcp-mux",
            Self::RtcpRsize => "rtcp-rsize",
            Self::Extmap(_) => "extmap",
            Self::ExtmapAllowMixed => "extmap-allow-mixed",
            Self::Ssrc(_) => "ssrc",
            Self::SsrcGroup(_) => "ssrc-group",
            Self::Rid(_) => "rid",
            Self::Simulcast(_) => "simulcast",
            Self::SctpPort(_) => "sctp-port",
            Self::MaxMessageSize(_) => "max-message-size",
            Self::Direction(d) => d.as_str(),
            Self::BundleOnly => "bundle-only",
            Self::Other { name, .. } => name,
        }
    }

    /// Writes the attribute as it appears after `a=` (no line ending).
    pub fn write_to<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        w.write_str(self.name())?;
        match self {
            Self::Group(g) => {
                w.write_str(":")?;
                g.write_value(w)
            }
            Self::MsidSemantic(m) => {
                w.write_str(":")?;
                m.write_value(w)
            }
            Self::Msid(m) => {
                w.write_str(":")?;
                m.write_value(w)
            }
            Self::Mid(s) | Self::IceUfrag(s) | Self::IcePwd(s) => {
                w.write_str(":")?;
                w.write_str(s)
            }
            Self::IceOptions(opts) => {
                w.write_str(":")?;
                for (i, o) in opts.iter().enumerate() {
                    if i > 0 {
                        w.write_str(" ")?;
                    }
                    w.write_str(o)?;
                }
                Ok(())
            }
            Self::Fingerprint(fp) => {
                w.write_str(":")?;
                fp.write_value(w)
            }
            Self::Setup(s) => {
                w.write_str(":")?;
                w.write_str(s.as_str())
            }
            Self::Candidate(c) => {
                w.write_str(":")?;
                c.write_value(w)
            }
            Self::Rtpmap(r) => {
                w.write_str(":")?;
                r.write_value(w)
            }
            Self::Fmtp(x) => {
                w.write_str(":")?;
                x.write_value(w)
            }
            Self::Rtcp(x) => {
                w.write_str(":")?;
                x.write_value(w)
            }
            Self::RtcpFb(x) => {
                w.write_str(":")?;
                x.write_value(w)
            }
            Self::Extmap(x) => {
                w.write_str(":")?;
                x.write_value(w)
            }
            Self::Ssrc(x) => {
                w.write_str(":")?;
                x.write_value(w)
            }
            Self::SsrcGroup(x) => {
                w.write_str(":")?;
                x.write_value(w)
            }
            Self::Rid(x) => {
                w.write_str(":")?;
                x.write_value(w)
            }
            Self::Simulcast(x) => {
                w.write_str(":")?;
                x.write_value(w)
            }
            Self::SctpPort(p) => {
                w.write_str(":")?;
                write_u64(w, (*p).into())
            }
            Self::MaxMessageSize(n) => {
                w.write_str(":")?;
                write_u64(w, *n)
            }
            Self::Other { value: Some(v), .. } => {
                w.write_str(":")?;
                w.write_str(v)
            }
            Self::IceLite
            | Self::EndOfCandidates
            | Self::RtcpMux
            | Self::RtcpRsize
            | Self::ExtmapAllowMixed
            | Self::Direction(_)
            | Self::BundleOnly
            | Self::Other { value: None, .. } => Ok(()),
        }
    }
}

/// Writes the attribute as it appears after `a=`.
impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}
