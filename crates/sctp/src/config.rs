//! Association settings, with WebRTC defaults.

use std::time::Duration;

/// How an [`crate::Association`] behaves; build with struct update syntax
/// from `SctpConfig::default()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SctpConfig {
    /// Our SCTP port (`a=sctp-port`, 5000 in WebRTC).
    pub local_port: u16,
    /// The peer's SCTP port.
    pub remote_port: u16,
    /// Largest SCTP packet: the DTLS record around it must fit the path MTU
    /// of 1200 bytes (RFC 8261 §5), so 1200 minus the AES-GCM record's 37
    /// bytes, rounded down to a multiple of 4.
    pub max_packet_size: usize,
    /// Receive window advertised (bytes). Large, so long fat paths fill.
    pub receive_window: usize,
    /// Most bytes queued for sending but not yet acknowledged.
    pub send_buffer: usize,
    /// Largest message we accept (`a=max-message-size`, RFC 8841).
    pub max_message_size: usize,
    /// Streams in each direction (RFC 8831 §6.2: up to 65535).
    pub streams: u16,
    /// Initial retransmission timeout.
    pub rto_initial: Duration,
    /// Smallest retransmission timeout.
    pub rto_min: Duration,
    /// Largest retransmission timeout.
    pub rto_max: Duration,
    /// INIT and COOKIE ECHO attempts before giving up (RFC 9260 §15: 8).
    pub max_init_retransmits: u32,
    /// Consecutive retransmission timeouts before the association is
    /// declared dead (RFC 9260 §15 Association.Max.Retrans: 10).
    pub max_retransmits: u32,
    /// Delayed SACK (RFC 9260 §6.2: at most 500 ms; ack every second packet).
    pub delayed_ack: Duration,
    /// HB.interval (RFC 9260 §8.3): an idle association sends HEARTBEAT this
    /// often (plus RTO and jitter); unanswered ones count toward
    /// `max_retransmits`. `None` turns heartbeats off (ICE consent already
    /// watches the path).
    pub heartbeat_interval: Option<Duration>,
    /// RFC 9653: advertise Zero Checksum Acceptable for SCTP over DTLS
    /// (accept packets whose checksum is zero), and send zero checksums to a
    /// peer that advertises the same, saving the CRC32c on every packet.
    /// Default on: right whenever SCTP runs over DTLS, as in WebRTC; turn
    /// it off for SCTP over anything without its own integrity check.
    pub zero_checksum: bool,
    /// Initial congestion window, in packets.
    pub initial_cwnd_packets: usize,
    /// Seed for verification tags, initial TSNs and the cookie secret. Give
    /// a random one in production; a fixed one makes tests reproducible.
    pub seed: u64,
}

impl Default for SctpConfig {
    fn default() -> Self {
        SctpConfig {
            local_port: 5000,
            remote_port: 5000,
            max_packet_size: 1160,
            receive_window: 4 * 1024 * 1024,
            send_buffer: 16 * 1024 * 1024,
            max_message_size: 256 * 1024,
            streams: 65535,
            rto_initial: Duration::from_millis(500),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(10),
            max_init_retransmits: 8,
            max_retransmits: 10,
            delayed_ack: Duration::from_millis(200),
            heartbeat_interval: Some(Duration::from_secs(30)),
            zero_checksum: true,
            initial_cwnd_packets: 4,
            seed: 0,
        }
    }
}
