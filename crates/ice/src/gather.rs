//! Gathering: host candidates from the driver's sockets, server-reflexive
//! ones from STUN servers (RFC 8445 §5.1.1), trickled as found (RFC 8838).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use realtimer_net::{Transmit, Transport};
use realtimer_stun::attributes::Software;
use realtimer_stun::{Class, MessageEncoder, Method, OutgoingRequest};
use tracing::debug;

use crate::agent::{IceAgent, LocalCandidate, Purpose};
use crate::candidate::{candidate_priority, local_preference, Candidate, CandidateKind};
use crate::event::{IceEvent, IceGatheringState};

impl IceAgent {
    /// Starts gathering on these local socket addresses (one socket each,
    /// bound by the driver): host candidates at once, server-reflexive ones
    /// from the STUN servers (RFC 8445 §5.1.1), relayed ones from the TURN
    /// servers (only those under `relay_only`). Loopback and link-local
    /// addresses are skipped unless the configuration allows them.
    pub fn gather(&mut self, now: Instant, bases: &[SocketAddr]) {
        if self.closed {
            return;
        }
        if self.gathering_state != IceGatheringState::Gathering {
            self.gathering_state = IceGatheringState::Gathering;
            self.events
                .push_back(IceEvent::GatheringState(IceGatheringState::Gathering));
        }
        for &base in bases {
            if !self.usable_base(base) || self.bases.contains(&base) {
                continue;
            }
            self.bases.push(base);
            if self.config.lite {
                self.add_host_candidate(base);
                continue;
            }
            self.gather_relays(now, base);
            if self.config.relay_only {
                // Transport policy "relay": the base only reaches TURN servers.
                continue;
            }
            self.add_host_candidate(base);
            let servers: Vec<SocketAddr> = self
                .config
                .stun_servers
                .iter()
                .copied()
                .filter(|s| s.is_ipv4() == base.is_ipv4())
                .collect();
            for server in servers {
                self.send_gather_request(now, base, server);
            }
        }
        self.maybe_finish_gathering();
        self.update_state();
    }

    fn usable_base(&self, base: SocketAddr) -> bool {
        let ip = base.ip();
        if ip.is_unspecified() || ip.is_multicast() || base.port() == 0 {
            return false;
        }
        if ip.is_loopback() && !self.config.allow_loopback {
            return false;
        }
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        !link_local || self.config.allow_link_local
    }

    fn add_host_candidate(&mut self, base: SocketAddr) {
        let index = self.bases.len() - 1;
        let priority = candidate_priority(CandidateKind::Host, local_preference(&base, index), 1);
        let foundation = self.foundation(CandidateKind::Host, base.ip(), None);
        let mdns_name = self.config.mdns_host_candidates.then(|| {
            let name = format!("{}.local", random_uuid(&mut self.rng));
            self.events.push_back(IceEvent::RegisterMdnsName {
                name: name.clone(),
                address: base.ip(),
            });
            name
        });
        let candidate = Candidate {
            kind: CandidateKind::Host,
            address: base,
            priority,
            foundation,
            component: 1,
            related_address: None,
            mdns_name,
            relay_protocol: None,
        };
        self.add_local_candidate(candidate, base, true);
    }

    /// Adds a local candidate, pairs it with the remote ones, and signals it
    /// when `signal` (peer-reflexive ones are not signalled).
    pub(crate) fn add_local_candidate(
        &mut self,
        candidate: Candidate,
        base: SocketAddr,
        signal: bool,
    ) -> usize {
        if let Some(i) = self
            .local
            .iter()
            .position(|l| l.candidate.address == candidate.address && l.base == base)
        {
            return i;
        }
        if signal {
            debug!(kind = %candidate.kind, address = %candidate.address, "local candidate");
            self.events
                .push_back(IceEvent::LocalCandidate(candidate.clone()));
        }
        self.local.push(LocalCandidate { candidate, base });
        let index = self.local.len() - 1;
        // RFC 8445 §6.1.2.4: a reflexive candidate pairs like its base does,
        // so only host (and relayed) candidates form pairs.
        if matches!(
            self.local[index].candidate.kind,
            CandidateKind::Host | CandidateKind::Relayed
        ) {
            for remote in 0..self.remote.len() {
                self.add_pair(index, remote);
            }
        }
        index
    }

    /// RFC 8445 §5.1.1.3: same kind, base IP and server → same foundation.
    pub(crate) fn foundation(
        &mut self,
        kind: CandidateKind,
        base: IpAddr,
        server: Option<IpAddr>,
    ) -> String {
        self.foundation_via(kind, base, server, Transport::Udp)
    }

    /// [`IceAgent::foundation`] with the transport to the server, which
    /// RFC 8445 §5.1.1.3 also keys foundations on.
    pub(crate) fn foundation_via(
        &mut self,
        kind: CandidateKind,
        base: IpAddr,
        server: Option<IpAddr>,
        transport: Transport,
    ) -> String {
        let key = (kind, base, server, transport);
        let index = match self.foundations.iter().position(|f| *f == key) {
            Some(i) => i,
            None => {
                self.foundations.push(key);
                self.foundations.len() - 1
            }
        };
        (index + 1).to_string()
    }

    fn send_gather_request(&mut self, now: Instant, base: SocketAddr, server: SocketAddr) {
        let tid = self.transaction_id();
        self.buf.clear();
        let mut enc = MessageEncoder::new(&mut self.buf, Class::Request, Method::BINDING, tid);
        let _ = enc.add(&Software(concat!("realtimer ", env!("CARGO_PKG_VERSION"))));
        let _ = enc.add_fingerprint();
        let request = OutgoingRequest {
            transaction_id: tid,
            transmit: Transmit::udp(base, server, Bytes::copy_from_slice(&self.buf)),
        };
        let generation = self.generation;
        if self
            .transactions
            .start(now, request, Purpose::Gather { base, generation })
            .is_ok()
        {
            self.pending_gathers += 1;
        }
    }

    pub(crate) fn maybe_finish_gathering(&mut self) {
        if self.gathering_state == IceGatheringState::Gathering
            && self.pending_gathers == 0
            && !self.relays.any_requesting()
        {
            self.gathering_state = IceGatheringState::Complete;
            self.events.push_back(IceEvent::EndOfCandidates);
            self.events
                .push_back(IceEvent::GatheringState(IceGatheringState::Complete));
        }
    }

    /// A server- or peer-reflexive candidate for `mapped`, seen from `base`
    /// (RFC 8445 §5.1.1.1, §7.2.5.3.1).
    pub(crate) fn reflexive_candidate(
        &mut self,
        kind: CandidateKind,
        base: SocketAddr,
        mapped: SocketAddr,
        server: Option<IpAddr>,
    ) -> Candidate {
        let index = self.bases.iter().position(|b| *b == base).unwrap_or(0);
        Candidate {
            kind,
            address: mapped,
            priority: candidate_priority(kind, local_preference(&base, index), 1),
            foundation: self.foundation(kind, base.ip(), server),
            component: 1,
            related_address: Some(base),
            mdns_name: None,
            relay_protocol: None,
        }
    }

    pub(crate) fn add_server_reflexive(
        &mut self,
        base: SocketAddr,
        mapped: SocketAddr,
        server: SocketAddr,
    ) {
        if self.local.iter().any(|l| l.candidate.address == mapped) {
            return; // no NAT: the same as the host candidate
        }
        let mut candidate = self.reflexive_candidate(
            CandidateKind::ServerReflexive,
            base,
            mapped,
            Some(server.ip()),
        );
        if self.config.mdns_host_candidates {
            // Browsers hide the host address of reflexive candidates when
            // they hide host candidates behind mDNS.
            candidate.related_address = Some(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0));
        }
        self.add_local_candidate(candidate, base, true);
    }
}

/// A version-4 UUID (RFC 9562 §5.4) for mDNS names.
fn random_uuid(rng: &mut ChaCha8Rng) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}
