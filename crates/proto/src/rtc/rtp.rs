//! The media data path: SRTP in and out (RFC 3711, keys from DTLS-SRTP,
//! RFC 5764 §4.2), routing RTP to transceivers (RFC 8843 §9.2), writing
//! our tracks' packets. RTCP is in [`super::rtcp`].

use std::time::Instant;

use bytes::Bytes;
use realtimer_dtls::{SrtpKeyingMaterial, SrtpProfile};
use realtimer_rtp::{Extension, RtpHeader};
use tracing::{debug, trace};

use realtimer_bwe::{PacketKind, ProbeClusterId};

use crate::error::{ArgumentError, OperationError, RtcError, StateError};
use crate::event::RtcEvent;
use crate::track::{MediaKind, MediaRef, RtpPacket};

use super::congestion::Outgoing;
use super::rtcp::{PlainPacket, ReceiveStream};
use super::Rtc;

/// The SRTP profiles DTLS offers, most preferred first (RFC 7714 GCM as
/// browsers prefer it, then the profile every WebRTC stack has, RFC 8827
/// §6.5).
pub const SRTP_PROFILES: [SrtpProfile; 2] =
    [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80];

/// Most protected media datagrams waiting for [`Rtc::poll_transmit`]; past
/// it [`Rtc::write_rtp`] says the queue is full.
pub const MAX_MEDIA_QUEUE: usize = 1024;

/// Most received RTP packets waiting in the event queue; past it newer
/// ones are dropped (and counted): late media is useless.
pub const MAX_RTP_EVENTS: usize = 1024;

/// Most remote SSRCs remembered (RFC 8843 §9.2 routing table).
const MAX_SSRC_ROUTES: usize = 256;

/// What the pacer counts for a packet beyond its payload: the RTP header
/// with MID and transport-wide sequence extensions, and the SRTP tag.
const PACED_HEADER_ESTIMATE: usize = 40;
/// RTP padding carries at most this many bytes a packet (its length is
/// one byte, RFC 3550 §5.1).
const MAX_PADDING_PER_PACKET: usize = 255;
/// Less than this left after payload padding is not worth a packet of
/// its own (its headers would be a third of it).
const MIN_PADDING_REMAINDER: usize = 100;
/// Payload padding looks this far back from the newest packet for ones
/// still kept.
const PAYLOAD_PADDING_SEARCH: u16 = 16;

/// The header fields of a packet received, as its stream knows them.
#[derive(Debug, Clone, Copy)]
struct Received {
    /// Unwrapped from RTX: delivered only if still missing.
    repair: bool,
    ssrc: u32,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
    marker: bool,
    /// Its audio level (RFC 6464), where negotiated and present.
    audio_level: Option<realtimer_rtp::AudioLevel>,
}

/// Which of a track's streams a packet goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// The media SSRC.
    Media,
    /// The RTX SSRC (RFC 4588).
    Rtx,
}

/// The fixed-header fields of one of our packets; the SSRC and the
/// extensions come from its transceiver.
#[derive(Debug, Clone, Copy)]
struct RtpParts {
    marker: bool,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
}

/// SRTP contexts of the connection: ours protects, the peer's unprotects.
pub(crate) struct Srtp {
    pub(crate) local: realtimer_srtp::SrtpContext,
    pub(crate) remote: realtimer_srtp::SrtpContext,
}

impl std::fmt::Debug for Srtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Srtp { .. }")
    }
}

/// Why SRTP could not start from the keys DTLS exported.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SrtpStartError {
    /// DTLS agreed on a profile the SRTP crate does not implement.
    #[error("no SRTP for {0}")]
    Profile(SrtpProfile),
    /// The keys do not fit the profile.
    #[error(transparent)]
    Context(realtimer_srtp::SrtpError),
}

impl Srtp {
    /// The contexts for the keys DTLS exported.
    pub(crate) fn new(keys: &SrtpKeyingMaterial) -> Result<Srtp, SrtpStartError> {
        let profile = match keys.profile {
            SrtpProfile::Aes128CmSha1_80 => realtimer_srtp::ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpProfile::Aes128CmSha1_32 => realtimer_srtp::ProtectionProfile::Aes128CmHmacSha1_32,
            SrtpProfile::AeadAes128Gcm => realtimer_srtp::ProtectionProfile::AeadAes128Gcm,
            SrtpProfile::AeadAes256Gcm => realtimer_srtp::ProtectionProfile::AeadAes256Gcm,
            other => return Err(SrtpStartError::Profile(other)),
        };
        let context = |(key, salt)| {
            realtimer_srtp::SrtpContext::new(profile, key, salt).map_err(SrtpStartError::Context)
        };
        let local = context(keys.local())?;
        let remote = context(keys.remote())?;
        Ok(Srtp { local, remote })
    }
}

impl Rtc {
    /// DTLS connected with SRTP keys: media can flow.
    pub(super) fn start_srtp(&mut self, keys: &SrtpKeyingMaterial) {
        match Srtp::new(keys) {
            Ok(srtp) => {
                debug!(profile = %keys.profile, "SRTP ready");
                self.media.srtp = Some(srtp);
            }
            Err(e) => debug!("SRTP could not start: {e}"),
        }
    }

    /// An SRTP or SRTCP datagram (RFC 7983 §7: first byte 128–191; RFC
    /// 5761 §4 tells RTCP by its packet type). `arrival`: when it came
    /// ([`Rtc::handle_receive_arrived`]).
    pub(super) fn handle_srtp(&mut self, now: Instant, arrival: Instant, contents: &[u8]) {
        let Some(srtp) = &mut self.media.srtp else {
            trace!("SRTP before the keys: dropped");
            return;
        };
        let mut plain = std::mem::take(&mut self.media.media_buffer);
        plain.clear();
        if realtimer_rtp::is_rtcp(contents) {
            match srtp.remote.unprotect_rtcp(contents, &mut plain) {
                Ok(()) => self.handle_rtcp(now, &plain),
                Err(e) => {
                    self.media.unprotect_failures += 1;
                    trace!("SRTCP refused: {e}");
                }
            }
        } else {
            match srtp.remote.unprotect_rtp(contents, &mut plain) {
                Ok(()) => self.handle_rtp(now, arrival, &plain),
                Err(e) => {
                    self.media.unprotect_failures += 1;
                    trace!("SRTP refused: {e}");
                }
            }
        }
        self.media.media_buffer = plain;
    }

    /// RFC 8843 §9.2: the transceiver of a packet, by its MID header
    /// extension, else the SSRC it came with before, else a payload type
    /// only one receiving transceiver has; and whether the MID said so.
    fn route(&self, packet: &realtimer_rtp::RtpPacket<'_>) -> Option<(MediaRef, bool)> {
        let by_mid = packet.extensions().and_then(|ext| {
            self.media.transceivers.iter().position(|t| {
                let (Some(id), Some(mid)) = (t.mid_extension, &t.mid) else {
                    return false;
                };
                ext.get(id) == Some(mid.as_bytes())
            })
        });
        if let Some(i) = by_mid {
            return Some((MediaRef(i as u32), true));
        }
        let index = self
            .media
            .ssrc_routes
            .get(&packet.ssrc())
            .copied()
            .or_else(|| {
                let pt = packet.payload_type();
                let mut takers = self.media.transceivers.iter().enumerate().filter(|(_, t)| {
                    t.remote.is_some() && t.codecs.iter().any(|c| c.payload_type == pt)
                });
                match (takers.next(), takers.next()) {
                    (Some((i, _)), None) => Some(MediaRef(i as u32)),
                    _ => None,
                }
            })?;
        Some((index, false))
    }

    pub(super) fn handle_rtp(&mut self, now: Instant, arrival: Instant, plain: &[u8]) {
        let packet = match realtimer_rtp::RtpPacket::parse(plain) {
            Ok(p) => p,
            Err(e) => {
                trace!("RTP does not parse: {e}");
                return;
            }
        };
        let Some((r, by_mid)) = self.route(&packet) else {
            trace!(ssrc = packet.ssrc(), "RTP for no transceiver: dropped");
            return;
        };
        let ssrc = packet.ssrc();
        let transport_cc = self.media.transceivers[r.0 as usize]
            .transport_cc_extension
            .and_then(|id| packet.extensions()?.get(id))
            .and_then(realtimer_rtp::parse_transport_sequence);
        if let Some(sequence) = transport_cc {
            self.media.congestion.received(arrival, sequence, ssrc);
        }
        // A MID updates what the SSRC was learned for (RFC 8843 §9.2).
        let known = self.media.ssrc_routes.contains_key(&ssrc);
        if (known && by_mid) || (!known && self.media.ssrc_routes.len() < MAX_SSRC_ROUTES) {
            self.media.ssrc_routes.insert(ssrc, r);
        }
        self.learn_layer(r, &packet);
        let t = &self.media.transceivers[r.0 as usize];
        let audio_level = t
            .audio_level_extension
            .and_then(|id| packet.extensions()?.get(id))
            .and_then(realtimer_rtp::AudioLevel::parse);
        let fields = Received {
            repair: false,
            ssrc,
            payload_type: packet.payload_type(),
            sequence_number: packet.sequence_number(),
            timestamp: packet.timestamp(),
            marker: packet.marker(),
            audio_level,
        };
        let payload = packet.payload();
        match t.rtx.iter().find(|x| x.payload_type == fields.payload_type) {
            Some(rtx) => {
                // RFC 4588 §4: the original sequence number, then the
                // original payload; less is padding (a probe).
                let Some((osn, original)) = payload.split_first_chunk::<2>() else {
                    return;
                };
                let original_ssrc = t
                    .remote
                    .as_ref()
                    .and_then(|rm| rm.rtx_ssrcs.iter().find(|(_, x)| *x == ssrc))
                    .map(|(m, _)| *m)
                    .or_else(|| t.received_layers.repaired_ssrc(ssrc))
                    .or_else(|| match &t.receive[..] {
                        [only] => Some(only.ssrc),
                        _ => None,
                    });
                let Some(original_ssrc) = original_ssrc else {
                    trace!(ssrc, "RTX for no known stream: dropped");
                    return;
                };
                let fields = Received {
                    repair: true,
                    ssrc: original_ssrc,
                    payload_type: rtx.apt,
                    sequence_number: u16::from_be_bytes(*osn),
                    // A repair's level is stale: the original's was told.
                    audio_level: None,
                    ..fields
                };
                self.receive_rtp(now, r, fields, original);
            }
            None => self.receive_rtp(now, r, fields, payload),
        }
    }

    /// The simulcast layer a packet names in its rid or repaired-rid
    /// extension (RFC 8852 §3): its SSRC is that layer's from now on.
    fn learn_layer(&mut self, r: MediaRef, packet: &realtimer_rtp::RtpPacket<'_>) {
        let t = &mut self.media.transceivers[r.0 as usize];
        let (Some(ext), (Some(rid_id), repaired_id)) = (packet.extensions(), t.rid_extensions)
        else {
            return;
        };
        let Some(rm) = t.remote.as_ref().filter(|rm| !rm.send_layers.is_empty()) else {
            return;
        };
        if let Some(rid) = ext.get(rid_id) {
            t.received_layers
                .learn(&rm.send_layers, rid, packet.ssrc(), false);
        }
        if let Some(rid) = repaired_id.and_then(|id| ext.get(id)) {
            t.received_layers
                .learn(&rm.send_layers, rid, packet.ssrc(), true);
        }
    }

    /// A packet of the peer's stream `fields.ssrc` on `r` (unwrapped from
    /// RTX if it came so): statistics, NACK bookkeeping, and the event
    /// unless it is padding.
    fn receive_rtp(&mut self, now: Instant, r: MediaRef, fields: Received, payload: &[u8]) {
        let t = &mut self.media.transceivers[r.0 as usize];
        let clock_rate = t
            .codecs
            .iter()
            .find(|c| c.payload_type == fields.payload_type)
            .map_or(90_000, |c| c.clock_rate);
        let ssrc = fields.ssrc;
        let stream = match t.receive.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => &mut t.receive[i],
            None if t.receive.len() < MAX_SSRC_ROUTES => {
                let nack = t.kind == MediaKind::Video;
                t.receive.push(ReceiveStream::new(ssrc, clock_rate, nack));
                t.receive.last_mut().expect("just pushed")
            }
            None => return,
        };
        if fields.repair && !stream.wants_repair(fields.sequence_number) {
            trace!(
                ssrc,
                seq = fields.sequence_number,
                "RTX of a packet not missing: dropped"
            );
            return;
        }
        let missing = stream.receive(now, fields.sequence_number, fields.timestamp, payload.len());
        if missing {
            // Ask for them soon (RFC 4585 §6.2.1).
            self.media.next_nack.get_or_insert(now);
        }
        if payload.is_empty() {
            // Padding (a probe, RFC 3550 §5.1): its sequence number is
            // counted, it is not media.
            return;
        }
        if self.media.rtp_events >= MAX_RTP_EVENTS {
            stream.discarded += 1;
            return;
        }
        self.media.rtp_events += 1;
        if let Some(level) = fields.audio_level {
            self.events.push_back(RtcEvent::AudioLevel(r, level));
        }
        self.events.push_back(RtcEvent::Rtp(
            r,
            RtpPacket {
                payload_type: fields.payload_type,
                sequence_number: fields.sequence_number,
                timestamp: fields.timestamp,
                marker: fields.marker,
                ssrc,
                payload: Bytes::copy_from_slice(payload),
            },
        ));
    }

    /// Sends an RTP packet of our track on `media` (RTCRtpSender): with
    /// the transceiver's SSRC and MID header extension (RFC 8843 §15), the
    /// application's payload type, timestamp and marker. The sequence
    /// number on the wire follows the application's steps, and a late
    /// packet (up to 64 back) keeps its place if that was never sent; a
    /// repeat, a larger step back or a jump of more than 3000 continues
    /// the track's own sequence instead, so an SRTP index is never reused
    /// (RFC 3711 §9.1) and the receiver sees no restart. Generic NACKs from
    /// the peer are answered from the packets last sent (RFC 4585 §6.2.1).
    /// Where transport-cc is negotiated the packet waits in the pacer
    /// (see [`Rtc::target_bitrate`] for what an encoder should produce).
    /// Fails when the transceiver may not send (not negotiated so, no
    /// track), with a payload type not negotiated there, before DTLS made
    /// the SRTP keys, or when the pacer or the send queue is full (poll
    /// transmits, then retry).
    pub fn write_rtp(
        &mut self,
        now: Instant,
        media: MediaRef,
        packet: &RtpPacket,
    ) -> Result<(), RtcError> {
        self.write_layer_rtp(now, media, 0, packet)
    }

    /// [`Rtc::write_rtp`] on our simulcast layer `layer` (an index into
    /// the layers the track was added with; 0 without simulcast).
    pub(super) fn write_layer_rtp(
        &mut self,
        now: Instant,
        media: MediaRef,
        layer: u8,
        packet: &RtpPacket,
    ) -> Result<(), RtcError> {
        self.check_open()?;
        let t = self
            .media
            .transceivers
            .get(media.0 as usize)
            .ok_or(StateError::UnknownMedia { media })?;
        if t.sender.is_none() {
            return Err(StateError::NoTrack { media }.into());
        }
        if !t.can_send() {
            return Err(StateError::NotSending { media }.into());
        }
        if !t
            .codecs
            .iter()
            .any(|c| c.payload_type == packet.payload_type)
        {
            return Err(ArgumentError::PayloadType {
                payload_type: packet.payload_type,
                media,
            }
            .into());
        }
        if self.media.srtp.is_none() {
            return Err(StateError::NoSrtpKeys.into());
        }
        let paced = self.paced(media);
        let room = if paced {
            self.media.congestion.pacer_has_room()
        } else {
            self.media.media_out.len() < MAX_MEDIA_QUEUE
        };
        if !room {
            return Err(RtcError::QueueFull);
        }
        let kind = t.kind;
        let t = &mut self.media.transceivers[media.0 as usize];
        let send = t
            .layer_stream_mut(layer)
            .ok_or(StateError::UnknownMedia { media })?;
        let wire = send.wire_sequence(packet.sequence_number);
        send.assign(now, (packet.sequence_number, wire), packet.timestamp);
        let outgoing = Outgoing::Media {
            media,
            layer,
            wire: wire.0,
            marker: packet.marker,
            payload_type: packet.payload_type,
            timestamp: packet.timestamp,
            payload: packet.payload.clone(),
        };
        if !paced {
            self.send_outgoing(now, outgoing, None);
            return Ok(());
        }
        let kind = match kind {
            MediaKind::Audio => PacketKind::Audio,
            _ => PacketKind::Video,
        };
        // Checked for room above; the estimate of the header's size does
        // not need to be exact for pacing.
        let size = packet.payload.len() + PACED_HEADER_ESTIMATE;
        if self
            .media
            .congestion
            .enqueue(now, kind, size, outgoing)
            .is_err()
        {
            return Err(RtcError::QueueFull);
        }
        self.send_paced(now);
        Ok(())
    }

    /// Writes, numbers and protects a packet the pacer (or an unpaced
    /// track) let go, into the send queue; it goes into the track's
    /// history for NACKs. A packet that cannot be written is dropped with
    /// a trace: its place on the wire stays a gap.
    pub(super) fn send_outgoing(
        &mut self,
        now: Instant,
        outgoing: Outgoing,
        probe: Option<ProbeClusterId>,
    ) {
        match outgoing {
            Outgoing::Retransmission { media, layer, wire } => {
                if let Some(bytes) = self.send_rtx_copy(now, (media, layer), wire, probe) {
                    if let Some(send) =
                        self.media.transceivers[media.0 as usize].layer_stream_mut(layer)
                    {
                        send.retransmitted.0 += bytes as u64;
                        send.retransmitted.1 += 1;
                    }
                    return;
                }
                let Some(send) = self
                    .media
                    .transceivers
                    .get_mut(media.0 as usize)
                    .and_then(|t| t.layer_stream_mut(layer))
                else {
                    return;
                };
                // Byte for byte otherwise: the same SRTP index on the same
                // bytes reveals nothing.
                if let Some(protected) = send.sent_packet(wire).filter(|p| !p.is_empty()) {
                    let protected = Bytes::copy_from_slice(protected);
                    send.retransmitted.1 += 1;
                    self.media.media_out.push_back(protected);
                }
            }
            Outgoing::Media {
                media,
                layer,
                wire,
                marker,
                payload_type,
                timestamp,
                payload,
            } => {
                let parts = RtpParts {
                    marker,
                    payload_type,
                    sequence_number: wire,
                    timestamp,
                };
                let on = (media, layer, Stream::Media);
                if let Err(e) = self.send_rtp(now, on, parts, &payload, 0, probe) {
                    debug!(%media, "RTP packet not sent: {e}");
                    return;
                }
                let t = &mut self.media.transceivers[media.0 as usize];
                let keep = !t.rtx.is_empty();
                if let Some(send) = t.layer_stream_mut(layer).filter(|_| keep) {
                    send.keep_plain(PlainPacket {
                        wire,
                        timestamp,
                        marker,
                        payload_type,
                        payload,
                    });
                }
            }
        }
    }

    /// Sends the packet that left with `wire` on `media`'s `layer` again
    /// on its RTX stream (RFC 4588 §4: on the RTX SSRC negotiated for the
    /// packet's payload type, with the original sequence number first; a
    /// new transport-wide number, so the estimator counts it). Its payload
    /// bytes; `None` where RTX is off or not negotiated for it, or the
    /// packet is no longer kept.
    fn send_rtx_copy(
        &mut self,
        now: Instant,
        (media, layer): (MediaRef, u8),
        wire: u16,
        probe: Option<ProbeClusterId>,
    ) -> Option<usize> {
        if !self.config.send_rtx {
            return None;
        }
        let t = self.media.transceivers.get(media.0 as usize)?;
        let p = t.layer_stream(layer)?.plain_packet(wire)?;
        let rtx_pt = t.rtx.iter().find(|r| r.apt == p.payload_type)?.payload_type;
        let p = p.clone();
        let send = self.media.transceivers[media.0 as usize].layer_stream_mut(layer)?;
        let mut payload = Vec::with_capacity(p.payload.len() + 2);
        payload.extend_from_slice(&wire.to_be_bytes());
        payload.extend_from_slice(&p.payload);
        let parts = RtpParts {
            marker: p.marker,
            payload_type: rtx_pt,
            sequence_number: send.rtx_sequence,
            timestamp: p.timestamp,
        };
        send.rtx_sequence = send.rtx_sequence.wrapping_add(1);
        let on = (media, layer, Stream::Rtx);
        if let Err(e) = self.send_rtp(now, on, parts, &payload, 0, probe) {
            debug!(%media, "RTX packet not sent: {e}");
        }
        Some(p.payload.len())
    }

    /// Padding for a probe: about `size` bytes on the RTX SSRC of a paced
    /// track that sent media (RFC 4588's own sequence space, so the media
    /// stream's numbers stay the application's); none without one. First
    /// the track's last packets again, as libwebrtc's payload padding
    /// does, then padding-only packets (RFC 3550 §5.1) for what is left:
    /// RTP padding is at most 255 bytes a packet, and on a 2.5 Mbit/s tbf
    /// link a probe of such packets measured 1.8 Mbit/s (the headers of
    /// five times as many packets), so the estimate started from there.
    pub(super) fn send_padding(&mut self, now: Instant, size: usize, probe: ProbeClusterId) {
        let Some(i) = self.media.transceivers.iter().position(|t| {
            t.sender.is_some()
                && t.transport_cc_extension.is_some()
                && !t.rtx.is_empty()
                && t.can_send()
                && t.send.has_sent()
        }) else {
            return;
        };
        let media = MediaRef(i as u32);
        let mut left = size;
        if let Some(last) = self.media.transceivers[i].send.last_wire() {
            // The newest kept packets (the newest may still wait in the
            // pacer), each while it is at most twice what is left to send
            // (the probe's rate is measured from what went, so an
            // overshoot only probes a little faster).
            for back in 0..PAYLOAD_PADDING_SEARCH {
                let wire = last.wrapping_sub(back);
                let kept = self.media.transceivers[i]
                    .send
                    .plain_packet(wire)
                    .map(|p| p.payload.len());
                let Some(bytes) = kept else { continue };
                if left == 0 || bytes > 2 * left || self.media.media_out.len() >= MAX_MEDIA_QUEUE {
                    break;
                }
                if self
                    .send_rtx_copy(now, (media, 0), wire, Some(probe))
                    .is_none()
                {
                    break;
                }
                left = left.saturating_sub(bytes);
            }
            if left < MIN_PADDING_REMAINDER {
                return;
            }
        }
        while left > 0 && self.media.media_out.len() < MAX_MEDIA_QUEUE {
            let t = &mut self.media.transceivers[i];
            let Some(timestamp) = t.send.last_timestamp() else {
                return;
            };
            let padding = left.min(MAX_PADDING_PER_PACKET) as u8;
            left -= usize::from(padding);
            let parts = RtpParts {
                marker: false,
                payload_type: t.rtx[0].payload_type,
                sequence_number: t.send.rtx_sequence,
                timestamp,
            };
            t.send.rtx_sequence = t.send.rtx_sequence.wrapping_add(1);
            let on = (media, 0, Stream::Rtx);
            let sent = self.send_rtp(now, on, parts, &[], padding, Some(probe));
            if let Err(e) = sent {
                debug!(%media, "padding not sent: {e}");
                return;
            }
        }
    }

    /// Writes an RTP packet of our track on `media`'s simulcast layer
    /// `layer` with its extensions (MID, RFC 8843 §15; the layer's rid or,
    /// on RTX, repaired rid, RFC 8852 §3, on every packet; the
    /// transport-wide sequence number, every packet of the transport
    /// numbered whatever its stream,
    /// draft-holmer-rmcat-transport-wide-cc-extensions-01 §2), protects
    /// and queues it; a media packet goes into the layer's histories.
    fn send_rtp(
        &mut self,
        now: Instant,
        (media, layer, stream): (MediaRef, u8, Stream),
        parts: RtpParts,
        payload: &[u8],
        padding: u8,
        probe: Option<ProbeClusterId>,
    ) -> Result<(), RtcError> {
        let t = &self.media.transceivers[media.0 as usize];
        let (media_ssrc, rtx_ssrc) = t.layer_ssrcs(layer).ok_or(StateError::NoTrack { media })?;
        let ssrc = match stream {
            Stream::Rtx => rtx_ssrc,
            Stream::Media => media_ssrc,
        };
        // Room for every extension we may add (mid, rid, audio level,
        // transport-wide number): growing the vector one push at a time
        // was a reallocation on every paced packet (perf, media bench).
        let mut extensions = Vec::with_capacity(4);
        if let (Some(id), Some(mid)) = (t.mid_extension, &t.mid) {
            extensions.push(Extension {
                id,
                data: mid.as_bytes().to_vec(),
            });
        }
        let mut header = RtpHeader {
            marker: parts.marker,
            payload_type: parts.payload_type,
            sequence_number: parts.sequence_number,
            timestamp: parts.timestamp,
            ssrc,
            csrcs: Vec::new(),
            extensions,
        };
        let rid_extension = match (stream, t.rid_extensions) {
            (Stream::Media, (id, _)) | (Stream::Rtx, (_, id)) => id,
        };
        if let (Some(id), Some(rid)) = (rid_extension, t.sent_rid(layer)) {
            header.extensions.push(Extension {
                id,
                data: rid.as_bytes().to_vec(),
            });
        }
        if let (Some(id), Some(level), Stream::Media) =
            (t.audio_level_extension, t.sent_audio_level, stream)
        {
            header.extensions.push(Extension {
                id,
                data: vec![level.to_byte()],
            });
        }
        let transport_cc = t.transport_cc_extension;
        if let Some(id) = transport_cc {
            header.extensions.push(Extension {
                id,
                data: self.media.congestion.next_sequence().to_be_bytes().to_vec(),
            });
        }
        let mut plain = std::mem::take(&mut self.media.media_buffer);
        plain.clear();
        let written = header
            .write_packet(payload, padding, &mut plain)
            .map_err(ArgumentError::RtpPacket);
        let result = written
            .map_err(RtcError::from)
            .and_then(|()| self.protect(&plain, false));
        self.media.media_buffer = plain;
        let protected = result?;
        if transport_cc.is_some() {
            self.media.congestion.sent(now, protected.len(), probe);
        }
        if stream == Stream::Rtx {
            return Ok(());
        }
        let t = &mut self.media.transceivers[media.0 as usize];
        // A retransmission goes on RTX where it can (send_outgoing), else
        // byte for byte: only then are the protected bytes needed.
        let keep = !self.config.send_rtx || !t.rtx.iter().any(|r| r.apt == parts.payload_type);
        if let Some(send) = t.layer_stream_mut(layer) {
            send.sent(parts.sequence_number, payload.len(), &protected, keep);
        }
        Ok(())
    }

    /// A generic NACK (RFC 4585 §6.2.1) about our track with SSRC `ssrc`:
    /// sends the packets still kept again, byte for byte, while the queue
    /// has room; through the pacer, before new video, where it paces.
    pub(super) fn retransmit(&mut self, now: Instant, ssrc: u32, lost: impl Iterator<Item = u16>) {
        let Some((i, layer)) = self
            .media
            .transceivers
            .iter()
            .enumerate()
            .find_map(|(i, t)| Some((i, t.send_layer_of(ssrc)?)))
        else {
            trace!(ssrc, "NACK for no track of ours");
            return;
        };
        let media = MediaRef(i as u32);
        let paced = self.paced(media);
        for wire in lost {
            let t = &self.media.transceivers[i];
            let Some(size) = t.layer_stream(layer).and_then(|s| s.placed(wire)) else {
                continue;
            };
            if size == 0 {
                // Still in the pacer: it goes anyway.
                continue;
            }
            let budget = self.media.transceivers[i]
                .layer_stream_mut(layer)
                .is_some_and(|s| s.take_resend(size));
            if !budget {
                continue;
            }
            let outgoing = Outgoing::Retransmission { media, layer, wire };
            if !paced {
                if self.media.media_out.len() >= MAX_MEDIA_QUEUE {
                    break;
                }
                self.send_outgoing(now, outgoing, None);
            } else if self
                .media
                .congestion
                .enqueue(now, PacketKind::Retransmission, size, outgoing)
                .is_err()
            {
                break;
            }
        }
        if paced {
            self.send_paced(now);
        }
    }

    /// Protects an RTP or RTCP packet and queues it for sending; returns
    /// the protected bytes. Refused when [`MAX_MEDIA_QUEUE`] datagrams
    /// wait (e.g. no candidate pair yet).
    pub(super) fn protect(&mut self, plain: &[u8], rtcp: bool) -> Result<Bytes, RtcError> {
        if self.media.media_out.len() >= MAX_MEDIA_QUEUE {
            return Err(RtcError::QueueFull);
        }
        let srtp = self.media.srtp.as_mut().ok_or(StateError::NoSrtpKeys)?;
        let mut out = Vec::with_capacity(plain.len() + 32);
        let result = if rtcp {
            srtp.local.protect_rtcp(plain, &mut out)
        } else {
            srtp.local.protect_rtp(plain, &mut out)
        };
        result.map_err(OperationError::Srtp)?;
        let out = Bytes::from(out);
        self.media.media_out.push_back(out.clone());
        Ok(out)
    }

    /// The next protected media datagram, on the selected pair.
    pub(super) fn next_media_transmit(&mut self) -> Option<crate::event::Transmit> {
        let (source, destination) = self.selected_pair()?;
        let contents = self.media.media_out.pop_front()?;
        Some(crate::event::Transmit::udp(source, destination, contents))
    }
}
