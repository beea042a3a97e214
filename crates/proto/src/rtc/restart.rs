//! ICE restarts (RFC 8445 §9, RFC 8829 §3.5.1 and §5.2.1) and the
//! negotiation-needed flag (W3C webrtc-pc §4.7.3).
//!
//! A local restart: `restart_ice` sets a request and fires
//! `negotiationneeded`; the next `create_offer` writes new credentials;
//! `set_local_description` of that offer restarts the ICE agent with them
//! (the old pair keeps carrying data until checks select a new one); the
//! answer's credentials and candidates then go to the agent.
//!
//! A remote restart: a remote offer with new credentials restarts our agent
//! with credentials of our own (the answer carries them) and hands it the
//! peer's new ones.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use realtimer_ice::IceCredentials;
use tracing::debug;

use crate::error::RtcError;
use crate::event::RtcEvent;
use crate::jsep::{RemoteTransport, SignalingState};

use super::phase::RestartRequest;
use super::Rtc;

/// `ice-char` (RFC 8839 §5.4).
const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl Rtc {
    /// restartIce (W3C webrtc-pc §4.4.1.6): the next offer carries new ICE
    /// credentials; `negotiationneeded` fires (now if signaling is stable,
    /// else once it is).
    pub fn restart_ice(&mut self) -> Result<(), RtcError> {
        self.check_open()?;
        self.jsep
            .restart_request
            .get_or_insert_with(RestartRequest::default);
        self.update_negotiation_needed();
        Ok(())
    }

    /// setConfiguration's TURN servers (W3C webrtc-pc §4.4.1.6): the next
    /// ICE restart (ours, [`Rtc::restart_ice`], or the peer's) releases the
    /// allocations on the current servers and allocates on these; see
    /// [`realtimer_ice::IceAgent::set_turn_servers`] (which gives the
    /// index the first of them will have).
    pub fn set_turn_servers(&mut self, servers: Vec<realtimer_ice::TurnServer>) -> usize {
        self.ice.set_turn_servers(servers)
    }

    /// Fresh credentials (ufrag of 8, pwd of 24 `ice-char`s; RFC 8839 §5.4
    /// asks for at least 4 and 22), from the connection's seed.
    pub(super) fn new_credentials(&mut self) -> IceCredentials {
        self.jsep.credential_generation += 1;
        let mut rng = StdRng::seed_from_u64(
            self.config.seed
                ^ self
                    .jsep
                    .credential_generation
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let mut text = |n: usize| -> String {
            (0..n)
                .map(|_| char::from(ICE_CHARS[rng.random_range(0..ICE_CHARS.len())]))
                .collect()
        };
        IceCredentials {
            ufrag: text(8),
            pwd: text(24),
        }
    }

    /// The credentials `create_offer` writes: new ones while a restart is
    /// requested (the same ones for every offer until one is applied).
    pub(super) fn credentials_for_offer(&mut self) -> IceCredentials {
        if let Some(request) = &self.jsep.restart_request {
            if let Some(c) = &request.offered {
                return c.clone();
            }
            let c = self.new_credentials();
            self.jsep.restart_request = Some(RestartRequest {
                offered: Some(c.clone()),
            });
            return c;
        }
        IceCredentials {
            ufrag: self.local.ufrag.clone(),
            pwd: self.local.pwd.clone(),
        }
    }

    /// setLocalDescription(offer) with the restart credentials: the agent
    /// restarts with them.
    pub(super) fn apply_local_restart(&mut self, now: Instant, credentials: IceCredentials) {
        debug!(ufrag = %credentials.ufrag, "ICE restart (local)");
        self.ice.restart_with_credentials(now, credentials.clone());
        self.local.ufrag = credentials.ufrag;
        self.local.pwd = credentials.pwd;
        self.jsep.restart_request = None;
        self.jsep.awaiting_restart_answer = true;
    }

    /// A remote offer with new credentials: we restart too, with our own new
    /// credentials (RFC 8829 §5.3.1: the answer to a restart has new ones).
    pub(super) fn apply_remote_restart(&mut self, now: Instant) {
        let credentials = self.new_credentials();
        debug!(ufrag = %credentials.ufrag, "ICE restart (by the peer)");
        self.ice.restart_with_credentials(now, credentials.clone());
        self.local.ufrag = credentials.ufrag;
        self.local.pwd = credentials.pwd;
        // A restart of our own is done by this one.
        self.jsep.restart_request = None;
    }

    /// Hands the peer's credentials and candidates to the agent.
    pub(super) fn give_remote_to_ice(&mut self, now: Instant, remote: &RemoteTransport) {
        self.ice.set_remote_credentials(IceCredentials {
            ufrag: remote.ufrag.clone(),
            pwd: remote.pwd.clone(),
        });
        for c in &remote.candidates {
            if let Err(e) = self.ice.add_remote_candidate(now, c) {
                debug!("remote SDP candidate ignored: {e}");
            }
        }
        if remote.end_of_candidates {
            self.ice.add_remote_end_of_candidates();
        }
    }

    /// W3C webrtc-pc §4.7.3 "update the negotiation-needed flag": only in
    /// stable; needed for a restart request, for channels before any
    /// data section was negotiated, or for transceivers not negotiated as
    /// they are.
    pub(super) fn update_negotiation_needed(&mut self) {
        if self.is_closed() || self.jsep.signaling != SignalingState::Stable {
            return;
        }
        let needed = self.jsep.restart_request.is_some()
            || (self.channels.is_none() && !self.data.slots.is_empty())
            || self.media_negotiation_needed();
        if !needed {
            self.jsep.negotiation_needed = false;
        } else if !self.jsep.negotiation_needed {
            self.jsep.negotiation_needed = true;
            self.events.push_back(RtcEvent::NegotiationNeeded);
        }
    }
}
