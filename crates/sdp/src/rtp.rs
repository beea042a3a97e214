//! RTP attributes: `rtpmap`, `fmtp` (RFC 8866 §6.6, §6.15), `rtcp` (RFC 3605),
//! `rtcp-fb` (RFC 4585 §4.2), `extmap` (RFC 8285 §5), `ssrc` and `ssrc-group`
//! (RFC 5576 §4).

use std::fmt;

use crate::attribute::Direction;
use crate::session::Connection;
use crate::util::{
    parse_u16, parse_u32, parse_u8, split_first, token, write_all, write_u64, Fields,
};

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`
/// (RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rtpmap {
    /// RTP payload type (0-127).
    pub payload_type: u8,
    /// Encoding name, e.g. `opus`, `VP8`.
    pub encoding_name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters: the channel count for audio.
    pub encoding_params: Option<u32>,
}

impl Rtpmap {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let (pt, rest) = split_first(s).ok_or("payload type")?;
        let payload_type = parse_u8(pt).ok_or("payload type")?;
        let rest = token(rest.ok_or("encoding name")?).ok_or("encoding/clock rate")?;
        let mut parts = rest.split('/');
        let encoding_name = parts
            .next()
            .filter(|n| !n.is_empty())
            .ok_or("encoding name")?;
        let clock_rate = parts.next().and_then(parse_u32).ok_or("clock rate")?;
        let encoding_params = match parts.next() {
            Some(p) => Some(parse_u32(p).ok_or("encoding parameters")?),
            None => None,
        };
        if parts.next().is_some() {
            return Err("at most three `/`-separated parts");
        }
        Ok(Self {
            payload_type,
            encoding_name: encoding_name.to_owned(),
            clock_rate,
            encoding_params,
        })
    }
}

impl fmt::Display for Rtpmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Rtpmap {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write_u64(w, self.payload_type.into())?;
        write_all(w, &[" ", &self.encoding_name, "/"])?;
        write_u64(w, self.clock_rate.into())?;
        if let Some(p) = self.encoding_params {
            w.write_str("/")?;
            write_u64(w, p.into())?;
        }
        Ok(())
    }
}

/// `a=fmtp:<format> <format specific parameters>` (RFC 8866 §6.15).
///
/// The parameters are kept as written; [`Fmtp::parameters`] splits the
/// common `key=value;key=value` form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fmtp {
    /// The format (an RTP payload type for RTP media).
    pub format: String,
    /// The parameters, verbatim.
    pub params: String,
}

impl Fmtp {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let (format, params) = split_first(s).ok_or("format")?;
        Ok(Self {
            format: format.to_owned(),
            params: params.ok_or("format parameters")?.to_owned(),
        })
    }

    /// The format as an RTP payload type, if it is one.
    pub fn payload_type(&self) -> Option<u8> {
        parse_u8(&self.format)
    }

    /// Iterates `key=value` pairs separated by `;` (a key without `=` has an empty value).
    pub fn parameters(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
    }

    /// The value of one parameter, by exact key.
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl fmt::Display for Fmtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Fmtp {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write_all(w, &[&self.format, " ", &self.params])
    }
}

/// `a=rtcp:<port> [<nettype> <addrtype> <connection-address>]` (RFC 3605 §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rtcp {
    /// RTCP port.
    pub port: u16,
    /// Optional RTCP address.
    pub connection: Option<Connection>,
}

impl Rtcp {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let (port, rest) = split_first(s).ok_or("port")?;
        Ok(Self {
            port: parse_u16(port).ok_or("port")?,
            connection: match rest {
                Some(r) => Some(Connection::parse_value(r)?),
                None => None,
            },
        })
    }
}

impl fmt::Display for Rtcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Rtcp {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write_u64(w, self.port.into())?;
        if let Some(c) = &self.connection {
            w.write_str(" ")?;
            c.write_value(w)?;
        }
        Ok(())
    }
}

/// `a=rtcp-fb:<payload type or *> <feedback> [<parameter>]` (RFC 4585 §4.2),
/// e.g. `96 nack pli`, `96 ccm fir`, `111 transport-cc`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtcpFb {
    /// The payload type, `None` for `*` (all formats).
    pub payload_type: Option<u8>,
    /// Feedback type: `ack`, `nack`, `ccm`, `trr-int`, `goog-remb`, `transport-cc`...
    pub feedback: String,
    /// Parameter after the feedback type (`pli`, `fir`...), verbatim.
    pub parameter: Option<String>,
}

impl RtcpFb {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let (pt, rest) = split_first(s).ok_or("payload type or *")?;
        let payload_type = match pt {
            "*" => None,
            _ => Some(parse_u8(pt).ok_or("payload type or *")?),
        };
        let (feedback, parameter) =
            split_first(rest.ok_or("feedback type")?).ok_or("feedback type")?;
        Ok(Self {
            payload_type,
            feedback: feedback.to_owned(),
            parameter: parameter.map(str::to_owned),
        })
    }
}

impl fmt::Display for RtcpFb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl RtcpFb {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        match self.payload_type {
            Some(pt) => write_u64(w, pt.into())?,
            None => w.write_str("*")?,
        }
        write_all(w, &[" ", &self.feedback])?;
        if let Some(p) = &self.parameter {
            write_all(w, &[" ", p])?;
        }
        Ok(())
    }
}

/// `a=extmap:<id>[/<direction>] <URI> [<extension attributes>]` (RFC 8285 §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Extmap {
    /// Local identifier: 1-14 for one-byte headers, up to 255 for two-byte.
    pub id: u16,
    /// Optional direction.
    pub direction: Option<Direction>,
    /// The extension URI.
    pub uri: String,
    /// Extension attributes, verbatim.
    pub attributes: Option<String>,
}

impl Extmap {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let mut f = Fields::new(s);
        let head = f.next_field().ok_or("id")?;
        let (id, direction) = match head.split_once('/') {
            Some((id, dir)) => (
                id,
                Some(Direction::from_keyword(dir).ok_or("direction after `/`")?),
            ),
            None => (head, None),
        };
        let id = parse_u16(id).ok_or("id")?;
        let uri = f.next_field().ok_or("URI")?;
        Ok(Self {
            id,
            direction,
            uri: uri.to_owned(),
            attributes: f.remainder().map(str::to_owned),
        })
    }
}

impl fmt::Display for Extmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Extmap {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write_u64(w, self.id.into())?;
        if let Some(d) = self.direction {
            write_all(w, &["/", d.as_str()])?;
        }
        write_all(w, &[" ", &self.uri])?;
        if let Some(a) = &self.attributes {
            write_all(w, &[" ", a])?;
        }
        Ok(())
    }
}

/// `a=ssrc:<ssrc-id> <attribute>[:<value>]` (RFC 5576 §4.1), e.g.
/// `3007316624 cname:rHv5L8Kguj2ZuMnz`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ssrc {
    /// The synchronization source.
    pub ssrc: u32,
    /// Source attribute name (`cname`, `msid`...).
    pub attribute: String,
    /// Source attribute value, verbatim.
    pub value: Option<String>,
}

impl Ssrc {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let (id, rest) = split_first(s).ok_or("ssrc id")?;
        let ssrc = parse_u32(id).ok_or("ssrc id")?;
        let rest = rest.ok_or("source attribute")?;
        let (attribute, value) = match rest.split_once(':') {
            Some((a, v)) => (a, Some(v)),
            None => (rest, None),
        };
        let attribute = token(attribute).ok_or("source attribute name")?;
        Ok(Self {
            ssrc,
            attribute: attribute.to_owned(),
            value: value.map(str::to_owned),
        })
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Ssrc {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write_u64(w, self.ssrc.into())?;
        write_all(w, &[" ", &self.attribute])?;
        if let Some(v) = &self.value {
            write_all(w, &[":", v])?;
        }
        Ok(())
    }
}

/// `a=ssrc-group:<semantics> <ssrc-id> ...` (RFC 5576 §4.2), e.g. `FID 1 2`
/// pairing a media SSRC with its RTX SSRC.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SsrcGroup {
    /// Semantics: `FID`, `FEC`, `SIM`...
    pub semantics: String,
    /// The SSRCs in the group.
    pub ssrcs: Vec<u32>,
}

impl SsrcGroup {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let mut f = Fields::new(s);
        let semantics = f.next_field().ok_or("semantics")?;
        let mut ssrcs = Vec::new();
        while !f.is_done() {
            ssrcs.push(f.next_field().and_then(parse_u32).ok_or("ssrc id")?);
        }
        Ok(Self {
            semantics: semantics.to_owned(),
            ssrcs,
        })
    }
}

impl fmt::Display for SsrcGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl SsrcGroup {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        w.write_str(&self.semantics)?;
        for s in &self.ssrcs {
            w.write_str(" ")?;
            write_u64(w, (*s).into())?;
        }
        Ok(())
    }
}
