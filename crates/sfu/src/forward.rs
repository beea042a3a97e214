//! The forwarding itself: publishing, subscribing, RTP from a publisher
//! to its subscribers, feedback back to the publisher, the estimate's
//! layer choice and room messages.

use std::time::{Duration, Instant};

use realtimer_proto::{ChannelData, Feedback, MediaKind, MediaRef, RtcError, RtpPacket, TrackInfo};
use tracing::{debug, trace};

use crate::participant::{Forward, Layer, Participant, Published, Slot};
use crate::rewrite::StreamRewriter;
use crate::{starts_keyframe, LimitError, ParticipantId, Sfu, SfuEvent, TrackId};

/// How often a keyframe is asked for again while a subscriber waits for
/// one (the request or the keyframe may be lost).
const KEYFRAME_RETRY: Duration = Duration::from_millis(500);

/// Audio a subscriber's estimate must carry before its video (Opus
/// voice, with headers).
const AUDIO_RESERVE: u64 = 64_000;

/// A held video track resumes once the estimate exceeds what it needs by
/// this factor (hysteresis, so a subscriber at the edge does not flap).
const RESUME_FACTOR: u64 = 5; // in quarters: 1.25

/// Least time between holding a subscriber's video track and releasing
/// it, or the reverse: every release costs a keyframe, and a delay-based
/// estimate swings for a moment on a burst.
const MIN_HOLD_CHANGE: Duration = Duration::from_secs(2);

/// A simulcast layer with no packet for this long is not arriving (its
/// publisher paused it, RFC 8853 §5.3, or its encoder dropped it).
const LAYER_STALE: Duration = Duration::from_secs(1);

impl Forward {
    /// Stops until resumed on a keyframe: the next packet forwarded
    /// continues the subscriber's stream without a gap.
    pub(crate) fn pause(&mut self, kind: MediaKind) {
        self.rewriter.resync();
        self.waiting_keyframe = kind == MediaKind::Video;
        self.layer = None;
    }

    /// Whether a packet of simulcast layer `layer` (`None`: the track
    /// has no layers) that starts a keyframe or not goes to this
    /// subscriber. Video starts on a keyframe; a subscriber moves to its
    /// target layer on that layer's keyframe, forwarding the layer it had
    /// until then, and the rewriter continues the stream across the
    /// switch (RFC 7667 §3.7).
    fn takes(&mut self, layer: Option<usize>, keyframe: bool) -> bool {
        let Some(layer) = layer else {
            if self.waiting_keyframe {
                if !keyframe {
                    return false;
                }
                self.waiting_keyframe = false;
            }
            return true;
        };
        let switching = self.waiting_keyframe || self.layer != self.target;
        if switching && self.target == Some(layer) && keyframe {
            if self.layer != Some(layer) {
                self.rewriter.resync();
            }
            self.layer = Some(layer);
            self.waiting_keyframe = false;
            return true;
        }
        !self.waiting_keyframe && self.layer == Some(layer)
    }

    /// Whether it waits for a keyframe: to start, resume or switch.
    pub(crate) fn needs_keyframe(&self) -> bool {
        self.waiting_keyframe || self.layer != self.target
    }
}

impl Published {
    /// The simulcast layer of a packet with `ssrc` (`None` for a track
    /// without layers), learned from the publisher's rid extension
    /// ([`realtimer_proto::Rtc::remote_rid`]); `Err` for a packet of no
    /// known layer yet.
    fn layer_of(&mut self, rtc: &realtimer_proto::Rtc, ssrc: u32) -> Result<Option<usize>, ()> {
        if self.layers.is_empty() {
            return Ok(None);
        }
        if let Some(i) = self.layers.iter().position(|l| l.ssrc == Some(ssrc)) {
            return Ok(Some(i));
        }
        let rid = rtc.remote_rid(self.media, ssrc).ok_or(())?;
        let i = self.layers.iter().position(|l| l.rid == rid).ok_or(())?;
        self.layers[i].ssrc = Some(ssrc);
        Ok(Some(i))
    }

    /// Each layer's rate (bit/s) over the last second, 0 for one not
    /// arriving or not measured yet: [`realtimer_bwe::pick_layer`]'s
    /// input.
    pub(crate) fn layer_rates(&self, now: Instant) -> Vec<u64> {
        self.layers
            .iter()
            .map(|l| if l.arriving(now) { l.meter.rate() } else { 0 })
            .collect()
    }

    /// The lowest layer arriving.
    fn lowest_layer(&self, now: Instant) -> Option<usize> {
        self.layers.iter().position(|l| l.arriving(now))
    }
}

impl Layer {
    fn arriving(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|at| now.saturating_duration_since(at) < LAYER_STALE)
    }
}

impl Sfu {
    /// The participant's connection reports a track it sends us.
    pub(crate) fn publish(
        &mut self,
        now: Instant,
        id: ParticipantId,
        media: MediaRef,
        info: TrackInfo,
    ) {
        let limit = self.config.limits.tracks_per_participant;
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if p.published.iter().any(|t| t.media == media) {
            return;
        }
        if p.published.len() >= limit {
            self.events
                .push_back(SfuEvent::LimitExceeded(LimitError::TooManyTracks {
                    participant: id,
                    limit,
                }));
            return;
        }
        p.published.push(Published {
            media,
            kind: info.kind,
            codecs: info.codecs,
            muted: false,
            forwards: Vec::new(),
            meter: Default::default(),
            keyframe_requested: None,
            audio_level: None,
            layers: info
                .rids
                .iter()
                .map(|rid| Layer {
                    rid: rid.clone(),
                    ssrc: None,
                    meter: Default::default(),
                    last_packet: None,
                })
                .collect(),
        });
        let room = p.room.clone();
        let track = TrackId {
            participant: id,
            media,
        };
        debug!(%track, kind = %info.kind, room, "published");
        self.events.push_back(SfuEvent::TrackPublished {
            room: room.clone(),
            track,
            kind: info.kind,
            stream_ids: info.stream_ids,
        });
        let others: Vec<_> = self
            .room(&room)
            .iter()
            .copied()
            .filter(|o| *o != id)
            .filter(|o| self.participants.get(o).is_some_and(|p| p.subscribes))
            .collect();
        for other in others {
            self.subscribe(now, other, track);
        }
    }

    /// A viewer that takes no offers: every transceiver of its offer
    /// without a track yet becomes a [`Slot`], a sending transceiver (so
    /// the answer says `sendonly` with an SSRC) for a track of its kind.
    pub(crate) fn open_slots(&mut self, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id).filter(|p| !p.renegotiates) else {
            return;
        };
        let open: Vec<(MediaRef, MediaKind)> = p
            .rtc
            .transceivers()
            .filter(|m| !p.slots.iter().any(|s| s.media == *m))
            .filter(|m| !p.subscriptions.iter().any(|(_, s)| s == m))
            .filter_map(|m| Some((m, p.rtc.transceiver_kind(m)?)))
            .collect();
        for (m, kind) in open {
            let name = format!("slot-{}", m.index());
            match p.rtc.add_send_track(kind, "room", &name) {
                // The offer's transceiver (it wants to receive on it).
                Ok(got) if got == m => p.slots.push(Slot {
                    kind,
                    media: m,
                    track: None,
                    rewriter: None,
                }),
                Ok(other) => {
                    // Not one of the offer's: none is left to take.
                    let _ = p.rtc.remove_track(other);
                    break;
                }
                Err(e) => return debug!(%id, "no slot: {e}"),
            }
        }
    }

    /// Every track of the participant's room it does not receive yet.
    pub(crate) fn subscribe_to_room(&mut self, now: Instant, id: ParticipantId) {
        let Some(p) = self.participants.get(&id).filter(|p| p.subscribes) else {
            return;
        };
        let tracks: Vec<TrackId> = self
            .room(&p.room)
            .iter()
            .filter(|o| **o != id)
            .filter_map(|o| Some((*o, self.participants.get(o)?)))
            .flat_map(|(o, other)| {
                other.published.iter().map(move |t| TrackId {
                    participant: o,
                    media: t.media,
                })
            })
            .filter(|t| !p.subscriptions.iter().any(|(s, _)| s == t))
            .collect();
        for track in tracks {
            self.subscribe(now, id, track);
        }
    }

    /// Sends `track` to `subscriber`: a track on its connection (in the
    /// answer being made, or by our next offer), a forward, and a
    /// keyframe request when it is video.
    fn subscribe(&mut self, now: Instant, subscriber: ParticipantId, track: TrackId) {
        let Some(kind) = self.published(track).map(|t| t.kind) else {
            return;
        };
        let stream_id = track.participant.0.to_string();
        let track_name = track.to_string();
        let Some(s) = self.participants.get_mut(&subscriber) else {
            return;
        };
        let (media, rewriter) = if s.renegotiates {
            match s.rtc.add_send_track(kind, &stream_id, &track_name) {
                Ok(m) => (m, None),
                Err(e) => return debug!(%subscriber, %track, "cannot subscribe: {e}"),
            }
        } else {
            // A viewer: a free transceiver of its kind, or nothing.
            let Some(slot) = s
                .slots
                .iter_mut()
                .find(|x| x.kind == kind && x.track.is_none())
            else {
                return debug!(%subscriber, %track, "no free transceiver for it");
            };
            slot.track = Some(track);
            (slot.media, slot.rewriter.take())
        };
        s.subscriptions.push((track, media));
        self.touch(subscriber);
        let Some(t) = self.published_mut(track) else {
            return;
        };
        let clock_rate = t.codecs.first().map_or(90_000, |c| c.clock_rate);
        let rewriter = match rewriter {
            // The same clock: it goes on where the last track left off.
            Some(mut r) if r.clock_rate() == clock_rate => {
                r.resync();
                r
            }
            _ => StreamRewriter::new(clock_rate),
        };
        t.forwards.push(Forward {
            subscriber,
            media,
            rewriter,
            waiting_keyframe: kind == MediaKind::Video,
            payload_types: Vec::new(),
            held: false,
            held_changed: None,
            layer: None,
            target: None,
            target_raised: None,
        });
        if kind == MediaKind::Video {
            self.request_keyframe(now, track);
        }
    }

    /// The tracks of a participant who left leave every subscriber.
    pub(crate) fn unpublish(&mut self, now: Instant, id: ParticipantId, gone: &Participant) {
        for t in &gone.published {
            let track = TrackId {
                participant: id,
                media: t.media,
            };
            self.events.push_back(SfuEvent::TrackUnpublished {
                room: gone.room.clone(),
                track,
            });
            for f in &t.forwards {
                let Some(s) = self.participants.get_mut(&f.subscriber) else {
                    continue;
                };
                s.subscriptions.retain(|(x, _)| *x != track);
                if let Some(slot) = s.slots.iter_mut().find(|x| x.track == Some(track)) {
                    // A viewer keeps the transceiver for the next track.
                    slot.track = None;
                    slot.rewriter = Some(f.rewriter.clone());
                    continue;
                }
                if let Err(e) = s.rtc.remove_track(f.media) {
                    debug!(subscriber = %f.subscriber, "track not removed: {e}");
                }
                self.drain(now, f.subscriber);
            }
        }
    }

    fn published(&self, track: TrackId) -> Option<&Published> {
        self.participants
            .get(&track.participant)?
            .published
            .iter()
            .find(|t| t.media == track.media)
    }

    fn published_mut(&mut self, track: TrackId) -> Option<&mut Published> {
        self.participants
            .get_mut(&track.participant)?
            .published
            .iter_mut()
            .find(|t| t.media == track.media)
    }

    /// Asks the publisher for a keyframe (PLI), at most every
    /// [`KEYFRAME_RETRY`].
    fn request_keyframe(&mut self, now: Instant, track: TrackId) {
        let Some(p) = self.participants.get_mut(&track.participant) else {
            return;
        };
        let Some(t) = p.published.iter_mut().find(|t| t.media == track.media) else {
            return;
        };
        if t.keyframe_requested
            .is_some_and(|at| now.saturating_duration_since(at) < KEYFRAME_RETRY)
        {
            return;
        }
        t.keyframe_requested = Some(now);
        if t.layers.is_empty() {
            match p.rtc.request_keyframe(track.media) {
                Ok(()) => self.touch(track.participant),
                Err(e) => trace!(%track, "keyframe not requested: {e}"),
            }
            return;
        }
        // Simulcast: a PLI on each layer some subscriber waits to start
        // or switch to (every layer before any is chosen).
        let mut wanted: Vec<usize> = t
            .forwards
            .iter()
            .filter(|f| f.needs_keyframe())
            .filter_map(|f| f.target)
            .collect();
        if wanted.is_empty() {
            wanted = (0..t.layers.len()).collect();
        }
        wanted.sort_unstable();
        wanted.dedup();
        for i in wanted {
            if let Err(e) = p.rtc.request_layer_keyframe(track.media, &t.layers[i].rid) {
                trace!(%track, layer = i, "keyframe not requested: {e}");
            }
        }
        self.touch(track.participant);
    }

    /// Asks again for the tracks some subscriber still waits on.
    pub(crate) fn request_missing_keyframes(&mut self, now: Instant) {
        let waiting: Vec<TrackId> = self
            .participants
            .iter()
            .flat_map(|(id, p)| {
                p.published
                    .iter()
                    .filter(|t| !t.muted && t.forwards.iter().any(|f| f.needs_keyframe()))
                    .map(|t| TrackId {
                        participant: *id,
                        media: t.media,
                    })
            })
            .collect();
        for track in waiting {
            self.request_keyframe(now, track);
        }
    }

    /// A subscriber asks for a keyframe of what we send it: the request
    /// goes to the track's publisher.
    pub(crate) fn feedback(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        media: MediaRef,
        feedback: Feedback,
    ) {
        let Feedback::Keyframe(_) = feedback else {
            return;
        };
        let track = self
            .participants
            .get(&subscriber)
            .and_then(|s| s.subscriptions.iter().find(|(_, m)| *m == media))
            .map(|(t, _)| *t);
        if let Some(track) = track {
            self.request_keyframe(now, track);
        }
    }

    /// The send-side estimate towards a subscriber moved: its video tracks
    /// share what is left after its audio, the lightest first; a track
    /// that does not fit is held (audio never is), and a held one comes
    /// back, on a keyframe, once the estimate carries it with a margin.
    /// While any is held the connection probes for the bitrate of all
    /// (a held track sends nothing, so the estimate could not grow).
    pub(crate) fn estimate(&mut self, now: Instant, id: ParticipantId, bps: u64) {
        self.choose_layers(now, id, bps);
        let Some(s) = self.participants.get(&id) else {
            return;
        };
        let mut audio_tracks = 0u64;
        // (track, its rate, held now, when that last changed)
        let mut videos = Vec::new();
        for (track, _) in &s.subscriptions {
            let Some(t) = self.published(*track) else {
                continue;
            };
            if t.kind == MediaKind::Audio {
                audio_tracks += 1;
                continue;
            }
            if let Some(f) = t.forwards.iter().find(|f| f.subscriber == id) {
                if !t.muted {
                    // A simulcast track costs the layer chosen for it.
                    let rate = match f.target {
                        Some(l) => t.layer_rates(now).get(l).copied().unwrap_or(0),
                        None => t.meter.rate(),
                    };
                    videos.push((*track, rate, f.held, f.held_changed));
                }
            }
        }
        videos.sort_by_key(|v| v.1);
        // Nothing is held on the estimator's first guess: only once the
        // subscriber's transport-wide feedback has measured the path.
        let measured = s.rtc.available_outgoing_bitrate().is_some();
        let mut budget = bps.saturating_sub(AUDIO_RESERVE * audio_tracks);
        let mut changes = Vec::new();
        let mut wanted = AUDIO_RESERVE * audio_tracks;
        for (track, rate, held, changed) in videos {
            wanted += rate;
            let need = if held { rate * RESUME_FACTOR / 4 } else { rate };
            let fits = need <= budget;
            if fits {
                budget -= rate;
            }
            let settled =
                changed.is_none_or(|at| now.saturating_duration_since(at) >= MIN_HOLD_CHANGE);
            if fits == held && settled && (measured || held) {
                changes.push((track, !fits));
            }
        }
        let any_held = self
            .participants
            .get(&id)
            .into_iter()
            .flat_map(|s| &s.subscriptions)
            .filter_map(|(track, _)| self.published(*track))
            .flat_map(|t| &t.forwards)
            .any(|f| f.subscriber == id && f.held);
        if let Some(s) = self.participants.get_mut(&id) {
            s.estimate = Some(bps);
            if any_held || changes.iter().any(|(_, hold)| *hold) {
                // Ask for room for everything: the pacer probes at that
                // rate, and the estimate follows if the path has it.
                s.rtc.request_bitrate(now, wanted * RESUME_FACTOR / 4);
            }
        }
        for (track, hold) in changes {
            debug!(subscriber = %id, %track, bps, hold, "video track to subscriber");
            if let Some(t) = self.published_mut(track) {
                for f in t.forwards.iter_mut().filter(|f| f.subscriber == id) {
                    f.held = hold;
                    f.held_changed = Some(now);
                    f.pause(MediaKind::Video);
                }
            }
            if !hold {
                self.request_keyframe(now, track);
            }
        }
        self.touch(id);
    }

    /// Simulcast (RFC 8853): the layer each of the subscriber's simulcast
    /// video tracks gets from an estimate of `bps`: what is left after
    /// its audio and its other video, shared evenly among its simulcast
    /// tracks, picks the highest arriving layer that fits
    /// ([`realtimer_bwe::pick_layer`]). Down at
    /// once; up only with a 25% margin and [`MIN_HOLD_CHANGE`] after the
    /// last step up, so an estimate at the edge does not flap (each
    /// switch costs a keyframe). A layer that stops arriving is left at
    /// once. A subscriber starts on the lowest layer arriving, until its
    /// first estimate. A new target asks its keyframe.
    fn choose_layers(&mut self, now: Instant, id: ParticipantId, bps: u64) {
        let Some(s) = self.participants.get(&id) else {
            return;
        };
        // What the rest takes, and what all would take at the top.
        let (mut others, mut simulcast, mut full) = (0u64, 0u64, 0u64);
        for (track, _) in &s.subscriptions {
            match self.published(*track) {
                Some(t) if t.kind == MediaKind::Audio => others += AUDIO_RESERVE,
                Some(t) if t.muted => {}
                Some(t) if t.layers.is_empty() => others += t.meter.rate(),
                Some(t) => {
                    simulcast += 1;
                    full += t.layer_rates(now).into_iter().max().unwrap_or(0);
                }
                None => {}
            }
        }
        let share = bps.saturating_sub(others) / simulcast.max(1);
        let mut below_top = false;
        let tracks: Vec<TrackId> = s.subscriptions.iter().map(|(t, _)| *t).collect();
        let mut switched = Vec::new();
        for track in tracks {
            let Some(t) = self.published_mut(track) else {
                continue;
            };
            if t.layers.is_empty() || t.muted {
                continue;
            }
            let rates = t.layer_rates(now);
            let Some(wanted) = realtimer_bwe::pick_layer(share, &rates) else {
                continue;
            };
            let Some(f) = t.forwards.iter_mut().find(|f| f.subscriber == id) else {
                continue;
            };
            let current = f.target.filter(|c| rates.get(*c).is_some_and(|r| *r > 0));
            let next = match current {
                Some(c) if wanted > c => {
                    let settled = f
                        .target_raised
                        .is_none_or(|at| now.saturating_duration_since(at) >= MIN_HOLD_CHANGE);
                    let fits = share >= rates[wanted] * RESUME_FACTOR / 4;
                    if settled && fits {
                        wanted
                    } else {
                        c
                    }
                }
                _ => wanted,
            };
            below_top |= rates[next + 1..].iter().any(|r| *r > 0);
            if f.target != Some(next) {
                debug!(subscriber = %id, %track, layer = next, share, "simulcast layer");
                if f.target.is_some_and(|c| next > c) {
                    f.target_raised = Some(now);
                }
                f.target = Some(next);
                switched.push(track);
            }
        }
        if below_top {
            // Probe for the top layers: an estimate only grows with what
            // is sent, and a lower layer sends less.
            if let Some(s) = self.participants.get_mut(&id) {
                s.rtc
                    .request_bitrate(now, (others + full) * RESUME_FACTOR / 4);
            }
        }
        for track in switched {
            self.request_keyframe(now, track);
        }
    }

    /// Looks again at every subscriber some of whose video is held or
    /// comes from simulcast layers (a layer may fit again, or stop).
    pub(crate) fn reallocate_held(&mut self, now: Instant) {
        let held: Vec<(ParticipantId, u64)> = self
            .participants
            .values()
            .flat_map(|p| &p.published)
            .flat_map(|t| t.forwards.iter().map(move |f| (t, f)))
            .filter(|(t, f)| f.held || !t.layers.is_empty())
            .map(|(_, f)| f.subscriber)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter_map(|id| {
                let s = self.participants.get(&id)?;
                Some((id, s.rtc.available_outgoing_bitrate().or(s.estimate)?))
            })
            .collect();
        for (id, bps) in held {
            self.estimate(now, id, bps);
        }
    }

    /// An RTP packet of a published track: to every subscriber, with its
    /// own payload type, sequence number and timestamp.
    pub(crate) fn forward(
        &mut self,
        now: Instant,
        publisher: ParticipantId,
        media: MediaRef,
        packet: RtpPacket,
    ) {
        let limit = self.config.limits.bitrate_per_publisher;
        let Some(p) = self.participants.get_mut(&publisher) else {
            return;
        };
        if let Some(bitrate) = p.meter.add(now, packet.payload.len() + 12) {
            let over = bitrate > limit;
            if over && !p.over_limit {
                self.events
                    .push_back(SfuEvent::LimitExceeded(LimitError::BitrateExceeded {
                        participant: publisher,
                        bitrate,
                        limit,
                    }));
            }
            p.over_limit = over;
        }
        let over_limit = p.over_limit;
        let Some(track) = p.published.iter_mut().find(|t| t.media == media) else {
            return;
        };
        track.meter.add(now, packet.payload.len() + 12);
        let Ok(layer) = track.layer_of(&p.rtc, packet.ssrc) else {
            trace!(%publisher, ssrc = packet.ssrc, "a simulcast packet of no known layer");
            return;
        };
        if let Some(l) = layer {
            track.layers[l].meter.add(now, packet.payload.len() + 12);
            track.layers[l].last_packet = Some(now);
        }
        let lowest = track.lowest_layer(now);
        let audio_level = track.audio_level.take();
        let kind = track.kind;
        if track.muted || (over_limit && kind == MediaKind::Video) {
            return;
        }
        let Some(codec) = track
            .codecs
            .iter()
            .find(|c| c.payload_type == packet.payload_type)
        else {
            return;
        };
        let keyframe = kind == MediaKind::Video
            && track.forwards.iter().any(Forward::needs_keyframe)
            && starts_keyframe(&codec.name, &packet.payload);
        let codec = codec.clone();
        let mut forwards = std::mem::take(&mut track.forwards);
        let mut touched = Vec::new();
        for f in &mut forwards {
            let Some(s) = self.participants.get_mut(&f.subscriber) else {
                continue;
            };
            if f.held {
                continue;
            }
            if layer.is_some() && f.target.is_none() {
                // Start low, as a sender's estimator does; the
                // subscriber's estimate raises it.
                f.target = lowest;
            }
            if !f.takes(layer, keyframe) {
                continue;
            }
            let payload_type = match f
                .payload_types
                .iter()
                .find(|(from, _)| *from == packet.payload_type)
            {
                Some((_, to)) => *to,
                None => {
                    let to = s
                        .rtc
                        .transceiver_codecs(f.media)
                        .iter()
                        .find(|c| {
                            c.name.eq_ignore_ascii_case(&codec.name)
                                && c.clock_rate == codec.clock_rate
                        })
                        .map(|c| c.payload_type);
                    // Learned once negotiated (before, the list is empty).
                    if !s.rtc.transceiver_codecs(f.media).is_empty() {
                        f.payload_types.push((packet.payload_type, to));
                    }
                    to
                }
            };
            let Some(payload_type) = payload_type else {
                f.pause(kind);
                continue;
            };
            let Some((sequence_number, timestamp)) =
                f.rewriter
                    .rewrite(now, packet.sequence_number, packet.timestamp)
            else {
                continue;
            };
            let out = RtpPacket {
                payload_type,
                sequence_number,
                timestamp,
                marker: packet.marker,
                ssrc: 0,
                payload: packet.payload.clone(),
            };
            if kind == MediaKind::Audio {
                // Subscribers' browsers show it (getSynchronizationSources).
                let _ = s.rtc.set_audio_level(f.media, audio_level);
            }
            match s.rtc.write_rtp(now, f.media, &out) {
                Ok(()) => {
                    self.stats.forwarded += 1;
                    if !s.dirty {
                        touched.push(f.subscriber);
                    }
                }
                Err(RtcError::QueueFull) => self.stats.dropped_queue_full += 1,
                Err(e) => {
                    // Not negotiated (yet), or closing: start over later.
                    trace!(subscriber = %f.subscriber, "not forwarded: {e}");
                    f.pause(kind);
                }
            }
        }
        if let Some(track) = self
            .participants
            .get_mut(&publisher)
            .and_then(|p| p.published.iter_mut().find(|t| t.media == media))
        {
            forwards.append(&mut track.forwards);
            track.forwards = forwards;
        }
        for id in touched {
            self.touch(id);
        }
    }

    /// A participant's data-channel message goes to the room channel of
    /// every other participant of its room (those that opened one).
    pub(crate) fn relay_message(&mut self, now: Instant, from: ParticipantId, data: ChannelData) {
        let Some(room) = self.participants.get(&from).map(|p| p.room.clone()) else {
            return;
        };
        let members: Vec<_> = self.room(&room).to_vec();
        for id in members.into_iter().filter(|id| *id != from) {
            let Some(p) = self.participants.get_mut(&id) else {
                continue;
            };
            let Some(channel) = p.room_channel else {
                continue;
            };
            if let Err(e) = p.rtc.send(now, channel, data.clone()) {
                trace!(%id, "room message not sent: {e}");
            }
            self.touch(id);
        }
        self.events.push_back(SfuEvent::Message(from, data));
    }
}
