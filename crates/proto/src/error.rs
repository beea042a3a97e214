//! Errors, named after the DOMExceptions a browser throws for the same call.
//!
//! The top level ([`RtcError`]) is the browser's kind, what a caller
//! matches on; each kind holds an enum saying exactly what, with the
//! context as fields (as rustls's `Error::InvalidMessage(..)` or
//! `PeerMisbehaved(..)` do).

use std::io;
use std::net::SocketAddr;

use realtimer_datachannel::ChannelError;
use realtimer_dtls::DtlsError;
use realtimer_ice::IceError;
use realtimer_rtp::WriteError;
use realtimer_sdp::Setup;
use realtimer_srtp::SrtpError;

use crate::channel::{ChannelRef, DataChannelState};
use crate::jsep::{SdpType, SignalingState};
use crate::track::MediaRef;

/// Why a call was refused (W3C webrtc-pc names the same failures).
///
/// Not `PartialEq`: an SRTP failure may carry OpenSSL's error stack. Match
/// on the kind and its inner enum instead.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RtcError {
    /// InvalidStateError: the call is not allowed in the current state
    /// (signaling state, channel state, closed connection).
    #[error("invalid state: {0}")]
    InvalidState(#[from] StateError),
    /// The description is not valid SDP, or lacks what WebRTC needs
    /// (W3C webrtc-pc §4.4.1.5: an RTCError with `sdp-syntax-error`).
    #[error("invalid SDP: {0}")]
    InvalidSdp(#[from] SdpError),
    /// InvalidModificationError: the SDP given to `set_local_description`
    /// is not the one `create_offer`/`create_answer` produced (RFC 8829
    /// §5.4 lets an application change little).
    #[error("invalid modification: {0}")]
    InvalidModification(#[from] ModificationError),
    /// OperationError: the operation failed (an ICE candidate that cannot be
    /// added, a certificate or a socket that cannot be made...).
    #[error("operation failed: {0}")]
    OperationError(#[from] OperationError),
    /// TypeError: an argument is not acceptable (both maxPacketLifeTime and
    /// maxRetransmits, a label too long...).
    #[error("type error: {0}")]
    TypeError(#[from] ArgumentError),
    /// SyntaxError: an ICE server URL does not parse, or an ICE server has
    /// no URL (W3C webrtc-pc §4.4.1.6, "validate the ICE servers").
    #[error("syntax error: {0}")]
    SyntaxError(#[from] IceServerUrlError),
    /// InvalidAccessError: a `turn:` or `turns:` server without a username
    /// or credential (W3C webrtc-pc §4.4.1.6), a track added twice.
    #[error("invalid access: {0}")]
    InvalidAccess(#[from] AccessError),
    /// A send queue is full: poll the transmits, then try again.
    #[error("the send queue is full")]
    QueueFull,
    /// The data channel layer refused a send or a channel.
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

impl From<realtimer_sdp::ParseError> for RtcError {
    fn from(e: realtimer_sdp::ParseError) -> Self {
        RtcError::InvalidSdp(SdpError::Parse(e))
    }
}

/// A JSEP call, as W3C webrtc-pc names it (for [`StateError::Signaling`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsepCall {
    /// `createOffer`.
    CreateOffer,
    /// `createAnswer`.
    CreateAnswer,
    /// `setLocalDescription` with a description of this type.
    SetLocalDescription(SdpType),
    /// `setRemoteDescription` with a description of this type.
    SetRemoteDescription(SdpType),
}

impl std::fmt::Display for JsepCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsepCall::CreateOffer => f.write_str("createOffer"),
            JsepCall::CreateAnswer => f.write_str("createAnswer"),
            JsepCall::SetLocalDescription(t) => write!(f, "setLocalDescription({t})"),
            JsepCall::SetRemoteDescription(t) => write!(f, "setRemoteDescription({t})"),
        }
    }
}

/// What state refused the call ([`RtcError::InvalidState`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The connection is closed (or its driver is gone).
    #[error("the connection is closed")]
    Closed,
    /// RFC 8829 §3.2: the call is not allowed in this signaling state.
    #[error("{call} in signaling state {state}")]
    Signaling {
        /// The call refused.
        call: JsepCall,
        /// The signaling state it was made in.
        state: SignalingState,
    },
    /// `createAnswer` without a remote offer.
    #[error("no remote offer to answer")]
    NoRemoteOffer,
    /// `addIceCandidate` before `setRemoteDescription` (W3C webrtc-pc
    /// §4.4.1.6).
    #[error("addIceCandidate before setRemoteDescription")]
    NoRemoteDescription,
    /// The channel is not open (`Closed` also for a channel that is gone).
    #[error("{channel} is {state}")]
    Channel {
        /// The channel.
        channel: ChannelRef,
        /// Its state.
        state: DataChannelState,
    },
    /// The channel is open but has no SCTP stream yet.
    #[error("{channel} has no stream yet")]
    NoStream {
        /// The channel.
        channel: ChannelRef,
    },
    /// No SCTP association yet (DTLS is not connected).
    #[error("the SCTP association is not up yet")]
    NoAssociation,
    /// No such transceiver.
    #[error("no {media}")]
    UnknownMedia {
        /// The transceiver asked for.
        media: MediaRef,
    },
    /// The transceiver has no track of ours to send.
    #[error("{media} has no track")]
    NoTrack {
        /// The transceiver.
        media: MediaRef,
    },
    /// The negotiated direction does not let the transceiver send.
    #[error("{media} is not negotiated to send")]
    NotSending {
        /// The transceiver.
        media: MediaRef,
    },
    /// Feedback needs the peer's SSRC, and none is known yet.
    #[error("nothing received on {media} yet")]
    NothingReceived {
        /// The transceiver.
        media: MediaRef,
    },
    /// DTLS has not exported the SRTP keys yet (RFC 5764 §4.2).
    #[error("DTLS has not made the SRTP keys yet")]
    NoSrtpKeys,
    /// The peer did not accept this simulcast layer (its answer has no
    /// `a=simulcast:recv` with the rid, or pauses it; RFC 8853 §5.3).
    #[error("the peer does not receive layer {rid:?} of {media}")]
    LayerNotReceived {
        /// The layer's rid.
        rid: String,
        /// The transceiver.
        media: MediaRef,
    },
    /// The track was never added to a connection.
    #[error("the track was not added to a connection")]
    TrackNotAdded,
    /// Samples need a payload format to split them into packets (RFC
    /// 7587, 7741, 9628, 6184), and the codec negotiated for the
    /// transceiver has none here; its RTP packets can still be written.
    #[error("{media} negotiated {codec}, which samples cannot be packetized for")]
    UnsupportedCodec {
        /// The transceiver.
        media: MediaRef,
        /// The negotiated codec's encoding name.
        codec: String,
    },
}

/// What is wrong with a remote description ([`RtcError::InvalidSdp`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The text is not SDP (RFC 8866).
    #[error(transparent)]
    Parse(#[from] realtimer_sdp::ParseError),
    /// More `m=` sections than we take.
    #[error("line {line}: more than {max} m= sections")]
    TooManySections {
        /// The first `m=` line past the limit.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// RFC 5888 §4, RFC 8829 §5.8: every section's `a=mid` is unique.
    #[error("line {line}: a=mid {mid:?} repeats an earlier section's")]
    DuplicateMid {
        /// The section's `m=` line.
        line: usize,
        /// The repeated mid.
        mid: String,
    },
    /// Neither a data (`UDP/DTLS/SCTP webrtc-datachannel`) nor an RTP
    /// (`UDP/TLS/RTP/SAVPF`) section.
    #[error("no data or RTP section")]
    NoUsableSection,
    /// The bundled section lacks an attribute WebRTC needs (RFC 8829
    /// §5.8: a=mid, a=ice-ufrag, a=ice-pwd, a=fingerprint).
    #[error("line {line}: the bundled section has no {attribute}")]
    MissingAttribute {
        /// The section's `m=` line.
        line: usize,
        /// The attribute, as `a=name`.
        attribute: &'static str,
    },
    /// RFC 8122 §5: the fingerprint's hash or digest is unusable.
    #[error("line {line}: unusable a=fingerprint: {error}")]
    Fingerprint {
        /// The section's `m=` line.
        line: usize,
        /// Why.
        error: DtlsError,
    },
    /// RFC 8842 §5.3: an answer's `a=setup` is `active` or `passive`.
    #[error("an answer's a=setup must be active or passive, not {setup}")]
    AnswerSetup {
        /// What the answer said.
        setup: Setup,
    },
    /// RFC 8842 §5.5: the DTLS role stays for the life of the association.
    #[error("the answer changes the DTLS role")]
    AnswerChangesDtlsRole,
    /// RFC 8829 §5.3.1: the answer has as many m= sections as the offer.
    #[error("the answer has {answer} m= sections, our offer {offer}")]
    AnswerSectionCount {
        /// Sections in the answer.
        answer: usize,
        /// Sections in our offer.
        offer: usize,
    },
    /// RFC 8829 §5.3.1: an answer's section matches the offer's in type
    /// and mid.
    #[error("the answer's m= section {index} differs from our offer's in type or mid")]
    AnswerSectionMismatch {
        /// The section's index.
        index: usize,
    },
}

impl SdpError {
    /// The 1-based line the problem is on; 0 when it is not tied to a line.
    pub fn line(&self) -> usize {
        match self {
            SdpError::Parse(e) => e.line,
            SdpError::TooManySections { line, .. }
            | SdpError::DuplicateMid { line, .. }
            | SdpError::MissingAttribute { line, .. }
            | SdpError::Fingerprint { line, .. } => *line,
            SdpError::NoUsableSection
            | SdpError::AnswerSetup { .. }
            | SdpError::AnswerChangesDtlsRole
            | SdpError::AnswerSectionCount { .. }
            | SdpError::AnswerSectionMismatch { .. } => 0,
        }
    }
}

/// How a local description differs from the one we made
/// ([`RtcError::InvalidModification`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModificationError {
    /// The ICE credentials are not the ones `createOffer` or `createAnswer`
    /// made.
    #[error("ICE credentials differ from the ones the {0} was made with")]
    IceCredentials(SdpType),
    /// RFC 8842 §5.3: an answer's `a=setup` is `active` or `passive`.
    #[error("an answer's a=setup must be active or passive, not {setup}")]
    AnswerSetup {
        /// What the answer said.
        setup: Setup,
    },
    /// RFC 8842 §5.5: the DTLS role stays for the life of the association.
    #[error("the DTLS role cannot change")]
    DtlsRole,
    /// Every media section was removed.
    #[error("every section was removed")]
    NoSection,
    /// `setCodecPreferences` named a codec that is not one of the
    /// connection's codecs of the transceiver's kind (W3C webrtc-pc §5.4
    /// throws InvalidModificationError).
    #[error("{codec} is not one of the {kind} codecs of this connection ({media})")]
    CodecNotSupported {
        /// The transceiver.
        media: MediaRef,
        /// Its kind.
        kind: crate::track::MediaKind,
        /// The codec asked for, as `name/clock rate`.
        codec: String,
    },
}

/// Why an operation failed ([`RtcError::OperationError`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    /// RFC 8842 §5.5: a new remote description keeps the certificate.
    #[error("the remote certificate fingerprint changed")]
    FingerprintChanged,
    /// A candidate names a mid no remote section has.
    #[error("no media section {mid:?}")]
    UnknownMid {
        /// The candidate's sdpMid.
        mid: String,
    },
    /// A candidate's sdpMLineIndex is past the remote sections.
    #[error("no media section {index} (the description has {sections})")]
    NoSection {
        /// The candidate's sdpMLineIndex.
        index: u16,
        /// How many sections the remote description has.
        sections: usize,
    },
    /// The candidate line does not parse (RFC 8839 §5.1).
    #[error("candidate does not parse: {0}")]
    Candidate(realtimer_sdp::ParseError),
    /// The ICE agent refused the candidate.
    #[error(transparent)]
    Ice(#[from] IceError),
    /// The id of a negotiated channel is taken.
    #[error("data channel id {id} is in use")]
    ChannelIdInUse {
        /// The id.
        id: u16,
    },
    /// SRTP or SRTCP protection failed (RFC 3711).
    #[error("SRTP: {0}")]
    Srtp(#[from] SrtpError),
    /// An RTCP packet could not be written.
    #[error("RTCP: {0}")]
    Rtcp(WriteError),
    /// The certificate could not be made or prepared.
    #[error("certificate: {0}")]
    Certificate(#[from] DtlsError),
    /// A UDP socket could not be bound.
    #[error("UDP bind {address}: {kind}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The system's reason.
        kind: io::ErrorKind,
    },
    /// A bound socket could not be set up or asked for its address.
    #[error("UDP socket setup: {kind}")]
    SocketSetup {
        /// The system's reason.
        kind: io::ErrorKind,
    },
    /// Every port of the configured range is taken.
    #[error("no free UDP port in {first}-{last}")]
    NoFreePort {
        /// The range's first port.
        first: u16,
        /// The range's last port.
        last: u16,
    },
}

/// Which argument is not acceptable ([`RtcError::TypeError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgumentError {
    /// RFC 8832 §5.1: a label fits a 16-bit length.
    #[error("label of {len} bytes is longer than 65535")]
    LabelTooLong {
        /// The label's length.
        len: usize,
    },
    /// RFC 8832 §5.1: a protocol fits a 16-bit length.
    #[error("protocol of {len} bytes is longer than 65535")]
    ProtocolTooLong {
        /// The protocol's length.
        len: usize,
    },
    /// W3C webrtc-pc §6.2: maxPacketLifeTime and maxRetransmits together.
    #[error("maxPacketLifeTime and maxRetransmits cannot both be set")]
    BothReliabilityLimits,
    /// W3C webrtc-pc §6.2: a negotiated channel needs an id.
    #[error("negotiated channels need an id")]
    NegotiatedWithoutId,
    /// W3C webrtc-pc §6.2: id 65535 is reserved.
    #[error("id 65535 is reserved")]
    ReservedId,
    /// W3C webrtc-pc §4.4.1.6: a candidate names its section.
    #[error("sdpMid and sdpMLineIndex are both null")]
    CandidateWithoutSection,
    /// RFC 8841 §6: the message is larger than the peer's
    /// `a=max-message-size`.
    #[error("message of {size} bytes is larger than the peer's max-message-size {max}")]
    MessageTooLarge {
        /// The message's size.
        size: usize,
        /// The peer's limit.
        max: usize,
    },
    /// The packet's payload type is not one the transceiver negotiated.
    #[error("payload type {payload_type} is not negotiated on {media}")]
    PayloadType {
        /// The payload type.
        payload_type: u8,
        /// The transceiver.
        media: MediaRef,
    },
    /// The RTP packet could not be written (RFC 3550 §5.1).
    #[error("RTP packet: {0}")]
    RtpPacket(WriteError),
    /// Simulcast layers need 1 to 8 distinct rids of RFC 8851 §10's
    /// characters (letters, digits, `-`, `_`), each at most 16 bytes.
    #[error("simulcast rids {rids:?}: 1 to 8 distinct ids of letters, digits, - and _, at most 16 bytes each")]
    Rids {
        /// The rids given.
        rids: Vec<String>,
    },
    /// No simulcast layer of the track has this rid.
    #[error("{media} has no layer {rid:?}")]
    UnknownRid {
        /// The rid asked for.
        rid: String,
        /// The transceiver.
        media: MediaRef,
    },
}

/// Why an ICE server URL was refused ([`RtcError::SyntaxError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IceServerUrlError {
    /// An ICE server has an empty URL list.
    #[error("an ICE server has no URL")]
    NoUrl,
    /// RFC 7064/7065: the URL starts with stun:, stuns:, turn: or turns:.
    #[error("ICE server URL {url:?}: expected stun:, stuns:, turn: or turns:")]
    NoScheme {
        /// The URL.
        url: String,
    },
    /// The URL does not parse.
    #[error("ICE server URL {url:?}: {error}")]
    Invalid {
        /// The URL.
        url: String,
        /// Why.
        error: realtimer_stun::UrlError,
    },
}

/// Why access was refused ([`RtcError::InvalidAccess`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// W3C webrtc-pc §4.4.1.6: a TURN server needs a username and a
    /// credential.
    #[error("TURN server {url:?} needs a username and a credential")]
    TurnWithoutCredentials {
        /// The server's URL.
        url: String,
    },
    /// W3C webrtc-pc §4.4.1.6 (addTrack): the track has a sender already.
    #[error("the track was added to a connection already")]
    TrackInUse,
}
