//! TURN transactions (RFC 8656 §7–§12): requests signed under long-term
//! credentials (RFC 8489 §9.2), their answers, and the timers that refresh
//! allocations, permissions and channels.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_net::Transmit;
use realtimer_stun::attributes::{
    ChannelNumber, ErrorCode, Lifetime, Nonce, Realm, RequestedTransport, Username,
    XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use realtimer_stun::{
    Class, EncodeError, IntegrityKey, Message, MessageEncoder, Method, OutgoingRequest,
    PasswordAlgorithm, TransactionEvent,
};
use tracing::{debug, trace};

use super::{
    AllocationState, TurnRequest, TurnRequestKind, CHANNEL_REFRESH, KEEPALIVE, MAX_AUTH_ATTEMPTS,
    PERMISSION_REFRESH, REFRESH_MARGIN, RETRY_AFTER,
};
use crate::agent::IceAgent;

impl IceAgent {
    /// Encodes and starts a TURN request; signed once the server told us its
    /// realm and nonce (RFC 8489 §9.2.3).
    pub(super) fn send_turn_request(
        &mut self,
        now: Instant,
        allocation: usize,
        kind: TurnRequestKind,
        auth_attempts: u8,
    ) {
        let tid = self.transaction_id();
        let Some(a) = self.relays.allocations.get(allocation) else {
            return;
        };
        let username = &self.config.turn_servers[a.server_index].username;
        let method = match kind {
            TurnRequestKind::Allocate => Method::ALLOCATE,
            TurnRequestKind::Refresh => Method::REFRESH,
            TurnRequestKind::Permission { .. } => Method::CREATE_PERMISSION,
            TurnRequestKind::ChannelBind { .. } => Method::CHANNEL_BIND,
        };
        let mut buf = Vec::with_capacity(160);
        let mut enc = MessageEncoder::new(&mut buf, Class::Request, method, tid);
        let encoded = (|| -> Result<usize, EncodeError> {
            match kind {
                TurnRequestKind::Allocate => {
                    enc.add(&RequestedTransport::UDP)?;
                }
                TurnRequestKind::Refresh => {}
                TurnRequestKind::Permission { peer } => {
                    enc.add(&XorPeerAddress(SocketAddr::new(peer, 0)))?;
                }
                TurnRequestKind::ChannelBind { peer, channel } => {
                    enc.add(&ChannelNumber(channel))?;
                    enc.add(&XorPeerAddress(peer))?;
                }
            }
            if let (Some(realm), Some(nonce), Some(key)) = (&a.realm, &a.nonce, &a.key) {
                enc.add(&Username(username))?;
                enc.add(&Realm(realm))?;
                enc.add(&Nonce(nonce))?;
                enc.add_message_integrity(key)?;
            }
            enc.add_fingerprint()
        })();
        if encoded.is_err() {
            // Only an over-long username or realm gets here.
            debug!(server = %a.server, "TURN request does not encode");
            self.turn_request_failed(allocation, kind);
            return;
        }
        let request = OutgoingRequest {
            transaction_id: tid,
            // RFC 8489 §6.2.2: over TCP or TLS, sent once.
            transmit: Transmit {
                transport: a.transport,
                source: a.base,
                destination: a.server,
                contents: Bytes::from(buf),
            },
        };
        let context = TurnRequest {
            allocation,
            kind,
            auth_attempts,
        };
        if self
            .relays
            .transactions
            .start(now, request, context)
            .is_err()
        {
            self.turn_request_failed(allocation, kind);
        }
    }

    /// A response from a TURN server (already matched by transaction id).
    pub(crate) fn handle_turn_response(&mut self, now: Instant, message: &Message<'_>) {
        let Some(context) = self
            .relays
            .transactions
            .context(&message.transaction_id())
            .copied()
        else {
            return;
        };
        let Some(a) = self.relays.allocations.get(context.allocation) else {
            return;
        };
        // RFC 8489 §9.2.5: responses to signed requests are signed; a
        // forged success is discarded and the transaction goes on.
        if let (Class::SuccessResponse, Some(key)) = (message.class(), &a.key) {
            if message.verify_integrity(key).is_err() {
                trace!("dropping a TURN response that fails integrity");
                return;
            }
        }
        if self
            .relays
            .transactions
            .handle_response(now, message)
            .is_none()
        {
            return;
        }
        if message.class() == Class::ErrorResponse {
            self.handle_turn_error(now, message, context);
            return;
        }
        let allocation = context.allocation;
        match context.kind {
            TurnRequestKind::Allocate => {
                let relayed = message.get::<XorRelayedAddress>().ok().flatten();
                let mapped = message.get::<XorMappedAddress>().ok().flatten();
                let (Some(XorRelayedAddress(relayed)), Some(XorMappedAddress(mapped))) =
                    (relayed, mapped)
                else {
                    debug!("Allocate success without addresses");
                    self.turn_request_failed(allocation, context.kind);
                    return;
                };
                self.lifetime_granted(now, allocation, message);
                self.relays.allocations[allocation].state =
                    AllocationState::Allocated { relayed, mapped };
                debug!(%relayed, %mapped, "allocation created");
                self.add_relayed_candidate(now, allocation, relayed, mapped);
                self.maybe_finish_gathering();
                self.sync_permissions(now);
            }
            TurnRequestKind::Refresh => self.lifetime_granted(now, allocation, message),
            TurnRequestKind::Permission { peer } => {
                let a = &mut self.relays.allocations[allocation];
                if let Some(p) = a.permissions.iter_mut().find(|p| p.peer == peer) {
                    p.refresh_at = Some(now + PERMISSION_REFRESH);
                }
            }
            TurnRequestKind::ChannelBind { peer, .. } => {
                let a = &mut self.relays.allocations[allocation];
                if let Some(c) = a.channels.iter_mut().find(|c| c.peer == peer) {
                    c.bound = true;
                    c.refresh_at = Some(now + CHANNEL_REFRESH);
                }
            }
        }
    }

    /// RFC 8656 §7.3, §8: the server's LIFETIME sets the next refresh.
    fn lifetime_granted(&mut self, now: Instant, allocation: usize, message: &Message<'_>) {
        let lifetime = message
            .get::<Lifetime>()
            .ok()
            .flatten()
            .map_or(Duration::from_secs(600), |Lifetime(s)| {
                Duration::from_secs(u64::from(s))
            });
        let a = &mut self.relays.allocations[allocation];
        a.expires = Some(now + lifetime);
        a.keepalive_at = Some(now + KEEPALIVE);
        let wait = if lifetime > REFRESH_MARGIN * 2 {
            lifetime - REFRESH_MARGIN
        } else {
            lifetime / 2
        };
        a.refresh_at = Some(now + wait);
    }

    /// RFC 8489 §9.2.5: 401 gives the realm and nonce, 438 a new nonce;
    /// the request is sent again, signed. Other errors end it.
    fn handle_turn_error(&mut self, now: Instant, message: &Message<'_>, context: TurnRequest) {
        let code = message.get::<ErrorCode>().ok().flatten().map(|e| e.code);
        let nonce = message.get::<Nonce>().ok().flatten();
        let realm = message.get::<Realm>().ok().flatten();
        let retry = matches!(
            code,
            Some(ErrorCode::UNAUTHENTICATED | ErrorCode::STALE_NONCE)
        ) && context.auth_attempts < MAX_AUTH_ATTEMPTS
            && nonce.is_some();
        if !retry {
            debug!(?code, kind = ?context.kind, "TURN request refused");
            self.turn_request_failed(context.allocation, context.kind);
            return;
        }
        let a = &mut self.relays.allocations[context.allocation];
        let server = &self.config.turn_servers[a.server_index];
        if let Some(Realm(realm)) = realm {
            if a.realm.as_deref() != Some(realm) {
                match IntegrityKey::long_term(
                    &server.username,
                    realm,
                    &server.password,
                    PasswordAlgorithm::Md5,
                ) {
                    Ok(key) => {
                        a.key = Some(key);
                        a.realm = Some(realm.to_owned());
                    }
                    Err(_) => {
                        self.turn_request_failed(context.allocation, context.kind);
                        return;
                    }
                }
            }
        }
        if a.realm.is_none() {
            self.turn_request_failed(context.allocation, context.kind);
            return;
        }
        a.nonce = nonce.map(|Nonce(n)| n.to_owned());
        self.send_turn_request(
            now,
            context.allocation,
            context.kind,
            context.auth_attempts + 1,
        );
    }

    /// A request failed for good (refused, timed out, or not encodable).
    fn turn_request_failed(&mut self, allocation: usize, kind: TurnRequestKind) {
        let Some(a) = self.relays.allocations.get_mut(allocation) else {
            return;
        };
        match kind {
            TurnRequestKind::Allocate => {
                a.state = AllocationState::Failed;
                debug!(server = %a.server, base = %a.base, "allocation failed");
                self.maybe_finish_gathering();
            }
            TurnRequestKind::Refresh => {
                // RFC 8656 §8: a refused refresh (437, 403...) means the
                // allocation is gone.
                debug!(server = %a.server, "refresh refused: allocation gone");
                a.state = AllocationState::Failed;
            }
            TurnRequestKind::Permission { peer } => {
                // The server refused this peer (403: its policy). The entry
                // stays, never refreshed, so the peer is not asked for
                // again on every tick; its pairs fail their checks.
                debug!(%peer, "permission refused");
            }
            TurnRequestKind::ChannelBind { peer, .. } => {
                a.channels.retain(|c| c.peer != peer);
            }
        }
    }

    /// Retransmissions, timeouts and due refreshes of allocations,
    /// permissions and channels.
    pub(crate) fn relay_timers(&mut self, now: Instant) {
        self.relays.transactions.handle_timeout(now);
        while let Some(TransactionEvent::TimedOut { context, .. }) =
            self.relays.transactions.poll_event()
        {
            debug!(kind = ?context.kind, "TURN request timed out");
            match context.kind {
                TurnRequestKind::Refresh | TurnRequestKind::Permission { .. } => {
                    let a = &mut self.relays.allocations[context.allocation];
                    // Try again a little later, unless it is gone by then.
                    let again = now + RETRY_AFTER;
                    match context.kind {
                        TurnRequestKind::Permission { peer } => {
                            if let Some(p) = a.permissions.iter_mut().find(|p| p.peer == peer) {
                                p.refresh_at = Some(again);
                            }
                        }
                        _ => a.refresh_at = Some(again),
                    }
                }
                kind => self.turn_request_failed(context.allocation, kind),
            }
        }
        let mut due = Vec::new();
        let mut keepalives = Vec::new();
        for (i, a) in self.relays.allocations.iter_mut().enumerate() {
            if !matches!(a.state, AllocationState::Allocated { .. }) {
                continue;
            }
            if a.expires.is_some_and(|e| now >= e) {
                debug!(server = %a.server, "allocation expired");
                a.state = AllocationState::Failed;
                continue;
            }
            if a.keepalive_at.is_some_and(|t| now >= t) {
                a.keepalive_at = Some(now + KEEPALIVE);
                keepalives.push((a.transport, a.base, a.server));
            }
            if a.refresh_at.is_some_and(|t| now >= t) {
                a.refresh_at = None;
                due.push((i, TurnRequestKind::Refresh));
            }
            for p in &mut a.permissions {
                if p.refresh_at.is_some_and(|t| now >= t) {
                    p.refresh_at = None;
                    due.push((i, TurnRequestKind::Permission { peer: p.peer }));
                }
            }
            for c in &mut a.channels {
                if c.refresh_at.is_some_and(|t| now >= t) {
                    c.refresh_at = None;
                    due.push((
                        i,
                        TurnRequestKind::ChannelBind {
                            peer: c.peer,
                            channel: c.number,
                        },
                    ));
                }
            }
        }
        for (allocation, kind) in due {
            self.send_turn_request(now, allocation, kind, 0);
        }
        for (transport, base, server) in keepalives {
            let tid = self.transaction_id();
            let mut buf = Vec::with_capacity(28);
            let enc = MessageEncoder::new(&mut buf, Class::Indication, Method::BINDING, tid);
            if enc.add_fingerprint().is_ok() {
                self.transmits.push_back(Transmit {
                    transport,
                    source: base,
                    destination: server,
                    contents: Bytes::from(buf),
                });
            }
        }
    }
}
