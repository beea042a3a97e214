//! The server core: requests, indications, ChannelData and timers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use realtimer_stun::attributes::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, ChannelNumber, Data, ErrorCode,
    EvenPort, Lifetime, Nonce, Realm, RequestedAddressFamily, RequestedTransport, ReservationToken,
    Software, UnknownAttributeList, Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use realtimer_stun::{
    AttributeType, BindingOutcome, BindingServer, Class, DecodeAttribute, EncodeError,
    IntegrityKey, Message, MessageEncoder, Method, TransactionId,
};
use tracing::debug;

use crate::allocation::{Allocation, ChannelBinding, FiveTuple, TokenBucket};
use crate::auth::{Authenticated, NonceError, Nonces};
use crate::channel_data::{self, ChannelData};
use crate::config::{ConfigError, ServerConfig};
use crate::error::RequestError;
use crate::metrics::{Gauges, Metrics};
use crate::stream::Transport;

/// A message to send. Over UDP `source` is the local address to send from:
/// a listener the client wrote to, or a relayed address. Over a stream
/// (TCP, TLS) it goes on the connection between the listener `source` and
/// the client `destination`, already framed (ChannelData padded).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// How to send it; always [`Transport::Udp`] towards peers.
    pub transport: Transport,
    /// The local address (socket) to send from.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The datagram. Hand the buffer back with [`Server::recycle`] to spare
    /// an allocation.
    pub contents: Vec<u8>,
}

/// What the driver must do besides sending.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Bind a UDP socket on `relay` and report with [`Server::relay_opened`].
    OpenRelay {
        /// The relayed transport address to bind.
        relay: SocketAddr,
    },
    /// The allocation on `relay` is gone: close its socket.
    CloseRelay {
        /// The relayed transport address to close.
        relay: SocketAddr,
    },
}

/// An Allocate waiting for its relay socket.
#[derive(Debug)]
struct Pending {
    tuple: FiveTuple,
    transaction: TransactionId,
    auth: Authenticated,
    lifetime: Duration,
    family: AddressFamily,
    even: bool,
    additional_refused: Option<AddressFamily>,
    attempts: u8,
}

/// How many ports an Allocate tries before 508.
const MAX_BIND_ATTEMPTS: u8 = 8;
/// How often expired allocations, permissions and channels are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Transmits queued without being polled before new ones are dropped.
const MAX_QUEUED_TRANSMITS: usize = 4096;
/// Buffers kept for reuse.
const MAX_SPARE_BUFFERS: usize = 256;
/// The most XOR-PEER-ADDRESS attributes one CreatePermission may carry.
const MAX_PEERS_PER_REQUEST: usize = 16;

/// The TURN server core. See the crate docs for the flow.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    nonces: Nonces,
    binding: BindingServer,
    epoch: Instant,
    unix_epoch: u64,
    allocations: HashMap<FiveTuple, Allocation>,
    by_relay: HashMap<SocketAddr, FiveTuple>,
    pending: HashMap<SocketAddr, Pending>,
    pending_tuples: HashSet<FiveTuple>,
    relays_in_use: HashSet<SocketAddr>,
    per_account: HashMap<String, usize>,
    per_ip: HashMap<IpAddr, usize>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    spare: Vec<Vec<u8>>,
    metrics: Metrics,
    rng: u64,
    next_sweep: Option<Instant>,
    /// The latest time any input brought, for issuing nonces.
    last_now: Instant,
}

/// A successful request's answer: extra attributes to add.
type Reply = Vec<OwnedAttribute>;

/// Attributes a success response may carry, owned until encoding.
#[derive(Debug, Clone, Copy)]
enum OwnedAttribute {
    Lifetime(u32),
}

impl Server {
    /// A server whose clock starts at `now`, when the wall clock reads
    /// `unix_now` seconds (for REST credential expiry).
    pub fn new(config: ServerConfig, now: Instant, unix_now: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Server {
            nonces: Nonces::new(config.nonce_secret),
            binding: BindingServer::new(config.software.clone()),
            rng: config.seed | 1,
            config,
            epoch: now,
            unix_epoch: unix_now,
            allocations: HashMap::new(),
            by_relay: HashMap::new(),
            pending: HashMap::new(),
            pending_tuples: HashSet::new(),
            relays_in_use: HashSet::new(),
            per_account: HashMap::new(),
            per_ip: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            spare: Vec::new(),
            metrics: Metrics::default(),
            next_sweep: None,
            last_now: now,
        })
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Allocations now open.
    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    /// The counters and gauges in Prometheus text format.
    pub fn render_prometheus(&self) -> String {
        let (permissions, channels) = self.allocations.values().fold((0, 0), |(p, c), a| {
            (p + a.permissions.len(), c + a.channels.len())
        });
        self.metrics.render_prometheus(Gauges {
            allocations: self.allocations.len(),
            relay_ports: self.relays_in_use.len(),
            permissions,
            channels,
        })
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing the driver must do.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Server::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Gives a sent datagram's buffer back for reuse.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < MAX_SPARE_BUFFERS && buffer.capacity() <= 65_600 {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// Expires allocations, permissions and channels (RFC 8656 §7, §9, §12).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.observe(now);
        match self.next_sweep {
            Some(at) if now >= at => {}
            _ => return,
        }
        let expired: Vec<FiveTuple> = self
            .allocations
            .iter()
            .filter(|(_, a)| !a.is_live(now))
            .map(|(t, _)| *t)
            .collect();
        for tuple in expired {
            self.remove_allocation(tuple);
        }
        for allocation in self.allocations.values_mut() {
            allocation.sweep(now);
        }
        self.next_sweep = (!self.allocations.is_empty()).then(|| now + SWEEP_INTERVAL);
    }

    /// Reports the outcome of an [`Event::OpenRelay`]. On failure another
    /// port is tried, up to a bound, then the client gets 508.
    pub fn relay_opened(&mut self, now: Instant, relay: SocketAddr, bound: bool) {
        self.observe(now);
        let Some(mut pending) = self.pending.remove(&relay) else {
            // Its client went away meanwhile (a closed stream): unbind it.
            if bound {
                self.events.push_back(Event::CloseRelay { relay });
            }
            return;
        };
        if !bound {
            self.relays_in_use.remove(&relay);
            pending.attempts += 1;
            if pending.attempts < MAX_BIND_ATTEMPTS {
                if let Some(next) = self.pick_relay(pending.family, pending.even) {
                    self.relays_in_use.insert(next);
                    self.pending.insert(next, pending);
                    self.events.push_back(Event::OpenRelay { relay: next });
                    return;
                }
            }
            self.pending_tuples.remove(&pending.tuple);
            self.release_quota(&pending.auth.account, pending.tuple.client.ip());
            let key = pending.auth.key.clone();
            self.send_error(
                pending.tuple,
                Method::ALLOCATE,
                pending.transaction,
                RequestError::InsufficientCapacity,
                Some(&key),
                &[],
            );
            return;
        }
        self.pending_tuples.remove(&pending.tuple);
        let lifetime_secs = pending.lifetime.as_secs().min(u64::from(u32::MAX)) as u32;
        let mut response = self.buffer();
        let encoded = (|| -> Result<usize, EncodeError> {
            let mut enc = MessageEncoder::new(
                &mut response,
                Class::SuccessResponse,
                Method::ALLOCATE,
                pending.transaction,
            );
            enc.add(&XorRelayedAddress(relay))?;
            enc.add(&Lifetime(lifetime_secs))?;
            enc.add(&XorMappedAddress(pending.tuple.client))?;
            if let Some(family) = pending.additional_refused {
                enc.add(&AddressErrorCode {
                    family,
                    code: ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED,
                    reason: "Address Family not Supported",
                })?;
            }
            if let Some(software) = &self.config.software {
                enc.add(&Software(software))?;
            }
            enc.add_message_integrity(&pending.auth.key)?;
            enc.add_fingerprint()
        })();
        if encoded.is_err() {
            // Our own attributes always fit; should they not, fail closed.
            self.relays_in_use.remove(&relay);
            self.release_quota(&pending.auth.account, pending.tuple.client.ip());
            self.events.push_back(Event::CloseRelay { relay });
            return;
        }
        let allocation = Allocation {
            relay,
            username: pending.auth.username,
            account: pending.auth.account,
            expires: now + pending.lifetime,
            permissions: HashMap::new(),
            channels: HashMap::new(),
            peer_channels: HashMap::new(),
            bucket: self
                .config
                .limits
                .bandwidth_per_allocation
                .map(|rate| TokenBucket::new(rate, now)),
            allocate_transaction: pending.transaction,
            allocate_response: response.clone(),
        };
        debug!(client = %pending.tuple.client, %relay, "allocation created");
        self.allocations.insert(pending.tuple, allocation);
        self.by_relay.insert(relay, pending.tuple);
        self.metrics.allocations_created += 1;
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + SWEEP_INTERVAL);
        }
        self.send_to_client(pending.tuple, response);
    }

    /// Handles one datagram a client sent over UDP to `listener` from `client`.
    pub fn handle_client(
        &mut self,
        now: Instant,
        listener: SocketAddr,
        client: SocketAddr,
        datagram: &[u8],
    ) {
        let tuple = FiveTuple {
            client,
            listener,
            transport: Transport::Udp,
        };
        self.handle_client_message(now, tuple, datagram);
    }

    /// Handles one message, as cut from a stream by
    /// [`crate::StreamDecoder`], that `client` sent on its TCP or TLS
    /// connection to `listener` (RFC 8656 §3.1).
    pub fn handle_stream_message(
        &mut self,
        now: Instant,
        transport: Transport,
        listener: SocketAddr,
        client: SocketAddr,
        message: &[u8],
    ) {
        let tuple = FiveTuple {
            client,
            listener,
            transport,
        };
        self.handle_client_message(now, tuple, message);
    }

    /// The stream from `client` to `listener` closed: its allocation goes
    /// with it, as its 5-tuple can never send again (RFC 8656 §2.2).
    pub fn stream_closed(
        &mut self,
        now: Instant,
        transport: Transport,
        listener: SocketAddr,
        client: SocketAddr,
    ) {
        self.observe(now);
        let tuple = FiveTuple {
            client,
            listener,
            transport,
        };
        self.remove_allocation(tuple);
        if self.pending_tuples.remove(&tuple) {
            let relays: Vec<SocketAddr> = self
                .pending
                .iter()
                .filter(|(_, p)| p.tuple == tuple)
                .map(|(r, _)| *r)
                .collect();
            for relay in relays {
                if let Some(pending) = self.pending.remove(&relay) {
                    self.relays_in_use.remove(&relay);
                    self.release_quota(&pending.auth.account, client.ip());
                }
            }
        }
    }

    /// True while `client` holds an allocation (or one is being made) on
    /// its `transport` to `listener`; a driver keeps such a stream open
    /// however idle.
    pub fn has_allocation(
        &self,
        transport: Transport,
        listener: SocketAddr,
        client: SocketAddr,
    ) -> bool {
        let tuple = FiveTuple {
            client,
            listener,
            transport,
        };
        self.allocations.contains_key(&tuple) || self.pending_tuples.contains(&tuple)
    }

    fn handle_client_message(&mut self, now: Instant, tuple: FiveTuple, datagram: &[u8]) {
        self.observe(now);
        let client = tuple.client;
        if channel_data::is_channel_data(datagram) {
            self.channel_data_from_client(now, tuple, datagram);
            return;
        }
        let message = match Message::decode(datagram) {
            Ok(m) => m,
            Err(e) => {
                debug!(%client, "dropped a malformed datagram: {e}");
                self.metrics.dropped_malformed += 1;
                return;
            }
        };
        match (message.class(), message.method()) {
            (Class::Request, Method::BINDING) => {
                let mut out = self.buffer();
                if self.binding.handle(datagram, client, &mut out) == BindingOutcome::Respond {
                    debug!(source = %client, "answering a STUN request");
                    self.metrics.binding_requests += 1;
                    self.send_to_client(tuple, out);
                }
            }
            (Class::Indication, Method::SEND) => self.send_indication(now, tuple, &message),
            (Class::Request, _) => self.request(now, tuple, &message),
            _ => {}
        }
    }

    /// Handles one datagram that `peer` sent to the relayed address `relay`
    /// (RFC 8656 §11.3, §12.6).
    pub fn handle_peer(&mut self, now: Instant, relay: SocketAddr, peer: SocketAddr, data: &[u8]) {
        let Some(&tuple) = self.by_relay.get(&relay) else {
            self.metrics.dropped_no_route += 1;
            return;
        };
        let mut out = self.buffer();
        let Some(allocation) = self.allocations.get_mut(&tuple) else {
            self.metrics.dropped_no_route += 1;
            return;
        };
        if !allocation.is_live(now) || !allocation.permits(peer.ip(), now) {
            self.metrics.dropped_no_route += 1;
            return;
        }
        if !allocation.take_bandwidth(now, data.len()) {
            self.metrics.dropped_bandwidth += 1;
            return;
        }
        if let Some(channel) = allocation.channel_for(peer, now) {
            if !ChannelData::encode(channel, data, tuple.transport.is_stream(), &mut out) {
                self.metrics.dropped_malformed += 1;
                return;
            }
        } else {
            let transaction = self.next_transaction_id();
            let mut enc =
                MessageEncoder::new(&mut out, Class::Indication, Method::DATA, transaction);
            let ok = enc.add(&XorPeerAddress(peer)).is_ok() && enc.add(&Data(data)).is_ok();
            if !ok {
                self.metrics.dropped_malformed += 1;
                return;
            }
            enc.finish();
        }
        self.metrics.packets_to_clients += 1;
        self.metrics.bytes_to_clients += data.len() as u64;
        self.send_to_client(tuple, out);
    }

    fn channel_data_from_client(&mut self, now: Instant, tuple: FiveTuple, datagram: &[u8]) {
        let message = match ChannelData::decode(datagram) {
            Ok(m) => m,
            Err(e) => {
                debug!(client = %tuple.client, "dropped ChannelData: {e}");
                self.metrics.dropped_malformed += 1;
                return;
            }
        };
        let Some(allocation) = self.allocations.get_mut(&tuple) else {
            self.metrics.dropped_no_route += 1;
            return;
        };
        let peer = match allocation.peer_for(message.channel, now) {
            Some(peer) if allocation.is_live(now) && allocation.permits(peer.ip(), now) => peer,
            _ => {
                self.metrics.dropped_no_route += 1;
                return;
            }
        };
        let relay = allocation.relay;
        self.relay_to_peer(now, tuple, relay, peer, message.data);
    }

    fn send_indication(&mut self, now: Instant, tuple: FiveTuple, message: &Message<'_>) {
        let (Ok(Some(XorPeerAddress(peer))), Ok(Some(Data(data)))) =
            (message.get::<XorPeerAddress>(), message.get::<Data>())
        else {
            self.metrics.dropped_malformed += 1;
            return;
        };
        let Some(allocation) = self.allocations.get(&tuple) else {
            self.metrics.dropped_no_route += 1;
            return;
        };
        if !allocation.is_live(now)
            || peer.is_ipv4() != allocation.relay.is_ipv4()
            || !allocation.permits(peer.ip(), now)
        {
            self.metrics.dropped_no_route += 1;
            return;
        }
        let relay = allocation.relay;
        self.relay_to_peer(now, tuple, relay, peer, data);
    }

    fn relay_to_peer(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        relay: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
    ) {
        let allowed = self
            .allocations
            .get_mut(&tuple)
            .is_some_and(|a| a.take_bandwidth(now, data.len()));
        if !allowed {
            self.metrics.dropped_bandwidth += 1;
            return;
        }
        let mut out = self.buffer();
        out.extend_from_slice(data);
        self.metrics.packets_to_peers += 1;
        self.metrics.bytes_to_peers += data.len() as u64;
        self.push_transmit(Transport::Udp, relay, peer, out);
    }

    /// Allocate, Refresh, CreatePermission, ChannelBind.
    fn request(&mut self, now: Instant, tuple: FiveTuple, message: &Message<'_>) {
        let method = message.method();
        let transaction = message.transaction_id();
        let unknown: Vec<AttributeType> =
            message.unknown_comprehension_required().take(16).collect();
        if !unknown.is_empty() {
            self.send_error(
                tuple,
                method,
                transaction,
                RequestError::UnknownAttributes,
                None,
                &unknown,
            );
            return;
        }
        if !matches!(
            method,
            Method::ALLOCATE | Method::REFRESH | Method::CREATE_PERMISSION | Method::CHANNEL_BIND
        ) {
            self.send_error(
                tuple,
                method,
                transaction,
                RequestError::UnsupportedMethod,
                None,
                &[],
            );
            return;
        }
        let auth = match self.authenticate(now, tuple.client, message) {
            Ok(auth) => auth,
            Err(error) => {
                debug!(client = %tuple.client, ?method, "refused: {error:?}");
                self.send_error(tuple, method, transaction, error, None, &[]);
                return;
            }
        };
        let result = match method {
            Method::ALLOCATE => match self.allocate(now, tuple, message, auth.clone()) {
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Method::REFRESH => self.refresh(now, tuple, message, &auth),
            Method::CREATE_PERMISSION => self.create_permission(now, tuple, message, &auth),
            _ => self.channel_bind(now, tuple, message, &auth),
        };
        match result {
            Ok(reply) => self.send_success(tuple, method, transaction, &auth.key, &reply),
            Err(error) => {
                debug!(client = %tuple.client, ?method, "refused: {error:?}");
                self.send_error(tuple, method, transaction, error, Some(&auth.key), &[]);
            }
        }
    }

    /// RFC 8489 §9.2.4, in its order.
    fn authenticate(
        &self,
        now: Instant,
        client: SocketAddr,
        message: &Message<'_>,
    ) -> Result<Authenticated, RequestError> {
        if !message.has_integrity() {
            return Err(RequestError::Unauthenticated);
        }
        let (Ok(Some(Username(username))), Ok(Some(Realm(_))), Ok(Some(Nonce(nonce)))) = (
            message.get::<Username>(),
            message.get::<Realm>(),
            message.get::<Nonce>(),
        ) else {
            return Err(RequestError::MissingAuthAttributes);
        };
        match self.nonces.check(nonce, client, self.millis(now)) {
            Ok(()) => {}
            Err(NonceError::Expired | NonceError::Invalid) => return Err(RequestError::StaleNonce),
        }
        let auth = self
            .config
            .credentials
            .lookup(username, self.unix_time(now))?;
        message
            .verify_integrity(&auth.key)
            .map_err(|_| RequestError::IntegrityMismatch)?;
        Ok(auth)
    }

    /// RFC 8656 §7.2.
    fn allocate(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        auth: Authenticated,
    ) -> Result<(), RequestError> {
        let transaction = message.transaction_id();
        if let Some(existing) = self.allocations.get(&tuple).filter(|a| a.is_live(now)) {
            if existing.allocate_transaction == transaction && existing.username == auth.username {
                let mut out = self.buffer();
                if let Some(a) = self.allocations.get(&tuple) {
                    out.extend_from_slice(&a.allocate_response);
                }
                self.send_to_client(tuple, out);
                return Ok(());
            }
            return Err(RequestError::AllocationMismatch);
        }
        if self.pending_tuples.contains(&tuple) {
            // A retransmission while the relay is being bound is answered
            // when it is; another transaction is a mismatch.
            let same = self
                .pending
                .values()
                .any(|p| p.tuple == tuple && p.transaction == transaction);
            return if same {
                Ok(())
            } else {
                Err(RequestError::AllocationMismatch)
            };
        }
        if self.allocations.contains_key(&tuple) {
            // Expired but not swept yet: free it now.
            self.remove_allocation(tuple);
        }
        match message.get::<RequestedTransport>() {
            Ok(Some(RequestedTransport::UDP)) => {}
            Ok(Some(_)) => return Err(RequestError::UnsupportedTransport),
            _ => return Err(RequestError::BadRequest),
        }
        let requested_family = match message.get::<RequestedAddressFamily>() {
            Ok(f) => f.map(|f| f.0),
            Err(_) => return Err(RequestError::AddressFamilyNotSupported),
        };
        let has_token = message.contains(AttributeType::RESERVATION_TOKEN);
        if has_token && requested_family.is_some() {
            return Err(RequestError::BadRequest);
        }
        if has_token {
            // We hand out no reservations, so no token can name one.
            let _ = message.get::<ReservationToken>();
            return Err(RequestError::InsufficientCapacity);
        }
        let even = match message.get::<EvenPort>() {
            Ok(None) => false,
            Ok(Some(EvenPort {
                reserve_next: false,
            })) => true,
            Ok(Some(EvenPort { reserve_next: true })) => {
                return Err(RequestError::InsufficientCapacity)
            }
            Err(_) => return Err(RequestError::BadRequest),
        };
        let additional = message
            .get::<AdditionalAddressFamily>()
            .map_err(|_| RequestError::BadRequest)?;
        if requested_family.is_some() && additional.is_some() {
            return Err(RequestError::BadRequest);
        }
        let family = requested_family.unwrap_or(AddressFamily::V4);
        let additional_refused = additional.map(|a| a.0).filter(|&f| f != family);
        if self.relay_ip(family).is_none() {
            return Err(RequestError::AddressFamilyNotSupported);
        }
        let lifetime = self.lifetime(message)?;
        if lifetime.is_zero() {
            return Err(RequestError::BadRequest);
        }
        let limits = &self.config.limits;
        let active = self.allocations.len() + self.pending.len();
        if active >= limits.total_allocations {
            return Err(RequestError::TotalQuota);
        }
        if self.per_account.get(&auth.account).copied().unwrap_or(0) >= limits.allocations_per_user
        {
            return Err(RequestError::UserQuota);
        }
        let ip = tuple.client.ip();
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= limits.allocations_per_ip {
            return Err(RequestError::SourceQuota);
        }
        let relay = self
            .pick_relay(family, even)
            .ok_or(RequestError::InsufficientCapacity)?;
        *self.per_account.entry(auth.account.clone()).or_insert(0) += 1;
        *self.per_ip.entry(ip).or_insert(0) += 1;
        self.relays_in_use.insert(relay);
        self.pending_tuples.insert(tuple);
        self.pending.insert(
            relay,
            Pending {
                tuple,
                transaction,
                auth,
                lifetime,
                family,
                even,
                additional_refused,
                attempts: 0,
            },
        );
        self.events.push_back(Event::OpenRelay { relay });
        Ok(())
    }

    /// RFC 8656 §7.2 and §8: absent is the default, less than the default
    /// is raised to it, more than the maximum is cut; zero stays zero.
    fn lifetime(&self, message: &Message<'_>) -> Result<Duration, RequestError> {
        let limits = &self.config.limits;
        match message.get::<Lifetime>() {
            Ok(None) => Ok(limits.default_lifetime),
            Ok(Some(Lifetime(0))) => Ok(Duration::ZERO),
            Ok(Some(Lifetime(secs))) => Ok(Duration::from_secs(u64::from(secs)).clamp(
                limits.default_lifetime.min(limits.max_lifetime),
                limits.max_lifetime,
            )),
            Err(_) => Err(RequestError::BadRequest),
        }
    }

    /// The caller's live allocation, checked against the request's user.
    fn owned_allocation(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        auth: &Authenticated,
    ) -> Result<&mut Allocation, RequestError> {
        match self.allocations.get_mut(&tuple) {
            Some(a) if a.is_live(now) => {
                if a.username == auth.username {
                    Ok(a)
                } else {
                    Err(RequestError::WrongCredentials)
                }
            }
            _ => Err(RequestError::AllocationMismatch),
        }
    }

    /// RFC 8656 §8.
    fn refresh(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<Reply, RequestError> {
        let lifetime = self.lifetime(message)?;
        let requested_family = message
            .get::<RequestedAddressFamily>()
            .map_err(|_| RequestError::AddressFamilyNotSupported)?;
        let allocation = self.owned_allocation(now, tuple, auth)?;
        if let Some(RequestedAddressFamily(family)) = requested_family {
            if family != AddressFamily::of(&allocation.relay) {
                return Err(RequestError::PeerAddressFamilyMismatch);
            }
        }
        if lifetime.is_zero() {
            self.remove_allocation(tuple);
        } else {
            allocation.expires = now + lifetime;
        }
        Ok(vec![OwnedAttribute::Lifetime(
            lifetime.as_secs().min(u64::from(u32::MAX)) as u32,
        )])
    }

    /// RFC 8656 §9.2.
    fn create_permission(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<Reply, RequestError> {
        let transaction = message.transaction_id();
        let mut peers: Vec<IpAddr> = Vec::new();
        for raw in message
            .raw_attributes()
            .filter(|a| a.attribute_type == AttributeType::XOR_PEER_ADDRESS)
        {
            let XorPeerAddress(peer) = XorPeerAddress::decode(raw.value, &transaction)
                .map_err(|_| RequestError::BadRequest)?;
            if peers.len() >= MAX_PEERS_PER_REQUEST {
                return Err(RequestError::PermissionLimit);
            }
            if !peers.contains(&peer.ip()) {
                peers.push(peer.ip());
            }
        }
        if peers.is_empty() {
            return Err(RequestError::BadRequest);
        }
        let policy_allows: Vec<bool> = peers
            .iter()
            .map(|ip| self.config.peer_policy.allows(*ip))
            .collect();
        let limit = self.config.limits.permissions_per_allocation;
        let lifetime = self.config.limits.permission_lifetime;
        let allocation = self.owned_allocation(now, tuple, auth)?;
        let relay_v4 = allocation.relay.is_ipv4();
        if peers.iter().any(|ip| ip.is_ipv4() != relay_v4) {
            return Err(RequestError::PeerAddressFamilyMismatch);
        }
        if policy_allows.contains(&false) {
            return Err(RequestError::ForbiddenPeer);
        }
        let new = peers
            .iter()
            .filter(|ip| !allocation.permissions.contains_key(ip))
            .count();
        if allocation.permissions.len() + new > limit {
            return Err(RequestError::PermissionLimit);
        }
        for ip in peers {
            allocation.permissions.insert(ip, now + lifetime);
        }
        Ok(Vec::new())
    }

    /// RFC 8656 §12.2.
    fn channel_bind(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<Reply, RequestError> {
        let Ok(Some(ChannelNumber(channel))) = message.get::<ChannelNumber>() else {
            return Err(RequestError::BadRequest);
        };
        if !(channel_data::MIN_CHANNEL..=channel_data::MAX_CHANNEL).contains(&channel) {
            return Err(RequestError::BadChannel);
        }
        let Ok(Some(XorPeerAddress(peer))) = message.get::<XorPeerAddress>() else {
            return Err(RequestError::BadRequest);
        };
        let allowed = self.config.peer_policy.allows(peer.ip());
        let limits = self.config.limits.clone();
        let allocation = self.owned_allocation(now, tuple, auth)?;
        if peer.is_ipv4() != allocation.relay.is_ipv4() {
            return Err(RequestError::PeerAddressFamilyMismatch);
        }
        if !allowed {
            return Err(RequestError::ForbiddenPeer);
        }
        if let Some(binding) = allocation.channels.get(&channel) {
            if binding.peer != peer {
                return Err(RequestError::BadChannel);
            }
        }
        if let Some(&bound) = allocation.peer_channels.get(&peer) {
            if bound != channel {
                return Err(RequestError::BadChannel);
            }
        }
        if !allocation.channels.contains_key(&channel)
            && allocation.channels.len() >= limits.channels_per_allocation
        {
            return Err(RequestError::ChannelLimit);
        }
        if !allocation.permissions.contains_key(&peer.ip())
            && allocation.permissions.len() >= limits.permissions_per_allocation
        {
            return Err(RequestError::PermissionLimit);
        }
        allocation.channels.insert(
            channel,
            ChannelBinding {
                peer,
                expires: now + limits.channel_lifetime,
            },
        );
        allocation.peer_channels.insert(peer, channel);
        allocation
            .permissions
            .insert(peer.ip(), now + limits.permission_lifetime);
        Ok(Vec::new())
    }

    fn remove_allocation(&mut self, tuple: FiveTuple) {
        let Some(allocation) = self.allocations.remove(&tuple) else {
            return;
        };
        self.by_relay.remove(&allocation.relay);
        self.relays_in_use.remove(&allocation.relay);
        self.release_quota(&allocation.account, tuple.client.ip());
        self.metrics.allocations_closed += 1;
        self.events.push_back(Event::CloseRelay {
            relay: allocation.relay,
        });
        debug!(client = %tuple.client, relay = %allocation.relay, "allocation closed");
    }

    fn release_quota(&mut self, account: &str, ip: IpAddr) {
        if let Some(n) = self.per_account.get_mut(account) {
            *n -= 1;
            if *n == 0 {
                self.per_account.remove(account);
            }
        }
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    fn relay_ip(&self, family: AddressFamily) -> Option<IpAddr> {
        match family {
            AddressFamily::V4 => self.config.relay_ipv4,
            AddressFamily::V6 => self.config.relay_ipv6,
        }
    }

    /// A free port in the range, starting at a random place (RFC 8656 §7.2
    /// asks for unpredictable ports).
    fn pick_relay(&mut self, family: AddressFamily, even: bool) -> Option<SocketAddr> {
        let ip = self.relay_ip(family)?;
        let (lo, hi) = (
            u32::from(*self.config.port_range.start()),
            u32::from(*self.config.port_range.end()),
        );
        let span = hi - lo + 1;
        let start = (self.next_random() % u64::from(span)) as u32;
        for i in 0..span {
            let port = lo + (start + i) % span;
            if even && port % 2 == 1 {
                continue;
            }
            let candidate = SocketAddr::new(ip, port as u16);
            if !self.relays_in_use.contains(&candidate) {
                return Some(candidate);
            }
        }
        None
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic from the seed, good enough to spread ports.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn next_transaction_id(&mut self) -> TransactionId {
        let a = self.next_random().to_be_bytes();
        let b = self.next_random().to_be_bytes();
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&a);
        id[8..].copy_from_slice(&b[..4]);
        TransactionId::new(id)
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn unix_time(&self, now: Instant) -> u64 {
        self.unix_epoch + now.saturating_duration_since(self.epoch).as_secs()
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_else(|| Vec::with_capacity(1500))
    }

    /// Queues `contents` for the client of `tuple`, on its transport.
    fn send_to_client(&mut self, tuple: FiveTuple, contents: Vec<u8>) {
        self.push_transmit(tuple.transport, tuple.listener, tuple.client, contents);
    }

    fn push_transmit(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        contents: Vec<u8>,
    ) {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            self.recycle(contents);
            return;
        }
        self.transmits.push_back(Transmit {
            transport,
            source,
            destination,
            contents,
        });
    }

    fn send_success(
        &mut self,
        tuple: FiveTuple,
        method: Method,
        transaction: TransactionId,
        key: &IntegrityKey,
        reply: &[OwnedAttribute],
    ) {
        let mut out = self.buffer();
        let encoded = (|| -> Result<usize, EncodeError> {
            let mut enc =
                MessageEncoder::new(&mut out, Class::SuccessResponse, method, transaction);
            for attribute in reply {
                match attribute {
                    OwnedAttribute::Lifetime(secs) => enc.add(&Lifetime(*secs))?,
                };
            }
            if let Some(software) = &self.config.software {
                enc.add(&Software(software))?;
            }
            enc.add_message_integrity(key)?;
            enc.add_fingerprint()
        })();
        if encoded.is_ok() {
            self.send_to_client(tuple, out);
        }
    }

    fn send_error(
        &mut self,
        tuple: FiveTuple,
        method: Method,
        transaction: TransactionId,
        error: RequestError,
        key: Option<&IntegrityKey>,
        unknown: &[AttributeType],
    ) {
        self.metrics.count_error(error);
        let nonce = error.asks_for_credentials().then(|| {
            let expiry = self.millis_after(self.config.limits.nonce_lifetime);
            self.nonces.issue(expiry, tuple.client)
        });
        let reason = error.to_string();
        let mut out = self.buffer();
        let encoded = (|| -> Result<usize, EncodeError> {
            let mut enc = MessageEncoder::new(&mut out, Class::ErrorResponse, method, transaction);
            enc.add(&ErrorCode::new(error.code(), &reason))?;
            if !unknown.is_empty() {
                enc.add(&UnknownAttributeList(unknown))?;
            }
            if let Some(nonce) = &nonce {
                enc.add(&Realm(self.config.credentials.realm()))?;
                enc.add(&Nonce(nonce))?;
            }
            if let Some(software) = &self.config.software {
                enc.add(&Software(software))?;
            }
            if let Some(key) = key {
                enc.add_message_integrity(key)?;
            }
            enc.add_fingerprint()
        })();
        if encoded.is_ok() {
            self.send_to_client(tuple, out);
        }
    }

    fn millis_after(&self, after: Duration) -> u64 {
        self.millis(self.last_now) + after.as_millis() as u64
    }

    /// Remembers the latest time seen; the clock never runs backwards here.
    fn observe(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }
}
