//! Congestion control in the core
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01, GCC): every RTP
//! packet we send carries a transport-wide sequence number where the
//! extension is negotiated; the peer's feedback on them feeds the
//! send-side estimator ([`realtimer_bwe::SendSideBwe`]); for what we
//! receive we send feedback ourselves, so the peer's estimator (Chrome's)
//! adapts to our link. The estimate reaches the application as
//! [`RtcEvent::BandwidthEstimate`] and `availableOutgoingBitrate`.

use std::time::{Duration, Instant};

use realtimer_bwe::{Bitrate, BweConfig, SendSideBwe, SentPacket};
use realtimer_rtp::rtcp::{RtcpPacket, TransportFeedback};
use realtimer_rtp::{FeedbackConfig, TransportFeedbackGenerator};
use tracing::trace;

use crate::event::RtcEvent;

use super::Rtc;

/// An event says the target moved once it moved this fraction...
const EVENT_CHANGE: f64 = 0.05;
/// ...and at most this often, whatever the peer's feedback does.
const EVENT_INTERVAL: Duration = Duration::from_millis(200);

/// The estimator and the feedback we owe the peer.
#[derive(Debug)]
pub(crate) struct Congestion {
    bwe: SendSideBwe,
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
    pub(crate) fn new() -> Self {
        Self {
            bwe: SendSideBwe::new(BweConfig::default()),
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
    /// bytes protected (a packet refused before it left takes no number).
    pub(crate) fn sent(&mut self, now: Instant, size: usize) {
        let sequence = self.next_sequence;
        self.next_sequence = sequence.wrapping_add(1);
        self.bwe.on_packet_sent(
            now,
            SentPacket {
                sequence,
                size,
                probe_cluster: None,
            },
        );
    }

    /// A packet of the peer's numbered `sequence` arrived.
    pub(crate) fn received(&mut self, now: Instant, sequence: u16, ssrc: u32) {
        self.media_ssrc = ssrc;
        self.feedback.on_packet(now, sequence);
    }

    /// The estimate, once the peer's feedback measured it.
    pub(crate) fn available_outgoing_bitrate(&self) -> Option<u64> {
        self.measured.then(|| self.bwe.target().as_bps())
    }
}

impl Rtc {
    /// When feedback about what we received is due.
    pub(super) fn transport_cc_timeout(&self) -> Option<Instant> {
        self.media
            .srtp
            .as_ref()
            .and(self.media.congestion.feedback.poll_timeout())
    }

    /// Sends the transport-wide feedback that is due (§3.1), from our
    /// receiver SSRC.
    pub(super) fn handle_transport_cc_timeout(&mut self, now: Instant) {
        if self.media.srtp.is_none() {
            return;
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
        let target = c.bwe.target();
        let due = match c.reported {
            None => true,
            Some((last, at)) => {
                now.saturating_duration_since(at) >= EVENT_INTERVAL
                    && (target.as_f64() - last.as_f64()).abs() >= EVENT_CHANGE * last.as_f64()
            }
        };
        if due {
            c.reported = Some((target, now));
            self.events
                .push_back(RtcEvent::BandwidthEstimate(target.as_bps()));
        }
    }

    /// The peer's REMB (draft-alvestrand-rmcat-remb-03): caps the target.
    pub(super) fn on_remb(&mut self, bitrate: u64) {
        self.media.congestion.bwe.on_remb(Bitrate::bps(bitrate));
    }

    /// What the estimator allows us to send, bits per second (W3C
    /// webrtc-stats `availableOutgoingBitrate`); `None` until the peer's
    /// transport-wide feedback measured it.
    pub fn available_outgoing_bitrate(&self) -> Option<u64> {
        self.media.congestion.available_outgoing_bitrate()
    }
}
