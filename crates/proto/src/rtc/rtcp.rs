//! RTCP: keyframe requests both ways (RFC 4585 §6.3.1 PLI, RFC 5104
//! §4.3.1 FIR) and the sender and receiver reports we send about every
//! second (RFC 3550 §6.4), so the peer's statistics and congestion control
//! see our streams.

use std::time::{Duration, Instant};

use realtimer_rtp::rtcp::{
    CompoundPacket, Nack, Pli, ReceiverReport, ReportBlock, RtcpPacket, SdesChunk, SdesItem,
    SenderReport, SourceDescription,
};
use realtimer_rtp::{NackRequester, ReceptionStats, RetransmitBuffer, MAX_NACK_PACKETS};
use tracing::trace;

use crate::error::{OperationError, RtcError, StateError};
use crate::event::RtcEvent;
use crate::stats_report::{InboundRtpStats, OutboundRtpStats};
use crate::track::{Feedback, KeyframeRequest, MediaRef, MAX_NACKED};

use super::Rtc;

/// RFC 3550 §6.2 gives 5 s for a small session; browsers send every
/// second, and their statistics expect as much.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// RFC 5905 §6: NTP seconds from 1900 to 1970. The core has no wall
/// clock: our NTP clock starts at the Unix epoch when the connection is
/// created; receivers only use its differences (RTT, RFC 3550 §6.4.1, and
/// lip sync).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// `now` as a 64-bit NTP timestamp on our clock.
fn ntp(now: Instant, created: Instant) -> u64 {
    let d = now.saturating_duration_since(created);
    ((NTP_UNIX_OFFSET + d.as_secs()) << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

/// Protected packets of one track kept to answer generic NACKs (RFC 4585
/// §6.2.1): about 5 s of audio, 1 s of 4 Mbit/s video.
const RETRANSMIT_HISTORY: usize = 512;

/// A step of the application's sequence numbers larger than this (or not
/// forward) is a restart or a source switch, not loss: the wire sequence
/// continues by one instead (as libwebrtc and str0m absorb it).
const MAX_SEQUENCE_STEP: u16 = 3000;

/// A packet at most this far behind the application's last one, whose
/// place on the wire was never sent, is late (reordered, or a
/// retransmission from upstream): it keeps its place. Well within
/// [`RETRANSMIT_HISTORY`], which tells whether the place was sent.
const MAX_LATE: u16 = 64;

/// Most bytes NACKs may have sent again at once (the budget's cap): a
/// burst of loss on a 2.5 Mbit/s stream, about 200 packets.
const RESEND_BUDGET_MAX: usize = 256 * 1024;

/// How often missing packets are looked at, while some are.
const NACK_INTERVAL: Duration = Duration::from_millis(20);

/// How long a NACK is given to be answered before the packet is asked
/// for again (a round trip on a long path; at most 3 times).
const NACK_RETRY: Duration = Duration::from_millis(150);

/// What one of our tracks sent, for sender reports (RFC 3550 §6.4.1), and
/// the sequence numbers it put on the wire.
#[derive(Debug, Clone, Default)]
pub(crate) struct SendStream {
    pub(crate) ssrc: u32,
    packets: u32,
    octets: u32,
    /// The RTP timestamp of the last packet and when it went out.
    last: Option<(u32, Instant)>,
    /// The application's and the wire's sequence number of the last
    /// packet: the wire's never repeats, so no SRTP index is reused
    /// (RFC 3711 §9.1).
    last_seq: Option<(u16, u16)>,
    /// The wire sequence numbers last given a place and the protected
    /// size each went out with (0 while it waits in the pacer), in slot
    /// `wire % RETRANSMIT_HISTORY` (made on the first packet).
    places: Vec<Option<(u16, u16)>>,
    /// The protected packets last sent, by wire sequence number, for a
    /// retransmission byte for byte: kept only for packets RTX cannot
    /// carry (see [`SendStream::sent`]). Made on the first such packet.
    history: Option<RetransmitBuffer>,
    /// The command sequence number of the last FIR about this track.
    last_fir: Option<u8>,
    /// A keyframe request event waits in the queue.
    pub(crate) keyframe_pending: bool,
    /// What RTX needs of the packets last sent (RFC 4588 §4: the original
    /// header fields and payload), where RTX is negotiated.
    plain: Vec<Option<PlainPacket>>,
    /// The sequence number of our next RTX packet (its own space, RFC 4588
    /// §4).
    pub(crate) rtx_sequence: u16,
    /// Bytes and packets sent again (W3C webrtc-stats
    /// `retransmittedBytesSent`, `retransmittedPacketsSent`).
    pub(crate) retransmitted: (u64, u64),
    /// What NACKs may still have sent again, in bytes: each packet sent
    /// adds its size (up to [`RESEND_BUDGET_MAX`]), each one sent again
    /// takes its size. So a peer NACKing the same packets without end
    /// gets at most as many bytes again as the track sends, as
    /// libwebrtc's retransmission rate limiter allows at most the target
    /// bitrate: the answer to a NACK is no amplifier.
    resend_budget: usize,
    /// NACKed packets not sent again because the budget was spent.
    pub(crate) resends_refused: u64,
}

/// A packet of ours as the application wrote it, for RTX.
#[derive(Debug, Clone)]
pub(crate) struct PlainPacket {
    pub(crate) wire: u16,
    pub(crate) timestamp: u32,
    pub(crate) marker: bool,
    pub(crate) payload_type: u8,
    pub(crate) payload: bytes::Bytes,
}

impl SendStream {
    /// Keeps what RTX needs to send `packet` again.
    pub(crate) fn keep_plain(&mut self, packet: PlainPacket) {
        if self.plain.is_empty() {
            self.plain = vec![None; RETRANSMIT_HISTORY];
        }
        let slot = usize::from(packet.wire) % RETRANSMIT_HISTORY;
        self.plain[slot] = Some(packet);
    }

    /// The packet sent with wire sequence number `wire`, if kept for RTX.
    pub(crate) fn plain_packet(&self, wire: u16) -> Option<&PlainPacket> {
        self.plain
            .get(usize::from(wire) % RETRANSMIT_HISTORY)?
            .as_ref()
            .filter(|p| p.wire == wire)
    }

    pub(crate) fn new(ssrc: u32) -> SendStream {
        SendStream {
            ssrc,
            ..SendStream::default()
        }
    }

    /// Where the application's `seq` goes on the wire: the same step as
    /// the application's if it is forward and small; a late packet (at most
    /// [`MAX_LATE`] behind, its place never sent) in its place; else the
    /// next number. The flag says the packet is late.
    pub(crate) fn wire_sequence(&self, seq: u16) -> (u16, bool) {
        let Some((app, wire)) = self.last_seq else {
            return (seq, false);
        };
        let step = seq.wrapping_sub(app);
        let back = app.wrapping_sub(seq);
        if (1..=MAX_SEQUENCE_STEP).contains(&step) {
            (wire.wrapping_add(step), false)
        } else if (1..=MAX_LATE).contains(&back) && self.placed(wire.wrapping_sub(back)).is_none() {
            (wire.wrapping_sub(back), true)
        } else {
            (wire.wrapping_add(1), false)
        }
    }

    /// Gives a packet of the application its place on the wire
    /// ([`Self::wire_sequence`]) when it is written, before the pacer lets
    /// it go: the next packet's place follows from it, and a repeat of it
    /// while it waits is not given the same place (its place is held, of
    /// size 0, until [`Self::sent`]).
    pub(crate) fn assign(
        &mut self,
        now: Instant,
        (seq, (wire, late)): (u16, (u16, bool)),
        timestamp: u32,
    ) {
        if !late {
            self.last = Some((timestamp, now));
            self.last_seq = Some((seq, wire));
        }
        self.place(wire, 0);
    }

    fn place(&mut self, wire: u16, size: usize) {
        if self.places.is_empty() {
            self.places = vec![None; RETRANSMIT_HISTORY];
        }
        let size = u16::try_from(size).unwrap_or(u16::MAX);
        self.places[usize::from(wire) % RETRANSMIT_HISTORY] = Some((wire, size));
    }

    /// Records a packet that left with wire sequence number `wire`:
    /// `payload` bytes for the statistics and the protected bytes, which
    /// are kept only if `keep` (no RTX for it: a retransmission repeats
    /// them). With RTX the packet is sent again from what
    /// [`SendStream::keep_plain`] holds, whose payload shares the
    /// application's buffer: an SFU forwarding one publisher's packet to
    /// many subscribers then holds it once, not a protected copy per
    /// subscriber (about 0.5 MB per video track at 1,000-byte packets).
    pub(crate) fn sent(&mut self, wire: u16, payload: usize, protected: &[u8], keep: bool) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload as u32);
        self.resend_budget = (self.resend_budget + protected.len()).min(RESEND_BUDGET_MAX);
        self.place(wire, protected.len());
        if keep {
            self.history
                .get_or_insert_with(|| RetransmitBuffer::new(RETRANSMIT_HISTORY))
                .insert(wire, protected);
        }
    }

    /// The RTP timestamp of the last packet of the application's.
    pub(crate) fn last_timestamp(&self) -> Option<u32> {
        self.last.map(|(ts, _)| ts)
    }

    /// The wire sequence number last given to a packet of the
    /// application's.
    pub(crate) fn last_wire(&self) -> Option<u16> {
        self.last_seq.map(|(_, wire)| wire)
    }

    /// Whether a packet of the application's was given a place yet.
    pub(crate) fn has_sent(&self) -> bool {
        self.last_seq.is_some()
    }

    /// Whether a NACKed packet of `size` bytes may be sent again (the
    /// budget is taken), or not (counted in `resends_refused`).
    pub(crate) fn take_resend(&mut self, size: usize) -> bool {
        if size > self.resend_budget {
            self.resends_refused += 1;
            return false;
        }
        self.resend_budget -= size;
        true
    }

    /// The protected size of the packet given wire sequence number `seq`,
    /// if still known: 0 while it waits in the pacer.
    pub(crate) fn placed(&self, seq: u16) -> Option<usize> {
        match self.places.get(usize::from(seq) % RETRANSMIT_HISTORY)? {
            Some((wire, size)) if *wire == seq => Some(usize::from(*size)),
            _ => None,
        }
    }

    /// The protected packet sent with wire sequence number `seq`, if kept
    /// (see [`SendStream::sent`]).
    pub(crate) fn sent_packet(&self, seq: u16) -> Option<&[u8]> {
        self.history.as_ref()?.get(seq)
    }
}

/// What the peer sent on one SSRC: the receiver-report statistics
/// (RFC 3550 Appendix A.1, A.3, A.8) and the `inbound-rtp` counters.
#[derive(Debug, Clone)]
pub(crate) struct ReceiveStream {
    pub(crate) ssrc: u32,
    reception: ReceptionStats,
    packets: u64,
    bytes: u64,
    /// Packets dropped because the application did not read the earlier
    /// ones ([`super::rtp::MAX_RTP_EVENTS`]).
    pub(crate) discarded: u64,
    /// The packets missing, to ask for again (video only: audio is not
    /// worth a round trip).
    nack: Option<NackRequester>,
}

impl ReceiveStream {
    /// A stream; `nack` to ask for its missing packets.
    pub(crate) fn new(ssrc: u32, clock_rate: u32, nack: bool) -> ReceiveStream {
        ReceiveStream {
            ssrc,
            reception: ReceptionStats::new(ssrc, clock_rate),
            packets: 0,
            bytes: 0,
            discarded: 0,
            nack: nack.then(NackRequester::new),
        }
    }

    /// Counts a packet with `len` payload bytes that arrived at `now`; says whether
    /// packets are missing now.
    /// Whether a repair (RTX) of `seq` is wanted (missing, or beyond what
    /// arrived); without NACK nothing was asked for.
    pub(crate) fn wants_repair(&self, seq: u16) -> bool {
        self.nack.as_ref().is_some_and(|n| n.wants(seq))
    }

    pub(crate) fn receive(&mut self, now: Instant, seq: u16, timestamp: u32, len: usize) -> bool {
        self.reception.on_rtp(now, seq, timestamp);
        self.packets += 1;
        self.bytes += len as u64;
        self.nack.as_mut().is_some_and(|n| {
            n.on_packet(seq);
            n.missing() > 0
        })
    }
}

impl Rtc {
    /// `inbound-rtp` stats: every SSRC received, by transceiver.
    pub(super) fn inbound_rtp_stats(&self) -> Vec<InboundRtpStats> {
        self.media
            .transceivers
            .iter()
            .flat_map(|t| {
                t.receive.iter().map(move |s| InboundRtpStats {
                    id: format!("IT{}", s.ssrc),
                    rid: t.received_layers.rid_of(s.ssrc).map(str::to_owned),
                    ssrc: s.ssrc,
                    kind: t.kind.as_str(),
                    mid: t.mid.clone(),
                    packets_received: s.packets,
                    bytes_received: s.bytes,
                    packets_lost: s.reception.cumulative_lost(),
                    packets_discarded: s.discarded,
                    jitter: s.reception.jitter_seconds(),
                    jitter_buffer_delay: 0.0,
                    jitter_buffer_target_delay: 0.0,
                    jitter_buffer_emitted_count: 0,
                    concealed_samples: 0,
                    concealment_events: 0,
                    removed_samples_for_acceleration: 0,
                    fec_packets_received: 0,
                    fec_packets_discarded: 0,
                    frames_decoded: 0,
                    key_frames_decoded: 0,
                    frames_dropped: 0,
                })
            })
            .collect()
    }

    /// `outbound-rtp` stats: every track we send.
    pub(super) fn outbound_rtp_stats(&self) -> Vec<OutboundRtpStats> {
        self.media
            .transceivers
            .iter()
            .filter(|t| t.sender.is_some())
            .flat_map(|t| {
                t.send_streams().map(move |(rid, s)| OutboundRtpStats {
                    id: format!("OT{}", s.ssrc),
                    ssrc: s.ssrc,
                    kind: t.kind.as_str(),
                    mid: t.mid.clone(),
                    rid: rid.map(str::to_owned),
                    packets_sent: u64::from(s.packets),
                    bytes_sent: u64::from(s.octets),
                    retransmitted_packets_sent: s.retransmitted.1,
                    retransmitted_bytes_sent: s.retransmitted.0,
                    retransmissions_refused: s.resends_refused,
                })
            })
            .collect()
    }

    /// An SRTCP compound packet, decrypted.
    pub(super) fn handle_rtcp(&mut self, now: Instant, plain: &[u8]) {
        for packet in CompoundPacket::new(plain) {
            let packet = match packet {
                Ok(p) => p,
                Err(e) => {
                    trace!("RTCP does not parse: {e}");
                    return;
                }
            };
            match packet {
                RtcpPacket::SenderReport(sr) => {
                    for (i, t) in self.media.transceivers.iter_mut().enumerate() {
                        if let Some(s) = t.receive.iter_mut().find(|s| s.ssrc == sr.ssrc) {
                            s.reception.on_sender_report(now, &sr);
                            let media = MediaRef(i as u32);
                            let clock = crate::SenderClock {
                                ntp_time: sr.ntp_time,
                                rtp_time: sr.rtp_time,
                            };
                            // One pending report a track: a newer one
                            // replaces it (bounded however often the peer
                            // reports).
                            let pending = self.events.iter_mut().find_map(|e| match e {
                                RtcEvent::SenderReport(m, c) if *m == media => Some(c),
                                _ => None,
                            });
                            match pending {
                                Some(c) => *c = clock,
                                None => self.events.push_back(RtcEvent::SenderReport(media, clock)),
                            }
                        }
                    }
                }
                RtcpPacket::Pli(pli) => {
                    self.keyframe_request(pli.media_ssrc, KeyframeRequest::Pli, None);
                }
                RtcpPacket::Fir(fir) => {
                    for entry in &fir.entries {
                        let seq = Some(entry.sequence_number);
                        self.keyframe_request(entry.ssrc, KeyframeRequest::Fir, seq);
                    }
                }
                RtcpPacket::Nack(nack) => {
                    self.retransmit(now, nack.media_ssrc, nack.lost().take(MAX_NACK_PACKETS));
                }
                RtcpPacket::TransportFeedback(feedback) => {
                    self.on_transport_feedback(now, &feedback);
                }
                RtcpPacket::Remb(remb) => self.on_remb(now, remb.bitrate),
                _ => {}
            }
        }
    }

    /// A keyframe request about `ssrc`: an event if it is one of our
    /// tracks, unless one is pending already or a FIR repeats its command
    /// sequence number (RFC 5104 §4.3.1.2), so at most one such event per
    /// track waits, whatever the peer sends.
    fn keyframe_request(&mut self, ssrc: u32, request: KeyframeRequest, fir_seq: Option<u8>) {
        let Some(i) = self
            .media
            .transceivers
            .iter()
            .position(|t| t.send_layer_of(ssrc).is_some())
        else {
            trace!(ssrc, "feedback for no track of ours");
            return;
        };
        let s = &mut self.media.transceivers[i].send;
        if fir_seq.is_some() && std::mem::replace(&mut s.last_fir, fir_seq) == fir_seq {
            return;
        }
        if std::mem::replace(&mut s.keyframe_pending, true) {
            return;
        }
        self.events.push_back(RtcEvent::Feedback(
            MediaRef(i as u32),
            Feedback::Keyframe(request),
        ));
    }

    /// Asks the peer for a keyframe of its track on `media` with a PLI
    /// (RFC 4585 §6.3.1), e.g. when a receiver of what we forward asks.
    pub fn request_keyframe(&mut self, media: MediaRef) -> Result<(), RtcError> {
        self.send_feedback(media, None, pli)
    }

    /// Asks the peer to send the packets of its track on `media` with
    /// these sequence numbers again, with a generic NACK (RFC 4585
    /// §6.2.1), e.g. when a receiver of what we forward lost them. At
    /// most [`MAX_NACKED`] are asked for.
    pub fn request_retransmission(
        &mut self,
        media: MediaRef,
        lost: &[u16],
    ) -> Result<(), RtcError> {
        let lost = &lost[..lost.len().min(MAX_NACKED)];
        self.send_feedback(media, None, |sender_ssrc, media_ssrc| {
            RtcpPacket::Nack(Nack::from_lost(
                sender_ssrc,
                media_ssrc,
                lost.iter().copied(),
            ))
        })
    }

    /// Sends one feedback packet about the peer's stream `media_ssrc` on
    /// `media` (`None`: the one heard last), after the minimal head a
    /// compound packet needs (RFC 4585 §3.1: an empty receiver report and
    /// our CNAME), so it carries no statistics taken out of time and
    /// leaves the report interval alone.
    pub(super) fn send_feedback(
        &mut self,
        media: MediaRef,
        media_ssrc: Option<u32>,
        packet: impl FnOnce(u32, u32) -> RtcpPacket<'static>,
    ) -> Result<(), RtcError> {
        self.check_open()?;
        let t = self
            .transceiver(media)
            .ok_or(StateError::UnknownMedia { media })?;
        let media_ssrc = media_ssrc
            .or_else(|| t.receive.last().map(|s| s.ssrc))
            .or_else(|| t.remote.as_ref().and_then(|r| r.ssrcs.first().copied()))
            .ok_or(StateError::NothingReceived { media })?;
        let sender_ssrc = feedback_ssrc(t, self.media.receiver_ssrc);
        self.send_feedback_packet(sender_ssrc, &packet(sender_ssrc, media_ssrc))
    }

    /// Sends `packet` from `sender_ssrc` after the minimal head of a
    /// compound packet (RFC 4585 §3.1).
    pub(super) fn send_feedback_packet(
        &mut self,
        sender_ssrc: u32,
        packet: &RtcpPacket<'_>,
    ) -> Result<(), RtcError> {
        let mut plain = Vec::new();
        write_compound(
            &mut plain,
            &[
                RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: sender_ssrc,
                    reports: Vec::new(),
                }),
                cname_packet(&[sender_ssrc], self.media.cname.as_bytes()),
            ],
        );
        packet.write(&mut plain).map_err(OperationError::Rtcp)?;
        self.protect(&plain, true)?;
        Ok(())
    }

    /// Asks for the missing video packets that are due (RFC 4585
    /// §6.2.1), and looks again in [`NACK_INTERVAL`] while some remain.
    pub(super) fn handle_nack_timeout(&mut self, now: Instant) {
        if self.media.srtp.is_none() || self.media.next_nack.is_none_or(|at| at > now) {
            return;
        }
        let mut nacks = Vec::new();
        let mut missing = false;
        for t in &mut self.media.transceivers {
            let sender_ssrc = feedback_ssrc(t, self.media.receiver_ssrc);
            for s in &mut t.receive {
                let Some(n) = &mut s.nack else { continue };
                nacks.extend(n.poll_nack(now, NACK_RETRY, sender_ssrc, s.ssrc));
                missing |= n.missing() > 0;
            }
        }
        for nack in nacks {
            let sender_ssrc = nack.sender_ssrc;
            if let Err(e) = self.send_feedback_packet(sender_ssrc, &RtcpPacket::Nack(nack)) {
                trace!("NACK not sent: {e}");
            }
        }
        self.media.next_nack = missing.then_some(now + NACK_INTERVAL);
    }

    /// When the next reports are due, once SRTP runs.
    pub(super) fn report_timeout(&self) -> Option<Instant> {
        self.media.srtp.as_ref().and(self.media.next_report)
    }

    /// Sends the reports if due (RFC 3550 §6.4), and arms the next ones.
    pub(super) fn handle_report_timeout(&mut self, now: Instant) {
        if self.media.srtp.is_none() {
            return;
        }
        match self.media.next_report {
            None => self.media.next_report = Some(now + REPORT_INTERVAL),
            Some(at) if at <= now => {
                self.media.next_report = Some(now + REPORT_INTERVAL);
                let mut plain = Vec::new();
                self.write_report_head(&mut plain, now);
                if let Err(e) = self.protect(&plain, true) {
                    trace!("reports not sent: {e}");
                }
            }
            Some(_) => {}
        }
    }

    /// The periodic reports (RFC 3550 §6.1, §6.4): a sender report per
    /// track that sent within the last two intervals (the first with a
    /// report block per stream we receive), else a receiver report, then
    /// SDES CNAMEs.
    fn write_report_head(&mut self, out: &mut Vec<u8>, now: Instant) {
        let created = self.created;
        let mut blocks: Vec<ReportBlock> = self
            .media
            .transceivers
            .iter_mut()
            .flat_map(|t| t.receive.iter_mut())
            .filter_map(|s| s.reception.report_block(now))
            .collect();
        blocks.truncate(realtimer_rtp::rtcp::MAX_REPORT_BLOCKS);
        let mut ssrcs = Vec::new();
        let mut packets = Vec::new();
        let senders = self
            .media
            .transceivers
            .iter()
            .filter(|t| t.sender.is_some());
        for (t, s) in senders.flat_map(|t| t.send_streams().map(move |(_, s)| (t, s))) {
            // RFC 3550 §6.4: an SR only after sending; no RTP time to pair
            // with the NTP time before the first packet.
            let Some((ts, at)) = s
                .last
                .filter(|(_, at)| now.saturating_duration_since(*at) < 2 * REPORT_INTERVAL)
            else {
                continue;
            };
            let clock_rate = t.codecs.first().map_or(90_000, |c| c.clock_rate);
            let rtp_time = ts.wrapping_add(
                (now.saturating_duration_since(at).as_secs_f64() * f64::from(clock_rate)) as u32,
            );
            ssrcs.push(s.ssrc);
            packets.push(RtcpPacket::SenderReport(SenderReport {
                ssrc: s.ssrc,
                ntp_time: ntp(now, created),
                rtp_time,
                packet_count: s.packets,
                octet_count: s.octets,
                reports: std::mem::take(&mut blocks),
            }));
        }
        if packets.is_empty() {
            ssrcs.push(self.media.receiver_ssrc);
            packets.push(RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: self.media.receiver_ssrc,
                reports: blocks,
            }));
        }
        packets.push(cname_packet(&ssrcs, self.media.cname.as_bytes()));
        write_compound(out, &packets);
    }
}

/// The SSRC our feedback about `t`'s stream comes from: our track's,
/// else the connection's receive-only `receiver_ssrc`.
fn feedback_ssrc(t: &super::transceivers::Transceiver, receiver_ssrc: u32) -> u32 {
    if t.sender.is_some() {
        t.send.ssrc
    } else {
        receiver_ssrc
    }
}

/// A PLI (RFC 4585 §6.3.1) from `sender_ssrc` about `media_ssrc`.
pub(super) fn pli(sender_ssrc: u32, media_ssrc: u32) -> RtcpPacket<'static> {
    RtcpPacket::Pli(Pli {
        sender_ssrc,
        media_ssrc,
    })
}

/// An SDES packet giving `cname` for each of `ssrcs` (RFC 3550 §6.5.1).
fn cname_packet<'a>(ssrcs: &[u32], cname: &'a [u8]) -> RtcpPacket<'a> {
    RtcpPacket::SourceDescription(SourceDescription {
        chunks: ssrcs
            .iter()
            .map(|&ssrc| SdesChunk {
                ssrc,
                items: vec![SdesItem {
                    kind: SdesItem::CNAME,
                    value: cname,
                }],
            })
            .collect(),
    })
}

/// Appends `packets` to `out` as one compound packet.
fn write_compound(out: &mut Vec<u8>, packets: &[RtcpPacket<'_>]) {
    for p in packets {
        if let Err(e) = p.write(out) {
            trace!("RTCP packet not written: {e}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the tests' origin of time
mod tests {
    use super::*;

    #[test]
    fn ntp_starts_at_the_unix_epoch_and_counts_fractions() {
        let start = Instant::now();
        let t = ntp(start + Duration::from_millis(1500), start);
        assert_eq!(t >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(t & 0xFFFF_FFFF, 1 << 31);
    }

    /// The kinds of the RTCP packets `rtc` queued last, decrypted with
    /// `peer`; a receiver report with its blocks' fractions lost.
    fn last_compound(rtc: &mut Rtc, peer: &mut realtimer_srtp::SrtpContext) -> Vec<String> {
        let srtcp = rtc.media.media_out.pop_back().expect("an RTCP packet");
        let mut plain = Vec::new();
        peer.unprotect_rtcp(&srtcp, &mut plain).unwrap();
        CompoundPacket::new(&plain)
            .map(|p| match p.unwrap() {
                RtcpPacket::SenderReport(_) => "SR".to_owned(),
                RtcpPacket::ReceiverReport(rr) => format!(
                    "RR{:?}",
                    rr.reports
                        .iter()
                        .map(|b| b.fraction_lost)
                        .collect::<Vec<_>>()
                ),
                RtcpPacket::SourceDescription(_) => "SDES".to_owned(),
                RtcpPacket::Pli(_) => "PLI".to_owned(),
                _ => "other".to_owned(),
            })
            .collect()
    }

    #[test]
    fn late_packets_keep_their_place_and_restarts_continue_the_sequence() {
        let now = Instant::now();
        let mut s = SendStream::new(1);
        let send = |s: &mut SendStream, seq: u16| {
            let wire = s.wire_sequence(seq);
            s.assign(now, (seq, wire), 0);
            s.sent(wire.0, 1, &wire.0.to_be_bytes(), true);
            wire
        };
        // 12 comes after 13: it takes the place left for it.
        for (seq, expected) in [(10, (10, false)), (11, (11, false)), (13, (13, false))] {
            assert_eq!(send(&mut s, seq), expected);
        }
        assert_eq!(send(&mut s, 12), (12, true));
        assert_eq!(send(&mut s, 14), (14, false));
        // 12 again: its place is taken, so it is a restart.
        assert_eq!(send(&mut s, 12), (15, false));
        // Far back or far ahead: restarts too.
        assert_eq!(send(&mut s, 60_000), (16, false));
        assert_eq!(send(&mut s, 60_001), (17, false));
        assert_eq!(send(&mut s, 5), (18, false));
        assert_eq!(s.sent_packet(12), Some(&12u16.to_be_bytes()[..]));
        // 6 waits in the pacer; 6 again is not given its place.
        let wire = s.wire_sequence(6);
        assert_eq!(wire, (19, false));
        s.assign(now, (6, wire), 0);
        assert_eq!(s.wire_sequence(6), (20, false));
    }

    /// A connection with SRTP keys and a video track, and the context
    /// that unprotects what it sends.
    fn rtc_with_track(now: Instant) -> (Rtc, MediaRef, realtimer_srtp::SrtpContext) {
        let cert = realtimer_dtls::Certificate::generate(std::time::SystemTime::now()).unwrap();
        let mut rtc = Rtc::new(super::super::RtcConfig::default(), cert, now);
        let profile = realtimer_srtp::ProtectionProfile::AeadAes128Gcm;
        let (key, salt) = ([7u8; 16], [9u8; 12]);
        let context = || realtimer_srtp::SrtpContext::new(profile, &key, &salt).unwrap();
        rtc.media.srtp = Some(super::super::rtp::Srtp {
            local: context(),
            remote: context(),
        });
        let video = rtc.add_track(crate::MediaKind::Video, "s", "cam").unwrap();
        (rtc, video, context())
    }

    #[test]
    fn a_mid_moves_a_learned_ssrc_route() {
        let now = Instant::now();
        let (mut rtc, first, _) = rtc_with_track(now);
        let second = rtc.add_track(crate::MediaKind::Video, "s", "cam2").unwrap();
        let pt = rtc.media.transceivers[0].codecs[0].payload_type;
        for (r, mid) in [(first, "0"), (second, "1")] {
            let t = &mut rtc.media.transceivers[r.0 as usize];
            t.mid = Some(mid.to_owned());
            t.mid_extension = Some(4);
        }
        // Only the first receives: the payload type alone routes there.
        rtc.media.transceivers[0].remote = Some(crate::jsep::media_section::RemoteMedia {
            mid: "0".to_owned(),
            kind: crate::MediaKind::Video,
            direction: crate::Direction::SendRecv,
            codecs: rtc.media.transceivers[0].codecs.clone(),
            mid_extension: Some(4),
            transport_cc_extension: None,
            audio_level_extension: None,
            rtx: Vec::new(),
            ssrcs: Vec::new(),
            rtx_ssrcs: Vec::new(),
            stream_ids: Vec::new(),
            track_id: None,
            rid_extension: None,
            repaired_rid_extension: None,
            send_layers: Vec::new(),
            receive_layers: Vec::new(),
        });
        let mut deliver = |seq: u16, mid: Option<&str>| {
            let header = realtimer_rtp::RtpHeader {
                marker: false,
                payload_type: pt,
                sequence_number: seq,
                timestamp: 0,
                ssrc: 77,
                csrcs: Vec::new(),
                extensions: mid
                    .map(|m| realtimer_rtp::Extension {
                        id: 4,
                        data: m.as_bytes().to_vec(),
                    })
                    .into_iter()
                    .collect(),
            };
            let mut plain = Vec::new();
            header.write_packet(b"x", 0, &mut plain).unwrap();
            rtc.handle_rtp(now, now, &plain);
            std::iter::from_fn(|| rtc.poll_event())
                .find_map(|e| match e {
                    RtcEvent::Rtp(r, _) => Some(r),
                    _ => None,
                })
                .expect("delivered")
        };
        assert_eq!(deliver(1, None), first);
        assert_eq!(deliver(2, Some("1")), second);
        // Learned anew: packets without the MID follow it.
        assert_eq!(deliver(3, None), second);
    }

    /// Transport-wide feedback says when packets arrived (the kernel's
    /// stamp the driver passes), not when they were handled: two packets
    /// that came 20 ms apart and were read together 40 ms later are
    /// reported 20 ms apart.
    #[test]
    fn transport_feedback_reports_arrival_not_handling_time() {
        let start = Instant::now();
        let (mut rtc, video, mut peer) = rtc_with_track(start);
        let (cc_id, pt) = (5, rtc.media.transceivers[0].codecs[0].payload_type);
        let t = &mut rtc.media.transceivers[video.0 as usize];
        t.transport_cc_extension = Some(cc_id);
        t.remote = Some(crate::jsep::media_section::RemoteMedia {
            mid: "0".to_owned(),
            kind: crate::MediaKind::Video,
            direction: crate::Direction::SendRecv,
            codecs: t.codecs.clone(),
            mid_extension: None,
            transport_cc_extension: Some(cc_id),
            audio_level_extension: None,
            rtx: Vec::new(),
            ssrcs: Vec::new(),
            rtx_ssrcs: Vec::new(),
            stream_ids: Vec::new(),
            track_id: None,
            rid_extension: None,
            repaired_rid_extension: None,
            send_layers: Vec::new(),
            receive_layers: Vec::new(),
        });
        let (from, to) = (
            "192.0.2.1:5000".parse().unwrap(),
            "192.0.2.2:6000".parse().unwrap(),
        );
        let ms = Duration::from_millis;
        let handled = start + ms(40);
        for (seq, arrival) in [(10u16, start), (11, start + ms(20))] {
            let header = realtimer_rtp::RtpHeader {
                marker: false,
                payload_type: pt,
                sequence_number: seq,
                timestamp: 0,
                ssrc: 77,
                csrcs: Vec::new(),
                extensions: vec![realtimer_rtp::Extension {
                    id: cc_id,
                    data: seq.to_be_bytes().to_vec(),
                }],
            };
            let (mut plain, mut srtp) = (Vec::new(), Vec::new());
            header.write_packet(b"x", 0, &mut plain).unwrap();
            peer.protect_rtp(&plain, &mut srtp).unwrap();
            rtc.handle_receive_arrived(handled, arrival, from, to, &srtp);
        }
        rtc.media.media_out.clear();
        rtc.handle_transport_cc_timeout(handled + ms(100));
        let srtcp = rtc.media.media_out.pop_back().expect("feedback sent");
        let mut plain = Vec::new();
        peer.unprotect_rtcp(&srtcp, &mut plain).unwrap();
        let feedback = CompoundPacket::new(&plain)
            .find_map(|p| match p.unwrap() {
                RtcpPacket::TransportFeedback(f) => Some(f),
                _ => None,
            })
            .expect("transport-wide feedback");
        let arrivals: Vec<(u16, Option<i64>)> = feedback.arrivals().collect();
        let (Some(first), Some(second)) = (arrivals[0].1, arrivals[1].1) else {
            panic!("both reported: {arrivals:?}");
        };
        assert_eq!((arrivals[0].0, arrivals[1].0), (10, 11));
        assert_eq!(second - first, 20_000, "µs between the arrivals");
    }

    #[test]
    fn keyframe_requests_are_merged_and_repeated_firs_ignored() {
        let now = Instant::now();
        let (mut rtc, video, _) = rtc_with_track(now);
        let ssrc = rtc.media.transceivers[video.0 as usize].send.ssrc;
        let fir = |seq| {
            RtcpPacket::Fir(realtimer_rtp::rtcp::Fir {
                sender_ssrc: 1,
                entries: vec![realtimer_rtp::rtcp::FirEntry {
                    ssrc,
                    sequence_number: seq,
                }],
            })
        };
        let pli = RtcpPacket::Pli(Pli {
            sender_ssrc: 1,
            media_ssrc: ssrc,
        });
        let mut flood = Vec::new();
        for p in std::iter::repeat_n(&pli, 80).chain([&fir(1), &fir(1)]) {
            p.write(&mut flood).unwrap();
        }
        rtc.handle_rtcp(now, &flood);
        let requests = |rtc: &mut Rtc| {
            std::iter::from_fn(|| rtc.poll_event())
                .filter(|e| matches!(e, RtcEvent::Feedback(..)))
                .count()
        };
        assert_eq!(requests(&mut rtc), 1, "one pending request per track");
        // Once read, a new PLI is a new request; FIR 1 again is not.
        for (p, expected) in [(&fir(1), 0), (&pli, 1), (&fir(2), 1)] {
            let mut plain = Vec::new();
            p.write(&mut plain).unwrap();
            rtc.handle_rtcp(now, &plain);
            assert_eq!(requests(&mut rtc), expected, "{p:?}");
        }
    }

    #[test]
    fn feedback_carries_no_report_and_no_sr_goes_out_before_rtp() {
        let now = Instant::now();
        let (mut rtc, video, mut peer) = rtc_with_track(now);
        // The peer's stream on the same transceiver, with packets 1 and 3.
        let t = &mut rtc.media.transceivers[video.0 as usize];
        t.receive.push(ReceiveStream::new(0xABCD, 90_000, false));
        for seq in [1, 3] {
            t.receive[0].receive(now, seq, u32::from(seq) * 3000, 100);
        }
        rtc.request_keyframe(video).unwrap();
        assert_eq!(last_compound(&mut rtc, &mut peer), ["RR[]", "SDES", "PLI"]);
        // The periodic report still covers the loss of packet 2 (1 of 3:
        // 85/256), and is no SR: the track sent nothing yet.
        rtc.handle_report_timeout(now);
        rtc.handle_report_timeout(now + REPORT_INTERVAL);
        assert_eq!(last_compound(&mut rtc, &mut peer), ["RR[85]", "SDES"]);
        // With nowhere to send, RTCP stops at the queue's bound too.
        rtc.media.media_out.extend(std::iter::repeat_n(
            bytes::Bytes::new(),
            super::super::rtp::MAX_MEDIA_QUEUE,
        ));
        assert!(matches!(
            rtc.request_keyframe(video),
            Err(RtcError::QueueFull)
        ));
        rtc.handle_report_timeout(now + 2 * REPORT_INTERVAL);
        assert_eq!(
            rtc.media.media_out.len(),
            super::super::rtp::MAX_MEDIA_QUEUE
        );
    }
}
