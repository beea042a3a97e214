//! The sans-IO core: ICE + DTLS + SCTP/DCEP + SRTP media behind one
//! `&mut self` owner.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use realtimer_bwe::BweConfig;
use realtimer_datachannel::{DataChannels, SctpConfig};
use realtimer_dtls::{Certificate, Dtls, DtlsEvent, DtlsState, Role};
use realtimer_ice::{IceAgent, IceConfig, IceConnectionState, IceEvent, IceGatheringState};
use tracing::{debug, trace};

mod channels;
mod congestion;
mod forward;
mod get_stats;
mod negotiation;
mod phase;
mod restart;
mod rtcp;
mod rtp;
mod simulcast;
mod transceivers;
mod transport;
mod turn;

use channels::ChannelTable;
pub use get_stats::payload_len;
use negotiation::Negotiation;
use phase::{DtlsPhase, Gathering, Lifecycle};
pub use rtp::{MAX_MEDIA_QUEUE, MAX_RTP_EVENTS, SRTP_PROFILES};
pub use simulcast::{LayerTarget, RemoteLayer, SendLayerInit};
use transceivers::MediaSession;

use crate::channel::ChannelRef;
use crate::event::{PeerConnectionState, RtcEvent, Transmit};
use crate::jsep::{IceCandidateInit, LocalTransport, SessionDescription, SignalingState};
use crate::track::Codec;

/// Settings of an [`Rtc`]; `RtcConfig::default()` behaves like a browser.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RtcConfig {
    /// The ICE agent's settings (STUN servers, loopback, mDNS, ICE-lite,
    /// timers). Its `seed` is replaced by [`RtcConfig::seed`].
    pub ice: IceConfig,
    /// The SCTP association's settings; `max_message_size` is what we
    /// announce in `a=max-message-size`. Its `seed` is derived from
    /// [`RtcConfig::seed`].
    pub sctp: SctpConfig,
    /// The largest datagram DTLS sends (RFC 8831 §5: 1200 is safe).
    pub dtls_mtu: usize,
    /// Seed of every random number of the connection (ICE credentials and
    /// tie-breaker, SCTP tags and TSNs, SDP session id). Use a random one in
    /// production, a fixed one in tests.
    pub seed: u64,
    /// Most datagrams kept for [`Rtc::poll_transmit`] from ICE and DTLS
    /// handshakes before the oldest is dropped.
    pub max_early_dtls: usize,
    /// The codecs we offer and accept, most preferred first
    /// ([`Codec::defaults`]: Opus, VP8, VP9, H.264, AV1).
    pub codecs: Vec<Codec>,
    /// The send-side estimator's start rate and bounds (browsers': start
    /// at 300 kbit/s, probe at once). Our packets are paced at 2.5× its
    /// target where transport-cc is negotiated.
    pub bwe: BweConfig,
    /// Send NACKed packets again on the RTX SSRC (RFC 4588) where RTX is
    /// negotiated (the default), instead of byte for byte on the media
    /// SSRC: a repair has its own SRTP index and transport-wide number,
    /// so the estimator counts it. On netsim's 5% loss with 50 ms jitter
    /// (`media_pipeline`'s video test over 20 seeds) RTX brings 273 of 300
    /// frames on average, resends byte for byte 272. RTX we receive is
    /// unwrapped either way, and probe padding uses the RTX SSRC.
    pub send_rtx: bool,
    /// Offer and accept the transport-wide sequence number
    /// (draft-holmer-rmcat-transport-wide-cc-extensions-01), on by
    /// default: with it the send-side estimator and the pacer run and
    /// the peer gets our feedback. Off, our packets go out as written and
    /// the peer estimates from REMB or receiver reports, as a stack
    /// without it would (and `cargo bench --bench media` measures what
    /// the estimator and pacer cost).
    pub transport_cc: bool,
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            ice: IceConfig::default(),
            sctp: SctpConfig::default(),
            dtls_mtu: 1200,
            seed: 0,
            max_early_dtls: 16,
            codecs: Codec::defaults(),
            bwe: BweConfig::default(),
            send_rtx: true,
            transport_cc: true,
        }
    }
}

impl RtcConfig {
    /// Sets [`RtcConfig::seed`].
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Uses loopback addresses for host candidates (off in browsers).
    pub fn with_loopback(mut self, on: bool) -> Self {
        self.ice.allow_loopback = on;
        self
    }
}

/// One peer connection, sans-IO (RFC 8829 JSEP, RFC 8445 ICE, RFC 6347
/// DTLS, RFC 8831/8832 data channels, RFC 3711/5764 SRTP media).
///
/// The driver gives it its local socket addresses ([`Rtc::add_local_address`]),
/// every datagram received ([`Rtc::handle_receive`]) and the time
/// ([`Rtc::handle_timeout`] at [`Rtc::poll_timeout`]); it sends every
/// [`Rtc::poll_transmit`] and reacts to every [`Rtc::poll_event`]. After
/// each input, poll transmits and events until they are `None`; forgetting
/// delays output, never corrupts state.
///
/// Datagrams are demultiplexed by first byte (RFC 7983 §7): 0–3 STUN to
/// ICE, 20–63 DTLS, 128–191 SRTP/SRTCP; anything else is dropped.
///
/// Media: [`Rtc::add_track`] (or a remote offer) makes transceivers;
/// [`RtcEvent::Track`] announces the peer's tracks, [`RtcEvent::Rtp`]
/// brings their packets, [`Rtc::write_rtp`] sends ours, and
/// [`RtcEvent::Feedback`] / [`Rtc::request_keyframe`] carry keyframe
/// requests. Lost packets are repaired by `Rtc` itself both ways: it asks
/// for missing video packets and answers the peer's NACKs from what it
/// sent (RFC 4585 §6.2.1). realtimer never encodes: payloads are
/// forwarded or made by the application.
///
/// Two cores connected in memory, the test harness way: whatever one
/// transmits is handed to the other, and the loop advances a virtual
/// clock to the soonest deadline.
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use realtimer_proto::{Certificate, ChannelData, DataChannelInit, Rtc, RtcConfig, RtcEvent};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut now = Instant::now();
/// let mut new_rtc = |seed, address: &str| -> Result<_, Box<dyn std::error::Error>> {
///     let certificate = Certificate::generate(SystemTime::now())?;
///     let mut rtc = Rtc::new(RtcConfig::default().with_seed(seed), certificate, now);
///     rtc.add_local_address(now, address.parse()?);
///     Ok(rtc)
/// };
/// let mut a = new_rtc(1, "10.0.0.1:5000")?;
/// let mut b = new_rtc(2, "10.0.0.2:5000")?;
///
/// let chat = a.create_data_channel(now, "chat", &DataChannelInit::default())?;
/// let offer = a.create_offer()?;
/// b.set_remote_description(now, offer.clone())?;
/// a.set_local_description(now, offer)?;
/// let answer = b.create_answer()?;
/// a.set_remote_description(now, answer.clone())?;
/// b.set_local_description(now, answer)?;
///
/// // The outputs of one side are the inputs of the other; a message
/// // that arrived is returned.
/// fn relay(
///     from: &mut Rtc,
///     to: &mut Rtc,
///     now: Instant,
/// ) -> Result<Option<ChannelData>, Box<dyn std::error::Error>> {
///     let mut received = None;
///     while let Some(t) = from.poll_transmit() {
///         to.handle_receive(now, t.source, t.destination, &t.contents);
///     }
///     while let Some(event) = from.poll_event() {
///         match event {
///             RtcEvent::IceCandidate(c) => to.add_ice_candidate(now, c.as_ref())?,
///             RtcEvent::ChannelMessage(_, message) => received = Some(message),
///             _ => {}
///         }
///     }
///     Ok(received)
/// }
///
/// let mut received = None;
/// for _ in 0..10_000 {
///     let to_b = relay(&mut a, &mut b, now)?;
///     let to_a = relay(&mut b, &mut a, now)?;
///     received = received.or(to_b).or(to_a);
///     if received.is_some() {
///         break;
///     }
///     if a.channel_state(chat) == realtimer_proto::DataChannelState::Open
///         && a.buffered_amount(chat) == 0
///     {
///         a.send(now, chat, ChannelData::Text("hello".into()))?;
///     }
///     // Virtual time: jump to the soonest deadline (at most 10 ms ahead).
///     let next = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min();
///     now = next.unwrap_or(now).clamp(now, now + Duration::from_millis(10));
///     a.handle_timeout(now);
///     b.handle_timeout(now);
/// }
/// assert_eq!(received, Some(ChannelData::Text("hello".into())));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Rtc {
    config: RtcConfig,
    certificate: Certificate,
    local: LocalTransport,
    ice: IceAgent,
    bases: Vec<SocketAddr>,
    /// Candidate gathering, and what prefetching holds back.
    gathering: Gathering,
    /// Ours, from the descriptions (RFC 8842 §5.3), once known.
    dtls_role: Option<Role>,
    dtls: DtlsPhase,
    /// SCTP and DCEP, once both descriptions have a data section.
    channels: Option<DataChannels>,
    /// DTLS's last records (SCTP ABORT, close_notify) taken at close, wrapped
    /// while TURN relays still existed; they go out before ICE's release of
    /// the allocations.
    last_words: VecDeque<Transmit>,
    /// Where DTLS goes when ICE has not selected a pair yet: (local, remote)
    /// of the last DTLS datagram received.
    dtls_route: Option<(SocketAddr, SocketAddr)>,
    events: VecDeque<RtcEvent>,
    ice_state: IceConnectionState,
    connection_state: PeerConnectionState,
    /// When the connection was created (stats timestamps).
    created: Instant,
    /// Datagram and byte counters of the transport and selected pairs.
    traffic: get_stats::Traffic,
    lifecycle: Lifecycle,
    /// Offer/answer: descriptions, signaling state, restart request.
    jsep: Negotiation,
    /// Transceivers, SRTP, RTCP and NACK timers.
    media: MediaSession,
    /// The application's channel names and their SCTP streams.
    data: ChannelTable,
}

impl Rtc {
    /// A new connection with `certificate` (its fingerprint goes into our
    /// SDP; generate one with [`Certificate::generate`]).
    pub fn new(config: RtcConfig, certificate: Certificate, now: Instant) -> Rtc {
        let mut config = config;
        config.ice.seed = config.seed;
        config.sctp.seed = config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5c7f;
        let ice = IceAgent::new(config.ice.clone(), true);
        let credentials = ice.local_credentials().clone();
        let local = LocalTransport {
            ufrag: credentials.ufrag,
            pwd: credentials.pwd,
            fingerprint: certificate.fingerprint().clone(),
            sctp_port: config.sctp.local_port,
            max_message_size: config.sctp.max_message_size as u64,
            ice_lite: config.ice.lite,
        };
        // RFC 8866 §5.2: a session id of at most 63 bits.
        let session_id = (config.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 2) | 1;
        let cname = format!(
            "{:016x}",
            config.seed.wrapping_mul(0xA24B_AED4_963E_E407) | 1
        );
        let receiver_ssrc = (config.seed.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) >> 32) as u32 | 1;
        let congestion = congestion::Congestion::new(config.bwe, now);
        Rtc {
            config,
            certificate,
            local,
            ice,
            bases: Vec::new(),
            gathering: Gathering::NotStarted,
            dtls_role: None,
            dtls: DtlsPhase::Waiting(VecDeque::new()),
            channels: None,
            last_words: VecDeque::new(),
            dtls_route: None,
            events: VecDeque::new(),
            ice_state: IceConnectionState::New,
            connection_state: PeerConnectionState::New,
            created: now,
            traffic: get_stats::Traffic::default(),
            lifecycle: Lifecycle::Negotiating,
            jsep: Negotiation {
                signaling: SignalingState::Stable,
                session_id,
                session_version: 1,
                last_offer: None,
                last_answer: None,
                pending_local: None,
                current_local: None,
                pending_remote: None,
                current_remote: None,
                remote_offer: None,
                remote: None,
                local_mid: ("0".to_owned(), 0),
                negotiation_needed: false,
                restart_request: None,
                awaiting_restart_answer: false,
                credential_generation: 0,
            },
            media: MediaSession {
                transceivers: Vec::new(),
                m_lines: Vec::new(),
                media_before_offer: None,
                cname,
                ssrc_generation: 0,
                receiver_ssrc,
                srtp: None,
                media_out: VecDeque::new(),
                media_buffer: Vec::new(),
                ssrc_routes: HashMap::new(),
                rtp_events: 0,
                next_report: None,
                next_nack: None,
                unprotect_failures: 0,
                congestion,
            },
            data: ChannelTable {
                slots: BTreeMap::new(),
                by_stream: HashMap::new(),
                next_ref: 0,
                channels_opened: 0,
                channels_closed: 0,
                unread: 0,
            },
        }
    }

    /// A local socket address to gather a host candidate from (all of them
    /// before `set_local_description`; later ones are gathered at once).
    pub fn add_local_address(&mut self, now: Instant, address: SocketAddr) {
        if self.bases.contains(&address) {
            return;
        }
        self.bases.push(address);
        if !matches!(self.gathering, Gathering::NotStarted) && !self.is_closed() {
            self.ice.gather(now, &[address]);
            self.process(now);
        }
    }

    /// Our certificate's fingerprint, as in `a=fingerprint`.
    pub fn fingerprint(&self) -> &realtimer_dtls::Fingerprint {
        self.certificate.fingerprint()
    }

    /// Our current ICE ufrag (`a=ice-ufrag`).
    pub fn local_ufrag(&self) -> &str {
        &self.local.ufrag
    }

    /// The signaling state.
    pub fn signaling_state(&self) -> SignalingState {
        self.jsep.signaling
    }

    /// The ICE connection state.
    pub fn ice_connection_state(&self) -> IceConnectionState {
        self.ice_state
    }

    /// The ICE gathering state.
    pub fn ice_gathering_state(&self) -> IceGatheringState {
        if matches!(self.gathering, Gathering::Prefetching(_)) {
            // Prefetching is invisible until setLocalDescription.
            return IceGatheringState::New;
        }
        self.ice.gathering_state()
    }

    /// `iceCandidatePoolSize` above 0 (W3C webrtc-pc §4.4.1.1): starts
    /// gathering now, STUN and TURN included, instead of at
    /// setLocalDescription, and holds the candidates (and the gathering
    /// state) back until then, so the expensive part is done by the time
    /// the application negotiates.
    pub fn prefetch_candidates(&mut self, now: Instant) {
        if !matches!(self.gathering, Gathering::NotStarted) || self.is_closed() {
            return;
        }
        self.start_gathering(now);
        self.gathering = Gathering::Prefetching(Vec::new());
        self.process(now);
    }

    /// Surfaces what [`Rtc::prefetch_candidates`] held back, in order.
    pub(super) fn release_held_candidates(&mut self) {
        if let Gathering::Prefetching(held) = &mut self.gathering {
            self.events.extend(std::mem::take(held));
            self.gathering = Gathering::Started;
        }
    }

    /// A gathering event, or held back while prefetching.
    fn gathering_event(&mut self, event: RtcEvent) {
        match &mut self.gathering {
            Gathering::Prefetching(held) => held.push(event),
            _ => self.events.push_back(event),
        }
    }

    /// Whether `close` was called.
    fn is_closed(&self) -> bool {
        self.lifecycle == Lifecycle::Closed
    }

    /// The connection state.
    pub fn connection_state(&self) -> PeerConnectionState {
        self.connection_state
    }

    /// pendingLocalDescription ?? currentLocalDescription.
    pub fn local_description(&self) -> Option<&SessionDescription> {
        self.jsep
            .pending_local
            .as_ref()
            .or(self.jsep.current_local.as_ref())
    }

    /// pendingRemoteDescription ?? currentRemoteDescription.
    pub fn remote_description(&self) -> Option<&SessionDescription> {
        self.jsep
            .pending_remote
            .as_ref()
            .or(self.jsep.current_remote.as_ref())
    }

    /// currentLocalDescription: the last local description of a completed
    /// offer/answer exchange.
    pub fn current_local_description(&self) -> Option<&SessionDescription> {
        self.jsep.current_local.as_ref()
    }

    /// currentRemoteDescription.
    pub fn current_remote_description(&self) -> Option<&SessionDescription> {
        self.jsep.current_remote.as_ref()
    }

    /// pendingLocalDescription.
    pub fn pending_local_description(&self) -> Option<&SessionDescription> {
        self.jsep.pending_local.as_ref()
    }

    /// pendingRemoteDescription.
    pub fn pending_remote_description(&self) -> Option<&SessionDescription> {
        self.jsep.pending_remote.as_ref()
    }

    /// The selected candidate pair's local and remote addresses.
    pub fn selected_pair(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.ice
            .selected_pair()
            .map(|p| (p.local_base, p.remote.address))
    }

    /// Whether ICE knows `address` as one of the peer's candidates:
    /// signalled, or learnt from a check that passed MESSAGE-INTEGRITY
    /// (a peer-reflexive candidate, RFC 8445 §7.3.1.3). A shared socket
    /// (the SFU's) routes datagrams from such an address to this
    /// connection; at most [`IceConfig::max_remote_candidates`]
    /// of them exist, whatever the peer sends.
    pub fn is_remote_candidate(&self, address: SocketAddr) -> bool {
        self.ice.remote_candidates().any(|c| c.address == address)
    }

    /// The selected pair's round-trip time from ICE checks (connectivity
    /// or consent), once measured in the current ICE generation.
    pub fn ice_rtt(&self) -> Option<std::time::Duration> {
        self.ice.selected_pair_rtt()
    }

    /// The SCTP round-trip time, once measured.
    pub fn sctp_rtt(&self) -> Option<std::time::Duration> {
        self.channels.as_ref().and_then(|c| c.association().rtt())
    }

    /// RTCPeerConnection.close: aborts SCTP, sends DTLS close_notify, stops
    /// ICE. Every channel closes; nothing runs afterwards.
    pub fn close(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if let Some(c) = &mut self.channels {
            c.association_mut().abort();
            c.handle_timeout(now);
        }
        self.flush_sctp();
        if let Some(d) = self.dtls.running_mut() {
            d.close();
        }
        self.dtls_route = self.selected_pair().or(self.dtls_route);
        while let Some(t) = self.next_dtls_transmit() {
            if let Some(t) = self.ice.encapsulate(t) {
                self.last_words.push_back(t);
            }
        }
        self.ice.close();
        self.lifecycle = Lifecycle::Closed;
        self.media.srtp = None;
        self.media.media_out.clear();
        let refs: Vec<ChannelRef> = self.data.slots.keys().copied().collect();
        self.data.slots.clear();
        self.data.by_stream.clear();
        for r in refs {
            self.events.push_back(RtcEvent::ChannelClosed(r));
            self.data.channels_closed += 1;
        }
        self.set_signaling(SignalingState::Closed);
        self.update_connection_state();
    }

    /// A datagram received on local address `destination` from `source`.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        self.handle_receive_arrived(now, now, source, destination, contents);
    }

    /// A datagram that arrived at `arrival` (the kernel's receive stamp)
    /// and is handled at `now`. Transport-wide feedback reports `arrival`
    /// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1: the
    /// receive time of each packet): a busy driver reads datagrams in
    /// bunches, and stamping them at `now` would squeeze their spacing and
    /// show the sender a link faster than it is. Everything else runs at
    /// `now`. An `arrival` after `now` counts as `now`.
    pub fn handle_receive_arrived(
        &mut self,
        now: Instant,
        arrival: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let arrival = arrival.min(now);
        if self.is_closed() {
            return;
        }
        let selected = self.selected_pair();
        // RFC 7983 §7: STUN (0–3) and TURN ChannelData (64–79) go to ICE,
        // which hands back what a TURN server relayed, unwrapped: from the
        // peer to our relayed address.
        let (source, destination, contents) = if matches!(contents.first(), Some(0..=3 | 64..=79)) {
            let len = contents.len();
            match self
                .ice
                .handle_receive_data(now, source, destination, contents)
            {
                Some(d) => (d.source, d.destination, d.contents),
                None => {
                    self.traffic
                        .count_received(selected, destination, source, len);
                    self.process(now);
                    return;
                }
            }
        } else {
            (source, destination, contents)
        };
        self.traffic
            .count_received(selected, destination, source, contents.len());
        match contents.first() {
            // RFC 7983 §7: DTLS.
            Some(20..=63) => {
                self.dtls_route = Some((destination, source));
                match &mut self.dtls {
                    DtlsPhase::Running(dtls) => {
                        if let Err(e) = dtls.handle_input(now, contents) {
                            trace!("DTLS datagram refused: {e}");
                        }
                    }
                    DtlsPhase::Waiting(early) => {
                        if early.len() >= self.config.max_early_dtls {
                            early.pop_front();
                        }
                        early.push_back(Bytes::copy_from_slice(contents));
                    }
                    DtlsPhase::CouldNotStart => {}
                }
            }
            // RFC 7983 §7: RTP and RTCP.
            Some(128..=191) => self.handle_srtp(now, arrival, contents),
            _ => trace!(
                len = contents.len(),
                "datagram neither STUN, DTLS nor RTP dropped"
            ),
        }
        self.process(now);
    }

    /// Moves time forward to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        self.ice.handle_timeout(now);
        if let Some(d) = self.dtls.running_mut() {
            d.handle_timeout(now);
        }
        if let Some(c) = &mut self.channels {
            c.handle_timeout(now);
        }
        self.handle_report_timeout(now);
        self.handle_nack_timeout(now);
        self.handle_transport_cc_timeout(now);
        self.send_paced(now);
        self.process(now);
    }

    /// When to call [`Rtc::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        [
            self.ice.poll_timeout(),
            self.dtls.running().and_then(Dtls::poll_timeout),
            self.channels.as_ref().and_then(DataChannels::poll_timeout),
            self.report_timeout(),
            self.media.srtp.as_ref().and(self.media.next_nack),
            self.transport_cc_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RtcEvent> {
        let event = self.events.pop_front();
        match &event {
            Some(RtcEvent::Rtp(..)) => self.media.rtp_events -= 1,
            Some(RtcEvent::ChannelMessage(_, data)) => {
                self.data.unread = self
                    .data
                    .unread
                    .saturating_sub(get_stats::payload_len(data) as usize);
            }
            Some(RtcEvent::Feedback(r, _)) => {
                if let Some(t) = self.media.transceivers.get_mut(r.0 as usize) {
                    t.send.keyframe_pending = false;
                }
            }
            _ => {}
        }
        event
    }

    /// Collects what ICE, DTLS and the channels did.
    pub(super) fn process(&mut self, now: Instant) {
        self.report_unread(now);
        while let Some(event) = self.ice.poll_event() {
            match event {
                IceEvent::LocalCandidate(c) => {
                    let ufrag = self.local.ufrag.clone();
                    let sdp = c.to_sdp(Some(&ufrag));
                    self.gathering_event(RtcEvent::IceCandidate(Some(IceCandidateInit {
                        candidate: sdp.to_attribute_string(),
                        sdp_mid: Some(self.jsep.local_mid.0.clone()),
                        sdp_m_line_index: Some(self.jsep.local_mid.1),
                        username_fragment: Some(ufrag),
                    })));
                }
                IceEvent::EndOfCandidates => self.gathering_event(RtcEvent::IceCandidate(None)),
                IceEvent::GatheringState(s) => {
                    self.gathering_event(RtcEvent::IceGatheringState(s));
                }
                IceEvent::ConnectionState(s) => {
                    self.ice_state = s;
                    self.events.push_back(RtcEvent::IceConnectionState(s));
                }
                IceEvent::SelectedPair(p) => {
                    debug!(local = %p.local_base, remote = %p.remote.address, "selected pair");
                    self.traffic.selected(&p);
                }
                IceEvent::ResolveMdnsName { name } => {
                    self.events.push_back(RtcEvent::ResolveMdnsName(name));
                }
                IceEvent::RegisterMdnsName { name, address } => {
                    self.events
                        .push_back(RtcEvent::RegisterMdnsName(name, address));
                }
                IceEvent::OpenTurnConnection {
                    server,
                    address,
                    transport,
                } => {
                    self.events.push_back(RtcEvent::OpenTurnConnection {
                        server,
                        address,
                        transport,
                    });
                }
                _ => {}
            }
        }
        if self.dtls_role == Some(Role::Client)
            && self.lifecycle == Lifecycle::TransportStarted
            && self.ice.selected_pair().is_some()
        {
            self.start_dtls(now);
        }
        let mut srtp_keys = None;
        if let Some(dtls) = self.dtls.running_mut() {
            while let Some(event) = dtls.poll_event() {
                match event {
                    DtlsEvent::Connected { srtp, .. } => {
                        debug!("DTLS connected");
                        if let Some(keys) = srtp {
                            srtp_keys = Some(keys);
                        }
                        if let Some(c) = &mut self.channels {
                            c.connect(now);
                        }
                    }
                    DtlsEvent::ApplicationData(data) => {
                        if let Some(c) = &mut self.channels {
                            c.handle_packet(now, &data);
                        }
                    }
                    DtlsEvent::Failed(e) => {
                        // Its state is Failed now, which the connection
                        // state reads.
                        debug!("DTLS failed: {e}");
                    }
                    DtlsEvent::Closed => {
                        debug!("DTLS closed by the peer");
                        if let Some(c) = &mut self.channels {
                            c.association_mut().abort();
                            c.handle_timeout(now);
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(keys) = srtp_keys {
            self.start_srtp(&keys);
            self.handle_report_timeout(now);
        }
        self.pump_channel_events(now);
        self.update_connection_state();
    }

    /// W3C webrtc-pc §4.3.3 from the ICE and DTLS states.
    pub(super) fn update_connection_state(&mut self) {
        let dtls = self.dtls.running().map(Dtls::state);
        let state = if self.is_closed() {
            PeerConnectionState::Closed
        } else if matches!(self.dtls, DtlsPhase::CouldNotStart)
            || dtls == Some(DtlsState::Failed)
            || self.ice_state == IceConnectionState::Failed
        {
            PeerConnectionState::Failed
        } else if self.ice_state == IceConnectionState::Disconnected {
            PeerConnectionState::Disconnected
        } else if matches!(
            self.ice_state,
            IceConnectionState::Connected | IceConnectionState::Completed
        ) && matches!(dtls, Some(DtlsState::Connected | DtlsState::Closed))
        {
            // W3C §4.3.3: "connected" counts DTLS transports that are
            // connected or closed (the peer's close_notify does not make the
            // connection go back to "connecting").
            PeerConnectionState::Connected
        } else if self.ice_state == IceConnectionState::New && dtls.is_none() {
            PeerConnectionState::New
        } else {
            PeerConnectionState::Connecting
        };
        if state != self.connection_state {
            debug!(%state, "connection state");
            self.connection_state = state;
            self.events.push_back(RtcEvent::ConnectionState(state));
        }
    }
}
