//! TCP allocations (RFC 6062): Connect, ConnectionAttempt and
//! ConnectionBind, and the life of each peer connection. The driver makes,
//! accepts and pipes the TCP connections; the core decides which may
//! exist, for how long, and which client data connection each is bound to.

use super::*;

/// Where a peer connection stands.
#[derive(Debug)]
pub(super) enum PeerState {
    /// A Connect waits for the driver's TCP connection to the peer
    /// (RFC 6062 §5.2); the client gets 447 at `deadline`.
    Connecting {
        transaction: TransactionId,
        key: IntegrityKey,
        deadline: Instant,
    },
    /// Up, waiting for the client's ConnectionBind until `deadline`
    /// (RFC 6062 §5.2, §5.3: 30 s), then closed.
    AwaitingBind { deadline: Instant },
    /// Bound to the client's data connection `data` (RFC 6062 §5.4).
    Bound { data: FiveTuple },
}

/// One TCP connection between a TCP allocation's relayed address and a
/// peer (RFC 6062 §2).
#[derive(Debug)]
pub(super) struct PeerConnection {
    /// The allocation's control connection.
    control: FiveTuple,
    peer: SocketAddr,
    state: PeerState,
}

impl Server {
    /// Reports the outcome of an [`Event::ConnectPeer`]: on success the
    /// client gets the CONNECTION-ID and 30 s to bind it, on failure 447
    /// (RFC 6062 §5.2).
    pub fn peer_connected(&mut self, now: Instant, connection: u32, connected: bool) {
        self.observe(now);
        let bind_timeout = self.config.limits.connection_bind_timeout;
        let Some(c) = self.peer_connections.get_mut(&connection) else {
            // Given up on meanwhile (timeout, allocation gone): close it.
            if connected {
                self.events
                    .push_back(Event::ClosePeerConnection { connection });
            }
            return;
        };
        if !matches!(c.state, PeerState::Connecting { .. }) {
            return;
        }
        if !connected {
            self.fail_connect(connection);
            return;
        }
        let control = c.control;
        let state = std::mem::replace(
            &mut c.state,
            PeerState::AwaitingBind {
                deadline: now + bind_timeout,
            },
        );
        if let PeerState::Connecting {
            transaction, key, ..
        } = state
        {
            self.metrics.tcp_connections_opened += 1;
            debug!(client = %control.client, connection, "peer connection up");
            self.send_success(
                control,
                Method::CONNECT,
                transaction,
                &key,
                &[OwnedAttribute::ConnectionId(connection)],
            );
        }
    }

    /// A peer opened a TCP connection to the relayed address `relay`
    /// (RFC 6062 §5.3). The CONNECTION-ID to report it under when it is
    /// accepted (the client is sent a ConnectionAttempt and has 30 s to
    /// bind it); `None` when the driver must close it: no TCP allocation
    /// there, no permission for the peer, or the allocation's limit.
    #[must_use = "a refused connection must be closed"]
    pub fn handle_peer_connection(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
    ) -> Option<u32> {
        self.observe(now);
        let tuple = *self.by_relay.get(&relay)?;
        let allowed = self.config.peer_policy.allows(peer.ip());
        let limit = self.config.limits.tcp_connections_per_allocation;
        let accepted = self.allocations.get(&tuple).is_some_and(|a| {
            a.tcp
                && a.is_live(now)
                && allowed
                && a.permits(peer.ip(), now)
                && a.connections.len() < limit
        });
        if !accepted {
            debug!(%relay, %peer, "peer connection refused");
            self.metrics.tcp_connections_failed += 1;
            return None;
        }
        let deadline = now + self.config.limits.connection_bind_timeout;
        let connection =
            self.add_peer_connection(tuple, peer, PeerState::AwaitingBind { deadline });
        self.metrics.tcp_connections_opened += 1;
        let transaction = self.next_transaction_id();
        let mut out = self.buffer();
        let encoded = (|| -> Result<usize, EncodeError> {
            let mut enc = MessageEncoder::new(
                &mut out,
                Class::Indication,
                Method::CONNECTION_ATTEMPT,
                transaction,
            );
            enc.add(&XorPeerAddress(peer))?;
            enc.add(&ConnectionId(connection))?;
            Ok(enc.finish())
        })();
        if encoded.is_ok() {
            self.send_to_client(tuple, out);
        }
        Some(connection)
    }

    /// RFC 6062 §5.2. The answer waits for [`Server::peer_connected`].
    /// Connect installs a permission for the peer, as ChannelBind does, so
    /// the peer may also connect back.
    pub(super) fn connect(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<(), RequestError> {
        let Ok(Some(XorPeerAddress(peer))) = message.get::<XorPeerAddress>() else {
            return Err(RequestError::BadRequest);
        };
        let allowed = self.config.peer_policy.allows(peer.ip());
        // Only this allocation's connections (at most the per-allocation
        // limit), not every connection of the server.
        let exists = self.allocations.get(&tuple).is_some_and(|a| {
            a.connections.iter().any(|id| {
                self.peer_connections
                    .get(id)
                    .is_some_and(|c| c.peer == peer)
            })
        });
        let limits = &self.config.limits;
        let (connection_limit, permission_limit) = (
            limits.tcp_connections_per_allocation,
            limits.permissions_per_allocation,
        );
        let (permission_lifetime, connect_timeout) =
            (limits.permission_lifetime, limits.peer_connect_timeout);
        let allocation = self.owned_allocation(now, tuple, auth)?;
        if !allocation.tcp {
            return Err(RequestError::BadRequest);
        }
        if peer.is_ipv4() != allocation.relay.is_ipv4() {
            return Err(RequestError::PeerAddressFamilyMismatch);
        }
        if !allowed {
            return Err(RequestError::ForbiddenPeer);
        }
        if exists {
            return Err(RequestError::ConnectionExists);
        }
        if !allocation.permissions.contains_key(&peer.ip())
            && allocation.permissions.len() >= permission_limit
        {
            return Err(RequestError::PermissionLimit);
        }
        if allocation.connections.len() >= connection_limit {
            return Err(RequestError::ConnectionLimit);
        }
        let relay = allocation.relay;
        allocation
            .permissions
            .insert(peer.ip(), now + permission_lifetime);
        let state = PeerState::Connecting {
            transaction: message.transaction_id(),
            key: auth.key.clone(),
            deadline: now + connect_timeout,
        };
        let connection = self.add_peer_connection(tuple, peer, state);
        self.events.push_back(Event::ConnectPeer {
            connection,
            relay,
            peer,
        });
        Ok(())
    }

    /// RFC 6062 §5.4: binds the peer connection named by CONNECTION-ID to
    /// this new client connection, which from the success response on
    /// carries the peer's bytes. Answers itself, so the response is queued
    /// before [`Event::BindConnection`].
    pub(super) fn connection_bind(
        &mut self,
        tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<(), RequestError> {
        if !tuple.transport.is_stream()
            || self.allocations.contains_key(&tuple)
            || self.pending_tuples.contains(&tuple)
            || self.data_connections.contains_key(&tuple)
        {
            return Err(RequestError::BadConnection);
        }
        let Ok(Some(ConnectionId(connection))) = message.get::<ConnectionId>() else {
            return Err(RequestError::BadRequest);
        };
        let c = self
            .peer_connections
            .get_mut(&connection)
            .filter(|c| matches!(c.state, PeerState::AwaitingBind { .. }))
            .ok_or(RequestError::BadConnection)?;
        let owner = self
            .allocations
            .get(&c.control)
            .ok_or(RequestError::BadConnection)?;
        if owner.username != auth.username {
            return Err(RequestError::WrongCredentials);
        }
        c.state = PeerState::Bound { data: tuple };
        self.data_connections.insert(tuple, connection);
        self.metrics.tcp_connections_bound += 1;
        debug!(client = %tuple.client, connection, "data connection bound");
        self.send_success(
            tuple,
            Method::CONNECTION_BIND,
            message.transaction_id(),
            &auth.key,
            &[],
        );
        self.events.push_back(Event::BindConnection {
            connection,
            transport: tuple.transport,
            listener: tuple.listener,
            client: tuple.client,
        });
        Ok(())
    }

    /// The client address whose nonce a ConnectionBind may also carry: the
    /// control connection of the peer connection it names, when on the
    /// same host. A client opens the data connection from a new port and
    /// signs with the nonce it has (RFC 6062 §4.4).
    pub(super) fn control_client_of(
        &self,
        tuple: FiveTuple,
        message: &Message<'_>,
    ) -> Option<SocketAddr> {
        let Ok(Some(ConnectionId(connection))) = message.get::<ConnectionId>() else {
            return None;
        };
        let control = self.peer_connections.get(&connection)?.control.client;
        (control.ip() == tuple.client.ip()).then_some(control)
    }

    /// Closes peer connections whose Connect or ConnectionBind took too long.
    pub(super) fn sweep_peer_connections(&mut self, now: Instant) {
        let expired: Vec<(u32, bool)> = self
            .peer_connections
            .iter()
            .filter_map(|(&id, c)| match c.state {
                PeerState::Connecting { deadline, .. } if now >= deadline => Some((id, true)),
                PeerState::AwaitingBind { deadline } if now >= deadline => Some((id, false)),
                _ => None,
            })
            .collect();
        for (connection, connecting) in expired {
            if connecting {
                self.fail_connect(connection);
            } else {
                debug!(connection, "no ConnectionBind in time");
                self.metrics.tcp_bind_timeouts += 1;
                self.close_peer_connection(connection);
            }
        }
    }

    /// Forgets a peer connection and tells the driver to close it, and its
    /// data connection when bound.
    pub(super) fn close_peer_connection(&mut self, connection: u32) {
        let Some(c) = self.peer_connections.remove(&connection) else {
            return;
        };
        if let Some(allocation) = self.allocations.get_mut(&c.control) {
            allocation.connections.remove(&connection);
        }
        if let PeerState::Bound { data } = c.state {
            self.data_connections.remove(&data);
        }
        self.events
            .push_back(Event::ClosePeerConnection { connection });
    }

    /// Answers a pending Connect with 447 and drops its connection.
    fn fail_connect(&mut self, connection: u32) {
        if let Some(PeerConnection {
            control,
            peer,
            state: PeerState::Connecting {
                transaction, key, ..
            },
        }) = self.peer_connections.get(&connection)
        {
            let (control, transaction, key) = (*control, *transaction, key.clone());
            debug!(client = %control.client, %peer, "Connect failed");
            self.metrics.tcp_connections_failed += 1;
            self.send_error(
                control,
                Method::CONNECT,
                transaction,
                RequestError::ConnectionFailed,
                Some(&key),
                &[],
            );
        }
        self.close_peer_connection(connection);
    }

    /// Records a new peer connection of the allocation on `control` under
    /// a fresh, unpredictable CONNECTION-ID (RFC 6062 §5.2).
    fn add_peer_connection(
        &mut self,
        control: FiveTuple,
        peer: SocketAddr,
        state: PeerState,
    ) -> u32 {
        let connection = loop {
            // Ids in use are at most the allocations times their limit,
            // far fewer than 2^32: a collision is rare and retried.
            let id = self.next_random() as u32;
            if id != 0 && !self.peer_connections.contains_key(&id) {
                break id;
            }
        };
        if let Some(allocation) = self.allocations.get_mut(&control) {
            allocation.connections.insert(connection);
        }
        self.peer_connections.insert(
            connection,
            PeerConnection {
                control,
                peer,
                state,
            },
        );
        connection
    }
}
