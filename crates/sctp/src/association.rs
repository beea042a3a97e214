//! The association: handshake with a stateless cookie (RFC 9260 §5), data
//! transfer, stream reset (RFC 6525), shutdown and abort, on the caller's
//! clock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::Sha256;
use tracing::{debug, trace};

use crate::chunk::{Chunk, DataChunk, Init, ReConfig};
use crate::config::SctpConfig;

/// The "No User Data" error cause code (RFC 9260 §3.3.10.9).
const NO_USER_DATA_CAUSE: u16 = 9;
use crate::error::ChunkType;
use crate::packet::{CommonHeader, Packet, COMMON_HEADER_LEN};
use crate::param::{Param, ReconfigParam, EDMID_DTLS};
use crate::recv::{Accepted, Message, Receiver};
use crate::send::{Reliability, SendError, Sender, SenderConfig, SenderStats};

/// The association's state (RFC 9260 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssociationState {
    /// Nothing yet (waits for an INIT, or `connect`).
    Closed,
    /// INIT sent.
    CookieWait,
    /// COOKIE ECHO sent.
    CookieEchoed,
    /// Data flows.
    Established,
    /// `shutdown` called; sending what is queued first.
    ShutdownPending,
    /// SHUTDOWN sent.
    ShutdownSent,
    /// SHUTDOWN received; sending what is queued first.
    ShutdownReceived,
    /// SHUTDOWN ACK sent.
    ShutdownAckSent,
    /// Over: shut down or aborted.
    Terminated,
}

/// Why the association ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// A graceful shutdown completed.
    Shutdown,
    /// The peer sent ABORT.
    PeerAborted,
    /// We aborted (`abort`).
    LocalAbort,
    /// INIT or COOKIE ECHO went unanswered.
    HandshakeTimeout,
    /// Data went unacknowledged through `max_retransmits` timeouts.
    PeerUnreachable,
    /// The peer sent a DATA chunk without user data (TSN `tsn`); we
    /// aborted with the "No User Data" cause (RFC 9260 §6.2, §3.3.10.9).
    NoUserData {
        /// The TSN of the empty DATA chunk.
        tsn: u32,
    },
}

/// What the association tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SctpEvent {
    /// The handshake completed.
    Connected,
    /// A whole message arrived.
    Message(Message),
    /// The peer reset these incoming streams (RFC 6525): for data channels,
    /// the peer closed them (RFC 8831 §6.7).
    IncomingStreamsReset(Vec<u16>),
    /// Our outgoing reset of these streams completed.
    OutgoingStreamsReset(Vec<u16>),
    /// A stream's buffered amount fell to its low threshold.
    BufferedAmountLow(u16),
    /// The association ended.
    Closed(CloseReason),
}

/// Re-configuration result "Success - Performed" (RFC 6525 §4.4).
const RESULT_PERFORMED: u32 = 1;
const RESULT_DENIED: u32 = 2;
const RESULT_IN_PROGRESS: u32 = 6;
/// How long a state cookie stays valid (RFC 9260 §15: 60 s).
const COOKIE_LIFETIME: Duration = Duration::from_secs(60);
const COOKIE_MAC_LEN: usize = 16;
/// Cookie body: peer tag, peer initial TSN, peer window, our tag, our
/// initial TSN (4 bytes each), creation time (8), the peer's zero-checksum
/// acceptance (4).
const COOKIE_BODY_LEN: usize = 32;
/// Chunk types we support beyond RFC 9260 (RFC 5061 Supported Extensions).
const EXTENSIONS: [u8; 2] = [ChunkType::RE_CONFIG.0, ChunkType::FORWARD_TSN.0];

/// Our parameters and the peer's, once known.
#[derive(Debug, Clone, Copy)]
struct Tags {
    local_tag: u32,
    local_initial_tsn: u32,
}

#[derive(Debug)]
struct PendingReset {
    request_seq: u32,
    streams: Vec<u16>,
    deadline: Instant,
}

/// An SCTP association over one DTLS connection.
#[derive(Debug)]
pub struct Association {
    config: SctpConfig,
    cookie_secret: [u8; 32],
    epoch: Instant,
    state: AssociationState,
    tags: Tags,
    peer_tag: u32,
    sender: Option<Sender>,
    receiver: Option<Receiver>,
    peer_max_message_size: usize,
    /// The peer's initial TSN and window from its INIT ACK.
    peer_init: Option<(u32, u32)>,
    /// INIT or COOKIE ECHO to retransmit, with its timer (T1).
    handshake: Option<(Chunk, Instant, u32)>,
    ack_deadline: Option<Instant>,
    /// T2: SHUTDOWN or SHUTDOWN ACK retransmission.
    shutdown_deadline: Option<Instant>,
    /// When the next HEARTBEAT goes out, and how many are unanswered.
    heartbeat_due: Option<Instant>,
    heartbeats_unanswered: u32,
    control: VecDeque<Chunk>,
    transmits: VecDeque<Bytes>,
    events: VecDeque<SctpEvent>,
    low_thresholds: HashMap<u16, usize>,
    above_threshold: HashSet<u16>,
    // Stream reset (RFC 6525).
    next_request_seq: u32,
    resets_wanted: Vec<u16>,
    reset_in_flight: Option<PendingReset>,
    closing: HashSet<u16>,
    peer_request_seq: Option<u32>,
    peer_reset_waiting: Vec<(u32, u32, Vec<u16>)>,
    last_peer_result: Option<(u32, u32)>,
    scratch: Vec<DataChunk>,
    /// The peer accepts zero checksums over DTLS (RFC 9653) and so do we.
    send_zero_checksum: bool,
}

impl Association {
    /// A closed association; call [`Self::connect`], or let the peer's INIT
    /// open it (WebRTC peers usually both connect: RFC 9260 §5.2.1 handles
    /// the crossing INITs).
    pub fn new(config: SctpConfig, now: Instant) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut cookie_secret = [0u8; 32];
        rng.fill(&mut cookie_secret);
        let tags = Tags {
            local_tag: rng.random_range(1..=u32::MAX),
            local_initial_tsn: rng.random(),
        };
        let next_request_seq = tags.local_initial_tsn;
        Association {
            peer_max_message_size: 65536,
            config,
            cookie_secret,
            epoch: now,
            state: AssociationState::Closed,
            tags,
            peer_tag: 0,
            peer_init: None,
            sender: None,
            receiver: None,
            handshake: None,
            ack_deadline: None,
            shutdown_deadline: None,
            heartbeat_due: None,
            heartbeats_unanswered: 0,
            control: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            low_thresholds: HashMap::new(),
            above_threshold: HashSet::new(),
            next_request_seq,
            resets_wanted: Vec::new(),
            reset_in_flight: None,
            closing: HashSet::new(),
            peer_request_seq: None,
            peer_reset_waiting: Vec::new(),
            last_peer_result: None,
            scratch: Vec::new(),
            send_zero_checksum: false,
        }
    }

    /// The state.
    pub fn state(&self) -> AssociationState {
        self.state
    }

    /// The peer's `a=max-message-size` (RFC 8841; 64 KiB when absent).
    pub fn set_remote_max_message_size(&mut self, size: usize) {
        self.peer_max_message_size = size;
    }

    /// The smoothed round-trip time, once measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.sender.as_ref().and_then(Sender::srtt)
    }

    /// Room left in the send buffer: what [`Association::send`] takes
    /// before it answers [`SendError::BufferFull`] (0 before the
    /// association is up).
    pub fn send_buffer_room(&self) -> usize {
        self.sender
            .as_ref()
            .map_or(0, |s| self.config.send_buffer.saturating_sub(s.held()))
    }

    /// The largest message the peer takes (`a=max-message-size`).
    pub fn remote_max_message_size(&self) -> usize {
        self.peer_max_message_size
    }

    /// The sender's figures: windows, RTO, retransmissions.
    pub fn sender_stats(&self) -> SenderStats {
        self.sender.as_ref().map(Sender::stats).unwrap_or_default()
    }

    /// Sends INIT (RFC 9260 §5.1).
    ///
    /// The first INIT offers zero checksum (RFC 9653 §5.1) when
    /// [`SctpConfig::zero_checksum`] is on; its retransmissions do not.
    /// RFC 9260 §3.2.1 tells a receiver to skip an unknown parameter whose
    /// type starts with the bits 10 (0x8001 does), but some deployed stacks
    /// drop the whole INIT instead (Pion v3.1.56: "unhandled ParamType"). A
    /// stack that parses the parameter answers the first INIT within one
    /// round trip, so nothing changes with it; one that drops it gets a
    /// plain INIT after the first T1 timeout (`rto_initial`) instead of
    /// never. Most such stacks also send their own INIT (Pion always does),
    /// and our INIT ACK to it is plain (see `handle_init`), so they
    /// connect without waiting for T1 at all.
    pub fn connect(&mut self, now: Instant) {
        if self.state != AssociationState::Closed {
            return;
        }
        let init = Chunk::Init(self.our_init(Vec::new(), self.config.zero_checksum));
        self.state = AssociationState::CookieWait;
        self.send_handshake(now, init, 0);
    }

    /// Our INIT or INIT ACK. `offer_zero_checksum`: whether it carries
    /// Zero Checksum Acceptable (see [`Self::connect`] and
    /// [`Self::handle_init`] for when it does).
    fn our_init(&self, mut params: Vec<Param>, offer_zero_checksum: bool) -> Init {
        params.push(Param::SupportedExtensions(Bytes::from_static(&EXTENSIONS)));
        params.push(Param::ForwardTsnSupported);
        if offer_zero_checksum {
            params.push(Param::ZeroChecksumAcceptable { edmid: EDMID_DTLS });
        }
        Init {
            initiate_tag: self.tags.local_tag,
            a_rwnd: self.config.receive_window as u32,
            outbound_streams: self.config.streams,
            inbound_streams: self.config.streams,
            initial_tsn: self.tags.local_initial_tsn,
            params,
        }
    }

    fn send_handshake(&mut self, now: Instant, chunk: Chunk, attempts: u32) {
        let tag = if matches!(chunk, Chunk::Init(_)) {
            0
        } else {
            self.peer_tag
        };
        self.write_packet(tag, vec![chunk.clone()]);
        let wait = self.config.rto_initial * 2u32.saturating_pow(attempts.min(6));
        self.handshake = Some((chunk, now + wait.min(self.config.rto_max), attempts));
    }

    /// Queues a message (RFC 8831: ordered or not, with a reliability).
    pub fn send(
        &mut self,
        now: Instant,
        stream: u16,
        ppid: u32,
        payload: Bytes,
        unordered: bool,
        reliability: Reliability,
    ) -> Result<(), SendError> {
        if !matches!(self.state, AssociationState::Established) {
            return Err(SendError::NotOpen);
        }
        if payload.len() > self.peer_max_message_size {
            return Err(SendError::TooLarge {
                size: payload.len(),
                max: self.peer_max_message_size,
            });
        }
        if self.closing.contains(&stream) {
            return Err(SendError::StreamClosing(stream));
        }
        let sender = self.sender.as_mut().ok_or(SendError::NotOpen)?;
        sender.send(now, stream, ppid, payload, unordered, reliability)?;
        if let Some(threshold) = self.low_thresholds.get(&stream) {
            if sender.buffered_amount(stream) > *threshold {
                self.above_threshold.insert(stream);
            }
        }
        self.flush(now);
        Ok(())
    }

    /// Bytes queued on a stream and not yet sent (RTCDataChannel.bufferedAmount).
    pub fn buffered_amount(&self, stream: u16) -> usize {
        self.sender
            .as_ref()
            .map_or(0, |s| s.buffered_amount(stream))
    }

    /// Sets the level at which [`SctpEvent::BufferedAmountLow`] fires.
    pub fn set_buffered_amount_low_threshold(&mut self, stream: u16, threshold: usize) {
        self.low_thresholds.insert(stream, threshold);
    }

    /// Resets our outgoing streams (closes data channels, RFC 8831 §6.7),
    /// once their queued data is acknowledged.
    pub fn reset_streams(&mut self, now: Instant, streams: &[u16]) {
        for s in streams {
            if self.closing.insert(*s) {
                self.resets_wanted.push(*s);
            }
        }
        self.flush(now);
    }

    /// Starts a graceful shutdown (RFC 9260 §9.2).
    pub fn shutdown(&mut self, now: Instant) {
        match self.state {
            AssociationState::Established => {
                self.state = AssociationState::ShutdownPending;
                self.flush(now);
            }
            AssociationState::Closed
            | AssociationState::CookieWait
            | AssociationState::CookieEchoed => {
                self.terminate(CloseReason::Shutdown);
            }
            _ => {}
        }
    }

    /// Aborts at once (RFC 9260 §9.1).
    pub fn abort(&mut self) {
        if self.state == AssociationState::Terminated {
            return;
        }
        if self.state != AssociationState::Closed {
            self.send_abort(Bytes::new());
        }
        self.terminate(CloseReason::LocalAbort);
    }

    /// Writes an ABORT (RFC 9260 §3.3.7) with `causes`, already encoded.
    fn send_abort(&mut self, causes: Bytes) {
        self.write_packet(
            self.peer_tag,
            vec![Chunk::Abort {
                reflected_tag: false,
                causes,
            }],
        );
    }

    fn terminate(&mut self, reason: CloseReason) {
        if self.state == AssociationState::Terminated {
            return;
        }
        debug!(?reason, "SCTP association closed");
        self.state = AssociationState::Terminated;
        self.handshake = None;
        self.ack_deadline = None;
        self.shutdown_deadline = None;
        self.sender = None;
        self.control.clear();
        self.events.push_back(SctpEvent::Closed(reason));
    }

    /// One SCTP packet from DTLS. Malformed packets and packets with a wrong
    /// verification tag are dropped (RFC 9260 §8.5).
    pub fn handle_packet(&mut self, now: Instant, data: &Bytes) {
        if self.state == AssociationState::Terminated {
            return;
        }
        let parsed = if self.config.zero_checksum {
            Packet::parse_accepting_zero_checksum(data)
        } else {
            Packet::parse(data)
        };
        let packet = match parsed {
            Ok(p) => p,
            Err(e) => {
                trace!("dropping SCTP packet: {e}");
                return;
            }
        };
        if !self.tag_ok(&packet) {
            trace!(
                tag = packet.header.verification_tag,
                "dropping a packet with a wrong verification tag"
            );
            return;
        }
        let mut had_data = false;
        for chunk in packet.chunks {
            match chunk {
                Chunk::Data(d) if d.payload.is_empty() => {
                    // RFC 9260 §6.2: a DATA chunk without user data MUST be
                    // answered with an ABORT carrying "No User Data"
                    // (§3.3.10.9: cause 9, the chunk's TSN). Ignoring it
                    // instead leaves a hole at its TSN that stalls the
                    // peer's later messages (werift 0.25 sends empty
                    // messages so).
                    self.abort_no_user_data(d.tsn);
                    return;
                }
                Chunk::Data(d) => {
                    had_data = true;
                    self.handle_data(d);
                }
                Chunk::Init(init) => self.handle_init(now, init),
                Chunk::InitAck(init) => self.handle_init_ack(now, init),
                Chunk::CookieEcho(cookie) => self.handle_cookie_echo(now, &cookie),
                Chunk::CookieAck => {
                    if self.state == AssociationState::CookieEchoed {
                        self.handshake = None;
                        self.establish(now);
                    }
                }
                Chunk::Sack(sack) => {
                    if let Some(sender) = self.sender.as_mut() {
                        sender.handle_sack(now, &sack);
                    }
                    self.check_thresholds();
                }
                Chunk::Heartbeat(info) => self.control.push_back(Chunk::HeartbeatAck(info)),
                Chunk::HeartbeatAck(info) => self.handle_heartbeat_ack(now, &info),
                Chunk::Error(_) => {}
                Chunk::Abort { .. } => {
                    self.terminate(CloseReason::PeerAborted);
                    return;
                }
                Chunk::Shutdown { cumulative_tsn_ack } => {
                    self.handle_shutdown(now, cumulative_tsn_ack)
                }
                Chunk::ShutdownAck => {
                    if matches!(
                        self.state,
                        AssociationState::ShutdownSent | AssociationState::ShutdownAckSent
                    ) {
                        self.write_packet(
                            self.peer_tag,
                            vec![Chunk::ShutdownComplete {
                                reflected_tag: false,
                            }],
                        );
                        self.terminate(CloseReason::Shutdown);
                        return;
                    }
                }
                Chunk::ShutdownComplete { .. } => {
                    if self.state == AssociationState::ShutdownAckSent {
                        self.terminate(CloseReason::Shutdown);
                        return;
                    }
                }
                Chunk::ForwardTsn(forward) => {
                    if let Some(receiver) = self.receiver.as_mut() {
                        receiver.forward_tsn(&forward);
                    }
                    self.deliver();
                }
                Chunk::ReConfig(reconfig) => self.handle_reconfig(now, reconfig),
                Chunk::Unknown { chunk_type, .. } => {
                    // RFC 9260 §3.2: the top bit says whether to skip the
                    // chunk (1) or stop processing the packet (0).
                    if chunk_type.0 & 0x80 == 0 {
                        break;
                    }
                }
            }
        }
        if had_data {
            self.after_data(now);
        }
        self.flush(now);
    }

    /// RFC 9260 §8.5: the tag must be ours, except on INIT (0), on ABORT and
    /// SHUTDOWN COMPLETE with the T bit (the peer's own), and on a COOKIE
    /// ECHO before we have a tag (the cookie is checked instead).
    fn tag_ok(&self, packet: &Packet) -> bool {
        let tag = packet.header.verification_tag;
        match packet.chunks.first() {
            Some(Chunk::Init(_)) => tag == 0 && packet.chunks.len() == 1,
            Some(
                Chunk::Abort {
                    reflected_tag: true,
                    ..
                }
                | Chunk::ShutdownComplete {
                    reflected_tag: true,
                },
            ) => tag == self.peer_tag,
            Some(Chunk::CookieEcho(_)) => true,
            _ => tag == self.tags.local_tag,
        }
    }

    fn handle_init(&mut self, now: Instant, init: Init) {
        match self.state {
            AssociationState::Closed
            | AssociationState::CookieWait
            | AssociationState::CookieEchoed => {}
            // A restarted peer is not supported: it gets nothing and times out.
            _ => return,
        }
        if init.initiate_tag == 0 {
            return;
        }
        let cookie = self.make_cookie(now, &init);
        // RFC 9653 §5.1 asks for the parameter in the INIT or INIT ACK of an
        // endpoint willing to accept zero checksums; we are willing only
        // when the peer's INIT offered it too. A peer whose INIT lacks it
        // would not send us zero checksums anyway (both known stacks tie
        // both directions to one setting) and may not parse it: Pion
        // v3.1.56 drops an INIT ACK carrying it, so no association ever
        // opens.
        let offer = self.config.zero_checksum && accepts_zero_checksum(&init.params);
        let ack = Chunk::InitAck(self.our_init(vec![Param::StateCookie(cookie)], offer));
        self.write_packet(init.initiate_tag, vec![ack]);
    }

    /// RFC 9260 §5.1.3: the cookie carries both sides' parameters and a MAC,
    /// so nothing is kept until it comes back.
    fn make_cookie(&self, now: Instant, init: &Init) -> Bytes {
        let mut c = Vec::with_capacity(48);
        c.put_u32(init.initiate_tag);
        c.put_u32(init.initial_tsn);
        c.put_u32(init.a_rwnd);
        c.put_u32(self.tags.local_tag);
        c.put_u32(self.tags.local_initial_tsn);
        c.put_u64(now.saturating_duration_since(self.epoch).as_millis() as u64);
        c.put_u32(u32::from(
            self.config.zero_checksum && accepts_zero_checksum(&init.params),
        ));
        let mac = self.cookie_mac(&c);
        c.extend_from_slice(&mac);
        Bytes::from(c)
    }

    fn cookie_mac(&self, body: &[u8]) -> [u8; COOKIE_MAC_LEN] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.cookie_secret).expect("HMAC takes any key length");
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; COOKIE_MAC_LEN];
        out.copy_from_slice(&digest[..COOKIE_MAC_LEN]);
        out
    }

    fn handle_init_ack(&mut self, now: Instant, ack: Init) {
        if self.state != AssociationState::CookieWait || ack.initiate_tag == 0 {
            return;
        }
        let Some(cookie) = ack.params.iter().find_map(|p| match p {
            Param::StateCookie(c) => Some(c.clone()),
            _ => None,
        }) else {
            return;
        };
        self.peer_tag = ack.initiate_tag;
        self.peer_init = Some((ack.initial_tsn, ack.a_rwnd));
        self.send_zero_checksum = self.config.zero_checksum && accepts_zero_checksum(&ack.params);
        self.state = AssociationState::CookieEchoed;
        self.send_handshake(now, Chunk::CookieEcho(cookie), 0);
    }

    fn handle_cookie_echo(&mut self, now: Instant, cookie: &[u8]) {
        if cookie.len() != COOKIE_BODY_LEN + COOKIE_MAC_LEN {
            return;
        }
        let (body, mac) = cookie.split_at(COOKIE_BODY_LEN);
        let expected = self.cookie_mac(body);
        // Constant time is not needed for a MAC the peer cannot observe the
        // timing of across DTLS, but it is cheap.
        if mac
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
        {
            trace!("dropping COOKIE ECHO with a bad MAC");
            return;
        }
        let be32 =
            |at: usize| u32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
        let peer_tag = be32(0);
        let peer_initial_tsn = be32(4);
        let peer_rwnd = be32(8);
        let local_tag = be32(12);
        let local_initial_tsn = be32(16);
        let mut created = [0u8; 8];
        created.copy_from_slice(&body[20..28]);
        let created = Duration::from_millis(u64::from_be_bytes(created));
        let peer_zero_checksum = be32(28) == 1;
        if now
            .saturating_duration_since(self.epoch)
            .saturating_sub(created)
            > COOKIE_LIFETIME
        {
            return; // stale cookie (RFC 9260 §5.1.5)
        }
        if local_tag != self.tags.local_tag {
            return;
        }
        match self.state {
            AssociationState::Established => {
                if peer_tag == self.peer_tag {
                    // Our COOKIE ACK was lost.
                    self.control.push_back(Chunk::CookieAck);
                }
                return;
            }
            AssociationState::Closed
            | AssociationState::CookieWait
            | AssociationState::CookieEchoed => {}
            _ => return,
        }
        self.peer_tag = peer_tag;
        self.tags.local_initial_tsn = local_initial_tsn;
        self.send_zero_checksum = peer_zero_checksum;
        self.handshake = None;
        self.receiver = Some(Receiver::new(
            peer_initial_tsn,
            self.config.receive_window,
            self.config.max_message_size,
        ));
        self.sender = Some(self.new_sender(peer_rwnd));
        self.control.push_back(Chunk::CookieAck);
        self.state = AssociationState::Established;
        self.heartbeat_due = self.config.heartbeat_interval.map(|i| now + i);
        self.events.push_back(SctpEvent::Connected);
    }

    fn new_sender(&self, peer_rwnd: u32) -> Sender {
        Sender::new(
            SenderConfig {
                mtu: self.config.max_packet_size,
                rto_initial: self.config.rto_initial,
                rto_min: self.config.rto_min,
                rto_max: self.config.rto_max,
                send_buffer: self.config.send_buffer,
                initial_cwnd_packets: self.config.initial_cwnd_packets,
            },
            self.tags.local_initial_tsn,
            peer_rwnd,
        )
    }

    /// COOKIE ACK arrived: open with the parameters of the peer's INIT ACK.
    fn establish(&mut self, now: Instant) {
        let Some((peer_initial_tsn, peer_rwnd)) = self.peer_init.take() else {
            return;
        };
        self.receiver = Some(Receiver::new(
            peer_initial_tsn,
            self.config.receive_window,
            self.config.max_message_size,
        ));
        self.sender = Some(self.new_sender(peer_rwnd));
        self.state = AssociationState::Established;
        self.heartbeat_due = self.config.heartbeat_interval.map(|i| now + i);
        self.events.push_back(SctpEvent::Connected);
    }

    fn handle_data(&mut self, chunk: DataChunk) {
        let Some(receiver) = self.receiver.as_mut() else {
            return;
        };
        if receiver.receive(chunk) == Accepted::New {
            self.deliver();
        }
    }

    fn deliver(&mut self) {
        if let Some(receiver) = self.receiver.as_mut() {
            while let Some(m) = receiver.delivered.pop_front() {
                self.events.push_back(SctpEvent::Message(m));
            }
        }
    }

    /// RFC 9260 §6.2: SACK at once for gaps, duplicates or every second
    /// packet; otherwise within the delayed-ack time.
    fn after_data(&mut self, now: Instant) {
        let Some(receiver) = self.receiver.as_mut() else {
            return;
        };
        receiver.unacked_packets += 1;
        if receiver.ack_now || receiver.unacked_packets >= 2 {
            self.ack_deadline = Some(now);
        } else if self.ack_deadline.is_none() {
            self.ack_deadline = Some(now + self.config.delayed_ack);
        }
        self.process_peer_resets();
    }

    fn handle_shutdown(&mut self, now: Instant, cumulative_tsn_ack: u32) {
        if let Some(sender) = self.sender.as_mut() {
            let sack = crate::chunk::Sack {
                cumulative_tsn_ack,
                a_rwnd: sender.peer_rwnd as u32,
                gap_blocks: Vec::new(),
                duplicate_tsns: Vec::new(),
            };
            sender.handle_sack(now, &sack);
        }
        if matches!(
            self.state,
            AssociationState::Established | AssociationState::ShutdownPending
        ) {
            self.state = AssociationState::ShutdownReceived;
        }
    }

    fn handle_reconfig(&mut self, now: Instant, reconfig: ReConfig) {
        for param in reconfig.params {
            match param {
                ReconfigParam::OutgoingReset {
                    request_seq,
                    last_tsn,
                    streams,
                    ..
                } => {
                    if let Some((seq, result)) = self.last_peer_result {
                        if seq == request_seq {
                            // A retransmitted request: the same answer.
                            self.respond_reconfig(seq, result);
                            continue;
                        }
                    }
                    if !self
                        .peer_reset_waiting
                        .iter()
                        .any(|(s, _, _)| *s == request_seq)
                        && self.peer_reset_waiting.len() < 16
                    {
                        self.peer_reset_waiting
                            .push((request_seq, last_tsn, streams));
                    }
                    self.peer_request_seq = Some(request_seq);
                }
                ReconfigParam::IncomingReset { request_seq, .. } => {
                    self.respond_reconfig(request_seq, RESULT_DENIED);
                }
                ReconfigParam::Response {
                    response_seq,
                    result,
                } => {
                    let Some(pending) = self
                        .reset_in_flight
                        .take_if(|p| p.request_seq == response_seq)
                    else {
                        continue;
                    };
                    if result == RESULT_IN_PROGRESS {
                        self.reset_in_flight = Some(PendingReset {
                            deadline: now + self.rto(),
                            ..pending
                        });
                        continue;
                    }
                    if let Some(sender) = self.sender.as_mut() {
                        for s in &pending.streams {
                            sender.reset_stream(*s);
                        }
                    }
                    for s in &pending.streams {
                        self.closing.remove(s);
                    }
                    self.events
                        .push_back(SctpEvent::OutgoingStreamsReset(pending.streams));
                }
                ReconfigParam::Unknown { .. } => {}
            }
        }
        self.process_peer_resets();
    }

    /// RFC 6525 §5.2.2: reset incoming streams once every TSN up to the
    /// request's last TSN arrived.
    fn process_peer_resets(&mut self) {
        let Some(receiver) = self.receiver.as_mut() else {
            return;
        };
        let mut done = Vec::new();
        self.peer_reset_waiting.retain(|(seq, last_tsn, streams)| {
            if receiver.has_all_up_to(*last_tsn) {
                done.push((*seq, streams.clone()));
                false
            } else {
                true
            }
        });
        for (seq, streams) in done {
            if let Some(receiver) = self.receiver.as_mut() {
                for s in &streams {
                    receiver.reset_stream(*s);
                }
            }
            self.deliver();
            self.respond_reconfig(seq, RESULT_PERFORMED);
            self.last_peer_result = Some((seq, RESULT_PERFORMED));
            self.events
                .push_back(SctpEvent::IncomingStreamsReset(streams));
        }
    }

    fn respond_reconfig(&mut self, response_seq: u32, result: u32) {
        self.control.push_back(Chunk::ReConfig(ReConfig {
            params: vec![ReconfigParam::Response {
                response_seq,
                result,
            }],
        }));
    }

    fn rto(&self) -> Duration {
        self.sender
            .as_ref()
            .map_or(self.config.rto_initial, |s| s.rto)
    }

    fn check_thresholds(&mut self) {
        let Some(sender) = self.sender.as_ref() else {
            return;
        };
        let mut fired = Vec::new();
        for stream in &self.above_threshold {
            let threshold = self.low_thresholds.get(stream).copied().unwrap_or(0);
            if sender.buffered_amount(*stream) <= threshold {
                fired.push(*stream);
            }
        }
        for s in fired {
            self.above_threshold.remove(&s);
            self.events.push_back(SctpEvent::BufferedAmountLow(s));
        }
    }

    /// Moves time to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == AssociationState::Terminated {
            return;
        }
        if let Some((chunk, deadline, attempts)) = self.handshake.take() {
            if now >= deadline {
                if attempts + 1 >= self.config.max_init_retransmits {
                    self.terminate(CloseReason::HandshakeTimeout);
                    return;
                }
                self.send_handshake(now, without_zero_checksum_offer(chunk), attempts + 1);
            } else {
                self.handshake = Some((chunk, deadline, attempts));
            }
        }
        if let Some(sender) = self.sender.as_mut() {
            sender.expire(now);
            if sender.t3.is_some_and(|t| now >= t) {
                sender.handle_t3(now);
                if sender.timeouts > self.config.max_retransmits {
                    self.abort_unreachable();
                    return;
                }
            }
        }
        if let Some(reset) = &self.reset_in_flight {
            if now >= reset.deadline {
                let streams = reset.streams.clone();
                let seq = reset.request_seq;
                self.send_reset_request(now, seq, streams);
            }
        }
        if self.heartbeat_due.is_some_and(|t| now >= t) {
            self.send_heartbeat(now);
            if self.state == AssociationState::Terminated {
                return;
            }
        }
        if self.shutdown_deadline.is_some_and(|t| now >= t) {
            self.shutdown_deadline = None;
            match self.state {
                AssociationState::ShutdownSent => self.state = AssociationState::ShutdownPending,
                AssociationState::ShutdownAckSent => {
                    self.state = AssociationState::ShutdownReceived
                }
                _ => {}
            }
        }
        self.flush(now);
    }

    /// RFC 9260 §8.3: heartbeats while idle; the info is our send time.
    fn send_heartbeat(&mut self, now: Instant) {
        let Some(interval) = self.config.heartbeat_interval else {
            self.heartbeat_due = None;
            return;
        };
        let idle = self.sender.as_ref().is_none_or(Sender::is_idle);
        if idle && self.state == AssociationState::Established {
            if self.heartbeats_unanswered > self.config.max_retransmits {
                self.abort_unreachable();
                return;
            }
            self.heartbeats_unanswered += 1;
            let sent_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
            let mut info = Vec::with_capacity(12);
            // Heartbeat Info parameter (type 1) holding the send time.
            info.put_u16(1);
            info.put_u16(12);
            info.put_u64(sent_ms);
            self.control.push_back(Chunk::Heartbeat(Bytes::from(info)));
        }
        self.heartbeat_due = Some(now + self.rto() + interval);
    }

    fn handle_heartbeat_ack(&mut self, now: Instant, info: &[u8]) {
        self.heartbeats_unanswered = 0;
        if info.len() == 12 && info[..4] == [0, 1, 0, 12] {
            let mut ms = [0u8; 8];
            ms.copy_from_slice(&info[4..12]);
            let sent = Duration::from_millis(u64::from_be_bytes(ms));
            let rtt = now
                .saturating_duration_since(self.epoch)
                .saturating_sub(sent);
            if let Some(sender) = self.sender.as_mut() {
                sender.rtt_sample(rtt);
            }
        }
    }

    fn abort_unreachable(&mut self) {
        self.send_abort(Bytes::new());
        self.terminate(CloseReason::PeerUnreachable);
    }

    /// RFC 9260 §3.3.10.9: cause code 9, length 8, the TSN.
    fn abort_no_user_data(&mut self, tsn: u32) {
        let mut cause = Vec::with_capacity(8);
        cause.put_u16(NO_USER_DATA_CAUSE);
        cause.put_u16(8);
        cause.put_u32(tsn);
        self.send_abort(Bytes::from(cause));
        self.terminate(CloseReason::NoUserData { tsn });
    }

    fn send_reset_request(&mut self, now: Instant, request_seq: u32, streams: Vec<u16>) {
        let last_tsn = self.sender.as_ref().map_or(0, Sender::last_tsn);
        let response_seq = self.peer_request_seq.unwrap_or(0);
        self.control.push_back(Chunk::ReConfig(ReConfig {
            params: vec![ReconfigParam::OutgoingReset {
                request_seq,
                response_seq,
                last_tsn,
                streams: streams.clone(),
            }],
        }));
        self.reset_in_flight = Some(PendingReset {
            request_seq,
            streams,
            deadline: now + self.rto(),
        });
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.handshake.as_ref().map(|h| h.1),
            self.sender.as_ref().and_then(|s| s.t3),
            self.sender.as_ref().and_then(Sender::next_expiry),
            self.ack_deadline,
            self.reset_in_flight.as_ref().map(|r| r.deadline),
            self.shutdown_deadline,
            self.heartbeat_due,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Tells the association how many bytes of the messages it delivered
    /// ([`SctpEvent::Message`]) the application holds unread. They count
    /// against the receive window it advertises (RFC 9260 §6.2), so a
    /// peer cannot send faster than the application reads: a reader that
    /// stops holds at most `receive_window` bytes. When reading reopens
    /// the window past half, a SACK tells the peer at once.
    pub fn set_unread(&mut self, now: Instant, bytes: usize) {
        let Some(receiver) = self.receiver.as_mut() else {
            return;
        };
        if receiver.set_unread(bytes) {
            self.ack_deadline = Some(now);
            self.flush(now);
        }
    }

    /// The next packet for DTLS.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SctpEvent> {
        self.events.pop_front()
    }

    /// Builds packets from what is due: SACK, control chunks, DATA.
    fn flush(&mut self, now: Instant) {
        if !matches!(
            self.state,
            AssociationState::Established
                | AssociationState::ShutdownPending
                | AssociationState::ShutdownSent
                | AssociationState::ShutdownReceived
                | AssociationState::ShutdownAckSent
        ) {
            if !self.control.is_empty() {
                let control: Vec<Chunk> = self.control.drain(..).collect();
                self.write_packet(self.peer_tag, control);
            }
            return;
        }
        if self.ack_deadline.is_some_and(|t| now >= t) {
            self.ack_deadline = None;
            if let Some(receiver) = self.receiver.as_mut() {
                let sack = receiver.sack();
                self.control.push_front(Chunk::Sack(sack));
            }
        }
        if let Some(forward) = self.sender.as_mut().and_then(Sender::forward_tsn) {
            self.control.push_back(Chunk::ForwardTsn(forward));
        }
        self.start_wanted_resets(now);
        self.progress_shutdown(now);
        let max = self.config.max_packet_size;
        loop {
            let mut chunks: Vec<Chunk> = Vec::new();
            let mut size = COMMON_HEADER_LEN;
            while let Some(c) = self.control.front() {
                if size + c.padded_len() > max && !chunks.is_empty() {
                    break;
                }
                size += c.padded_len();
                if let Some(c) = self.control.pop_front() {
                    chunks.push(c);
                }
            }
            let mut data = std::mem::take(&mut self.scratch);
            if let Some(sender) = self.sender.as_mut() {
                if max > size {
                    sender.next_chunks(now, max - size, &mut data);
                }
            }
            chunks.extend(data.drain(..).map(Chunk::Data));
            self.scratch = data;
            if chunks.is_empty() {
                break;
            }
            self.write_packet(self.peer_tag, chunks);
        }
        self.check_thresholds();
    }

    fn start_wanted_resets(&mut self, now: Instant) {
        if self.reset_in_flight.is_some() || self.resets_wanted.is_empty() {
            return;
        }
        let Some(sender) = self.sender.as_ref() else {
            return;
        };
        // A stream resets after its queued messages are acknowledged.
        let ready: Vec<u16> = self
            .resets_wanted
            .iter()
            .copied()
            .filter(|s| !sender.stream_has_data(*s))
            .collect();
        if ready.is_empty() {
            return;
        }
        self.resets_wanted.retain(|s| !ready.contains(s));
        let seq = self.next_request_seq;
        self.next_request_seq = self.next_request_seq.wrapping_add(1);
        self.send_reset_request(now, seq, ready);
    }

    fn progress_shutdown(&mut self, now: Instant) {
        let idle = self.sender.as_ref().is_none_or(Sender::is_idle);
        let cumulative = self.receiver.as_ref().map_or(0, Receiver::cumulative_tsn);
        match self.state {
            AssociationState::ShutdownPending if idle => {
                self.control.push_back(Chunk::Shutdown {
                    cumulative_tsn_ack: cumulative,
                });
                self.state = AssociationState::ShutdownSent;
                self.shutdown_deadline = Some(now + self.rto());
            }
            AssociationState::ShutdownReceived if idle => {
                self.control.push_back(Chunk::ShutdownAck);
                self.state = AssociationState::ShutdownAckSent;
                self.shutdown_deadline = Some(now + self.rto());
            }
            _ => {}
        }
    }

    fn write_packet(&mut self, tag: u32, chunks: Vec<Chunk>) {
        let packet = Packet {
            header: CommonHeader {
                source_port: self.config.local_port,
                destination_port: self.config.remote_port,
                verification_tag: tag,
            },
            chunks,
        };
        // Packet::write reserves the encoded length itself.
        let mut out = Vec::new();
        if self.send_zero_checksum {
            packet.write_zero_checksum(&mut out);
        } else {
            packet.write(&mut out);
        }
        self.transmits.push_back(Bytes::from(out));
    }
}

/// Whether INIT or INIT ACK parameters say the sender accepts zero
/// checksums over DTLS (RFC 9653 §4).
/// A retransmitted INIT goes without Zero Checksum Acceptable, in case
/// the peer dropped the first one for it (see [`Association::connect`]).
fn without_zero_checksum_offer(chunk: Chunk) -> Chunk {
    match chunk {
        Chunk::Init(mut init) => {
            let before = init.params.len();
            init.params
                .retain(|p| !matches!(p, Param::ZeroChecksumAcceptable { .. }));
            if init.params.len() != before {
                debug!("INIT unanswered: retransmitting it without Zero Checksum Acceptable");
            }
            Chunk::Init(init)
        }
        other => other,
    }
}

fn accepts_zero_checksum(params: &[Param]) -> bool {
    params
        .iter()
        .any(|p| *p == Param::ZeroChecksumAcceptable { edmid: EDMID_DTLS })
}
