//! Client transactions on the caller's clock (RFC 8489 §6.2).
//!
//! Requests go out at once; over UDP they are sent again after RTO, 2·RTO,
//! 4·RTO… until Rc transmissions, and the transaction fails Rm·RTO after the
//! last one (§6.2.1). Over TCP or TLS they go out once and fail after Ti
//! (§6.2.2). A response is matched by its transaction id.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use realtimer_net::Transmit;

use crate::message::{Message, TransactionId};

/// Retransmission parameters (RFC 8489 §6.2.1, §6.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// RTO: the first retransmission interval; it doubles after each send.
    /// RFC 8489 recommends 500 ms for fixed-line access.
    pub initial_rto: Duration,
    /// Rc: how many times a request is sent over UDP in all (default 7).
    pub max_transmissions: u32,
    /// Rm: after the last send, wait Rm times the initial RTO (default 16).
    pub final_wait_multiplier: u32,
    /// Ti: how long a request over TCP or TLS waits (default 39.5 s).
    pub reliable_timeout: Duration,
    /// The RTO stops doubling at this value (RFC 8489 sets no cap; ICE
    /// checks use one to keep retrying under loss).
    pub max_rto: Duration,
    /// The most transactions in flight at once; more are refused.
    pub max_pending: usize,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        RetransmitConfig {
            initial_rto: Duration::from_millis(500),
            max_transmissions: 7,
            final_wait_multiplier: 16,
            reliable_timeout: Duration::from_millis(39_500),
            max_rto: Duration::MAX,
            max_pending: 1024,
        }
    }
}

/// A request to send and retransmit until answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// The id the encoded request carries.
    pub transaction_id: TransactionId,
    /// The encoded request, where from and where to. Over TCP or TLS
    /// ([`realtimer_net::Transport::is_stream`]) it is sent once, then the
    /// transaction waits Ti (RFC 8489 §6.2.2).
    pub transmit: Transmit,
}

/// Something the transactions want the caller to know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionEvent<T> {
    /// No response came in time (RFC 8489 §6.2.1): the request failed.
    TimedOut {
        /// The request's transaction id.
        transaction_id: TransactionId,
        /// Where it was sent.
        destination: SocketAddr,
        /// The caller's data given to `start`.
        context: T,
    },
}

/// A response matched to its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<T> {
    /// The caller's data given to `start`.
    pub context: T,
    /// Where the request was sent.
    pub destination: SocketAddr,
    /// Round-trip time, measured only when the request was sent once
    /// (Karn's rule: a retransmitted request's response is ambiguous).
    pub rtt: Option<Duration>,
}

/// Why a transaction could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// A transaction with this id is already in flight.
    #[error("transaction {0:?} is already in flight")]
    DuplicateId(TransactionId),
    /// `max_pending` transactions are already in flight.
    #[error("too many transactions in flight (at most {0})")]
    TooMany(usize),
}

#[derive(Debug)]
struct Pending<T> {
    request: OutgoingRequest,
    transmissions: u32,
    rto: Duration,
    started: Instant,
    deadline: Instant,
    context: T,
}

/// The client side of STUN transactions, for any number of requests.
///
/// `T` is the caller's data for each transaction (a candidate pair, a TURN
/// request kind…), handed back when it completes or times out.
#[derive(Debug)]
pub struct ClientTransactions<T> {
    config: RetransmitConfig,
    /// Ordered by id so timeouts fire in the same order on every run.
    pending: BTreeMap<TransactionId, Pending<T>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransactionEvent<T>>,
}

impl<T> ClientTransactions<T> {
    /// No transactions yet.
    pub fn new(config: RetransmitConfig) -> Self {
        ClientTransactions {
            config,
            pending: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Sends `request` now and retransmits it as needed, until a response
    /// or a timeout ends the transaction.
    pub fn start(
        &mut self,
        now: Instant,
        request: OutgoingRequest,
        context: T,
    ) -> Result<(), TransactionError> {
        if self.pending.contains_key(&request.transaction_id) {
            return Err(TransactionError::DuplicateId(request.transaction_id));
        }
        if self.pending.len() >= self.config.max_pending {
            return Err(TransactionError::TooMany(self.config.max_pending));
        }
        let wait = if request.transmit.transport.is_stream() {
            self.config.reliable_timeout
        } else {
            self.config.initial_rto
        };
        self.transmits.push_back(request.transmit.clone());
        self.pending.insert(
            request.transaction_id,
            Pending {
                request,
                transmissions: 1,
                rto: self.config.initial_rto,
                started: now,
                deadline: now + wait,
                context,
            },
        );
        Ok(())
    }

    /// Matches a received response to its request and ends the transaction.
    /// Returns `None` for anything that is not a response to a pending request
    /// (RFC 8489 §6.3.3: such messages are discarded).
    pub fn handle_response(&mut self, now: Instant, response: &Message<'_>) -> Option<Matched<T>> {
        if !response.class().is_response() {
            return None;
        }
        let pending = self.pending.remove(&response.transaction_id())?;
        Some(Matched {
            rtt: (pending.transmissions == 1)
                .then(|| now.saturating_duration_since(pending.started)),
            destination: pending.request.transmit.destination,
            context: pending.context,
        })
    }

    /// The data of a transaction in flight, to decide how to check its
    /// response before [`Self::handle_response`] ends it.
    pub fn context(&self, transaction_id: &TransactionId) -> Option<&T> {
        self.pending.get(transaction_id).map(|p| &p.context)
    }

    /// Forgets every transaction whose data matches, without events.
    pub fn cancel_where(&mut self, mut matches: impl FnMut(&T) -> bool) {
        self.pending.retain(|_, p| !matches(&p.context));
    }

    /// Forgets a transaction without an event; returns its data.
    pub fn cancel(&mut self, transaction_id: &TransactionId) -> Option<T> {
        self.pending.remove(transaction_id).map(|p| p.context)
    }

    /// Retransmits and times out what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let config = self.config;
        let mut expired = Vec::new();
        for (id, pending) in self.pending.iter_mut() {
            if pending.deadline > now {
                continue;
            }
            if pending.request.transmit.transport.is_stream()
                || pending.transmissions >= config.max_transmissions
            {
                expired.push(*id);
                continue;
            }
            pending.transmissions += 1;
            pending.rto = pending.rto.saturating_mul(2).min(config.max_rto);
            let wait = if pending.transmissions == config.max_transmissions {
                config
                    .initial_rto
                    .saturating_mul(config.final_wait_multiplier)
            } else {
                pending.rto
            };
            pending.deadline = now + wait;
            self.transmits.push_back(pending.request.transmit.clone());
        }
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                self.events.push_back(TransactionEvent::TimedOut {
                    transaction_id: id,
                    destination: p.request.transmit.destination,
                    context: p.context,
                });
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.transmits.pop_front();
        if transmit.is_none() && self.transmits.capacity() > 0 {
            // Idle transactions keep no buffer: many agents sit idle.
            self.transmits = VecDeque::new();
        }
        transmit
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TransactionEvent<T>> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// How many transactions are in flight.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when none are in flight.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}
