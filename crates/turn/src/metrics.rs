//! Counters the server keeps, and their Prometheus text form.

use std::fmt::Write;

use crate::error::RequestError;

/// Why a request was refused for its credentials (a label of
/// `realtimer_turn_auth_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// No MESSAGE-INTEGRITY: the first 401 of every client, which then
    /// retries with the realm and nonce (RFC 8489 §9.2.4).
    Challenge,
    /// The nonce expired or was not ours (438).
    StaleNonce,
    /// No such user, or a malformed REST username.
    UnknownUser,
    /// A REST username whose expiry has passed.
    Expired,
    /// MESSAGE-INTEGRITY did not match: a wrong password.
    BadIntegrity,
    /// Another user than the allocation's (441).
    WrongCredentials,
    /// Refused unchecked: the address failed too often lately.
    Throttled,
}

impl AuthFailure {
    const ALL: [AuthFailure; 7] = [
        AuthFailure::Challenge,
        AuthFailure::StaleNonce,
        AuthFailure::UnknownUser,
        AuthFailure::Expired,
        AuthFailure::BadIntegrity,
        AuthFailure::WrongCredentials,
        AuthFailure::Throttled,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            AuthFailure::Challenge => "challenge",
            AuthFailure::StaleNonce => "stale_nonce",
            AuthFailure::UnknownUser => "unknown_user",
            AuthFailure::Expired => "expired",
            AuthFailure::BadIntegrity => "bad_integrity",
            AuthFailure::WrongCredentials => "wrong_credentials",
            AuthFailure::Throttled => "throttled",
        }
    }

    fn of(error: RequestError) -> Option<Self> {
        Some(match error {
            RequestError::Unauthenticated => AuthFailure::Challenge,
            RequestError::StaleNonce => AuthFailure::StaleNonce,
            RequestError::UnknownUser => AuthFailure::UnknownUser,
            RequestError::CredentialExpired => AuthFailure::Expired,
            RequestError::IntegrityMismatch => AuthFailure::BadIntegrity,
            RequestError::WrongCredentials => AuthFailure::WrongCredentials,
            RequestError::Throttled => AuthFailure::Throttled,
            _ => return None,
        })
    }
}

/// Which quota refused an Allocate (a label of
/// `realtimer_turn_quota_rejections_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Quota {
    /// Allocations per user.
    User,
    /// Allocations per client IP.
    Ip,
    /// Allocations on the whole server.
    Total,
}

impl Quota {
    const ALL: [Quota; 3] = [Quota::User, Quota::Ip, Quota::Total];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Quota::User => "user",
            Quota::Ip => "ip",
            Quota::Total => "total",
        }
    }

    fn of(error: RequestError) -> Option<Self> {
        Some(match error {
            RequestError::UserQuota => Quota::User,
            RequestError::SourceQuota => Quota::Ip,
            RequestError::TotalQuota => Quota::Total,
            _ => return None,
        })
    }
}

/// Gauges the server computes when asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Allocations now open.
    pub allocations: usize,
    /// Relay ports now bound or being bound.
    pub relay_ports: usize,
    /// Permissions now installed, all allocations together.
    pub permissions: usize,
    /// Channels now bound, all allocations together.
    pub channels: usize,
    /// TCP allocations' peer connections (RFC 6062), pending or bound.
    pub tcp_connections: usize,
    /// Client addresses the failed-authentication throttle tracks (bounded
    /// by [`crate::AuthThrottleLimits::max_addresses`]).
    pub auth_throttle_addresses: usize,
}

/// Monotonic counters since the server started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Allocations created.
    pub allocations_created: u64,
    /// Allocations that expired or were deleted by a Refresh with lifetime 0.
    pub allocations_closed: u64,
    /// Requests refused for their credentials (401, 438, 441), all reasons.
    pub auth_failures: u64,
    /// Allocate requests refused with 486 (any quota).
    pub quota_rejections: u64,
    /// [`Metrics::auth_failures`] by reason, in `AuthFailure::ALL` order.
    auth_by_reason: [u64; 7],
    /// [`Metrics::quota_rejections`] by quota, in `Quota::ALL` order.
    quota_by_kind: [u64; 3],
    /// Peer addresses refused by policy (403).
    pub forbidden_peers: u64,
    /// Other error responses.
    pub other_errors: u64,
    /// Binding requests answered.
    pub binding_requests: u64,
    /// Datagrams relayed from clients to peers, and their payload bytes.
    pub packets_to_peers: u64,
    /// Payload bytes relayed from clients to peers.
    pub bytes_to_peers: u64,
    /// Datagrams relayed from peers to clients.
    pub packets_to_clients: u64,
    /// Payload bytes relayed from peers to clients.
    pub bytes_to_clients: u64,
    /// Datagrams dropped: no permission, channel or allocation.
    pub dropped_no_route: u64,
    /// Datagrams dropped by the bandwidth cap.
    pub dropped_bandwidth: u64,
    /// Datagrams that were neither STUN nor ChannelData, or malformed.
    pub dropped_malformed: u64,
    /// Datagrams dropped because the queue of transmits the driver had
    /// not taken yet was full (a bound clients and peers can fill).
    pub dropped_queue_full: u64,
    /// Peer connections of TCP allocations opened: Connects that
    /// succeeded and peers' connections accepted (RFC 6062).
    pub tcp_connections_opened: u64,
    /// Connects that failed or timed out (447), and peers' connections
    /// refused (no permission, policy, or the per-allocation limit).
    pub tcp_connections_failed: u64,
    /// Peer connections bound to a client data connection (ConnectionBind).
    pub tcp_connections_bound: u64,
    /// Peer connections closed without a ConnectionBind in time.
    pub tcp_bind_timeouts: u64,
}

impl Metrics {
    /// Counts an error response by its cause.
    pub(crate) fn count_error(&mut self, error: RequestError) {
        if let Some(reason) = AuthFailure::of(error) {
            self.auth_failures += 1;
            self.auth_by_reason[reason as usize] += 1;
        } else if let Some(quota) = Quota::of(error) {
            self.quota_rejections += 1;
            self.quota_by_kind[quota as usize] += 1;
        } else if error == RequestError::ForbiddenPeer {
            self.forbidden_peers += 1;
        } else {
            self.other_errors += 1;
        }
    }

    /// Requests refused for this reason.
    pub fn auth_failures_for(&self, reason: AuthFailure) -> u64 {
        self.auth_by_reason[reason as usize]
    }

    /// Allocations refused by this quota.
    pub fn quota_rejections_for(&self, quota: Quota) -> u64 {
        self.quota_by_kind[quota as usize]
    }

    /// The counters and the gauges given, in the Prometheus text exposition
    /// format (version 0.0.4).
    pub fn render_prometheus(&self, gauges: Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let gauges = [
            (
                "realtimer_turn_allocations_active",
                "Allocations now open.",
                gauges.allocations as u64,
            ),
            (
                "realtimer_turn_relay_ports_active",
                "Relay ports now bound or being bound.",
                gauges.relay_ports as u64,
            ),
            (
                "realtimer_turn_permissions_active",
                "Permissions now installed.",
                gauges.permissions as u64,
            ),
            (
                "realtimer_turn_channels_active",
                "Channels now bound.",
                gauges.channels as u64,
            ),
            (
                "realtimer_turn_tcp_connections_active",
                "Peer connections of TCP allocations (RFC 6062), pending or bound.",
                gauges.tcp_connections as u64,
            ),
            (
                "realtimer_turn_auth_throttle_addresses",
                "Client addresses tracked for repeated failed authentication.",
                gauges.auth_throttle_addresses as u64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let counters = [
            (
                "allocations_created_total",
                "Allocations created.",
                self.allocations_created,
            ),
            (
                "allocations_closed_total",
                "Allocations expired or deleted.",
                self.allocations_closed,
            ),
            (
                "forbidden_peers_total",
                "Peer addresses refused with 403.",
                self.forbidden_peers,
            ),
            (
                "other_errors_total",
                "Other error responses.",
                self.other_errors,
            ),
            (
                "binding_requests_total",
                "Binding requests answered.",
                self.binding_requests,
            ),
            (
                "packets_to_peers_total",
                "Datagrams relayed to peers.",
                self.packets_to_peers,
            ),
            (
                "bytes_to_peers_total",
                "Payload bytes relayed to peers.",
                self.bytes_to_peers,
            ),
            (
                "packets_to_clients_total",
                "Datagrams relayed to clients.",
                self.packets_to_clients,
            ),
            (
                "bytes_to_clients_total",
                "Payload bytes relayed to clients.",
                self.bytes_to_clients,
            ),
            (
                "dropped_no_route_total",
                "Datagrams without allocation, permission or channel.",
                self.dropped_no_route,
            ),
            (
                "dropped_bandwidth_total",
                "Datagrams over the bandwidth cap.",
                self.dropped_bandwidth,
            ),
            (
                "dropped_malformed_total",
                "Malformed datagrams.",
                self.dropped_malformed,
            ),
            (
                "dropped_queue_full_total",
                "Datagrams dropped because the server's transmit queue was full.",
                self.dropped_queue_full,
            ),
            (
                "tcp_connections_opened_total",
                "Peer connections of TCP allocations opened (RFC 6062).",
                self.tcp_connections_opened,
            ),
            (
                "tcp_connections_failed_total",
                "Connects failed (447) and peer connections refused.",
                self.tcp_connections_failed,
            ),
            (
                "tcp_connections_bound_total",
                "Peer connections bound to a data connection.",
                self.tcp_connections_bound,
            ),
            (
                "tcp_bind_timeouts_total",
                "Peer connections closed with no ConnectionBind in time.",
                self.tcp_bind_timeouts,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP realtimer_turn_{name} {help}\n# TYPE realtimer_turn_{name} counter\nrealtimer_turn_{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP realtimer_turn_auth_failures_total Requests refused for their credentials (401, 438, 441).\n\
             # TYPE realtimer_turn_auth_failures_total counter"
        );
        for reason in AuthFailure::ALL {
            let (name, value) = (reason.name(), self.auth_failures_for(reason));
            let _ = writeln!(
                out,
                "realtimer_turn_auth_failures_total{{reason=\"{name}\"}} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP realtimer_turn_quota_rejections_total Allocations refused with 486.\n\
             # TYPE realtimer_turn_quota_rejections_total counter"
        );
        for quota in Quota::ALL {
            let (name, value) = (quota.name(), self.quota_rejections_for(quota));
            let _ = writeln!(
                out,
                "realtimer_turn_quota_rejections_total{{quota=\"{name}\"}} {value}"
            );
        }
        out
    }
}
