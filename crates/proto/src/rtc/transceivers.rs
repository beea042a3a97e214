//! Transceivers (W3C webrtc-pc §5.4) and their part in offer/answer
//! (RFC 8829 §5.2.1, §5.3.1, §5.10): which `m=` line each one has, the
//! codecs and direction negotiated, and the tracks the peer announced.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use realtimer_sdp::{MediaDescription, MediaType, SessionDescription as Sdp, Setup};

use super::simulcast::ReceivedLayers;
use crate::error::{ModificationError, RtcError, SdpError, StateError};
use crate::event::RtcEvent;
use crate::jsep::media_section::{
    self as sdp_media, answer_codecs, answer_direction, LocalMedia, RemoteMedia, Rtx, SenderInfo,
    MID_EXTENSION_ID, TRANSPORT_CC_EXTENSION_ID,
};
use crate::jsep::{self, LocalSection};
use crate::track::{Codec, Direction, MediaKind, MediaRef, TrackInfo};

use super::rtcp::{ReceiveStream, SendStream};
use super::Rtc;

/// Most transceivers; a remote offer's sections past it are rejected
/// (they would stay for the connection's life).
const MAX_TRANSCEIVERS: usize = 256;

/// One `m=` line of the current negotiation, in order (RFC 8829 §5.2.2:
/// re-offers keep every line where it was).
#[derive(Debug, Clone)]
pub(crate) enum MLine {
    /// The data section, with its mid.
    Data(String),
    /// A transceiver's section, with its mid.
    Media(MediaRef, String),
    /// A rejected section (port 0), as we write it.
    Rejected(MediaDescription),
}

impl MLine {
    pub(super) fn mid(&self) -> Option<&str> {
        match self {
            MLine::Data(mid) | MLine::Media(_, mid) => Some(mid),
            MLine::Rejected(m) => m.mid(),
        }
    }
}

/// What an offer changes in a transceiver, saved before it is applied so
/// a rollback can put it back (W3C webrtc-pc §4.4.1.5, RFC 8829 §5.7).
#[derive(Debug, Clone)]
struct Negotiated {
    mid: Option<String>,
    local_direction: Option<Direction>,
    offered_direction: Option<Direction>,
    codecs: Vec<Codec>,
    rtx: Vec<Rtx>,
    mid_extension: Option<u8>,
    transport_cc_extension: Option<u8>,
    audio_level_extension: Option<u8>,
    rid_extensions: (Option<u8>, Option<u8>),
    remote: Option<RemoteMedia>,
}

/// The m-lines and transceivers before the pending offer.
#[derive(Debug, Clone)]
pub(crate) struct MediaSnapshot {
    m_lines: Vec<MLine>,
    transceivers: Vec<Negotiated>,
}

/// An RTCRtpTransceiver: one track each way in one `m=` section.
#[derive(Debug)]
pub(crate) struct Transceiver {
    pub(super) kind: MediaKind,
    /// Made by a remote offer that was rolled back, without a track:
    /// gone for negotiation (W3C webrtc-pc §4.4.1.5 removes it).
    pub(super) stopped: bool,
    /// Its `a=mid` once it is in a description.
    pub(super) mid: Option<String>,
    /// What the application wants (`direction`).
    pub(super) direction: Direction,
    /// The direction written in our last applied description.
    pub(super) local_direction: Option<Direction>,
    /// The direction of the peer's last applied offer, when we answered
    /// it (our answer's direction derives from it).
    pub(super) offered_direction: Option<Direction>,
    /// Our track, once added.
    pub(super) sender: Option<SenderInfo>,
    /// Made by [`Rtc::add_track`]: only such a transceiver may take an
    /// `m=` section a remote offer adds (RFC 8829 §5.10); one made by
    /// `addTransceiver` (or [`Rtc::add_send_track`]) keeps its own.
    made_by_add_track: bool,
    /// The negotiated codecs (ours before the first negotiation).
    pub(super) codecs: Vec<Codec>,
    /// `setCodecPreferences` (W3C webrtc-pc §5.4, [[PreferredCodecs]]):
    /// the codecs this transceiver offers and accepts, in this order,
    /// instead of all of the configuration's; `None` when not set.
    preferred_codecs: Option<Vec<Codec>>,
    /// The negotiated RTX payload types (RFC 4588), ours before the first
    /// negotiation; retransmissions go on our RTX SSRC where one covers
    /// the packet's payload type.
    pub(super) rtx: Vec<Rtx>,
    /// The MID header extension's id, if negotiated (RFC 8843 §15).
    pub(super) mid_extension: Option<u8>,
    /// The transport-wide sequence number extension's id, if negotiated
    /// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2).
    pub(super) transport_cc_extension: Option<u8>,
    /// The audio level extension's id, if negotiated (RFC 6464): each
    /// received packet's level is told in [`crate::RtcEvent::AudioLevel`].
    pub(super) audio_level_extension: Option<u8>,
    /// The level our next packets on it carry, where the audio level
    /// extension is negotiated ([`Rtc::set_audio_level`]).
    pub(super) sent_audio_level: Option<realtimer_rtp::AudioLevel>,
    /// The ids of the rid and repaired-rid extensions, if negotiated
    /// (RFC 8852 §3): the peer's simulcast layers are told apart by them.
    pub(super) rid_extensions: (Option<u8>, Option<u8>),
    /// The SSRCs of the peer's simulcast layers, learned from packets.
    pub(super) received_layers: ReceivedLayers,
    /// The peer's section as last applied.
    pub(super) remote: Option<RemoteMedia>,
    /// `track` fired for the peer's track.
    pub(super) track_fired: bool,
    /// What we sent, for sender reports (the first simulcast layer's).
    pub(super) send: SendStream,
    /// Our simulcast layers' rids, lowest first (RFC 8853); empty
    /// without simulcast.
    pub(super) send_rids: Vec<realtimer_sdp::SimulcastRid>,
    /// The layers after the first, which sends on `sender`'s SSRCs and
    /// `send`.
    pub(super) send_layers: Vec<super::simulcast::SendLayer>,
    /// What the peer sent, by SSRC, for receiver reports.
    pub(super) receive: Vec<ReceiveStream>,
}

/// The peer's RTX payload types for codecs we kept (RFC 4588 §8.6; an
/// answer repeats the offerer's numbers, RFC 8829 §5.3.1).
fn negotiated_rtx(rm: &RemoteMedia, codecs: &[Codec]) -> Vec<Rtx> {
    rm.rtx
        .iter()
        .filter(|r| codecs.iter().any(|c| c.payload_type == r.apt))
        .copied()
        .collect()
}

impl Transceiver {
    /// Whether the negotiated session lets us send on it.
    pub(super) fn can_send(&self) -> bool {
        self.local_direction.is_some_and(sdp_media::sends)
            && self
                .remote
                .as_ref()
                .is_some_and(|r| sdp_media::receives(r.direction))
            && !self.codecs.is_empty()
    }

    /// The peer's simulcast layers we receive: those it offered or
    /// answered with the rid extension negotiated (RFC 8853 §5.3).
    pub(super) fn receive_layers(&self) -> &[realtimer_sdp::SimulcastRid] {
        match &self.remote {
            Some(rm) if self.rid_extensions.0.is_some() => &rm.send_layers,
            _ => &[],
        }
    }

    fn negotiated(&self) -> Negotiated {
        Negotiated {
            mid: self.mid.clone(),
            local_direction: self.local_direction,
            offered_direction: self.offered_direction,
            codecs: self.codecs.clone(),
            rtx: self.rtx.clone(),
            mid_extension: self.mid_extension,
            transport_cc_extension: self.transport_cc_extension,
            audio_level_extension: self.audio_level_extension,
            rid_extensions: self.rid_extensions,
            remote: self.remote.clone(),
        }
    }

    fn restore(&mut self, n: Negotiated) {
        self.mid = n.mid;
        self.local_direction = n.local_direction;
        self.offered_direction = n.offered_direction;
        self.codecs = n.codecs;
        self.rtx = n.rtx;
        self.mid_extension = n.mid_extension;
        self.transport_cc_extension = n.transport_cc_extension;
        self.audio_level_extension = n.audio_level_extension;
        self.rid_extensions = n.rid_extensions;
        self.remote = n.remote;
    }

    /// The direction our next description writes.
    fn wanted_direction(&self) -> Direction {
        match self.offered_direction {
            Some(offered) => answer_direction(offered, self.direction),
            None => self.direction,
        }
    }
}

/// The audio level extension (RFC 6464) we offer in a section of
/// `kind`: in audio ones, so an SFU of ours can tell who speaks.
fn own_audio_level(kind: MediaKind) -> Option<u8> {
    (kind == MediaKind::Audio).then_some(sdp_media::AUDIO_LEVEL_EXTENSION_ID)
}

/// The smallest decimal mid not in `used`.
fn free_mid<'a>(used: impl Iterator<Item = &'a str> + Clone) -> String {
    (0u32..)
        .map(|n| n.to_string())
        .find(|n| !used.clone().any(|u| u == n))
        .unwrap_or_default()
}

/// The media half of the connection (RFC 3550, 3711, 4585, 8843): the
/// transceivers and their m-lines, SRTP, the RTCP and NACK timers and the
/// queues between the application and the wire.
#[derive(Debug)]
pub(super) struct MediaSession {
    /// RTCRtpTransceivers, indexed by [`crate::MediaRef`].
    pub(super) transceivers: Vec<Transceiver>,
    /// The m-lines of the current (or pending) negotiation, in order.
    pub(super) m_lines: Vec<MLine>,
    /// The m-lines and transceivers before the pending offer (rollback).
    pub(super) media_before_offer: Option<MediaSnapshot>,
    /// Our RTCP CNAME (RFC 7022: random per connection).
    pub(super) cname: String,
    /// How many SSRCs we drew (seeds the next one).
    pub(super) ssrc_generation: u64,
    /// The SSRC of our RTCP when we send no track (RFC 3550 §6.4.2).
    pub(super) receiver_ssrc: u32,
    /// SRTP once DTLS exported the keys.
    pub(super) srtp: Option<super::rtp::Srtp>,
    /// Protected media datagrams for [`Rtc::poll_transmit`] (bounded:
    /// [`rtp::MAX_MEDIA_QUEUE`]).
    pub(super) media_out: std::collections::VecDeque<bytes::Bytes>,
    /// A reused buffer for plain RTP and RTCP.
    pub(super) media_buffer: Vec<u8>,
    /// Remote SSRC to transceiver, learned from packets (RFC 8843 §9.2).
    pub(super) ssrc_routes: std::collections::HashMap<u32, crate::track::MediaRef>,
    /// Received RTP packets in `events`.
    pub(super) rtp_events: usize,
    /// When the next RTCP reports are due.
    pub(super) next_report: Option<std::time::Instant>,
    /// When to ask the peer for missing video packets next (generic
    /// NACK, RFC 4585 §6.2.1), while some are missing.
    pub(super) next_nack: Option<std::time::Instant>,
    /// SRTP or SRTCP packets that failed authentication or replay checks.
    pub(super) unprotect_failures: u64,
    /// Transport-wide congestion control: our estimator, our feedback.
    pub(super) congestion: super::congestion::Congestion,
}

impl Rtc {
    /// addTrack (W3C webrtc-pc §5.1): sends a track of `kind` in stream
    /// `stream_id`. Reuses a transceiver of that kind the peer's offer
    /// created and no track was added to yet, else adds one (sendrecv),
    /// which needs negotiation.
    pub fn add_track(
        &mut self,
        kind: MediaKind,
        stream_id: &str,
        track_id: &str,
    ) -> Result<MediaRef, RtcError> {
        self.check_open()?;
        let sender = self.new_sender(stream_id, track_id);
        let reusable = self
            .media
            .transceivers
            .iter()
            .position(|t| t.kind == kind && t.sender.is_none() && !t.stopped);
        let r = match reusable {
            Some(i) => MediaRef(i as u32),
            None => {
                let r = self.new_transceiver(kind, Direction::SendRecv);
                self.media.transceivers[r.0 as usize].made_by_add_track = true;
                r
            }
        };
        Ok(self.attach_sender(r, sender))
    }

    /// Puts `sender` on the transceiver `r`: its direction gains `send`
    /// (a new `sendrecv` or `sendonly` one keeps its own), and the change
    /// needs negotiation.
    pub(super) fn attach_sender(&mut self, r: MediaRef, sender: SenderInfo) -> MediaRef {
        let t = &mut self.media.transceivers[r.0 as usize];
        t.direction = sdp_media::direction(true, sdp_media::receives(t.direction));
        t.send = SendStream::new(sender.ssrc);
        t.sender = Some(sender);
        self.update_negotiation_needed();
        r
    }

    /// Our track's sender, with a new SSRC.
    pub(super) fn new_sender(&mut self, stream_id: &str, track_id: &str) -> SenderInfo {
        SenderInfo {
            ssrc: self.random_ssrc(),
            rtx_ssrc: self.random_ssrc(),
            cname: self.media.cname.clone(),
            stream_id: stream_id.to_owned(),
            track_id: track_id.to_owned(),
        }
    }

    /// addTransceiver (W3C webrtc-pc §5.1) without a track: e.g.
    /// `recvonly` to receive a kind of media.
    pub fn add_transceiver(
        &mut self,
        kind: MediaKind,
        direction: Direction,
    ) -> Result<MediaRef, RtcError> {
        self.check_open()?;
        let r = self.new_transceiver(kind, direction);
        self.update_negotiation_needed();
        Ok(r)
    }

    /// Every transceiver, in the order they were made (W3C webrtc-pc
    /// §4.4.1.6, getTransceivers).
    pub fn transceivers(&self) -> impl Iterator<Item = MediaRef> {
        (0..self.media.transceivers.len()).map(|i| MediaRef(i as u32))
    }

    /// A transceiver's `mid`, once negotiated.
    pub fn transceiver_mid(&self, media: MediaRef) -> Option<&str> {
        self.transceiver(media)?.mid.as_deref()
    }

    /// A transceiver's kind.
    pub fn transceiver_kind(&self, media: MediaRef) -> Option<MediaKind> {
        Some(self.transceiver(media)?.kind)
    }

    /// A transceiver's negotiated codecs, the preferred first (empty
    /// before negotiation or when rejected).
    pub fn transceiver_codecs(&self, media: MediaRef) -> &[Codec] {
        self.transceiver(media)
            .filter(|t| t.remote.is_some())
            .map_or(&[], |t| &t.codecs)
    }

    /// The audio level (RFC 6464) our next RTP packets on `media` carry,
    /// where the peer negotiated the extension (`None`: none). An SFU
    /// passes on the publisher's, an application measures its own.
    pub fn set_audio_level(
        &mut self,
        media: MediaRef,
        level: Option<realtimer_rtp::AudioLevel>,
    ) -> Result<(), RtcError> {
        let t = self
            .media
            .transceivers
            .get_mut(media.0 as usize)
            .ok_or(StateError::UnknownMedia { media })?;
        t.sent_audio_level = level;
        Ok(())
    }

    pub(super) fn transceiver(&self, media: MediaRef) -> Option<&Transceiver> {
        self.media.transceivers.get(media.0 as usize)
    }

    /// setCodecPreferences (W3C webrtc-pc §5.4): the transceiver offers
    /// and accepts only `codecs`, in this order (the first is the one the
    /// peer should send and, in our offer, the one it answers first), from
    /// its next offer or answer on. Each must be one of the configuration's
    /// ([`RtcConfig::codecs`](super::RtcConfig)) of the transceiver's kind,
    /// matched by name, clock rate and the parameters that make payloads
    /// incompatible; its payload type is ours. RTX is added for each kept
    /// video codec as usual. An empty list goes back to the configuration's
    /// codecs. A transceiver already negotiated keeps its codecs until the
    /// next negotiation it answers.
    pub fn set_codec_preferences(
        &mut self,
        media: MediaRef,
        codecs: &[Codec],
    ) -> Result<(), RtcError> {
        self.check_open()?;
        let kind = self
            .transceiver(media)
            .ok_or(StateError::UnknownMedia { media })?
            .kind;
        let mut preferred: Vec<Codec> = Vec::with_capacity(codecs.len());
        for codec in codecs {
            let ours = self
                .config
                .codecs
                .iter()
                .find(|o| o.kind() == kind && o.matches(codec))
                .ok_or_else(|| ModificationError::CodecNotSupported {
                    media,
                    kind,
                    codec: format!("{}/{}", codec.name, codec.clock_rate),
                })?;
            if !preferred.contains(ours) {
                preferred.push(ours.clone());
            }
        }
        let t = &mut self.media.transceivers[media.0 as usize];
        t.preferred_codecs = (!preferred.is_empty()).then_some(preferred);
        if t.remote.is_none() {
            let codecs = self.offered_codecs(media);
            let t = &mut self.media.transceivers[media.0 as usize];
            t.rtx = sdp_media::offer_rtx(&codecs);
            t.codecs = codecs;
        }
        Ok(())
    }

    /// The codecs transceiver `media` offers and accepts: its preferences,
    /// else the configuration's of its kind.
    fn offered_codecs(&self, media: MediaRef) -> Vec<Codec> {
        let t = &self.media.transceivers[media.0 as usize];
        t.preferred_codecs
            .clone()
            .unwrap_or_else(|| self.own_codecs(t.kind))
    }

    /// Our codecs of `kind`, as a transceiver offers them.
    fn own_codecs(&self, kind: MediaKind) -> Vec<Codec> {
        self.config
            .codecs
            .iter()
            .filter(|c| c.kind() == kind)
            .cloned()
            .collect()
    }

    pub(super) fn new_transceiver(&mut self, kind: MediaKind, direction: Direction) -> MediaRef {
        let r = MediaRef(self.media.transceivers.len() as u32);
        let codecs = self.own_codecs(kind);
        let rtx = sdp_media::offer_rtx(&codecs);
        let transport_cc = self
            .config
            .transport_cc
            .then_some(TRANSPORT_CC_EXTENSION_ID);
        self.media.transceivers.push(Transceiver {
            kind,
            stopped: false,
            mid: None,
            direction,
            local_direction: None,
            offered_direction: None,
            sender: None,
            made_by_add_track: false,
            preferred_codecs: None,
            codecs,
            rtx,
            mid_extension: Some(MID_EXTENSION_ID),
            transport_cc_extension: transport_cc,
            audio_level_extension: own_audio_level(kind),
            sent_audio_level: None,
            rid_extensions: (None, None),
            received_layers: ReceivedLayers::default(),
            remote: None,
            track_fired: false,
            send: SendStream::new(0),
            send_rids: Vec::new(),
            send_layers: Vec::new(),
            receive: Vec::new(),
        });
        r
    }

    /// A random non-zero SSRC (RFC 3550 §8.1), from the seed.
    pub(super) fn random_ssrc(&mut self) -> u32 {
        self.media.ssrc_generation += 1;
        let mut rng = StdRng::seed_from_u64(
            self.config.seed
                ^ self
                    .media
                    .ssrc_generation
                    .wrapping_mul(0xD1B5_4A32_D192_ED03),
        );
        rng.random_range(1..=u32::MAX)
    }

    /// W3C webrtc-pc §4.7.3 for transceivers: one without a mid, or whose
    /// direction differs from the one in our last description.
    pub(super) fn media_negotiation_needed(&self) -> bool {
        self.media.transceivers.iter().any(|t| {
            !t.stopped && (t.mid.is_none() || t.local_direction != Some(t.wanted_direction()))
        })
    }

    /// Saves the m-lines and transceivers before an offer is applied
    /// (the first of a series: a rollback goes back to stable).
    pub(super) fn save_media(&mut self) {
        if self.media.media_before_offer.is_none() {
            self.media.media_before_offer = Some(MediaSnapshot {
                m_lines: self.media.m_lines.clone(),
                transceivers: self
                    .media
                    .transceivers
                    .iter()
                    .map(Transceiver::negotiated)
                    .collect(),
            });
        }
    }

    /// The offer/answer exchange completed: nothing to roll back to.
    pub(super) fn forget_saved_media(&mut self) {
        self.media.media_before_offer = None;
    }

    /// Rollback: the m-lines and transceivers as before the offer.
    /// Transceivers the offer made are gone unless a track was added to
    /// them; those become new ones, to negotiate again.
    pub(super) fn restore_media(&mut self) {
        let Some(saved) = self.media.media_before_offer.take() else {
            return;
        };
        self.media.m_lines = saved.m_lines;
        let mut saved = saved.transceivers.into_iter();
        for i in 0..self.media.transceivers.len() {
            match saved.next() {
                Some(n) => self.media.transceivers[i].restore(n),
                None => {
                    let kind = self.media.transceivers[i].kind;
                    let codecs = self.offered_codecs(MediaRef(i as u32));
                    let transport_cc = self
                        .config
                        .transport_cc
                        .then_some(TRANSPORT_CC_EXTENSION_ID);
                    let t = &mut self.media.transceivers[i];
                    t.stopped = t.sender.is_none();
                    t.restore(Negotiated {
                        mid: None,
                        local_direction: None,
                        offered_direction: None,
                        rtx: sdp_media::offer_rtx(&codecs),
                        codecs,
                        mid_extension: Some(MID_EXTENSION_ID),
                        transport_cc_extension: transport_cc,
                        audio_level_extension: own_audio_level(kind),
                        rid_extensions: (None, None),
                        remote: None,
                    });
                }
            }
        }
    }

    /// The m-lines of our next offer: the current ones in place, then new
    /// transceivers, then a data section if none was negotiated and this
    /// is the first offer or a channel waits for one.
    pub(super) fn offer_m_lines(&self) -> Vec<MLine> {
        let mut lines = self.media.m_lines.clone();
        for (i, t) in self.media.transceivers.iter().enumerate() {
            if t.mid.is_none() && !t.stopped {
                let mid = free_mid(
                    lines.iter().filter_map(MLine::mid).chain(
                        self.media
                            .transceivers
                            .iter()
                            .filter_map(|t| t.mid.as_deref()),
                    ),
                );
                lines.push(MLine::Media(MediaRef(i as u32), mid));
            }
        }
        let has_data = lines.iter().any(|l| matches!(l, MLine::Data(_)));
        if !has_data && (self.media.m_lines.is_empty() || !self.data.slots.is_empty()) {
            let mid = free_mid(lines.iter().filter_map(MLine::mid));
            // A first data-only offer keeps the data section at mid 0.
            lines.push(MLine::Data(mid));
        }
        lines
    }

    /// Writes `lines` as an offer (`setup` actpass) or answer.
    pub(super) fn write_m_lines(
        &self,
        local: &jsep::LocalTransport,
        setup: Setup,
        lines: &[MLine],
    ) -> String {
        let answering = setup != Setup::ActPass;
        let sections: Vec<LocalSection<'_>> = lines
            .iter()
            .map(|l| match l {
                MLine::Data(mid) => LocalSection::Data(mid),
                MLine::Media(r, mid) => {
                    let t = &self.media.transceivers[r.0 as usize];
                    LocalSection::Media(LocalMedia {
                        kind: t.kind,
                        mid,
                        direction: if answering {
                            t.wanted_direction()
                        } else {
                            t.direction
                        },
                        codecs: &t.codecs,
                        rtx: &t.rtx,
                        mid_extension: t.mid_extension,
                        transport_cc_extension: t.transport_cc_extension,
                        audio_level_extension: t.audio_level_extension,
                        rid_extension: t.rid_extensions.0,
                        repaired_rid_extension: t.rid_extensions.1,
                        sender: t.sender.as_ref(),
                        send_layers: t.offered_send_layers(answering),
                        receive_layers: t.receive_layers(),
                    })
                }
                MLine::Rejected(m) => LocalSection::Rejected(m),
            })
            .collect();
        jsep::write_description(
            local,
            setup,
            self.jsep.session_id,
            self.jsep.session_version,
            &sections,
        )
    }

    /// setLocalDescription: the transceivers take the mids and directions
    /// of our description.
    pub(super) fn apply_local_m_lines(&mut self, offer: bool) {
        if offer {
            self.media.m_lines = self.offer_m_lines();
        }
        for line in &self.media.m_lines {
            if let MLine::Media(r, mid) = line {
                let t = &mut self.media.transceivers[r.0 as usize];
                t.mid = Some(mid.clone());
                if offer {
                    t.offered_direction = None;
                }
                t.local_direction = Some(t.wanted_direction());
            }
        }
    }

    /// setRemoteDescription: a remote offer's sections become our m-lines
    /// (a transceiver per audio/video section: the one with its mid, one
    /// added by addTrack and not yet associated, or a new recvonly one;
    /// RFC 8829 §5.10); an answer's codecs, MID extension and direction
    /// apply to the transceivers we offered. `track` fires for each
    /// section the peer newly sends on.
    pub(super) fn apply_remote_m_lines(&mut self, desc: &Sdp, offer: bool) {
        if offer {
            let mut lines = Vec::with_capacity(desc.media.len());
            for m in &desc.media {
                let data_taken = lines.iter().any(|l| matches!(l, MLine::Data(_)));
                let line = match (jsep::is_data_section(m), sdp_media::remote_media(m)) {
                    (true, _) if !data_taken => m.mid().map(|mid| MLine::Data(mid.to_owned())),
                    (_, Some(rm)) => self.accept_remote_media(rm),
                    _ => None,
                };
                lines.push(line.unwrap_or_else(|| MLine::Rejected(jsep::rejected_section(m))));
            }
            self.media.m_lines = lines;
        } else {
            for (i, m) in desc.media.iter().enumerate() {
                let Some(MLine::Media(r, _)) = self.media.m_lines.get(i).cloned() else {
                    continue;
                };
                let transport_cc = self.config.transport_cc;
                let ours = self.offered_codecs(r);
                let t = &mut self.media.transceivers[r.0 as usize];
                match sdp_media::remote_media(m) {
                    Some(rm) => {
                        t.codecs = rm
                            .codecs
                            .iter()
                            .filter(|c| ours.iter().any(|o| o.matches(c)))
                            .cloned()
                            .collect();
                        t.rtx = negotiated_rtx(&rm, &t.codecs);
                        t.mid_extension = rm.mid_extension;
                        t.transport_cc_extension =
                            rm.transport_cc_extension.filter(|_| transport_cc);
                        t.audio_level_extension = rm.audio_level_extension;
                        t.rid_extensions = (rm.rid_extension, rm.repaired_rid_extension);
                        t.remote = Some(rm);
                    }
                    None => {
                        t.codecs.clear();
                        t.remote = None;
                        self.media.m_lines[i] = MLine::Rejected(jsep::rejected_section(m));
                    }
                }
            }
        }
        self.fire_tracks();
    }

    /// RFC 3264 §6, RFC 8829 §5.10: an answer has our offer's `m=` lines,
    /// in order, each with its media type and, unless rejected, its mid.
    pub(super) fn check_answer_m_lines(&self, desc: &Sdp) -> Result<(), RtcError> {
        if desc.media.len() != self.media.m_lines.len() {
            return Err(SdpError::AnswerSectionCount {
                answer: desc.media.len(),
                offer: self.media.m_lines.len(),
            }
            .into());
        }
        for (i, (m, line)) in desc.media.iter().zip(&self.media.m_lines).enumerate() {
            let media_type = match line {
                MLine::Data(_) => MediaType::Application,
                MLine::Media(r, _) => {
                    sdp_media::media_type(self.media.transceivers[r.0 as usize].kind)
                }
                MLine::Rejected(ours) => ours.media.clone(),
            };
            if m.media != media_type || (m.port != 0 && m.mid() != line.mid()) {
                return Err(SdpError::AnswerSectionMismatch { index: i }.into());
            }
        }
        Ok(())
    }

    /// The transceiver for one of the peer's offered sections.
    fn accept_remote_media(&mut self, rm: RemoteMedia) -> Option<MLine> {
        let existing = self
            .media
            .transceivers
            .iter()
            .position(|t| t.mid.as_deref() == Some(rm.mid.as_str()))
            .or_else(|| {
                // RFC 8829 §5.10: a section the peer would receive on
                // takes the first unassociated, unstopped transceiver
                // addTrack made; any other keeps the direction its maker
                // chose (a sendonly one would answer the peer's camera
                // "sendonly" and leave the peer unable to send).
                self.media.transceivers.iter().position(|t| {
                    t.mid.is_none()
                        && t.kind == rm.kind
                        && t.made_by_add_track
                        && !t.stopped
                        && sdp_media::receives(rm.direction)
                })
            });
        let ours = match existing {
            Some(i) if self.media.transceivers[i].kind == rm.kind => {
                self.offered_codecs(MediaRef(i as u32))
            }
            _ => self.config.codecs.clone(),
        };
        let codecs = answer_codecs(&ours, &rm.codecs, rm.kind);
        let transport_cc = self.config.transport_cc;
        if codecs.is_empty()
            || existing.is_some_and(|i| self.media.transceivers[i].kind != rm.kind)
            || (existing.is_none() && self.media.transceivers.len() >= MAX_TRANSCEIVERS)
        {
            return None;
        }
        let r = match existing {
            Some(i) => MediaRef(i as u32),
            None => self.new_transceiver(rm.kind, Direction::RecvOnly),
        };
        let t = &mut self.media.transceivers[r.0 as usize];
        t.mid = Some(rm.mid.clone());
        t.rtx = negotiated_rtx(&rm, &codecs);
        t.codecs = codecs;
        t.mid_extension = rm.mid_extension;
        t.transport_cc_extension = rm.transport_cc_extension.filter(|_| transport_cc);
        t.audio_level_extension = rm.audio_level_extension;
        t.rid_extensions = (rm.rid_extension, rm.repaired_rid_extension);
        t.offered_direction = Some(rm.direction);
        let mid = rm.mid.clone();
        t.remote = Some(rm);
        Some(MLine::Media(r, mid))
    }

    /// RFC 8829 §5.10 / W3C "process remote tracks": `track` for every
    /// transceiver the peer now sends on.
    fn fire_tracks(&mut self) {
        for (i, t) in self.media.transceivers.iter_mut().enumerate() {
            let Some(rm) = &t.remote else { continue };
            if t.track_fired || !sdp_media::sends(rm.direction) {
                continue;
            }
            t.track_fired = true;
            self.events.push_back(RtcEvent::Track(
                MediaRef(i as u32),
                TrackInfo {
                    kind: t.kind,
                    mid: rm.mid.clone(),
                    stream_ids: rm.stream_ids.clone(),
                    track_id: rm.track_id.clone(),
                    codecs: t.codecs.clone(),
                    rids: t.receive_layers().iter().map(|l| l.id.clone()).collect(),
                },
            ));
        }
    }
}
