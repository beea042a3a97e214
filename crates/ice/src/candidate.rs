//! Candidates: kinds, priorities, foundations (RFC 8445 §5.1), and their
//! SDP form (RFC 8839 §5.1).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use realtimer_net::Transport;
use realtimer_sdp::{Candidate as SdpCandidate, CandidateType};

/// How a candidate was obtained (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateKind {
    /// An address of a local interface.
    Host,
    /// The address a STUN server saw, outside a NAT.
    ServerReflexive,
    /// An address learned from a connectivity check.
    PeerReflexive,
    /// An address on a TURN server that relays for us.
    Relayed,
}

impl CandidateKind {
    /// RFC 8445 §5.1.2.2: recommended type preferences.
    pub fn type_preference(self) -> u32 {
        match self {
            CandidateKind::Host => 126,
            CandidateKind::PeerReflexive => 110,
            CandidateKind::ServerReflexive => 100,
            CandidateKind::Relayed => 0,
        }
    }

    fn sdp_type(self) -> CandidateType {
        match self {
            CandidateKind::Host => CandidateType::Host,
            CandidateKind::ServerReflexive => CandidateType::ServerReflexive,
            CandidateKind::PeerReflexive => CandidateType::PeerReflexive,
            CandidateKind::Relayed => CandidateType::Relay,
        }
    }
}

impl fmt::Display for CandidateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relayed => "relay",
        })
    }
}

/// RFC 8445 §5.1.2.1: priority = 2^24·type preference + 2^8·local
/// preference + (256 − component id).
pub fn candidate_priority(kind: CandidateKind, local_preference: u16, component: u16) -> u32 {
    (kind.type_preference() << 24)
        + (u32::from(local_preference) << 8)
        + (256 - u32::from(component.min(256)))
}

/// RFC 8421 §4 in spirit: prefer IPv6, then the order the interfaces were
/// given in.
pub(crate) fn local_preference(address: &SocketAddr, interface_index: usize) -> u16 {
    let family_base: u16 = if address.is_ipv6() { 65_535 } else { 32_767 };
    family_base.saturating_sub(interface_index.min(1000) as u16)
}

/// RFC 8445 §6.1.2.3: pair priority = 2^32·MIN(G,D) + 2·MAX(G,D) + (G>D ? 1 : 0),
/// G being the controlling agent's candidate priority, D the controlled's.
pub fn pair_priority(controlling: u32, controlled: u32) -> u64 {
    let (g, d) = (u64::from(controlling), u64::from(controlled));
    (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
}

/// One candidate, local or remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// How it was obtained.
    pub kind: CandidateKind,
    /// The transport address peers send to.
    pub address: SocketAddr,
    /// The priority (RFC 8445 §5.1.2).
    pub priority: u32,
    /// Equal for candidates of the same kind, base IP and server (RFC 8445 §5.1.1.3).
    pub foundation: String,
    /// The component: 1 (RTP and everything under rtcp-mux).
    pub component: u16,
    /// For reflexive and relayed candidates, the address they derive from.
    pub related_address: Option<SocketAddr>,
    /// A local host candidate's mDNS name, advertised instead of its address.
    pub mdns_name: Option<String>,
    /// For our relayed candidates, how the TURN server is reached (W3C
    /// webrtc-stats `relayProtocol`); `None` otherwise.
    pub relay_protocol: Option<Transport>,
}

/// Why a candidate from the peer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CandidateError {
    /// Only UDP candidates are used for now (RFC 6544 TCP candidates are not).
    #[error("transport {0:?} is not supported (only UDP)")]
    UnsupportedTransport(String),
    /// The address is neither an IP literal nor an mDNS `.local` name.
    #[error("address {0:?} is not an IP address or an mDNS .local name")]
    BadAddress(String),
    /// Port 0 cannot be reached.
    #[error("port 0 cannot be reached")]
    ZeroPort,
}

impl Candidate {
    /// The `candidate:` value for SDP or trickle; a host candidate with an
    /// mDNS name shows the name instead of its address.
    pub fn to_sdp(&self, ufrag: Option<&str>) -> SdpCandidate {
        let address = match &self.mdns_name {
            Some(name) => name.clone(),
            None => self.address.ip().to_string(),
        };
        SdpCandidate {
            foundation: self.foundation.clone(),
            component: self.component,
            transport: "udp".to_owned(),
            priority: self.priority,
            address,
            port: self.address.port(),
            typ: self.kind.sdp_type(),
            related_address: self.related_address.map(|r| r.ip().to_string()),
            related_port: self.related_address.map(|r| r.port()),
            tcp_type: None,
            generation: Some(0),
            ufrag: ufrag.map(str::to_owned),
            network_id: None,
            network_cost: None,
            extensions: Vec::new(),
        }
    }

    /// Reads a remote candidate whose address is `ip` (see [`remote_address`]).
    pub(crate) fn from_sdp(sdp: &SdpCandidate, ip: IpAddr) -> Result<Self, CandidateError> {
        if !sdp.transport.eq_ignore_ascii_case("udp") {
            return Err(CandidateError::UnsupportedTransport(sdp.transport.clone()));
        }
        if sdp.port == 0 {
            return Err(CandidateError::ZeroPort);
        }
        let kind = match sdp.typ {
            CandidateType::Host => CandidateKind::Host,
            CandidateType::ServerReflexive => CandidateKind::ServerReflexive,
            CandidateType::PeerReflexive => CandidateKind::PeerReflexive,
            CandidateType::Relay => CandidateKind::Relayed,
            // An unknown type is ranked like a relay: lowest.
            _ => CandidateKind::Relayed,
        };
        let related_address = match (&sdp.related_address, sdp.related_port) {
            (Some(a), Some(p)) => a.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, p)),
            _ => None,
        };
        Ok(Candidate {
            kind,
            address: SocketAddr::new(ip, sdp.port),
            priority: sdp.priority,
            foundation: sdp.foundation.clone(),
            component: sdp.component,
            related_address,
            mdns_name: None,
            relay_protocol: None,
        })
    }
}

/// Where a remote candidate's address stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RemoteAddress {
    /// An IP literal.
    Ip(IpAddr),
    /// An mDNS name to resolve first.
    Mdns(String),
}

pub(crate) fn remote_address(sdp: &SdpCandidate) -> Result<RemoteAddress, CandidateError> {
    if let Ok(ip) = sdp.address.parse::<IpAddr>() {
        return Ok(RemoteAddress::Ip(ip));
    }
    if sdp.is_mdns() {
        return Ok(RemoteAddress::Mdns(sdp.address.to_ascii_lowercase()));
    }
    Err(CandidateError::BadAddress(sdp.address.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_rfc_8445() {
        // Host, local preference 65535, component 1: 2^24·126 + 2^8·65535 + 255.
        assert_eq!(
            candidate_priority(CandidateKind::Host, 65535, 1),
            2_130_706_431
        );
        assert!(
            candidate_priority(CandidateKind::PeerReflexive, 1, 1)
                > candidate_priority(CandidateKind::ServerReflexive, 65535, 1)
        );
        assert_eq!(pair_priority(2, 1), (1 << 32) + 4 + 1);
        assert_eq!(pair_priority(1, 2), (1 << 32) + 4);
        // Symmetric in everything but the tie-break bit.
        assert_eq!(pair_priority(7, 9) + 1, pair_priority(9, 7));
    }
}
