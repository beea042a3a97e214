//! The checklist: candidate pairs, paced checks, nomination (RFC 8445 §6.1.2,
//! §7.2, §8).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_net::Transmit;
use realtimer_stun::attributes::{
    ErrorCode, IceControlled, IceControlling, Priority, UseCandidate, Username, XorMappedAddress,
};
use realtimer_stun::{Class, Message, MessageEncoder, Method, OutgoingRequest};
use tracing::{debug, trace};

use crate::agent::{IceAgent, Purpose};
use crate::candidate::{
    candidate_priority, local_preference, pair_priority, Candidate, CandidateKind,
};
use crate::event::IceEvent;

/// RFC 8445 §6.1.2.6: the state of a pair's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairState {
    /// Waits for a pair of the same foundation to succeed.
    Frozen,
    /// Ready to be checked.
    Waiting,
    /// A check is in flight.
    InProgress,
    /// A check succeeded: the pair is valid.
    Succeeded,
    /// Checks failed, or the pair was pruned.
    Failed,
}

/// A local and a remote candidate, by index.
#[derive(Debug, Clone)]
pub(crate) struct CandidatePair {
    pub(crate) local: usize,
    pub(crate) remote: usize,
    pub(crate) priority: u64,
    pub(crate) state: PairState,
    /// The peer sent USE-CANDIDATE on this pair (we are controlled).
    pub(crate) use_candidate_received: bool,
    pub(crate) nominated: bool,
    pub(crate) rtt: Option<Duration>,
    /// RFC 8445 §7.2.5.3.2: the local candidate whose address the peer saw
    /// (a server- or peer-reflexive one behind a NAT); the valid pair's
    /// local side. Sending still uses `local`'s base.
    pub(crate) mapped_local: Option<usize>,
}

impl IceAgent {
    fn compute_pair_priority(&self, local: &Candidate, remote: &Candidate) -> u64 {
        if self.controlling {
            pair_priority(local.priority, remote.priority)
        } else {
            pair_priority(remote.priority, local.priority)
        }
    }

    /// Forms a pair if it is new, fits the limit, and both sides share an
    /// address family (RFC 8445 §6.1.2.2).
    pub(crate) fn add_pair(&mut self, local: usize, remote: usize) -> Option<usize> {
        let l = &self.local[local];
        let r = &self.remote[remote];
        if l.base.is_ipv4() != r.address.is_ipv4() {
            return None;
        }
        if let Some(i) = self
            .pairs
            .iter()
            .position(|p| self.local[p.local].base == l.base && p.remote == remote)
        {
            return Some(i);
        }
        if self.pairs.len() >= self.config.max_pairs {
            trace!(
                "pair limit reached; not pairing {} with {}",
                l.base,
                r.address
            );
            return None;
        }
        let priority = self.compute_pair_priority(&l.candidate, r);
        // RFC 8445 §6.1.2.6: the first pair of each foundation waits, the
        // rest are frozen until one of their foundation succeeds.
        let foundation_active = self.pairs.iter().any(|p| {
            self.local[p.local].candidate.foundation == l.candidate.foundation
                && self.remote[p.remote].foundation == r.foundation
                && p.state != PairState::Failed
        });
        let state = if foundation_active {
            PairState::Frozen
        } else {
            PairState::Waiting
        };
        self.pairs.push(CandidatePair {
            local,
            remote,
            priority,
            state,
            use_candidate_received: false,
            nominated: false,
            rtt: None,
            mapped_local: None,
        });
        Some(self.pairs.len() - 1)
    }

    /// Pair priorities depend on the role; recompute them after a switch.
    pub(crate) fn switch_role(&mut self, controlling: bool) {
        if self.controlling == controlling {
            return;
        }
        debug!(controlling, "ICE role switched");
        self.controlling = controlling;
        for i in 0..self.pairs.len() {
            let p = &self.pairs[i];
            let priority =
                self.compute_pair_priority(&self.local[p.local].candidate, &self.remote[p.remote]);
            self.pairs[i].priority = priority;
        }
        self.events.push_back(IceEvent::RoleChanged { controlling });
    }

    fn has_check_work(&self) -> bool {
        self.remote_key.is_some()
            && self.failure.is_none()
            && (!self.triggered.is_empty()
                || self
                    .pairs
                    .iter()
                    .any(|p| matches!(p.state, PairState::Waiting | PairState::Frozen)))
    }

    /// RFC 8445 §6.1.4.2: one new check every Ta.
    pub(crate) fn next_check_time(&self) -> Option<Instant> {
        if !self.has_check_work() {
            return None;
        }
        self.last_check
            .map(|last| last + self.config.check_interval)
            .or(self.checks_started)
    }

    pub(crate) fn check_due(&self, now: Instant) -> bool {
        self.has_check_work()
            && self
                .last_check
                .is_none_or(|last| now >= last + self.config.check_interval)
    }

    /// Sends the next check: a triggered one first, then the best waiting
    /// pair, else unfreezes the best frozen pair (RFC 8445 §6.1.4.2).
    pub(crate) fn send_next_check(&mut self, now: Instant) {
        while let Some(pair) = self.triggered.pop_front() {
            if self
                .pairs
                .get(pair)
                .is_some_and(|p| p.state == PairState::Waiting)
            {
                self.send_check(now, pair, false);
                return;
            }
        }
        let best = |state: PairState| {
            self.pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.state == state)
                .max_by_key(|(_, p)| p.priority)
                .map(|(i, _)| i)
        };
        if let Some(pair) = best(PairState::Waiting).or_else(|| best(PairState::Frozen)) {
            self.send_check(now, pair, false);
        }
    }

    /// RFC 8445 §7.2.2: USERNAME, PRIORITY, the role attribute, USE-CANDIDATE
    /// when nominating, MESSAGE-INTEGRITY with the remote password, FINGERPRINT.
    pub(crate) fn send_check(&mut self, now: Instant, pair: usize, nominating: bool) {
        let purpose = Purpose::Check {
            pair,
            nominating,
            generation: self.generation,
        };
        if self.send_binding(now, pair, nominating, purpose) {
            self.last_check = Some(now);
            self.pairs[pair].state = PairState::InProgress;
            if nominating {
                self.nomination_in_flight = true;
            }
        }
    }

    pub(crate) fn send_consent_check(&mut self, now: Instant, pair: usize) {
        let purpose = Purpose::Consent {
            pair,
            generation: self.generation,
        };
        self.send_binding(now, pair, false, purpose);
    }

    fn send_binding(
        &mut self,
        now: Instant,
        pair: usize,
        nominating: bool,
        purpose: Purpose,
    ) -> bool {
        let (Some(remote_credentials), Some(remote_key)) =
            (&self.remote_credentials, &self.remote_key)
        else {
            return false;
        };
        let Some(p) = self.pairs.get(pair) else {
            return false;
        };
        let local = &self.local[p.local];
        let destination = self.remote[p.remote].address;
        let source = local.base;
        // RFC 8445 §7.1.1: PRIORITY is what a peer-reflexive candidate
        // learned from this check would have.
        let index = self.bases.iter().position(|b| *b == source).unwrap_or(0);
        let prflx_priority = candidate_priority(
            CandidateKind::PeerReflexive,
            local_preference(&source, index),
            1,
        );
        let username = format!(
            "{}:{}",
            remote_credentials.ufrag, self.local_credentials.ufrag
        );
        let remote_key = remote_key.clone();
        let tid = self.transaction_id();
        self.buf.clear();
        let mut enc = MessageEncoder::new(&mut self.buf, Class::Request, Method::BINDING, tid);
        let written = enc
            .add(&Username(&username))
            .and_then(|e| e.add(&Priority(prflx_priority)))
            .and_then(|e| {
                if self.controlling {
                    e.add(&IceControlling(self.tie_breaker))
                } else {
                    e.add(&IceControlled(self.tie_breaker))
                }
            })
            .and_then(|e| {
                if nominating {
                    e.add(&UseCandidate)
                } else {
                    Ok(e)
                }
            })
            .and_then(|e| e.add_message_integrity(&remote_key))
            .is_ok()
            && enc.add_fingerprint().is_ok();
        if !written {
            // Only an over-long ufrag from the peer can get here.
            return false;
        }
        trace!(%source, %destination, nominating, "sending check");
        let request = OutgoingRequest {
            transaction_id: tid,
            transmit: Transmit::udp(source, destination, Bytes::copy_from_slice(&self.buf)),
        };
        self.transactions.start(now, request, purpose).is_ok()
    }

    /// RFC 8445 §7.2.5: a response to one of our checks (integrity already
    /// checked).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_check_response(
        &mut self,
        now: Instant,
        message: &Message<'_>,
        pair: usize,
        nominating: bool,
        source: SocketAddr,
        destination: SocketAddr,
        rtt: Option<Duration>,
    ) {
        let Some(p) = self.pairs.get(pair) else {
            return;
        };
        let (local, remote) = (p.local, p.remote);
        if nominating {
            self.nomination_in_flight = false;
        }
        // §7.2.5.2.1: the response must come from where the request went,
        // to where it came from.
        if source != self.remote[remote].address || destination != self.local[local].base {
            debug!(%source, %destination, "non-symmetric check response: pair failed");
            self.pairs[pair].state = PairState::Failed;
            return;
        }
        if message.class() == Class::ErrorResponse {
            let code = message.get::<ErrorCode>().ok().flatten().map(|e| e.code);
            if code == Some(ErrorCode::ROLE_CONFLICT) {
                // §7.2.5.1: switch role and check the pair again.
                self.switch_role(!self.controlling);
                self.pairs[pair].state = PairState::Waiting;
                self.triggered.push_back(pair);
            } else {
                debug!(?code, "check failed with an error response");
                self.pairs[pair].state = PairState::Failed;
            }
            return;
        }
        // §7.2.5.3.1: a mapped address we do not know is a peer-reflexive
        // local candidate (not signalled: the peer learns it from our checks).
        let mut mapped_local = None;
        if let Ok(Some(XorMappedAddress(mapped))) = message.get::<XorMappedAddress>() {
            let base = self.local[local].base;
            let known = self
                .local
                .iter()
                .position(|l| l.candidate.address == mapped && l.base == base);
            mapped_local = Some(match known {
                Some(i) => i,
                None => {
                    let candidate =
                        self.reflexive_candidate(CandidateKind::PeerReflexive, base, mapped, None);
                    self.add_local_candidate(candidate, base, false)
                }
            });
        }
        let first_success = self.pairs[pair].state != PairState::Succeeded;
        let p = &mut self.pairs[pair];
        p.state = PairState::Succeeded;
        p.mapped_local = mapped_local;
        if rtt.is_some() {
            p.rtt = rtt;
        }
        self.first_valid.get_or_insert(now);
        self.consent_last_response = Some(now);
        if first_success {
            self.unfreeze_foundation(pair);
        }
        // §8.1.1 / §7.3.1.5: nominated by our USE-CANDIDATE (controlling),
        // or by the peer's on a pair whose check now succeeded (controlled).
        let nominate = (nominating && self.controlling)
            || (!self.controlling && self.pairs[pair].use_candidate_received);
        if nominate {
            self.nominate(now, pair);
        } else {
            self.update_selection(now);
        }
    }

    /// RFC 8445 §7.2.5.3.3: a success unfreezes the pairs of its foundation.
    fn unfreeze_foundation(&mut self, pair: usize) {
        let p = &self.pairs[pair];
        let lf = self.local[p.local].candidate.foundation.clone();
        let rf = self.remote[p.remote].foundation.clone();
        for i in 0..self.pairs.len() {
            let q = &self.pairs[i];
            if q.state == PairState::Frozen
                && self.local[q.local].candidate.foundation == lf
                && self.remote[q.remote].foundation == rf
            {
                self.pairs[i].state = PairState::Waiting;
            }
        }
    }

    pub(crate) fn check_timed_out(&mut self, pair: usize, nominating: bool) {
        if nominating {
            self.nomination_in_flight = false;
        }
        if let Some(p) = self.pairs.get_mut(pair) {
            if p.state == PairState::InProgress {
                trace!(pair, "check timed out: pair failed");
                p.state = PairState::Failed;
            }
        }
    }

    /// The best valid pair, by priority.
    fn best_valid(&self) -> Option<usize> {
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == PairState::Succeeded)
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, _)| i)
    }

    /// Before nomination, data flows on the best valid pair; after it, on the
    /// nominated pair.
    pub(crate) fn update_selection(&mut self, now: Instant) {
        let pick = self.nominated.or_else(|| self.best_valid());
        if let Some(pair) = pick {
            self.select(now, pair);
        }
    }

    /// When the controlling agent will nominate without waiting for better
    /// pairs.
    pub(crate) fn nomination_time(&self) -> Option<Instant> {
        if !self.controlling || self.nominated.is_some() || self.nomination_in_flight {
            return None;
        }
        self.first_valid.map(|t| t + self.config.nomination_delay)
    }

    /// RFC 8445 §8.1.1: the controlling agent nominates the best valid pair
    /// once no better pair can still succeed, or after `nomination_delay`.
    pub(crate) fn maybe_nominate(&mut self, now: Instant) {
        if !self.controlling
            || self.nominated.is_some()
            || self.nomination_in_flight
            || self.remote_key.is_none()
        {
            return;
        }
        let Some(best) = self.best_valid() else {
            return;
        };
        let best_priority = self.pairs[best].priority;
        let better_pending = self.pairs.iter().any(|p| {
            p.priority > best_priority
                && !matches!(p.state, PairState::Failed | PairState::Succeeded)
        });
        let waited = self
            .first_valid
            .is_some_and(|t| now >= t + self.config.nomination_delay);
        if !better_pending || waited {
            debug!(pair = best, "nominating");
            self.send_check(now, best, true);
        }
    }

    /// Marks a pair nominated, selects it, and stops checking lower pairs
    /// (RFC 8445 §8.1.2).
    pub(crate) fn nominate(&mut self, now: Instant, pair: usize) {
        if self.nominated.is_some() && self.nominated != Some(pair) && self.controlling {
            return; // §8.1.1: one nomination per component until restart
        }
        self.pairs[pair].nominated = true;
        self.nominated = Some(pair);
        let priority = self.pairs[pair].priority;
        for p in self.pairs.iter_mut() {
            if p.priority < priority
                && matches!(
                    p.state,
                    PairState::Waiting | PairState::Frozen | PairState::InProgress
                )
            {
                p.state = PairState::Failed;
            }
        }
        let generation = self.generation;
        let pairs = &self.pairs;
        self.transactions.cancel_where(|purpose| match purpose {
            Purpose::Check {
                pair: p,
                generation: g,
                ..
            } => *g == generation && pairs.get(*p).is_some_and(|q| q.state == PairState::Failed),
            _ => false,
        });
        self.triggered
            .retain(|p| pairs.get(*p).is_some_and(|q| q.state == PairState::Waiting));
        // Force a fresh event: the nominated flag changed.
        self.selected = None;
        self.select(now, pair);
    }
}
