//! JSEP (RFC 8829): descriptions, the signaling state, remote transport
//! parameters and trickled candidates.

use std::net::IpAddr;
use std::time::Instant;

use realtimer_dtls::Role;
use realtimer_ice::{IceAgent, IceError};
use realtimer_sdp::Setup;
use tracing::debug;

use crate::error::{
    ArgumentError, JsepCall, ModificationError, OperationError, RtcError, SdpError, StateError,
};
use crate::event::RtcEvent;
use crate::jsep::{
    self, IceCandidateInit, RemoteTransport, SdpType, SessionDescription, SignalingState,
};

use super::phase::{Gathering, RestartRequest};
use super::Rtc;

/// RFC 8829 §3.2: `call` is not allowed in signaling state `state`.
fn signaling(call: JsepCall, state: SignalingState) -> RtcError {
    StateError::Signaling { call, state }.into()
}

/// The offer/answer state (RFC 8829 §3.2, §4.1): the signaling state,
/// the descriptions, what the peer's transport is, and the flags that make
/// the next offer (negotiation-needed, ICE restart).
#[derive(Debug)]
pub(super) struct Negotiation {
    pub(super) signaling: SignalingState,
    pub(super) session_id: u64,
    pub(super) session_version: u64,
    pub(super) last_offer: Option<String>,
    pub(super) last_answer: Option<String>,
    pub(super) pending_local: Option<crate::jsep::SessionDescription>,
    pub(super) current_local: Option<crate::jsep::SessionDescription>,
    pub(super) pending_remote: Option<crate::jsep::SessionDescription>,
    pub(super) current_remote: Option<crate::jsep::SessionDescription>,
    pub(super) remote_offer: Option<realtimer_sdp::SessionDescription>,
    pub(super) remote: Option<crate::jsep::RemoteTransport>,
    /// Our `a=mid` and m-line index for candidates.
    pub(super) local_mid: (String, u16),
    /// The `[[NegotiationNeeded]]` flag (W3C webrtc-pc §4.7.3): set when
    /// `negotiationneeded` fired, cleared when signaling leaves stable.
    pub(super) negotiation_needed: bool,
    /// `restartIce()` was called and no applied local offer carried new
    /// credentials yet.
    pub(super) restart_request: Option<RestartRequest>,
    /// The applied local offer restarted ICE: the answer's credentials
    /// (and candidates) go to the agent even if they look unchanged.
    pub(super) awaiting_restart_answer: bool,
    /// How many credentials we made (seeds the next ones).
    pub(super) credential_generation: u64,
}

impl Rtc {
    pub(super) fn check_open(&self) -> Result<(), RtcError> {
        if self.is_closed() {
            Err(StateError::Closed.into())
        } else {
            Ok(())
        }
    }

    /// createOffer (RFC 8829 §5.2): the current m-lines in place, then new
    /// transceivers' sections, then a data section if needed; all bundled.
    pub fn create_offer(&mut self) -> Result<SessionDescription, RtcError> {
        self.check_open()?;
        match self.jsep.signaling {
            SignalingState::Stable | SignalingState::HaveLocalOffer => {}
            state => return Err(signaling(JsepCall::CreateOffer, state)),
        }
        self.jsep.session_version += 1;
        let credentials = self.credentials_for_offer();
        let mut local = self.local.clone();
        local.ufrag = credentials.ufrag;
        local.pwd = credentials.pwd;
        let lines = self.offer_m_lines();
        let sdp = self.write_m_lines(&local, Setup::ActPass, &lines);
        self.jsep.last_offer = Some(sdp.clone());
        Ok(SessionDescription::offer(sdp))
    }

    /// createAnswer (RFC 8829 §5.3): our data section answering the
    /// offer's, an audio or video section for each one we have codecs
    /// for, every other section rejected.
    pub fn create_answer(&mut self) -> Result<SessionDescription, RtcError> {
        self.check_open()?;
        match self.jsep.signaling {
            SignalingState::HaveRemoteOffer | SignalingState::HaveLocalPranswer => {}
            state => return Err(signaling(JsepCall::CreateAnswer, state)),
        }
        let (Some(_), Some(remote)) = (&self.jsep.remote_offer, &self.jsep.remote) else {
            return Err(StateError::NoRemoteOffer.into());
        };
        let setup = match (self.dtls_role, remote.setup) {
            (Some(Role::Client), _) => Setup::Active,
            (Some(Role::Server), _) => Setup::Passive,
            // RFC 8842 §5.3: answer actpass with active (browsers do).
            (None, Setup::Active) => Setup::Passive,
            (None, _) => Setup::Active,
        };
        self.jsep.session_version += 1;
        let sdp = self.write_m_lines(&self.local, setup, &self.media.m_lines);
        self.jsep.last_answer = Some(sdp.clone());
        Ok(SessionDescription::answer(sdp))
    }

    pub(super) fn set_signaling(&mut self, state: SignalingState) {
        if self.jsep.signaling != state {
            self.jsep.signaling = state;
            if state != SignalingState::Stable {
                // Re-evaluated (and fired again if still needed) once
                // stable again.
                self.jsep.negotiation_needed = false;
            }
            self.events.push_back(RtcEvent::SignalingState(state));
        }
    }

    /// setLocalDescription. An empty `sdp` creates the offer or answer
    /// implicitly (W3C webrtc-pc §4.4.1.5).
    pub fn set_local_description(
        &mut self,
        now: Instant,
        desc: SessionDescription,
    ) -> Result<(), RtcError> {
        self.check_open()?;
        let mut desc = desc;
        match desc.sdp_type {
            SdpType::Rollback => return self.rollback_local(now),
            SdpType::Offer => {
                if !matches!(
                    self.jsep.signaling,
                    SignalingState::Stable | SignalingState::HaveLocalOffer
                ) {
                    return Err(signaling(
                        JsepCall::SetLocalDescription(SdpType::Offer),
                        self.jsep.signaling,
                    ));
                }
                if desc.sdp.is_empty() {
                    desc.sdp = match &self.jsep.last_offer {
                        Some(s) => s.clone(),
                        None => self.create_offer()?.sdp,
                    };
                }
                let (ufrag, pwd, _) = jsep::local_fields(&desc.sdp)?;
                let restart = self
                    .jsep
                    .restart_request
                    .as_ref()
                    .and_then(|r| r.offered.clone())
                    .filter(|c| c.ufrag == ufrag && c.pwd == pwd);
                if restart.is_none() && (ufrag != self.local.ufrag || pwd != self.local.pwd) {
                    return Err(ModificationError::IceCredentials(SdpType::Offer).into());
                }
                self.save_media();
                self.apply_local_m_lines(true);
                // Candidates go with the BUNDLE-tagged (first) section.
                if let Some(mid) = self
                    .media
                    .m_lines
                    .first()
                    .and_then(super::transceivers::MLine::mid)
                {
                    self.jsep.local_mid = (mid.to_owned(), 0);
                }
                self.jsep.pending_local = Some(desc);
                self.set_signaling(SignalingState::HaveLocalOffer);
                if let Some(credentials) = restart {
                    self.apply_local_restart(now, credentials);
                }
            }
            SdpType::Answer | SdpType::Pranswer => {
                if !matches!(
                    self.jsep.signaling,
                    SignalingState::HaveRemoteOffer | SignalingState::HaveLocalPranswer
                ) {
                    return Err(signaling(
                        JsepCall::SetLocalDescription(desc.sdp_type),
                        self.jsep.signaling,
                    ));
                }
                if desc.sdp.is_empty() {
                    desc.sdp = match &self.jsep.last_answer {
                        Some(s) => s.clone(),
                        None => self.create_answer()?.sdp,
                    };
                }
                let (ufrag, pwd, setup) = jsep::local_fields(&desc.sdp)?;
                if ufrag != self.local.ufrag || pwd != self.local.pwd {
                    return Err(ModificationError::IceCredentials(desc.sdp_type).into());
                }
                let role = match setup {
                    Setup::Active => Role::Client,
                    Setup::Passive => Role::Server,
                    _ => return Err(ModificationError::AnswerSetup { setup }.into()),
                };
                if self.dtls_role.is_some_and(|r| r != role) {
                    return Err(ModificationError::DtlsRole.into());
                }
                self.dtls_role = Some(role);
                self.apply_local_m_lines(false);
                self.forget_saved_media();
                if let Some(r) = &self.jsep.remote {
                    self.jsep.local_mid = (r.mid.clone(), r.m_line_index);
                }
                if desc.sdp_type == SdpType::Answer {
                    self.jsep.current_local = Some(desc);
                    self.jsep.pending_local = None;
                    self.jsep.current_remote = self
                        .jsep
                        .pending_remote
                        .take()
                        .or(self.jsep.current_remote.take());
                    self.set_signaling(SignalingState::Stable);
                } else {
                    self.jsep.pending_local = Some(desc);
                    self.set_signaling(SignalingState::HaveLocalPranswer);
                }
                self.start_transport(now);
            }
        }
        self.start_gathering(now);
        self.release_held_candidates();
        self.update_negotiation_needed();
        self.process(now);
        Ok(())
    }

    pub(super) fn rollback_local(&mut self, now: Instant) -> Result<(), RtcError> {
        if self.jsep.signaling != SignalingState::HaveLocalOffer {
            return Err(signaling(
                JsepCall::SetLocalDescription(SdpType::Rollback),
                self.jsep.signaling,
            ));
        }
        self.jsep.pending_local = None;
        self.restore_media();
        self.set_signaling(SignalingState::Stable);
        if self.jsep.awaiting_restart_answer {
            // The agent restarted with the offer's credentials: give it the
            // peer's current ones back and ask for the restart again (the
            // peer never saw our new credentials).
            self.jsep.awaiting_restart_answer = false;
            if let Some(remote) = self.jsep.remote.clone() {
                self.give_remote_to_ice(now, &remote);
            }
            self.jsep.restart_request = Some(RestartRequest::default());
        }
        self.update_negotiation_needed();
        self.process(now);
        Ok(())
    }

    pub(super) fn start_gathering(&mut self, now: Instant) {
        if matches!(self.gathering, Gathering::NotStarted) {
            self.gathering = Gathering::Started;
            let bases = self.bases.clone();
            self.ice.gather(now, &bases);
        }
    }

    /// setRemoteDescription.
    pub fn set_remote_description(
        &mut self,
        now: Instant,
        desc: SessionDescription,
    ) -> Result<(), RtcError> {
        self.check_open()?;
        match desc.sdp_type {
            SdpType::Rollback => return self.rollback_remote(now),
            SdpType::Offer => {
                if !matches!(
                    self.jsep.signaling,
                    SignalingState::Stable | SignalingState::HaveRemoteOffer
                ) {
                    return Err(signaling(
                        JsepCall::SetRemoteDescription(SdpType::Offer),
                        self.jsep.signaling,
                    ));
                }
                let (parsed, remote) = jsep::parse_remote(&desc.sdp)?;
                self.apply_remote(now, remote, true)?;
                if self.jsep.current_remote.is_none() && !self.ice_is_lite_peer() {
                    self.ice.set_controlling(false);
                }
                self.save_media();
                self.apply_remote_m_lines(&parsed, true);
                self.jsep.remote_offer = Some(parsed);
                self.jsep.last_answer = None;
                self.jsep.pending_remote = Some(desc);
                self.set_signaling(SignalingState::HaveRemoteOffer);
            }
            SdpType::Answer | SdpType::Pranswer => {
                if !matches!(
                    self.jsep.signaling,
                    SignalingState::HaveLocalOffer | SignalingState::HaveRemotePranswer
                ) {
                    return Err(signaling(
                        JsepCall::SetRemoteDescription(desc.sdp_type),
                        self.jsep.signaling,
                    ));
                }
                let (parsed, remote) = jsep::parse_remote(&desc.sdp)?;
                self.check_answer_m_lines(&parsed)?;
                let role = match remote.setup {
                    Setup::Active => Role::Server,
                    Setup::Passive => Role::Client,
                    _ => {
                        return Err(SdpError::AnswerSetup {
                            setup: remote.setup,
                        }
                        .into())
                    }
                };
                if self.dtls_role.is_some_and(|r| r != role) {
                    return Err(SdpError::AnswerChangesDtlsRole.into());
                }
                self.apply_remote(now, remote, false)?;
                self.apply_remote_m_lines(&parsed, false);
                self.forget_saved_media();
                self.dtls_role = Some(role);
                if desc.sdp_type == SdpType::Answer {
                    self.jsep.current_remote = Some(desc);
                    self.jsep.pending_remote = None;
                    self.jsep.current_local = self
                        .jsep
                        .pending_local
                        .take()
                        .or(self.jsep.current_local.take());
                    self.set_signaling(SignalingState::Stable);
                } else {
                    self.jsep.pending_remote = Some(desc);
                    self.set_signaling(SignalingState::HaveRemotePranswer);
                }
                self.start_transport(now);
            }
        }
        self.update_negotiation_needed();
        self.process(now);
        Ok(())
    }

    pub(super) fn ice_is_lite_peer(&self) -> bool {
        self.jsep.remote.as_ref().is_some_and(|r| r.ice_lite) && !self.config.ice.lite
    }

    pub(super) fn rollback_remote(&mut self, now: Instant) -> Result<(), RtcError> {
        if self.jsep.signaling != SignalingState::HaveRemoteOffer {
            return Err(signaling(
                JsepCall::SetRemoteDescription(SdpType::Rollback),
                self.jsep.signaling,
            ));
        }
        if self.jsep.current_remote.is_none() {
            // First negotiation: nothing ran on the peer's parameters yet.
            // The same seed gives the same credentials.
            self.ice = IceAgent::new(self.config.ice.clone(), true);
            self.jsep.remote = None;
            if !matches!(self.gathering, Gathering::NotStarted) {
                let bases = self.bases.clone();
                self.ice.gather(now, &bases);
            }
        }
        self.jsep.remote_offer = None;
        self.jsep.pending_remote = None;
        self.restore_media();
        self.set_signaling(SignalingState::Stable);
        self.update_negotiation_needed();
        self.process(now);
        Ok(())
    }

    /// Hands the peer's transport to ICE (first time), restarts ICE when a
    /// remote offer brings new credentials, gives the agent an answer's
    /// credentials after our restart, and refuses a changed certificate.
    pub(super) fn apply_remote(
        &mut self,
        now: Instant,
        remote: RemoteTransport,
        is_offer: bool,
    ) -> Result<(), RtcError> {
        if let Some(old) = &self.jsep.remote {
            if old.fingerprint != remote.fingerprint {
                return Err(OperationError::FingerprintChanged.into());
            }
            let changed = old.ufrag != remote.ufrag || old.pwd != remote.pwd;
            if changed && is_offer {
                self.apply_remote_restart(now);
                self.give_remote_to_ice(now, &remote);
            } else if changed || (!is_offer && self.jsep.awaiting_restart_answer) {
                self.give_remote_to_ice(now, &remote);
            }
            if !is_offer {
                self.jsep.awaiting_restart_answer = false;
            }
            self.jsep.remote = Some(remote);
            return Ok(());
        }
        if remote.ice_lite && !self.config.ice.lite {
            // RFC 8445 §6.1.1: a full agent is controlling against a lite one.
            self.ice.set_controlling(true);
        }
        self.give_remote_to_ice(now, &remote);
        self.jsep.remote = Some(remote);
        Ok(())
    }

    /// addIceCandidate: a trickled candidate, or `None` (or an empty
    /// candidate string) for end-of-candidates (RFC 8838 §4.4).
    pub fn add_ice_candidate(
        &mut self,
        now: Instant,
        candidate: Option<&IceCandidateInit>,
    ) -> Result<(), RtcError> {
        self.check_open()?;
        let Some(remote) = &self.jsep.remote else {
            return Err(StateError::NoRemoteDescription.into());
        };
        let Some(init) = candidate.filter(|c| !c.candidate.is_empty()) else {
            self.ice.add_remote_end_of_candidates();
            self.process(now);
            return Ok(());
        };
        match (&init.sdp_mid, init.sdp_m_line_index) {
            (Some(mid), _) if !remote.mids.contains(mid) => {
                return Err(OperationError::UnknownMid {
                    mid: mid.to_owned(),
                }
                .into())
            }
            (None, Some(i)) if usize::from(i) >= remote.mids.len() => {
                return Err(OperationError::NoSection {
                    index: i,
                    sections: remote.mids.len(),
                }
                .into())
            }
            (None, None) => return Err(ArgumentError::CandidateWithoutSection.into()),
            _ => {}
        }
        let parsed =
            realtimer_sdp::Candidate::parse(&init.candidate).map_err(OperationError::Candidate)?;
        match self.ice.add_remote_candidate(now, &parsed) {
            Ok(()) => {}
            // Browsers skip candidates they cannot use (TCP, for one).
            Err(IceError::Candidate(e)) => debug!("remote candidate skipped: {e}"),
            Err(e) => return Err(OperationError::Ice(e).into()),
        }
        self.process(now);
        Ok(())
    }

    /// The answer to [`RtcEvent::ResolveMdnsName`]; `None` when it did not resolve.
    pub fn resolve_mdns_name(&mut self, now: Instant, name: &str, address: Option<IpAddr>) {
        self.ice.resolve_mdns_name(now, name, address);
        self.process(now);
    }
}
