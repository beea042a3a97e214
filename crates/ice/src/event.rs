//! What an agent tells its driver: states, candidates, the selected pair.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::candidate::Candidate;

/// RTCIceGatheringState (W3C webrtc-pc §4.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IceGatheringState {
    /// Nothing gathered yet.
    New,
    /// Candidates are being gathered.
    Gathering,
    /// Gathering finished; end-of-candidates was signalled.
    Complete,
}

/// RTCIceConnectionState (W3C webrtc-pc §4.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IceConnectionState {
    /// Waiting for remote candidates.
    New,
    /// Checking pairs, none valid yet.
    Checking,
    /// A pair is valid and in use; checks may go on.
    Connected,
    /// A pair is nominated, every check is done and both sides finished gathering.
    Completed,
    /// Consent is in doubt: no response for a while.
    Disconnected,
    /// No path, or consent expired; see [`crate::IceAgent::failure_reason`].
    Failed,
    /// The agent was closed.
    Closed,
}

impl IceConnectionState {
    /// The W3C string value.
    pub fn as_str(self) -> &'static str {
        match self {
            IceConnectionState::New => "new",
            IceConnectionState::Checking => "checking",
            IceConnectionState::Connected => "connected",
            IceConnectionState::Completed => "completed",
            IceConnectionState::Disconnected => "disconnected",
            IceConnectionState::Failed => "failed",
            IceConnectionState::Closed => "closed",
        }
    }
}

impl fmt::Display for IceConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the agent failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// Every candidate pair failed its checks after the peer's
    /// end-of-candidates.
    AllPairsFailed {
        /// How many pairs were tried.
        pairs: usize,
    },
    /// No pair became valid within `connect_timeout`.
    Timeout {
        /// How many pairs were tried.
        pairs: usize,
        /// How many remote candidates were known.
        remote_candidates: usize,
    },
    /// No consent response for `consent_timeout` (RFC 7675 §5.1).
    ConsentExpired,
    /// The peer answered a consent check with an authenticated error (RFC 7675 §5.1).
    ConsentRevoked,
    /// Gathering ended without a single local candidate, so no pair can
    /// ever form (RFC 8445 §6.1.2): under the "relay" policy, no TURN
    /// server gave us an allocation (none configured, unreachable, or it
    /// refused our credentials).
    NoLocalCandidates,
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::AllPairsFailed { pairs } => {
                write!(f, "all {pairs} candidate pairs failed their connectivity checks")
            }
            FailureReason::Timeout {
                pairs,
                remote_candidates,
            } => write!(
                f,
                "no candidate pair worked in time ({pairs} pairs, {remote_candidates} remote candidates)"
            ),
            FailureReason::ConsentExpired => f.write_str("consent expired: the peer stopped answering"),
            FailureReason::ConsentRevoked => f.write_str("the peer revoked consent"),
            FailureReason::NoLocalCandidates => f.write_str(
                "gathering found no local candidate (relay policy without a working TURN server?)",
            ),
        }
    }
}

/// The pair data flows on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedPair {
    /// The local candidate (send from its base, `local_base`).
    pub local: Candidate,
    /// The local socket address to send from; for a relayed local
    /// candidate, its relayed address: send with
    /// [`crate::IceAgent::send_data`], which wraps for the TURN server.
    pub local_base: SocketAddr,
    /// The remote candidate (send to its address).
    pub remote: Candidate,
    /// True once the pair is nominated (RFC 8445 §8).
    pub nominated: bool,
}

/// Something the driver should know or do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IceEvent {
    /// A new local candidate to signal to the peer (trickle, RFC 8838).
    LocalCandidate(Candidate),
    /// Gathering is over: signal end-of-candidates.
    EndOfCandidates,
    /// The gathering state changed.
    GatheringState(IceGatheringState),
    /// The connection state changed.
    ConnectionState(IceConnectionState),
    /// Data should now flow on this pair.
    SelectedPair(SelectedPair),
    /// A role conflict switched our role (RFC 8445 §7.3.1.1).
    RoleChanged {
        /// True when we are now controlling.
        controlling: bool,
    },
    /// Publish this mDNS name for this address (our host candidate).
    RegisterMdnsName {
        /// `<uuid>.local`.
        name: String,
        /// The address it stands for.
        address: IpAddr,
    },
    /// Resolve this remote mDNS name and call
    /// [`crate::IceAgent::resolve_mdns_name`] with the result.
    ResolveMdnsName {
        /// `<uuid>.local`.
        name: String,
    },
    /// Open a TCP (or TLS over TCP) connection to a TURN server, then call
    /// [`crate::IceAgent::turn_connected`] with its local address, or
    /// [`crate::IceAgent::turn_disconnected`] when it fails or later
    /// closes. The allocation lives on that connection (RFC 8656 §3.1):
    /// send it what [`crate::IceAgent::poll_turn_stream`] gives, and hand
    /// each message [`crate::TurnStreamDecoder`] cuts from it to
    /// [`crate::IceAgent::handle_receive`] (or `handle_receive_data`) as
    /// received from `address` on the connection's local address.
    OpenTurnConnection {
        /// Index of the server in [`crate::IceConfig::turn_servers`].
        server: usize,
        /// Where to connect.
        address: SocketAddr,
        /// TCP or TLS.
        transport: realtimer_net::Transport,
    },
}
