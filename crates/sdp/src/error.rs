//! Parse errors: which line, and what was expected there.

use thiserror::Error;

/// A session description (or a lone candidate line) could not be parsed.
///
/// `line` is 1-based. Limit errors found before any line is read
/// (input too large) report line 0.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("SDP line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number of the offending line (0 when it is not tied to a line).
    pub line: usize,
    /// What went wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(line: usize, kind: ParseErrorKind) -> Self {
        Self { line, kind }
    }
}

/// What went wrong while parsing, grouped by cause.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input is larger than [`Limits::max_bytes`](crate::Limits::max_bytes).
    #[error("input is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The input has more lines than [`Limits::max_lines`](crate::Limits::max_lines).
    #[error("more than {limit} lines")]
    TooManyLines {
        /// The configured limit.
        limit: usize,
    },
    /// More `m=` sections than [`Limits::max_media`](crate::Limits::max_media).
    #[error("more than {limit} media sections")]
    TooManyMediaSections {
        /// The configured limit.
        limit: usize,
    },
    /// The input is empty (RFC 8866 §5: a description starts with `v=`).
    #[error("empty session description")]
    Empty,
    /// The input is not UTF-8 text.
    #[error("not valid UTF-8")]
    InvalidUtf8,
    /// A line is not `<type>=<value>` with a one-letter type (RFC 8866 §5).
    #[error("expected `<letter>=<value>`")]
    MalformedLine,
    /// A NUL or a bare CR inside a line (RFC 8866 §9: `text` excludes them).
    #[error("control character NUL or CR inside a line")]
    InvalidCharacter,
    /// A line type this parser does not know; RFC 8866 §5 says to reject them.
    #[error("unknown line type `{0}=`")]
    UnknownLineType(char),
    /// A line out of the order RFC 8866 §5 prescribes, or repeated where it may not be.
    #[error("unexpected `{found}=` line, expected {expected}")]
    UnexpectedLine {
        /// The type letter found.
        found: char,
        /// What the grammar allows here.
        expected: &'static str,
    },
    /// The description ended before a required line.
    #[error("missing {expected}")]
    Missing {
        /// The line that is required.
        expected: &'static str,
    },
    /// A session-level or media-level field does not follow its grammar.
    #[error("invalid `{field}=` line: expected {expected}")]
    InvalidField {
        /// The type letter of the line (`o`, `c`, `m`...).
        field: char,
        /// What the grammar wants.
        expected: &'static str,
    },
    /// A known attribute whose value does not follow its grammar.
    #[error("invalid `a={name}` attribute: expected {expected}")]
    InvalidAttribute {
        /// Attribute name.
        name: &'static str,
        /// What the grammar wants.
        expected: &'static str,
    },
}
