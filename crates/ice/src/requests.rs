//! Answering the peer's checks (RFC 8445 §7.3).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use realtimer_stun::attributes::{
    ErrorCode, IceControlled, IceControlling, Priority, UseCandidate, Username, XorMappedAddress,
};
use realtimer_stun::{Class, IntegrityKey, Message, MessageEncoder, Method};
use tracing::{debug, trace};

use realtimer_net::Transmit;

use crate::agent::IceAgent;
use crate::candidate::{Candidate, CandidateKind};
use crate::checklist::PairState;

impl IceAgent {
    /// RFC 8445 §7.3: authenticate, resolve role conflicts, answer, learn
    /// peer-reflexive candidates, and trigger a check back.
    pub(crate) fn handle_request(
        &mut self,
        now: Instant,
        message: &Message<'_>,
        source: SocketAddr,
        destination: SocketAddr,
    ) {
        if message.method() != Method::BINDING {
            return;
        }
        let Some(local) = self.local.iter().position(|l| {
            l.base == destination
                && matches!(
                    l.candidate.kind,
                    CandidateKind::Host | CandidateKind::Relayed
                )
        }) else {
            trace!(%destination, "check to an address we do not gather on");
            return;
        };
        // RFC 8489 §9.1.3: USERNAME and MESSAGE-INTEGRITY are required; the
        // first half of USERNAME is our ufrag (or, during a restart, the old one).
        let username = match message.get::<Username>() {
            Ok(Some(Username(u))) if message.has_integrity() => u,
            _ => {
                return self.respond_error(
                    message,
                    source,
                    destination,
                    ErrorCode::BAD_REQUEST,
                    "Bad Request",
                    None,
                )
            }
        };
        let ours = username.split(':').next().unwrap_or_default();
        let key = if ours == self.local_credentials.ufrag {
            Some(self.local_key.clone())
        } else {
            self.previous_local
                .as_ref()
                .filter(|(ufrag, _)| ufrag == ours)
                .map(|(_, key)| key.clone())
        };
        let Some(key) = key.filter(|key| message.verify_integrity(key).is_ok()) else {
            return self.respond_error(
                message,
                source,
                destination,
                ErrorCode::UNAUTHENTICATED,
                "Unauthenticated",
                None,
            );
        };
        self.last_peer_request = Some(now);
        let Ok(Some(Priority(priority))) = message.get::<Priority>() else {
            return self.respond_error(
                message,
                source,
                destination,
                ErrorCode::BAD_REQUEST,
                "PRIORITY missing",
                Some(&key),
            );
        };
        if !self.resolve_role_conflict(message) {
            return self.respond_error(
                message,
                source,
                destination,
                ErrorCode::ROLE_CONFLICT,
                "Role Conflict",
                Some(&key),
            );
        }
        self.respond_success(message, source, destination, &key);
        if self.failure.is_some() {
            return;
        }
        let use_candidate = matches!(message.get::<UseCandidate>(), Ok(Some(_)));

        // §7.3.1.3: an unknown source is a peer-reflexive remote candidate.
        let remote = match self.remote.iter().position(|r| r.address == source) {
            Some(r) => r,
            None => {
                let foundation = format!("prflx{}", self.remote.len());
                let candidate = Candidate {
                    kind: CandidateKind::PeerReflexive,
                    address: source,
                    priority,
                    foundation,
                    component: 1,
                    related_address: None,
                    mdns_name: None,
                    relay_protocol: None,
                };
                match self.add_remote(now, candidate) {
                    Ok(r) => r,
                    Err(e) => {
                        debug!("peer-reflexive candidate not added: {e}");
                        return;
                    }
                }
            }
        };
        let Some(pair) = self.add_pair(local, remote) else {
            return;
        };
        self.sync_permissions(now);
        if self.config.lite {
            // RFC 8445 §2.5: a lite agent's pair is valid when the peer checks
            // it, and selected when the peer nominates it.
            self.pairs[pair].state = PairState::Succeeded;
            if Some(pair) == self.selected_index || self.selected_index.is_none() {
                self.consent_last_response = Some(now);
            }
            if use_candidate {
                self.pairs[pair].use_candidate_received = true;
                self.nominate(now, pair);
            }
            return;
        }
        if Some(pair) == self.selected_index {
            // The peer's consent checks are not ours, but they show the path.
            trace!("check on the selected pair");
        }
        // §7.3.1.4: a triggered check, unless the pair already succeeded.
        match self.pairs[pair].state {
            PairState::Succeeded => {}
            PairState::InProgress => {}
            PairState::Waiting | PairState::Frozen | PairState::Failed => {
                self.pairs[pair].state = PairState::Waiting;
                if !self.triggered.contains(&pair) {
                    self.triggered.push_back(pair);
                }
            }
        }
        // §7.3.1.5: the controlled agent is nominated by USE-CANDIDATE, at
        // once if the pair is valid, else when its check succeeds.
        if use_candidate && !self.controlling {
            self.pairs[pair].use_candidate_received = true;
            if self.pairs[pair].state == PairState::Succeeded {
                self.nominate(now, pair);
            }
        }
    }

    /// RFC 8445 §7.3.1.1: returns false when the peer must get a 487.
    fn resolve_role_conflict(&mut self, message: &Message<'_>) -> bool {
        if self.controlling {
            if let Ok(Some(IceControlling(theirs))) = message.get::<IceControlling>() {
                if self.tie_breaker >= theirs {
                    return false;
                }
                self.switch_role(false);
            }
        } else if let Ok(Some(IceControlled(theirs))) = message.get::<IceControlled>() {
            if self.tie_breaker >= theirs {
                self.switch_role(true);
            } else {
                return false;
            }
        }
        true
    }

    fn respond_success(
        &mut self,
        request: &Message<'_>,
        source: SocketAddr,
        destination: SocketAddr,
        key: &IntegrityKey,
    ) {
        self.buf.clear();
        let mut enc = MessageEncoder::new(
            &mut self.buf,
            Class::SuccessResponse,
            Method::BINDING,
            request.transaction_id(),
        );
        let ok = enc
            .add(&XorMappedAddress(source))
            .and_then(|e| e.add_message_integrity(key))
            .is_ok()
            && enc.add_fingerprint().is_ok();
        if ok {
            self.queue_response(source, destination);
        }
    }

    /// RFC 8489 §6.3.4: an error response; integrity only when the request
    /// authenticated (never for 400 or 401 about the credentials themselves).
    fn respond_error(
        &mut self,
        request: &Message<'_>,
        source: SocketAddr,
        destination: SocketAddr,
        code: u16,
        reason: &str,
        key: Option<&IntegrityKey>,
    ) {
        trace!(%source, code, "answering a check with an error");
        self.buf.clear();
        let mut enc = MessageEncoder::new(
            &mut self.buf,
            Class::ErrorResponse,
            Method::BINDING,
            request.transaction_id(),
        );
        let mut ok = enc.add(&ErrorCode::new(code, reason)).is_ok();
        if let Some(key) = key {
            ok &= enc.add_message_integrity(key).is_ok();
        }
        ok &= enc.add_fingerprint().is_ok();
        if ok {
            self.queue_response(source, destination);
        }
    }

    fn queue_response(&mut self, to: SocketAddr, from: SocketAddr) {
        self.transmits
            .push_back(Transmit::udp(from, to, Bytes::copy_from_slice(&self.buf)));
    }
}
