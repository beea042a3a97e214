//! The primitives: AES counter mode (OpenSSL, one context per key, re-keyed
//! with only a new IV per packet), HMAC-SHA1 and AES-GCM (ring).

use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use ring::{aead, hmac};

use crate::SrtpError;

/// AES in counter mode (RFC 3711 §4.1.1) under one key.
pub(crate) struct AesCtr {
    ctx: CipherCtx,
}

impl AesCtr {
    /// A context for a 128- or 256-bit key.
    pub(crate) fn new(key: &[u8]) -> Result<Self, SrtpError> {
        let cipher = if key.len() == 32 {
            Cipher::aes_256_ctr()
        } else {
            Cipher::aes_128_ctr()
        };
        let mut ctx = CipherCtx::new()?;
        ctx.encrypt_init(Some(cipher), Some(key), None)?;
        Ok(Self { ctx })
    }

    /// XORs `data` with the keystream starting at counter block `iv`.
    pub(crate) fn apply(&mut self, iv: &[u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
        // A new IV restarts the stream (OpenSSL resets the block offset).
        self.ctx.encrypt_init(None, None, Some(iv))?;
        self.ctx.cipher_update_inplace(data, data.len())?;
        Ok(())
    }
}

/// HMAC-SHA1 (RFC 3711 §4.2.1) under one session authentication key.
pub(crate) struct HmacSha1 {
    key: hmac::Key,
}

impl HmacSha1 {
    pub(crate) fn new(key: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key),
        }
    }

    /// The full 160-bit tag over the concatenation of `parts`.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in parts {
            ctx.update(part);
        }
        ctx.sign()
    }

    /// Checks, in constant time, that `tag` is the (truncated) tag over
    /// `parts`.
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> Result<(), SrtpError> {
        let expected = self.sign(parts);
        let expected = &expected.as_ref()[..tag.len()];
        if openssl::memcmp::eq(expected, tag) {
            Ok(())
        } else {
            Err(SrtpError::Authentication)
        }
    }
}

/// AES-GCM (RFC 7714) under one session key.
pub(crate) struct AesGcm {
    /// Boxed: ring's expanded key is large next to the CM transform.
    key: Box<aead::LessSafeKey>,
}

/// RFC 7714 §7: the GCM authentication tag is 16 bytes in SRTP.
pub(crate) const GCM_TAG_LEN: usize = 16;

impl AesGcm {
    pub(crate) fn new(key: &[u8]) -> Result<Self, SrtpError> {
        let algorithm = if key.len() == 32 {
            &aead::AES_256_GCM
        } else {
            &aead::AES_128_GCM
        };
        let key = aead::UnboundKey::new(algorithm, key).map_err(|_| SrtpError::KeyLength {
            what: "GCM session key",
            expected: algorithm.key_len(),
            got: key.len(),
        })?;
        Ok(Self {
            key: Box::new(aead::LessSafeKey::new(key)),
        })
    }

    /// Encrypts `data` in place and returns the tag.
    pub(crate) fn seal(
        &self,
        iv: [u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<aead::Tag, SrtpError> {
        self.key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(iv),
                aead::Aad::from(aad),
                data,
            )
            .map_err(|_| SrtpError::Authentication)
    }

    /// Checks the tag at the end of `data` and decrypts the rest in place;
    /// returns the plaintext length.
    pub(crate) fn open(
        &self,
        iv: [u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<usize, SrtpError> {
        self.key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(iv),
                aead::Aad::from(aad),
                data,
            )
            .map(|plain| plain.len())
            .map_err(|_| SrtpError::Authentication)
    }
}
