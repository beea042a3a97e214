//! Small strict lexical helpers shared by the parsers.
//!
//! Numbers are accepted only in their canonical decimal form (no sign, no
//! leading zeros) and fields are separated by exactly one space, so that every
//! value we accept serializes back to the same bytes.

use std::fmt;

/// Writes `n` in decimal without going through `fmt::Arguments`.
pub(crate) fn write_u64<W: fmt::Write + ?Sized>(w: &mut W, mut n: u64) -> fmt::Result {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        i -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    match buf.get(i..).map(std::str::from_utf8) {
        Some(Ok(digits)) => w.write_str(digits),
        _ => Err(fmt::Error),
    }
}

/// Writes each piece in turn.
pub(crate) fn write_all<W: fmt::Write + ?Sized>(w: &mut W, pieces: &[&str]) -> fmt::Result {
    for p in pieces {
        w.write_str(p)?;
    }
    Ok(())
}

/// Canonical unsigned decimal: `0` or a non-zero digit followed by digits.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    match b {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        _ => {
            let mut v: u64 = 0;
            for &c in b {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            }
            Some(v)
        }
    }
}

pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

pub(crate) fn parse_u16(s: &str) -> Option<u16> {
    parse_u64(s).and_then(|v| u16::try_from(v).ok())
}

pub(crate) fn parse_u8(s: &str) -> Option<u8> {
    parse_u64(s).and_then(|v| u8::try_from(v).ok())
}

/// A non-empty run of characters without spaces.
pub(crate) fn token(s: &str) -> Option<&str> {
    (!s.is_empty() && !s.contains(' ')).then_some(s)
}

/// Splits at the first space: `("a", Some("b c"))`. An empty head is rejected.
pub(crate) fn split_first(s: &str) -> Option<(&str, Option<&str>)> {
    match s.split_once(' ') {
        Some((head, rest)) if !head.is_empty() => Some((head, Some(rest))),
        Some(_) => None,
        None if s.is_empty() => None,
        None => Some((s, None)),
    }
}

/// Iterator over space-separated fields that rejects empty fields
/// (double, leading or trailing spaces).
pub(crate) struct Fields<'a> {
    rest: Option<&'a str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Self { rest: Some(s) }
    }

    /// Next field, `None` when exhausted or when the field is empty.
    pub(crate) fn next_field(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let (head, rest) = match s.split_once(' ') {
            Some((h, r)) => (h, Some(r)),
            None => (s, None),
        };
        self.rest = rest;
        (!head.is_empty()).then_some(head)
    }

    /// Everything not yet consumed (may contain spaces), if anything is left.
    pub(crate) fn remainder(&mut self) -> Option<&'a str> {
        self.rest.take()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.rest.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_numbers() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("10"), Some(10));
        assert_eq!(parse_u64("010"), None);
        assert_eq!(parse_u64("+1"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert_eq!(parse_u16("65536"), None);
        assert_eq!(parse_u8("255"), Some(255));
    }

    #[test]
    fn decimal_writer() {
        for n in [0, 7, 10, 65535, u64::MAX] {
            let mut s = String::new();
            write_u64(&mut s, n).unwrap();
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn fields_reject_empty() {
        let mut f = Fields::new("a  b");
        assert_eq!(f.next_field(), Some("a"));
        assert_eq!(f.next_field(), None);
        let mut f = Fields::new("a b c");
        assert_eq!(f.next_field(), Some("a"));
        assert_eq!(f.remainder(), Some("b c"));
        assert!(f.is_done());
        assert_eq!(split_first(" a"), None);
        assert_eq!(split_first("a"), Some(("a", None)));
    }
}
