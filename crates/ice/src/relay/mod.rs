//! The TURN client (RFC 8656) behind relayed candidates (RFC 8445
//! §5.1.1.2): allocations under long-term credentials, their refreshes,
//! permissions for the peer's addresses, a channel for the selected pair,
//! and the wrapping of what relayed candidates send and receive.
//!
//! A relayed candidate's base is its relayed address (RFC 8445 §5.1.1.2):
//! checks, responses and application data are produced "from" it like from
//! any base, and [`IceAgent::poll_transmit`] turns them into Send
//! indications or ChannelData to the server, sent from the host socket the
//! allocation was made on.
//!
//! Over TCP or TLS (RFC 8656 §3.1) the allocation lives on a connection the
//! driver opens when asked; what goes to such a server comes out of
//! [`IceAgent::poll_turn_stream`] instead of [`IceAgent::poll_transmit`],
//! ChannelData padded to a multiple of four (§12.5).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_net::{Transmit, Transport};
use realtimer_stun::attributes::{
    Data, ErrorCode, Lifetime, Nonce, Realm, Username, XorPeerAddress,
};
use realtimer_stun::channel_data::{self, ChannelData};
use realtimer_stun::{
    Class, ClientTransactions, IntegrityKey, Message, MessageEncoder, Method, RetransmitConfig,
    TransactionId,
};
use tracing::{debug, trace};

use crate::agent::IceAgent;
use crate::candidate::{candidate_priority, local_preference, Candidate, CandidateKind};
use crate::config::TurnServer;
use crate::event::IceEvent;

mod data;
mod stream;
mod transactions;

pub use data::ReceivedData;
pub use stream::TurnStreamTransmit;

/// RFC 8656 §8: refresh an allocation this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// RFC 8656 §9: permissions last 5 minutes; refresh them every 4.
const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// RFC 8445 §11 (Tr, 15 s): an allocation's 5-tuple carries something at
/// least this often, so a NAT on the way keeps its binding even while the
/// relayed candidate is idle (the refreshes alone come every 9 minutes).
const KEEPALIVE: Duration = Duration::from_secs(15);
/// RFC 8656 §12: channels last 10 minutes; refresh them well before.
const CHANNEL_REFRESH: Duration = Duration::from_secs(300);
/// A refresh that timed out is tried again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// 401 and 438 answers followed in a row before a request gives up.
const MAX_AUTH_ATTEMPTS: u8 = 3;
/// Channels per allocation: one for the selected pair, plus a few left
/// from earlier selections.
const MAX_CHANNELS: usize = 8;
/// RFC 8656 §12: channel numbers 0x4000 through 0x4FFF.
const FIRST_CHANNEL: u16 = 0x4000;
const LAST_CHANNEL: u16 = 0x4FFF;

/// What a TURN transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TurnRequestKind {
    Allocate,
    Refresh,
    Permission { peer: IpAddr },
    ChannelBind { peer: SocketAddr, channel: u16 },
}

/// A TURN transaction's context: the allocation (by index) and how many
/// authentication challenges led to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TurnRequest {
    allocation: usize,
    kind: TurnRequestKind,
    auth_attempts: u8,
}

/// RFC 8656 §6: where an allocation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllocationState {
    /// Over TCP or TLS: waiting for the driver's connection.
    Connecting,
    /// Allocate sent, no final answer yet.
    Requesting,
    /// The server relays for us on `relayed`.
    Allocated {
        relayed: SocketAddr,
        mapped: SocketAddr,
    },
    /// Refused, timed out or expired.
    Failed,
}

/// A permission for one peer IP (RFC 8656 §9).
#[derive(Debug, Clone)]
struct Permission {
    peer: IpAddr,
    /// When to refresh; `None` while a request is in flight, and for good
    /// once the server refused the peer.
    refresh_at: Option<Instant>,
}

/// A channel bound to one peer (RFC 8656 §12).
#[derive(Debug, Clone)]
struct Channel {
    peer: SocketAddr,
    number: u16,
    bound: bool,
    refresh_at: Option<Instant>,
}

/// One allocation on one server from one base.
#[derive(Debug, Clone)]
pub(crate) struct Allocation {
    /// Index in `IceConfig::turn_servers`.
    server_index: usize,
    server: SocketAddr,
    /// The host socket it is reached from; over TCP or TLS, the
    /// connection's local address.
    base: SocketAddr,
    transport: Transport,
    pub(crate) state: AllocationState,
    realm: Option<String>,
    nonce: Option<String>,
    key: Option<IntegrityKey>,
    expires: Option<Instant>,
    /// When to refresh; `None` while a refresh is in flight or before success.
    refresh_at: Option<Instant>,
    /// When to send the next keepalive (a Binding indication, RFC 8489 §3)
    /// on the allocation's 5-tuple; `None` before success.
    keepalive_at: Option<Instant>,
    permissions: Vec<Permission>,
    channels: Vec<Channel>,
}

/// Every allocation of an agent and their transactions.
#[derive(Debug)]
pub(crate) struct Relays {
    pub(crate) allocations: Vec<Allocation>,
    pub(crate) transactions: ClientTransactions<TurnRequest>,
    /// What goes to servers reached over TCP or TLS.
    stream_out: VecDeque<TurnStreamTransmit>,
    /// Releases sent at close, by transaction id: (id, allocation).
    releases: Vec<(TransactionId, usize)>,
    /// TURN servers that replace the current ones at the next restart
    /// ([`IceAgent::set_turn_servers`]).
    replacement: Option<Vec<TurnServer>>,
    /// `IceConfig::turn_servers` before this index were replaced: never
    /// allocated on again (they stay in the list so every allocation's
    /// `server_index` keeps naming its server).
    first_server: usize,
}

impl Relays {
    pub(crate) fn new() -> Self {
        Relays {
            allocations: Vec::new(),
            transactions: ClientTransactions::new(RetransmitConfig {
                max_pending: 256,
                ..RetransmitConfig::default()
            }),
            stream_out: VecDeque::new(),
            releases: Vec::new(),
            replacement: None,
            first_server: 0,
        }
    }

    /// True while an Allocate has no final answer (gathering goes on).
    pub(crate) fn any_requesting(&self) -> bool {
        self.allocations.iter().any(|a| {
            matches!(
                a.state,
                AllocationState::Requesting | AllocationState::Connecting
            )
        })
    }

    /// The live allocation whose relayed address is `relayed`.
    fn by_relayed(&self, relayed: SocketAddr) -> Option<usize> {
        self.allocations.iter().position(
            |a| matches!(a.state, AllocationState::Allocated { relayed: r, .. } if r == relayed),
        )
    }

    /// The allocation a datagram from `server` to `destination` belongs
    /// to: the one made from that base, or else the one live allocation on
    /// that server of the same family. A driver with one wildcard socket
    /// for all its bases cannot choose the source address: the server sees
    /// one 5-tuple, grants one allocation (the others get 437, RFC 8656
    /// §7.2) and its answers arrive on whichever address the kernel chose.
    fn receiving_allocation(
        &self,
        server: SocketAddr,
        destination: SocketAddr,
    ) -> Option<&Allocation> {
        let on_server = || self.allocations.iter().filter(move |a| a.server == server);
        if let Some(a) = on_server().find(|a| a.base == destination) {
            return Some(a);
        }
        let mut live = on_server().filter(|a| {
            a.base.is_ipv4() == destination.is_ipv4()
                && matches!(a.state, AllocationState::Allocated { .. })
        });
        let only = live.next()?;
        live.next().is_none().then_some(only)
    }

    /// The soonest refresh or retransmission.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let mut times = vec![self.transactions.poll_timeout()];
        for a in &self.allocations {
            if !matches!(a.state, AllocationState::Allocated { .. }) {
                continue;
            }
            times.push(a.refresh_at);
            times.push(a.keepalive_at);
            times.extend(a.permissions.iter().map(|p| p.refresh_at));
            times.extend(a.channels.iter().map(|c| c.refresh_at));
        }
        times.into_iter().flatten().min()
    }

    /// Unwraps a Data indication or ChannelData that a server we have an
    /// allocation on sent to its base: (peer, relayed address, payload).
    pub(crate) fn unwrap<'a>(
        &self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &'a [u8],
    ) -> Option<(SocketAddr, SocketAddr, &'a [u8])> {
        let allocation = self.receiving_allocation(source, destination)?;
        let AllocationState::Allocated { relayed, .. } = allocation.state else {
            return None;
        };
        if channel_data::is_channel_data(contents) {
            // RFC 8656 §12.4: channel number, length, data (padding over UDP
            // is optional and ignored).
            let message = ChannelData::decode(contents).ok()?;
            let channel = allocation
                .channels
                .iter()
                .find(|c| c.number == message.channel && c.bound)?;
            return Some((channel.peer, relayed, message.data));
        }
        let message = Message::decode(contents).ok()?;
        if message.class() != Class::Indication || message.method() != Method::DATA {
            return None;
        }
        let XorPeerAddress(peer) = message.get::<XorPeerAddress>().ok()??;
        let Data(data) = message.get::<Data>().ok()??;
        Some((peer, relayed, data))
    }
}

impl IceAgent {
    /// Starts an allocation on every TURN server of `base`'s family, or, after
    /// a restart, signals again the relayed candidates of the live ones and
    /// tries the failed ones again (the server may be back).
    pub(crate) fn gather_relays(&mut self, now: Instant, base: SocketAddr) {
        for server_index in self.relays.first_server..self.config.turn_servers.len() {
            let server = self.config.turn_servers[server_index].address;
            let transport = self.config.turn_servers[server_index].transport;
            if server.is_ipv4() != base.is_ipv4() {
                continue;
            }
            // Over TCP or TLS, one connection and allocation per server
            // whatever the bases: the kernel picks the source address.
            if let Some(i) = self.relays.allocations.iter().position(|a| {
                a.server_index == server_index && (a.base == base || transport.is_stream())
            }) {
                match self.relays.allocations[i].state {
                    AllocationState::Allocated { relayed, mapped } => {
                        self.add_relayed_candidate(now, i, relayed, mapped);
                    }
                    AllocationState::Failed => self.allocate_again(now, i),
                    AllocationState::Requesting | AllocationState::Connecting => {}
                }
                continue;
            }
            let state = if transport.is_stream() {
                AllocationState::Connecting
            } else {
                AllocationState::Requesting
            };
            self.relays.allocations.push(Allocation {
                server_index,
                server,
                base,
                transport,
                state,
                realm: None,
                nonce: None,
                key: None,
                expires: None,
                refresh_at: None,
                keepalive_at: None,
                permissions: Vec::new(),
                channels: Vec::new(),
            });
            let allocation = self.relays.allocations.len() - 1;
            if transport.is_stream() {
                debug!(%server, ?transport, "asking for a connection to a TURN server");
                self.events.push_back(IceEvent::OpenTurnConnection {
                    server: server_index,
                    address: server,
                    transport,
                });
                continue;
            }
            debug!(%server, %base, "allocating a relayed address");
            self.send_turn_request(now, allocation, TurnRequestKind::Allocate, 0);
        }
    }

    /// setConfiguration's TURN servers (W3C webrtc-pc §4.4.1.6): the
    /// next restart ([`IceAgent::restart`], local or remote) allocates on
    /// `servers` instead of the current ones. How an application moves off
    /// a TURN server it lost, or that is going away: set the new ones,
    /// then restart ICE. Until that restart nothing changes. Returns the
    /// index in [`crate::IceConfig::turn_servers`] the first of them will
    /// have ([`IceEvent::OpenTurnConnection`] names servers by it).
    pub fn set_turn_servers(&mut self, servers: Vec<TurnServer>) -> usize {
        self.relays.replacement = Some(servers);
        self.config.turn_servers.len()
    }

    /// At a restart, before gathering: a replacement set by
    /// [`IceAgent::set_turn_servers`] takes over. Every allocation on the
    /// old servers is released (RFC 8656 §7.2, as at close) and failed for
    /// good, so its relayed candidate carries nothing more: the restart's
    /// checks find pairs on the new servers' allocations.
    pub(crate) fn replace_turn_servers(&mut self) {
        let Some(servers) = self.relays.replacement.take() else {
            return;
        };
        self.release_allocations();
        self.relays.first_server = self.config.turn_servers.len();
        debug!(
            replaced = self.relays.first_server,
            new = servers.len(),
            "TURN servers replaced at the restart"
        );
        self.config.turn_servers.extend(servers);
    }

    /// Starts a failed allocation over: a new connection for TCP or TLS,
    /// a new Allocate (under the credentials learned before) for UDP.
    fn allocate_again(&mut self, now: Instant, allocation: usize) {
        self.relays
            .transactions
            .cancel_where(|c| c.allocation == allocation);
        let a = &mut self.relays.allocations[allocation];
        a.permissions.clear();
        a.channels.clear();
        a.expires = None;
        a.refresh_at = None;
        a.keepalive_at = None;
        debug!(server = %a.server, "allocating again");
        if a.transport.is_stream() {
            a.state = AllocationState::Connecting;
            self.events.push_back(IceEvent::OpenTurnConnection {
                server: a.server_index,
                address: a.server,
                transport: a.transport,
            });
        } else {
            a.state = AllocationState::Requesting;
            self.send_turn_request(now, allocation, TurnRequestKind::Allocate, 0);
        }
    }

    /// A relayed local candidate for a new allocation (RFC 8445 §5.1.1.2:
    /// related address = the server-reflexive one the server saw).
    fn add_relayed_candidate(
        &mut self,
        _now: Instant,
        allocation: usize,
        relayed: SocketAddr,
        mapped: SocketAddr,
    ) {
        let a = &self.relays.allocations[allocation];
        let (base, server, transport) = (a.base, a.server, a.transport);
        let index = self.bases.iter().position(|b| *b == base).unwrap_or(0);
        // RFC 8445 §5.1.2.1: UDP relays before TCP before TLS.
        let preference = local_preference(&relayed, index)
            .saturating_sub(crate::config::preference_penalty(transport));
        let candidate = Candidate {
            kind: CandidateKind::Relayed,
            address: relayed,
            priority: candidate_priority(CandidateKind::Relayed, preference, 1),
            foundation: self.foundation_via(
                CandidateKind::Relayed,
                base.ip(),
                Some(server.ip()),
                transport,
            ),
            component: 1,
            related_address: Some(mapped),
            mdns_name: None,
            relay_protocol: Some(transport),
        };
        self.add_local_candidate(candidate, relayed, true);
    }

    /// RFC 8656 §9: a permission for the IP of every remote candidate paired
    /// with a relayed one.
    pub(crate) fn sync_permissions(&mut self, now: Instant) {
        if self.relays.allocations.is_empty() {
            return;
        }
        let mut wanted = Vec::new();
        for p in &self.pairs {
            let base = self.local[p.local].base;
            if let Some(allocation) = self.relays.by_relayed(base) {
                wanted.push((allocation, self.remote[p.remote].address.ip()));
            }
        }
        for (allocation, peer) in wanted {
            let a = &mut self.relays.allocations[allocation];
            if a.permissions.iter().any(|p| p.peer == peer)
                || a.permissions.len() >= self.config.max_remote_candidates
            {
                continue;
            }
            a.permissions.push(Permission {
                peer,
                refresh_at: None,
            });
            trace!(%peer, "creating a permission");
            self.send_turn_request(now, allocation, TurnRequestKind::Permission { peer }, 0);
        }
    }

    /// RFC 8656 §12: a channel for the selected pair, when it is relayed,
    /// so its data travels with 4 bytes of overhead instead of 36.
    pub(crate) fn bind_selected_channel(&mut self, now: Instant) {
        let Some(selected) = &self.selected else {
            return;
        };
        let peer = selected.remote.address;
        let Some(allocation) = self.relays.by_relayed(selected.local_base) else {
            return;
        };
        let a = &mut self.relays.allocations[allocation];
        if a.channels.iter().any(|c| c.peer == peer) || a.channels.len() >= MAX_CHANNELS {
            return;
        }
        let used: Vec<u16> = a.channels.iter().map(|c| c.number).collect();
        let Some(channel) = (FIRST_CHANNEL..=LAST_CHANNEL).find(|n| !used.contains(n)) else {
            return;
        };
        a.channels.push(Channel {
            peer,
            number: channel,
            bound: false,
            refresh_at: None,
        });
        debug!(%peer, channel, "binding a channel");
        self.send_turn_request(
            now,
            allocation,
            TurnRequestKind::ChannelBind { peer, channel },
            0,
        );
    }

    /// Wraps what a relayed candidate sends (RFC 8656 §11.1, §12.4): a
    /// transmit from any other source passes unchanged. `None` when the
    /// relay is gone.
    pub(crate) fn wrap_relayed(&mut self, transmit: Transmit) -> Option<Transmit> {
        let Some(allocation) = self.relays.by_relayed(transmit.source) else {
            // A relayed candidate whose allocation failed or expired has no
            // socket to send from.
            let dead_relay = self
                .local
                .iter()
                .any(|l| l.base == transmit.source && l.candidate.kind == CandidateKind::Relayed);
            return (!dead_relay).then_some(transmit);
        };
        let a = &self.relays.allocations[allocation];
        let (base, server, transport) = (a.base, a.server, a.transport);
        let channel = a
            .channels
            .iter()
            .find(|c| c.bound && c.peer == transmit.destination)
            .map(|c| c.number);
        let contents = match channel {
            Some(number) => {
                let mut out =
                    Vec::with_capacity(channel_data::HEADER_LEN + transmit.contents.len() + 3);
                // RFC 8656 §12.5: padded to a multiple of 4 over TCP.
                ChannelData::encode(number, &transmit.contents, transport.is_stream(), &mut out)
                    .then_some(out)?
            }
            None => {
                let tid = self.transaction_id();
                let mut out = Vec::with_capacity(transmit.contents.len() + 40);
                let mut enc = MessageEncoder::new(&mut out, Class::Indication, Method::SEND, tid);
                enc.add(&XorPeerAddress(transmit.destination))
                    .and_then(|e| e.add(&Data(&transmit.contents)))
                    .ok()?;
                out
            }
        };
        Some(Transmit {
            transport,
            source: base,
            destination: server,
            contents: Bytes::from(contents),
        })
    }

    /// RFC 8656 §7.2: Refresh with LIFETIME 0 deletes each allocation when
    /// the agent closes (sent once, not retransmitted; answered 438, once
    /// more with the new nonce, see [`IceAgent::release_again`]).
    pub(crate) fn release_allocations(&mut self) {
        self.relays.transactions.cancel_where(|_| true);
        for i in 0..self.relays.allocations.len() {
            if matches!(
                self.relays.allocations[i].state,
                AllocationState::Allocated { .. }
            ) {
                if let Some(tid) = self.push_release(i) {
                    self.relays.releases.push((tid, i));
                }
            }
            self.relays.allocations[i].state = AllocationState::Failed;
        }
    }

    /// Queues a signed Refresh with LIFETIME 0 for allocation `i`.
    fn push_release(&mut self, i: usize) -> Option<TransactionId> {
        let tid = self.transaction_id();
        let a = &self.relays.allocations[i];
        let (Some(realm), Some(nonce), Some(key)) = (&a.realm, &a.nonce, &a.key) else {
            return None;
        };
        let username = &self.config.turn_servers[a.server_index].username;
        let mut buf = Vec::with_capacity(128);
        let mut enc = MessageEncoder::new(&mut buf, Class::Request, Method::REFRESH, tid);
        enc.add(&Lifetime(0))
            .and_then(|e| e.add(&Username(username)))
            .and_then(|e| e.add(&Realm(realm)))
            .and_then(|e| e.add(&Nonce(nonce)))
            .and_then(|e| e.add_message_integrity(key))
            .ok()?;
        enc.add_fingerprint().ok()?;
        self.transmits.push_back(Transmit {
            transport: a.transport,
            source: a.base,
            destination: a.server,
            contents: Bytes::from(buf),
        });
        Some(tid)
    }

    /// An answer reaching the closed agent: a release refused for a stale
    /// nonce (438, RFC 8489 §9.2.5) goes out once more with the new one, so
    /// the server frees the allocation now rather than at its expiry.
    pub(crate) fn release_again(&mut self, message: &Message<'_>) {
        if message.class() != Class::ErrorResponse {
            return;
        }
        let tid = message.transaction_id();
        let Some(pos) = self.relays.releases.iter().position(|(t, _)| *t == tid) else {
            return;
        };
        let (_, i) = self.relays.releases.swap_remove(pos);
        let stale = message
            .get::<ErrorCode>()
            .ok()
            .flatten()
            .is_some_and(|e| e.code == ErrorCode::STALE_NONCE);
        let Ok(Some(Nonce(nonce))) = message.get::<Nonce>() else {
            return;
        };
        if stale {
            self.relays.allocations[i].nonce = Some(nonce.to_owned());
            let _ = self.push_release(i);
        }
    }
}
