//! RTP stream identifiers and simulcast: `a=rid` (RFC 8851 §10) and
//! `a=simulcast` (RFC 8853 §5.1).

use std::fmt;

use crate::util::{split_first, token, write_all};

/// Direction of a `rid` or a simulcast stream list (RFC 8851 §10, RFC 8853 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RidDirection {
    /// `send`.
    Send,
    /// `recv`.
    Recv,
}

impl RidDirection {
    /// The keyword as written in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Recv => "recv",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "send" => Some(Self::Send),
            "recv" => Some(Self::Recv),
            _ => None,
        }
    }
}

impl fmt::Display for RidDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rid:<rid-id> <send|recv> [<pt=...;restrictions>]` (RFC 8851 §10).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rid {
    /// The RTP stream identifier.
    pub id: String,
    /// Direction.
    pub direction: RidDirection,
    /// Payload types and restrictions (`pt=96;max-width=1280`), verbatim.
    pub params: Option<String>,
}

impl Rid {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let (id, rest) = split_first(s).ok_or("rid id")?;
        let (dir, params) = split_first(rest.ok_or("send or recv")?).ok_or("send or recv")?;
        Ok(Self {
            id: id.to_owned(),
            direction: RidDirection::parse(dir).ok_or("send or recv")?,
            params: params.map(str::to_owned),
        })
    }
}

impl fmt::Display for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Rid {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        write_all(w, &[&self.id, " ", self.direction.as_str()])?;
        if let Some(p) = &self.params {
            write_all(w, &[" ", p])?;
        }
        Ok(())
    }
}

/// One `sc-id` in a simulcast list: a rid, maybe paused with `~` (RFC 8853 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SimulcastRid {
    /// The rid, as in an `a=rid` line.
    pub id: String,
    /// Whether it is written with the `~` (paused) prefix.
    pub paused: bool,
}

/// `sc-send` or `sc-recv`: a direction and its streams (RFC 8853 §5.1).
///
/// Streams are separated by `;`; each stream lists alternative rids separated by `,`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SimulcastList {
    /// `send` or `recv`.
    pub direction: RidDirection,
    /// Simulcast streams; each holds one or more alternative rids.
    pub streams: Vec<Vec<SimulcastRid>>,
}

/// `a=simulcast:<send|recv> <list> [<recv|send> <list>]` (RFC 8853 §5.1),
/// e.g. `send q;h;f`. Lists are kept in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Simulcast {
    /// One or two lists.
    pub lists: Vec<SimulcastList>,
}

impl Simulcast {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let mut fields = s.split(' ');
        let mut lists = Vec::with_capacity(2);
        while let Some(dir) = fields.next() {
            if lists.len() == 2 {
                return Err("at most a send and a recv list");
            }
            let direction = RidDirection::parse(dir).ok_or("send or recv")?;
            if lists
                .iter()
                .any(|l: &SimulcastList| l.direction == direction)
            {
                return Err("one list per direction");
            }
            let list = fields
                .next()
                .and_then(token)
                .ok_or("simulcast stream list")?;
            let mut streams = Vec::new();
            for alt in list.split(';') {
                let mut rids = Vec::new();
                for id in alt.split(',') {
                    let (paused, id) = match id.strip_prefix('~') {
                        Some(rest) => (true, rest),
                        None => (false, id),
                    };
                    if id.is_empty() || id.starts_with('~') {
                        return Err("rid id");
                    }
                    rids.push(SimulcastRid {
                        id: id.to_owned(),
                        paused,
                    });
                }
                streams.push(rids);
            }
            lists.push(SimulcastList { direction, streams });
        }
        if lists.is_empty() {
            return Err("send or recv");
        }
        Ok(Self { lists })
    }
}

impl fmt::Display for Simulcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Simulcast {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        for (i, list) in self.lists.iter().enumerate() {
            if i > 0 {
                w.write_str(" ")?;
            }
            write_all(w, &[list.direction.as_str(), " "])?;
            for (j, stream) in list.streams.iter().enumerate() {
                if j > 0 {
                    w.write_str(";")?;
                }
                for (k, rid) in stream.iter().enumerate() {
                    if k > 0 {
                        w.write_str(",")?;
                    }
                    if rid.paused {
                        w.write_str("~")?;
                    }
                    w.write_str(&rid.id)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulcast_forms() {
        for s in ["send q;h;f", "recv 1,~2;3 send a", "send ~x"] {
            assert_eq!(Simulcast::parse_value(s).unwrap().to_string(), s);
        }
        for s in [
            "",
            "send",
            "send a;;b",
            "send a recv b send c",
            "send a send b",
            "up a",
            "send a,",
        ] {
            assert!(Simulcast::parse_value(s).is_err(), "{s}");
        }
        let r = Rid::parse_value("1 send pt=96;max-width=1280").unwrap();
        assert_eq!(r.params.as_deref(), Some("pt=96;max-width=1280"));
        assert_eq!(r.to_string(), "1 send pt=96;max-width=1280");
    }
}
