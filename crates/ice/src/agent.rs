//! The agent: public API, gathering, timers and connection state.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use realtimer_net::{Transmit, Transport};
use realtimer_sdp::Candidate as SdpCandidate;
use realtimer_stun::attributes::XorMappedAddress;
use realtimer_stun::{
    is_stun, Class, ClientTransactions, IntegrityKey, Message, RetransmitConfig, TransactionEvent,
    TransactionId,
};
use tracing::{debug, trace};

use crate::candidate::{remote_address, Candidate, CandidateError, CandidateKind, RemoteAddress};
use crate::checklist::{CandidatePair, PairState};
use crate::config::IceConfig;
use crate::event::{FailureReason, IceConnectionState, IceEvent, IceGatheringState, SelectedPair};
use crate::relay::Relays;

/// A username fragment and password (RFC 8445 §5.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IceCredentials {
    /// `ice-ufrag`: at least 4 characters.
    pub ufrag: String,
    /// `ice-pwd`: at least 22 characters.
    pub pwd: String,
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IceError {
    /// The candidate cannot be used.
    #[error("remote candidate refused: {0}")]
    Candidate(#[from] CandidateError),
    /// More remote candidates than `max_remote_candidates`.
    #[error("too many remote candidates (at most {0})")]
    TooManyCandidates(usize),
    /// The candidate names a ufrag other than the remote description's (an
    /// older ICE generation).
    #[error("candidate for ufrag {candidate:?}, but the remote ufrag is {current:?}")]
    WrongUfrag {
        /// The candidate's ufrag.
        candidate: String,
        /// The remote description's ufrag.
        current: String,
    },
    /// The agent is closed.
    #[error("the ICE agent is closed")]
    Closed,
}

/// What a transaction was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A connectivity check on a pair.
    Check {
        pair: usize,
        nominating: bool,
        generation: u32,
    },
    /// A Binding request to a STUN server for a server-reflexive candidate.
    Gather { base: SocketAddr, generation: u32 },
    /// A consent freshness check on the selected pair (RFC 7675).
    Consent { pair: usize, generation: u32 },
}

/// A local candidate and the socket address it is sent from.
#[derive(Debug, Clone)]
pub(crate) struct LocalCandidate {
    pub(crate) candidate: Candidate,
    pub(crate) base: SocketAddr,
}

/// An ICE agent for one component of one data stream (BUNDLE with
/// rtcp-mux: everything WebRTC sends).
#[derive(Debug)]
pub struct IceAgent {
    pub(crate) config: IceConfig,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) controlling: bool,
    pub(crate) tie_breaker: u64,
    pub(crate) local_credentials: IceCredentials,
    pub(crate) local_key: IntegrityKey,
    /// The credentials before a restart, still answered until a new pair is
    /// selected so the peer's checks on the old pair keep passing.
    pub(crate) previous_local: Option<(String, IntegrityKey)>,
    pub(crate) remote_credentials: Option<IceCredentials>,
    pub(crate) remote_key: Option<IntegrityKey>,
    /// Bumped by every restart; transactions of older generations are ignored.
    pub(crate) generation: u32,
    pub(crate) bases: Vec<SocketAddr>,
    pub(crate) local: Vec<LocalCandidate>,
    pub(crate) remote: Vec<Candidate>,
    pub(crate) pairs: Vec<CandidatePair>,
    /// (kind, base IP, server IP) of each foundation handed out (RFC 8445 §5.1.1.3).
    pub(crate) foundations: Vec<(CandidateKind, IpAddr, Option<IpAddr>, Transport)>,
    pub(crate) triggered: VecDeque<usize>,
    pub(crate) transactions: ClientTransactions<Purpose>,
    pub(crate) gathering_state: IceGatheringState,
    pub(crate) pending_gathers: usize,
    pub(crate) remote_end_of_candidates: bool,
    pub(crate) state: IceConnectionState,
    pub(crate) failure: Option<FailureReason>,
    pub(crate) selected: Option<SelectedPair>,
    /// Index of the selected pair when it belongs to this generation.
    pub(crate) selected_index: Option<usize>,
    pub(crate) nominated: Option<usize>,
    pub(crate) nomination_in_flight: bool,
    pub(crate) last_check: Option<Instant>,
    pub(crate) checks_started: Option<Instant>,
    pub(crate) first_valid: Option<Instant>,
    /// When the peer's last authenticated check arrived.
    pub(crate) last_peer_request: Option<Instant>,
    pub(crate) consent_last_response: Option<Instant>,
    pub(crate) consent_next_check: Option<Instant>,
    pub(crate) consent_lost: bool,
    pub(crate) pending_mdns: Vec<(String, SdpCandidate)>,
    pub(crate) events: VecDeque<IceEvent>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) closed: bool,
    pub(crate) buf: Vec<u8>,
    /// TURN allocations behind relayed candidates.
    pub(crate) relays: Relays,
}

/// `ice-char` (RFC 8839 §5.4): ALPHA / DIGIT / "+" / "/".
const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl IceAgent {
    /// A new agent; the offerer is usually controlling (RFC 8445 §6.1.1).
    pub fn new(config: IceConfig, controlling: bool) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let tie_breaker = rng.next_u64();
        let local_credentials = random_credentials(&mut rng);
        let local_key = IntegrityKey::from_bytes(local_credentials.pwd.as_bytes());
        let transactions = ClientTransactions::new(RetransmitConfig {
            initial_rto: config.check_rto,
            max_transmissions: config.check_max_transmissions,
            final_wait_multiplier: 4,
            max_rto: config.check_max_rto,
            max_pending: config.max_pairs * 2 + 16,
            ..RetransmitConfig::default()
        });
        IceAgent {
            controlling: controlling && !config.lite,
            config,
            rng,
            tie_breaker,
            local_credentials,
            local_key,
            previous_local: None,
            remote_credentials: None,
            remote_key: None,
            generation: 0,
            bases: Vec::new(),
            local: Vec::new(),
            remote: Vec::new(),
            pairs: Vec::new(),
            foundations: Vec::new(),
            triggered: VecDeque::new(),
            transactions,
            gathering_state: IceGatheringState::New,
            pending_gathers: 0,
            remote_end_of_candidates: false,
            state: IceConnectionState::New,
            failure: None,
            selected: None,
            selected_index: None,
            nominated: None,
            nomination_in_flight: false,
            last_check: None,
            checks_started: None,
            first_valid: None,
            last_peer_request: None,
            consent_last_response: None,
            consent_next_check: None,
            consent_lost: false,
            pending_mdns: Vec::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            closed: false,
            buf: Vec::with_capacity(256),
            relays: Relays::new(),
        }
    }

    /// Our `ice-ufrag` and `ice-pwd`, for the local description.
    pub fn local_credentials(&self) -> &IceCredentials {
        &self.local_credentials
    }

    /// True when this agent is the controlling one.
    pub fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// True for an ICE-lite agent.
    pub fn is_lite(&self) -> bool {
        self.config.lite
    }

    /// Sets the role before checks start (JSEP: the offerer controls, unless
    /// the peer is ICE-lite).
    pub fn set_controlling(&mut self, controlling: bool) {
        self.controlling = controlling && !self.config.lite;
    }

    /// The peer's `ice-ufrag` and `ice-pwd`. New ones (the peer restarted)
    /// drop the old remote candidates and pairs; the selected pair stays in
    /// use until a new one is selected.
    pub fn set_remote_credentials(&mut self, credentials: IceCredentials) {
        if self.remote_credentials.as_ref() == Some(&credentials) {
            return;
        }
        if self.remote_credentials.is_some() {
            self.new_generation();
        }
        self.remote_key = Some(IntegrityKey::from_bytes(credentials.pwd.as_bytes()));
        self.remote_credentials = Some(credentials);
        // Checks on pairs formed from early (trickled or peer-reflexive)
        // candidates can start now.
        self.update_state();
    }

    /// The state of gathering.
    pub fn gathering_state(&self) -> IceGatheringState {
        self.gathering_state
    }

    /// The connection state.
    pub fn connection_state(&self) -> IceConnectionState {
        self.state
    }

    /// Why the agent failed, once it has.
    pub fn failure_reason(&self) -> Option<FailureReason> {
        self.failure
    }

    /// The pair application data should use.
    pub fn selected_pair(&self) -> Option<&SelectedPair> {
        self.selected.as_ref()
    }

    /// The round-trip time of the selected pair's last connectivity or
    /// consent check (RFC 7675), once measured in this ICE generation.
    pub fn selected_pair_rtt(&self) -> Option<Duration> {
        self.selected_index
            .and_then(|i| self.pairs.get(i))
            .and_then(|p| p.rtt)
    }

    /// Our candidates so far.
    pub fn local_candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.local.iter().map(|l| &l.candidate)
    }

    /// The peer's candidates so far, peer-reflexive ones included.
    pub fn remote_candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.remote.iter()
    }

    pub(crate) fn transaction_id(&mut self) -> TransactionId {
        let mut id = [0u8; 12];
        self.rng.fill_bytes(&mut id);
        TransactionId::new(id)
    }

    /// A remote candidate from the remote description or trickled
    /// (RFC 8838), at any time, before or after the remote credentials.
    /// An mDNS name makes the agent ask for [`IceEvent::ResolveMdnsName`].
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        candidate: &SdpCandidate,
    ) -> Result<(), IceError> {
        if self.closed {
            return Err(IceError::Closed);
        }
        if let (Some(ufrag), Some(remote)) = (&candidate.ufrag, &self.remote_credentials) {
            if *ufrag != remote.ufrag {
                return Err(IceError::WrongUfrag {
                    candidate: ufrag.clone(),
                    current: remote.ufrag.clone(),
                });
            }
        }
        if candidate.component != 1 {
            // rtcp-mux: component 2 is never used.
            return Ok(());
        }
        match remote_address(candidate)? {
            RemoteAddress::Ip(ip) => {
                let parsed = Candidate::from_sdp(candidate, ip)?;
                self.add_remote(now, parsed)?;
            }
            RemoteAddress::Mdns(name) => {
                if self.pending_mdns.len() >= self.config.max_remote_candidates {
                    return Err(IceError::TooManyCandidates(
                        self.config.max_remote_candidates,
                    ));
                }
                self.events
                    .push_back(IceEvent::ResolveMdnsName { name: name.clone() });
                self.pending_mdns.push((name, candidate.clone()));
            }
        }
        self.update_state();
        Ok(())
    }

    /// The answer to an [`IceEvent::ResolveMdnsName`]: the address, or `None`
    /// when the name did not resolve (its candidates are dropped).
    pub fn resolve_mdns_name(&mut self, now: Instant, name: &str, address: Option<IpAddr>) {
        let name = name.to_ascii_lowercase();
        let (waiting, rest): (Vec<_>, Vec<_>) =
            self.pending_mdns.drain(..).partition(|(n, _)| *n == name);
        self.pending_mdns = rest;
        let Some(ip) = address else {
            debug!(%name, "mDNS name did not resolve; dropping its candidates");
            return;
        };
        for (_, sdp) in waiting {
            if let Ok(candidate) = Candidate::from_sdp(&sdp, ip) {
                let _ = self.add_remote(now, candidate);
            }
        }
        self.update_state();
    }

    pub(crate) fn add_remote(
        &mut self,
        now: Instant,
        candidate: Candidate,
    ) -> Result<usize, IceError> {
        if let Some(i) = self
            .remote
            .iter()
            .position(|r| r.address == candidate.address)
        {
            // A signalled candidate replaces what a check taught us (RFC 8445 §7.3.1.3).
            if self.remote[i].kind == CandidateKind::PeerReflexive
                && candidate.kind != CandidateKind::PeerReflexive
            {
                self.remote[i].kind = candidate.kind;
                self.remote[i].foundation = candidate.foundation;
                // The selected pair names the same candidate: what getStats
                // and the application see of it changes with it.
                if let Some(selected) = self
                    .selected
                    .as_mut()
                    .filter(|s| s.remote.address == candidate.address)
                {
                    selected.remote = self.remote[i].clone();
                }
            }
            return Ok(i);
        }
        if self.remote.len() >= self.config.max_remote_candidates {
            return Err(IceError::TooManyCandidates(
                self.config.max_remote_candidates,
            ));
        }
        debug!(kind = %candidate.kind, address = %candidate.address, "remote candidate");
        self.remote.push(candidate);
        let index = self.remote.len() - 1;
        for local in 0..self.local.len() {
            if matches!(
                self.local[local].candidate.kind,
                CandidateKind::Host | CandidateKind::Relayed
            ) {
                self.add_pair(local, index);
            }
        }
        if self.checks_started.is_none() && !self.config.lite {
            self.checks_started = Some(now);
        }
        self.sync_permissions(now);
        Ok(index)
    }

    /// The peer signalled end-of-candidates (RFC 8838 §4.4).
    pub fn add_remote_end_of_candidates(&mut self) {
        self.remote_end_of_candidates = true;
        self.update_state();
    }

    /// Restarts ICE (RFC 8445 §9): new credentials, new candidates from the
    /// same local addresses, new checks. The selected pair stays in use until
    /// checks select a new one, so data keeps flowing.
    pub fn restart(&mut self, now: Instant) -> &IceCredentials {
        let credentials = random_credentials(&mut self.rng);
        self.restart_with_credentials(now, credentials)
    }

    /// [`IceAgent::restart`] with credentials chosen by the caller (JSEP
    /// writes them into an offer before the offer is applied, RFC 8829
    /// §5.2.1).
    pub fn restart_with_credentials(
        &mut self,
        now: Instant,
        credentials: IceCredentials,
    ) -> &IceCredentials {
        let old_ufrag = self.local_credentials.ufrag.clone();
        self.previous_local = Some((old_ufrag, self.local_key.clone()));
        self.local_credentials = credentials;
        self.local_key = IntegrityKey::from_bytes(self.local_credentials.pwd.as_bytes());
        self.remote_credentials = None;
        self.remote_key = None;
        self.new_generation();
        self.replace_turn_servers();
        self.local.clear();
        self.foundations.clear();
        let bases = std::mem::take(&mut self.bases);
        self.gathering_state = IceGatheringState::New;
        self.gather(now, &bases);
        &self.local_credentials
    }

    /// Forgets remote candidates, pairs and checks of the current generation.
    fn new_generation(&mut self) {
        self.generation += 1;
        self.remote.clear();
        self.pairs.clear();
        self.triggered.clear();
        self.transactions.cancel_where(|_| true);
        self.pending_gathers = 0;
        self.remote_end_of_candidates = false;
        self.nominated = None;
        self.nomination_in_flight = false;
        self.selected_index = None;
        self.first_valid = None;
        self.last_peer_request = None;
        self.checks_started = None;
        self.consent_next_check = None;
        self.pending_mdns.clear();
    }

    /// Closes the agent: no more checks, events or transmits.
    pub fn close(&mut self) {
        self.closed = true;
        self.transactions.cancel_where(|_| true);
        self.transmits.clear();
        self.release_allocations();
        self.pairs.clear();
        self.triggered.clear();
        self.update_state();
    }

    /// A datagram received on `destination` (one of the bases) from `source`.
    /// Returns false when it is not STUN (RFC 7983: first byte 0..=3), so the
    /// driver can hand it to DTLS or SRTP. Malformed or unauthenticated STUN
    /// is dropped: peer input never panics the agent.
    ///
    /// With TURN servers, a Data indication or ChannelData from a server is
    /// unwrapped and its STUN handled as received on the relayed address
    /// from the peer; relayed application data is dropped here, so drivers
    /// using TURN call [`IceAgent::handle_receive_data`] instead.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        if let Some((peer, relayed, inner)) = self.relays.unwrap(source, destination, contents) {
            if is_stun(inner) {
                self.handle_stun(now, peer, relayed, inner);
            } else {
                trace!(%peer, "relayed application data dropped: use handle_receive_data");
            }
            return true;
        }
        if !is_stun(contents) {
            return false;
        }
        self.handle_stun(now, source, destination, contents);
        true
    }

    pub(crate) fn handle_stun(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let message = match Message::decode(contents) {
            Ok(m) => m,
            Err(e) => {
                trace!(%source, "dropping malformed STUN: {e}");
                return;
            }
        };
        if self.closed {
            self.release_again(&message);
            return;
        }
        match message.class() {
            Class::Request => self.handle_request(now, &message, source, destination),
            Class::SuccessResponse | Class::ErrorResponse => {
                if self
                    .relays
                    .transactions
                    .context(&message.transaction_id())
                    .is_some()
                {
                    self.handle_turn_response(now, &message);
                } else {
                    self.handle_response(now, &message, source, destination);
                }
            }
            Class::Indication => {}
        }
        self.update_state();
    }

    fn handle_response(
        &mut self,
        now: Instant,
        message: &Message<'_>,
        source: SocketAddr,
        destination: SocketAddr,
    ) {
        let Some(purpose) = self
            .transactions
            .context(&message.transaction_id())
            .copied()
        else {
            return;
        };
        match purpose {
            Purpose::Gather { base, generation } => {
                let Some(matched) = self.transactions.handle_response(now, message) else {
                    return;
                };
                self.pending_gathers = self.pending_gathers.saturating_sub(1);
                if generation == self.generation && message.class() == Class::SuccessResponse {
                    if let Ok(Some(XorMappedAddress(mapped))) = message.get::<XorMappedAddress>() {
                        self.add_server_reflexive(base, mapped, matched.destination);
                    }
                }
                self.maybe_finish_gathering();
            }
            Purpose::Check { .. } | Purpose::Consent { .. } => {
                // RFC 8445 §7.2.5.1: responses are authenticated with the
                // remote password; anything else is discarded and the
                // transaction goes on.
                let Some(key) = &self.remote_key else { return };
                if message.verify_integrity(key).is_err() {
                    trace!(%source, "dropping a check response that fails integrity");
                    return;
                }
                let Some(matched) = self.transactions.handle_response(now, message) else {
                    return;
                };
                match purpose {
                    Purpose::Check {
                        pair,
                        nominating,
                        generation,
                    } if generation == self.generation => {
                        self.handle_check_response(
                            now,
                            message,
                            pair,
                            nominating,
                            source,
                            destination,
                            matched.rtt,
                        );
                    }
                    Purpose::Consent { pair, generation } if generation == self.generation => {
                        self.handle_consent_response(now, message, pair, matched.rtt);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Moves time to `now`: retransmissions, paced checks, nomination,
    /// consent and the failure timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.transactions.handle_timeout(now);
        while let Some(TransactionEvent::TimedOut { context, .. }) = self.transactions.poll_event()
        {
            match context {
                Purpose::Check {
                    pair,
                    generation,
                    nominating,
                } if generation == self.generation => {
                    self.check_timed_out(pair, nominating);
                }
                Purpose::Gather { .. } => {
                    self.pending_gathers = self.pending_gathers.saturating_sub(1);
                    self.maybe_finish_gathering();
                }
                _ => {}
            }
        }
        if !self.config.lite {
            if self.check_due(now) {
                self.send_next_check(now);
            }
            self.maybe_nominate(now);
            self.consent_timers(now);
        } else {
            self.lite_liveness(now);
        }
        self.relay_timers(now);
        self.sync_permissions(now);
        self.failure_timers(now);
        self.update_state();
    }

    /// How long the peer's checks keep a failed checklist alive: a few of
    /// its retransmission intervals.
    fn peer_grace(&self) -> Duration {
        self.config.check_max_rto * 4
    }

    fn failure_timers(&mut self, now: Instant) {
        if self.failure.is_some() || self.selected.is_some() {
            return;
        }
        if let Some(reason) = self.all_pairs_failed(now) {
            self.fail(reason);
            return;
        }
        let Some(started) = self.checks_started else {
            return;
        };
        if now.saturating_duration_since(started) >= self.config.connect_timeout {
            self.fail(FailureReason::Timeout {
                pairs: self.pairs.len(),
                remote_candidates: self.remote.len(),
            });
        }
    }

    pub(crate) fn fail(&mut self, reason: FailureReason) {
        if self.failure.is_none() {
            debug!(%reason, "ICE failed");
            self.failure = Some(reason);
            self.transactions.cancel_where(|_| true);
            self.triggered.clear();
        }
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed || self.failure.is_some() {
            return None;
        }
        let mut next = self.transactions.poll_timeout();
        if let Some(t) = self.relays.poll_timeout() {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if !self.config.lite {
            consider(self.next_check_time());
            consider(self.nomination_time());
            if self.selected_index.is_some() {
                consider(self.consent_next_check.or(self.consent_last_response));
                if let Some(last) = self.consent_last_response {
                    if !self.consent_lost {
                        consider(Some(last + self.config.disconnected_timeout));
                    }
                    consider(Some(last + self.config.consent_timeout));
                }
            }
        } else if let Some(last) = self.consent_last_response {
            consider(Some(last + self.config.disconnected_timeout));
            consider(Some(last + self.config.consent_timeout));
        }
        if self.selected.is_none() {
            consider(self.checks_started.map(|s| s + self.config.connect_timeout));
            consider(self.last_peer_request.map(|t| t + self.peer_grace()));
        }
        next
    }

    /// The next datagram to send.
    /// What relayed candidates send comes out wrapped for their TURN
    /// server (RFC 8656 §11.1), from the host socket of the allocation.
    /// What goes to a TURN server over TCP or TLS moves to
    /// [`IceAgent::poll_turn_stream`] instead.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(t) = self.transmits.pop_front() {
            if let Some(t) = self.wrap_relayed(t).and_then(|t| self.divert_to_stream(t)) {
                return Some(t);
            }
        }
        if self.transmits.capacity() > 0 {
            self.transmits = VecDeque::new();
        }
        while let Some(t) = self.transactions.poll_transmit() {
            if let Some(t) = self.wrap_relayed(t).and_then(|t| self.divert_to_stream(t)) {
                return Some(t);
            }
        }
        while let Some(t) = self.relays.transactions.poll_transmit() {
            if let Some(t) = self.divert_to_stream(t) {
                return Some(t);
            }
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 {
            // Events come in bursts (gathering, connecting) and then rarely:
            // an idle agent keeps no room for them.
            self.events = VecDeque::new();
        }
        event
    }

    /// Recomputes the connection state (W3C webrtc-pc §4.3.3) and reports a
    /// change.
    pub(crate) fn update_state(&mut self) {
        if self.no_candidates_ever() {
            self.fail(FailureReason::NoLocalCandidates);
        }
        let state = if self.closed {
            IceConnectionState::Closed
        } else if self.failure.is_some() {
            IceConnectionState::Failed
        } else if self.selected.is_some() {
            if self.consent_lost {
                IceConnectionState::Disconnected
            } else if self.is_completed() {
                IceConnectionState::Completed
            } else {
                IceConnectionState::Connected
            }
        } else if self.checks_started.is_some() || !self.pairs.is_empty() {
            IceConnectionState::Checking
        } else {
            IceConnectionState::New
        };
        if state != self.state {
            debug!(from = %self.state, to = %state, "ICE connection state");
            self.state = state;
            self.events.push_back(IceEvent::ConnectionState(state));
        }
    }

    /// Gathering is over, the peer is known, and we have no candidate: no
    /// pair can ever form (the relay policy with no working TURN server),
    /// so fail now rather than wait for a timeout that never starts.
    fn no_candidates_ever(&self) -> bool {
        self.failure.is_none()
            && !self.closed
            && self.local.is_empty()
            && self.gathering_state == IceGatheringState::Complete
            && self.remote_credentials.is_some()
    }

    fn is_completed(&self) -> bool {
        self.nominated.is_some()
            && self.remote_end_of_candidates
            && self.gathering_state == IceGatheringState::Complete
            && self
                .pairs
                .iter()
                .all(|p| matches!(p.state, PairState::Succeeded | PairState::Failed))
    }

    /// RFC 8445 §7.2.5.3.3 / §8.1.2: once the peer has no more candidates and
    /// every pair failed, ICE failed — unless the peer's checks still reach
    /// us: they revive a pair (a triggered check), so wait until they stop.
    fn all_pairs_failed(&self, now: Instant) -> Option<FailureReason> {
        let peer_quiet = self
            .last_peer_request
            .is_none_or(|t| now >= t + self.peer_grace());
        let done = peer_quiet
            && self.remote_end_of_candidates
            && self.gathering_state == IceGatheringState::Complete
            && self.selected.is_none()
            && self.failure.is_none()
            && !self.pairs.is_empty()
            && self.pairs.iter().all(|p| p.state == PairState::Failed);
        done.then_some(FailureReason::AllPairsFailed {
            pairs: self.pairs.len(),
        })
    }

    /// Reports a new selected pair.
    pub(crate) fn select(&mut self, now: Instant, pair: usize) {
        let Some(p) = self.pairs.get(pair) else {
            return;
        };
        let selected = SelectedPair {
            local: self.local[p.mapped_local.unwrap_or(p.local)]
                .candidate
                .clone(),
            local_base: self.local[p.local].base,
            remote: self.remote[p.remote].clone(),
            nominated: p.nominated,
        };
        if self.selected.as_ref() == Some(&selected) {
            return;
        }
        debug!(local = %selected.local_base, remote = %selected.remote.address, nominated = selected.nominated, "selected pair");
        let first = self.selected_index.is_none();
        self.selected_index = Some(pair);
        self.selected = Some(selected.clone());
        // A new pair after a restart: the old credentials are done.
        self.previous_local = None;
        if first {
            self.consent_last_response.get_or_insert(now);
            self.consent_last_response = Some(now);
            self.consent_lost = false;
            self.consent_next_check = None;
        }
        self.events.push_back(IceEvent::SelectedPair(selected));
        self.bind_selected_channel(now);
    }
}

fn random_string(rng: &mut ChaCha8Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(ICE_CHARS[rng.random_range(0..ICE_CHARS.len())]))
        .collect()
}

fn random_credentials(rng: &mut ChaCha8Rng) -> IceCredentials {
    IceCredentials {
        ufrag: random_string(rng, 8),
        pwd: random_string(rng, 24),
    }
}
