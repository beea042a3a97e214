//! Simulcast (RFC 8853): the layers of one track told apart by their
//! RTP stream ids (RFC 8851 `a=rid`, RFC 8852 `rid`/`repaired-rid` header
//! extensions). A simulcast sender announces no SSRC (Chromium sends none
//! in its offer), so each layer's media and RTX SSRCs are learned from the
//! first packets, which carry the rid (RFC 8852 §4: until the receiver
//! reports on them), and kept after the extension stops. Our own layers
//! each get an SSRC and an RTX SSRC, and carry their rid on every packet.

use std::time::Instant;

use realtimer_sdp::SimulcastRid;

use crate::error::{ArgumentError, RtcError, StateError};
use crate::jsep::media_section::{
    is_valid_rid, MAX_LAYERS, REPAIRED_RID_EXTENSION_ID, RID_EXTENSION_ID,
};
use crate::track::{MediaKind, MediaRef, RtpPacket};

use super::rtcp::SendStream;
use super::transceivers::Transceiver;
use super::Rtc;

/// One of our simulcast layers, as [`Rtc::add_simulcast_track`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendLayerInit {
    /// Its rid (RFC 8851 §10: letters, digits, `-`, `_`; at most 16 bytes).
    pub rid: String,
    /// The bitrate above which this layer gains nothing (e.g. 150 kbit/s
    /// for a quarter-resolution layer, 1.5 Mbit/s for 720p), bits per
    /// second: what [`Rtc::layer_targets`] gives it at most.
    pub max_bitrate: u64,
}

impl SendLayerInit {
    /// A layer `rid` useful up to `max_bitrate` bits per second.
    pub fn new(rid: &str, max_bitrate: u64) -> SendLayerInit {
        SendLayerInit {
            rid: rid.to_owned(),
            max_bitrate,
        }
    }
}

/// What an encoder of one of our simulcast layers should produce.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerTarget {
    /// The layer's rid.
    pub rid: String,
    /// Bits per second; `None`: paused (the estimate does not reach it,
    /// or the peer does not receive it), write nothing on it.
    pub bitrate: Option<u64>,
}

/// One of our simulcast layers on a transceiver.
#[derive(Debug, Clone)]
pub(crate) struct SendLayer {
    max_bitrate: u64,
    /// Its stream and RTX SSRC; `None` for the first layer, which sends
    /// on the sender's SSRCs and the transceiver's `send`.
    own: Option<(SendStream, u32)>,
}

impl Transceiver {
    /// The stream of our layer `layer` (0 without simulcast).
    pub(super) fn layer_stream(&self, layer: u8) -> Option<&SendStream> {
        match layer {
            0 => Some(&self.send),
            n => self
                .send_layers
                .get(usize::from(n))?
                .own
                .as_ref()
                .map(|(s, _)| s),
        }
    }

    pub(super) fn layer_stream_mut(&mut self, layer: u8) -> Option<&mut SendStream> {
        match layer {
            0 => Some(&mut self.send),
            n => self
                .send_layers
                .get_mut(usize::from(n))?
                .own
                .as_mut()
                .map(|(s, _)| s),
        }
    }

    /// The media and RTX SSRCs of our layer `layer`.
    pub(super) fn layer_ssrcs(&self, layer: u8) -> Option<(u32, u32)> {
        let sender = self.sender.as_ref()?;
        match layer {
            0 => Some((sender.ssrc, sender.rtx_ssrc)),
            n => self
                .send_layers
                .get(usize::from(n))?
                .own
                .as_ref()
                .map(|(s, rtx)| (s.ssrc, *rtx)),
        }
    }

    /// Which of our layers sends with media SSRC `ssrc`, if any.
    pub(super) fn send_layer_of(&self, ssrc: u32) -> Option<u8> {
        self.sender.as_ref()?;
        if self.send.ssrc == ssrc {
            return Some(0);
        }
        let i = self
            .send_layers
            .iter()
            .position(|l| l.own.as_ref().is_some_and(|(s, _)| s.ssrc == ssrc))?;
        u8::try_from(i).ok()
    }

    /// The rid our packets of `layer` carry: only where the peer's answer
    /// receives it (RFC 8853 §5.3); else none, and only the first layer
    /// goes out, as a plain stream.
    pub(super) fn sent_rid(&self, layer: u8) -> Option<&str> {
        let rid = &self.send_rids.get(usize::from(layer))?.id;
        let received = self.rid_extensions.0.is_some()
            && self
                .remote
                .as_ref()
                .is_some_and(|rm| rm.receive_layers.iter().any(|l| l.id == *rid && !l.paused));
        received.then_some(rid.as_str())
    }

    /// Our streams, each with the rid it sends under.
    pub(super) fn send_streams(&self) -> impl Iterator<Item = (Option<&str>, &SendStream)> {
        (0..=MAX_LAYERS as u8)
            .map_while(|layer| Some((self.sent_rid(layer), self.layer_stream(layer)?)))
    }

    /// Our layers as our description writes them: in an offer all; in
    /// an answer only where the offer asks for simulcast (RFC 8853 §5.3).
    pub(super) fn offered_send_layers(&self, answering: bool) -> &[SimulcastRid] {
        let asked = self
            .remote
            .as_ref()
            .is_some_and(|rm| !rm.receive_layers.is_empty());
        if answering && !asked {
            &[]
        } else {
            &self.send_rids
        }
    }
}

/// One of the peer's simulcast layers as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteLayer {
    /// Its rid (`a=rid`, RFC 8851).
    pub rid: String,
    /// Offered paused (`~` in `a=simulcast`, RFC 8853 §5.1).
    pub paused: bool,
    /// Its media SSRC, once a packet carried the rid.
    pub ssrc: Option<u32>,
    /// Its RTX SSRC (RFC 4588), once a packet carried the repaired rid.
    pub rtx_ssrc: Option<u32>,
}

/// The SSRCs learned for one rid.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LayerSsrcs {
    rid: String,
    ssrc: Option<u32>,
    rtx_ssrc: Option<u32>,
}

/// The SSRCs of the peer's layers on one transceiver, learned from the
/// rid and repaired-rid extensions; only negotiated rids are kept, so
/// it holds at most [`crate::jsep::media_section::MAX_LAYERS`].
#[derive(Debug, Clone, Default)]
pub(crate) struct ReceivedLayers {
    layers: Vec<LayerSsrcs>,
}

impl ReceivedLayers {
    /// A packet of `ssrc` carried `rid` in the rid extension (`repair`
    /// false) or the repaired-rid one (`repair` true; RFC 8852 §3.2, on
    /// an RTX stream). A rid not in `negotiated` is ignored; an SSRC moves
    /// from the layer it was on (the peer's encoder restarted).
    pub(crate) fn learn(
        &mut self,
        negotiated: &[realtimer_sdp::SimulcastRid],
        rid: &[u8],
        ssrc: u32,
        repair: bool,
    ) {
        let Some(rid) = negotiated
            .iter()
            .map(|l| l.id.as_str())
            .find(|id| id.as_bytes() == rid)
        else {
            return;
        };
        fn slot(l: &mut LayerSsrcs, repair: bool) -> &mut Option<u32> {
            if repair {
                &mut l.rtx_ssrc
            } else {
                &mut l.ssrc
            }
        }
        for other in self.layers.iter_mut().filter(|l| l.rid != rid) {
            let s = slot(other, repair);
            if *s == Some(ssrc) {
                *s = None;
            }
        }
        let layer = match self.layers.iter().position(|l| l.rid == rid) {
            Some(i) => &mut self.layers[i],
            None => {
                self.layers.push(LayerSsrcs {
                    rid: rid.to_owned(),
                    ssrc: None,
                    rtx_ssrc: None,
                });
                self.layers.last_mut().expect("just pushed")
            }
        };
        *slot(layer, repair) = Some(ssrc);
    }

    /// The rid of the layer whose media SSRC is `ssrc`.
    pub(crate) fn rid_of(&self, ssrc: u32) -> Option<&str> {
        self.layers
            .iter()
            .find(|l| l.ssrc == Some(ssrc))
            .map(|l| l.rid.as_str())
    }

    /// The media SSRC that the RTX stream `rtx_ssrc` repairs: the one of
    /// the same rid (RFC 8852 §3.2).
    pub(crate) fn repaired_ssrc(&self, rtx_ssrc: u32) -> Option<u32> {
        self.layers
            .iter()
            .find(|l| l.rtx_ssrc == Some(rtx_ssrc))
            .and_then(|l| l.ssrc)
    }

    fn get(&self, rid: &str) -> Option<&LayerSsrcs> {
        self.layers.iter().find(|l| l.rid == rid)
    }
}

impl Rtc {
    /// addTransceiver with `sendEncodings` of rids (W3C webrtc-pc §5.1,
    /// RFC 8853): sends a track of `kind` as simulcast layers, lowest
    /// first (as Chromium orders them). The offer announces them with
    /// `a=rid`/`a=simulcast:send` and no SSRC; each layer gets its own
    /// SSRC and RTX SSRC, and its packets carry its rid. The application
    /// writes each layer with [`Rtc::write_rtp_layer`] at what
    /// [`Rtc::layer_targets`] gives it. A peer that does not accept
    /// simulcast gets the first layer only, as a plain stream.
    pub fn add_simulcast_track(
        &mut self,
        kind: MediaKind,
        stream_id: &str,
        track_id: &str,
        layers: &[SendLayerInit],
    ) -> Result<MediaRef, RtcError> {
        let rids = || layers.iter().map(|l| l.rid.clone()).collect::<Vec<_>>();
        let distinct = layers
            .iter()
            .enumerate()
            .all(|(i, l)| !layers[..i].iter().any(|o| o.rid == l.rid));
        if !(1..=MAX_LAYERS).contains(&layers.len())
            || !distinct
            || !layers.iter().all(|l| is_valid_rid(&l.rid))
        {
            return Err(ArgumentError::Rids { rids: rids() }.into());
        }
        let r = self.add_track(kind, stream_id, track_id)?;
        let mut send_layers = Vec::with_capacity(layers.len());
        for (i, l) in layers.iter().enumerate() {
            let own = (i > 0).then(|| (SendStream::new(self.random_ssrc()), self.random_ssrc()));
            send_layers.push(SendLayer {
                max_bitrate: l.max_bitrate,
                own,
            });
        }
        let t = &mut self.media.transceivers[r.0 as usize];
        t.send_rids = rids()
            .into_iter()
            .map(|id| SimulcastRid { id, paused: false })
            .collect();
        t.send_layers = send_layers;
        if t.remote.is_none() {
            t.rid_extensions = (Some(RID_EXTENSION_ID), Some(REPAIRED_RID_EXTENSION_ID));
        }
        Ok(r)
    }

    /// [`Rtc::write_rtp`] on our simulcast layer `rid` of `media`: its own
    /// SSRC, sequence numbers, RTX and NACK history, its rid in every
    /// packet (RFC 8852 §3.1). Fails for a rid the track was not added
    /// with, and for a layer after the first the peer does not receive.
    pub fn write_rtp_layer(
        &mut self,
        now: Instant,
        media: MediaRef,
        rid: &str,
        packet: &RtpPacket,
    ) -> Result<(), RtcError> {
        let t = self
            .transceiver(media)
            .ok_or(StateError::UnknownMedia { media })?;
        let layer = t
            .send_rids
            .iter()
            .position(|l| l.id == rid)
            .and_then(|i| u8::try_from(i).ok())
            .ok_or_else(|| ArgumentError::UnknownRid {
                rid: rid.to_owned(),
                media,
            })?;
        if layer > 0 && t.sent_rid(layer).is_none() {
            return Err(StateError::LayerNotReceived {
                rid: rid.to_owned(),
                media,
            }
            .into());
        }
        self.write_layer_rtp(now, media, layer, packet)
    }

    /// What each of our simulcast layers on `media` should be encoded at
    /// now: the track's [`Rtc::target_bitrate`] split lowest layer first
    /// ([`realtimer_bwe::allocate_layers`]: each up to its maximum, the
    /// top ones paused when what is left would not start them), and
    /// layers the peer does not receive paused. Empty without simulcast.
    pub fn layer_targets(&self, media: MediaRef) -> Vec<LayerTarget> {
        let Some(t) = self.transceiver(media) else {
            return Vec::new();
        };
        let target = self.target_bitrate(media).unwrap_or(0);
        let received: Vec<usize> = (0..t.send_rids.len())
            .filter(|&i| i == 0 || t.sent_rid(i as u8).is_some())
            .collect();
        let max: Vec<u64> = received
            .iter()
            .map(|&i| t.send_layers[i].max_bitrate)
            .collect();
        let given = realtimer_bwe::allocate_layers(target, &max);
        t.send_rids
            .iter()
            .enumerate()
            .map(|(i, rid)| LayerTarget {
                rid: rid.id.clone(),
                bitrate: received
                    .iter()
                    .position(|&r| r == i)
                    .and_then(|k| given[k])
                    .filter(|_| t.sender.is_some() && t.can_send()),
            })
            .collect()
    }

    /// The peer's simulcast layers on `media` in its order (Chromium:
    /// lowest resolution first), with the SSRCs learned so far; empty
    /// without simulcast.
    pub fn remote_layers(&self, media: MediaRef) -> Vec<RemoteLayer> {
        let Some(t) = self.transceiver(media) else {
            return Vec::new();
        };
        t.receive_layers()
            .iter()
            .map(|l| {
                let ssrcs = t.received_layers.get(&l.id);
                RemoteLayer {
                    rid: l.id.clone(),
                    paused: l.paused,
                    ssrc: ssrcs.and_then(|s| s.ssrc),
                    rtx_ssrc: ssrcs.and_then(|s| s.rtx_ssrc),
                }
            })
            .collect()
    }

    /// The rid of the peer's layer whose packets come with `ssrc` on
    /// `media` (an [`crate::RtpPacket::ssrc`]), once learned.
    pub fn remote_rid(&self, media: MediaRef, ssrc: u32) -> Option<&str> {
        self.transceiver(media)?.received_layers.rid_of(ssrc)
    }

    /// Asks the peer for a keyframe of its layer `rid` on `media` (a PLI
    /// on that layer's SSRC, RFC 4585 §6.3.1), e.g. when an SFU switches a
    /// subscriber to it.
    pub fn request_layer_keyframe(&mut self, media: MediaRef, rid: &str) -> Result<(), RtcError> {
        let ssrc = self
            .transceiver(media)
            .ok_or(StateError::UnknownMedia { media })?
            .received_layers
            .get(rid)
            .and_then(|l| l.ssrc)
            .ok_or(StateError::NothingReceived { media })?;
        self.send_feedback(media, Some(ssrc), super::rtcp::pli)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rids(ids: &[&str]) -> Vec<SimulcastRid> {
        ids.iter()
            .map(|id| SimulcastRid {
                id: (*id).to_owned(),
                paused: false,
            })
            .collect()
    }

    #[test]
    fn layers_learn_their_ssrcs_and_repairs() {
        let negotiated = rids(&["q", "h", "f"]);
        let mut layers = ReceivedLayers::default();
        layers.learn(&negotiated, b"q", 10, false);
        layers.learn(&negotiated, b"h", 20, false);
        layers.learn(&negotiated, b"h", 21, true);
        // Not negotiated: ignored, so the table stays bounded.
        layers.learn(&negotiated, b"x", 30, false);
        assert_eq!(layers.rid_of(10), Some("q"));
        assert_eq!(layers.rid_of(20), Some("h"));
        assert_eq!(layers.rid_of(30), None);
        assert_eq!(layers.repaired_ssrc(21), Some(20));
        assert_eq!(layers.repaired_ssrc(20), None);
        // An SSRC seen with another rid moves there.
        layers.learn(&negotiated, b"f", 10, false);
        assert_eq!(layers.rid_of(10), Some("f"));
        assert_eq!(layers.get("q").and_then(|l| l.ssrc), None);
        assert_eq!(layers.layers.len(), 3);
    }
}
