//! Requests under long-term credentials (RFC 8489 §9.2): dispatch, authentication,
//! CreatePermission (RFC 8656 §9), ChannelBind (§12.2), and the responses.

use super::*;

impl Server {
    /// Allocate, Refresh, CreatePermission, ChannelBind.
    pub(super) fn request(&mut self, now: Instant, tuple: FiveTuple, message: &Message<'_>) {
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
            Method::ALLOCATE
                | Method::REFRESH
                | Method::CREATE_PERMISSION
                | Method::CHANNEL_BIND
                | Method::CONNECT
                | Method::CONNECTION_BIND
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
        let nonce_owner = match method {
            Method::CONNECTION_BIND => self.control_client_of(tuple, message),
            _ => None,
        };
        if message.has_integrity() && !self.auth_throttle.allows(now, tuple.client.ip()) {
            debug!(client = %tuple.client, ?method, "refused unchecked: too many failed authentications");
            let error = RequestError::Throttled;
            self.send_error(tuple, method, transaction, error, None, &[]);
            return;
        }
        let auth = match self.authenticate(now, tuple.client, nonce_owner, message) {
            Ok(auth) => auth,
            Err(error) => {
                if error.is_credential_failure() {
                    self.auth_throttle.failed(now, tuple.client.ip());
                }
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
            Method::CONNECT => match self.connect(now, tuple, message, &auth) {
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Method::CONNECTION_BIND => match self.connection_bind(tuple, message, &auth) {
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

    /// RFC 8489 §9.2.4, in its order. The nonce must be one issued to
    /// `client`, or to `also` when given.
    pub(super) fn authenticate(
        &self,
        now: Instant,
        client: SocketAddr,
        also: Option<SocketAddr>,
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
        let now_ms = self.millis(now);
        let fresh = |owner| self.nonces.check(nonce, owner, now_ms);
        match fresh(client).or_else(|e| also.map_or(Err(e), fresh)) {
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

    /// The caller's live allocation, checked against the request's user.
    pub(super) fn owned_allocation(
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

    /// RFC 8656 §9.2.
    pub(super) fn create_permission(
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
    pub(super) fn channel_bind(
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
        if allocation.tcp {
            // RFC 6062 §5: a TCP allocation relays no datagrams.
            return Err(RequestError::BadRequest);
        }
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

    pub(super) fn send_success(
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
                    OwnedAttribute::ConnectionId(id) => enc.add(&ConnectionId(*id))?,
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

    pub(super) fn send_error(
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
            // An answer to an unauthenticated request (a 401 anyone can ask
            // for from a forged source) carries nothing it does not need: no
            // SOFTWARE, and the short nonce of `Nonces::issue`.
            if let Some(key) = key {
                if let Some(software) = &self.config.software {
                    enc.add(&Software(software))?;
                }
                enc.add_message_integrity(key)?;
            }
            enc.add_fingerprint()
        })();
        if encoded.is_ok() {
            self.send_to_client(tuple, out);
        }
    }

    pub(super) fn millis_after(&self, after: Duration) -> u64 {
        self.millis(self.last_now) + after.as_millis() as u64
    }
}
