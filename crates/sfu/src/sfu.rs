//! [`Sfu`]: the participants' connections on shared sockets, signaling,
//! the transmit queue and the timers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use realtimer_proto::{
    IceCandidateInit, PeerConnectionState, Rtc, RtcEvent, SdpType, SessionDescription,
    SignalingState, Transmit,
};
use realtimer_stun::local_ufrag;
use tracing::{debug, trace};

use crate::participant::Participant;
use crate::speaker::SpeakerDetector;
use crate::{LimitError, ParticipantId, SfuConfig, SfuError, SfuEvent};

/// How often a subscriber with held video has its estimate looked at
/// again (the estimate may not move enough for an event while little is
/// sent, and each look asks for a probe).
const REALLOCATION: std::time::Duration = std::time::Duration::from_secs(1);

/// Counters of the forwarding unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SfuStats {
    /// RTP packets written to subscribers' connections.
    pub forwarded: u64,
    /// Forwards refused because a subscriber's send queue was full (it
    /// does not read: the packet is dropped for it alone).
    pub dropped_queue_full: u64,
    /// Datagrams no participant claimed.
    pub unrouted: u64,
    /// Source addresses datagrams are routed by (each one a candidate
    /// of its participant's ICE agent, so at most
    /// `IceConfig::max_remote_candidates` per participant and ICE
    /// generation): a gauge.
    pub routed_addresses: u64,
}

/// The selective forwarding unit: rooms of participants, their
/// connections and what goes between them. See the crate docs.
#[derive(Debug)]
pub struct Sfu {
    pub(crate) config: SfuConfig,
    pub(crate) participants: HashMap<ParticipantId, Participant>,
    pub(crate) rooms: HashMap<String, Vec<ParticipantId>>,
    next_id: u64,
    by_ufrag: HashMap<String, ParticipantId>,
    by_address: HashMap<SocketAddr, ParticipantId>,
    /// Participants that may have datagrams to send, oldest first.
    dirty: VecDeque<ParticipantId>,
    /// Participants' next timeouts (entries whose instant no longer is
    /// the participant's `scheduled` are stale and skipped).
    timers: BinaryHeap<Reverse<(Instant, ParticipantId)>>,
    pub(crate) events: VecDeque<SfuEvent>,
    pub(crate) stats: SfuStats,
    /// When subscribers with held video are looked at again.
    next_reallocation: Option<Instant>,
    /// Each room's dominant speaker, for rooms whose publishers send
    /// audio levels.
    pub(crate) speakers: HashMap<String, SpeakerDetector<ParticipantId>>,
    /// When the speaker detectors tick next (while there are any).
    next_speaker_tick: Option<Instant>,
}

impl Sfu {
    /// An empty unit.
    pub fn new(config: SfuConfig) -> Sfu {
        Sfu {
            config,
            participants: HashMap::new(),
            rooms: HashMap::new(),
            next_id: 1,
            by_ufrag: HashMap::new(),
            by_address: HashMap::new(),
            dirty: VecDeque::new(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            stats: SfuStats::default(),
            next_reallocation: None,
            speakers: HashMap::new(),
            next_speaker_tick: None,
        }
    }

    /// The counters.
    pub fn stats(&self) -> SfuStats {
        self.stats
    }

    /// The participants of `room`, in the order they joined.
    pub fn room(&self, room: &str) -> &[ParticipantId] {
        self.rooms.get(room).map_or(&[], Vec::as_slice)
    }

    /// How many participants there are, in all rooms.
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// How many rooms have participants.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// The names of the rooms with participants, in no order.
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str)
    }

    /// The room a participant is in.
    pub fn room_of(&self, participant: ParticipantId) -> Option<&str> {
        Some(&self.participants.get(&participant)?.room)
    }

    /// A participant's connection, to read its state and stats.
    pub fn rtc(&self, participant: ParticipantId) -> Option<&Rtc> {
        Some(&self.participants.get(&participant)?.rtc)
    }

    /// Adds a participant to `room` (made on first join). It then sends
    /// its offer ([`Sfu::handle_offer`]) with what it publishes; the
    /// room's tracks come in the answer where its offer has room for them
    /// and by a server offer ([`SfuEvent::Offer`]) otherwise.
    pub fn join(&mut self, now: Instant, room: &str) -> Result<ParticipantId, SfuError> {
        self.join_with(now, room, true)
    }

    /// [`Sfu::join`] for a participant that receives the others' tracks
    /// only if `subscribe` (a WHIP publisher does not: it could not take
    /// our offers).
    pub fn join_with(
        &mut self,
        now: Instant,
        room: &str,
        subscribe: bool,
    ) -> Result<ParticipantId, SfuError> {
        let limit = self.config.limits.participants_per_room;
        if self.room(room).len() >= limit {
            return Err(LimitError::RoomFull {
                room: room.to_owned(),
                limit,
            }
            .into());
        }
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        let config = self.config.rtc.clone().with_seed(
            self.config
                .seed
                .wrapping_add(id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        let mut rtc = Rtc::new(config, self.config.certificate.clone(), now);
        for address in &self.config.local_addresses {
            rtc.add_local_address(now, *address);
        }
        self.by_ufrag.insert(rtc.local_ufrag().to_owned(), id);
        let mut participant = Participant::new(rtc, room.to_owned());
        participant.subscribes = subscribe;
        self.participants.insert(id, participant);
        self.rooms.entry(room.to_owned()).or_default().push(id);
        self.events.push_back(SfuEvent::ParticipantJoined {
            room: room.to_owned(),
            participant: id,
        });
        debug!(%id, room, "joined");
        Ok(id)
    }

    /// [`Sfu::join_with`] for a viewer that takes no offers (WHEP,
    /// draft-ietf-wish-whep, has no way to send one): it publishes
    /// nothing, and each transceiver its offer wants to receive on is
    /// answered with a track of the room, or kept for one of that kind
    /// that comes later; a track that goes frees its transceiver for the
    /// next. What its offer has no transceiver for does not reach it.
    pub fn join_viewer(&mut self, now: Instant, room: &str) -> Result<ParticipantId, SfuError> {
        let id = self.join_with(now, room, true)?;
        if let Some(p) = self.participants.get_mut(&id) {
            p.renegotiates = false;
        }
        Ok(id)
    }

    /// The participant's offer: what it publishes (and, for a viewer,
    /// what it wants to receive). Returns the answer to send back; the
    /// room's tracks are in it where the offer wants to receive that kind.
    /// An offer crossing one of ours (glare) wins: ours is rolled back
    /// and made again after.
    pub fn handle_offer(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        offer: SessionDescription,
    ) -> Result<SessionDescription, SfuError> {
        let p = self.participant_mut(participant)?;
        if p.rtc.signaling_state() == SignalingState::HaveLocalOffer {
            p.rtc
                .set_local_description(now, SessionDescription::rollback())?;
        }
        p.rtc.set_remote_description(now, offer)?;
        self.drain(now, participant);
        self.open_slots(participant);
        self.subscribe_to_room(now, participant);
        let p = self.participant_mut(participant)?;
        let answer = p.rtc.create_answer()?;
        p.rtc.set_local_description(now, answer.clone())?;
        self.drain(now, participant);
        Ok(answer)
    }

    /// The participant's answer to our [`SfuEvent::Offer`].
    pub fn handle_answer(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        answer: SessionDescription,
    ) -> Result<(), SfuError> {
        let p = self.participant_mut(participant)?;
        p.rtc.set_remote_description(now, answer)?;
        self.drain(now, participant);
        Ok(())
    }

    /// A remote ICE candidate of the participant (`None`: the end).
    pub fn add_ice_candidate(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        candidate: Option<&IceCandidateInit>,
    ) -> Result<(), SfuError> {
        let p = self.participant_mut(participant)?;
        p.rtc.add_ice_candidate(now, candidate)?;
        self.drain(now, participant);
        Ok(())
    }

    /// Holds or releases what the participant publishes (its mute
    /// button): held tracks are not forwarded, and resume on a keyframe
    /// without a gap.
    pub fn set_muted(&mut self, participant: ParticipantId, muted: bool) -> Result<(), SfuError> {
        let p = self.participant_mut(participant)?;
        for track in &mut p.published {
            track.muted = muted;
            if muted {
                for f in &mut track.forwards {
                    f.pause(track.kind);
                }
            }
        }
        Ok(())
    }

    /// The participant leaves: its connection closes, its tracks leave
    /// the other participants (who get an offer without them).
    pub fn leave(&mut self, now: Instant, participant: ParticipantId) -> Result<(), SfuError> {
        let mut p = self
            .participants
            .remove(&participant)
            .ok_or(SfuError::UnknownParticipant(participant))?;
        p.rtc.close(now);
        self.by_ufrag.retain(|_, id| *id != participant);
        self.by_address.retain(|_, id| *id != participant);
        self.stats.routed_addresses = self.by_address.len() as u64;
        if let Some(members) = self.rooms.get_mut(&p.room) {
            members.retain(|id| *id != participant);
            if members.is_empty() {
                self.rooms.remove(&p.room);
            }
        }
        if let Some(d) = self.speakers.get_mut(&p.room) {
            d.remove(participant);
            if !self.rooms.contains_key(&p.room) {
                self.speakers.remove(&p.room);
            }
        }
        self.events.push_back(SfuEvent::ParticipantLeft {
            room: p.room.clone(),
            participant,
        });
        self.unpublish(now, participant, &p);
        // Its subscriptions: drop it from the forwards it was in.
        for (track, _) in &p.subscriptions {
            if let Some(publisher) = self.participants.get_mut(&track.participant) {
                for t in &mut publisher.published {
                    t.forwards.retain(|f| f.subscriber != participant);
                }
            }
        }
        debug!(%participant, room = p.room, "left");
        Ok(())
    }

    /// A datagram received on one of the shared sockets: to the
    /// participant whose ICE ufrag a STUN request names (RFC 8445
    /// §7.2.2), else whose address it comes from.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let by_ufrag = local_ufrag(contents).and_then(|u| self.by_ufrag.get(u).copied());
        let Some(id) = by_ufrag.or_else(|| self.by_address.get(&source).copied()) else {
            self.stats.unrouted += 1;
            trace!(%source, "datagram for no participant");
            return;
        };
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        p.rtc.handle_receive(now, source, destination, contents);
        // A STUN request names its participant by ufrag, but anyone can
        // put a ufrag in a datagram: the address is learnt only once the
        // participant's ICE agent took the check (MESSAGE-INTEGRITY
        // passed) and knows the address as a candidate, so a flood of
        // requests from fresh addresses grows nothing past the agent's
        // bound on remote candidates.
        if by_ufrag.is_some()
            && self.by_address.get(&source) != Some(&id)
            && p.rtc.is_remote_candidate(source)
        {
            self.by_address.insert(source, id);
            self.stats.routed_addresses = self.by_address.len() as u64;
        }
        self.drain(now, id);
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(p) = self.participants.get_mut(&id) else {
                continue;
            };
            if p.scheduled != Some(at) {
                continue;
            }
            p.scheduled = None;
            p.rtc.handle_timeout(now);
            self.drain(now, id);
        }
        self.request_missing_keyframes(now);
        if self.next_speaker_tick.is_some_and(|at| at <= now) {
            self.tick_speakers(now);
        }
        if self.next_reallocation.is_none_or(|at| at <= now) {
            self.next_reallocation = Some(now + REALLOCATION);
            self.reallocate_held(now);
        }
    }

    /// When to call [`Sfu::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((at, _))| *at);
        match (timer, self.next_speaker_tick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next datagram to send, from any participant's connection.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(&id) = self.dirty.front() {
            if let Some(p) = self.participants.get_mut(&id) {
                if let Some(t) = p.rtc.poll_transmit() {
                    // Our own checks teach us the peer's address too
                    // (not an answer to a check the agent refused: that
                    // goes to whoever sent it).
                    if !self.by_address.contains_key(&t.destination)
                        && p.rtc.is_remote_candidate(t.destination)
                    {
                        self.by_address.insert(t.destination, id);
                        self.stats.routed_addresses = self.by_address.len() as u64;
                    }
                    return Some(t);
                }
                p.dirty = false;
            }
            self.dirty.pop_front();
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        self.events.pop_front()
    }

    pub(crate) fn participant_mut(
        &mut self,
        id: ParticipantId,
    ) -> Result<&mut Participant, SfuError> {
        self.participants
            .get_mut(&id)
            .ok_or(SfuError::UnknownParticipant(id))
    }

    /// After any input to a participant's connection: its events, its
    /// place in the transmit queue, its timer.
    pub(crate) fn drain(&mut self, now: Instant, id: ParticipantId) {
        loop {
            let Some(p) = self.participants.get_mut(&id) else {
                return;
            };
            let Some(event) = p.rtc.poll_event() else {
                break;
            };
            self.handle_event(now, id, event);
        }
        self.touch(id);
    }

    /// Queues a participant for transmit and reschedules its timer.
    pub(crate) fn touch(&mut self, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if !p.dirty {
            p.dirty = true;
            self.dirty.push_back(id);
        }
        if let Some(at) = p.rtc.poll_timeout() {
            if p.scheduled.is_none_or(|s| at < s) {
                p.scheduled = Some(at);
                self.timers.push(Reverse((at, id)));
            }
        }
    }

    fn handle_event(&mut self, now: Instant, id: ParticipantId, event: RtcEvent) {
        match event {
            RtcEvent::IceCandidate(c) => self.events.push_back(SfuEvent::IceCandidate(id, c)),
            RtcEvent::ConnectionState(state) => {
                self.events.push_back(SfuEvent::ConnectionState(id, state));
                if matches!(
                    state,
                    PeerConnectionState::Failed | PeerConnectionState::Closed
                ) && self.leave(now, id).is_ok()
                {
                    self.events.push_back(SfuEvent::Left(id));
                }
            }
            RtcEvent::NegotiationNeeded => self.offer(now, id),
            RtcEvent::Track(media, info) => self.publish(now, id, media, info),
            RtcEvent::AudioLevel(media, level) => self.audio_level(now, id, media, level),
            RtcEvent::Rtp(media, packet) => self.forward(now, id, media, packet),
            RtcEvent::Feedback(media, feedback) => self.feedback(now, id, media, feedback),
            RtcEvent::BandwidthEstimate(bps) => self.estimate(now, id, bps),
            RtcEvent::DataChannel(channel, _) => {
                if let Some(p) = self.participants.get_mut(&id) {
                    p.room_channel.get_or_insert(channel);
                }
            }
            RtcEvent::ChannelMessage(_, data) => self.relay_message(now, id, data),
            _ => {}
        }
    }

    /// The audio level of a publisher's packet: to its room's speaker
    /// detector, unless the track is muted or not one we forward.
    fn audio_level(
        &mut self,
        now: Instant,
        id: ParticipantId,
        media: realtimer_proto::MediaRef,
        level: realtimer_proto::AudioLevel,
    ) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let Some(track) = p
            .published
            .iter_mut()
            .find(|t| t.media == media && t.kind == realtimer_proto::MediaKind::Audio)
        else {
            return;
        };
        track.audio_level = Some(level);
        if track.muted {
            return;
        }
        match self.speakers.get_mut(&p.room) {
            Some(d) => d.record(id, level),
            None => {
                let mut d = SpeakerDetector::new(self.config.speaker);
                d.record(id, level);
                self.speakers.insert(p.room.clone(), d);
            }
        }
        self.next_speaker_tick
            .get_or_insert(now + self.config.speaker.tick);
    }

    /// Every room's speaker detector ticks; changes are announced to the
    /// room. The ticks stop while no room has levels.
    fn tick_speakers(&mut self, now: Instant) {
        for (room, d) in &mut self.speakers {
            if let Some(participant) = d.tick(now) {
                debug!(room, ?participant, "active speaker");
                self.events.push_back(SfuEvent::ActiveSpeaker {
                    room: room.clone(),
                    participant,
                });
            }
        }
        self.speakers
            .retain(|_, d| !d.is_empty() || d.current().is_some());
        self.next_speaker_tick =
            (!self.speakers.is_empty()).then(|| now + self.config.speaker.tick);
    }

    /// Negotiation is needed (tracks came or went): our offer.
    fn offer(&mut self, now: Instant, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id).filter(|p| p.renegotiates) else {
            return;
        };
        let offer = match p.rtc.create_offer() {
            Ok(o) => o,
            Err(e) => return debug!(%id, "no offer: {e}"),
        };
        if let Err(e) = p.rtc.set_local_description(now, offer.clone()) {
            return debug!(%id, "our offer refused: {e}");
        }
        debug_assert_eq!(offer.sdp_type, SdpType::Offer);
        self.events.push_back(SfuEvent::Offer(id, offer));
    }
}
