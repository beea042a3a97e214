//! Congestion control in the core
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01, GCC): every RTP
//! packet we send carries a transport-wide sequence number where the
//! extension is negotiated; the peer's feedback on them feeds the
//! send-side estimator ([`realtimer_bwe::SendSideBwe`]); for what we
//! receive we send feedback ourselves, so the peer's estimator (Chrome's)
//! adapts to our link. The estimate reaches the application as
//! [`RtcEvent::BandwidthEstimate`], `availableOutgoingBitrate` and a
//! target per track ([`RtcEvent::TargetBitrate`], [`Rtc::target_bitrate`],
//! [`Rtc::layer_targets`] for simulcast layers).
//!
//! Where the estimator is fed (transport-cc negotiated on the
//! transceiver), our packets leave through a [`Pacer`]: at 2.5× the
//! target in bursts of 5 ms, audio first, then retransmissions, then
//! video; probe clusters at start, while probes keep finding room, while
//! the application sends less than the target and when it asks for more
//! ([`Rtc::request_bitrate`]), with padding when no media waits. A packet
//! gets its transport-wide sequence number and its SRTP protection when it
//! leaves the pacer, so the send times the estimator sees are the wire's.

use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_bwe::{
    Bitrate, BweConfig, Paced, Pacer, PacketKind, ProbeClusterId, SendSideBwe, SentPacket,
};
use realtimer_rtp::rtcp::{RtcpPacket, TransportFeedback};
use realtimer_rtp::{FeedbackConfig, TransportFeedbackGenerator};
use tracing::{debug, trace};

use crate::event::RtcEvent;
use crate::track::{MediaKind, MediaRef};

use super::rtp::MAX_MEDIA_QUEUE;
use super::Rtc;

/// An event says the target moved once it moved this fraction...
const EVENT_CHANGE: f64 = 0.05;
/// ...and at most this often, whatever the peer's feedback does.
const EVENT_INTERVAL: Duration = Duration::from_millis(200);

/// A packet of ours waiting in the pacer: written by the application,
/// not yet numbered (transport-wide) nor protected.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A packet of the application's, with its place on the wire.
    Media {
        media: MediaRef,
        /// The simulcast layer (0 without simulcast).
        layer: u8,
        wire: u16,
        marker: bool,
        payload_type: u8,
        timestamp: u32,
        payload: Bytes,
    },
    /// The protected packet sent with `wire` on `media`, again (a NACK).
    Retransmission {
        media: MediaRef,
        layer: u8,
        wire: u16,
    },
}

/// What an audio track is given of the estimate before video shares the
/// rest (Opus at its fullband music rate; speech needs far less).
const AUDIO_TARGET: u64 = 64_000;

/// The estimator, the pacer and the feedback we owe the peer.
#[derive(Debug)]
pub(crate) struct Congestion {
    bwe: SendSideBwe,
    pub(super) pacer: Pacer<Outgoing>,
    feedback: TransportFeedbackGenerator,
    next_sequence: u16,
    /// The last SSRC of the peer's media numbered by the transport-wide
    /// sequence (our feedback names it, as libwebrtc's does).
    media_ssrc: u32,
    /// The peer has sent feedback: the estimate is measured.
    measured: bool,
    /// The target and when the last event said it.
    reported: Option<(Bitrate, Instant)>,
}

impl Congestion {
    pub(crate) fn new(config: BweConfig, now: Instant) -> Self {
        let bwe = SendSideBwe::new(config);
        let mut pacer = Pacer::new(bwe.pacing_rate(), MAX_MEDIA_QUEUE);
        pacer.set_rate(now, bwe.pacing_rate());
        Self {
            bwe,
            pacer,
            feedback: TransportFeedbackGenerator::new(FeedbackConfig::default(), 0, 0),
            next_sequence: 0,
            media_ssrc: 0,
            measured: false,
            reported: None,
        }
    }

    /// The transport-wide sequence number the next packet gets.
    pub(crate) fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// The packet numbered [`Congestion::next_sequence`] left, `size`
    /// bytes protected, for `probe_cluster` if any (a packet refused
    /// before it left takes no number).
    pub(crate) fn sent(
        &mut self,
        now: Instant,
        size: usize,
        probe_cluster: Option<ProbeClusterId>,
    ) {
        let sequence = self.next_sequence;
        self.next_sequence = sequence.wrapping_add(1);
        self.bwe.on_packet_sent(
            now,
            SentPacket {
                sequence,
                size,
                probe_cluster,
            },
        );
    }

    /// Queues `packet` of `kind`, `size` bytes, in the pacer; full, it
    /// comes back.
    pub(crate) fn enqueue(
        &mut self,
        now: Instant,
        kind: PacketKind,
        size: usize,
        packet: Outgoing,
    ) -> Result<(), Outgoing> {
        self.pacer
            .enqueue(now, kind, size, packet)
            .map_err(|full| full.0)
    }

    /// Whether the pacer has room for one more packet.
    pub(crate) fn pacer_has_room(&self) -> bool {
        self.pacer.queued_packets() < MAX_MEDIA_QUEUE
    }

    /// The pacer follows the target.
    fn follow_target(&mut self, now: Instant) {
        self.pacer.set_rate(now, self.bwe.pacing_rate());
    }

    /// A packet of the peer's numbered `sequence` arrived at `arrival`.
    pub(crate) fn received(&mut self, arrival: Instant, sequence: u16, ssrc: u32) {
        self.media_ssrc = ssrc;
        self.feedback.on_packet(arrival, sequence);
    }

    /// The estimate, once the peer's feedback measured it.
    pub(crate) fn available_outgoing_bitrate(&self) -> Option<u64> {
        self.measured.then(|| self.bwe.target().as_bps())
    }
}

impl Rtc {
    /// When feedback about what we received is due, or the pacer may let
    /// a packet go.
    pub(super) fn transport_cc_timeout(&self) -> Option<Instant> {
        self.media.srtp.as_ref()?;
        let c = &self.media.congestion;
        [
            c.feedback.poll_timeout(),
            c.pacer.poll_timeout(),
            c.bwe.feedback_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether `media`'s packets go through the pacer: the estimator is
    /// fed only where the transport-wide sequence number is negotiated; a
    /// peer without it gets our packets as written, as before.
    pub(super) fn paced(&self, media: MediaRef) -> bool {
        self.media
            .transceivers
            .get(media.0 as usize)
            .is_some_and(|t| t.transport_cc_extension.is_some())
    }

    /// Lets go what the pacer allows at `now` into the send queue (while
    /// it has room), and starts the probe clusters the estimator wants
    /// once media flows on a paced track.
    pub(super) fn send_paced(&mut self, now: Instant) {
        if self.media.srtp.is_none() {
            return;
        }
        if self.media_flows() {
            if let Some(cluster) = self.media.congestion.bwe.poll_probe(now) {
                debug!(rate = %cluster.rate, id = cluster.id.0, "probe cluster");
                self.media.congestion.pacer.start_probe(now, cluster);
            }
        }
        while self.media.media_out.len() < MAX_MEDIA_QUEUE {
            let Some(paced) = self.media.congestion.pacer.poll_send(now) else {
                break;
            };
            match paced {
                Paced::Packet {
                    packet,
                    probe_cluster,
                    ..
                } => self.send_outgoing(now, packet, probe_cluster),
                Paced::Padding {
                    size,
                    probe_cluster,
                } => self.send_padding(now, size, probe_cluster),
                // Paced is non-exhaustive.
                _ => {}
            }
        }
    }

    /// Whether a paced track sent media yet (probing waits for it).
    fn media_flows(&self) -> bool {
        self.media
            .transceivers
            .iter()
            .any(|t| t.sender.is_some() && t.transport_cc_extension.is_some() && t.send.has_sent())
    }

    /// The application wants to send `bitrate` bits per second: when that
    /// is above the target, a probe cluster goes out at that rate (then
    /// further while the path keeps up), so the estimate need not climb
    /// there by additive steps alone.
    pub fn request_bitrate(&mut self, now: Instant, bitrate: u64) {
        let c = &mut self.media.congestion;
        c.bwe.request_probe(now, Bitrate::bps(bitrate));
        self.send_paced(now);
    }

    /// The target bitrate for an encoder of our track on `media`, bits
    /// per second: the estimate, less what audio tracks take (their
    /// target, 64 kbit/s each, first), shared equally by the video tracks.
    /// `None` for a transceiver that sends nothing.
    pub fn target_bitrate(&self, media: MediaRef) -> Option<u64> {
        let t = self.media.transceivers.get(media.0 as usize)?;
        if t.sender.is_none() || !t.can_send() {
            return None;
        }
        let sending = || {
            self.media
                .transceivers
                .iter()
                .filter(|t| t.sender.is_some() && t.can_send())
        };
        let target = self.media.congestion.bwe.target().as_bps();
        let audio = sending().filter(|t| t.kind == MediaKind::Audio).count() as u64;
        let video = sending().filter(|t| t.kind == MediaKind::Video).count() as u64;
        let audio_share = if video == 0 {
            target / audio.max(1)
        } else {
            AUDIO_TARGET.min(target / (audio + video))
        };
        Some(match t.kind {
            MediaKind::Audio => audio_share,
            _ => target.saturating_sub(audio * audio_share) / video.max(1),
        })
    }

    /// Sends the transport-wide feedback that is due (§3.1), from our
    /// receiver SSRC; lowers the estimate when the peer's feedback on
    /// what we sent stopped coming (`realtimer_bwe::FEEDBACK_TIMEOUT`).
    pub(super) fn handle_transport_cc_timeout(&mut self, now: Instant) {
        if self.media.srtp.is_none() {
            return;
        }
        if self.media.congestion.bwe.on_feedback_timeout(now) {
            trace!(target = %self.media.congestion.bwe.target(), "no transport-wide feedback: estimate lowered");
            self.on_target_moved(now);
        }
        while let Some(mut feedback) = self.media.congestion.feedback.poll_feedback(now) {
            feedback.sender_ssrc = self.media.receiver_ssrc;
            feedback.media_ssrc = self.media.congestion.media_ssrc;
            let packet = RtcpPacket::TransportFeedback(feedback);
            if let Err(e) = self.send_feedback_packet(self.media.receiver_ssrc, &packet) {
                trace!("transport-cc feedback not sent: {e}");
            }
        }
    }

    /// The peer's feedback on what we sent: the estimator runs, and an
    /// event tells the application when the target moved.
    pub(super) fn on_transport_feedback(&mut self, now: Instant, feedback: &TransportFeedback) {
        let c = &mut self.media.congestion;
        c.bwe.on_transport_feedback(now, feedback);
        c.measured = true;
        // What the estimator saw and decided, for runs on real links
        // (`RUST_LOG=realtimer_proto::rtc::congestion=debug`).
        debug!(
            target = %c.bwe.target(),
            usage = ?c.bwe.usage(),
            acknowledged = ?c.bwe.acknowledged_bitrate().map(|b| b.as_bps()),
            loss = c.bwe.loss_fraction(),
            queue_us = c.bwe.standing_queue().as_micros() as u64,
            rtt_us = c.bwe.rtt().map(|r| r.as_micros() as u64),
            limited = c.bwe.application_limited_since().is_some(),
            packets = feedback.packets.len(),
            "transport-wide feedback"
        );
        self.on_target_moved(now);
        self.send_paced(now);
    }

    /// The estimator's target may have moved: the pacer follows it, and
    /// an event tells the application when it moved enough.
    fn on_target_moved(&mut self, now: Instant) {
        let c = &mut self.media.congestion;
        let target = c.bwe.target();
        let due = match c.reported {
            None => true,
            Some((last, at)) => {
                now.saturating_duration_since(at) >= EVENT_INTERVAL
                    && (target.as_f64() - last.as_f64()).abs() >= EVENT_CHANGE * last.as_f64()
            }
        };
        c.follow_target(now);
        if due {
            c.reported = Some((target, now));
            self.events
                .push_back(RtcEvent::BandwidthEstimate(target.as_bps()));
            for i in 0..self.media.transceivers.len() {
                let media = MediaRef(i as u32);
                if let Some(bps) = self.target_bitrate(media) {
                    self.events.push_back(RtcEvent::TargetBitrate(media, bps));
                }
            }
        }
    }

    /// The peer's REMB (draft-alvestrand-rmcat-remb-03): caps the target.
    pub(super) fn on_remb(&mut self, now: Instant, bitrate: u64) {
        let c = &mut self.media.congestion;
        c.bwe.on_remb(now, Bitrate::bps(bitrate));
        c.follow_target(now);
    }

    /// What the estimator allows us to send, bits per second (W3C
    /// webrtc-stats `availableOutgoingBitrate`); `None` until the peer's
    /// transport-wide feedback measured it.
    pub fn available_outgoing_bitrate(&self) -> Option<u64> {
        self.media.congestion.available_outgoing_bitrate()
    }
}
