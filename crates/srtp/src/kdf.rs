//! Session key derivation (RFC 3711 §4.3) with a key derivation rate of 0,
//! as DTLS-SRTP uses (RFC 5764 §4.1.2).

use crate::cipher::AesCtr;
use crate::{ProtectionProfile, SrtpError};

/// RFC 3711 §4.3.2: the labels of the six session values.
#[derive(Clone, Copy)]
pub(crate) enum Label {
    RtpEncryption = 0,
    RtpAuthentication = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuthentication = 4,
    RtcpSalt = 5,
}

/// RFC 3711 §4.2.1: HMAC-SHA1 session authentication keys are 160 bits.
const AUTH_KEY_LEN: usize = 20;

/// The keys of one of SRTP or SRTCP.
pub(crate) struct SessionKeys {
    pub(crate) encryption: Vec<u8>,
    /// Empty for the AEAD profiles, which authenticate with the cipher.
    pub(crate) authentication: Vec<u8>,
    pub(crate) salt: Vec<u8>,
}

/// The AES-CM PRF of RFC 3711 §4.3.3 (AES-256-CM for AEAD_AES_256_GCM,
/// RFC 6188 §7): derives the session keys from the master key and salt.
pub(crate) struct KeyDerivation {
    prf: AesCtr,
    /// The master salt as 112 bits: RFC 7714's 96-bit salt is multiplied by
    /// 2^16 (RFC 7714 errata 4938).
    salt: [u8; 14],
}

impl KeyDerivation {
    pub(crate) fn new(master_key: &[u8], master_salt: &[u8]) -> Result<Self, SrtpError> {
        let mut salt = [0; 14];
        salt[..master_salt.len()].copy_from_slice(master_salt);
        Ok(Self {
            prf: AesCtr::new(master_key)?,
            salt,
        })
    }

    /// RFC 3711 §4.3.1: with kdr 0, x = label * 2^48 XOR master salt, and
    /// the value is the AES-CM keystream at IV x * 2^16.
    fn derive(&mut self, label: Label, len: usize) -> Result<Vec<u8>, SrtpError> {
        let mut iv = [0; 16];
        iv[..14].copy_from_slice(&self.salt);
        iv[7] ^= label as u8;
        let mut out = vec![0; len];
        self.prf.apply(&iv, &mut out)?;
        Ok(out)
    }

    /// The SRTP (`rtcp` false) or SRTCP keys of `profile`.
    pub(crate) fn session_keys(
        &mut self,
        profile: ProtectionProfile,
        rtcp: bool,
    ) -> Result<SessionKeys, SrtpError> {
        let [enc, auth, salt] = if rtcp {
            [
                Label::RtcpEncryption,
                Label::RtcpAuthentication,
                Label::RtcpSalt,
            ]
        } else {
            [
                Label::RtpEncryption,
                Label::RtpAuthentication,
                Label::RtpSalt,
            ]
        };
        let auth_len = if profile.is_aead() { 0 } else { AUTH_KEY_LEN };
        Ok(SessionKeys {
            encryption: self.derive(enc, profile.key_len())?,
            authentication: self.derive(auth, auth_len)?,
            salt: self.derive(salt, profile.salt_len())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::unhex;

    /// RFC 3711 Appendix B.3.
    #[test]
    fn rfc_3711_b3_key_derivation() {
        let mut kdf = KeyDerivation::new(
            &unhex("E1F97A0D3E018BE0D64FA32C06DE4139"),
            &unhex("0EC675AD498AFEEBB6960B3AABE6"),
        )
        .unwrap();
        let keys = kdf
            .session_keys(ProtectionProfile::Aes128CmHmacSha1_80, false)
            .unwrap();
        assert_eq!(keys.encryption, unhex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(keys.salt, unhex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(
            keys.authentication,
            unhex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
        // The PRF is a keystream: the longer output the RFC lists starts the same.
        assert_eq!(
            kdf.derive(Label::RtpAuthentication, 32).unwrap(),
            unhex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE")
        );
    }

    /// RFC 3711 Appendix B.2: the AES-CM keystream at the shifted salt.
    #[test]
    fn rfc_3711_b2_keystream() {
        let mut ctr = AesCtr::new(&unhex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
        let iv: [u8; 16] = unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
            .try_into()
            .unwrap();
        let mut stream = vec![0; 65282 * 16];
        ctr.apply(&iv, &mut stream).unwrap();
        assert_eq!(
            stream[..48],
            unhex("E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB41E95B3BB0A2E8DD477901E4FCA894C0")
        );
        assert_eq!(
            stream[stream.len() - 48..],
            unhex("EC8CDF7398607CB0F2D21675EA9EA1E4362B7C3C6773516318A077D7FC5073AE6A2CC3787889374FBEB4C81B17BA6C44")
        );
        // A new IV restarts the keystream, mid-block state dropped.
        let mut again = vec![0; 5];
        ctr.apply(&iv, &mut again).unwrap();
        let mut first = vec![0; 16];
        ctr.apply(&iv, &mut first).unwrap();
        assert_eq!(first, stream[..16]);
    }
}
