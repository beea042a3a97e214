//! The server core: state, inputs, timers and outputs. Requests are in
//! `requests` and `allocate`, relayed data in `data`.

mod allocate;
mod data;
mod requests;
mod tcp;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use realtimer_stun::attributes::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, ChannelNumber, ConnectionId, Data,
    ErrorCode, EvenPort, Lifetime, Nonce, Realm, RequestedAddressFamily, RequestedTransport,
    ReservationToken, Software, UnknownAttributeList, Username, XorMappedAddress, XorPeerAddress,
    XorRelayedAddress,
};
use realtimer_stun::{
    AttributeType, BindingOutcome, BindingServer, Class, DecodeAttribute, EncodeError,
    IntegrityKey, Message, MessageEncoder, Method, TransactionId,
};
use tracing::debug;

use crate::allocation::{Allocation, ChannelBinding, FiveTuple, TokenBucket};
use crate::auth::{Authenticated, NonceError, Nonces};
use crate::auth_throttle::AuthThrottle;
use crate::channel_data::{self, ChannelData};
use crate::config::{ConfigError, ServerConfig};
use crate::error::RequestError;
use crate::metrics::{Gauges, Metrics};
use realtimer_stun::Transport;

/// A message to send (see [`realtimer_net::Transmit`]). Over a stream it
/// is already framed (ChannelData padded); towards peers it is always
/// UDP. The buffer is a `Vec<u8>`: hand it back with [`Server::recycle`]
/// to spare an allocation.
pub type Transmit = realtimer_net::Transmit<Vec<u8>>;

/// What the driver must do besides sending.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Bind a UDP socket on `relay` and report with [`Server::relay_opened`].
    OpenRelay {
        /// The relayed transport address to bind.
        relay: SocketAddr,
    },
    /// The allocation on `relay` is gone: close its socket (or listener).
    CloseRelay {
        /// The relayed transport address to close.
        relay: SocketAddr,
    },
    /// RFC 6062 §5.1: listen for TCP on `relay`, a TCP allocation's
    /// relayed address, and report with [`Server::relay_opened`]. Peers'
    /// connections to it go to [`Server::handle_peer_connection`].
    OpenTcpRelay {
        /// The relayed transport address to listen on.
        relay: SocketAddr,
    },
    /// RFC 6062 §5.2: open a TCP connection from `relay` to `peer` and
    /// report with [`Server::peer_connected`].
    ConnectPeer {
        /// The CONNECTION-ID the core gave it.
        connection: u32,
        /// The relayed address to connect from.
        relay: SocketAddr,
        /// The peer to connect to.
        peer: SocketAddr,
    },
    /// RFC 6062 §5.4: a ConnectionBind succeeded. Once the response
    /// queued before this event is written, the client's connection
    /// from `client` to `listener` carries raw bytes to and from the peer
    /// connection `connection`, and no more TURN messages.
    BindConnection {
        /// The peer connection.
        connection: u32,
        /// The data connection's transport (TCP or TLS).
        transport: Transport,
        /// The server's end of the data connection.
        listener: SocketAddr,
        /// The client's end of the data connection.
        client: SocketAddr,
    },
    /// Close the peer connection `connection`, and its data connection
    /// when one is bound (RFC 6062 §5.2, §5.3, §5.5).
    ClosePeerConnection {
        /// The peer connection.
        connection: u32,
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
    /// A TCP allocation (RFC 6062).
    tcp: bool,
    /// The Allocate had DONT-FRAGMENT (RFC 8656 §7.2).
    dont_fragment: bool,
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
    /// Client addresses failing authentication again and again.
    auth_throttle: AuthThrottle,
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
    /// TCP allocations' peer connections by CONNECTION-ID (RFC 6062).
    peer_connections: HashMap<u32, tcp::PeerConnection>,
    /// Client data connections bound to a peer connection (RFC 6062 §5.4).
    data_connections: HashMap<FiveTuple, u32>,
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
    ConnectionId(u32),
}

impl Server {
    /// A server whose clock starts at `now`, when the wall clock reads
    /// `unix_now` seconds (for REST credential expiry).
    pub fn new(config: ServerConfig, now: Instant, unix_now: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Server {
            nonces: Nonces::new(config.nonce_secret),
            auth_throttle: AuthThrottle::new(config.limits.auth_throttle),
            binding: BindingServer::new(),
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
            peer_connections: HashMap::new(),
            data_connections: HashMap::new(),
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

    /// True when the client asked for the DF bit on what `relay` sends to
    /// peers (DONT-FRAGMENT in its Allocate, RFC 8656 §7.2, §18.9). A
    /// driver asks when it binds the relay ([`Event::OpenRelay`]), and
    /// otherwise lets the datagrams be fragmented (RFC 8656 §14: the DF
    /// bit is set only when the client asked).
    pub fn relay_dont_fragment(&self, relay: SocketAddr) -> bool {
        match self.pending.get(&relay) {
            Some(pending) => pending.dont_fragment,
            None => self
                .by_relay
                .get(&relay)
                .and_then(|tuple| self.allocations.get(tuple))
                .is_some_and(|a| a.dont_fragment),
        }
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
            tcp_connections: self.peer_connections.len(),
            auth_throttle_addresses: self.auth_throttle.tracked(),
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
        self.sweep_peer_connections(now);
        self.next_sweep = (!self.allocations.is_empty()).then(|| now + SWEEP_INTERVAL);
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
        if let Some(connection) = self.data_connections.remove(&tuple) {
            self.close_peer_connection(connection);
        }
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
    /// its `transport` to `listener`, or that stream is a data connection
    /// (RFC 6062 §5.4); a driver keeps such a stream open however idle.
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
        self.allocations.contains_key(&tuple)
            || self.pending_tuples.contains(&tuple)
            || self.data_connections.contains_key(&tuple)
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

    fn remove_allocation(&mut self, tuple: FiveTuple) {
        let Some(allocation) = self.allocations.remove(&tuple) else {
            return;
        };
        self.by_relay.remove(&allocation.relay);
        self.relays_in_use.remove(&allocation.relay);
        self.release_quota(&allocation.account, tuple.client.ip());
        self.metrics.allocations_closed += 1;
        for connection in allocation.connections {
            self.close_peer_connection(connection);
        }
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
            self.metrics.dropped_queue_full += 1;
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

    /// Remembers the latest time seen; the clock never runs backwards here.
    fn observe(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }
}
