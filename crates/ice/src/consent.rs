//! Consent freshness (RFC 7675): periodic checks on the selected pair,
//! disconnected when answers stop, failed when consent expires.

use std::time::{Duration, Instant};

use rand::Rng;
use realtimer_stun::{Class, Message};
use tracing::debug;

use crate::agent::IceAgent;
use crate::event::FailureReason;

impl IceAgent {
    pub(crate) fn handle_consent_response(
        &mut self,
        now: Instant,
        message: &Message<'_>,
        pair: usize,
        rtt: Option<Duration>,
    ) {
        if message.class() == Class::ErrorResponse {
            // RFC 7675 §5.1: an authenticated error response revokes consent.
            debug!(pair, "consent revoked by an error response");
            self.fail(FailureReason::ConsentRevoked);
            return;
        }
        self.consent_last_response = Some(now);
        if let (Some(rtt), Some(p)) = (rtt, self.pairs.get_mut(pair)) {
            p.rtt = Some(rtt);
        }
        if self.consent_lost {
            debug!("consent restored");
            self.consent_lost = false;
            self.consent_next_check = Some(now + self.consent_interval());
        }
    }

    /// The next consent interval: the configured one ±20 % (RFC 7675 §5.1).
    pub(crate) fn consent_interval(&mut self) -> Duration {
        let factor = self.rng.random_range(0.8..1.2);
        self.config.consent_interval.mul_f64(factor)
    }

    pub(crate) fn consent_timers(&mut self, now: Instant) {
        let Some(pair) = self.selected_index else {
            return;
        };
        if let Some(last) = self.consent_last_response {
            let silent = now.saturating_duration_since(last);
            if silent >= self.config.consent_timeout {
                self.fail(FailureReason::ConsentExpired);
                return;
            }
            if silent >= self.config.disconnected_timeout && !self.consent_lost {
                debug!(?silent, "no consent response: disconnected");
                self.consent_lost = true;
                self.consent_next_check = Some(now);
            }
        }
        let next = *self.consent_next_check.get_or_insert(now);
        if now >= next {
            self.send_consent_check(now, pair);
            let interval = if self.consent_lost {
                self.config.disconnected_check_interval
            } else {
                self.consent_interval()
            };
            self.consent_next_check = Some(now + interval);
        }
    }

    /// ICE-lite sends no checks; the peer's checks are its sign of life.
    pub(crate) fn lite_liveness(&mut self, now: Instant) {
        let Some(last) = self.consent_last_response else {
            return;
        };
        let silent = now.saturating_duration_since(last);
        if silent >= self.config.consent_timeout {
            self.fail(FailureReason::ConsentExpired);
        } else {
            self.consent_lost = silent >= self.config.disconnected_timeout;
        }
    }
}
