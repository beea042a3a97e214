//! Server settings with safe defaults.

use crate::auth_throttle::AuthThrottleLimits;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::auth::Credentials;
use crate::policy::PeerPolicy;

/// Everything a [`crate::Server`] needs; build with [`ServerConfig::new`]
/// and adjust the public fields.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Users, the REST secret and the realm.
    pub credentials: Credentials,
    /// Key of the nonce HMAC; the caller draws it from a secure random source.
    pub nonce_secret: [u8; 16],
    /// Relayed addresses are taken on this IPv4 address.
    pub relay_ipv4: Option<IpAddr>,
    /// Relayed addresses are taken on this IPv6 address
    /// (REQUESTED-ADDRESS-FAMILY IPv6, RFC 8656 §7.2).
    pub relay_ipv6: Option<IpAddr>,
    /// Ports relayed addresses come from (RFC 8656 §7.2 suggests 49152..=65535).
    pub port_range: RangeInclusive<u16>,
    /// Which peers may be reached.
    pub peer_policy: PeerPolicy,
    /// Quotas, limits and lifetimes.
    pub limits: Limits,
    /// Sent in SOFTWARE when set.
    pub software: Option<String>,
    /// Seeds port choice and Data indication transaction ids.
    pub seed: u64,
}

impl ServerConfig {
    /// Defaults with relays on 127.0.0.1 (set `relay_ipv4` for a real
    /// deployment), ports 49152..=65535, the default [`PeerPolicy`] and
    /// [`Limits`].
    pub fn new(credentials: Credentials, nonce_secret: [u8; 16]) -> Self {
        ServerConfig {
            credentials,
            nonce_secret,
            relay_ipv4: Some(IpAddr::from([127, 0, 0, 1])),
            relay_ipv6: None,
            port_range: 49152..=65535,
            peer_policy: PeerPolicy::default(),
            limits: Limits::default(),
            software: None,
            seed: u64::from_le_bytes([
                nonce_secret[0],
                nonce_secret[1],
                nonce_secret[2],
                nonce_secret[3],
                nonce_secret[4],
                nonce_secret[5],
                nonce_secret[6],
                nonce_secret[7],
            ]),
        }
    }
}

/// Quotas, limits and lifetimes. Every allocation a client can cause is
/// bounded by one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Allocations on the whole server (486 past it).
    pub total_allocations: usize,
    /// Allocations per account: a static user, or a REST user whatever its
    /// expiry (486 past it).
    pub allocations_per_user: usize,
    /// Allocations per client IP address, so one host cannot take the
    /// server's whole quota (486 past it).
    pub allocations_per_ip: usize,
    /// Permissions per allocation (508 past it).
    pub permissions_per_allocation: usize,
    /// Channels per allocation (508 past it; RFC 8656 allows 4096).
    pub channels_per_allocation: usize,
    /// Bytes per second relayed per allocation, both directions together;
    /// `None` for no cap. The bucket holds one second's worth.
    pub bandwidth_per_allocation: Option<u64>,
    /// RFC 8656 §7.2: the lifetime when the client asks for none or less (600 s).
    pub default_lifetime: Duration,
    /// The longest lifetime granted (3600 s).
    pub max_lifetime: Duration,
    /// RFC 8656 §9: permissions last 300 s.
    pub permission_lifetime: Duration,
    /// RFC 8656 §12: channel bindings last 600 s.
    pub channel_lifetime: Duration,
    /// How long a nonce stays valid before 438 (600 s, as coturn).
    pub nonce_lifetime: Duration,
    /// TCP connections with peers per TCP allocation (RFC 6062), pending
    /// or bound: past it Connect gets 508 and peers' connections are
    /// refused. Zero turns TCP allocations off (442).
    pub tcp_connections_per_allocation: usize,
    /// RFC 6062 §5.2, §5.3: a peer connection waits this long for the
    /// client's ConnectionBind before it is closed (30 s).
    pub connection_bind_timeout: Duration,
    /// A Connect's TCP connection to the peer must be up within this, or
    /// the client gets 447 (RFC 6062 §5.2).
    pub peer_connect_timeout: Duration,
    /// How fast one client address may fail authentication before its signed
    /// requests go unanswered for a while (10 at once, then one per 6 s).
    pub auth_throttle: AuthThrottleLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total_allocations: 10_000,
            allocations_per_user: 100,
            allocations_per_ip: 100,
            permissions_per_allocation: 64,
            channels_per_allocation: 64,
            bandwidth_per_allocation: Some(4_000_000),
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            permission_lifetime: Duration::from_secs(300),
            channel_lifetime: Duration::from_secs(600),
            nonce_lifetime: Duration::from_secs(600),
            tcp_connections_per_allocation: 16,
            connection_bind_timeout: Duration::from_secs(30),
            peer_connect_timeout: Duration::from_secs(10),
            auth_throttle: AuthThrottleLimits::default(),
        }
    }
}

/// Why a configuration cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither an IPv4 nor an IPv6 relay address.
    #[error("no relay address: set an IPv4 or IPv6 relay address")]
    NoRelayAddress,
    /// `relay_ipv4` holds an IPv6 address or the other way round.
    #[error("relay address {0} is of the wrong family")]
    RelayFamily(IpAddr),
    /// The relay address is unspecified (0.0.0.0 or ::).
    #[error("relay address {0} is unspecified; name the host's address")]
    UnspecifiedRelay(IpAddr),
    /// The port range is empty or contains port 0.
    #[error("port range {start}..={end} is empty or contains 0")]
    PortRange {
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
    },
    /// A limit of zero where at least one is needed.
    #[error("limit {0} must be at least 1")]
    ZeroLimit(&'static str),
}

impl ServerConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.relay_ipv4.is_none() && self.relay_ipv6.is_none() {
            return Err(ConfigError::NoRelayAddress);
        }
        for (ip, v4) in [(self.relay_ipv4, true), (self.relay_ipv6, false)] {
            if let Some(ip) = ip {
                if ip.is_ipv4() != v4 {
                    return Err(ConfigError::RelayFamily(ip));
                }
                if ip.is_unspecified() {
                    return Err(ConfigError::UnspecifiedRelay(ip));
                }
            }
        }
        let (start, end) = (*self.port_range.start(), *self.port_range.end());
        if start == 0 || start > end {
            return Err(ConfigError::PortRange { start, end });
        }
        let l = &self.limits;
        for (value, name) in [
            (l.total_allocations, "total_allocations"),
            (l.allocations_per_user, "allocations_per_user"),
            (l.allocations_per_ip, "allocations_per_ip"),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        Ok(())
    }
}
