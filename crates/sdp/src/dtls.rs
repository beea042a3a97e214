//! DTLS attributes: `a=fingerprint` (RFC 8122 §5) and `a=setup` (RFC 4145 §4).

use std::fmt;
use std::str::FromStr;

use crate::util::split_first;

/// `a=fingerprint:<hash-func> <fingerprint>` (RFC 8122 §5): the hash of the
/// certificate the peer will present in the DTLS handshake.
///
/// Hex digits are accepted in either case and written in upper case, as
/// RFC 8122 §5 (`UHEX`) requires; the hash function's name is accepted in
/// either case too (some endpoints write `SHA-256`). The one fingerprint
/// type of the stack: the DTLS crate computes and checks these.
///
/// ```
/// use realtimer_sdp::{Fingerprint, HashFunction};
///
/// let f: Fingerprint = "SHA-1 0a:0B:0c:0d:0e:0f:10:11:12:13:14:15:16:17:18:19:1a:1b:1c:1d".parse()?;
/// assert_eq!(f.hash, HashFunction::Sha1);
/// assert_eq!(f.to_string(), "sha-1 0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D");
/// # Ok::<(), realtimer_sdp::InvalidFingerprint>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// The hash function.
    pub hash: HashFunction,
    /// The digest bytes (written as colon-separated hex pairs).
    pub value: Vec<u8>,
}

/// `hash-func` (RFC 8122 §5, names from the IANA "Hash Function Textual Names").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashFunction {
    /// `sha-1`.
    Sha1,
    /// `sha-224`.
    Sha224,
    /// `sha-256`, what browsers use.
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
    /// `md5` (RFC 8122 forbids it for new implementations; parsed for completeness).
    Md5,
    /// `md2` (likewise obsolete).
    Md2,
    /// Any other token, kept as written.
    Other(String),
}

impl HashFunction {
    /// The textual name as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sha1 => "sha-1",
            Self::Sha224 => "sha-224",
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
            Self::Md5 => "md5",
            Self::Md2 => "md2",
            Self::Other(s) => s,
        }
    }

    /// Parses a textual name; known names must be lower case as registered.
    pub fn from_name(s: &str) -> Self {
        match s {
            "sha-1" => Self::Sha1,
            "sha-224" => Self::Sha224,
            "sha-256" => Self::Sha256,
            "sha-384" => Self::Sha384,
            "sha-512" => Self::Sha512,
            "md5" => Self::Md5,
            "md2" => Self::Md2,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Digest length in bytes for the known functions.
    pub fn digest_len(&self) -> Option<usize> {
        match self {
            Self::Sha1 => Some(20),
            Self::Sha224 => Some(28),
            Self::Sha256 => Some(32),
            Self::Sha384 => Some(48),
            Self::Sha512 => Some(64),
            Self::Md5 | Self::Md2 => Some(16),
            Self::Other(_) => None,
        }
    }
}

impl fmt::Display for HashFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

impl Fingerprint {
    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        let (hash, rest) = split_first(s).ok_or("hash function")?;
        let hex = rest.ok_or("fingerprint after the hash function")?;
        let mut value = Vec::with_capacity(hex.len().div_ceil(3));
        for pair in hex.split(':') {
            match pair.as_bytes() {
                [h, l] => match (hex_val(*h), hex_val(*l)) {
                    (Some(h), Some(l)) => value.push(h << 4 | l),
                    _ => return Err("colon-separated hex pairs"),
                },
                _ => return Err("colon-separated hex pairs"),
            }
        }
        Ok(Self {
            hash: match HashFunction::from_name(&hash.to_ascii_lowercase()) {
                // An unknown name is kept as written.
                HashFunction::Other(_) => HashFunction::Other(hash.to_owned()),
                known => known,
            },
            value,
        })
    }

    /// The digest as colon-separated upper-case hex pairs, `AB:CD:…`
    /// (the attribute value without the hash function's name).
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(self.value.len() * 3);
        // Writing to a String cannot fail.
        let _ = self.write_hex(&mut s);
        s
    }

    fn write_hex<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for (i, b) in self.value.iter().enumerate() {
            if i > 0 {
                w.write_char(':')?;
            }
            w.write_char(char::from(HEX[usize::from(b >> 4)]))?;
            w.write_char(char::from(HEX[usize::from(b & 15)]))?;
        }
        Ok(())
    }
}

/// A fingerprint's text is not `<hash-func> AB:CD:…` (RFC 8122 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid fingerprint: expected {expected}")]
pub struct InvalidFingerprint {
    /// What the text lacked.
    pub expected: &'static str,
}

impl FromStr for Fingerprint {
    type Err = InvalidFingerprint;

    /// Parses the attribute value, `sha-256 AB:CD:…`. Whether the digest's
    /// length fits the hash function is the DTLS crate's check.
    fn from_str(s: &str) -> Result<Self, InvalidFingerprint> {
        Self::parse_value(s.trim()).map_err(|expected| InvalidFingerprint { expected })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_value(f)
    }
}

impl Fingerprint {
    /// Writes the attribute value (what follows the colon) into `w`.
    pub fn write_value<W: fmt::Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        w.write_str(self.hash.as_str())?;
        if !self.value.is_empty() {
            w.write_char(' ')?;
        }
        self.write_hex(w)
    }
}

/// `a=setup` (RFC 4145 §4, used for DTLS by RFC 8842 §5): who opens the
/// DTLS association.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setup {
    /// `active`: this endpoint is the DTLS client.
    Active,
    /// `passive`: this endpoint is the DTLS server.
    Passive,
    /// `actpass`: either; offers must use it (RFC 8842 §5.2).
    ActPass,
    /// `holdconn`: no connection yet.
    HoldConn,
}

impl Setup {
    /// The keyword as written in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Passive => "passive",
            Self::ActPass => "actpass",
            Self::HoldConn => "holdconn",
        }
    }

    pub(crate) fn parse_value(s: &str) -> Result<Self, &'static str> {
        match s {
            "active" => Ok(Self::Active),
            "passive" => Ok(Self::Passive),
            "actpass" => Ok(Self::ActPass),
            "holdconn" => Ok(Self::HoldConn),
            _ => Err("active, passive, actpass or holdconn"),
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trip() {
        let s = "sha-256 8B:57:C8:0E:02:30:19:FB:F5:16:06:DE:F4:6F:C6:9D:1E:81:0E:E5:F6:98:52:2F:9C:7D:19:C7:69:CB:4A:77";
        let f = Fingerprint::parse_value(s).unwrap();
        assert_eq!(f.hash, HashFunction::Sha256);
        assert_eq!(f.value.len(), 32);
        assert_eq!(f.to_string(), s);
        let lower = Fingerprint::parse_value("sha-1 ab:cd").unwrap();
        assert_eq!(lower.to_string(), "sha-1 AB:CD");
        assert!(Fingerprint::parse_value("sha-1 ABC").is_err());
        assert!(Fingerprint::parse_value("sha-1").is_err());
        assert!(Fingerprint::parse_value("sha-1 AB:").is_err());
    }
}
