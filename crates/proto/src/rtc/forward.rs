//! What a forwarding server (an SFU) needs of a connection beyond the
//! browser's API: tracks it sends without taking the peer's transceivers,
//! and taking a track off so its `m=` section serves another later.

use crate::error::{RtcError, StateError};
use crate::jsep::media_section as sdp_media;
use crate::track::{Direction, MediaKind, MediaRef};

use super::Rtc;

impl Rtc {
    /// addTransceiver(track, {direction: "sendonly"}) (W3C webrtc-pc
    /// §5.1): sends a track of `kind` in stream `stream_id` on a
    /// transceiver of our own. Unlike [`Rtc::add_track`] it never takes a
    /// transceiver the peer offered to send only on (a forwarding server
    /// cannot answer the peer's camera with someone else's): it reuses one
    /// without a track that the peer's offer wants to receive on (so a
    /// viewer's offer is answered with the track, RFC 3264 §6.1), or one
    /// whose track [`Rtc::remove_track`] took off (inactive), keeping the
    /// `m=` section in place (RFC 8829 §5.2.2), else adds a `sendonly`
    /// one, which needs negotiation.
    pub fn add_send_track(
        &mut self,
        kind: MediaKind,
        stream_id: &str,
        track_id: &str,
    ) -> Result<MediaRef, RtcError> {
        self.check_open()?;
        let sender = self.new_sender(stream_id, track_id);
        let reusable = self.media.transceivers.iter().position(|t| {
            t.kind == kind
                && t.sender.is_none()
                && !t.stopped
                && ((t.direction == Direction::Inactive && t.mid.is_some())
                    || t.offered_direction.is_some_and(sdp_media::receives))
        });
        let r = match reusable {
            Some(i) => MediaRef(i as u32),
            None => self.new_transceiver(kind, Direction::SendOnly),
        };
        Ok(self.attach_sender(r, sender))
    }

    /// removeTrack (W3C webrtc-pc §5.1): our track on `media` stops; the
    /// transceiver no longer sends (its direction drops `send`), which
    /// needs negotiation. Removing from a transceiver without a track
    /// does nothing.
    pub fn remove_track(&mut self, media: MediaRef) -> Result<(), RtcError> {
        self.check_open()?;
        let t = self
            .media
            .transceivers
            .get_mut(media.0 as usize)
            .ok_or(StateError::UnknownMedia { media })?;
        if t.sender.take().is_none() {
            return Ok(());
        }
        t.direction = sdp_media::direction(false, sdp_media::receives(t.direction));
        self.update_negotiation_needed();
        Ok(())
    }
}
