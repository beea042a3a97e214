//! JSEP (RFC 8829): the descriptions we write, what we read from the
//! peer's, and the signaling state machine. One BUNDLE group carries every
//! section (RFC 8843); audio and video sections are in [`media`].

use std::fmt;

pub(crate) mod media_section;

use realtimer_sdp::{
    Attribute, Candidate as SdpCandidate, Connection, Group, MediaDescription, MediaType, Origin,
    SessionDescription as Sdp, Setup,
};

use crate::error::{ModificationError, RtcError, SdpError};

/// RTCSdpType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SdpType {
    /// `offer`.
    Offer,
    /// `pranswer`: a provisional answer.
    Pranswer,
    /// `answer`.
    Answer,
    /// `rollback`: undo the pending offer.
    Rollback,
}

impl SdpType {
    /// The W3C string value.
    pub fn as_str(self) -> &'static str {
        match self {
            SdpType::Offer => "offer",
            SdpType::Pranswer => "pranswer",
            SdpType::Answer => "answer",
            SdpType::Rollback => "rollback",
        }
    }

    /// Parses the W3C string value.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "offer" => Some(SdpType::Offer),
            "pranswer" => Some(SdpType::Pranswer),
            "answer" => Some(SdpType::Answer),
            "rollback" => Some(SdpType::Rollback),
            _ => None,
        }
    }
}

impl fmt::Display for SdpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RTCSessionDescriptionInit: a type and the SDP text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// Offer, answer, pranswer or rollback.
    pub sdp_type: SdpType,
    /// The SDP (empty for a rollback).
    pub sdp: String,
}

impl SessionDescription {
    /// An offer with this SDP.
    pub fn offer(sdp: impl Into<String>) -> Self {
        SessionDescription {
            sdp_type: SdpType::Offer,
            sdp: sdp.into(),
        }
    }

    /// An answer with this SDP.
    pub fn answer(sdp: impl Into<String>) -> Self {
        SessionDescription {
            sdp_type: SdpType::Answer,
            sdp: sdp.into(),
        }
    }

    /// A rollback.
    pub fn rollback() -> Self {
        SessionDescription {
            sdp_type: SdpType::Rollback,
            sdp: String::new(),
        }
    }
}

/// RTCSignalingState (W3C webrtc-pc §4.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalingState {
    /// No offer/answer exchange in progress.
    Stable,
    /// We set a local offer.
    HaveLocalOffer,
    /// We set a remote offer.
    HaveRemoteOffer,
    /// We set a remote offer and a local provisional answer.
    HaveLocalPranswer,
    /// We set a local offer and a remote provisional answer.
    HaveRemotePranswer,
    /// The connection is closed.
    Closed,
}

impl SignalingState {
    /// The W3C string value.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalingState::Stable => "stable",
            SignalingState::HaveLocalOffer => "have-local-offer",
            SignalingState::HaveRemoteOffer => "have-remote-offer",
            SignalingState::HaveLocalPranswer => "have-local-pranswer",
            SignalingState::HaveRemotePranswer => "have-remote-pranswer",
            SignalingState::Closed => "closed",
        }
    }
}

impl fmt::Display for SignalingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RTCIceCandidateInit: a trickled candidate and the section it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCandidateInit {
    /// `candidate:...` (empty: end of candidates, as browsers signal it).
    pub candidate: String,
    /// The `a=mid` of the section.
    pub sdp_mid: Option<String>,
    /// The index of the section.
    pub sdp_m_line_index: Option<u16>,
    /// The ICE ufrag the candidate belongs to.
    pub username_fragment: Option<String>,
}

/// Our transport parameters, written into every description we make.
#[derive(Debug, Clone)]
pub(crate) struct LocalTransport {
    pub(crate) ufrag: String,
    pub(crate) pwd: String,
    /// Our certificate's fingerprint.
    pub(crate) fingerprint: realtimer_dtls::Fingerprint,
    pub(crate) sctp_port: u16,
    pub(crate) max_message_size: u64,
    pub(crate) ice_lite: bool,
}

/// What we need from the peer's description: the transport of its
/// BUNDLE-tagged section (RFC 8843 §7.2.1) and its data section's SCTP
/// parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteTransport {
    /// The mid and index of the section whose transport carries the bundle.
    pub(crate) mid: String,
    pub(crate) m_line_index: u16,
    /// Every section's `a=mid` ("" when it has none), by m-line index:
    /// trickled candidates may name any of them.
    pub(crate) mids: Vec<String>,
    /// Whether there is a data section (SCTP runs only then).
    pub(crate) data: bool,
    pub(crate) ufrag: String,
    pub(crate) pwd: String,
    pub(crate) fingerprint: realtimer_dtls::Fingerprint,
    pub(crate) setup: Setup,
    pub(crate) sctp_port: u16,
    /// RFC 8841 §6.1: absent means 64 KiB; 0 means no limit.
    pub(crate) max_message_size: u64,
    pub(crate) ice_lite: bool,
    pub(crate) candidates: Vec<SdpCandidate>,
    pub(crate) end_of_candidates: bool,
}

/// Whether the peer wants section `m`: a port, or port 0 with
/// `a=bundle-only` (RFC 8843 §6: an offerer sure of BUNDLE may offer a
/// section only inside the bundle; GStreamer's webrtcbin offers every
/// section after the first that way).
pub(crate) fn is_wanted(m: &MediaDescription) -> bool {
    m.port != 0 || m.attributes.contains(&Attribute::BundleOnly)
}

/// The data protocols of an `m=application` section we accept (RFC 8841 §4.1;
/// the older `DTLS/SCTP` form is not).
pub(crate) fn is_data_section(m: &MediaDescription) -> bool {
    m.media == MediaType::Application
        && is_wanted(m)
        && (m.protocol == "UDP/DTLS/SCTP" || m.protocol == "TCP/DTLS/SCTP")
        && m.formats.iter().any(|f| f == "webrtc-datachannel")
}

/// The 1-based line of the `index`-th `m=` line of `text` (0 if not found).
fn m_line_number(text: &str, index: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("m="))
        .nth(index)
        .map_or(0, |(n, _)| n + 1)
}

fn session_or_media<'a, T>(
    session: &'a Sdp,
    media: &'a MediaDescription,
    pick: impl Fn(&'a Attribute) -> Option<T>,
) -> Option<T> {
    media
        .attributes
        .iter()
        .find_map(&pick)
        .or_else(|| session.attributes.iter().find_map(&pick))
}

/// Whether a section can carry the bundle's transport: data or RTP.
fn is_usable_section(m: &MediaDescription) -> bool {
    is_data_section(m) || media_section::is_rtp_section(m)
}

/// Most `m=` sections a remote description may have: each can make a
/// transceiver, which stays for the connection's life.
pub(crate) const MAX_MEDIA_SECTIONS: usize = 256;

/// Reads the transport of the peer's BUNDLE-tagged section (the first mid
/// of its BUNDLE group; else its first data or RTP section) and its data
/// section's SCTP parameters.
pub(crate) fn parse_remote(text: &str) -> Result<(Sdp, RemoteTransport), RtcError> {
    let desc = Sdp::parse(text)?;
    if desc.media.len() > MAX_MEDIA_SECTIONS {
        return Err(SdpError::TooManySections {
            line: m_line_number(text, MAX_MEDIA_SECTIONS),
            max: MAX_MEDIA_SECTIONS,
        }
        .into());
    }
    let mut mids = std::collections::HashSet::new();
    for (i, m) in desc.media.iter().enumerate() {
        if let Some(mid) = m.mid().filter(|mid| !mids.insert(*mid)) {
            return Err(SdpError::DuplicateMid {
                line: m_line_number(text, i),
                mid: mid.to_owned(),
            }
            .into());
        }
    }
    let tag = desc.attributes.iter().find_map(|a| match a {
        Attribute::Group(g) if g.is_bundle() => g.mids.first().cloned(),
        _ => None,
    });
    let (index, m) = desc
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| is_usable_section(m) && tag.as_deref().is_none_or(|t| m.mid() == Some(t)))
        .or_else(|| {
            desc.media
                .iter()
                .enumerate()
                .find(|(_, m)| is_usable_section(m))
        })
        .ok_or_else(|| RtcError::from(SdpError::NoUsableSection))?;
    let data_section = desc.media.iter().find(|m| is_data_section(m));
    let line = m_line_number(text, index);
    let missing = |attribute| SdpError::MissingAttribute { line, attribute };
    let mid = m.mid().ok_or_else(|| missing("a=mid"))?.to_owned();
    let ufrag = session_or_media(&desc, m, |a| match a {
        Attribute::IceUfrag(u) => Some(u.clone()),
        _ => None,
    })
    .ok_or_else(|| missing("a=ice-ufrag"))?;
    let pwd = session_or_media(&desc, m, |a| match a {
        Attribute::IcePwd(p) => Some(p.clone()),
        _ => None,
    })
    .ok_or_else(|| missing("a=ice-pwd"))?;
    let fingerprint = session_or_media(&desc, m, |a| match a {
        Attribute::Fingerprint(f) => Some(f.clone()),
        _ => None,
    })
    .ok_or_else(|| missing("a=fingerprint"))?;
    realtimer_dtls::check_fingerprint(&fingerprint)
        .map_err(|error| SdpError::Fingerprint { line, error })?;
    let setup = session_or_media(&desc, m, |a| match a {
        Attribute::Setup(s) => Some(*s),
        _ => None,
    })
    .unwrap_or(Setup::ActPass);
    let data_attributes = data_section.map_or(&[][..], |d| &d.attributes[..]);
    let sctp_port = data_attributes
        .iter()
        .find_map(|a| match a {
            Attribute::SctpPort(p) => Some(*p),
            _ => None,
        })
        .unwrap_or(5000);
    let max_message_size = data_attributes
        .iter()
        .find_map(|a| match a {
            Attribute::MaxMessageSize(s) => Some(*s),
            _ => None,
        })
        .unwrap_or(65536);
    let ice_lite = desc.attributes.contains(&Attribute::IceLite);
    let candidates = m.candidates().cloned().collect();
    let end_of_candidates = m.attributes.contains(&Attribute::EndOfCandidates);
    let m_line_index = u16::try_from(index).map_err(|_| SdpError::TooManySections {
        line,
        max: MAX_MEDIA_SECTIONS,
    })?;
    Ok((
        desc.clone(),
        RemoteTransport {
            mid,
            m_line_index,
            mids: desc
                .media
                .iter()
                .map(|m| m.mid().unwrap_or("").to_owned())
                .collect(),
            data: data_section.is_some(),
            ufrag,
            pwd,
            fingerprint,
            setup,
            sctp_port,
            max_message_size,
            ice_lite,
            candidates,
            end_of_candidates,
        },
    ))
}

/// The session-level part of every description we write.
fn session(session_id: u64, version: u64, ice_lite: bool) -> Sdp {
    let mut desc = Sdp::new(Origin {
        username: "-".to_owned(),
        session_id,
        session_version: version,
        net_type: "IN".to_owned(),
        addr_type: "IP4".to_owned(),
        unicast_address: "127.0.0.1".to_owned(),
    });
    if ice_lite {
        desc.attributes.push(Attribute::IceLite);
    }
    desc
}

/// One section of a description we write, in m-line order.
#[derive(Debug, Clone)]
pub(crate) enum LocalSection<'a> {
    /// Our data section with this mid.
    Data(&'a str),
    /// An audio or video section.
    Media(media_section::LocalMedia<'a>),
    /// A section we rejected (port 0), kept in its place (RFC 8829 §5.2.2).
    Rejected(&'a MediaDescription),
}

/// `c=IN IP4 0.0.0.0`, the placeholder of trickle ICE (RFC 8829 §5.2.1).
fn placeholder_connection() -> Connection {
    Connection {
        net_type: "IN".to_owned(),
        addr_type: "IP4".to_owned(),
        address: "0.0.0.0".to_owned(),
    }
}

/// The transport attributes every bundled section repeats (RFC 8839 §5,
/// RFC 8842 §5, RFC 8843 §7.1.3) and its mid.
fn transport_attributes(local: &LocalTransport, mid: &str, setup: Setup) -> [Attribute; 6] {
    [
        Attribute::IceUfrag(local.ufrag.clone()),
        Attribute::IcePwd(local.pwd.clone()),
        Attribute::IceOptions(vec!["trickle".to_owned()]),
        Attribute::Fingerprint(local.fingerprint.clone()),
        Attribute::Setup(setup),
        Attribute::Mid(mid.to_owned()),
    ]
}

/// Our data section (RFC 8841, RFC 8839 §5, RFC 8842 §5).
fn data_section(local: &LocalTransport, mid: &str, setup: Setup) -> MediaDescription {
    let mut m = MediaDescription::new(
        MediaType::Application,
        9,
        "UDP/DTLS/SCTP",
        vec!["webrtc-datachannel".to_owned()],
    );
    m.connections.push(placeholder_connection());
    m.attributes.extend(transport_attributes(local, mid, setup));
    m.attributes.extend([
        Attribute::SctpPort(local.sctp_port),
        Attribute::MaxMessageSize(local.max_message_size),
    ]);
    m
}

/// A rejected section answering (or re-offering) `m`: port 0, its mid
/// (RFC 8829 §5.3.1).
pub(crate) fn rejected_section(m: &MediaDescription) -> MediaDescription {
    let mut rejected = MediaDescription::new(m.media.clone(), 0, &m.protocol, m.formats.clone());
    rejected.connections.push(placeholder_connection());
    if let Some(mid) = m.mid() {
        rejected.attributes.push(Attribute::Mid(mid.to_owned()));
    }
    rejected
}

/// An offer or answer: `sections` in order, every accepted one in one
/// BUNDLE group (RFC 8829 §5.2.1, §5.3.1; RFC 8843 §7). `setup` is
/// `actpass` in offers.
pub(crate) fn write_description(
    local: &LocalTransport,
    setup: Setup,
    session_id: u64,
    version: u64,
    sections: &[LocalSection<'_>],
) -> String {
    let mut desc = session(session_id, version, local.ice_lite);
    let mut bundle = Vec::new();
    for section in sections {
        let m = match section {
            LocalSection::Data(mid) => data_section(local, mid, setup),
            LocalSection::Media(media) => {
                let mut m = media_section::media_line(media);
                m.connections.push(placeholder_connection());
                m.attributes
                    .extend(transport_attributes(local, media.mid, setup));
                media_section::write_media_attributes(&mut m, media);
                m
            }
            LocalSection::Rejected(m) => (*m).clone(),
        };
        if m.port != 0 {
            bundle.extend(m.mid().map(str::to_owned));
        }
        desc.media.push(m);
    }
    desc.attributes.push(Attribute::Group(Group {
        semantics: "BUNDLE".to_owned(),
        mids: bundle,
    }));
    desc.to_string()
}

/// The ufrag, pwd and setup of the first accepted section of one of our
/// descriptions, to check that `set_local_description` got what we made.
pub(crate) fn local_fields(text: &str) -> Result<(String, String, Setup), RtcError> {
    let desc = Sdp::parse(text)?;
    let m = desc
        .media
        .iter()
        .find(|m| is_usable_section(m))
        .ok_or(ModificationError::NoSection)?;
    let get = |name: &str| {
        m.attributes.iter().find_map(|a| match (a, name) {
            (Attribute::IceUfrag(u), "ufrag") => Some(u.clone()),
            (Attribute::IcePwd(p), "pwd") => Some(p.clone()),
            _ => None,
        })
    };
    let setup = m
        .attributes
        .iter()
        .find_map(|a| match a {
            Attribute::Setup(s) => Some(*s),
            _ => None,
        })
        .unwrap_or(Setup::ActPass);
    Ok((
        get("ufrag").unwrap_or_default(),
        get("pwd").unwrap_or_default(),
        setup,
    ))
}
