//! JSEP for audio and video sections (RFC 8829 §5.2.1, §5.3.1): what we
//! read from the peer's `m=audio`/`m=video` sections and how we write ours.

use realtimer_sdp::{
    Attribute, Direction, Extmap, Fmtp, MediaDescription, MediaType, Msid, Rid, RidDirection,
    RtcpFb, Rtpmap, Simulcast, SimulcastList, SimulcastRid, Ssrc, SsrcGroup,
};

use realtimer_rtp::{AUDIO_LEVEL_URI, TRANSPORT_CC_URI};

use crate::track::{Codec, MediaKind};

/// RFC 8843 §15: the header extension that carries the MID in RTP.
pub(crate) const MID_EXTENSION: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// The id we give the MID extension in our offers (Chromium's).
pub(crate) const MID_EXTENSION_ID: u8 = 4;

/// RFC 8852 §3.1: the header extension that carries a stream's rid.
pub(crate) const RID_EXTENSION: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// RFC 8852 §3.2: the rid of the stream an RTX stream repairs.
pub(crate) const REPAIRED_RID_EXTENSION: &str =
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// The ids we give the rid and repaired-rid extensions in our offers
/// (Chromium's).
pub(crate) const RID_EXTENSION_ID: u8 = 10;
pub(crate) const REPAIRED_RID_EXTENSION_ID: u8 = 11;

/// Most simulcast layers of one section we take from a peer (Chromium
/// sends at most four, libwebrtc's kMaxSimulcastStreams); the rest are
/// left out of the answer.
pub(crate) const MAX_LAYERS: usize = 8;

/// The id we give the transport-wide sequence number in our offers
/// (Chromium's; draft-holmer-rmcat-transport-wide-cc-extensions-01 §4).
pub(crate) const TRANSPORT_CC_EXTENSION_ID: u8 = 3;

/// The id we give the audio level extension in our audio sections
/// (Chromium's; RFC 6464).
pub(crate) const AUDIO_LEVEL_EXTENSION_ID: u8 = 1;

/// The profiles of an RTP section we accept (RFC 5764 §8, RFC 8829 §5.1.2).
pub(crate) fn is_rtp_section(m: &MediaDescription) -> bool {
    matches!(m.media, MediaType::Audio | MediaType::Video)
        && super::is_wanted(m)
        && (m.protocol == "UDP/TLS/RTP/SAVPF" || m.protocol == "TCP/TLS/RTP/SAVPF")
}

/// An RTX payload type (RFC 4588 §8.6: `a=rtpmap:<pt> rtx/<rate>` with
/// `a=fmtp:<pt> apt=<original pt>`): retransmissions of `apt`'s packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rtx {
    pub(crate) payload_type: u8,
    pub(crate) apt: u8,
}

/// RTX payload types for our video codecs: the codec's type + 1 where
/// free (Chromium's numbering for our defaults: 97 for 96, 99 for 98, 103
/// for 102, 46 for 45), else the lowest free dynamic type (RFC 3551 §3).
pub(crate) fn offer_rtx(codecs: &[Codec]) -> Vec<Rtx> {
    let mut taken: Vec<u8> = codecs.iter().map(|c| c.payload_type).collect();
    let mut rtx = Vec::new();
    for c in codecs.iter().filter(|c| c.kind() == MediaKind::Video) {
        let next = c.payload_type.checked_add(1).filter(|pt| *pt <= 127);
        let free = next
            .filter(|pt| !taken.contains(pt))
            .or_else(|| (96..=127).chain(35..=63).find(|pt| !taken.contains(pt)));
        let Some(pt) = free else { break };
        taken.push(pt);
        rtx.push(Rtx {
            payload_type: pt,
            apt: c.payload_type,
        });
    }
    rtx
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
    /// The id of the audio level extension (RFC 6464), if offered in an
    /// audio section.
    pub(crate) audio_level_extension: Option<u8>,
    /// Its RTX payload types (RFC 4588 §8.6).
    pub(crate) rtx: Vec<Rtx>,
    /// The SSRCs it announced (`a=ssrc`, RFC 5576).
    pub(crate) ssrcs: Vec<u32>,
    /// `a=ssrc-group:FID <media> <rtx>` pairs (RFC 5576 §4.2, RFC 4588 §8.7).
    pub(crate) rtx_ssrcs: Vec<(u32, u32)>,
    /// `a=msid` stream ids.
    pub(crate) stream_ids: Vec<String>,
    /// `a=msid` track id.
    pub(crate) track_id: Option<String>,
    /// The id of the rid extension, if offered (RFC 8852 §3.1).
    pub(crate) rid_extension: Option<u8>,
    /// The id of the repaired-rid extension, if offered (RFC 8852 §3.2).
    pub(crate) repaired_rid_extension: Option<u8>,
    /// The simulcast layers the peer sends (`a=simulcast:send`, each
    /// declared by `a=rid:<id> send`; RFC 8853 §5.1), in its order.
    pub(crate) send_layers: Vec<SimulcastRid>,
    /// The simulcast layers the peer receives (`a=simulcast:recv` with
    /// `a=rid:<id> recv`).
    pub(crate) receive_layers: Vec<SimulcastRid>,
}

/// Whether a rid is one we take: RFC 8851 §10's `rid-id` (letters,
/// digits, `-`, `_`), at most 16 bytes so it fits a one-byte header
/// extension element (RFC 8285 §4.2).
pub(crate) fn is_valid_rid(id: &str) -> bool {
    (1..=16).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The layers of a section in one direction: the first alternative of
/// each stream of its `a=simulcast` list (RFC 8853 §5.1) that an `a=rid`
/// line of that direction declares (§5.2), at most [`MAX_LAYERS`].
fn simulcast_layers(m: &MediaDescription, direction: RidDirection) -> Vec<SimulcastRid> {
    let declared = |id: &str| {
        m.attributes
            .iter()
            .any(|a| matches!(a, Attribute::Rid(r) if r.id == id && r.direction == direction))
    };
    let mut layers: Vec<SimulcastRid> = Vec::new();
    for a in &m.attributes {
        let Attribute::Simulcast(s) = a else { continue };
        for list in s.lists.iter().filter(|l| l.direction == direction) {
            for stream in &list.streams {
                let Some(rid) = stream.first() else { continue };
                if is_valid_rid(&rid.id)
                    && declared(&rid.id)
                    && !layers.iter().any(|l| l.id == rid.id)
                    && layers.len() < MAX_LAYERS
                {
                    layers.push(rid.clone());
                }
            }
        }
    }
    layers
}

/// Payload formats that only protect or decorate another one. RED (RFC
/// 2198) is not among them: it is read as a codec, so an answer takes it
/// where our configuration lists it (first, to have the peer send its
/// audio in it), and by default, not listed, it is left out as before.
fn is_auxiliary(name: &str) -> bool {
    ["rtx", "ulpfec", "flexfec-03", "CN", "telephone-event"]
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
    let mut audio_level_extension = None;
    let mut rid_extension = None;
    let mut repaired_rid_extension = None;
    let mut ssrcs = Vec::new();
    let mut rtx_ssrcs = Vec::new();
    let mut rtx_types = Vec::new();
    let mut msid = None;
    for a in &m.attributes {
        match a {
            Attribute::Rtpmap(r) if r.encoding_name.eq_ignore_ascii_case("rtx") => {
                rtx_types.push(r.payload_type);
            }
            Attribute::SsrcGroup(SsrcGroup { semantics, ssrcs }) if semantics == "FID" => {
                if let [media, rtx] = ssrcs[..] {
                    rtx_ssrcs.push((media, rtx));
                }
            }
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
            Attribute::Extmap(e) if e.uri == AUDIO_LEVEL_URI && kind == MediaKind::Audio => {
                audio_level_extension = u8::try_from(e.id).ok().filter(|id| (1..=14).contains(id));
            }
            Attribute::Extmap(e) if e.uri == RID_EXTENSION => {
                rid_extension = u8::try_from(e.id).ok().filter(|id| (1..=14).contains(id));
            }
            Attribute::Extmap(e) if e.uri == REPAIRED_RID_EXTENSION => {
                repaired_rid_extension = u8::try_from(e.id).ok().filter(|id| (1..=14).contains(id));
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
    let rtx = m
        .attributes
        .iter()
        .filter_map(|a| match a {
            Attribute::Fmtp(f) => {
                let payload_type = f.payload_type().filter(|pt| rtx_types.contains(pt))?;
                let apt = f.parameters().find(|(k, _)| *k == "apt")?.1.parse().ok()?;
                Some(Rtx { payload_type, apt })
            }
            _ => None,
        })
        .collect();
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
        audio_level_extension,
        rtx,
        ssrcs,
        rtx_ssrcs,
        stream_ids: msid.iter().map(|m| m.stream_id.clone()).collect(),
        track_id: msid.and_then(|m| m.track_id),
        rid_extension,
        repaired_rid_extension,
        send_layers: simulcast_layers(m, RidDirection::Send),
        receive_layers: simulcast_layers(m, RidDirection::Recv),
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
    /// The SSRC of its retransmissions (RFC 4588 §8.7), used where RTX is
    /// negotiated.
    pub(crate) rtx_ssrc: u32,
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
    pub(crate) rtx: &'a [Rtx],
    pub(crate) mid_extension: Option<u8>,
    pub(crate) transport_cc_extension: Option<u8>,
    pub(crate) audio_level_extension: Option<u8>,
    pub(crate) rid_extension: Option<u8>,
    pub(crate) repaired_rid_extension: Option<u8>,
    pub(crate) sender: Option<&'a SenderInfo>,
    /// The layers we send (`a=simulcast:send`), if we send simulcast.
    pub(crate) send_layers: &'a [SimulcastRid],
    /// The peer's layers we receive (`a=simulcast:recv`).
    pub(crate) receive_layers: &'a [SimulcastRid],
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
        (media.audio_level_extension, AUDIO_LEVEL_URI),
        (media.rid_extension, RID_EXTENSION),
        (media.repaired_rid_extension, REPAIRED_RID_EXTENSION),
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
        for rtx in media.rtx.iter().filter(|r| r.apt == c.payload_type) {
            m.attributes.push(Attribute::Rtpmap(Rtpmap {
                payload_type: rtx.payload_type,
                encoding_name: "rtx".to_owned(),
                clock_rate: c.clock_rate,
                encoding_params: None,
            }));
            m.attributes.push(Attribute::Fmtp(Fmtp {
                format: rtx.payload_type.to_string(),
                params: format!("apt={}", c.payload_type),
            }));
        }
    }
    write_simulcast(m, media);
    // A simulcast sender announces no SSRC: the receiver learns each
    // layer's from its rid (RFC 8853 §5.4; an `a=ssrc` would make it a
    // stream of its own).
    if let Some(s) = sender.filter(|_| media.send_layers.is_empty()) {
        let mut ssrcs = vec![s.ssrc];
        if !media.rtx.is_empty() {
            m.attributes.push(Attribute::SsrcGroup(SsrcGroup {
                semantics: "FID".to_owned(),
                ssrcs: vec![s.ssrc, s.rtx_ssrc],
            }));
            ssrcs.push(s.rtx_ssrc);
        }
        for ssrc in ssrcs {
            m.attributes.push(Attribute::Ssrc(Ssrc {
                ssrc,
                attribute: "cname".to_owned(),
                value: Some(s.cname.clone()),
            }));
            m.attributes.push(Attribute::Ssrc(Ssrc {
                ssrc,
                attribute: "msid".to_owned(),
                value: Some(format!("{} {}", s.stream_id, s.track_id)),
            }));
        }
    }
}

/// `a=rid` and `a=simulcast` (RFC 8851 §10, RFC 8853 §5.1): the layers
/// we send where we send, the peer's layers we receive where we receive
/// (an answer reverses the offer's direction, RFC 8853 §5.3).
fn write_simulcast(m: &mut MediaDescription, media: &LocalMedia<'_>) {
    let mut lists = Vec::new();
    for (layers, direction, on) in [
        (
            media.send_layers,
            RidDirection::Send,
            sends(media.direction),
        ),
        (
            media.receive_layers,
            RidDirection::Recv,
            receives(media.direction),
        ),
    ] {
        if layers.is_empty() || !on || media.rid_extension.is_none() {
            continue;
        }
        for layer in layers {
            m.attributes.push(Attribute::Rid(Rid {
                id: layer.id.clone(),
                direction,
                params: None,
            }));
        }
        lists.push(SimulcastList {
            direction,
            streams: layers.iter().map(|l| vec![l.clone()]).collect(),
        });
    }
    if !lists.is_empty() {
        m.attributes.push(Attribute::Simulcast(Simulcast { lists }));
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
            .flat_map(|c| {
                let rtx = media.rtx.iter().filter(|r| r.apt == c.payload_type);
                std::iter::once(c.payload_type).chain(rtx.map(|r| r.payload_type))
            })
            .map(|pt| pt.to_string())
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
