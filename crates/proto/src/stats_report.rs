//! getStats (W3C webrtc-stats) for the parts a data-only connection has:
//! `peer-connection`, `transport`, `candidate-pair`, `local-candidate`,
//! `remote-candidate`, `data-channel`, plus `sctp-transport` (the field
//! names of the RTCSctpTransportStats the webrtc-stats drafts had).
//!
//! Each stats type is a typed struct with the W3C member names in its docs;
//! [`StatsReport::to_json`] gives the browser's shape: an array of objects
//! with `id`, `type`, `timestamp` and the camelCase members.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// RTCPeerConnectionStats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerConnectionStats {
    /// dataChannelsOpened.
    pub data_channels_opened: u32,
    /// dataChannelsClosed.
    pub data_channels_closed: u32,
}

/// RTCTransportStats: the one ICE/DTLS transport (BUNDLE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// packetsSent: every datagram sent (STUN and DTLS).
    pub packets_sent: u64,
    /// packetsReceived: every datagram received.
    pub packets_received: u64,
    /// bytesSent: UDP payload bytes sent.
    pub bytes_sent: u64,
    /// bytesReceived: UDP payload bytes received.
    pub bytes_received: u64,
    /// iceRole: `controlling` or `controlled`.
    pub ice_role: &'static str,
    /// iceLocalUsernameFragment.
    pub ice_local_username_fragment: String,
    /// iceState (RTCIceTransportState).
    pub ice_state: String,
    /// dtlsState (RTCDtlsTransportState).
    pub dtls_state: &'static str,
    /// dtlsRole: `client`, `server` or `unknown`.
    pub dtls_role: &'static str,
    /// selectedCandidatePairId.
    pub selected_candidate_pair_id: Option<String>,
    /// SRTP and SRTCP packets refused by authentication or replay checks
    /// (not a W3C member).
    pub srtp_unprotect_failures: u64,
    /// selectedCandidatePairChanges.
    pub selected_candidate_pair_changes: u32,
}

/// RTCIceCandidatePairStats.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CandidatePairStats {
    /// id.
    pub id: String,
    /// localCandidateId.
    pub local_candidate_id: String,
    /// remoteCandidateId.
    pub remote_candidate_id: String,
    /// state (`succeeded` for a selected pair).
    pub state: &'static str,
    /// nominated.
    pub nominated: bool,
    /// Whether the transport uses this pair now (selectedCandidatePairId).
    pub selected: bool,
    /// packetsSent on this pair.
    pub packets_sent: u64,
    /// packetsReceived on this pair.
    pub packets_received: u64,
    /// bytesSent on this pair.
    pub bytes_sent: u64,
    /// bytesReceived on this pair.
    pub bytes_received: u64,
    /// currentRoundTripTime in seconds, from the last ICE connectivity or
    /// consent check (RFC 7675).
    pub current_round_trip_time: Option<f64>,
    /// availableOutgoingBitrate in bits per second: the send-side
    /// estimate, on the selected pair once transport-wide feedback
    /// measured it.
    pub available_outgoing_bitrate: Option<u64>,
}

/// RTCIceCandidateStats (`local-candidate` or `remote-candidate`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CandidateStats {
    /// id.
    pub id: String,
    /// True for `local-candidate`.
    pub is_local: bool,
    /// address (the IP; the mDNS name for a hidden local host candidate).
    pub address: String,
    /// port.
    pub port: u16,
    /// protocol (`udp`).
    pub protocol: &'static str,
    /// candidateType: `host`, `srflx`, `prflx` or `relay`.
    pub candidate_type: String,
    /// priority.
    pub priority: u32,
    /// foundation.
    pub foundation: String,
    /// relayProtocol of a local relayed candidate: how the TURN server is
    /// reached (`udp`, `tcp` or `tls`).
    pub relay_protocol: Option<&'static str>,
}

/// RTCDataChannelStats.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataChannelStats {
    /// id.
    pub id: String,
    /// label.
    pub label: String,
    /// protocol.
    pub protocol: String,
    /// dataChannelIdentifier: the SCTP stream id, once known.
    pub data_channel_identifier: Option<u16>,
    /// state (RTCDataChannelState).
    pub state: &'static str,
    /// messagesSent.
    pub messages_sent: u64,
    /// bytesSent: payload bytes of the messages sent.
    pub bytes_sent: u64,
    /// messagesReceived.
    pub messages_received: u64,
    /// bytesReceived.
    pub bytes_received: u64,
}

/// RTCInboundRtpStreamStats: one SSRC the peer sends (W3C webrtc-stats
/// §8.6; RFC 3550 Appendix A.3 and A.8 for loss and jitter).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InboundRtpStats {
    /// id.
    pub id: String,
    /// ssrc.
    pub ssrc: u32,
    /// kind: `audio` or `video`.
    pub kind: &'static str,
    /// mid, once negotiated.
    pub mid: Option<String>,
    /// rid: the simulcast layer of this SSRC (RFC 8853), once learned.
    pub rid: Option<String>,
    /// packetsReceived.
    pub packets_received: u64,
    /// bytesReceived: RTP payload bytes (webrtc-stats §8.4: no headers or
    /// padding), as the sender counts `bytesSent`.
    pub bytes_received: u64,
    /// packetsLost (RFC 3550 cumulative: expected less received).
    pub packets_lost: i64,
    /// packetsDiscarded: received but dropped because the application did
    /// not read the earlier packets in time.
    pub packets_discarded: u64,
    /// jitter, in seconds.
    pub jitter: f64,
    /// The members below belong to whoever plays the stream out (a jitter
    /// buffer and a decoder, which the sans-IO core does not hold): 0 in
    /// a bare [`crate::Rtc`]'s report; realtimer's `get_stats` fills them
    /// from its tracks' `play_audio` and `read_video_frame`, with
    /// Chrome's meanings (W3C webrtc-stats §8.6).
    ///
    /// jitterBufferDelay: seconds each emitted sample (audio) or frame
    /// (video) waited in the buffer, summed.
    pub jitter_buffer_delay: f64,
    /// jitterBufferTargetDelay: the buffer's target delay when each was
    /// emitted, summed, in seconds (audio).
    pub jitter_buffer_target_delay: f64,
    /// jitterBufferEmittedCount: samples (audio) or frames (video) that
    /// left the buffer.
    pub jitter_buffer_emitted_count: u64,
    /// concealedSamples: samples made up by loss concealment for lost or
    /// late packets; as in Chromium, not those rebuilt from in-band FEC
    /// (decoded and emitted like a received packet's).
    pub concealed_samples: u64,
    /// concealmentEvents: runs of concealed samples.
    pub concealment_events: u64,
    /// removedSamplesForAcceleration: samples dropped to bring the delay
    /// down.
    pub removed_samples_for_acceleration: u64,
    /// fecPacketsReceived (audio): packets that carried in-band FEC for
    /// the one before them (Opus LBRR), as Chromium counts them.
    pub fec_packets_received: u64,
    /// fecPacketsDiscarded (audio): of those, the ones whose FEC was not
    /// used (the packet it protects arrived).
    pub fec_packets_discarded: u64,
    /// framesDecoded (video).
    pub frames_decoded: u64,
    /// keyFramesDecoded (video).
    pub key_frames_decoded: u64,
    /// framesDropped (video): frames given up before decoding (a packet
    /// missing past its wait, or waiting for a keyframe).
    pub frames_dropped: u64,
}

/// RTCOutboundRtpStreamStats: one of our tracks (W3C webrtc-stats §8.8).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboundRtpStats {
    /// id.
    pub id: String,
    /// ssrc.
    pub ssrc: u32,
    /// kind: `audio` or `video`.
    pub kind: &'static str,
    /// mid, once negotiated.
    pub mid: Option<String>,
    /// rid: the simulcast layer (RFC 8853) this SSRC sends, where the
    /// peer accepted our simulcast.
    pub rid: Option<String>,
    /// packetsSent.
    pub packets_sent: u64,
    /// bytesSent: payload bytes.
    pub bytes_sent: u64,
    /// retransmittedPacketsSent: NACKed packets sent again.
    pub retransmitted_packets_sent: u64,
    /// retransmittedBytesSent: their payload bytes.
    pub retransmitted_bytes_sent: u64,
    /// NACKed packets not sent again because the track's retransmission
    /// budget (as many bytes as it sends) was spent: a peer NACKing
    /// without end. Not a W3C member.
    pub retransmissions_refused: u64,
}

/// The SCTP association, with the member names of the drafts'
/// RTCSctpTransportStats.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SctpTransportStats {
    /// smoothedRoundTripTime (RFC 9260 SRTT), once measured.
    pub smoothed_round_trip_time: Option<Duration>,
    /// congestionWindow, bytes.
    pub congestion_window: usize,
    /// receiverWindow: the peer's window less what is in flight, bytes.
    pub receiver_window: usize,
    /// unackData: chunks sent and not yet acknowledged.
    pub unack_data: usize,
    /// DATA chunks retransmitted (not a W3C member).
    pub retransmissions: u64,
}

/// What `getStats()` returns.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StatsReport {
    /// When the report was made, since the connection was created (the core
    /// has no wall clock; browsers give epoch milliseconds).
    pub timestamp: Duration,
    /// `peer-connection`.
    pub peer_connection: PeerConnectionStats,
    /// `transport`.
    pub transport: TransportStats,
    /// `candidate-pair`: the pairs that carried data (the selected one and
    /// those selected before it in this connection, at most a few).
    pub candidate_pairs: Vec<CandidatePairStats>,
    /// `local-candidate` and `remote-candidate`.
    pub candidates: Vec<CandidateStats>,
    /// `data-channel`: the channels not closed yet.
    pub data_channels: Vec<DataChannelStats>,
    /// `sctp-transport`, once the association exists.
    pub sctp: Option<SctpTransportStats>,
    /// `inbound-rtp`: every SSRC the peer sent us.
    pub inbound_rtp: Vec<InboundRtpStats>,
    /// `outbound-rtp`: every track we send.
    pub outbound_rtp: Vec<OutboundRtpStats>,
}

impl StatsReport {
    /// The selected candidate pair, if any.
    pub fn selected_candidate_pair(&self) -> Option<&CandidatePairStats> {
        self.candidate_pairs.iter().find(|p| p.selected)
    }

    /// The stats of the data channel with this label.
    pub fn data_channel(&self, label: &str) -> Option<&DataChannelStats> {
        self.data_channels.iter().find(|d| d.label == label)
    }

    /// The candidate with this id.
    pub fn candidate(&self, id: &str) -> Option<&CandidateStats> {
        self.candidates.iter().find(|c| c.id == id)
    }

    /// The report as the browser's JSON: an array of stats objects.
    pub fn to_json(&self) -> String {
        let ts = self.timestamp.as_secs_f64() * 1000.0;
        let mut out = Json::default();
        out.open("P", "peer-connection", ts);
        out.num(
            "dataChannelsOpened",
            self.peer_connection.data_channels_opened,
        );
        out.num(
            "dataChannelsClosed",
            self.peer_connection.data_channels_closed,
        );
        out.close();
        let t = &self.transport;
        out.open("T01", "transport", ts);
        out.num("packetsSent", t.packets_sent);
        out.num("packetsReceived", t.packets_received);
        out.num("bytesSent", t.bytes_sent);
        out.num("bytesReceived", t.bytes_received);
        out.str("iceRole", t.ice_role);
        out.str("iceLocalUsernameFragment", &t.ice_local_username_fragment);
        out.str("iceState", &t.ice_state);
        out.str("dtlsState", t.dtls_state);
        out.str("dtlsRole", t.dtls_role);
        if let Some(id) = &t.selected_candidate_pair_id {
            out.str("selectedCandidatePairId", id);
        }
        out.num(
            "selectedCandidatePairChanges",
            t.selected_candidate_pair_changes,
        );
        out.close();
        for p in &self.candidate_pairs {
            out.open(&p.id, "candidate-pair", ts);
            out.str("transportId", "T01");
            out.str("localCandidateId", &p.local_candidate_id);
            out.str("remoteCandidateId", &p.remote_candidate_id);
            out.str("state", p.state);
            out.raw("nominated", if p.nominated { "true" } else { "false" });
            out.num("packetsSent", p.packets_sent);
            out.num("packetsReceived", p.packets_received);
            out.num("bytesSent", p.bytes_sent);
            out.num("bytesReceived", p.bytes_received);
            if let Some(rtt) = p.current_round_trip_time {
                out.num("currentRoundTripTime", rtt);
            }
            if let Some(bitrate) = p.available_outgoing_bitrate {
                out.num("availableOutgoingBitrate", bitrate);
            }
            out.close();
        }
        for c in &self.candidates {
            let kind = if c.is_local {
                "local-candidate"
            } else {
                "remote-candidate"
            };
            out.open(&c.id, kind, ts);
            out.str("transportId", "T01");
            out.str("address", &c.address);
            out.num("port", c.port);
            out.str("protocol", c.protocol);
            out.str("candidateType", &c.candidate_type);
            out.num("priority", c.priority);
            out.str("foundation", &c.foundation);
            if let Some(p) = c.relay_protocol {
                out.str("relayProtocol", p);
            }
            out.close();
        }
        for d in &self.data_channels {
            out.open(&d.id, "data-channel", ts);
            out.str("label", &d.label);
            out.str("protocol", &d.protocol);
            if let Some(id) = d.data_channel_identifier {
                out.num("dataChannelIdentifier", id);
            }
            out.str("state", d.state);
            out.num("messagesSent", d.messages_sent);
            out.num("bytesSent", d.bytes_sent);
            out.num("messagesReceived", d.messages_received);
            out.num("bytesReceived", d.bytes_received);
            out.close();
        }
        if let Some(s) = &self.sctp {
            out.open("SCTP", "sctp-transport", ts);
            out.str("transportId", "T01");
            if let Some(rtt) = s.smoothed_round_trip_time {
                out.num("smoothedRoundTripTime", rtt.as_secs_f64());
            }
            out.num("congestionWindow", s.congestion_window);
            out.num("receiverWindow", s.receiver_window);
            out.num("unackData", s.unack_data);
            out.close();
        }
        for r in &self.inbound_rtp {
            out.open(&r.id, "inbound-rtp", ts);
            rtp_stream_members(&mut out, r.ssrc, r.kind, r.mid.as_deref());
            if let Some(rid) = &r.rid {
                out.str("rid", rid);
            }
            out.num("packetsReceived", r.packets_received);
            out.num("bytesReceived", r.bytes_received);
            out.num("packetsLost", r.packets_lost);
            out.num("packetsDiscarded", r.packets_discarded);
            out.num("jitter", r.jitter);
            out.num("jitterBufferDelay", r.jitter_buffer_delay);
            out.num("jitterBufferEmittedCount", r.jitter_buffer_emitted_count);
            if r.kind == "audio" {
                out.num("jitterBufferTargetDelay", r.jitter_buffer_target_delay);
                out.num("concealedSamples", r.concealed_samples);
                out.num("concealmentEvents", r.concealment_events);
                out.num(
                    "removedSamplesForAcceleration",
                    r.removed_samples_for_acceleration,
                );
                out.num("fecPacketsReceived", r.fec_packets_received);
                out.num("fecPacketsDiscarded", r.fec_packets_discarded);
            } else {
                out.num("framesDecoded", r.frames_decoded);
                out.num("keyFramesDecoded", r.key_frames_decoded);
                out.num("framesDropped", r.frames_dropped);
            }
            out.close();
        }
        for r in &self.outbound_rtp {
            out.open(&r.id, "outbound-rtp", ts);
            rtp_stream_members(&mut out, r.ssrc, r.kind, r.mid.as_deref());
            if let Some(rid) = &r.rid {
                out.str("rid", rid);
            }
            out.num("packetsSent", r.packets_sent);
            out.num("bytesSent", r.bytes_sent);
            out.num("retransmittedPacketsSent", r.retransmitted_packets_sent);
            out.num("retransmittedBytesSent", r.retransmitted_bytes_sent);
            out.close();
        }
        out.finish()
    }
}

/// The members every RTP stream's stats have (RTCRtpStreamStats).
fn rtp_stream_members(out: &mut Json, ssrc: u32, kind: &str, mid: Option<&str>) {
    out.num("ssrc", ssrc);
    out.str("kind", kind);
    out.str("transportId", "T01");
    if let Some(mid) = mid {
        out.str("mid", mid);
    }
}

/// A candidate's stats id: `I` + a stable hash of what identifies it.
pub(crate) fn candidate_id(local: bool, address: SocketAddr, kind: &str) -> String {
    format!(
        "{}{}",
        if local { "IL" } else { "IR" },
        short_hash(&format!("{address}/{kind}"))
    )
}

/// A candidate pair's stats id.
pub(crate) fn pair_id(local: &str, remote: &str) -> String {
    format!("CP{}_{}", &local[2..], &remote[2..])
}

/// FNV-1a, printed as 8 hex digits: short ids that do not reveal addresses.
fn short_hash(s: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// A tiny JSON writer for flat stats objects.
#[derive(Default)]
struct Json {
    out: String,
    first_member: bool,
}

impl Json {
    fn open(&mut self, id: &str, kind: &str, timestamp: f64) {
        self.out
            .push_str(if self.out.is_empty() { "[" } else { "," });
        self.out.push('{');
        self.first_member = true;
        self.str("id", id);
        self.str("type", kind);
        self.num("timestamp", timestamp);
    }

    fn key(&mut self, key: &str) {
        if !self.first_member {
            self.out.push(',');
        }
        self.first_member = false;
        escape(&mut self.out, key);
        self.out.push(':');
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        escape(&mut self.out, value);
    }

    fn num(&mut self, key: &str, value: impl std::fmt::Display) {
        self.key(key);
        let _ = write!(self.out, "{value}");
    }

    fn raw(&mut self, key: &str, value: &str) {
        self.key(key);
        self.out.push_str(value);
    }

    fn close(&mut self) {
        self.out.push('}');
    }

    fn finish(mut self) -> String {
        if self.out.is_empty() {
            self.out.push('[');
        }
        self.out.push(']');
        self.out
    }
}

/// A JSON string literal (RFC 8259 §7).
fn escape(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_shapes() {
        let mut j = Json::default();
        j.open("x", "data-channel", 1.5);
        j.str("label", "a\"b\\c\n");
        j.num("n", 3u32);
        j.close();
        assert_eq!(
            j.finish(),
            r#"[{"id":"x","type":"data-channel","timestamp":1.5,"label":"a\"b\\c\u000a","n":3}]"#
        );
        assert_eq!(Json::default().finish(), "[]");
    }
}
