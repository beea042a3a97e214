//! Media sections (RFC 8866 §5.14): an `m=` line and the lines under it.

use std::fmt;

use crate::attribute::{Attribute, Direction};
use crate::candidate::Candidate;
use crate::session::{write_attributes, write_bandwidths, write_opt, Bandwidth, Connection};
use crate::util::{parse_u16, write_u64, Fields};

/// `<media>` of an `m=` line (RFC 8866 §5.14).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaType {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `application`: data channels (RFC 8841).
    Application,
    /// `text`.
    Text,
    /// `message`.
    Message,
    /// Any other token, as written.
    Other(String),
}

impl MediaType {
    /// The token as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Application => "application",
            Self::Text => "text",
            Self::Message => "message",
            Self::Other(s) => s,
        }
    }

    /// Parses a media token; unknown ones become [`MediaType::Other`].
    pub fn from_token(s: &str) -> Self {
        match s {
            "audio" => Self::Audio,
            "video" => Self::Video,
            "application" => Self::Application,
            "text" => Self::Text,
            "message" => Self::Message,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A media section (RFC 8866 §5.14): `m=`, then `i=`, `c=`, `b=`, `k=`, `a=`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaDescription {
    /// Media type.
    pub media: MediaType,
    /// Transport port; 0 rejects the section (RFC 8829 §5.3.1 / RFC 3264 §6).
    pub port: u16,
    /// `/<number of ports>` if written.
    pub num_ports: Option<u16>,
    /// Transport protocol, e.g. `UDP/TLS/RTP/SAVPF` or `UDP/DTLS/SCTP`.
    pub protocol: String,
    /// Media formats: RTP payload types, or `webrtc-datachannel`.
    pub formats: Vec<String>,
    /// `i=` (RFC 8866 §5.4).
    pub title: Option<String>,
    /// `c=` lines (RFC 8866 §5.7).
    pub connections: Vec<Connection>,
    /// `b=` lines (RFC 8866 §5.8).
    pub bandwidths: Vec<Bandwidth>,
    /// `k=` (RFC 8866 §5.12, obsolete), verbatim.
    pub encryption_key: Option<String>,
    /// `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// A section with the given `m=` line and nothing under it.
    pub fn new(media: MediaType, port: u16, protocol: &str, formats: Vec<String>) -> Self {
        Self {
            media,
            port,
            num_ports: None,
            protocol: protocol.to_owned(),
            formats,
            title: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            encryption_key: None,
            attributes: Vec::new(),
        }
    }

    pub(crate) fn parse_m_line(s: &str) -> Result<Self, &'static str> {
        let mut f = Fields::new(s);
        let media = f.next_field().ok_or("media type")?;
        let port = f.next_field().ok_or("port")?;
        let (port, num_ports) = match port.split_once('/') {
            Some((p, n)) => (p, Some(parse_u16(n).ok_or("number of ports")?)),
            None => (port, None),
        };
        let port = parse_u16(port).ok_or("port")?;
        let protocol = f.next_field().ok_or("protocol")?;
        let mut formats = Vec::new();
        while !f.is_done() {
            formats.push(f.next_field().ok_or("format")?.to_owned());
        }
        let mut m = Self::new(MediaType::from_token(media), port, protocol, formats);
        m.num_ports = num_ports;
        Ok(m)
    }

    /// The `a=mid` value (RFC 5888 §4).
    pub fn mid(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Mid(m) => Some(m.as_str()),
            _ => None,
        })
    }

    /// The media direction; `sendrecv` when none is written (RFC 8866 §6.7).
    pub fn direction(&self) -> Direction {
        self.attributes
            .iter()
            .find_map(|a| match a {
                Attribute::Direction(d) => Some(*d),
                _ => None,
            })
            .unwrap_or(Direction::SendRecv)
    }

    /// The `a=candidate` lines of this section.
    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Candidate(c) => Some(&**c),
            _ => None,
        })
    }

    /// Attributes with the given name.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> {
        self.attributes.iter().filter(move |a| a.name() == name)
    }

    /// Writes the section with `\r\n` line endings.
    pub fn write_to<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        w.write_str("m=")?;
        w.write_str(self.media.as_str())?;
        w.write_str(" ")?;
        write_u64(w, self.port.into())?;
        if let Some(n) = self.num_ports {
            w.write_str("/")?;
            write_u64(w, n.into())?;
        }
        w.write_str(" ")?;
        w.write_str(&self.protocol)?;
        for fmt in &self.formats {
            w.write_str(" ")?;
            w.write_str(fmt)?;
        }
        w.write_str("\r\n")?;
        write_opt(w, "i=", self.title.as_deref())?;
        for c in &self.connections {
            w.write_str("c=")?;
            c.write_value(w)?;
            w.write_str("\r\n")?;
        }
        write_bandwidths(w, &self.bandwidths)?;
        write_opt(w, "k=", self.encryption_key.as_deref())?;
        write_attributes(w, &self.attributes)
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}
