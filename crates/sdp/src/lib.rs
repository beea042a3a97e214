//! SDP (RFC 8866) with the attributes WebRTC uses.
//!
//! Parse a description with [`SessionDescription::parse`] (or `str::parse`),
//! inspect or edit the typed model, and write it back with
//! [`SessionDescription::write_to`] or `to_string()`. The round trip is
//! lossless: attribute order is kept, unknown attributes are kept verbatim,
//! and `serialize(parse(s)) == s` up to line endings (output uses `\r\n`).
//! The one normalization is fingerprint hex, written in upper case as
//! RFC 8122 §5 requires.
//!
//! Trickled candidates parse on their own with [`Candidate::parse`].
//!
//! Parsing never panics; it checks [`Limits`] on input size, line count and
//! media sections, and reports the 1-based line and what was expected in a
//! [`ParseError`].
//!
//! ```
//! use realtimer_sdp::{Attribute, SessionDescription};
//!
//! let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
//!            a=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
//!            c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\n";
//! let desc: SessionDescription = sdp.parse()?;
//! assert_eq!(desc.bundle_group().map(|g| g.mids.len()), Some(1));
//! assert!(desc.media[0].attributes.contains(&Attribute::SctpPort(5000)));
//! assert_eq!(desc.to_string(), sdp);
//! # Ok::<(), realtimer_sdp::ParseError>(())
//! ```

mod attribute;
mod candidate;
mod dtls;
mod error;
mod media;
mod parse;
mod rtp;
mod session;
mod simulcast;
mod stream;
mod util;

pub use attribute::{Attribute, Direction, KNOWN_ATTRIBUTES};
pub use candidate::{Candidate, CandidateProtocol, CandidateType, TcpType, MAX_CANDIDATE_LEN};
pub use dtls::{Fingerprint, HashFunction, InvalidFingerprint, Setup};
pub use error::{ParseError, ParseErrorKind};
pub use media::{MediaDescription, MediaType};
pub use parse::Limits;
pub use rtp::{Extmap, Fmtp, Rtcp, RtcpFb, Rtpmap, Ssrc, SsrcGroup};
pub use session::{Bandwidth, Connection, Origin, SessionDescription, Timing};
pub use simulcast::{Rid, RidDirection, Simulcast, SimulcastList, SimulcastRid};
pub use stream::{Group, Msid, MsidSemantic};

/// Parses a session description with the default [`Limits`].
pub fn parse(s: &str) -> Result<SessionDescription, ParseError> {
    SessionDescription::parse(s)
}

/// Parses one trickled candidate (`a=candidate:...`, `candidate:...` or the bare value).
pub fn parse_candidate(s: &str) -> Result<Candidate, ParseError> {
    Candidate::parse(s)
}
