//! JSEP for audio and video sections (RFC 8829 §5.2.1, §5.3.1): what we
//! read from the peer's `m=audio`/`m=video` sections and how we write ours.

use realtimer_sdp::{
    Attribute, Direction, Extmap, Fmtp, MediaDescription, MediaType, Msid, RtcpFb, Rtpmap, Ssrc,
};

use realtimer_rtp::TRANSPORT_CC_URI;

use crate::track::{Codec, MediaKind};

/// RFC 8843 §15: the header extension that carries the MID in RTP.
pub(crate) const MID_EXTENSION: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// The id we give the MID extension in our offers (Chromium's).
pub(crate) const MID_EXTENSION_ID: u8 = 4;

/// The id we give the transport-wide sequence number in our offers
/// (Chromium's; draft-holmer-rmcat-transport-wide-cc-extensions-01 §4).
pub(crate) const TRANSPORT_CC_EXTENSION_ID: u8 = 3;

/// The profiles of an RTP section we accept (RFC 5764 §8, RFC 8829 §5.1.2).
pub(crate) fn is_rtp_section(m: &MediaDescription) -> bool {
    matches!(m.media, MediaType::Audio | MediaType::Video)
        && super::is_wanted(m)
        && (m.protocol == "UDP/TLS/RTP/SAVPF" || m.protocol == "TCP/TLS/RTP/SAVPF")
}

/// What the peer says about one of its audio or video sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteMedia {
    pub(crate) mid: String,
    pub(crate) kind: MediaKind,
    /// The direction from the peer's point of view.
    pub(crate) direction: Direction,
    /// Its codecs in its order (rtx, red, ulpfec and comfort noise are not
    /// kept: realtimer does not use them).
    pub(crate) codecs: Vec<Codec>,
    /// The id of the MID header extension, if negotiated.
    pub(crate) mid_extension: Option<u8>,
    /// The id of the transport-wide sequence number extension, if offered.
    pub(crate) transport_cc_extension: Option<u8>,
    /// The SSRCs it announced (`a=ssrc`, RFC 5576).
    pub(crate) ssrcs: Vec<u32>,
    /// `a=msid` stream ids.
    pub(crate) stream_ids: Vec<String>,
    /// `a=msid` track id.
    pub(crate) track_id: Option<String>,
}

/// Payload formats that only protect or decorate another one.
fn is_auxiliary(name: &str) -> bool {
    [
        "rtx",
        "red",
        "ulpfec",
        "flexfec-03",
        "CN",
        "telephone-event",
    ]
    .iter()
    .any(|a| name.eq_ignore_ascii_case(a))
}

/// Reads an RTP section of the peer (`None` if it is not one we could use).
pub(crate) fn remote_media(m: &MediaDescription) -> Option<RemoteMedia> {
    if !is_rtp_section(m) {
        return None;
    }
    let kind = match m.media {
        MediaType::Audio => MediaKind::Audio,
        _ => MediaKind::Video,
    };
    let mut codecs = Vec::new();
    let mut mid_extension = None;
    let mut transport_cc_extension = None;
    let mut ssrcs = Vec::new();
    let mut msid = None;
    for a in &m.attributes {
        match a {
            Attribute::Rtpmap(r) if !is_auxiliary(&r.encoding_name) => codecs.push(Codec::new(
                r.payload_type,
                &r.encoding_name,
                r.clock_rate,
                r.encoding_params,
            )),
            Attribute::Extmap(e) if e.uri == MID_EXTENSION => {
                mid_extension = u8::try_from(e.id).ok().filter(|id| (1..=14).contains(id));
            }
            Attribute::Extmap(e) if e.uri == TRANSPORT_CC_URI => {
                transport_cc_extension = u8::try_from(e.id).ok().filter(|id| (1..=14).contains(id));
            }
            Attribute::Ssrc(s) if !ssrcs.contains(&s.ssrc) => ssrcs.push(s.ssrc),
            Attribute::Msid(id) => msid = Some(id.clone()),
            _ => {}
        }
    }
    for a in &m.attributes {
        if let Attribute::Fmtp(f) = a {
            if let Some(c) = codecs
                .iter_mut()
                .find(|c| Some(c.payload_type) == f.payload_type())
            {
                c.fmtp = Some(f.params.clone());
            }
        }
    }
    // Payload types on the m= line without an rtpmap are static ones we
    // never use; the m= line's order is the peer's preference.
    codecs.sort_by_key(|c| {
        m.formats
            .iter()
            .position(|f| f.parse() == Ok(c.payload_type))
    });
    Some(RemoteMedia {
        mid: m.mid()?.to_owned(),
        kind,
        direction: m.direction(),
        codecs,
        mid_extension,
        transport_cc_extension,
        ssrcs,
        stream_ids: msid.iter().map(|m| m.stream_id.clone()).collect(),
        track_id: msid.and_then(|m| m.track_id),
    })
}

/// The codecs of an answer: ours (in our order) that the offer has, with
/// the offerer's payload types (RFC 8829 §5.3.1).
pub(crate) fn answer_codecs(ours: &[Codec], offered: &[Codec], kind: MediaKind) -> Vec<Codec> {
    ours.iter()
        .filter(|c| c.kind() == kind)
        .filter_map(|c| offered.iter().find(|o| c.matches(o)).cloned())
        .collect()
}

/// The direction of an answer: what the offer allows, cut down to what
/// we want (RFC 3264 §6.1).
pub(crate) fn answer_direction(offered: Direction, ours: Direction) -> Direction {
    let send = sends(ours) && receives(offered);
    let recv = receives(ours) && sends(offered);
    direction(send, recv)
}

pub(crate) fn sends(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::SendOnly)
}

pub(crate) fn receives(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::RecvOnly)
}

pub(crate) fn direction(send: bool, recv: bool) -> Direction {
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// Our sending side of a transceiver, as announced in SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SenderInfo {
    pub(crate) ssrc: u32,
    pub(crate) cname: String,
    pub(crate) stream_id: String,
    pub(crate) track_id: String,
}

/// One of our audio or video sections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalMedia<'a> {
    pub(crate) kind: MediaKind,
    pub(crate) mid: &'a str,
    pub(crate) direction: Direction,
    pub(crate) codecs: &'a [Codec],
    pub(crate) mid_extension: Option<u8>,
    pub(crate) transport_cc_extension: Option<u8>,
    pub(crate) sender: Option<&'a SenderInfo>,
}

/// Our audio or video section after the transport attributes: MID
/// extension, direction, msid, rtcp-mux (RFC 8829 §5.2.1), codecs with
/// NACK, PLI and FIR feedback for video (RFC 4585, RFC 5104), and
/// transport-wide congestion control feedback where its extension is
/// negotiated, and our SSRC (RFC 5576; RFC 8830 §2).
pub(crate) fn write_media_attributes(m: &mut MediaDescription, media: &LocalMedia<'_>) {
    for (id, uri) in [
        (media.mid_extension, MID_EXTENSION),
        (media.transport_cc_extension, TRANSPORT_CC_URI),
    ] {
        if let Some(id) = id {
            m.attributes.push(Attribute::Extmap(Extmap {
                id: id.into(),
                direction: None,
                uri: uri.to_owned(),
                attributes: None,
            }));
        }
    }
    m.attributes.push(Attribute::Direction(media.direction));
    let sender = media.sender.filter(|_| sends(media.direction));
    if let Some(s) = sender {
        m.attributes.push(Attribute::Msid(Msid {
            stream_id: s.stream_id.clone(),
            track_id: Some(s.track_id.clone()),
        }));
    }
    m.attributes.push(Attribute::RtcpMux);
    m.attributes.push(Attribute::RtcpRsize);
    for c in media.codecs {
        m.attributes.push(Attribute::Rtpmap(Rtpmap {
            payload_type: c.payload_type,
            encoding_name: c.name.clone(),
            clock_rate: c.clock_rate,
            encoding_params: c.channels,
        }));
        if media.kind == MediaKind::Video {
            for (feedback, parameter) in
                [("nack", None), ("nack", Some("pli")), ("ccm", Some("fir"))]
            {
                m.attributes.push(Attribute::RtcpFb(RtcpFb {
                    payload_type: Some(c.payload_type),
                    feedback: feedback.to_owned(),
                    parameter: parameter.map(str::to_owned),
                }));
            }
        }
        if media.transport_cc_extension.is_some() {
            m.attributes.push(Attribute::RtcpFb(RtcpFb {
                payload_type: Some(c.payload_type),
                feedback: "transport-cc".to_owned(),
                parameter: None,
            }));
        }
        if let Some(params) = &c.fmtp {
            m.attributes.push(Attribute::Fmtp(Fmtp {
                format: c.payload_type.to_string(),
                params: params.clone(),
            }));
        }
    }
    if let Some(s) = sender {
        m.attributes.push(Attribute::Ssrc(Ssrc {
            ssrc: s.ssrc,
            attribute: "cname".to_owned(),
            value: Some(s.cname.clone()),
        }));
        m.attributes.push(Attribute::Ssrc(Ssrc {
            ssrc: s.ssrc,
            attribute: "msid".to_owned(),
            value: Some(format!("{} {}", s.stream_id, s.track_id)),
        }));
    }
}

/// The `m=` media type of a kind.
pub(crate) fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Audio => MediaType::Audio,
        MediaKind::Video => MediaType::Video,
    }
}

/// The `m=` line of one of our audio or video sections.
pub(crate) fn media_line(media: &LocalMedia<'_>) -> MediaDescription {
    MediaDescription::new(
        media_type(media.kind),
        9,
        "UDP/TLS/RTP/SAVPF",
        media
            .codecs
            .iter()
            .map(|c| c.payload_type.to_string())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_keeps_offered_payload_types_in_our_order() {
        let offered = vec![
            Codec::new(102, "H264", 90_000, None)
                .with_fmtp("packetization-mode=1;profile-level-id=42001f"),
            Codec::new(104, "H264", 90_000, None)
                .with_fmtp("packetization-mode=0;profile-level-id=42001f"),
            Codec::new(100, "VP8", 90_000, None),
            Codec::new(101, "VP9", 90_000, None).with_fmtp("profile-id=2"),
        ];
        let got = answer_codecs(&Codec::defaults(), &offered, MediaKind::Video);
        let pts: Vec<u8> = got.iter().map(|c| c.payload_type).collect();
        // VP8 first (ours), VP9 profile 2 refused, H.264 mode 0 refused.
        assert_eq!(pts, vec![100, 102]);
    }

    #[test]
    fn directions_follow_rfc3264() {
        use Direction::*;
        assert_eq!(answer_direction(SendRecv, SendRecv), SendRecv);
        assert_eq!(answer_direction(SendRecv, RecvOnly), RecvOnly);
        assert_eq!(answer_direction(SendOnly, SendRecv), RecvOnly);
        assert_eq!(answer_direction(RecvOnly, SendRecv), SendOnly);
        assert_eq!(answer_direction(Inactive, SendRecv), Inactive);
    }
}
