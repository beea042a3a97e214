//! The one error type of this crate, grouped by cause.

use std::time::Duration;

use crate::Fingerprint;

/// What went wrong. Peer-caused failures also arrive as
/// [`DtlsEvent::Failed`](crate::DtlsEvent::Failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtlsError {
    // ---- Local setup ----
    /// A certificate or key could not be built, read or used.
    #[error("certificate: {0}")]
    Certificate(String),
    /// OpenSSL rejected our configuration or failed internally.
    #[error("OpenSSL: {0}")]
    Ssl(String),
    /// The configuration is unusable (e.g. an MTU OpenSSL cannot work with).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// A fingerprint names a hash function we cannot compute.
    #[error("unsupported fingerprint hash function `{0}`")]
    UnsupportedHash(String),
    /// A fingerprint's text is not `<hash> AB:CD:…` of the right length.
    #[error("malformed fingerprint: {0}")]
    MalformedFingerprint(&'static str),

    // ---- The peer's authentication (RFC 8827 §6.5, RFC 8122 §5) ----
    /// The certificate the peer presented does not hash to the fingerprint
    /// in its SDP: someone other than the signaled peer is talking to us.
    #[error("the peer's certificate has fingerprint {}, but its SDP says {expected}", actual.as_ref().map_or("(unknown)".to_owned(), ToString::to_string))]
    FingerprintMismatch {
        /// The fingerprint from the remote SDP.
        expected: Fingerprint,
        /// The fingerprint of the certificate the peer presented.
        actual: Option<Fingerprint>,
    },
    /// The peer completed the handshake without a certificate.
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    /// The peer did not negotiate the extended master secret (RFC 7627),
    /// which RFC 8827 §6.5 requires.
    #[error("the peer did not negotiate the extended master secret (RFC 7627)")]
    NoExtendedMasterSecret,

    // ---- The handshake and the connection ----
    /// The peer sent a fatal alert (RFC 5246 §7.2.2).
    #[error("the peer sent a fatal alert: {} ({description})", alert_name(*description))]
    AlertReceived {
        /// The alert description code (RFC 5246 §7.2, RFC 6347 §4.2.1).
        description: u8,
    },
    /// The handshake failed locally; OpenSSL's reason, in its words.
    #[error("DTLS handshake failed: {0}")]
    Handshake(String),
    /// The handshake did not complete within the configured time.
    #[error("DTLS handshake did not complete within {0:?}")]
    HandshakeTimeout(Duration),
    /// Processing records of an established connection failed.
    #[error("DTLS record processing failed: {0}")]
    Record(String),

    // ---- Input rejected (the connection is unaffected) ----
    /// The datagram is not DTLS: RFC 7983 §7 reserves first bytes 20..=63.
    #[error("not a DTLS datagram (first byte {0})")]
    NotDtls(u8),
    /// The datagram is larger than any DTLS record can be.
    #[error("datagram of {len} bytes exceeds the {max}-byte limit")]
    DatagramTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Events are waiting to be polled; drain [`Dtls::poll_event`](crate::Dtls::poll_event)
    /// before feeding more input.
    #[error("receive queue full: poll events before handing in more datagrams")]
    ReceiveQueueFull,

    // ---- Sending ----
    /// Application data can only be sent after the handshake.
    #[error("not connected yet")]
    NotConnected,
    /// The connection is closed or failed.
    #[error("the connection is closed")]
    Closed,
    /// Datagrams are waiting to be polled; drain
    /// [`Dtls::poll_transmit`](crate::Dtls::poll_transmit) first.
    #[error("transmit queue full: poll transmits before sending more")]
    TransmitQueueFull,
    /// More application data than one DTLS record carries (2^14 bytes,
    /// RFC 6347 §4.1 via RFC 5246 §6.2.1).
    #[error("application data of {len} bytes exceeds the {max}-byte record limit")]
    MessageTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// The name of a TLS alert description (RFC 5246 §7.2, RFC 8446 §6 for the
/// later registrations), for messages.
pub fn alert_name(description: u8) -> &'static str {
    match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        120 => "no_application_protocol",
        _ => "unknown alert",
    }
}
