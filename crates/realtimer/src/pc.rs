//! The tokio driver and the RTCPeerConnection-shaped API.
//!
//! One task per connection owns the [`Rtc`] core and one UDP socket; the
//! [`PeerConnection`] and [`DataChannel`] handles talk to it over bounded
//! channels. Events the user has not read yet wait in the driver, and while
//! they do the driver stops reading the socket (the peer's SCTP backs off):
//! nothing is dropped and no queue grows without bound.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use realtimer_datachannel::ChannelData;
use realtimer_dtls::Certificate;
use realtimer_ice::{IceConnectionState, IceGatheringState};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info_span, warn, Instrument};

use crate::channel::{ChannelRef, DataChannelInfo, DataChannelInit, DataChannelState};
use crate::error::RtcError;
use crate::event::{PeerConnectionState, RtcEvent};
use crate::jsep::{IceCandidateInit, SessionDescription, SignalingState};
use crate::rtc::{Rtc, RtcConfig};

/// The driver's clock: the only place the tokio layer reads it.
#[allow(clippy::disallowed_methods)] // the driver owns the clock; the core takes it as input
fn now() -> Instant {
    Instant::now()
}

/// An ICE server (RTCIceServer). Only `stun:` URLs are used for now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:host:port` URLs.
    pub urls: Vec<String>,
    /// For `turn:` (not supported yet).
    pub username: Option<String>,
    /// For `turn:` (not supported yet).
    pub credential: Option<String>,
}

/// RTCConfiguration plus realtimer's own options.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PeerConnectionConfig {
    /// STUN servers (`stun:` URLs).
    pub ice_servers: Vec<IceServer>,
    /// Our certificate; generated when `None`.
    pub certificate: Option<Certificate>,
    /// Offer host candidates on loopback addresses (off in browsers; on
    /// for tests and same-machine peers).
    pub include_loopback: bool,
    /// Only these local addresses (all interfaces when empty).
    pub interfaces: Vec<IpAddr>,
    /// The UDP port to bind (0: any).
    pub port: u16,
    /// The core's settings (ICE timers, SCTP, seed). The seed is replaced by
    /// a random one unless [`PeerConnectionConfig::fixed_seed`] is set.
    pub rtc: RtcConfig,
    /// Keep `rtc.seed` as given (reproducible credentials; for tests).
    pub fixed_seed: bool,
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
    /// `error` (comes before `close`).
    Error(String),
    /// `close`.
    Close,
}

#[derive(Debug, Clone)]
struct PcStatus {
    signaling: SignalingState,
    ice_connection: IceConnectionState,
    ice_gathering: IceGatheringState,
    connection: PeerConnectionState,
    local: Option<SessionDescription>,
    remote: Option<SessionDescription>,
    current_local: Option<SessionDescription>,
    current_remote: Option<SessionDescription>,
    pending_local: Option<SessionDescription>,
    pending_remote: Option<SessionDescription>,
    local_address: Option<SocketAddr>,
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
    SetLowThreshold(ChannelRef, usize),
    CloseChannel(ChannelRef),
    Close(Reply<()>),
}

/// Queue sizes between the driver and the handles.
const COMMAND_QUEUE: usize = 256;
const EVENT_QUEUE: usize = 256;
const CHANNEL_QUEUE: usize = 1024;

/// RTCPeerConnection: a handle to the connection's driver task. Dropping
/// every handle (and every [`DataChannel`]) closes the connection.
#[derive(Debug, Clone)]
pub struct PeerConnection {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<PcStatus>,
    events: Arc<Mutex<Option<mpsc::Receiver<PeerConnectionEvent>>>>,
}

async fn call<T>(
    commands: &mpsc::Sender<Command>,
    make: impl FnOnce(Reply<T>) -> Command,
) -> Result<T, RtcError> {
    let (tx, rx) = oneshot::channel();
    commands
        .send(make(tx))
        .await
        .map_err(|_| RtcError::state("the connection is closed"))?;
    rx.await
        .map_err(|_| RtcError::state("the connection is closed"))?
}

fn host_addresses(config: &PeerConnectionConfig, port: u16, v6: bool) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    match if_addrs::get_if_addrs() {
        Ok(ifaces) => {
            for iface in ifaces {
                let ip = iface.ip();
                if !config.interfaces.is_empty() && !config.interfaces.contains(&ip) {
                    continue;
                }
                if ip.is_loopback() && !config.include_loopback {
                    continue;
                }
                if ip.is_ipv6() && !v6 {
                    continue;
                }
                out.push(SocketAddr::new(ip, port));
            }
        }
        Err(e) => warn!("cannot list network interfaces: {e}"),
    }
    out
}

async fn resolve_stun(servers: &[IceServer]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for url in servers.iter().flat_map(|s| &s.urls) {
        let Some(rest) = url.strip_prefix("stun:") else {
            warn!(%url, "ICE server ignored: only stun: URLs are supported");
            continue;
        };
        let target = if rest
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            rest.to_owned()
        } else {
            format!("{rest}:3478")
        };
        match tokio::net::lookup_host(target).await {
            Ok(addrs) => out.extend(addrs.filter(SocketAddr::is_ipv4).take(1)),
            Err(e) => warn!(%url, "STUN server does not resolve: {e}"),
        }
    }
    out
}

impl PeerConnection {
    /// A new connection: binds its UDP socket and starts its driver task
    /// (call from within a tokio runtime).
    pub async fn new(config: PeerConnectionConfig) -> Result<PeerConnection, RtcError> {
        let certificate = match &config.certificate {
            Some(c) => c.clone(),
            None => {
                #[allow(clippy::disallowed_methods)] // certificate validity needs the wall clock
                let wall = SystemTime::now();
                Certificate::generate(wall).map_err(|e| RtcError::OperationError(e.to_string()))?
            }
        };
        // Dual-stack when the host has IPv6, IPv4 only otherwise.
        let (socket, v6) = match UdpSocket::bind((Ipv6Addr::UNSPECIFIED, config.port)).await {
            Ok(s) => (s, true),
            Err(_) => (
                UdpSocket::bind((Ipv4Addr::UNSPECIFIED, config.port))
                    .await
                    .map_err(|e| RtcError::OperationError(format!("UDP bind: {e}")))?,
                false,
            ),
        };
        let port = socket
            .local_addr()
            .map_err(|e| RtcError::OperationError(e.to_string()))?
            .port();
        let mut rtc_config = config.rtc.clone();
        if !config.fixed_seed {
            rtc_config.seed = rand::random();
        }
        rtc_config.ice.allow_loopback |= config.include_loopback;
        rtc_config.ice.stun_servers = resolve_stun(&config.ice_servers).await;
        let start = now();
        let mut rtc = Rtc::new(rtc_config, certificate, start);
        let bases = host_addresses(&config, port, v6);
        for b in &bases {
            rtc.add_local_address(start, *b);
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
        let (mdns_tx, mdns_rx) = mpsc::channel(64);
        let status = PcStatus {
            signaling: SignalingState::Stable,
            ice_connection: IceConnectionState::New,
            ice_gathering: IceGatheringState::New,
            connection: PeerConnectionState::New,
            local: None,
            remote: None,
            current_local: None,
            current_remote: None,
            pending_local: None,
            pending_remote: None,
            local_address: bases.first().copied(),
        };
        let (status_tx, status_rx) = watch::channel(status);
        let pc_id = rand::random::<u32>();
        let span = info_span!("pc", pc_id, port);
        let driver = Driver {
            rtc,
            socket,
            v6,
            bases,
            commands: cmd_rx,
            command_tx: cmd_tx.downgrade(),
            events: event_tx,
            mdns_tx,
            mdns_rx,
            status: status_tx,
            channels: HashMap::new(),
            pending: VecDeque::new(),
        };
        tokio::spawn(driver.run().instrument(span));
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
        self.status.borrow().local.clone()
    }

    /// remoteDescription.
    pub fn remote_description(&self) -> Option<SessionDescription> {
        self.status.borrow().remote.clone()
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
    rx: mpsc::Receiver<PeerConnectionEvent>,
}

impl PeerConnectionEvents {
    /// The next event; `None` once the connection is gone.
    pub async fn recv(&mut self) -> Option<PeerConnectionEvent> {
        self.rx.recv().await
    }
}

/// RTCDataChannel. Clones share the channel (send from one task, receive
/// in another).
#[derive(Debug, Clone)]
pub struct DataChannel {
    channel: ChannelRef,
    info: DataChannelInfo,
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<ChannelStatus>,
    events: Arc<tokio::sync::Mutex<mpsc::Receiver<DataChannelEvent>>>,
}

impl DataChannel {
    /// label.
    pub fn label(&self) -> &str {
        &self.info.label
    }

    /// protocol.
    pub fn protocol(&self) -> &str {
        &self.info.protocol
    }

    /// id: the SCTP stream id, once the DTLS role is known.
    pub fn id(&self) -> Option<u16> {
        self.status.borrow().id.or(self.info.id)
    }

    /// ordered.
    pub fn ordered(&self) -> bool {
        self.info.ordered
    }

    /// maxRetransmits.
    pub fn max_retransmits(&self) -> Option<u16> {
        self.info.max_retransmits
    }

    /// maxPacketLifeTime (ms).
    pub fn max_packet_life_time(&self) -> Option<u16> {
        self.info.max_packet_life_time
    }

    /// negotiated.
    pub fn negotiated(&self) -> bool {
        self.info.negotiated
    }

    /// readyState.
    pub fn ready_state(&self) -> DataChannelState {
        self.status.borrow().state
    }

    /// bufferedAmount: bytes queued and not yet sent.
    pub fn buffered_amount(&self) -> usize {
        self.status.borrow().buffered_amount
    }

    /// bufferedAmountLowThreshold.
    pub fn buffered_amount_low_threshold(&self) -> usize {
        self.status.borrow().low_threshold
    }

    /// Sets bufferedAmountLowThreshold: `bufferedamountlow` fires when the
    /// buffered amount falls to it.
    pub async fn set_buffered_amount_low_threshold(&self, threshold: usize) {
        let _ = self
            .commands
            .send(Command::SetLowThreshold(self.channel, threshold))
            .await;
    }

    /// send: a text or binary message.
    pub async fn send(&self, data: ChannelData) -> Result<(), RtcError> {
        let r = self.channel;
        call(&self.commands, |reply| Command::Send(r, data, reply)).await
    }

    /// send(string).
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), RtcError> {
        self.send(ChannelData::Text(text.into())).await
    }

    /// send(ArrayBuffer).
    pub async fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), RtcError> {
        self.send(ChannelData::Binary(data.into())).await
    }

    /// close.
    pub async fn close(&self) {
        let _ = self
            .commands
            .send(Command::CloseChannel(self.channel))
            .await;
    }

    /// The next event (`open`, `message`, `bufferedamountlow`, `closing`,
    /// `error`, `close`); `None` after `close`.
    pub async fn next_event(&self) -> Option<DataChannelEvent> {
        self.events.lock().await.recv().await
    }

    /// The next message, skipping other events; `None` once closed.
    pub async fn recv(&self) -> Option<ChannelData> {
        let mut events = self.events.lock().await;
        loop {
            match events.recv().await? {
                DataChannelEvent::Message(m) => return Some(m),
                DataChannelEvent::Close => return None,
                _ => {}
            }
        }
    }

    /// Waits until the channel is open; false if it closed instead.
    pub async fn wait_open(&self) -> bool {
        let mut rx = self.status.clone();
        matches!(
            rx.wait_for(|s| s.state != DataChannelState::Connecting)
                .await
                .map(|s| s.state),
            Ok(DataChannelState::Open)
        )
    }

    /// Waits until the channel is closed.
    pub async fn wait_closed(&self) {
        let mut rx = self.status.clone();
        let _ = rx.wait_for(|s| s.state == DataChannelState::Closed).await;
    }

    /// Waits until bufferedAmount is at or below `level` (back-pressure
    /// for senders; the `bufferedamountlow` event without the threshold).
    pub async fn wait_buffered_amount_at_most(&self, level: usize) {
        let mut rx = self.status.clone();
        let _ = rx
            .wait_for(|s| s.buffered_amount <= level || s.state == DataChannelState::Closed)
            .await;
    }
}

/// The driver's side of one channel.
#[derive(Debug)]
struct ChannelEnd {
    events: mpsc::Sender<DataChannelEvent>,
    status: watch::Sender<ChannelStatus>,
}

/// An event the user has not taken yet.
#[derive(Debug)]
enum Pending {
    Pc(PeerConnectionEvent),
    Channel(ChannelRef, DataChannelEvent),
}

struct Driver {
    rtc: Rtc,
    socket: UdpSocket,
    v6: bool,
    bases: Vec<SocketAddr>,
    commands: mpsc::Receiver<Command>,
    command_tx: mpsc::WeakSender<Command>,
    events: mpsc::Sender<PeerConnectionEvent>,
    mdns_tx: mpsc::Sender<(String, Option<IpAddr>)>,
    mdns_rx: mpsc::Receiver<(String, Option<IpAddr>)>,
    status: watch::Sender<PcStatus>,
    channels: HashMap<ChannelRef, ChannelEnd>,
    pending: VecDeque<Pending>,
}

/// The sender a pending event goes to.
enum Target {
    Pc(mpsc::Sender<PeerConnectionEvent>),
    Channel(mpsc::Sender<DataChannelEvent>),
}

impl Driver {
    async fn run(mut self) {
        let mut buf = vec![0u8; 65536];
        loop {
            self.flush().await;
            self.drain_events();
            self.refresh_status();
            if self.rtc.connection_state() == PeerConnectionState::Closed && self.pending.is_empty()
            {
                debug!("driver done");
                break;
            }
            let deadline = self
                .rtc
                .poll_timeout()
                .unwrap_or_else(|| now() + Duration::from_secs(3600));
            let target = self.pending.front().and_then(|p| self.target(p));
            let can_read = self.pending.is_empty();
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.handle_command(cmd),
                    None => {
                        debug!("every handle dropped: closing");
                        self.rtc.close(now());
                    }
                },
                Some((name, ip)) = self.mdns_rx.recv() => {
                    self.rtc.resolve_mdns_name(now(), &name, ip);
                }
                ok = wait_target(target), if !can_read => {
                    if let Some(p) = self.pending.pop_front() {
                        if ok {
                            self.deliver(p);
                        }
                    }
                }
                r = self.socket.recv_from(&mut buf), if can_read => match r {
                    Ok((len, from)) => {
                        let from = canonical(from);
                        let to = self.base_for(from);
                        if let Some(d) = buf.get(..len) {
                            self.rtc.handle_receive(now(), from, to, d);
                        }
                    }
                    Err(e) => debug!("UDP receive: {e}"),
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.rtc.handle_timeout(now());
                }
            }
        }
        // Anything the user still holds sees the channels closed.
        for (_, end) in self.channels.drain() {
            end.status
                .send_modify(|s| s.state = DataChannelState::Closed);
        }
    }

    /// The local base a datagram from `from` arrived on. One wildcard socket
    /// cannot tell, so: a base with the sender's IP (same host), else a
    /// loopback base for a loopback sender, else the first base of the
    /// sender's family.
    fn base_for(&self, from: SocketAddr) -> SocketAddr {
        let port = self.bases.first().map_or(0, SocketAddr::port);
        self.bases
            .iter()
            .find(|b| b.ip() == from.ip())
            .or_else(|| {
                self.bases.iter().find(|b| {
                    b.is_ipv4() == from.is_ipv4() && b.ip().is_loopback() == from.ip().is_loopback()
                })
            })
            .or_else(|| self.bases.iter().find(|b| b.is_ipv4() == from.is_ipv4()))
            .copied()
            .unwrap_or_else(|| {
                SocketAddr::new(
                    if from.is_ipv4() {
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                    } else {
                        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                    },
                    port,
                )
            })
    }

    async fn flush(&mut self) {
        while let Some(t) = self.rtc.poll_transmit() {
            let to = if self.v6 {
                match t.destination {
                    SocketAddr::V4(a) => {
                        SocketAddr::new(IpAddr::V6(a.ip().to_ipv6_mapped()), a.port())
                    }
                    v6 => v6,
                }
            } else {
                t.destination
            };
            if let Err(e) = self.socket.send_to(&t.contents, to).await {
                debug!(%to, "UDP send: {e}");
            }
        }
    }

    fn target(&self, p: &Pending) -> Option<Target> {
        match p {
            Pending::Pc(_) => Some(Target::Pc(self.events.clone())),
            Pending::Channel(r, _) => self
                .channels
                .get(r)
                .map(|c| Target::Channel(c.events.clone())),
        }
    }

    fn deliver(&mut self, p: Pending) {
        let result = match p {
            Pending::Pc(e) => self.events.try_send(e).map_err(|e| match e {
                mpsc::error::TrySendError::Full(e) => Some(Pending::Pc(e)),
                mpsc::error::TrySendError::Closed(_) => None,
            }),
            Pending::Channel(r, e) => match self.channels.get(&r) {
                Some(end) => end.events.try_send(e).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(e) => Some(Pending::Channel(r, e)),
                    mpsc::error::TrySendError::Closed(_) => None,
                }),
                None => Ok(()),
            },
        };
        if let Err(Some(back)) = result {
            self.pending.push_front(back);
        }
    }

    /// Queues an event for the user, in order behind any waiting ones.
    fn dispatch(&mut self, p: Pending) {
        if self.pending.is_empty() {
            self.deliver(p);
        } else {
            self.pending.push_back(p);
        }
    }

    fn new_channel(&mut self, r: ChannelRef, info: DataChannelInfo) -> DataChannel {
        let (tx, rx) = mpsc::channel(CHANNEL_QUEUE);
        let (status_tx, status_rx) = watch::channel(ChannelStatus {
            state: self.rtc.channel_state(r),
            id: info.id,
            buffered_amount: 0,
            low_threshold: 0,
        });
        self.channels.insert(
            r,
            ChannelEnd {
                events: tx,
                status: status_tx,
            },
        );
        let commands = self
            .command_tx
            .upgrade()
            .unwrap_or_else(|| mpsc::channel(1).0);
        DataChannel {
            channel: r,
            info,
            commands,
            status: status_rx,
            events: Arc::new(tokio::sync::Mutex::new(rx)),
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.rtc.poll_event() {
            match event {
                RtcEvent::IceCandidate(c) => {
                    self.dispatch(Pending::Pc(PeerConnectionEvent::IceCandidate(c)))
                }
                RtcEvent::IceGatheringState(s) => {
                    self.dispatch(Pending::Pc(PeerConnectionEvent::IceGatheringStateChange(s)));
                }
                RtcEvent::IceConnectionState(s) => {
                    self.dispatch(Pending::Pc(PeerConnectionEvent::IceConnectionStateChange(
                        s,
                    )));
                }
                RtcEvent::ConnectionState(s) => {
                    self.dispatch(Pending::Pc(PeerConnectionEvent::ConnectionStateChange(s)));
                }
                RtcEvent::SignalingState(s) => {
                    self.dispatch(Pending::Pc(PeerConnectionEvent::SignalingStateChange(s)));
                }
                RtcEvent::NegotiationNeeded => {
                    self.dispatch(Pending::Pc(PeerConnectionEvent::NegotiationNeeded))
                }
                RtcEvent::DataChannel(r, info) => {
                    let dc = self.new_channel(r, info);
                    self.dispatch(Pending::Pc(PeerConnectionEvent::DataChannel(dc)));
                }
                RtcEvent::ChannelOpen(r, id) => {
                    if let Some(end) = self.channels.get(&r) {
                        end.status.send_modify(|s| {
                            s.state = DataChannelState::Open;
                            s.id = Some(id);
                        });
                    }
                    self.dispatch(Pending::Channel(r, DataChannelEvent::Open));
                }
                RtcEvent::ChannelMessage(r, data) => {
                    self.dispatch(Pending::Channel(r, DataChannelEvent::Message(data)));
                }
                RtcEvent::ChannelBufferedAmountLow(r) => {
                    self.dispatch(Pending::Channel(r, DataChannelEvent::BufferedAmountLow));
                }
                RtcEvent::ChannelClosing(r) => {
                    if let Some(end) = self.channels.get(&r) {
                        end.status
                            .send_modify(|s| s.state = DataChannelState::Closing);
                    }
                    self.dispatch(Pending::Channel(r, DataChannelEvent::Closing));
                }
                RtcEvent::ChannelError(r, e) => {
                    self.dispatch(Pending::Channel(r, DataChannelEvent::Error(e)));
                }
                RtcEvent::ChannelClosed(r) => {
                    if let Some(end) = self.channels.get(&r) {
                        end.status.send_modify(|s| {
                            s.state = DataChannelState::Closed;
                            s.buffered_amount = 0;
                        });
                    }
                    self.dispatch(Pending::Channel(r, DataChannelEvent::Close));
                }
                RtcEvent::ResolveMdnsName(name) => {
                    let tx = self.mdns_tx.clone();
                    tokio::spawn(async move {
                        let lookup = tokio::net::lookup_host((name.as_str(), 0));
                        let ip = match tokio::time::timeout(Duration::from_secs(3), lookup).await {
                            Ok(Ok(mut addrs)) => addrs.next().map(|a| a.ip()),
                            _ => None,
                        };
                        debug!(%name, ?ip, "mDNS name resolved");
                        let _ = tx.send((name, ip)).await;
                    });
                }
                RtcEvent::RegisterMdnsName(name, _) => {
                    debug!(%name, "mDNS publishing is not implemented; the name will not resolve");
                }
            }
        }
        // Channels that are closed and delivered are forgotten.
        let rtc = &self.rtc;
        let pending = &self.pending;
        self.channels.retain(|r, end| {
            rtc.channel_state(*r) != DataChannelState::Closed
                || end.status.borrow().state != DataChannelState::Closed
                || pending
                    .iter()
                    .any(|p| matches!(p, Pending::Channel(x, _) if x == r))
        });
    }

    fn refresh_status(&mut self) {
        for (r, end) in &self.channels {
            let amount = self.rtc.buffered_amount(*r);
            end.status.send_if_modified(|s| {
                if s.buffered_amount != amount {
                    s.buffered_amount = amount;
                    true
                } else {
                    false
                }
            });
        }
        let rtc = &self.rtc;
        self.status.send_if_modified(|s| {
            let next = PcStatus {
                signaling: rtc.signaling_state(),
                ice_connection: rtc.ice_connection_state(),
                ice_gathering: rtc.ice_gathering_state(),
                connection: rtc.connection_state(),
                local: rtc.local_description().cloned(),
                remote: rtc.remote_description().cloned(),
                current_local: rtc.current_local_description().cloned(),
                current_remote: rtc.current_remote_description().cloned(),
                pending_local: rtc.pending_local_description().cloned(),
                pending_remote: rtc.pending_remote_description().cloned(),
                local_address: s.local_address,
            };
            let changed = next.signaling != s.signaling
                || next.ice_connection != s.ice_connection
                || next.ice_gathering != s.ice_gathering
                || next.connection != s.connection
                || next.local != s.local
                || next.remote != s.remote
                || next.current_local != s.current_local
                || next.current_remote != s.current_remote;
            *s = next;
            changed
        });
    }

    fn handle_command(&mut self, cmd: Command) {
        let t = now();
        match cmd {
            Command::CreateOffer(r) => {
                let _ = r.send(self.rtc.create_offer());
            }
            Command::CreateAnswer(r) => {
                let _ = r.send(self.rtc.create_answer());
            }
            Command::SetLocal(d, r) => {
                let _ = r.send(self.rtc.set_local_description(t, d));
            }
            Command::SetRemote(d, r) => {
                let _ = r.send(self.rtc.set_remote_description(t, d));
            }
            Command::AddCandidate(c, r) => {
                let _ = r.send(self.rtc.add_ice_candidate(t, c.as_ref()));
            }
            Command::CreateChannel(label, init, r) => {
                let result = self.rtc.create_data_channel(t, &label, &init).map(|ch| {
                    let info =
                        self.rtc
                            .channel_info(ch)
                            .cloned()
                            .unwrap_or_else(|| DataChannelInfo {
                                label: label.clone(),
                                protocol: init.protocol.clone(),
                                id: None,
                                ordered: init.ordered,
                                max_retransmits: init.max_retransmits,
                                max_packet_life_time: init.max_packet_life_time,
                                negotiated: init.negotiated,
                                priority: init.priority,
                            });
                    self.new_channel(ch, info)
                });
                let _ = r.send(result);
            }
            Command::Send(ch, data, r) => {
                let _ = r.send(self.rtc.send(t, ch, data));
            }
            Command::SetLowThreshold(ch, threshold) => {
                self.rtc.set_buffered_amount_low_threshold(ch, threshold);
                if let Some(end) = self.channels.get(&ch) {
                    end.status.send_modify(|s| s.low_threshold = threshold);
                }
            }
            Command::CloseChannel(ch) => self.rtc.close_channel(t, ch),
            Command::Close(r) => {
                self.rtc.close(t);
                let _ = r.send(Ok(()));
            }
        }
    }
}

/// Waits for room in the target queue; false when its reader is gone.
async fn wait_target(target: Option<Target>) -> bool {
    match target {
        Some(Target::Pc(tx)) => tx.reserve().await.is_ok(),
        Some(Target::Channel(tx)) => tx.reserve().await.is_ok(),
        None => false,
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`: the core works with plain IPv4.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}
