//! `stun:`, `stuns:`, `turn:` and `turns:` URLs (RFC 7064, RFC 7065).

use std::fmt;

/// The scheme of a STUN or TURN server URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `stun:` over UDP or TCP, default port 3478.
    Stun,
    /// `stuns:` over TLS or DTLS, default port 5349.
    Stuns,
    /// `turn:`, default port 3478.
    Turn,
    /// `turns:` over TLS, default port 5349.
    Turns,
}

impl Scheme {
    /// RFC 7064 §3.2, RFC 7065 §3.2: 3478, or 5349 for the secure schemes.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Stun | Scheme::Turn => 3478,
            Scheme::Stuns | Scheme::Turns => 5349,
        }
    }

    /// True for `stuns:` and `turns:`.
    pub fn is_secure(self) -> bool {
        matches!(self, Scheme::Stuns | Scheme::Turns)
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Stun => "stun",
            Scheme::Stuns => "stuns",
            Scheme::Turn => "turn",
            Scheme::Turns => "turns",
        }
    }
}

/// The transport named by `?transport=` (RFC 7065 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrlTransport {
    /// `transport=udp`.
    Udp,
    /// `transport=tcp`.
    Tcp,
}

/// A parsed server URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerUrl {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or address literal, without IPv6 brackets.
    pub host: String,
    /// The port, or the scheme's default.
    pub port: u16,
    /// The `?transport=` parameter of `turn:`/`turns:` URLs.
    pub transport: Option<UrlTransport>,
}

/// Why a server URL does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `stun:`, `stuns:`, `turn:` or `turns:`.
    #[error("unknown scheme {0:?}: expected stun:, stuns:, turn: or turns:")]
    UnknownScheme(String),
    /// Nothing where the host should be.
    #[error("missing host")]
    MissingHost,
    /// An IPv6 literal without its closing bracket.
    #[error("unclosed '[' in host")]
    UnclosedBracket,
    /// The port is not a number from 1 to 65535.
    #[error("bad port {0:?}: expected 1 to 65535")]
    BadPort(String),
    /// A query other than `transport=udp|tcp`, or one on a STUN URL.
    #[error("bad query {0:?}: only turn: and turns: take ?transport=udp or ?transport=tcp")]
    BadQuery(String),
    /// A path or user info, which these URLs do not have (RFC 7064 §3.1).
    #[error("unexpected {0:?} in URL: STUN and TURN URLs are scheme:host[:port]")]
    Unexpected(char),
}

impl ServerUrl {
    /// Parses `scheme:host[:port][?transport=udp|tcp]`; without a scheme,
    /// `host[:port]` is read as a `stun:` URL.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let text = text.trim();
        let (scheme, rest) = match text.split_once(':') {
            Some((s, rest)) if s.chars().all(|c| c.is_ascii_alphabetic()) && !s.is_empty() => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "stun" => Scheme::Stun,
                    "stuns" => Scheme::Stuns,
                    "turn" => Scheme::Turn,
                    "turns" => Scheme::Turns,
                    // `host:port` where the host is a name: no scheme.
                    _ if rest.chars().all(|c| c.is_ascii_digit()) => {
                        return Self::parse_authority(Scheme::Stun, text)
                    }
                    _ => return Err(UrlError::UnknownScheme(s.to_owned())),
                };
                (scheme, rest)
            }
            _ => (Scheme::Stun, text),
        };
        Self::parse_authority(scheme, rest)
    }

    fn parse_authority(scheme: Scheme, rest: &str) -> Result<Self, UrlError> {
        // Browsers accept and ignore a leading "//".
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        if let Some(c) = authority.chars().find(|c| matches!(c, '/' | '@' | '#')) {
            return Err(UrlError::Unexpected(c));
        }
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or(UrlError::UnclosedBracket)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(UrlError::BadPort(p.to_owned()))?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(UrlError::BadPort(p.to_owned())),
            },
        };
        let transport = match (scheme, query) {
            (_, None) => None,
            (Scheme::Turn | Scheme::Turns, Some(q)) => match q.to_ascii_lowercase().as_str() {
                "transport=udp" => Some(UrlTransport::Udp),
                "transport=tcp" => Some(UrlTransport::Tcp),
                _ => return Err(UrlError::BadQuery(q.to_owned())),
            },
            (_, Some(q)) => return Err(UrlError::BadQuery(q.to_owned())),
        };
        Ok(ServerUrl {
            scheme,
            host: host.to_owned(),
            port,
            transport,
        })
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        write!(f, ":{}", self.port)?;
        match self.transport {
            Some(UrlTransport::Udp) => f.write_str("?transport=udp"),
            Some(UrlTransport::Tcp) => f.write_str("?transport=tcp"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(scheme: Scheme, host: &str, port: u16, transport: Option<UrlTransport>) -> ServerUrl {
        ServerUrl {
            scheme,
            host: host.to_owned(),
            port,
            transport,
        }
    }

    #[test]
    fn parses_the_forms_browsers_accept() {
        let cases = [
            (
                "stun:stun.example.org",
                url(Scheme::Stun, "stun.example.org", 3478, None),
            ),
            (
                "stun:192.0.2.1:19302",
                url(Scheme::Stun, "192.0.2.1", 19302, None),
            ),
            (
                "STUN:[2001:db8::1]",
                url(Scheme::Stun, "2001:db8::1", 3478, None),
            ),
            ("stuns:[::1]:443", url(Scheme::Stuns, "::1", 443, None)),
            (
                "turn:t.example:3479?transport=tcp",
                url(Scheme::Turn, "t.example", 3479, Some(UrlTransport::Tcp)),
            ),
            (
                "turns:t.example",
                url(Scheme::Turns, "t.example", 5349, None),
            ),
            ("127.0.0.1", url(Scheme::Stun, "127.0.0.1", 3478, None)),
            ("127.0.0.1:3000", url(Scheme::Stun, "127.0.0.1", 3000, None)),
            ("localhost:3000", url(Scheme::Stun, "localhost", 3000, None)),
            ("[::1]:3000", url(Scheme::Stun, "::1", 3000, None)),
        ];
        for (text, expected) in cases {
            assert_eq!(ServerUrl::parse(text).as_ref(), Ok(&expected), "{text}");
            assert_eq!(ServerUrl::parse(&expected.to_string()), Ok(expected));
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(
            ServerUrl::parse("http://x"),
            Err(UrlError::UnknownScheme("http".into()))
        );
        assert_eq!(ServerUrl::parse("stun:"), Err(UrlError::MissingHost));
        assert_eq!(
            ServerUrl::parse("stun:[::1"),
            Err(UrlError::UnclosedBracket)
        );
        assert_eq!(
            ServerUrl::parse("stun:h:0"),
            Err(UrlError::BadPort("0".into()))
        );
        assert_eq!(
            ServerUrl::parse("stun:h:99999"),
            Err(UrlError::BadPort("99999".into()))
        );
        assert_eq!(
            ServerUrl::parse("stun:h?transport=udp"),
            Err(UrlError::BadQuery("transport=udp".into()))
        );
        assert_eq!(
            ServerUrl::parse("turn:h?transport=sctp"),
            Err(UrlError::BadQuery("transport=sctp".into()))
        );
        assert_eq!(
            ServerUrl::parse("stun:user@h"),
            Err(UrlError::Unexpected('@'))
        );
    }
}
