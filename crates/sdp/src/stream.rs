//! Grouping and stream identification: `a=group` (RFC 5888 §5, BUNDLE in
//! RFC 8843 §7.1), `a=msid` (RFC 8830 §2) and `a=msid-semantic`.

use std::fmt;

use crate::util::{token, write_all, Fields};

/// `a=group:<semantics> <mid> ...` (RFC 5888 §5), e.g. `BUNDLE 0 1 2` (RFC 8843 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    /// Semantics: `BUNDLE`, `LS`, `FID`...
    pub semantics: String,
    /// Identification tags (`a=mid` values) of the grouped media sections.
    pub mids: Vec<String>,
}

impl Group {
    /// Whether this is a BUNDLE group (RFC 8843).
    pub fn is_bundle(&self) -> bool {
        self.semantics == "BUNDLE"
    }

    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let mut f = Fields::new(s);
        let semantics = f.next_field().ok_or("semantics")?;
        let mut mids = Vec::new();
        while !f.is_done() {
            mids.push(f.next_field().ok_or("identification tag")?.to_owned());
        }
        Ok(Self {
            semantics: semantics.to_owned(),
            mids,
        })
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Group {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        w.write_str(&self.semantics)?;
        for m in &self.mids {
            write_all(w, &[" ", m])?;
        }
        Ok(())
    }
}

/// `a=msid-semantic:<semantic> <identifier> ...`, e.g. `WMS *`.
///
/// Defined by draft-ietf-mmusic-msid (it was dropped before RFC 8830) and still
/// sent by every browser. Chromium writes a space after the colon
/// (`a=msid-semantic: WMS`); [`leading_space`](Self::leading_space) keeps it
/// so the round trip is byte exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MsidSemantic {
    /// Whether a space follows the colon.
    pub leading_space: bool,
    /// The semantic, normally `WMS` (WebRTC Media Stream).
    pub semantic: String,
    /// Stream identifiers, or `*` for all.
    pub identifiers: Vec<String>,
}

impl MsidSemantic {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let (leading_space, s) = match s.strip_prefix(' ') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let group = crate::stream::Group::parse_value(s).map_err(|_| "semantic and identifiers")?;
        Ok(Self {
            leading_space,
            semantic: group.semantics,
            identifiers: group.mids,
        })
    }
}

impl fmt::Display for MsidSemantic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl MsidSemantic {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        if self.leading_space {
            w.write_str(" ")?;
        }
        w.write_str(&self.semantic)?;
        for i in &self.identifiers {
            write_all(w, &[" ", i])?;
        }
        Ok(())
    }
}

/// `a=msid:<stream id> [<track id>]` (RFC 8830 §2): the MediaStream (and,
/// in the older form, track) a media section belongs to. `-` means no stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Msid {
    /// `msid-id`: the MediaStream id.
    pub stream_id: String,
    /// `msid-appdata`: the track id.
    pub track_id: Option<String>,
}

impl Msid {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let mut f = Fields::new(s);
        let stream_id = f.next_field().ok_or("stream id")?;
        let track_id = match f.remainder() {
            Some(t) => Some(token(t).ok_or("one track id")?.to_owned()),
            None => None,
        };
        Ok(Self {
            stream_id: stream_id.to_owned(),
            track_id,
        })
    }
}

impl fmt::Display for Msid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Msid {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        w.write_str(&self.stream_id)?;
        if let Some(t) = &self.track_id {
            write_all(w, &[" ", t])?;
        }
        Ok(())
    }
}
