//! Agent configuration, with browser-like defaults.

use std::net::SocketAddr;
use std::time::Duration;

use realtimer_net::Transport;

/// How an [`crate::IceAgent`] behaves. `IceConfig::default()` is what a
/// browser does; every field can be changed.
/// Build it with struct update syntax: `IceConfig { lite: true, ..IceConfig::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceConfig {
    /// STUN servers to learn server-reflexive candidates from (resolved
    /// addresses; the driver resolves `stun:` URLs).
    pub stun_servers: Vec<SocketAddr>,
    /// ICE-lite (RFC 8445 §2.5): only host candidates, never sends checks,
    /// always controlled. For servers with public addresses.
    pub lite: bool,
    /// Use loopback addresses given to `gather` (off, as in browsers).
    pub allow_loopback: bool,
    /// Use IPv6 link-local addresses given to `gather` (off, as in browsers).
    pub allow_link_local: bool,
    /// Hide host addresses behind random `<uuid>.local` mDNS names, as
    /// browsers do; the agent asks the driver to publish each name.
    pub mdns_host_candidates: bool,
    /// Ta: the pacing of connectivity checks (RFC 8445 §14.2; 50 ms).
    pub check_interval: Duration,
    /// First retransmission timeout of a check; it doubles (RFC 8445 §14.3
    /// says at least 500 ms for a full checklist; browsers retry faster).
    pub check_rto: Duration,
    /// The retransmission timeout of a check stops doubling here.
    pub check_max_rto: Duration,
    /// How many times a check is sent before its pair fails.
    pub check_max_transmissions: u32,
    /// The controlling agent nominates the best valid pair once no better
    /// pair can still succeed, or this long after the first valid pair.
    pub nomination_delay: Duration,
    /// Gives up with [`crate::FailureReason::Timeout`] when no pair is valid
    /// this long after checks started.
    pub connect_timeout: Duration,
    /// RFC 7675 §5.1: consent checks every 4 to 6 seconds (this ±20 %).
    pub consent_interval: Duration,
    /// No consent response for this long: disconnected.
    pub disconnected_timeout: Duration,
    /// No consent response for this long: failed (RFC 7675 §5.1: 30 s).
    pub consent_timeout: Duration,
    /// While disconnected, consent checks go out this often to notice the
    /// path coming back.
    pub disconnected_check_interval: Duration,
    /// The most remote candidates kept (RFC 8445 §6.1.2.5 bounds the
    /// checklist; a peer cannot make us allocate without limit).
    pub max_remote_candidates: usize,
    /// The most candidate pairs (RFC 8445 §6.1.2.5 suggests 100).
    pub max_pairs: usize,
    /// TURN servers to allocate relayed candidates on (RFC 8445 §5.1.1.2,
    /// RFC 8656): over UDP, one allocation per server and base of its
    /// address family; over TCP or TLS, one per server, on a connection
    /// the driver opens when asked ([`crate::IceEvent::OpenTurnConnection`]).
    pub turn_servers: Vec<TurnServer>,
    /// ICE transport policy "relay" (W3C webrtc-pc §4.2.1, RFC 8829 §4.1.1):
    /// only relayed candidates are signalled and paired, so the peer never
    /// learns a host or server-reflexive address.
    pub relay_only: bool,
    /// Seed of the agent's random numbers (credentials, tie-breaker,
    /// transaction ids, consent jitter). Give a random one in production;
    /// a fixed one makes tests reproducible.
    pub seed: u64,
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            stun_servers: Vec::new(),
            lite: false,
            allow_loopback: false,
            allow_link_local: false,
            mdns_host_candidates: false,
            check_interval: Duration::from_millis(50),
            check_rto: Duration::from_millis(250),
            check_max_rto: Duration::from_millis(1500),
            check_max_transmissions: 9,
            nomination_delay: Duration::from_millis(300),
            connect_timeout: Duration::from_secs(30),
            consent_interval: Duration::from_secs(5),
            disconnected_timeout: Duration::from_secs(8),
            consent_timeout: Duration::from_secs(30),
            disconnected_check_interval: Duration::from_secs(1),
            max_remote_candidates: 100,
            max_pairs: 100,
            turn_servers: Vec::new(),
            relay_only: false,
            seed: 0,
        }
    }
}

/// RFC 8445 §5.1.2.1: relayed candidates reached over UDP are preferred
/// to TCP, then TLS (more overhead, head-of-line blocking); this much is
/// taken off their local preference.
pub(crate) fn preference_penalty(transport: Transport) -> u16 {
    match transport {
        Transport::Udp => 0,
        Transport::Tcp => 1 << 12,
        _ => 1 << 13,
    }
}

/// A TURN server with its long-term credentials (RFC 8489 §9.2). The
/// driver resolves `turn:` URLs to an address.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// The server's resolved address.
    pub address: SocketAddr,
    /// The long-term username (for coturn's REST scheme, `expiry:user`).
    pub username: String,
    /// The long-term password.
    pub password: String,
    /// How the agent reaches the server (RFC 8656 §3.1; `turn:` URLs with
    /// `?transport=`, `turns:` URLs, RFC 7065 §3.1): UDP from the base's
    /// socket, or a TCP or TLS connection. The relayed address is UDP in
    /// every case.
    pub transport: Transport,
}

impl TurnServer {
    /// A server reached over UDP.
    pub fn udp(address: SocketAddr, username: &str, password: &str) -> Self {
        TurnServer {
            address,
            username: username.to_owned(),
            password: password.to_owned(),
            transport: Transport::Udp,
        }
    }

    /// The same server over another transport.
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }
}

impl std::fmt::Debug for TurnServer {
    /// The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnServer")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}
