//! JSEP (RFC 8829) for data-only sessions: the descriptions we write, what
//! we read from the peer's, and the signaling state machine.

use std::fmt;

use realtimer_sdp::{
    Attribute, Candidate as SdpCandidate, Connection, Group, MediaDescription, MediaType, Origin,
    SessionDescription as Sdp, Setup,
};

use crate::error::RtcError;

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

/// What we need from the peer's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteTransport {
    pub(crate) mid: String,
    pub(crate) m_line_index: u16,
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

/// The data protocols of an `m=application` section we accept (RFC 8841 §4.1;
/// the older `DTLS/SCTP` form is not).
fn is_data_section(m: &MediaDescription) -> bool {
    m.media == MediaType::Application
        && m.port != 0
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

/// Reads the transport of the peer's data section.
pub(crate) fn parse_remote(text: &str) -> Result<(Sdp, RemoteTransport), RtcError> {
    let desc = Sdp::parse(text)?;
    let (index, m) = desc
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| is_data_section(m))
        .ok_or_else(|| {
            RtcError::sdp(
                0,
                "no `m=application <port> UDP/DTLS/SCTP webrtc-datachannel` section",
            )
        })?;
    let line = m_line_number(text, index);
    let missing = |what: &str| RtcError::sdp(line, format!("the data section has no {what}"));
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
    let fingerprint_text = session_or_media(&desc, m, |a| match a {
        Attribute::Fingerprint(f) => {
            let mut s = String::new();
            f.write_value(&mut s).ok().map(|_| s)
        }
        _ => None,
    })
    .ok_or_else(|| missing("a=fingerprint"))?;
    let fingerprint: realtimer_dtls::Fingerprint = fingerprint_text
        .parse()
        .map_err(|e| RtcError::sdp(line, format!("unusable a=fingerprint: {e}")))?;
    let setup = session_or_media(&desc, m, |a| match a {
        Attribute::Setup(s) => Some(*s),
        _ => None,
    })
    .unwrap_or(Setup::ActPass);
    let sctp_port = m
        .attributes
        .iter()
        .find_map(|a| match a {
            Attribute::SctpPort(p) => Some(*p),
            _ => None,
        })
        .unwrap_or(5000);
    let max_message_size = m
        .attributes
        .iter()
        .find_map(|a| match a {
            Attribute::MaxMessageSize(s) => Some(*s),
            _ => None,
        })
        .unwrap_or(65536);
    let ice_lite = desc.attributes.contains(&Attribute::IceLite);
    let candidates = m.candidates().cloned().collect();
    let end_of_candidates = m.attributes.contains(&Attribute::EndOfCandidates);
    let m_line_index =
        u16::try_from(index).map_err(|_| RtcError::sdp(line, "too many media sections"))?;
    Ok((
        desc.clone(),
        RemoteTransport {
            mid,
            m_line_index,
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

/// Our data section (RFC 8841, RFC 8839 §5, RFC 8842 §5).
fn data_section(local: &LocalTransport, mid: &str, setup: Setup) -> MediaDescription {
    let mut m = MediaDescription::new(
        MediaType::Application,
        9,
        "UDP/DTLS/SCTP",
        vec!["webrtc-datachannel".to_owned()],
    );
    m.connections.push(Connection {
        net_type: "IN".to_owned(),
        addr_type: "IP4".to_owned(),
        address: "0.0.0.0".to_owned(),
    });
    m.attributes.extend([
        Attribute::IceUfrag(local.ufrag.clone()),
        Attribute::IcePwd(local.pwd.clone()),
        Attribute::IceOptions(vec!["trickle".to_owned()]),
        Attribute::Fingerprint(realtimer_sdp::Fingerprint {
            hash: realtimer_sdp::HashFunction::from_name(local.fingerprint.algorithm.as_str()),
            value: local.fingerprint.bytes.clone(),
        }),
        Attribute::Setup(setup),
        Attribute::Mid(mid.to_owned()),
        Attribute::SctpPort(local.sctp_port),
        Attribute::MaxMessageSize(local.max_message_size),
    ]);
    m
}

/// An offer with one data section, mid `0`, bundled (RFC 8829 §5.2.1).
pub(crate) fn write_offer(local: &LocalTransport, session_id: u64, version: u64) -> String {
    let mut desc = session(session_id, version, local.ice_lite);
    desc.attributes.push(Attribute::Group(Group {
        semantics: "BUNDLE".to_owned(),
        mids: vec!["0".to_owned()],
    }));
    desc.media.push(data_section(local, "0", Setup::ActPass));
    desc.to_string()
}

/// An answer to `offer`: our data section in place of its data section,
/// every other section rejected with port 0 (RFC 8829 §5.3.1).
pub(crate) fn write_answer(
    local: &LocalTransport,
    offer: &Sdp,
    setup: Setup,
    session_id: u64,
    version: u64,
) -> String {
    let mut desc = session(session_id, version, local.ice_lite);
    let mut bundle = Vec::new();
    let mut answered = false;
    let mut sections = Vec::new();
    for m in &offer.media {
        let mid = m.mid().unwrap_or("").to_owned();
        if !answered && is_data_section(m) {
            answered = true;
            bundle.push(mid.clone());
            sections.push(data_section(local, &mid, setup));
        } else {
            let mut rejected =
                MediaDescription::new(m.media.clone(), 0, &m.protocol, m.formats.clone());
            rejected.connections.push(Connection {
                net_type: "IN".to_owned(),
                addr_type: "IP4".to_owned(),
                address: "0.0.0.0".to_owned(),
            });
            if !mid.is_empty() {
                rejected.attributes.push(Attribute::Mid(mid));
            }
            sections.push(rejected);
        }
    }
    desc.attributes.push(Attribute::Group(Group {
        semantics: "BUNDLE".to_owned(),
        mids: bundle,
    }));
    desc.media = sections;
    desc.to_string()
}

/// The ufrag, pwd, fingerprint and setup of the data section of one of our
/// descriptions, to check that `set_local_description` got what we made.
pub(crate) fn local_fields(text: &str) -> Result<(String, String, Setup), RtcError> {
    let desc = Sdp::parse(text)?;
    let m = desc
        .media
        .iter()
        .find(|m| is_data_section(m))
        .ok_or_else(|| RtcError::InvalidModification("the data section was removed".into()))?;
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
