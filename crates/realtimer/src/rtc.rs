//! The sans-IO core: ICE + DTLS + SCTP/DCEP behind one `&mut self` owner.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use realtimer_datachannel::{
    ChannelData, ChannelError, ChannelInit, DataChannelEvent, DataChannels, DtlsRole, SctpConfig,
};
use realtimer_dtls::{Certificate, Dtls, DtlsConfig, DtlsEvent, DtlsState, Role};
use realtimer_ice::{
    IceAgent, IceConfig, IceConnectionState, IceError, IceEvent, IceGatheringState,
};
use realtimer_sdp::Setup;
use tracing::{debug, trace};

use crate::channel::{ChannelRef, DataChannelInfo, DataChannelInit, DataChannelState};
use crate::error::RtcError;
use crate::event::{PeerConnectionState, RtcEvent, Transmit};
use crate::jsep::{
    self, IceCandidateInit, LocalTransport, RemoteTransport, SdpType, SessionDescription,
    SignalingState,
};

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
}

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            ice: IceConfig::default(),
            sctp: SctpConfig::default(),
            dtls_mtu: 1200,
            seed: 0,
            max_early_dtls: 16,
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

/// One data channel as the core sees it.
#[derive(Debug)]
struct Slot {
    info: DataChannelInfo,
    init: ChannelInit,
    state: DataChannelState,
    /// Buffered-amount-low threshold set before the stream id was known.
    low_threshold: usize,
}

/// One peer connection, sans-IO (RFC 8829 JSEP, RFC 8445 ICE, RFC 6347
/// DTLS, RFC 8831/8832 data channels).
///
/// The driver gives it its local socket addresses ([`Rtc::add_local_address`]),
/// every datagram received ([`Rtc::handle_receive`]) and the time
/// ([`Rtc::handle_timeout`] at [`Rtc::poll_timeout`]); it sends every
/// [`Rtc::poll_transmit`] and reacts to every [`Rtc::poll_event`]. After
/// each input, poll transmits and events until they are `None`; forgetting
/// delays output, never corrupts state.
///
/// Datagrams are demultiplexed by first byte (RFC 7983 §7): 0–3 STUN to
/// ICE, 20–63 DTLS; anything else is dropped.
#[derive(Debug)]
pub struct Rtc {
    config: RtcConfig,
    certificate: Certificate,
    local: LocalTransport,
    ice: IceAgent,
    bases: Vec<SocketAddr>,
    gathering_started: bool,
    signaling: SignalingState,
    session_id: u64,
    session_version: u64,
    last_offer: Option<String>,
    last_answer: Option<String>,
    pending_local: Option<SessionDescription>,
    current_local: Option<SessionDescription>,
    pending_remote: Option<SessionDescription>,
    current_remote: Option<SessionDescription>,
    remote_offer: Option<realtimer_sdp::SessionDescription>,
    remote: Option<RemoteTransport>,
    /// Our `a=mid` and m-line index for candidates.
    local_mid: (String, u16),
    dtls_role: Option<Role>,
    dtls: Option<Dtls>,
    channels: Option<DataChannels>,
    /// DTLS datagrams that came before the DTLS connection existed.
    early_dtls: VecDeque<Bytes>,
    /// Where DTLS goes when ICE has not selected a pair yet: (local, remote)
    /// of the last DTLS datagram received.
    dtls_route: Option<(SocketAddr, SocketAddr)>,
    slots: BTreeMap<ChannelRef, Slot>,
    by_stream: HashMap<u16, ChannelRef>,
    next_ref: u32,
    events: VecDeque<RtcEvent>,
    ice_state: IceConnectionState,
    connection_state: PeerConnectionState,
    dtls_failed: bool,
    negotiation_needed_sent: bool,
    closed: bool,
}

impl Rtc {
    /// A new connection with `certificate` (its fingerprint goes into our
    /// SDP; generate one with [`Certificate::generate`]).
    pub fn new(config: RtcConfig, certificate: Certificate, now: Instant) -> Rtc {
        let _ = now;
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
        Rtc {
            config,
            certificate,
            local,
            ice,
            bases: Vec::new(),
            gathering_started: false,
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
            dtls_role: None,
            dtls: None,
            channels: None,
            early_dtls: VecDeque::new(),
            dtls_route: None,
            slots: BTreeMap::new(),
            by_stream: HashMap::new(),
            next_ref: 0,
            events: VecDeque::new(),
            ice_state: IceConnectionState::New,
            connection_state: PeerConnectionState::New,
            dtls_failed: false,
            negotiation_needed_sent: false,
            closed: false,
        }
    }

    /// A local socket address to gather a host candidate from (all of them
    /// before `set_local_description`; later ones are gathered at once).
    pub fn add_local_address(&mut self, now: Instant, address: SocketAddr) {
        if self.bases.contains(&address) {
            return;
        }
        self.bases.push(address);
        if self.gathering_started && !self.closed {
            self.ice.gather(now, &[address]);
            self.process(now);
        }
    }

    /// Our certificate's fingerprint, as in `a=fingerprint`.
    pub fn fingerprint(&self) -> &realtimer_dtls::Fingerprint {
        self.certificate.fingerprint()
    }

    /// The signaling state.
    pub fn signaling_state(&self) -> SignalingState {
        self.signaling
    }

    /// The ICE connection state.
    pub fn ice_connection_state(&self) -> IceConnectionState {
        self.ice_state
    }

    /// The ICE gathering state.
    pub fn ice_gathering_state(&self) -> IceGatheringState {
        self.ice.gathering_state()
    }

    /// The connection state.
    pub fn connection_state(&self) -> PeerConnectionState {
        self.connection_state
    }

    /// pendingLocalDescription ?? currentLocalDescription.
    pub fn local_description(&self) -> Option<&SessionDescription> {
        self.pending_local.as_ref().or(self.current_local.as_ref())
    }

    /// pendingRemoteDescription ?? currentRemoteDescription.
    pub fn remote_description(&self) -> Option<&SessionDescription> {
        self.pending_remote
            .as_ref()
            .or(self.current_remote.as_ref())
    }

    /// currentLocalDescription: the last local description of a completed
    /// offer/answer exchange.
    pub fn current_local_description(&self) -> Option<&SessionDescription> {
        self.current_local.as_ref()
    }

    /// currentRemoteDescription.
    pub fn current_remote_description(&self) -> Option<&SessionDescription> {
        self.current_remote.as_ref()
    }

    /// pendingLocalDescription.
    pub fn pending_local_description(&self) -> Option<&SessionDescription> {
        self.pending_local.as_ref()
    }

    /// pendingRemoteDescription.
    pub fn pending_remote_description(&self) -> Option<&SessionDescription> {
        self.pending_remote.as_ref()
    }

    /// The selected candidate pair's local and remote addresses.
    pub fn selected_pair(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.ice
            .selected_pair()
            .map(|p| (p.local_base, p.remote.address))
    }

    /// The SCTP round-trip time, once measured.
    pub fn sctp_rtt(&self) -> Option<std::time::Duration> {
        self.channels.as_ref().and_then(|c| c.association().rtt())
    }

    fn check_open(&self) -> Result<(), RtcError> {
        if self.closed {
            Err(RtcError::state("the connection is closed"))
        } else {
            Ok(())
        }
    }

    /// createOffer (RFC 8829 §5.2): one bundled data section.
    pub fn create_offer(&mut self) -> Result<SessionDescription, RtcError> {
        self.check_open()?;
        match self.signaling {
            SignalingState::Stable | SignalingState::HaveLocalOffer => {}
            s => return Err(RtcError::state(format!("createOffer in {s}"))),
        }
        self.session_version += 1;
        let sdp = jsep::write_offer(&self.local, self.session_id, self.session_version);
        self.last_offer = Some(sdp.clone());
        Ok(SessionDescription::offer(sdp))
    }

    /// createAnswer (RFC 8829 §5.3): our data section answering the
    /// offer's, every other section rejected.
    pub fn create_answer(&mut self) -> Result<SessionDescription, RtcError> {
        self.check_open()?;
        match self.signaling {
            SignalingState::HaveRemoteOffer | SignalingState::HaveLocalPranswer => {}
            s => return Err(RtcError::state(format!("createAnswer in {s}"))),
        }
        let (Some(offer), Some(remote)) = (&self.remote_offer, &self.remote) else {
            return Err(RtcError::state("no remote offer"));
        };
        let setup = match (self.dtls_role, remote.setup) {
            (Some(Role::Client), _) => Setup::Active,
            (Some(Role::Server), _) => Setup::Passive,
            // RFC 8842 §5.3: answer actpass with active (browsers do).
            (None, Setup::Active) => Setup::Passive,
            (None, _) => Setup::Active,
        };
        self.session_version += 1;
        let sdp = jsep::write_answer(
            &self.local,
            offer,
            setup,
            self.session_id,
            self.session_version,
        );
        self.last_answer = Some(sdp.clone());
        Ok(SessionDescription::answer(sdp))
    }

    fn set_signaling(&mut self, state: SignalingState) {
        if self.signaling != state {
            self.signaling = state;
            self.events.push_back(RtcEvent::SignalingState(state));
        }
    }

    /// setLocalDescription. An empty `sdp` creates the offer or answer
    /// implicitly (W3C webrtc-pc §4.4.1.5).
    pub fn set_local_description(
        &mut self,
        now: Instant,
        desc: SessionDescription,
    ) -> Result<(), RtcError> {
        self.check_open()?;
        let mut desc = desc;
        match desc.sdp_type {
            SdpType::Rollback => return self.rollback_local(),
            SdpType::Offer => {
                if !matches!(
                    self.signaling,
                    SignalingState::Stable | SignalingState::HaveLocalOffer
                ) {
                    return Err(RtcError::state(format!(
                        "setLocalDescription(offer) in {}",
                        self.signaling
                    )));
                }
                if desc.sdp.is_empty() {
                    desc.sdp = match &self.last_offer {
                        Some(s) => s.clone(),
                        None => self.create_offer()?.sdp,
                    };
                }
                let (ufrag, pwd, _) = jsep::local_fields(&desc.sdp)?;
                if ufrag != self.local.ufrag || pwd != self.local.pwd {
                    return Err(RtcError::InvalidModification(
                        "ICE credentials differ from the ones createOffer made".into(),
                    ));
                }
                self.local_mid = ("0".to_owned(), 0);
                self.pending_local = Some(desc);
                self.set_signaling(SignalingState::HaveLocalOffer);
            }
            SdpType::Answer | SdpType::Pranswer => {
                if !matches!(
                    self.signaling,
                    SignalingState::HaveRemoteOffer | SignalingState::HaveLocalPranswer
                ) {
                    return Err(RtcError::state(format!(
                        "setLocalDescription({}) in {}",
                        desc.sdp_type, self.signaling
                    )));
                }
                if desc.sdp.is_empty() {
                    desc.sdp = match &self.last_answer {
                        Some(s) => s.clone(),
                        None => self.create_answer()?.sdp,
                    };
                }
                let (ufrag, pwd, setup) = jsep::local_fields(&desc.sdp)?;
                if ufrag != self.local.ufrag || pwd != self.local.pwd {
                    return Err(RtcError::InvalidModification(
                        "ICE credentials differ from the ones createAnswer made".into(),
                    ));
                }
                let role = match setup {
                    Setup::Active => Role::Client,
                    Setup::Passive => Role::Server,
                    _ => {
                        return Err(RtcError::InvalidModification(
                            "an answer's a=setup must be active or passive".into(),
                        ))
                    }
                };
                if self.dtls_role.is_some_and(|r| r != role) {
                    return Err(RtcError::InvalidModification(
                        "the DTLS role cannot change".into(),
                    ));
                }
                self.dtls_role = Some(role);
                if let Some(r) = &self.remote {
                    self.local_mid = (r.mid.clone(), r.m_line_index);
                }
                if desc.sdp_type == SdpType::Answer {
                    self.current_local = Some(desc);
                    self.pending_local = None;
                    self.current_remote = self.pending_remote.take().or(self.current_remote.take());
                    self.set_signaling(SignalingState::Stable);
                } else {
                    self.pending_local = Some(desc);
                    self.set_signaling(SignalingState::HaveLocalPranswer);
                }
                self.start_transport(now);
            }
        }
        self.start_gathering(now);
        self.process(now);
        Ok(())
    }

    fn rollback_local(&mut self) -> Result<(), RtcError> {
        if self.signaling != SignalingState::HaveLocalOffer {
            return Err(RtcError::state(format!(
                "rollback of a local description in {}",
                self.signaling
            )));
        }
        self.pending_local = None;
        self.set_signaling(SignalingState::Stable);
        Ok(())
    }

    fn start_gathering(&mut self, now: Instant) {
        if !self.gathering_started {
            self.gathering_started = true;
            let bases = self.bases.clone();
            self.ice.gather(now, &bases);
        }
    }

    /// setRemoteDescription.
    pub fn set_remote_description(
        &mut self,
        now: Instant,
        desc: SessionDescription,
    ) -> Result<(), RtcError> {
        self.check_open()?;
        match desc.sdp_type {
            SdpType::Rollback => return self.rollback_remote(now),
            SdpType::Offer => {
                if !matches!(
                    self.signaling,
                    SignalingState::Stable | SignalingState::HaveRemoteOffer
                ) {
                    return Err(RtcError::state(format!(
                        "setRemoteDescription(offer) in {}",
                        self.signaling
                    )));
                }
                let (parsed, remote) = jsep::parse_remote(&desc.sdp)?;
                self.apply_remote(now, remote)?;
                if self.current_remote.is_none() && !self.ice_is_lite_peer() {
                    self.ice.set_controlling(false);
                }
                self.remote_offer = Some(parsed);
                self.last_answer = None;
                self.pending_remote = Some(desc);
                self.set_signaling(SignalingState::HaveRemoteOffer);
            }
            SdpType::Answer | SdpType::Pranswer => {
                if !matches!(
                    self.signaling,
                    SignalingState::HaveLocalOffer | SignalingState::HaveRemotePranswer
                ) {
                    return Err(RtcError::state(format!(
                        "setRemoteDescription({}) in {}",
                        desc.sdp_type, self.signaling
                    )));
                }
                let (_, remote) = jsep::parse_remote(&desc.sdp)?;
                let role = match remote.setup {
                    Setup::Active => Role::Server,
                    Setup::Passive => Role::Client,
                    _ => {
                        return Err(RtcError::sdp(
                            0,
                            "an answer's a=setup must be active or passive",
                        ))
                    }
                };
                if self.dtls_role.is_some_and(|r| r != role) {
                    return Err(RtcError::sdp(0, "the answer changes the DTLS role"));
                }
                self.apply_remote(now, remote)?;
                self.dtls_role = Some(role);
                if desc.sdp_type == SdpType::Answer {
                    self.current_remote = Some(desc);
                    self.pending_remote = None;
                    self.current_local = self.pending_local.take().or(self.current_local.take());
                    self.set_signaling(SignalingState::Stable);
                } else {
                    self.pending_remote = Some(desc);
                    self.set_signaling(SignalingState::HaveRemotePranswer);
                }
                self.start_transport(now);
            }
        }
        self.process(now);
        Ok(())
    }

    fn ice_is_lite_peer(&self) -> bool {
        self.remote.as_ref().is_some_and(|r| r.ice_lite) && !self.config.ice.lite
    }

    fn rollback_remote(&mut self, now: Instant) -> Result<(), RtcError> {
        if self.signaling != SignalingState::HaveRemoteOffer {
            return Err(RtcError::state(format!(
                "rollback of a remote description in {}",
                self.signaling
            )));
        }
        if self.current_remote.is_none() {
            // First negotiation: nothing ran on the peer's parameters yet.
            // The same seed gives the same credentials.
            self.ice = IceAgent::new(self.config.ice.clone(), true);
            self.remote = None;
            if self.gathering_started {
                let bases = self.bases.clone();
                self.ice.gather(now, &bases);
            }
        }
        self.remote_offer = None;
        self.pending_remote = None;
        self.set_signaling(SignalingState::Stable);
        self.process(now);
        Ok(())
    }

    /// Hands the peer's transport to ICE (first time) or checks it did not
    /// change (later offers and answers).
    fn apply_remote(&mut self, now: Instant, remote: RemoteTransport) -> Result<(), RtcError> {
        if let Some(old) = &self.remote {
            if old.ufrag != remote.ufrag || old.pwd != remote.pwd {
                return Err(RtcError::OperationError(
                    "ICE restart (new remote credentials) is not supported".into(),
                ));
            }
            if old.fingerprint != remote.fingerprint {
                return Err(RtcError::OperationError(
                    "the remote certificate fingerprint changed".into(),
                ));
            }
            self.remote = Some(remote);
            return Ok(());
        }
        self.ice
            .set_remote_credentials(realtimer_ice::IceCredentials {
                ufrag: remote.ufrag.clone(),
                pwd: remote.pwd.clone(),
            });
        if remote.ice_lite && !self.config.ice.lite {
            // RFC 8445 §6.1.1: a full agent is controlling against a lite one.
            self.ice.set_controlling(true);
        }
        for c in &remote.candidates {
            if let Err(e) = self.ice.add_remote_candidate(now, c) {
                debug!("remote SDP candidate ignored: {e}");
            }
        }
        if remote.end_of_candidates {
            self.ice.add_remote_end_of_candidates();
        }
        self.remote = Some(remote);
        Ok(())
    }

    /// Once both descriptions are set: DTLS (server side at once, client
    /// side when ICE has a pair) and the data channels.
    fn start_transport(&mut self, now: Instant) {
        let (Some(role), Some(remote)) = (self.dtls_role, &self.remote) else {
            return;
        };
        let peer_max = match remote.max_message_size {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        if let Some(channels) = &mut self.channels {
            channels
                .association_mut()
                .set_remote_max_message_size(peer_max);
            return;
        }
        let sctp = SctpConfig {
            remote_port: remote.sctp_port,
            ..self.config.sctp.clone()
        };
        let dc_role = match role {
            Role::Client => DtlsRole::Client,
            Role::Server => DtlsRole::Server,
        };
        let mut channels = DataChannels::new(sctp, dc_role, now);
        channels
            .association_mut()
            .set_remote_max_message_size(peer_max);
        // Channels made before the role was known get their ids now.
        let waiting: Vec<ChannelRef> = self
            .slots
            .iter()
            .filter(|(_, s)| s.state == DataChannelState::Connecting && s.info.id.is_none())
            .map(|(r, _)| *r)
            .chain(
                self.slots
                    .iter()
                    .filter(|(_, s)| s.info.negotiated)
                    .map(|(r, _)| *r),
            )
            .collect();
        self.channels = Some(channels);
        for r in waiting {
            self.open_slot(now, r);
        }
        if role == Role::Server {
            self.start_dtls(now);
        }
    }

    fn start_dtls(&mut self, now: Instant) {
        if self.dtls.is_some() || self.dtls_failed {
            return;
        }
        let (Some(role), Some(remote)) = (self.dtls_role, &self.remote) else {
            return;
        };
        let config = DtlsConfig::new(self.certificate.clone())
            .with_mtu(self.config.dtls_mtu)
            .with_srtp_profiles(Vec::new());
        match Dtls::new(config, role, remote.fingerprint.clone(), now) {
            Ok(mut dtls) => {
                debug!(?role, "DTLS started");
                for d in std::mem::take(&mut self.early_dtls) {
                    let _ = dtls.handle_input(now, &d);
                }
                self.dtls = Some(dtls);
            }
            Err(e) => {
                debug!("DTLS could not start: {e}");
                self.dtls_failed = true;
            }
        }
    }

    /// Creates the SCTP side of a slot; errors end it with ChannelError.
    fn open_slot(&mut self, now: Instant, r: ChannelRef) {
        let (Some(channels), Some(slot)) = (&mut self.channels, self.slots.get_mut(&r)) else {
            return;
        };
        if slot.info.negotiated && self.by_stream.values().any(|x| *x == r) {
            return;
        }
        match channels.create_channel(now, &slot.info.label, &slot.init) {
            Ok(id) => {
                slot.info.id = Some(id);
                if slot.low_threshold > 0 {
                    channels.set_buffered_amount_low_threshold(id, slot.low_threshold);
                }
                self.by_stream.insert(id, r);
            }
            Err(e) => {
                slot.state = DataChannelState::Closed;
                self.slots.remove(&r);
                self.events
                    .push_back(RtcEvent::ChannelError(r, e.to_string()));
                self.events.push_back(RtcEvent::ChannelClosed(r));
            }
        }
        self.pump_channel_events(now);
    }

    /// addIceCandidate: a trickled candidate, or `None` (or an empty
    /// candidate string) for end-of-candidates (RFC 8838 §4.4).
    pub fn add_ice_candidate(
        &mut self,
        now: Instant,
        candidate: Option<&IceCandidateInit>,
    ) -> Result<(), RtcError> {
        self.check_open()?;
        let Some(remote) = &self.remote else {
            return Err(RtcError::state(
                "addIceCandidate before setRemoteDescription",
            ));
        };
        let Some(init) = candidate.filter(|c| !c.candidate.is_empty()) else {
            self.ice.add_remote_end_of_candidates();
            self.process(now);
            return Ok(());
        };
        match (&init.sdp_mid, init.sdp_m_line_index) {
            (Some(mid), _) if *mid != remote.mid => {
                return Err(RtcError::OperationError(format!(
                    "no media section {mid:?}"
                )))
            }
            (None, Some(i)) if i != remote.m_line_index => {
                return Err(RtcError::OperationError(format!("no media section {i}")))
            }
            (None, None) => {
                return Err(RtcError::TypeError(
                    "sdpMid and sdpMLineIndex are both null".into(),
                ))
            }
            _ => {}
        }
        let parsed = realtimer_sdp::Candidate::parse(&init.candidate)
            .map_err(|e| RtcError::OperationError(format!("candidate does not parse: {e}")))?;
        match self.ice.add_remote_candidate(now, &parsed) {
            Ok(()) => {}
            // Browsers skip candidates they cannot use (TCP, for one).
            Err(IceError::Candidate(e)) => debug!("remote candidate skipped: {e}"),
            Err(e) => return Err(RtcError::OperationError(e.to_string())),
        }
        self.process(now);
        Ok(())
    }

    /// The answer to [`RtcEvent::ResolveMdnsName`]; `None` when it did not resolve.
    pub fn resolve_mdns_name(&mut self, now: Instant, name: &str, address: Option<IpAddr>) {
        self.ice.resolve_mdns_name(now, name, address);
        self.process(now);
    }

    /// createDataChannel. The channel opens once the connection is up (and,
    /// unless negotiated, the peer acknowledged it).
    pub fn create_data_channel(
        &mut self,
        now: Instant,
        label: &str,
        init: &DataChannelInit,
    ) -> Result<ChannelRef, RtcError> {
        self.check_open()?;
        let sctp_init = init.validate(label)?;
        if let Some(id) = sctp_init.negotiated {
            let taken = self
                .slots
                .values()
                .any(|s| s.info.id == Some(id) && s.state != DataChannelState::Closed);
            if taken {
                return Err(RtcError::OperationError(format!(
                    "data channel id {id} is in use"
                )));
            }
        }
        let r = ChannelRef(self.next_ref);
        self.next_ref = self.next_ref.wrapping_add(1);
        self.slots.insert(
            r,
            Slot {
                info: DataChannelInfo::from_init(label, &sctp_init),
                init: sctp_init,
                state: DataChannelState::Connecting,
                low_threshold: 0,
            },
        );
        if self.channels.is_some() {
            self.open_slot(now, r);
        } else if !self.negotiation_needed_sent {
            self.negotiation_needed_sent = true;
            self.events.push_back(RtcEvent::NegotiationNeeded);
        }
        Ok(r)
    }

    /// What a channel is (None once it closed).
    pub fn channel_info(&self, channel: ChannelRef) -> Option<&DataChannelInfo> {
        self.slots.get(&channel).map(|s| &s.info)
    }

    /// A channel's readyState (`Closed` once it is gone).
    pub fn channel_state(&self, channel: ChannelRef) -> DataChannelState {
        self.slots
            .get(&channel)
            .map_or(DataChannelState::Closed, |s| s.state)
    }

    fn stream_of(&self, channel: ChannelRef) -> Result<u16, RtcError> {
        let slot = self
            .slots
            .get(&channel)
            .ok_or_else(|| RtcError::state(format!("{channel} is closed")))?;
        if slot.state != DataChannelState::Open {
            return Err(RtcError::state(format!("{channel} is {}", slot.state)));
        }
        slot.info
            .id
            .ok_or_else(|| RtcError::state(format!("{channel} has no stream yet")))
    }

    /// RTCDataChannel.send.
    pub fn send(
        &mut self,
        now: Instant,
        channel: ChannelRef,
        data: ChannelData,
    ) -> Result<(), RtcError> {
        self.check_open()?;
        let id = self.stream_of(channel)?;
        let Some(channels) = &mut self.channels else {
            return Err(RtcError::state("no association"));
        };
        match channels.send(now, id, data) {
            Ok(()) => Ok(()),
            Err(ChannelError::Send(realtimer_sctp::SendError::TooLarge { size, max })) => {
                Err(RtcError::TypeError(format!(
                    "message of {size} bytes is larger than the peer's max-message-size {max}"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// RTCDataChannel.bufferedAmount: bytes queued and not yet sent.
    pub fn buffered_amount(&self, channel: ChannelRef) -> usize {
        let id = self.slots.get(&channel).and_then(|s| s.info.id);
        match (id, &self.channels) {
            (Some(id), Some(c)) => c.buffered_amount(id),
            _ => 0,
        }
    }

    /// RTCDataChannel.bufferedAmountLowThreshold.
    pub fn set_buffered_amount_low_threshold(&mut self, channel: ChannelRef, threshold: usize) {
        let Some(slot) = self.slots.get_mut(&channel) else {
            return;
        };
        slot.low_threshold = threshold;
        if let (Some(id), Some(c)) = (slot.info.id, &mut self.channels) {
            c.set_buffered_amount_low_threshold(id, threshold);
        }
    }

    /// RTCDataChannel.close: queued data is sent, then the stream is reset
    /// (RFC 8831 §6.7) and both sides see `close`.
    pub fn close_channel(&mut self, now: Instant, channel: ChannelRef) {
        let Some(slot) = self.slots.get_mut(&channel) else {
            return;
        };
        if matches!(
            slot.state,
            DataChannelState::Closing | DataChannelState::Closed
        ) {
            return;
        }
        match (slot.info.id, &mut self.channels) {
            (Some(id), Some(c)) => {
                slot.state = DataChannelState::Closing;
                self.events.push_back(RtcEvent::ChannelClosing(channel));
                c.close(now, id);
                self.pump_channel_events(now);
            }
            _ => {
                self.slots.remove(&channel);
                self.events.push_back(RtcEvent::ChannelClosed(channel));
            }
        }
    }

    /// RTCPeerConnection.close: aborts SCTP, sends DTLS close_notify, stops
    /// ICE. Every channel closes; nothing runs afterwards.
    pub fn close(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if let Some(c) = &mut self.channels {
            c.association_mut().abort();
            c.handle_timeout(now);
        }
        self.flush_sctp();
        if let Some(d) = &mut self.dtls {
            d.close();
        }
        self.dtls_route = self.selected_pair().or(self.dtls_route);
        self.ice.close();
        self.closed = true;
        let refs: Vec<ChannelRef> = self.slots.keys().copied().collect();
        self.slots.clear();
        self.by_stream.clear();
        for r in refs {
            self.events.push_back(RtcEvent::ChannelClosed(r));
        }
        self.set_signaling(SignalingState::Closed);
        self.update_connection_state();
    }

    /// Moves every SCTP packet into DTLS records.
    fn flush_sctp(&mut self) {
        let (Some(c), Some(d)) = (&mut self.channels, &mut self.dtls) else {
            return;
        };
        if d.state() != DtlsState::Connected {
            return;
        }
        while let Some(packet) = c.poll_transmit() {
            if let Err(e) = d.send(&packet) {
                trace!("SCTP packet not sent: {e}");
            }
        }
    }

    /// A datagram received on local address `destination` from `source`.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        if self.closed {
            return;
        }
        match contents.first() {
            // RFC 7983 §7: STUN.
            Some(0..=3) => {
                self.ice.handle_receive(now, source, destination, contents);
            }
            // RFC 7983 §7: DTLS.
            Some(20..=63) => {
                self.dtls_route = Some((destination, source));
                match &mut self.dtls {
                    Some(dtls) => {
                        if let Err(e) = dtls.handle_input(now, contents) {
                            trace!("DTLS datagram refused: {e}");
                        }
                    }
                    None => {
                        if self.early_dtls.len() >= self.config.max_early_dtls {
                            self.early_dtls.pop_front();
                        }
                        self.early_dtls.push_back(Bytes::copy_from_slice(contents));
                    }
                }
            }
            _ => trace!(
                len = contents.len(),
                "datagram neither STUN nor DTLS dropped"
            ),
        }
        self.process(now);
    }

    /// Moves time forward to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.ice.handle_timeout(now);
        if let Some(d) = &mut self.dtls {
            d.handle_timeout(now);
        }
        if let Some(c) = &mut self.channels {
            c.handle_timeout(now);
        }
        self.process(now);
    }

    /// When to call [`Rtc::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        [
            self.ice.poll_timeout(),
            self.dtls.as_ref().and_then(Dtls::poll_timeout),
            self.channels.as_ref().and_then(DataChannels::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next datagram to send: ICE first, then DTLS (with SCTP packets
    /// moved into DTLS one at a time, so no queue grows here).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.ice.poll_transmit() {
            return Some(Transmit {
                source: t.source,
                destination: t.destination,
                contents: t.contents,
            });
        }
        let route = self.selected_pair().or(self.dtls_route);
        let dtls = self.dtls.as_mut()?;
        let contents = match dtls.poll_transmit() {
            Some(d) => d,
            None => {
                if self.closed || dtls.state() != DtlsState::Connected {
                    return None;
                }
                let channels = self.channels.as_mut()?;
                loop {
                    let packet = channels.poll_transmit()?;
                    if let Err(e) = dtls.send(&packet) {
                        trace!("SCTP packet not sent: {e}");
                    }
                    if let Some(d) = dtls.poll_transmit() {
                        break d;
                    }
                }
            }
        };
        let Some((source, destination)) = route else {
            trace!("DTLS datagram held back: no route yet");
            return None;
        };
        Some(Transmit {
            source,
            destination,
            contents,
        })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<RtcEvent> {
        self.events.pop_front()
    }

    /// Collects what ICE, DTLS and the channels did.
    fn process(&mut self, now: Instant) {
        while let Some(event) = self.ice.poll_event() {
            match event {
                IceEvent::LocalCandidate(c) => {
                    let ufrag = self.local.ufrag.clone();
                    let sdp = c.to_sdp(Some(&ufrag));
                    self.events
                        .push_back(RtcEvent::IceCandidate(Some(IceCandidateInit {
                            candidate: sdp.to_attribute_string(),
                            sdp_mid: Some(self.local_mid.0.clone()),
                            sdp_m_line_index: Some(self.local_mid.1),
                            username_fragment: Some(ufrag),
                        })));
                }
                IceEvent::EndOfCandidates => self.events.push_back(RtcEvent::IceCandidate(None)),
                IceEvent::GatheringState(s) => {
                    self.events.push_back(RtcEvent::IceGatheringState(s));
                }
                IceEvent::ConnectionState(s) => {
                    self.ice_state = s;
                    self.events.push_back(RtcEvent::IceConnectionState(s));
                }
                IceEvent::SelectedPair(p) => {
                    debug!(local = %p.local_base, remote = %p.remote.address, "selected pair");
                }
                IceEvent::ResolveMdnsName { name } => {
                    self.events.push_back(RtcEvent::ResolveMdnsName(name));
                }
                IceEvent::RegisterMdnsName { name, address } => {
                    self.events
                        .push_back(RtcEvent::RegisterMdnsName(name, address));
                }
                _ => {}
            }
        }
        if self.dtls_role == Some(Role::Client)
            && self.channels.is_some()
            && self.ice.selected_pair().is_some()
        {
            self.start_dtls(now);
        }
        if let Some(dtls) = &mut self.dtls {
            while let Some(event) = dtls.poll_event() {
                match event {
                    DtlsEvent::Connected { .. } => {
                        debug!("DTLS connected");
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
                        debug!("DTLS failed: {e}");
                        self.dtls_failed = true;
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
        self.pump_channel_events(now);
        self.update_connection_state();
    }

    fn pump_channel_events(&mut self, now: Instant) {
        let _ = now;
        let Some(channels) = &mut self.channels else {
            return;
        };
        while let Some(event) = channels.poll_event() {
            match event {
                DataChannelEvent::Opened(id) => {
                    if let Some(r) = self.by_stream.get(&id).copied() {
                        if let Some(slot) = self.slots.get_mut(&r) {
                            slot.state = DataChannelState::Open;
                        }
                        self.events.push_back(RtcEvent::ChannelOpen(r, id));
                    }
                }
                DataChannelEvent::Incoming(info) => {
                    let r = ChannelRef(self.next_ref);
                    self.next_ref = self.next_ref.wrapping_add(1);
                    let info = DataChannelInfo::from_remote(&info);
                    let id = info.id.unwrap_or_default();
                    self.slots.insert(
                        r,
                        Slot {
                            init: ChannelInit::default(),
                            info: info.clone(),
                            state: DataChannelState::Open,
                            low_threshold: 0,
                        },
                    );
                    self.by_stream.insert(id, r);
                    self.events.push_back(RtcEvent::DataChannel(r, info));
                    self.events.push_back(RtcEvent::ChannelOpen(r, id));
                }
                DataChannelEvent::Message { channel, data } => {
                    if let Some(r) = self.by_stream.get(&channel).copied() {
                        self.events.push_back(RtcEvent::ChannelMessage(r, data));
                    }
                }
                DataChannelEvent::BufferedAmountLow(id) => {
                    if let Some(r) = self.by_stream.get(&id).copied() {
                        self.events.push_back(RtcEvent::ChannelBufferedAmountLow(r));
                    }
                }
                DataChannelEvent::Closed(id) => {
                    if let Some(r) = self.by_stream.remove(&id) {
                        self.slots.remove(&r);
                        self.events.push_back(RtcEvent::ChannelClosed(r));
                    }
                }
                _ => {}
            }
        }
    }

    /// W3C webrtc-pc §4.3.3 from the ICE and DTLS states.
    fn update_connection_state(&mut self) {
        let dtls = self.dtls.as_ref().map(Dtls::state);
        let state = if self.closed {
            PeerConnectionState::Closed
        } else if self.dtls_failed
            || dtls == Some(DtlsState::Failed)
            || self.ice_state == IceConnectionState::Failed
        {
            PeerConnectionState::Failed
        } else if self.ice_state == IceConnectionState::Disconnected {
            PeerConnectionState::Disconnected
        } else if matches!(
            self.ice_state,
            IceConnectionState::Connected | IceConnectionState::Completed
        ) && dtls == Some(DtlsState::Connected)
        {
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
