//! Typed errors for parsing and writing packets.

/// Why a packet could not be parsed. `offset` is where in the datagram the
/// problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The packet ends before a field it announces.
    #[error("packet truncated at byte {offset}: expected {expected}")]
    Truncated {
        /// Where the missing field starts.
        offset: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// RFC 3550 §5.1 / §6.4.1: the version field must be 2.
    #[error("RTP/RTCP version {version} at byte {offset}, expected 2")]
    Version {
        /// Where the header starts.
        offset: usize,
        /// The version found.
        version: u8,
    },
    /// RFC 3550 §5.1: the last padding byte counts itself, so it is at least
    /// 1 and at most what follows the header.
    #[error("padding of {count} bytes does not fit at byte {offset}")]
    Padding {
        /// Where the padding count byte is.
        offset: usize,
        /// The count found.
        count: u8,
    },
    /// A field holds a value the RFC does not allow.
    #[error("malformed {what} at byte {offset}")]
    Malformed {
        /// Where the field is.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
}

/// Why a packet could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// A list is longer than its count field can say.
    #[error("{count} {what}, at most {max} fit")]
    TooMany {
        /// What the list holds.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The limit of the field.
        max: usize,
    },
    /// A value does not fit its field.
    #[error("{what} does not fit its field")]
    Invalid {
        /// Which value.
        what: &'static str,
    },
}
