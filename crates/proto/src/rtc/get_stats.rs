//! The counters behind getStats and the report made from them.

use std::net::SocketAddr;
use std::time::Instant;

use realtimer_datachannel::ChannelData;
use realtimer_dtls::{DtlsState, Role};
use realtimer_ice::{Candidate, SelectedPair};

use crate::stats_report::{
    candidate_id, pair_id, CandidatePairStats, CandidateStats, DataChannelStats,
    PeerConnectionStats, SctpTransportStats, StatsReport, TransportStats,
};

use super::Rtc;

/// Pairs whose counters are kept: the selected one and a few before it
/// (each ICE restart or renomination adds one).
const MAX_PAIRS: usize = 8;

/// Datagrams and bytes one way.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Count {
    packets: u64,
    bytes: u64,
}

impl Count {
    fn add(&mut self, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
    }
}

/// One pair that was selected, and what went over it.
#[derive(Debug, Clone)]
struct PairTraffic {
    /// (local base, remote address): how datagrams are matched.
    route: (SocketAddr, SocketAddr),
    local: Candidate,
    remote: Candidate,
    nominated: bool,
    sent: Count,
    received: Count,
}

/// The transport's counters and those of the pairs that were selected.
#[derive(Debug, Default)]
pub(super) struct Traffic {
    sent: Count,
    received: Count,
    pairs: Vec<PairTraffic>,
    selections: u32,
}

impl Traffic {
    /// ICE selected `p` (first time, after a restart, or renominated).
    pub(super) fn selected(&mut self, p: &SelectedPair) {
        self.selections += 1;
        let route = (p.local_base, p.remote.address);
        if let Some(known) = self.pairs.iter_mut().find(|x| x.route == route) {
            known.nominated |= p.nominated;
            known.local = p.local.clone();
            known.remote = p.remote.clone();
            return;
        }
        if self.pairs.len() >= MAX_PAIRS {
            self.pairs.remove(0);
        }
        // Most connections select one pair: no room for four held per
        // connection (a pair's candidates are some 350 bytes).
        self.pairs.reserve_exact(1);
        self.pairs.push(PairTraffic {
            route,
            local: p.local.clone(),
            remote: p.remote.clone(),
            nominated: p.nominated,
            sent: Count::default(),
            received: Count::default(),
        });
    }

    fn pair(
        &mut self,
        selected: Option<(SocketAddr, SocketAddr)>,
        route: (SocketAddr, SocketAddr),
    ) -> Option<&mut PairTraffic> {
        if selected != Some(route) {
            return None;
        }
        self.pairs.iter_mut().rev().find(|p| p.route == route)
    }

    pub(super) fn count_sent(
        &mut self,
        selected: Option<(SocketAddr, SocketAddr)>,
        local: SocketAddr,
        remote: SocketAddr,
        len: usize,
    ) {
        self.sent.add(len);
        if let Some(p) = self.pair(selected, (local, remote)) {
            p.sent.add(len);
        }
    }

    pub(super) fn count_received(
        &mut self,
        selected: Option<(SocketAddr, SocketAddr)>,
        local: SocketAddr,
        remote: SocketAddr,
        len: usize,
    ) {
        self.received.add(len);
        if let Some(p) = self.pair(selected, (local, remote)) {
            p.received.add(len);
        }
    }
}

/// A channel's messages and payload bytes each way.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChannelCounters {
    pub(crate) messages_sent: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) messages_received: u64,
    pub(crate) bytes_received: u64,
}

/// RTCDataChannelStats count payload bytes: UTF-8 bytes of text. Drivers
/// that queue messages outside the core count them the same way.
pub fn payload_len(data: &ChannelData) -> u64 {
    match data {
        ChannelData::Text(t) => t.len() as u64,
        ChannelData::Binary(b) => b.len() as u64,
    }
}

fn candidate_stats(local: bool, c: &Candidate) -> CandidateStats {
    let kind = c.kind.to_string();
    CandidateStats {
        id: candidate_id(local, c.address, &kind),
        is_local: local,
        address: match (&c.mdns_name, local) {
            (Some(name), true) => name.clone(),
            _ => c.address.ip().to_string(),
        },
        port: c.address.port(),
        protocol: "udp",
        candidate_type: kind,
        priority: c.priority,
        foundation: c.foundation.clone(),
        relay_protocol: c
            .relay_protocol
            .filter(|_| local)
            .map(realtimer_ice::Transport::as_str),
    }
}

impl Rtc {
    /// getStats: the connection's statistics now (W3C webrtc-stats names).
    pub fn stats(&self, now: Instant) -> StatsReport {
        let selected = self.selected_pair();
        let ice_rtt = self.ice.selected_pair_rtt();
        let mut candidates: Vec<CandidateStats> = Vec::new();
        let mut push = |c: CandidateStats| {
            if !candidates.iter().any(|x| x.id == c.id) {
                candidates.push(c);
            }
        };
        for c in self.ice.local_candidates() {
            push(candidate_stats(true, c));
        }
        for c in self.ice.remote_candidates() {
            push(candidate_stats(false, c));
        }
        let mut candidate_pairs = Vec::new();
        let mut selected_id = None;
        for p in &self.traffic.pairs {
            let local = candidate_stats(true, &p.local);
            // A peer-reflexive candidate that the peer then signalled is
            // reported as what it was signalled as (RFC 8445 §7.3.1.3); the
            // pair's copy is kept for pairs of an earlier ICE generation.
            let current = self
                .ice
                .remote_candidates()
                .find(|c| c.address == p.remote.address);
            let remote = candidate_stats(false, current.unwrap_or(&p.remote));
            let id = pair_id(&local.id, &remote.id);
            let is_selected = selected == Some(p.route);
            if is_selected {
                selected_id = Some(id.clone());
            }
            candidate_pairs.push(CandidatePairStats {
                id,
                local_candidate_id: local.id.clone(),
                remote_candidate_id: remote.id.clone(),
                state: "succeeded",
                nominated: p.nominated,
                selected: is_selected,
                packets_sent: p.sent.packets,
                packets_received: p.received.packets,
                bytes_sent: p.sent.bytes,
                bytes_received: p.received.bytes,
                current_round_trip_time: if is_selected {
                    ice_rtt.map(|d| d.as_secs_f64())
                } else {
                    None
                },
                available_outgoing_bitrate: if is_selected {
                    self.available_outgoing_bitrate()
                } else {
                    None
                },
            });
            push(local);
            push(remote);
        }
        let dtls_state = match self.dtls.running().map(|d| d.state()) {
            _ if self.is_closed() => "closed",
            None => "new",
            Some(DtlsState::Connected) => "connected",
            Some(DtlsState::Failed) => "failed",
            Some(DtlsState::Closed) => "closed",
            Some(_) => "connecting",
        };
        let transport = TransportStats {
            packets_sent: self.traffic.sent.packets,
            packets_received: self.traffic.received.packets,
            bytes_sent: self.traffic.sent.bytes,
            bytes_received: self.traffic.received.bytes,
            ice_role: if self.ice.is_controlling() {
                "controlling"
            } else {
                "controlled"
            },
            ice_local_username_fragment: self.local.ufrag.clone(),
            ice_state: self.ice_state.to_string(),
            dtls_state,
            dtls_role: match self.dtls_role {
                Some(Role::Client) => "client",
                Some(Role::Server) => "server",
                None => "unknown",
            },
            selected_candidate_pair_id: selected_id,
            selected_candidate_pair_changes: self.traffic.selections,
            srtp_unprotect_failures: self.media.unprotect_failures,
        };
        let data_channels = self
            .data
            .slots
            .iter()
            .map(|(r, s)| DataChannelStats {
                id: format!("D{}", r.0),
                label: s.info.label.clone(),
                protocol: s.info.protocol.clone(),
                data_channel_identifier: s.info.id,
                state: s.state.as_str(),
                messages_sent: s.counters.messages_sent,
                bytes_sent: s.counters.bytes_sent,
                messages_received: s.counters.messages_received,
                bytes_received: s.counters.bytes_received,
            })
            .collect();
        let sctp = self.channels.as_ref().map(|c| {
            let s = c.association().sender_stats();
            SctpTransportStats {
                smoothed_round_trip_time: s.srtt,
                congestion_window: s.cwnd,
                receiver_window: s.peer_rwnd,
                unack_data: s.outstanding_chunks,
                retransmissions: s.retransmissions,
            }
        });
        StatsReport {
            timestamp: now.saturating_duration_since(self.created),
            peer_connection: PeerConnectionStats {
                data_channels_opened: self.data.channels_opened,
                data_channels_closed: self.data.channels_closed,
            },
            transport,
            candidate_pairs,
            candidates,
            data_channels,
            sctp,
            inbound_rtp: self.inbound_rtp_stats(),
            outbound_rtp: self.outbound_rtp_stats(),
        }
    }
}
