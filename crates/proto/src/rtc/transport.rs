//! DTLS and SCTP glue: starting DTLS in its role, the association, and
//! moving SCTP packets into DTLS records.

use std::net::SocketAddr;
use std::time::Instant;

use realtimer_datachannel::{DataChannels, DtlsRole, SctpConfig};
use realtimer_dtls::{Dtls, DtlsConfig, DtlsState, Role};
use tracing::{debug, trace};

use crate::channel::{ChannelRef, DataChannelState};
use crate::event::Transmit;

use super::phase::{DtlsPhase, Lifecycle};
use super::Rtc;

impl Rtc {
    /// Once both descriptions are set: DTLS (server side at once, client
    /// side when ICE has a pair) and, with a data section, the data
    /// channels.
    pub(super) fn start_transport(&mut self, now: Instant) {
        let (Some(role), Some(remote)) = (self.dtls_role, &self.jsep.remote) else {
            return;
        };
        if self.lifecycle == Lifecycle::Negotiating {
            self.lifecycle = Lifecycle::TransportStarted;
        }
        if !remote.data {
            if role == Role::Server {
                self.start_dtls(now);
            }
            return;
        }
        let peer_max = match remote.max_message_size {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        if let Some(channels) = &mut self.channels {
            channels
                .association_mut()
                .set_remote_max_message_size(peer_max);
            return;
        }
        let sctp = SctpConfig {
            remote_port: remote.sctp_port,
            ..self.config.sctp.clone()
        };
        let dc_role = match role {
            Role::Client => DtlsRole::Client,
            Role::Server => DtlsRole::Server,
        };
        let mut channels = DataChannels::new(sctp, dc_role, now);
        channels
            .association_mut()
            .set_remote_max_message_size(peer_max);
        // Channels made before the role was known get their ids now.
        let waiting: Vec<ChannelRef> = self
            .data
            .slots
            .iter()
            .filter(|(_, s)| s.state == DataChannelState::Connecting && s.info.id.is_none())
            .map(|(r, _)| *r)
            .chain(
                self.data
                    .slots
                    .iter()
                    .filter(|(_, s)| s.info.negotiated)
                    .map(|(r, _)| *r),
            )
            .collect();
        self.channels = Some(channels);
        for r in waiting {
            self.open_slot(now, r);
        }
        if role == Role::Server {
            self.start_dtls(now);
        }
    }

    pub(super) fn start_dtls(&mut self, now: Instant) {
        let DtlsPhase::Waiting(early) = &mut self.dtls else {
            return;
        };
        let (Some(role), Some(remote)) = (self.dtls_role, &self.jsep.remote) else {
            return;
        };
        let config = DtlsConfig::new(self.certificate.clone())
            .with_mtu(self.config.dtls_mtu)
            .with_srtp_profiles(super::rtp::SRTP_PROFILES.to_vec());
        match Dtls::new(config, role, remote.fingerprint.clone(), now) {
            Ok(mut dtls) => {
                debug!(?role, "DTLS started");
                for d in std::mem::take(early) {
                    let _ = dtls.handle_input(now, &d);
                }
                self.dtls = DtlsPhase::Running(Box::new(dtls));
            }
            Err(e) => {
                debug!("DTLS could not start: {e}");
                self.dtls = DtlsPhase::CouldNotStart;
            }
        }
    }

    /// Moves every SCTP packet into DTLS records.
    pub(super) fn flush_sctp(&mut self) {
        let (Some(c), Some(d)) = (&mut self.channels, self.dtls.running_mut()) else {
            return;
        };
        if d.state() != DtlsState::Connected {
            return;
        }
        while let Some(packet) = c.poll_transmit() {
            if let Err(e) = d.send(&packet) {
                trace!("SCTP packet not sent: {e}");
            }
        }
    }

    /// The next datagram to send: ICE first, then DTLS (with SCTP packets
    /// moved into DTLS one at a time, so no queue grows here).
    /// What a relayed candidate sends comes out wrapped for its TURN
    /// server (counted in the stats before wrapping, on its pair).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.last_words.pop_front() {
            return Some(t);
        }
        let selected = self.selected_pair();
        if let Some(t) = self.ice.poll_transmit() {
            self.traffic
                .count_sent(selected, t.source, t.destination, t.contents.len());
            return Some(t);
        }
        if let Some(t) = self.next_media_transmit() {
            if let Some(t) = self.count_and_wrap(selected, t) {
                return Some(t);
            }
        }
        loop {
            let t = self.next_dtls_transmit()?;
            if let Some(t) = self.count_and_wrap(selected, t) {
                return Some(t);
            }
        }
    }

    /// Counts a media or DTLS datagram on `selected` and wraps it for its
    /// TURN server when it leaves from a relayed candidate; `None` when
    /// that candidate's allocation is gone.
    fn count_and_wrap(
        &mut self,
        selected: Option<(SocketAddr, SocketAddr)>,
        t: Transmit,
    ) -> Option<Transmit> {
        self.traffic
            .count_sent(selected, t.source, t.destination, t.contents.len());
        self.ice.encapsulate(t)
    }

    pub(super) fn next_dtls_transmit(&mut self) -> Option<Transmit> {
        let route = self.selected_pair().or(self.dtls_route);
        let dtls = self.dtls.running_mut()?;
        let contents = match dtls.poll_transmit() {
            Some(d) => d,
            None => {
                if self.lifecycle == Lifecycle::Closed || dtls.state() != DtlsState::Connected {
                    return None;
                }
                let channels = self.channels.as_mut()?;
                loop {
                    let packet = channels.poll_transmit()?;
                    if let Err(e) = dtls.send(&packet) {
                        trace!("SCTP packet not sent: {e}");
                    }
                    if let Some(d) = dtls.poll_transmit() {
                        break d;
                    }
                }
            }
        };
        let Some((source, destination)) = route else {
            trace!("DTLS datagram held back: no route yet");
            return None;
        };
        Some(Transmit::udp(source, destination, contents))
    }
}
