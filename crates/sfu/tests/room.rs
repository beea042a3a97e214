//! A room of peers around the forwarding unit on the simulated network
//! (virtual time): tracks go to every other participant with continuous
//! sequence numbers, keyframes are asked for, leaving renegotiates.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use realtimer_netsim::{Datagram, Direction, LinkConfig, Network, Node, NodeId};
use realtimer_proto::{
    AudioLevel, Certificate, ChannelData, ChannelRef, DataChannelInit, Feedback, IceCandidateInit,
    MediaKind, MediaRef, PeerConnectionState, Rtc, RtcConfig, RtcEvent, RtpPacket, SendLayerInit,
    SessionDescription, SignalingState,
};
use realtimer_sfu::{LimitError, Limits, ParticipantId, Sfu, SfuConfig, SfuError, SfuEvent};

const SFU_ADDRESS: &str = "10.0.0.100:3478";

struct SfuNode {
    sfu: Sfu,
    /// Events not yet handled by signaling.
    events: Vec<SfuEvent>,
    /// Who was announced speaking, in order.
    speakers: Vec<Option<ParticipantId>>,
}

impl SfuNode {
    fn collect(&mut self) {
        while let Some(e) = self.sfu.poll_event() {
            if let SfuEvent::ActiveSpeaker { participant, .. } = &e {
                self.speakers.push(*participant);
            }
            self.events.push(e);
        }
    }
}

impl Node for SfuNode {
    fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        self.sfu
            .handle_receive(now, d.source, d.destination, &d.contents);
        self.collect();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.sfu.handle_timeout(now);
        self.collect();
    }
    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        self.sfu.poll_transmit().map(|t| Datagram {
            source: t.source,
            destination: t.destination,
            contents: t.contents,
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.sfu.poll_timeout()
    }
}

/// A participant: publishes one audio and one video track, counts what
/// it receives.
struct Peer {
    rtc: Rtc,
    candidates: Vec<Option<IceCandidateInit>>,
    keyframe_wanted: bool,
    audio: Option<MediaRef>,
    video: Option<MediaRef>,
    sequence: u16,
    frames: u32,
    /// Received RTP per transceiver: (sequence numbers, payload heads).
    received: HashMap<MediaRef, Vec<(u16, u8)>>,
    tracks: Vec<(MediaRef, MediaKind)>,
    channel: Option<ChannelRef>,
    messages: Vec<ChannelData>,
    /// The audio level (-dBov, RFC 6464) its packets carry.
    level: Option<u8>,
    /// Levels of what it receives, by transceiver.
    levels: HashMap<MediaRef, Vec<u8>>,
    /// Its video goes as three simulcast layers ([`LAYERS`]).
    simulcast: bool,
    /// The third payload byte of each video packet received (the
    /// simulcast layer it was sent on), by transceiver.
    layers: HashMap<MediaRef, Vec<u8>>,
    /// Sends no media (a publisher that never sends).
    silent: bool,
    /// Reads nothing: datagrams to it are counted ([`Peer::ignored`]) and
    /// dropped, so it answers nothing, feedback included.
    deaf: bool,
    /// When each datagram it did not read came, and its size.
    ignored: Vec<(Instant, usize)>,
    /// Keyframe requests (PLI) it got.
    keyframe_requests: u32,
}

/// A simulcast publisher's layers: rid and payload bytes per packet
/// (three packets a frame, 25 frames a second: about 60, 240 and 660
/// kbit/s).
const LAYERS: [(&str, usize); 3] = [("q", 100), ("h", 400), ("f", 1100)];

impl Peer {
    fn new(now: Instant, seed: u64, address: SocketAddr) -> Peer {
        let cert = Certificate::generate(SystemTime::now()).unwrap();
        let mut rtc = Rtc::new(RtcConfig::default().with_seed(seed), cert, now);
        rtc.add_local_address(now, address);
        Peer {
            rtc,
            candidates: Vec::new(),
            keyframe_wanted: false,
            audio: None,
            video: None,
            sequence: 0,
            frames: 0,
            received: HashMap::new(),
            tracks: Vec::new(),
            channel: None,
            messages: Vec::new(),
            level: None,
            levels: HashMap::new(),
            simulcast: false,
            layers: HashMap::new(),
            silent: false,
            deaf: false,
            ignored: Vec::new(),
            keyframe_requests: 0,
        }
    }

    fn collect(&mut self) {
        while let Some(e) = self.rtc.poll_event() {
            match e {
                RtcEvent::IceCandidate(c) => self.candidates.push(c),
                RtcEvent::Feedback(_, Feedback::Keyframe(_)) => {
                    self.keyframe_wanted = true;
                    self.keyframe_requests += 1;
                }
                RtcEvent::Rtp(m, p) => {
                    if let Some(layer) = p.payload.get(2).filter(|_| p.payload.len() > 4) {
                        self.layers.entry(m).or_default().push(*layer);
                    }
                    self.received
                        .entry(m)
                        .or_default()
                        .push((p.sequence_number, p.payload[0]));
                }
                RtcEvent::Track(m, info) => self.tracks.push((m, info.kind)),
                RtcEvent::ChannelMessage(_, d) => self.messages.push(d),
                RtcEvent::AudioLevel(m, l) => self.levels.entry(m).or_default().push(l.level),
                _ => {}
            }
        }
    }

    /// One 20 ms tick of media: an Opus packet, and a VP8 frame every
    /// other tick (a keyframe when asked).
    fn send_media(&mut self, now: Instant) {
        if self.silent || self.rtc.connection_state() != PeerConnectionState::Connected {
            return;
        }
        self.frames += 1;
        let audio = RtpPacket {
            payload_type: 111,
            sequence_number: self.frames as u16,
            timestamp: self.frames * 960,
            marker: false,
            ssrc: 0,
            payload: Bytes::from_static(&[0xAA; 60]),
        };
        let level = self.level.map(|level| AudioLevel { level, voice: true });
        self.rtc
            .set_audio_level(self.audio.unwrap(), level)
            .unwrap();
        self.rtc
            .write_rtp(now, self.audio.unwrap(), &audio)
            .unwrap_or_else(|e| panic!("audio of a connected peer: {e}"));
        if self.frames % 2 == 0 {
            // VP8 descriptor (S, partition 0), then the frame tag's P bit.
            let tag = if std::mem::take(&mut self.keyframe_wanted) {
                0x00
            } else {
                0x01
            };
            if self.simulcast {
                self.send_layers(now, tag);
                self.collect();
                return;
            }
            for i in 0..3u8 {
                self.sequence = self.sequence.wrapping_add(1);
                let video = RtpPacket {
                    payload_type: 96,
                    sequence_number: self.sequence,
                    timestamp: self.frames * 1800,
                    marker: i == 2,
                    ssrc: 0,
                    payload: Bytes::from(vec![if i == 0 { 0x10 } else { 0x00 }, tag, 0, 0]),
                };
                self.rtc
                    .write_rtp(now, self.video.unwrap(), &video)
                    .unwrap_or_else(|e| panic!("video of a connected peer: {e}"));
            }
        }
        self.collect();
    }
}

impl Peer {
    /// One frame on each simulcast layer; each packet's third byte names
    /// its layer. The pacer may refuse some at first (its estimate starts
    /// low): those are not sent.
    fn send_layers(&mut self, now: Instant, tag: u8) {
        let first = self.sequence.wrapping_add(1);
        for (layer, (rid, size)) in LAYERS.iter().enumerate() {
            for i in 0..3u16 {
                let mut payload = vec![0u8; *size];
                payload[0] = if i == 0 { 0x10 } else { 0x00 };
                payload[1] = tag;
                payload[2] = layer as u8;
                let video = RtpPacket {
                    payload_type: 96,
                    sequence_number: first.wrapping_add(i),
                    timestamp: self.frames * 1800,
                    marker: i == 2,
                    ssrc: 0,
                    payload: Bytes::from(payload),
                };
                let _ = self
                    .rtc
                    .write_rtp_layer(now, self.video.unwrap(), rid, &video);
            }
        }
        self.sequence = first.wrapping_add(2);
    }
}

impl Node for Peer {
    fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        if self.deaf {
            self.ignored.push((now, d.contents.len()));
            return;
        }
        self.rtc
            .handle_receive(now, d.source, d.destination, &d.contents);
        self.collect();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.rtc.handle_timeout(now);
        self.collect();
    }
    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        self.rtc.poll_transmit().map(|t| Datagram {
            source: t.source,
            destination: t.destination,
            contents: t.contents,
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.rtc.poll_timeout()
    }
}

/// What signaling does to one peer of the room.
type Step = Box<dyn FnOnce(&mut Room, usize)>;

struct Room {
    net: Network,
    sfu: NodeId,
    peers: Vec<(NodeId, ParticipantId)>,
}

impl Room {
    fn new(seed: u64, limits: Limits) -> Room {
        let start = Instant::now();
        let mut net = Network::new(seed, start);
        let address: SocketAddr = SFU_ADDRESS.parse().unwrap();
        let host = net.add_host(&[address.ip()], None);
        net.set_uplink(host, LinkConfig::default().delay(Duration::from_millis(2)));
        let cert = Certificate::generate(SystemTime::now()).unwrap();
        let mut config = SfuConfig::new(vec![address], cert);
        config.limits = limits;
        config.seed = seed;
        let sfu = net.attach(
            host,
            SfuNode {
                sfu: Sfu::new(config),
                events: Vec::new(),
                speakers: Vec::new(),
            },
        );
        Room {
            net,
            sfu,
            peers: Vec::new(),
        }
    }

    fn sfu(&mut self) -> &mut SfuNode {
        self.net.node_mut::<SfuNode>(self.sfu)
    }

    fn peer(&mut self, i: usize) -> &mut Peer {
        let id = self.peers[i].0;
        self.net.node_mut::<Peer>(id)
    }

    /// A peer joins, publishing audio and video and opening a channel.
    fn join(&mut self, n: u8) -> Result<usize, SfuError> {
        let now = self.net.now();
        let participant = self.sfu().sfu.join(now, "room")?;
        self.offer(n, participant)
    }

    /// A peer admitted by [`Sfu::join`] sends its offer (audio, video, a
    /// channel) and takes the answer.
    fn offer(&mut self, n: u8, participant: ParticipantId) -> Result<usize, SfuError> {
        self.offer_with(n, participant, false, None)
    }

    /// [`Room::offer`], its video in simulcast layers if `simulcast`,
    /// its downlink `downlink` if given.
    fn offer_with(
        &mut self,
        n: u8,
        participant: ParticipantId,
        simulcast: bool,
        downlink: Option<LinkConfig>,
    ) -> Result<usize, SfuError> {
        let now = self.net.now();
        let ip = format!("10.0.0.{n}").parse().unwrap();
        let host = self.net.add_host(&[ip], None);
        self.net
            .set_uplink(host, LinkConfig::default().delay(Duration::from_millis(5)));
        if let Some(link) = downlink {
            self.net.set_link(host, Direction::Inbound, link);
        }
        let mut peer = Peer::new(now, u64::from(n), SocketAddr::new(ip, 5000));
        peer.audio = Some(peer.rtc.add_track(MediaKind::Audio, "s", "mic").unwrap());
        peer.simulcast = simulcast;
        peer.video = Some(if simulcast {
            let layers: Vec<_> = LAYERS
                .iter()
                .zip([100_000, 300_000, 900_000])
                .map(|((rid, _), max)| SendLayerInit::new(rid, max))
                .collect();
            peer.rtc
                .add_simulcast_track(MediaKind::Video, "s", "cam", &layers)
                .unwrap()
        } else {
            peer.rtc.add_track(MediaKind::Video, "s", "cam").unwrap()
        });
        peer.channel = Some(
            peer.rtc
                .create_data_channel(now, "room", &DataChannelInit::default())
                .unwrap(),
        );
        let offer = peer.rtc.create_offer().unwrap();
        peer.rtc.set_local_description(now, offer.clone()).unwrap();
        let node = self.net.attach(host, peer);
        let answer = self.sfu().sfu.handle_offer(now, participant, offer)?;
        let peer = self.net.node_mut::<Peer>(node);
        peer.rtc
            .set_remote_description(now, SessionDescription::answer(answer.sdp))
            .unwrap();
        peer.collect();
        self.sfu().collect();
        self.peers.push((node, participant));
        Ok(self.peers.len() - 1)
    }

    /// Signaling at once: candidates both ways, the unit's offers answered.
    fn signal(&mut self) {
        let now = self.net.now();
        let events = std::mem::take(&mut self.sfu().events);
        for e in events {
            let (pid, f): (ParticipantId, Step) = match e {
                SfuEvent::IceCandidate(p, c) => (
                    p,
                    Box::new(move |room, i| {
                        room.peer(i).rtc.add_ice_candidate(now, c.as_ref()).unwrap()
                    }),
                ),
                SfuEvent::Offer(p, offer) => (
                    p,
                    Box::new(move |room, i| {
                        let peer = room.peer(i);
                        peer.rtc.set_remote_description(now, offer).unwrap();
                        let answer = peer.rtc.create_answer().unwrap();
                        peer.rtc.set_local_description(now, answer.clone()).unwrap();
                        peer.collect();
                        let pid = room.peers[i].1;
                        room.sfu()
                            .sfu
                            .handle_answer(now, pid, SessionDescription::answer(answer.sdp))
                            .unwrap();
                        room.sfu().collect();
                    }),
                ),
                _ => continue,
            };
            if let Some(i) = self.peers.iter().position(|(_, p)| *p == pid) {
                f(self, i);
            }
        }
        for i in 0..self.peers.len() {
            let pid = self.peers[i].1;
            let candidates = std::mem::take(&mut self.peer(i).candidates);
            for c in candidates {
                self.sfu()
                    .sfu
                    .add_ice_candidate(now, pid, c.as_ref())
                    .unwrap();
            }
        }
        self.sfu().collect();
    }

    /// Runs `duration` in 20 ms ticks of media and signaling.
    fn run(&mut self, duration: Duration) {
        let end = self.net.now() + duration;
        while self.net.now() < end {
            self.signal();
            let now = self.net.now();
            for i in 0..self.peers.len() {
                self.peer(i).send_media(now);
            }
            self.net.run_for(Duration::from_millis(20));
        }
        self.signal();
    }

    /// What peer `i` received, per kind: (transceiver, packets).
    fn received(&mut self, i: usize, kind: MediaKind) -> Vec<(MediaRef, Vec<(u16, u8)>)> {
        let peer = self.peer(i);
        let mut out: Vec<_> = peer
            .received
            .iter()
            .filter(|(m, _)| peer.rtc.transceiver_kind(**m) == Some(kind))
            .map(|(m, v)| (*m, v.clone()))
            .collect();
        out.sort_by_key(|(m, _)| *m);
        out
    }
}

/// Sequence numbers in order, each one more than the last (the link
/// neither loses nor reorders here).
fn continuous(packets: &[(u16, u8)]) -> bool {
    packets.windows(2).all(|w| w[1].0 == w[0].0.wrapping_add(1))
}

/// Each of `n` peers receives the audio and video of the `n - 1` others,
/// continuous.
fn every_peer_receives_the_others(room: &mut Room, n: usize) {
    for i in 0..n {
        let audio = room.received(i, MediaKind::Audio);
        let video = room.received(i, MediaKind::Video);
        assert_eq!(audio.len(), n - 1, "peer {i} hears the others");
        assert_eq!(video.len(), n - 1, "peer {i} sees the others");
        for (_, packets) in audio.iter().chain(&video) {
            assert!(packets.len() > 30, "peer {i}: {} packets", packets.len());
            assert!(continuous(packets), "peer {i}: {packets:?}");
        }
    }
}

#[test]
fn three_participants_receive_each_other_and_one_leaves() {
    let mut room = Room::new(7, Limits::default());
    for n in 1..=3 {
        room.join(n).unwrap();
    }
    room.run(Duration::from_secs(3));
    for i in 0..3 {
        let connected = room.peer(i).rtc.connection_state();
        assert_eq!(connected, PeerConnectionState::Connected, "peer {i}");
        let audio = room.received(i, MediaKind::Audio);
        let video = room.received(i, MediaKind::Video);
        assert_eq!(audio.len(), 2, "peer {i} hears the two others");
        assert_eq!(video.len(), 2, "peer {i} sees the two others");
        for (_, packets) in audio.iter().chain(&video) {
            assert!(packets.len() > 30, "peer {i}: {} packets", packets.len());
            assert!(continuous(packets), "peer {i}: {packets:?}");
        }
        // Video starts on a keyframe (asked for by the unit).
        for (_, packets) in &video {
            assert_eq!(packets[0].1, 0x10, "starts a frame");
        }
    }
    // Keyframes were asked of every publisher.
    let stats = room.sfu().sfu.stats();
    assert!(stats.forwarded > 1000, "{stats:?}");

    // A room message reaches the others.
    let now = room.net.now();
    let channel = room.peer(0).channel.unwrap();
    room.peer(0)
        .rtc
        .send(now, channel, ChannelData::Text("hello".into()))
        .unwrap();
    room.run(Duration::from_millis(200));
    for i in 1..3 {
        assert_eq!(room.peer(i).messages, [ChannelData::Text("hello".into())]);
    }

    // Peer 0 leaves: the others get an offer without its tracks and keep
    // receiving each other without a gap.
    let now = room.net.now();
    let gone = room.peers[0].1;
    room.sfu().sfu.leave(now, gone).unwrap();
    room.sfu().collect();
    let unpublished = room
        .sfu()
        .events
        .iter()
        .filter(|e| matches!(e, SfuEvent::TrackUnpublished { .. }))
        .count();
    assert_eq!(unpublished, 2);
    let before: Vec<usize> = (1..3)
        .map(|i| {
            room.received(i, MediaKind::Video)
                .iter()
                .map(|(_, p)| p.len())
                .sum()
        })
        .collect();
    room.run(Duration::from_secs(2));
    for (k, i) in (1..3).enumerate() {
        let video = room.received(i, MediaKind::Video);
        let total: usize = video.iter().map(|(_, p)| p.len()).sum();
        assert!(total > before[k] + 50, "peer {i} keeps receiving");
        for (_, packets) in &video {
            assert!(continuous(packets));
        }
        let sending = room.peer(i).rtc.remote_description().unwrap().sdp.clone();
        assert_eq!(
            sending.matches("a=sendonly").count(),
            2,
            "one audio and one video from the remaining other: {sending}"
        );
    }
    assert_eq!(room.sfu().sfu.room("room").len(), 2);
}

#[test]
fn limits_are_refused_with_their_value() {
    let limits = Limits {
        participants_per_room: 2,
        tracks_per_participant: 1,
        ..Limits::default()
    };
    let mut room = Room::new(8, limits);
    room.join(1).unwrap();
    room.join(2).unwrap();
    match room.join(3) {
        Err(SfuError::Limit(LimitError::RoomFull { limit: 2, .. })) => {}
        other => panic!("{other:?}"),
    }
    let too_many = room
        .sfu()
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                SfuEvent::LimitExceeded(LimitError::TooManyTracks { limit: 1, .. })
            )
        })
        .count();
    assert_eq!(too_many, 2, "each published two tracks");
}

/// Peers joining one at a time while the others already send: each
/// joiner's tracks go out on the offered transceivers of those already
/// in, and nobody's own sending breaks (`write_rtp` failing is a panic in
/// `send_media`).
#[test]
fn four_participants_joining_one_by_one_keep_sending() {
    let mut room = Room::new(9, Limits::default());
    for n in 1..=4 {
        room.join(n).unwrap();
        room.run(Duration::from_millis(700));
    }
    room.run(Duration::from_secs(2));
    every_peer_receives_the_others(&mut room, 4);
}

/// Everyone admitted before anyone offers (a server that takes the join
/// requests of a room before their offers): the unit's own offers to
/// those not heard from yet are rolled back by their offers, and the
/// transceivers they made must not swallow the peers' own audio and video
/// (answering the peer's camera `sendonly` left it unable to send).
#[test]
fn four_admitted_before_their_offers_all_send_and_receive() {
    let mut room = Room::new(10, Limits::default());
    let now = room.net.now();
    let ids: Vec<_> = (0..4)
        .map(|_| room.sfu().sfu.join(now, "room").unwrap())
        .collect();
    for (n, id) in (1..).zip(ids) {
        room.offer(n, id).unwrap();
    }
    room.run(Duration::from_secs(3));
    every_peer_receives_the_others(&mut room, 4);
}

/// Peers' audio levels (RFC 6464) decide who is announced speaking: the
/// one who talks, then, once another talks for a while, that one; the
/// subscribers get each packet's level with it.
#[test]
fn the_loudest_publisher_is_announced_as_the_active_speaker() {
    let mut room = Room::new(11, Limits::default());
    for n in 1..=3 {
        room.join(n).unwrap();
    }
    for i in 0..3 {
        room.peer(i).level = Some(127);
    }
    room.run(Duration::from_secs(2));
    // Everyone silent: nobody announced.
    assert_eq!(room.sfu().speakers, vec![]);
    room.peer(0).level = Some(25);
    room.run(Duration::from_secs(3));
    let first = room.peers[0].1;
    assert_eq!(room.sfu().speakers, vec![Some(first)]);
    // Peer 2 hears peer 0's level with its audio, and peer 1's silence.
    let heard: Vec<Vec<u8>> = room.peer(2).levels.values().cloned().collect();
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert!(heard.iter().any(|l| l.last() == Some(&25)), "{heard:?}");
    assert!(
        heard.iter().any(|l| l.iter().all(|x| *x == 127)),
        "{heard:?}"
    );
    // Peer 1 speaks louder, peer 0 goes on quietly: the floor changes,
    // once.
    room.peer(1).level = Some(15);
    room.peer(0).level = Some(50);
    room.run(Duration::from_secs(3));
    let second = room.peers[1].1;
    assert_eq!(room.sfu().speakers, vec![Some(first), Some(second)]);
    // Peer 1 leaves while speaking: peer 0, still above the floor, has it.
    let now = room.net.now();
    room.sfu().sfu.leave(now, second).unwrap();
    room.peer(1).level = None;
    room.run(Duration::from_secs(1));
    assert_eq!(
        room.sfu().speakers,
        vec![Some(first), Some(second), Some(first)]
    );
}

/// Simulcast (RFC 8853): one publisher sends three layers; the unit
/// forwards one per subscriber, from that subscriber's estimate. A
/// subscriber behind a 600 kbit/s downlink (too little for the top layer
/// with the room's audio) ends on a lower layer, one with room climbs to
/// the highest; each subscriber's stream has no jump in its sequence
/// numbers across the switches.
#[test]
fn each_subscriber_gets_the_simulcast_layer_its_link_carries() {
    let mut room = Room::new(12, Limits::default());
    let now = room.net.now();
    let publisher = room.sfu().sfu.join(now, "room").unwrap();
    room.offer_with(1, publisher, true, None).unwrap();
    let wide = room.sfu().sfu.join(now, "room").unwrap();
    room.offer_with(2, wide, false, None).unwrap();
    let narrow = room.sfu().sfu.join(now, "room").unwrap();
    let link = LinkConfig::default()
        .delay(Duration::from_millis(5))
        .bandwidth(600_000, 30_000);
    room.offer_with(3, narrow, false, Some(link)).unwrap();
    room.run(Duration::from_secs(12));
    let video_of_publisher = |room: &mut Room, i: usize| -> Vec<u8> {
        let peer = room.peer(i);
        let mut v: Vec<_> = peer
            .layers
            .iter()
            .filter(|(m, l)| {
                peer.rtc.transceiver_kind(**m) == Some(MediaKind::Video) && l.len() > 50
            })
            .map(|(_, l)| l.clone())
            .collect();
        assert_eq!(v.len(), 1, "one simulcast track received: {v:?}");
        v.pop().unwrap()
    };
    let wide_layers = video_of_publisher(&mut room, 1);
    let narrow_layers = video_of_publisher(&mut room, 2);
    // The last three seconds: 75 frames of 3 packets.
    let tail = |l: &[u8]| l[l.len().saturating_sub(200)..].to_vec();
    assert!(
        tail(&wide_layers).iter().all(|l| *l == 2),
        "{wide_layers:?}"
    );
    let narrow_tail = tail(&narrow_layers);
    assert!(
        narrow_tail.len() == 200 && narrow_tail.iter().all(|l| *l < 2),
        "{narrow_layers:?}"
    );
    // Both started on the lowest.
    assert_eq!((wide_layers[0], narrow_layers[0]), (0, 0));
    // Sequence numbers at the switches: the rewriter continued them (a
    // lost packet or two on the narrow link is a gap of a few at most).
    for i in [1, 2] {
        for (_, packets) in room.received(i, MediaKind::Video) {
            assert!(
                packets.windows(2).all(|w| w[1].0.wrapping_sub(w[0].0) < 50),
                "peer {i}: {packets:?}"
            );
        }
    }
}

/// Bytes of `ignored` that came in `[from, to)`.
fn bytes_between(ignored: &[(Instant, usize)], from: Instant, to: Instant) -> usize {
    ignored
        .iter()
        .filter(|(at, _)| (from..to).contains(at))
        .map(|(_, n)| n)
        .sum()
}

/// A subscriber stops reading (no feedback, no answers): within seconds
/// the unit's estimate of its link falls to the minimum and what is sent
/// to it with it, long before consent would expire (RFC 7675: 30 s),
/// while the other subscriber keeps the publisher's top layer.
#[test]
fn a_subscriber_that_stops_reading_is_sent_less_and_the_others_keep_their_layer() {
    let mut room = Room::new(21, Limits::default());
    let now = room.net.now();
    let publisher = room.sfu().sfu.join(now, "room").unwrap();
    room.offer_with(1, publisher, true, None).unwrap();
    let reader = room.sfu().sfu.join(now, "room").unwrap();
    room.offer_with(2, reader, false, None).unwrap();
    let stopper = room.sfu().sfu.join(now, "room").unwrap();
    room.offer_with(3, stopper, false, None).unwrap();
    room.run(Duration::from_secs(8));
    let estimate = |room: &mut Room, p: ParticipantId| {
        room.sfu()
            .sfu
            .rtc(p)
            .and_then(Rtc::available_outgoing_bitrate)
            .unwrap_or(0)
    };
    let before = estimate(&mut room, stopper);
    assert!(before > 700_000, "it had the top layer's rate: {before}");
    let stopped = room.net.now();
    room.peer(2).deaf = true;
    room.run(Duration::from_secs(8));
    let end = room.net.now();
    let after = estimate(&mut room, stopper);
    assert!(after <= 60_000, "its estimate fell: {before} -> {after}");
    assert!(
        estimate(&mut room, reader) >= 700_000,
        "the reader's did not"
    );
    // What reached it: its first second unread (the estimate had not
    // fallen yet) against its last two.
    let ignored = room.peer(2).ignored.clone();
    let first = bytes_between(&ignored, stopped, stopped + Duration::from_secs(1));
    let last = bytes_between(&ignored, end - Duration::from_secs(2), end) / 2;
    assert!(
        last * 5 < first,
        "sent to it a second: {first} bytes at first, {last} at the end"
    );
    // The reader still gets the top layer, without a gap.
    let peer = room.peer(1);
    let layers: Vec<u8> = peer
        .layers
        .iter()
        .filter(|(m, _)| peer.rtc.transceiver_kind(**m) == Some(MediaKind::Video))
        .flat_map(|(_, l)| l.clone())
        .collect();
    let tail = &layers[layers.len().saturating_sub(200)..];
    assert!(
        tail.len() == 200 && tail.iter().all(|l| *l == 2),
        "{tail:?}"
    );
    for (_, packets) in room.received(1, MediaKind::Audio) {
        assert!(continuous(&packets), "{packets:?}");
    }
    println!(
        "estimate {before} -> {after} bit/s; {first} -> {last} bytes a second; {:?}",
        room.sfu().sfu.stats()
    );
}

/// A participant that publishes audio and video and never sends a packet:
/// the others get its tracks and nothing on them, keep receiving each
/// other, and it is asked for a keyframe no more than every
/// `KEYFRAME_RETRY` (500 ms), not in a loop.
#[test]
fn a_publisher_that_never_sends_costs_the_room_nothing() {
    let mut room = Room::new(22, Limits::default());
    room.join(1).unwrap();
    room.join(2).unwrap();
    let now = room.net.now();
    let silent = room.sfu().sfu.join(now, "room").unwrap();
    let i = room.offer(3, silent).unwrap();
    room.peer(i).silent = true;
    room.run(Duration::from_secs(10));
    for i in 0..2 {
        let peer = room.peer(i);
        assert_eq!(
            peer.tracks.len(),
            4,
            "peer {i}: the others' tracks, silent's too"
        );
        for kind in [MediaKind::Audio, MediaKind::Video] {
            // Only the other sending peer's transceiver carried packets.
            let received = room.received(i, kind);
            assert_eq!(received.len(), 1, "peer {i} {kind:?}: {received:?}");
            let packets = &received[0].1;
            assert!(packets.len() > 100, "peer {i} {kind:?}: {}", packets.len());
            assert!(continuous(packets), "peer {i}: {packets:?}");
        }
    }
    let requests = room.peer(i).keyframe_requests;
    assert!(
        (1..=25).contains(&requests),
        "keyframe requests to the silent publisher in 10 s: {requests}"
    );
    let got: usize = room.peer(i).received.values().map(Vec::len).sum();
    assert!(
        got > 100,
        "the silent one receives the others: {got} packets"
    );
}

/// A WHEP viewer (draft-ietf-wish-whep: no offers from the server) joins
/// an empty room with an audio and a video transceiver: a publisher that
/// comes later reaches it on those, without an offer; when that one
/// leaves and another comes, the next one's media continues the same
/// streams (sequence numbers without a jump).
#[test]
fn a_viewer_that_takes_no_offers_gets_tracks_published_after_it_joined() {
    let mut room = Room::new(23, Limits::default());
    let now = room.net.now();
    let ip = "10.0.0.9".parse().unwrap();
    let host = room.net.add_host(&[ip], None);
    room.net
        .set_uplink(host, LinkConfig::default().delay(Duration::from_millis(5)));
    let mut viewer = Peer::new(now, 9, SocketAddr::new(ip, 5000));
    viewer.silent = true;
    let audio = viewer
        .rtc
        .add_transceiver(MediaKind::Audio, realtimer_proto::Direction::RecvOnly)
        .unwrap();
    let video = viewer
        .rtc
        .add_transceiver(MediaKind::Video, realtimer_proto::Direction::RecvOnly)
        .unwrap();
    let offer = viewer.rtc.create_offer().unwrap();
    viewer
        .rtc
        .set_local_description(now, offer.clone())
        .unwrap();
    let node = room.net.attach(host, viewer);
    let id = room.sfu().sfu.join_viewer(now, "room").unwrap();
    let answer = room.sfu().sfu.handle_offer(now, id, offer).unwrap();
    assert!(
        answer.sdp.matches("a=sendonly").count() == 2,
        "{}",
        answer.sdp
    );
    room.net
        .node_mut::<Peer>(node)
        .rtc
        .set_remote_description(now, SessionDescription::answer(answer.sdp))
        .unwrap();
    room.peers.push((node, id));
    room.run(Duration::from_secs(1));
    // A publisher comes, sends, and goes; another comes.
    let first = room.join(1).unwrap();
    room.run(Duration::from_secs(4));
    let left = room.peers[first].1;
    let now = room.net.now();
    room.sfu().sfu.leave(now, left).unwrap();
    room.run(Duration::from_secs(1));
    room.join(2).unwrap();
    room.run(Duration::from_secs(4));
    assert!(
        !room
            .sfu()
            .events
            .iter()
            .any(|e| matches!(e, SfuEvent::Offer(p, _) if *p == id)),
        "no offer for the viewer"
    );
    let viewer = room.peer(0);
    assert_eq!(viewer.rtc.signaling_state(), SignalingState::Stable);
    let mut got: Vec<_> = viewer.received.keys().copied().collect();
    got.sort();
    assert_eq!(got, [audio, video], "only on its own transceivers");
    for m in [audio, video] {
        let packets = &viewer.received[&m];
        // Both publishers' media: each sends 50 audio packets and 75
        // video packets a second, for about 4 s.
        assert!(packets.len() > 250, "{m:?}: {} packets", packets.len());
        let heads: std::collections::BTreeSet<u8> = packets.iter().map(|p| p.1).collect();
        let jumps: Vec<_> = packets
            .windows(2)
            .filter(|w| w[1].0.wrapping_sub(w[0].0) != 1)
            .collect();
        assert!(
            jumps.is_empty(),
            "{m:?}: one stream across publishers: {jumps:?} {heads:?}"
        );
    }
}
