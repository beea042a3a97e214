//! The forwarding itself: publishing, subscribing, RTP from a publisher
//! to its subscribers, feedback back to the publisher, the estimate's
//! layer choice and room messages.

use std::time::{Duration, Instant};

use realtimer_proto::{ChannelData, Feedback, MediaKind, MediaRef, RtcError, RtpPacket, TrackInfo};
use tracing::{debug, trace};

use crate::participant::{Forward, Participant, Published};
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

impl Forward {
    /// Stops until resumed on a keyframe: the next packet forwarded
    /// continues the subscriber's stream without a gap.
    pub(crate) fn pause(&mut self, kind: MediaKind) {
        self.rewriter.resync();
        self.waiting_keyframe = kind == MediaKind::Video;
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
        let media = match s.rtc.add_send_track(kind, &stream_id, &track_name) {
            Ok(m) => m,
            Err(e) => return debug!(%subscriber, %track, "cannot subscribe: {e}"),
        };
        s.subscriptions.push((track, media));
        self.touch(subscriber);
        let Some(t) = self.published_mut(track) else {
            return;
        };
        let clock_rate = t.codecs.first().map_or(90_000, |c| c.clock_rate);
        t.forwards.push(Forward {
            subscriber,
            media,
            rewriter: StreamRewriter::new(clock_rate),
            waiting_keyframe: kind == MediaKind::Video,
            payload_types: Vec::new(),
            held: false,
            held_changed: None,
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
        match p.rtc.request_keyframe(track.media) {
            Ok(()) => self.touch(track.participant),
            Err(e) => trace!(%track, "keyframe not requested: {e}"),
        }
    }

    /// Asks again for the tracks some subscriber still waits on.
    pub(crate) fn request_missing_keyframes(&mut self, now: Instant) {
        let waiting: Vec<TrackId> = self
            .participants
            .iter()
            .flat_map(|(id, p)| {
                p.published
                    .iter()
                    .filter(|t| !t.muted && t.forwards.iter().any(|f| f.waiting_keyframe))
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
                    videos.push((*track, t.meter.rate(), f.held, f.held_changed));
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

    /// Looks again at every subscriber some of whose video is held.
    pub(crate) fn reallocate_held(&mut self, now: Instant) {
        let held: Vec<(ParticipantId, u64)> = self
            .participants
            .values()
            .flat_map(|p| &p.published)
            .flat_map(|t| &t.forwards)
            .filter(|f| f.held)
            .map(|f| f.subscriber)
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
            && track.forwards.iter().any(|f| f.waiting_keyframe)
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
            if f.waiting_keyframe {
                if !keyframe {
                    continue;
                }
                f.waiting_keyframe = false;
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
