//! The session level (RFC 8866 §5): `v=` to `k=`, session attributes, and the
//! media sections that follow.

use std::fmt;
use std::str::FromStr;

use crate::attribute::Attribute;
use crate::error::ParseError;
use crate::media::MediaDescription;
use crate::parse::{parse_session, Limits};
use crate::util::{parse_u64, write_all, write_u64, Fields};

/// A parsed session description (RFC 8866 §5).
///
/// Fields follow the line types in the order RFC 8866 §5 prescribes; `v=0` is
/// implied. [`Display`](fmt::Display) and [`write_to`](Self::write_to) write
/// it back with `\r\n` line endings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionDescription {
    /// `o=` (RFC 8866 §5.2).
    pub origin: Origin,
    /// `s=` (RFC 8866 §5.3); browsers write `-`.
    pub session_name: String,
    /// `i=` (RFC 8866 §5.4).
    pub session_information: Option<String>,
    /// `u=` (RFC 8866 §5.5).
    pub uri: Option<String>,
    /// `e=` lines (RFC 8866 §5.6).
    pub emails: Vec<String>,
    /// `p=` lines (RFC 8866 §5.6).
    pub phones: Vec<String>,
    /// `c=` (RFC 8866 §5.7).
    pub connection: Option<Connection>,
    /// `b=` lines (RFC 8866 §5.8).
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines, each with its `r=` lines (RFC 8866 §5.9, §5.10).
    pub timings: Vec<Timing>,
    /// `z=` (RFC 8866 §5.11), verbatim.
    pub time_zones: Option<String>,
    /// `k=` (RFC 8866 §5.12, obsolete), verbatim.
    pub encryption_key: Option<String>,
    /// Session-level `a=` lines (RFC 8866 §5.13), in order.
    pub attributes: Vec<Attribute>,
    /// `m=` sections (RFC 8866 §5.14), in order.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// A minimal description: the origin, `s=-`, `t=0 0`, nothing else.
    pub fn new(origin: Origin) -> Self {
        Self {
            origin,
            session_name: "-".to_owned(),
            session_information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: vec![Timing {
                start: 0,
                stop: 0,
                repeats: Vec::new(),
            }],
            time_zones: None,
            encryption_key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// Parses with the default [`Limits`]. Accepts `\r\n` and `\n` line endings.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse_session(s, &Limits::default())
    }

    /// Parses with the given limits.
    pub fn parse_with_limits(s: &str, limits: &Limits) -> Result<Self, ParseError> {
        parse_session(s, limits)
    }

    /// Parses bytes, which must be UTF-8 (RFC 8866 §5 default charset).
    pub fn parse_bytes(b: &[u8], limits: &Limits) -> Result<Self, ParseError> {
        crate::parse::parse_bytes(b, limits)
    }

    /// Session-level attributes with the given name.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> {
        self.attributes.iter().filter(move |a| a.name() == name)
    }

    /// The `a=group:BUNDLE` group, if any (RFC 8843 §7.1).
    pub fn bundle_group(&self) -> Option<&crate::Group> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Group(g) if g.is_bundle() => Some(g),
            _ => None,
        })
    }

    /// Writes the description with `\r\n` line endings into `w`.
    pub fn write_to<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        w.write_str("v=0\r\no=")?;
        self.origin.write_value(w)?;
        w.write_str("\r\ns=")?;
        w.write_str(&self.session_name)?;
        w.write_str("\r\n")?;
        write_opt(w, "i=", self.session_information.as_deref())?;
        write_opt(w, "u=", self.uri.as_deref())?;
        for e in &self.emails {
            write_opt(w, "e=", Some(e))?;
        }
        for p in &self.phones {
            write_opt(w, "p=", Some(p))?;
        }
        if let Some(c) = &self.connection {
            w.write_str("c=")?;
            c.write_value(w)?;
            w.write_str("\r\n")?;
        }
        write_bandwidths(w, &self.bandwidths)?;
        for t in &self.timings {
            w.write_str("t=")?;
            write_u64(w, t.start)?;
            w.write_str(" ")?;
            write_u64(w, t.stop)?;
            w.write_str("\r\n")?;
            for r in &t.repeats {
                write_opt(w, "r=", Some(r))?;
            }
        }
        write_opt(w, "z=", self.time_zones.as_deref())?;
        write_opt(w, "k=", self.encryption_key.as_deref())?;
        write_attributes(w, &self.attributes)?;
        for m in &self.media {
            m.write_to(w)?;
        }
        Ok(())
    }

    /// The description as a `String` with `\r\n` line endings.
    pub fn to_sdp_string(&self) -> String {
        let mut s = String::with_capacity(1024 + 2048 * self.media.len());
        // Writing into a String cannot fail.
        let _ = self.write_to(&mut s);
        s
    }
}

pub(crate) fn write_opt<W: fmt::Write + ?Sized>(
    w: &mut W,
    prefix: &str,
    v: Option<&str>,
) -> fmt::Result {
    if let Some(v) = v {
        w.write_str(prefix)?;
        w.write_str(v)?;
        w.write_str("\r\n")?;
    }
    Ok(())
}

pub(crate) fn write_bandwidths<W: fmt::Write + ?Sized>(
    w: &mut W,
    bandwidths: &[Bandwidth],
) -> fmt::Result {
    for b in bandwidths {
        w.write_str("b=")?;
        b.write_value(w)?;
        w.write_str("\r\n")?;
    }
    Ok(())
}

pub(crate) fn write_attributes<W: fmt::Write + ?Sized>(
    w: &mut W,
    attributes: &[Attribute],
) -> fmt::Result {
    for a in attributes {
        w.write_str("a=")?;
        a.write_to(w)?;
        w.write_str("\r\n")?;
    }
    Ok(())
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

impl FromStr for SessionDescription {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`
/// (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// User name, `-` when there is none.
    pub username: String,
    /// Session id: a numeric string (JSEP uses a 62-bit random number, RFC 8829 §5.2.1).
    pub session_id: u64,
    /// Session version, incremented on each new offer.
    pub session_version: u64,
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// The originator's address (browsers write `127.0.0.1`).
    pub unicast_address: String,
}

impl Origin {
    pub(crate) fn parse_value(s: &str) -> Option<Self> {
        let mut f = Fields::new(s);
        let o = Self {
            username: f.next_field()?.to_owned(),
            session_id: parse_u64(f.next_field()?)?,
            session_version: parse_u64(f.next_field()?)?,
            net_type: f.next_field()?.to_owned(),
            addr_type: f.next_field()?.to_owned(),
            unicast_address: f.next_field()?.to_owned(),
        };
        f.is_done().then_some(o)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Origin {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write_all(w, &[&self.username, " "])?;
        write_u64(w, self.session_id)?;
        w.write_str(" ")?;
        write_u64(w, self.session_version)?;
        write_all(
            w,
            &[
                " ",
                &self.net_type,
                " ",
                &self.addr_type,
                " ",
                &self.unicast_address,
            ],
        )
    }
}

/// `c=<nettype> <addrtype> <connection-address>` (RFC 8866 §5.7).
///
/// The address is kept as written, including any `/ttl/count` suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Connection address.
    pub address: String,
}

impl Connection {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let mut f = Fields::new(s);
        let c = Self {
            net_type: f.next_field().ok_or("network type")?.to_owned(),
            addr_type: f.next_field().ok_or("address type")?.to_owned(),
            address: f.next_field().ok_or("connection address")?.to_owned(),
        };
        if f.is_done() {
            Ok(c)
        } else {
            Err("three fields")
        }
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Connection {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write_all(
            w,
            &[&self.net_type, " ", &self.addr_type, " ", &self.address],
        )
    }
}

/// `b=<bwtype>:<bandwidth>` (RFC 8866 §5.8), e.g. `AS:30` or `TIAS:128000`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bandwidth {
    /// `CT`, `AS`, `TIAS` (RFC 3890)...
    pub bw_type: String,
    /// The value; its unit depends on the type (kbit/s for `AS`, bit/s for `TIAS`).
    pub bandwidth: u64,
}

impl Bandwidth {
    pub(crate) fn parse_value(s: &str) -> Option<Self> {
        let (t, v) = s.split_once(':')?;
        (!t.is_empty() && !t.contains(' ')).then_some(())?;
        Some(Self {
            bw_type: t.to_owned(),
            bandwidth: parse_u64(v)?,
        })
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Bandwidth {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write_all(w, &[&self.bw_type, ":"])?;
        write_u64(w, self.bandwidth)
    }
}

/// `t=<start-time> <stop-time>` with its `r=` lines (RFC 8866 §5.9, §5.10).
/// WebRTC always writes `t=0 0` (unbounded).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timing {
    /// Start time (NTP seconds), 0 for unbounded.
    pub start: u64,
    /// Stop time (NTP seconds), 0 for unbounded.
    pub stop: u64,
    /// `r=` repeat lines, verbatim.
    pub repeats: Vec<String>,
}

impl Timing {
    pub(crate) fn parse_value(s: &str) -> Option<Self> {
        let (a, b) = s.split_once(' ')?;
        Some(Self {
            start: parse_u64(a)?,
            stop: parse_u64(b)?,
            repeats: Vec::new(),
        })
    }
}
