//! ICE candidates, RFC 8839 §5.1 (with the RFC 6544 `tcptype` and the
//! extension attributes browsers add).
//!
//! Grammar (RFC 8839 §5.1):
//! ```text
//! candidate-attribute = "candidate" ":" foundation SP component-id SP
//!                       transport SP priority SP connection-address SP
//!                       port SP cand-type [SP rel-addr] [SP rel-port]
//!                       *(SP cand-extension)
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::{ParseError, ParseErrorKind};
use crate::util::{parse_u16, parse_u32, write_all, write_u64, Fields};

/// Longest candidate value (after any `a=candidate:` prefix) that
/// [`Candidate::parse`] accepts, in bytes.
///
/// Trickled candidates arrive one by one from the peer; this bounds what one
/// of them can make us allocate. Real candidates are under 300 bytes.
pub const MAX_CANDIDATE_LEN: usize = 4096;

/// One ICE candidate (RFC 8839 §5.1).
///
/// Extensions the model knows (`raddr`, `rport`, `tcptype`, `generation`,
/// `ufrag`, `network-id`, `network-cost`) are typed fields when they appear
/// in that order before any other extension, which is how every browser
/// writes them; anything else is kept verbatim and in order in
/// [`extensions`](Self::extensions), so serialization is lossless.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// `foundation`: 1 to 32 `ice-char`s (RFC 8839 §5.1).
    pub foundation: String,
    /// `component-id`: 1 for RTP (and everything under rtcp-mux), 2 for RTCP.
    pub component: u16,
    /// `transport` as written (`udp`, `UDP`, `tcp`...); see [`Candidate::protocol`].
    pub transport: String,
    /// `priority` (RFC 8445 §5.1.2).
    pub priority: u32,
    /// `connection-address`: an IPv4/IPv6 address or an FQDN such as an mDNS
    /// `<uuid>.local` name (RFC 8839 §5.1, draft-ietf-mmusic-mdns-ice-candidates).
    pub address: String,
    /// `port`.
    pub port: u16,
    /// `cand-type` after the `typ` keyword.
    pub typ: CandidateType,
    /// `raddr`: related address of a reflexive or relayed candidate.
    pub related_address: Option<String>,
    /// `rport`: related port.
    pub related_port: Option<u16>,
    /// `tcptype` (RFC 6544 §4.5) of a TCP candidate.
    pub tcp_type: Option<TcpType>,
    /// `generation` (a libwebrtc extension): ICE restart counter.
    pub generation: Option<u32>,
    /// `ufrag` (a libwebrtc extension): the ICE username fragment this candidate belongs to.
    pub ufrag: Option<String>,
    /// `network-id` (a libwebrtc extension).
    pub network_id: Option<u32>,
    /// `network-cost` (a libwebrtc extension).
    pub network_cost: Option<u32>,
    /// Other `cand-extension` pairs (`extension-att-name SP extension-att-value`), in order.
    pub extensions: Vec<(String, String)>,
}

/// `cand-type` (RFC 8839 §5.1, RFC 8445 §5.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CandidateType {
    /// `host`: an address on a local interface.
    Host,
    /// `srflx`: server reflexive, learned from a STUN server.
    ServerReflexive,
    /// `prflx`: peer reflexive, learned from a connectivity check.
    PeerReflexive,
    /// `relay`: allocated on a TURN server.
    Relay,
    /// Another `token`, which the grammar allows for future types.
    Other(String),
}

impl CandidateType {
    /// The keyword as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Host => "host",
            Self::ServerReflexive => "srflx",
            Self::PeerReflexive => "prflx",
            Self::Relay => "relay",
            Self::Other(s) => s,
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "host" => Self::Host,
            "srflx" => Self::ServerReflexive,
            "prflx" => Self::PeerReflexive,
            "relay" => Self::Relay,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for CandidateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `tcptype` of a TCP candidate (RFC 6544 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TcpType {
    /// `active`: opens outgoing connections only.
    Active,
    /// `passive`: accepts incoming connections only.
    Passive,
    /// `so`: simultaneous open.
    SimultaneousOpen,
}

impl TcpType {
    /// The keyword as written in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Passive => "passive",
            Self::SimultaneousOpen => "so",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "passive" => Some(Self::Passive),
            "so" => Some(Self::SimultaneousOpen),
            _ => None,
        }
    }
}

impl fmt::Display for TcpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport protocol of a candidate, matched case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CandidateProtocol {
    /// UDP.
    Udp,
    /// TCP (RFC 6544).
    Tcp,
}

/// `ice-char = ALPHA / DIGIT / "+" / "/"` (RFC 8839 §5.1).
fn is_ice_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Known extensions in the order they become typed fields.
const KNOWN: [&str; 7] = [
    "raddr",
    "rport",
    "tcptype",
    "generation",
    "ufrag",
    "network-id",
    "network-cost",
];

impl Candidate {
    /// Parses the value of an `a=candidate:` attribute (what follows `candidate:`).
    ///
    /// Returns what was expected on failure.
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let mut f = Fields::new(s);
        let foundation = f
            .next_field()
            .filter(|x| x.len() <= 32 && x.bytes().all(is_ice_char))
            .ok_or("foundation (1 to 32 ice-chars)")?;
        let component = f.next_field().and_then(parse_u16).ok_or("component id")?;
        let transport = f.next_field().ok_or("transport")?;
        let priority = f.next_field().and_then(parse_u32).ok_or("priority")?;
        let address = f.next_field().ok_or("connection address")?;
        let port = f.next_field().and_then(parse_u16).ok_or("port")?;
        if f.next_field() != Some("typ") {
            return Err("`typ` keyword");
        }
        let typ = f.next_field().ok_or("candidate type")?;
        let mut c = Candidate {
            foundation: foundation.to_owned(),
            component,
            transport: transport.to_owned(),
            priority,
            address: address.to_owned(),
            port,
            typ: CandidateType::parse(typ),
            related_address: None,
            related_port: None,
            tcp_type: None,
            generation: None,
            ufrag: None,
            network_id: None,
            network_cost: None,
            extensions: Vec::new(),
        };
        // Index into KNOWN of the next typed field we may still fill; once an
        // extension goes to `extensions`, everything after it does too.
        let mut next_known = 0usize;
        while !f.is_done() {
            let name = f.next_field().ok_or("extension name")?;
            let value = f.next_field().ok_or("extension value")?;
            let pos = KNOWN.iter().position(|k| *k == name);
            let typed = match pos {
                Some(p) if p >= next_known && next_known < KNOWN.len() => c.set_known(p, value),
                _ => false,
            };
            match (typed, pos) {
                (true, Some(p)) => next_known = p + 1,
                _ => {
                    next_known = KNOWN.len();
                    c.extensions.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        Ok(c)
    }

    fn set_known(&mut self, index: usize, value: &str) -> bool {
        match index {
            0 => self.related_address = Some(value.to_owned()),
            1 => match parse_u16(value) {
                Some(p) => self.related_port = Some(p),
                None => return false,
            },
            2 => match TcpType::parse(value) {
                Some(t) => self.tcp_type = Some(t),
                None => return false,
            },
            3 => match parse_u32(value) {
                Some(g) => self.generation = Some(g),
                None => return false,
            },
            4 => self.ufrag = Some(value.to_owned()),
            5 => match parse_u32(value) {
                Some(n) => self.network_id = Some(n),
                None => return false,
            },
            6 => match parse_u32(value) {
                Some(n) => self.network_cost = Some(n),
                None => return false,
            },
            _ => return false,
        }
        true
    }

    /// Parses a trickled candidate: `a=candidate:...`, `candidate:...` (as in
    /// `RTCIceCandidate.candidate`) or the bare value, with an optional
    /// trailing line ending. Errors report line 1.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.strip_suffix('\n').unwrap_or(s);
        let s = s.strip_suffix('\r').unwrap_or(s);
        let s = s.strip_prefix("a=").unwrap_or(s);
        let s = s.strip_prefix("candidate:").unwrap_or(s);
        // The limit applies to the value, so every accepted candidate is also
        // accepted with any of the prefixes.
        if s.len() > MAX_CANDIDATE_LEN {
            return Err(ParseError::new(
                0,
                ParseErrorKind::TooLarge {
                    size: s.len(),
                    limit: MAX_CANDIDATE_LEN,
                },
            ));
        }
        if s.contains(['\r', '\n', '\0']) {
            return Err(ParseError::new(1, ParseErrorKind::InvalidCharacter));
        }
        Self::parse_value(s).map_err(|expected| {
            ParseError::new(
                1,
                ParseErrorKind::InvalidAttribute {
                    name: "candidate",
                    expected,
                },
            )
        })
    }

    /// The transport as a known protocol, matched case-insensitively
    /// (Firefox writes `UDP`, Chromium `udp`).
    pub fn protocol(&self) -> Option<CandidateProtocol> {
        if self.transport.eq_ignore_ascii_case("udp") {
            Some(CandidateProtocol::Udp)
        } else if self.transport.eq_ignore_ascii_case("tcp") {
            Some(CandidateProtocol::Tcp)
        } else {
            None
        }
    }

    /// The connection address as an IP address, `None` for an FQDN.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// Whether the address is an mDNS name (`<uuid>.local`) hiding a host address.
    pub fn is_mdns(&self) -> bool {
        let a = self.address.as_bytes();
        a.len() > 6 && a[a.len() - 6..].eq_ignore_ascii_case(b".local")
    }

    /// Writes `candidate:<value>`, the form `RTCIceCandidate.candidate` uses.
    pub fn to_attribute_string(&self) -> String {
        format!("candidate:{self}")
    }
}

impl FromStr for Candidate {
    type Err = ParseError;

    /// See [`Candidate::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Writes the attribute value (what follows `candidate:`).
impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Candidate {
    /// Writes the attribute value (what follows `candidate:`) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write_all(w, &[&self.foundation, " "])?;
        write_u64(w, self.component.into())?;
        write_all(w, &[" ", &self.transport, " "])?;
        write_u64(w, self.priority.into())?;
        write_all(w, &[" ", &self.address, " "])?;
        write_u64(w, self.port.into())?;
        write_all(w, &[" typ ", self.typ.as_str()])?;
        if let Some(a) = &self.related_address {
            write_all(w, &[" raddr ", a])?;
        }
        if let Some(p) = self.related_port {
            w.write_str(" rport ")?;
            write_u64(w, p.into())?;
        }
        if let Some(t) = self.tcp_type {
            write_all(w, &[" tcptype ", t.as_str()])?;
        }
        if let Some(g) = self.generation {
            w.write_str(" generation ")?;
            write_u64(w, g.into())?;
        }
        if let Some(u) = &self.ufrag {
            write_all(w, &[" ufrag ", u])?;
        }
        if let Some(n) = self.network_id {
            w.write_str(" network-id ")?;
            write_u64(w, n.into())?;
        }
        if let Some(n) = self.network_cost {
            w.write_str(" network-cost ")?;
            write_u64(w, n.into())?;
        }
        for (k, v) in &self.extensions {
            write_all(w, &[" ", k, " ", v])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chromium_host() {
        let s = "candidate:3373287030 1 udp 2122194687 127.0.0.1 35178 typ host generation 0 ufrag ULT3 network-id 3 network-cost 50";
        let c: Candidate = s.parse().unwrap();
        assert_eq!(c.typ, CandidateType::Host);
        assert_eq!(c.generation, Some(0));
        assert_eq!(c.ufrag.as_deref(), Some("ULT3"));
        assert_eq!(c.network_cost, Some(50));
        assert_eq!(c.to_attribute_string(), s);
    }

    #[test]
    fn srflx_with_unknown_extensions_in_order() {
        let v = "1 1 UDP 1686052607 203.0.113.7 61000 typ srflx raddr 0.0.0.0 rport 9 foo bar generation 0";
        let c = Candidate::parse(&format!("a=candidate:{v}\r\n")).unwrap();
        assert_eq!(c.related_port, Some(9));
        assert_eq!(c.protocol(), Some(CandidateProtocol::Udp));
        assert_eq!(c.generation, None);
        assert_eq!(
            c.extensions,
            vec![
                ("foo".into(), "bar".into()),
                ("generation".into(), "0".into())
            ]
        );
        assert_eq!(c.to_string(), v);
    }

    #[test]
    fn mdns_and_tcp() {
        let c = Candidate::parse(
            "candidate:2 1 tcp 1518280447 5b1d3f4e-44c3-4a39-9dbb-0e86d5a2a3a6.local 9 typ host tcptype active",
        )
        .unwrap();
        assert!(c.is_mdns());
        assert_eq!(c.ip(), None);
        assert_eq!(c.tcp_type, Some(TcpType::Active));
    }

    #[test]
    fn errors() {
        let e = Candidate::parse("candidate:1 1 udp x 1.2.3.4 5 typ host").unwrap_err();
        assert_eq!(e.line, 1);
        assert_eq!(
            e.kind,
            ParseErrorKind::InvalidAttribute {
                name: "candidate",
                expected: "priority"
            }
        );
        assert!(Candidate::parse("1 1 udp 1 1.2.3.4 5 host").is_err());
        assert!(Candidate::parse("1 1 udp 1 1.2.3.4 5 typ host generation").is_err());
        assert!(Candidate::parse(&"x".repeat(MAX_CANDIDATE_LEN + 1)).is_err());
    }

    /// Found by fuzzing: a value just under the limit must still parse once
    /// `a=candidate:` is put in front of it.
    #[test]
    fn limit_applies_to_the_value() {
        let mut v = "1 1 udp 1 ::1 9 typ host".to_owned();
        while v.len() + 4 <= MAX_CANDIDATE_LEN {
            v.push_str(" x y");
        }
        let c = Candidate::parse(&v).unwrap();
        assert_eq!(
            Candidate::parse(&format!("a={}", c.to_attribute_string())),
            Ok(c)
        );
    }
}
