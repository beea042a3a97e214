//! Counters the server keeps, and their Prometheus text form.

use std::fmt::Write;

/// Monotonic counters since the server started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Allocations created.
    pub allocations_created: u64,
    /// Allocations that expired or were deleted by a Refresh with lifetime 0.
    pub allocations_closed: u64,
    /// Requests answered with an error asking for credentials (401, 438).
    pub auth_failures: u64,
    /// Allocate requests refused with 486 (any quota).
    pub quota_rejections: u64,
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
}

impl Metrics {
    /// The counters and the gauges given, in the Prometheus text exposition
    /// format (version 0.0.4).
    pub fn render_prometheus(&self, active_allocations: usize, active_relays: usize) -> String {
        let mut out = String::with_capacity(2048);
        let gauges = [
            (
                "realtimer_turn_allocations_active",
                "Allocations now open.",
                active_allocations as u64,
            ),
            (
                "realtimer_turn_relay_ports_active",
                "Relay ports now bound or being bound.",
                active_relays as u64,
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
                "auth_failures_total",
                "Requests refused with 401 or 438.",
                self.auth_failures,
            ),
            (
                "quota_rejections_total",
                "Allocations refused with 486.",
                self.quota_rejections,
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
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP realtimer_turn_{name} {help}\n# TYPE realtimer_turn_{name} counter\nrealtimer_turn_{name} {value}"
            );
        }
        out
    }
}
