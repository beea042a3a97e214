//! The tokio driver and the RTCPeerConnection-shaped API.
//!
//! One task per connection owns the [`Rtc`] core and one UDP socket; the
//! [`PeerConnection`] and [`DataChannel`] handles talk to it over bounded
//! channels. Events the user has not read yet wait in the driver, and while
//! they do the driver stops reading the socket (the peer's SCTP backs off):
//! nothing is dropped and no queue grows without bound.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use realtimer_datachannel::ChannelData;
use realtimer_dtls::Certificate;
use realtimer_ice::{IceConnectionState, IceGatheringState};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info_span, warn, Instrument};

use crate::PeerConnectionState;
use crate::StatsReport;
use crate::{ChannelRef, DataChannelInit, DataChannelState};
use crate::{IceCandidateInit, SessionDescription, SignalingState};
use crate::{OperationError, RtcError, StateError};
use crate::{Rtc, RtcConfig};

mod certificates;
#[cfg(feature = "codecs")]
mod coding;
mod data_channel;
mod driver;
mod ice_servers;
mod mdns;
mod media;
mod turn_stream;
mod udp;
mod udp_mux;

#[cfg(feature = "codecs")]
pub use coding::{AudioFrame, MediaError, VideoFrame, DEFAULT_VIDEO_BITRATE};
pub use data_channel::DataChannel;
use driver::Driver;
pub use ice_servers::IceTransportPolicy;
pub use media::{RtpSender, Sample, TrackLocal, TrackRemote};
use udp::{Transport, UdpIo};
pub use udp_mux::UdpMux;

/// The driver's clock: the only place the tokio layer reads it.
#[allow(clippy::disallowed_methods)] // the driver owns the clock; the core takes it as input
fn now() -> Instant {
    Instant::now()
}

/// `RTCBundlePolicy` (W3C webrtc-pc §4.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BundlePolicy {
    /// `balanced`, the browsers' default.
    #[default]
    Balanced,
    /// `max-compat`.
    MaxCompat,
    /// `max-bundle`.
    MaxBundle,
}

impl BundlePolicy {
    /// The W3C name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Balanced => "balanced",
            Self::MaxCompat => "max-compat",
            Self::MaxBundle => "max-bundle",
        }
    }
}

/// An ICE server (RTCIceServer): `stun:host[:port]` URLs (RFC 7064), or
/// `turn:host[:port][?transport=udp]` URLs (RFC 7065) with the long-term
/// `username` and `credential` (for coturn's REST scheme, `expiry:user`
/// and the HMAC). A URL that does not parse makes
/// [`PeerConnection::new`] fail with [`RtcError::SyntaxError`], a TURN
/// server without credentials with [`RtcError::InvalidAccess`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:` and `turn:` URLs.
    pub urls: Vec<String>,
    /// The TURN username.
    pub username: Option<String>,
    /// The TURN password.
    pub credential: Option<String>,
}

impl std::fmt::Debug for IceServer {
    /// The credential stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// RTCConfiguration plus realtimer's own options.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PeerConnectionConfig {
    /// STUN and TURN servers (`iceServers`).
    pub ice_servers: Vec<IceServer>,
    /// `iceTransportPolicy`: [`IceTransportPolicy::Relay`] uses TURN
    /// relays only.
    pub ice_transport_policy: IceTransportPolicy,
    /// PEM CA certificates trusted for `turns:` servers instead of the
    /// system's (`SSL_CERT_FILE` or the distribution's bundle); for tests
    /// and private deployments. Server certificates are always verified.
    pub turn_tls_ca_pem: Option<String>,
    /// Our certificate; generated when `None`.
    pub certificate: Option<Certificate>,
    /// Offer host candidates on loopback addresses (off in browsers; on
    /// for tests and same-machine peers).
    pub include_loopback: bool,
    /// Only these local addresses, taken as given (every interface's
    /// when empty).
    pub interfaces: Vec<IpAddr>,
    /// `bundlePolicy`. realtimer bundles every section (data, audio,
    /// video) on one transport under every policy, so the three give the
    /// same offer and answer (JSEP, RFC 8829 §4.1.1). Kept for the
    /// browser's shape.
    pub bundle_policy: BundlePolicy,
    /// `iceCandidatePoolSize`: above 0, candidates (STUN and TURN included)
    /// are gathered as soon as the connection is created and surface at
    /// setLocalDescription ([`crate::Rtc::prefetch_candidates`]). One
    /// component per connection, so any size above 0 prefetches all.
    pub ice_candidate_pool_size: u8,
    /// The UDP port to bind (0: any, or one of [`PeerConnectionConfig::port_range`]).
    pub port: u16,
    /// With `port` 0: bind the first free port of this range (for
    /// firewalls that open a range), or fail with `OperationError`.
    pub port_range: Option<std::ops::RangeInclusive<u16>>,
    /// The core's settings (ICE timers, SCTP, seed). The seed is replaced by
    /// a random one unless [`PeerConnectionConfig::fixed_seed`] is set.
    pub rtc: RtcConfig,
    /// Keep `rtc.seed` as given (reproducible credentials; for tests).
    pub fixed_seed: bool,
    /// Share this socket with other connections instead of binding one
    /// (servers with one open port); `port` and `port_range` are then
    /// unused, and host candidates are the socket's address (every
    /// interface's, for a wildcard one).
    pub udp_mux: Option<UdpMux>,
}

impl PeerConnectionConfig {
    /// Sets [`PeerConnectionConfig::include_loopback`].
    pub fn with_loopback(mut self, on: bool) -> Self {
        self.include_loopback = on;
        self
    }

    /// Adds a STUN server URL.
    pub fn with_stun_server(mut self, url: &str) -> Self {
        self.ice_servers.push(IceServer {
            urls: vec![url.to_owned()],
            ..IceServer::default()
        });
        self
    }

    /// Adds a TURN server URL with its long-term credentials.
    pub fn with_turn_server(mut self, url: &str, username: &str, credential: &str) -> Self {
        self.ice_servers.push(IceServer {
            urls: vec![url.to_owned()],
            username: Some(username.to_owned()),
            credential: Some(credential.to_owned()),
        });
        self
    }

    /// Sets [`PeerConnectionConfig::ice_candidate_pool_size`].
    pub fn with_ice_candidate_pool_size(mut self, size: u8) -> Self {
        self.ice_candidate_pool_size = size;
        self
    }

    /// Sets [`PeerConnectionConfig::bundle_policy`].
    pub fn with_bundle_policy(mut self, policy: BundlePolicy) -> Self {
        self.bundle_policy = policy;
        self
    }

    /// Sets [`PeerConnectionConfig::port_range`].
    pub fn with_port_range(mut self, range: std::ops::RangeInclusive<u16>) -> Self {
        self.port_range = Some(range);
        self
    }

    /// Sets [`PeerConnectionConfig::ice_transport_policy`].
    pub fn with_ice_transport_policy(mut self, policy: IceTransportPolicy) -> Self {
        self.ice_transport_policy = policy;
        self
    }
}

/// An RTCPeerConnection event.
#[derive(Debug)]
#[non_exhaustive]
pub enum PeerConnectionEvent {
    /// `icecandidate`; `None` is the end of candidates.
    IceCandidate(Option<IceCandidateInit>),
    /// `icegatheringstatechange`.
    IceGatheringStateChange(IceGatheringState),
    /// `iceconnectionstatechange`.
    IceConnectionStateChange(IceConnectionState),
    /// `connectionstatechange`.
    ConnectionStateChange(PeerConnectionState),
    /// `signalingstatechange`.
    SignalingStateChange(SignalingState),
    /// `negotiationneeded`.
    NegotiationNeeded,
    /// `datachannel`: the peer opened this channel.
    DataChannel(DataChannel),
    /// `track`: the peer sends this track.
    Track(TrackRemote),
    /// The send-side bandwidth estimate moved: what all our tracks
    /// together may send now, bits per second (encoders follow it; also
    /// `availableOutgoingBitrate` in getStats).
    BandwidthEstimate(u64),
}

/// An RTCDataChannel event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataChannelEvent {
    /// `open`.
    Open,
    /// `message`.
    Message(ChannelData),
    /// `bufferedamountlow`.
    BufferedAmountLow,
    /// `closing`.
    Closing,
    /// `error` (comes before `close`): why the channel could not be
    /// created (W3C webrtc-pc §6.2, RTCErrorEvent with
    /// `data-channel-failure`).
    Error(crate::ChannelError),
    /// `close`.
    Close,
}

#[derive(Debug, Clone)]
struct PcStatus {
    signaling: SignalingState,
    ice_connection: IceConnectionState,
    ice_gathering: IceGatheringState,
    connection: PeerConnectionState,
    current_local: Option<SessionDescription>,
    current_remote: Option<SessionDescription>,
    pending_local: Option<SessionDescription>,
    pending_remote: Option<SessionDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ChannelStatus {
    state: DataChannelState,
    id: Option<u16>,
    buffered_amount: usize,
    low_threshold: usize,
}

type Reply<T> = oneshot::Sender<Result<T, RtcError>>;

#[derive(Debug)]
enum Command {
    CreateOffer(Reply<SessionDescription>),
    CreateAnswer(Reply<SessionDescription>),
    SetLocal(SessionDescription, Reply<()>),
    SetRemote(SessionDescription, Reply<()>),
    AddCandidate(Option<IceCandidateInit>, Reply<()>),
    CreateChannel(String, DataChannelInit, Reply<DataChannel>),
    Send(ChannelRef, ChannelData, Reply<()>),
    /// A message the handle checked would be taken (no reply); its length
    /// as counted in [`data_channel::SendGate`].
    SendChecked(ChannelRef, ChannelData, usize),
    SetLowThreshold(ChannelRef, usize),
    CloseChannel(ChannelRef),
    RestartIce(Reply<()>),
    /// TURN servers for the next restart, and their host names.
    SetTurnServers(Vec<realtimer_ice::TurnServer>, Vec<String>, Reply<()>),
    AddTrack(TrackLocal, Reply<RtpSender>),
    SetCodecPreferences(crate::MediaRef, Vec<crate::Codec>, Reply<()>),
    /// An RTP packet of one of our tracks (no reply: errors are logged).
    WriteRtp(crate::MediaRef, crate::RtpPacket),
    /// An RTP packet of one simulcast layer (by rid) of one of our tracks.
    WriteRtpLayer(crate::MediaRef, String, crate::RtpPacket),
    /// The RTP packets of one sample (a frame's, in order) of one of our
    /// tracks, on a simulcast layer with a rid: one message, so the
    /// driver takes the whole frame in one wakeup.
    WriteSample(crate::MediaRef, Option<String>, Vec<crate::RtpPacket>),
    RequestKeyframe(crate::MediaRef, Reply<()>),
    RequestRetransmission(crate::MediaRef, Vec<u16>, Reply<()>),
    GetStats(Reply<StatsReport>),
    Close(Reply<()>),
}

/// Queue sizes between the driver and the handles.
const COMMAND_QUEUE: usize = 256;
const EVENT_QUEUE: usize = 256;
const CHANNEL_QUEUE: usize = 1024;

/// RTCPeerConnection: a handle to the connection's driver task. Dropping
/// every handle (and every [`DataChannel`]) closes the connection.
///
/// The browser's calls, async: make channels and tracks, create and set
/// descriptions, pass candidates (the [`PeerConnectionEvent::IceCandidate`]
/// events) to the other side by any signaling, and its candidates to
/// [`PeerConnection::add_ice_candidate`]. `docs/guide/library.md` connects
/// two of them; `examples/` has whole programs.
///
/// ```
/// use realtimer::{DataChannelInit, PeerConnection, PeerConnectionConfig, PeerConnectionEvent};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), realtimer::RtcError> {
/// let pc = PeerConnection::new(PeerConnectionConfig::default().with_loopback(true)).await?;
/// let mut events = pc.events().expect("taken once");
/// let chat = pc.create_data_channel("chat", DataChannelInit::default()).await?;
/// let offer = pc.create_offer().await?;
/// assert!(offer.sdp.contains("m=application"));
/// pc.set_local_description(offer).await?;
/// // Gathering starts: each candidate is for the other side's addIceCandidate.
/// while let Some(event) = events.recv().await {
///     if let PeerConnectionEvent::IceCandidate(candidate) = event {
///         match candidate {
///             Some(c) => assert!(c.candidate.starts_with("candidate:")),
///             None => break, // end of candidates
///         }
///     }
/// }
/// # let _ = chat;
/// pc.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PeerConnection {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<PcStatus>,
    events: Arc<Mutex<Option<mpsc::Receiver<Box<PeerConnectionEvent>>>>>,
}

async fn call<T>(
    commands: &mpsc::Sender<Command>,
    make: impl FnOnce(Reply<T>) -> Command,
) -> Result<T, RtcError> {
    let (tx, rx) = oneshot::channel();
    commands
        .send(make(tx))
        .await
        .map_err(|_| RtcError::from(StateError::Closed))?;
    rx.await.map_err(|_| RtcError::from(StateError::Closed))?
}

/// The socket: `config.port`, else the first free port of
/// `config.port_range`, else any.
async fn bind(config: &PeerConnectionConfig) -> Result<UdpIo, RtcError> {
    let range = match (&config.port_range, config.port) {
        (Some(range), 0) => range.clone(),
        _ => return UdpIo::bind(config.port).await,
    };
    for port in range.clone() {
        match UdpIo::bind(port).await {
            Ok(socket) => return Ok(socket),
            Err(e) => debug!(port, "{e}"),
        }
    }
    Err(OperationError::NoFreePort {
        first: *range.start(),
        last: *range.end(),
    }
    .into())
}

/// Host candidate addresses: `config.interfaces` as given, else every
/// interface's (listing them is a netlink dump, about 0.1 ms a connection).
fn host_addresses(config: &PeerConnectionConfig, listing: HostListing) -> Vec<SocketAddr> {
    if config.interfaces.is_empty() {
        return listing.list();
    }
    listing.filter(config.interfaces.iter().copied())
}

/// How host candidate addresses are listed from the machine's interfaces,
/// at creation and again at each ICE restart: a restart is how an agent
/// whose addresses changed (another network) offers its new ones
/// (RFC 8445 §9).
#[derive(Debug, Clone, Copy)]
pub(super) struct HostListing {
    port: u16,
    v6: bool,
    include_loopback: bool,
}

impl HostListing {
    /// Every interface's addresses that the socket can use.
    pub(super) fn list(self) -> Vec<SocketAddr> {
        match if_addrs::get_if_addrs() {
            Ok(ifaces) => self.filter(ifaces.iter().map(if_addrs::Interface::ip)),
            Err(e) => {
                warn!("cannot list network interfaces: {e}");
                Vec::new()
            }
        }
    }

    /// Of `ips`, those the socket can use (loopback only when asked).
    fn filter(self, ips: impl Iterator<Item = IpAddr>) -> Vec<SocketAddr> {
        ips.filter(|ip| (self.include_loopback || !ip.is_loopback()) && (self.v6 || ip.is_ipv4()))
            .map(|ip| SocketAddr::new(ip, self.port))
            .collect()
    }
}

impl PeerConnection {
    /// A new connection: binds its UDP socket and starts its driver task
    /// (call from within a tokio runtime).
    pub async fn new(config: PeerConnectionConfig) -> Result<PeerConnection, RtcError> {
        let certificate = match &config.certificate {
            Some(c) => c.clone(),
            None => certificates::fresh()?,
        };
        let socket = match &config.udp_mux {
            Some(mux) => Transport::Shared(mux.port()),
            None => Transport::Own(bind(&config).await?),
        };
        let (port, v6) = (socket.port()?, socket.is_v6());
        let mut rtc_config = config.rtc.clone();
        if !config.fixed_seed {
            rtc_config.seed = rand::random();
        }
        rtc_config.ice.allow_loopback |= config.include_loopback;
        let turn_names = ice_servers::configure(&config, &mut rtc_config.ice).await?;
        let start = now();
        let mut rtc = Rtc::new(rtc_config, certificate, start);
        let listing = HostListing {
            port,
            v6,
            include_loopback: config.include_loopback,
        };
        let bound = socket.local_addr()?;
        let bases = if bound.ip().is_unspecified() {
            host_addresses(&config, listing)
        } else {
            vec![bound]
        };
        // Listed again at an ICE restart only when they were listed here:
        // a fixed list or address stays fixed.
        let relisting =
            (bound.ip().is_unspecified() && config.interfaces.is_empty()).then_some(listing);
        for b in &bases {
            rtc.add_local_address(start, *b);
        }
        if config.ice_candidate_pool_size > 0 {
            rtc.prefetch_candidates(start);
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
        let (mdns_tx, mdns_rx) = mpsc::channel(64);
        let status = PcStatus {
            signaling: SignalingState::Stable,
            ice_connection: IceConnectionState::New,
            ice_gathering: IceGatheringState::New,
            connection: PeerConnectionState::New,
            current_local: None,
            current_remote: None,
            pending_local: None,
            pending_remote: None,
        };
        let (status_tx, status_rx) = watch::channel(status);
        let pc_id = rand::random::<u32>();
        let span = info_span!("pc", pc_id, port);
        let driver = Driver {
            rtc,
            socket,
            bases,
            relisting,
            commands: cmd_rx,
            command_tx: cmd_tx.downgrade(),
            events: event_tx,
            mdns_tx,
            mdns_rx,
            mdns_names: Vec::new(),
            status: status_tx,
            channels: HashMap::new(),
            pending: VecDeque::new(),
            pc_backlog: VecDeque::new(),
            turn: turn_stream::TurnStreams::new(turn_names, config.turn_tls_ca_pem.clone(), port),
            gate: data_channel::SendGate::default(),
            tracks: HashMap::new(),
            local_tracks: HashMap::new(),
            remote_clocks: HashMap::new(),
            playout: HashMap::new(),
        };
        // Boxed: an async fn stores its by-value argument twice in its
        // future (rust-lang/rust#62958), which made each connection's task
        // 15 KB instead of 8.
        tokio::spawn(Box::new(driver).run().instrument(span));
        Ok(PeerConnection {
            commands: cmd_tx,
            status: status_rx,
            events: Arc::new(Mutex::new(Some(event_rx))),
        })
    }

    /// The event stream (`icecandidate`, state changes, `datachannel`).
    /// There is one per connection: the first call gets it, later calls
    /// `None`. Read it: while events wait, the connection stops reading
    /// its socket.
    pub fn events(&self) -> Option<PeerConnectionEvents> {
        self.events
            .lock()
            .ok()
            .and_then(|mut e| e.take())
            .map(|rx| PeerConnectionEvents { rx })
    }

    /// createOffer.
    pub async fn create_offer(&self) -> Result<SessionDescription, RtcError> {
        call(&self.commands, Command::CreateOffer).await
    }

    /// createAnswer.
    pub async fn create_answer(&self) -> Result<SessionDescription, RtcError> {
        call(&self.commands, Command::CreateAnswer).await
    }

    /// setLocalDescription (an empty SDP: the implicit offer or answer).
    pub async fn set_local_description(&self, desc: SessionDescription) -> Result<(), RtcError> {
        call(&self.commands, |r| Command::SetLocal(desc, r)).await
    }

    /// setRemoteDescription.
    pub async fn set_remote_description(&self, desc: SessionDescription) -> Result<(), RtcError> {
        call(&self.commands, |r| Command::SetRemote(desc, r)).await
    }

    /// addIceCandidate; `None` (or an empty candidate) is end-of-candidates.
    pub async fn add_ice_candidate(
        &self,
        candidate: Option<IceCandidateInit>,
    ) -> Result<(), RtcError> {
        call(&self.commands, |r| Command::AddCandidate(candidate, r)).await
    }

    /// createDataChannel.
    pub async fn create_data_channel(
        &self,
        label: &str,
        init: DataChannelInit,
    ) -> Result<DataChannel, RtcError> {
        let label = label.to_owned();
        call(&self.commands, |r| Command::CreateChannel(label, init, r)).await
    }

    /// addTrack (W3C webrtc-pc §5.1): sends `track` on a transceiver of
    /// its kind (one the peer's offer made, or a new one: then
    /// `negotiationneeded` fires). Write its packets with
    /// [`TrackLocal::write_rtp`] once negotiated.
    pub async fn add_track(&self, track: TrackLocal) -> Result<RtpSender, RtcError> {
        call(&self.commands, |r| Command::AddTrack(track, r)).await
    }

    /// getStats: transport, candidate pairs and candidates, data channels
    /// and SCTP, with W3C webrtc-stats names
    /// ([`StatsReport::to_json`] for the browser's JSON shape).
    pub async fn get_stats(&self) -> Result<StatsReport, RtcError> {
        call(&self.commands, Command::GetStats).await
    }

    /// restartIce: the next offer carries new ICE credentials;
    /// `negotiationneeded` fires. Data keeps flowing on the current pair
    /// until the restarted checks select a new one.
    pub async fn restart_ice(&self) -> Result<(), RtcError> {
        call(&self.commands, Command::RestartIce).await
    }

    /// setConfiguration with new `iceServers` (W3C webrtc-pc §4.4.1.6),
    /// for their TURN servers: the next ICE restart ([`Self::restart_ice`],
    /// or one the peer starts) releases the allocations on the current
    /// TURN servers and allocates on these. How an application moves a
    /// relay-only call off a TURN server it lost: set another, restart ICE,
    /// negotiate. STUN servers and the transport policy stay as they were.
    pub async fn set_ice_servers(&self, ice_servers: Vec<IceServer>) -> Result<(), RtcError> {
        let (servers, names) = ice_servers::turn_servers(ice_servers).await?;
        call(&self.commands, |r| {
            Command::SetTurnServers(servers, names, r)
        })
        .await
    }

    /// close: every channel closes, the driver task ends.
    pub async fn close(&self) {
        let _ = call(&self.commands, Command::Close).await;
    }

    /// signalingState.
    pub fn signaling_state(&self) -> SignalingState {
        self.status.borrow().signaling
    }

    /// iceConnectionState.
    pub fn ice_connection_state(&self) -> IceConnectionState {
        self.status.borrow().ice_connection
    }

    /// iceGatheringState.
    pub fn ice_gathering_state(&self) -> IceGatheringState {
        self.status.borrow().ice_gathering
    }

    /// connectionState.
    pub fn connection_state(&self) -> PeerConnectionState {
        self.status.borrow().connection
    }

    /// localDescription.
    pub fn local_description(&self) -> Option<SessionDescription> {
        let s = self.status.borrow();
        s.pending_local
            .as_ref()
            .or(s.current_local.as_ref())
            .cloned()
    }

    /// remoteDescription.
    pub fn remote_description(&self) -> Option<SessionDescription> {
        let s = self.status.borrow();
        s.pending_remote
            .as_ref()
            .or(s.current_remote.as_ref())
            .cloned()
    }

    /// currentLocalDescription.
    pub fn current_local_description(&self) -> Option<SessionDescription> {
        self.status.borrow().current_local.clone()
    }

    /// currentRemoteDescription.
    pub fn current_remote_description(&self) -> Option<SessionDescription> {
        self.status.borrow().current_remote.clone()
    }

    /// pendingLocalDescription.
    pub fn pending_local_description(&self) -> Option<SessionDescription> {
        self.status.borrow().pending_local.clone()
    }

    /// pendingRemoteDescription.
    pub fn pending_remote_description(&self) -> Option<SessionDescription> {
        self.status.borrow().pending_remote.clone()
    }

    /// Waits until connectionState is `state` (or the connection closed).
    pub async fn wait_for_connection_state(&self, state: PeerConnectionState) {
        let mut rx = self.status.clone();
        let _ = rx
            .wait_for(|s| s.connection == state || s.connection == PeerConnectionState::Closed)
            .await;
    }
}

/// The event stream of a [`PeerConnection`].
#[derive(Debug)]
pub struct PeerConnectionEvents {
    /// Boxed: a channel allocates its first 32 slots up front, and
    /// events are rare and large.
    rx: mpsc::Receiver<Box<PeerConnectionEvent>>,
}

impl PeerConnectionEvents {
    /// The next event; `None` once the connection is gone.
    pub async fn recv(&mut self) -> Option<PeerConnectionEvent> {
        self.rx.recv().await.map(|e| *e)
    }
}
