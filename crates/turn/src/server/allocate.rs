//! Allocate and Refresh (RFC 8656 §7, §8): the relayed address, its port, lifetimes.

use super::*;

impl Server {
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
                    self.events.push_back(open_relay(next, pending.tcp));
                    self.pending.insert(next, pending);
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
            tcp: pending.tcp,
            dont_fragment: pending.dont_fragment,
            connections: HashSet::new(),
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

    /// RFC 8656 §7.2.
    pub(super) fn allocate(
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
        // RFC 6062 §5.1: TCP relays only for clients on TCP or TLS.
        let tcp = match message.get::<RequestedTransport>() {
            Ok(Some(RequestedTransport::UDP)) => false,
            Ok(Some(RequestedTransport::TCP))
                if tuple.transport.is_stream()
                    && self.config.limits.tcp_connections_per_allocation > 0 =>
            {
                true
            }
            Ok(Some(_)) => return Err(RequestError::UnsupportedTransport),
            _ => return Err(RequestError::BadRequest),
        };
        let requested_family = match message.get::<RequestedAddressFamily>() {
            Ok(f) => f.map(|f| f.0),
            Err(_) => return Err(RequestError::AddressFamilyNotSupported),
        };
        let has_token = message.contains(AttributeType::RESERVATION_TOKEN);
        if tcp && (has_token || message.contains(AttributeType::EVEN_PORT)) {
            // RFC 6062 §5.1: no port reservations for TCP relays.
            return Err(RequestError::BadRequest);
        }
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
                tcp,
                dont_fragment: message.contains(AttributeType::DONT_FRAGMENT),
            },
        );
        self.events.push_back(open_relay(relay, tcp));
        Ok(())
    }

    /// RFC 8656 §7.2 and §8: absent is the default, less than the default
    /// is raised to it, more than the maximum is cut; zero stays zero.
    pub(super) fn lifetime(&self, message: &Message<'_>) -> Result<Duration, RequestError> {
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

    /// RFC 8656 §8.
    pub(super) fn refresh(
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

    pub(super) fn relay_ip(&self, family: AddressFamily) -> Option<IpAddr> {
        match family {
            AddressFamily::V4 => self.config.relay_ipv4,
            AddressFamily::V6 => self.config.relay_ipv6,
        }
    }

    /// A free port in the range, starting at a random place (RFC 8656 §7.2
    /// asks for unpredictable ports).
    pub(super) fn pick_relay(&mut self, family: AddressFamily, even: bool) -> Option<SocketAddr> {
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
}

/// The event that binds a relay: a UDP socket, or a TCP listener for a TCP
/// allocation (RFC 6062 §5.1).
fn open_relay(relay: SocketAddr, tcp: bool) -> Event {
    if tcp {
        Event::OpenTcpRelay { relay }
    } else {
        Event::OpenRelay { relay }
    }
}
