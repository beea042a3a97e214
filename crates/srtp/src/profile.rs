//! Protection profiles (RFC 5764 §4.1.2, RFC 7714 §14.2) and their lengths.

/// An SRTP protection profile negotiated by DTLS-SRTP (RFC 5764 §4.1.2,
/// RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtectionProfile {
    /// SRTP_AES128_CM_HMAC_SHA1_80 (0x0001): AES-128 counter mode, 80-bit
    /// HMAC-SHA1 tags.
    Aes128CmHmacSha1_80,
    /// SRTP_AES128_CM_HMAC_SHA1_32 (0x0002): as above with a 32-bit tag on
    /// SRTP; SRTCP keeps the 80-bit tag (RFC 5764 §4.1.2).
    Aes128CmHmacSha1_32,
    /// SRTP_AEAD_AES_128_GCM (0x0007): AES-128-GCM, 128-bit tags.
    AeadAes128Gcm,
    /// SRTP_AEAD_AES_256_GCM (0x0008): AES-256-GCM, 128-bit tags.
    AeadAes256Gcm,
}

impl ProtectionProfile {
    /// Length of the master key (and of the session encryption key).
    pub fn key_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Length of the master salt (and of the session salt): 112 bits for
    /// AES-CM (RFC 3711 §8.2), 96 bits for GCM (RFC 7714 §12).
    pub fn salt_len(self) -> usize {
        if self.is_aead() {
            12
        } else {
            14
        }
    }

    /// Length of the authentication tag on SRTP packets.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 10,
            Self::Aes128CmHmacSha1_32 => 4,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 16,
        }
    }

    /// Length of the authentication tag on SRTCP packets.
    pub fn rtcp_tag_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            10
        }
    }

    /// Whether the profile is an AEAD (GCM) one.
    pub fn is_aead(self) -> bool {
        matches!(self, Self::AeadAes128Gcm | Self::AeadAes256Gcm)
    }
}
