//! Connection settings, roles and SRTP profiles.

use std::fmt;
use std::time::Duration;

use crate::{Certificate, DtlsError};

/// Which side of the handshake we play.
///
/// From SDP `a=setup` (RFC 8842 §5, RFC 4145 §4): `active` → [`Role::Client`],
/// `passive` → [`Role::Server`]; the answerer of an `actpass` offer picks
/// (JSEP, RFC 8829 §5.3.1, says `active`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends the ClientHello (`a=setup:active`).
    Client,
    /// Waits for the ClientHello (`a=setup:passive`).
    Server,
}

/// An SRTP protection profile negotiated with the `use_srtp` extension
/// (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpProfile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (0x0001), the profile every WebRTC
    /// endpoint implements (RFC 8827 §6.5).
    Aes128CmSha1_80,
    /// `SRTP_AES128_CM_HMAC_SHA1_32` (0x0002).
    Aes128CmSha1_32,
    /// `SRTP_AEAD_AES_128_GCM` (0x0007, RFC 7714), preferred by browsers.
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM` (0x0008, RFC 7714).
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// The profile's two-byte identifier in `use_srtp`.
    pub fn id(self) -> u16 {
        match self {
            Self::Aes128CmSha1_80 => 0x0001,
            Self::Aes128CmSha1_32 => 0x0002,
            Self::AeadAes128Gcm => 0x0007,
            Self::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile with identifier `id`, if we know it.
    pub fn from_id(id: u16) -> Option<Self> {
        [
            Self::Aes128CmSha1_80,
            Self::Aes128CmSha1_32,
            Self::AeadAes128Gcm,
            Self::AeadAes256Gcm,
        ]
        .into_iter()
        .find(|p| p.id() == id)
    }

    /// Master key length in bytes (RFC 5764 §4.1.2, RFC 7714 §12).
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128CmSha1_80 | Self::Aes128CmSha1_32 | Self::AeadAes128Gcm => 16,
            Self::AeadAes256Gcm => 32,
        }
    }

    /// Master salt length in bytes: 112 bits for AES-CM (RFC 3711 §8.2),
    /// 96 bits for AEAD-GCM (RFC 7714 §12).
    pub fn salt_len(self) -> usize {
        match self {
            Self::Aes128CmSha1_80 | Self::Aes128CmSha1_32 => 14,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
        }
    }

    /// The name OpenSSL uses in `SSL_CTX_set_tlsext_use_srtp`.
    pub(crate) fn openssl_name(self) -> &'static str {
        match self {
            Self::Aes128CmSha1_80 => "SRTP_AES128_CM_SHA1_80",
            Self::Aes128CmSha1_32 => "SRTP_AES128_CM_SHA1_32",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }
}

impl fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.openssl_name())
    }
}

/// Settings for one DTLS connection. [`DtlsConfig::new`] gives the defaults;
/// the `with_*` methods change one setting each.
///
/// The certificate is required rather than generated inside
/// [`Dtls::new`](crate::Dtls::new): its fingerprint must be in the local SDP
/// before any handshake starts, and generating it needs the wall-clock time,
/// which only the caller has.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DtlsConfig {
    /// Our certificate and key.
    pub certificate: Certificate,
    /// The largest datagram we send, in bytes (UDP payload). Handshake
    /// flights are fragmented to fit (RFC 6347 §4.2.3). Default 1200, the
    /// WebRTC path MTU assumption (RFC 8831 §5, RFC 8261 §5).
    pub mtu: usize,
    /// SRTP profiles to offer or accept, most preferred first. Empty: no
    /// `use_srtp` extension (a data-only connection).
    pub srtp_profiles: Vec<SrtpProfile>,
    /// The first retransmission timeout of a flight. Default 1 s, RFC 6347
    /// §4.2.4.1's value when the round-trip time is unknown; a caller that
    /// knows it from ICE can set about 2 × RTT, as libwebrtc does.
    pub initial_retransmit: Duration,
    /// The cap of the doubling retransmission timeout. Default 2 s.
    ///
    /// RFC 6347 §4.2.4.1 says to double up to no less than 60 s, which
    /// guards against congestion. WebRTC abandons a handshake after 30 s,
    /// and a 60 s (or even 8 s) cap leaves only four or five attempts in
    /// that time: on the simulated network at 30% loss each way, 1 s/8 s
    /// failed 1 handshake in 5 and 1 s/2 s 1 in 40. A handshake flight is a
    /// few datagrams, so the shorter cap costs little. Pion retransmits at a
    /// fixed 1 s.
    pub max_retransmit: Duration,
    /// The connection fails if the handshake has not completed this long
    /// after [`Dtls::new`](crate::Dtls::new). Default 30 s.
    pub handshake_timeout: Duration,
    /// Fail the handshake unless the peer negotiates the extended master
    /// secret (RFC 7627; RFC 8827 §6.5 requires it). Default on.
    pub require_extended_master_secret: bool,
    /// Most datagrams kept for [`Dtls::poll_transmit`](crate::Dtls::poll_transmit)
    /// before [`Dtls::send`](crate::Dtls::send) reports
    /// [`DtlsError::TransmitQueueFull`](crate::DtlsError::TransmitQueueFull). Default 1024.
    pub transmit_queue_limit: usize,
    /// Most events kept for [`Dtls::poll_event`](crate::Dtls::poll_event)
    /// before input is refused with
    /// [`DtlsError::ReceiveQueueFull`](crate::DtlsError::ReceiveQueueFull). Default 1024.
    pub event_queue_limit: usize,
    /// After the handshake, protect application data with realtimer's own
    /// record layer (OpenSSL's ciphers, our framing; several times faster
    /// than OpenSSL's record layer for small records). Default on. It is
    /// used only if its keys authenticate both Finished records of the
    /// handshake; otherwise, or when off, OpenSSL keeps the record layer.
    pub own_record_layer: bool,
    /// OpenSSL cipher list (tests narrow it to one suite).
    pub(crate) cipher_list: &'static str,
}

impl DtlsConfig {
    /// The defaults, with `certificate`.
    pub fn new(certificate: Certificate) -> Self {
        Self {
            certificate,
            mtu: 1200,
            srtp_profiles: vec![SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80],
            initial_retransmit: Duration::from_secs(1),
            max_retransmit: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(30),
            require_extended_master_secret: true,
            transmit_queue_limit: 1024,
            event_queue_limit: 1024,
            own_record_layer: true,
            cipher_list: crate::connection::CIPHER_LIST,
        }
    }

    /// Sets [`DtlsConfig::mtu`].
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }

    /// Sets [`DtlsConfig::srtp_profiles`].
    pub fn with_srtp_profiles(mut self, profiles: Vec<SrtpProfile>) -> Self {
        self.srtp_profiles = profiles;
        self
    }

    /// Sets [`DtlsConfig::initial_retransmit`] and [`DtlsConfig::max_retransmit`].
    pub fn with_retransmit(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_retransmit = initial;
        self.max_retransmit = max;
        self
    }

    /// Sets [`DtlsConfig::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`DtlsConfig::require_extended_master_secret`].
    pub fn with_require_extended_master_secret(mut self, on: bool) -> Self {
        self.require_extended_master_secret = on;
        self
    }

    /// Builds (and caches in the certificate) what a connection with these
    /// settings needs from OpenSSL before its handshake, so that
    /// [`Dtls::new`](crate::Dtls::new) with a clone of this certificate
    /// does not: worth doing off the path that waits for a connection.
    pub fn prepare(&self) -> Result<(), DtlsError> {
        crate::connection::prepare(self)
    }

    /// Sets [`DtlsConfig::own_record_layer`].
    pub fn with_own_record_layer(mut self, on: bool) -> Self {
        self.own_record_layer = on;
        self
    }

    /// Sets [`DtlsConfig::transmit_queue_limit`] and [`DtlsConfig::event_queue_limit`].
    pub fn with_queue_limits(mut self, transmit: usize, events: usize) -> Self {
        self.transmit_queue_limit = transmit;
        self.event_queue_limit = events;
        self
    }
}
