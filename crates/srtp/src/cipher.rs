//! The primitives: AES counter mode (OpenSSL, one context per key, re-keyed
//! with only a new IV per packet), HMAC-SHA1 (OpenSSL's SHA-1) and AES-GCM
//! (ring).

use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use openssl::hash::{DigestBytes, Hasher, MessageDigest};
use ring::aead;

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

/// HMAC-SHA1 (RFC 3711 §4.2.1, RFC 2104) under one session authentication
/// key, on OpenSSL's SHA-1 (SHA-NI where the CPU has it: about 4x ring's
/// portable SHA-1 on 1,200-byte packets). The key's inner and outer pads
/// are hashed once; each packet clones those states.
pub(crate) struct HmacSha1 {
    inner: Hasher,
    outer: Hasher,
}

/// SHA-1's block size, the HMAC pad length.
const SHA1_BLOCK: usize = 64;

impl HmacSha1 {
    pub(crate) fn new(key: &[u8]) -> Result<Self, SrtpError> {
        // RFC 2104 §2: keys longer than a block are hashed first; SRTP's
        // 160-bit keys never are, but the rule costs nothing.
        let digest;
        let key = if key.len() > SHA1_BLOCK {
            digest = openssl::hash::hash(MessageDigest::sha1(), key)?;
            &digest[..]
        } else {
            key
        };
        let pad = |byte: u8| -> Result<Hasher, SrtpError> {
            let mut block = [byte; SHA1_BLOCK];
            xor_into(&mut block, key);
            let mut hasher = Hasher::new(MessageDigest::sha1())?;
            hasher.update(&block)?;
            Ok(hasher)
        };
        Ok(Self {
            inner: pad(0x36)?,
            outer: pad(0x5c)?,
        })
    }

    /// The full 160-bit tag over the concatenation of `parts`.
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> Result<DigestBytes, SrtpError> {
        let mut inner = self.inner.clone();
        for part in parts {
            inner.update(part)?;
        }
        let mut outer = self.outer.clone();
        outer.update(&inner.finish()?)?;
        Ok(outer.finish()?)
    }

    /// Checks, in constant time, that `tag` is the (truncated) tag over
    /// `parts`.
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> Result<(), SrtpError> {
        let expected = self.sign(parts)?;
        if openssl::memcmp::eq(&expected[..tag.len()], tag) {
            Ok(())
        } else {
            Err(SrtpError::Authentication)
        }
    }
}

/// XORs `from` into the start of `into`.
pub(crate) fn xor_into(into: &mut [u8], from: &[u8]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a ^= b;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::unhex;

    /// RFC 2202 §3, test cases 1, 2 and 6 (a key longer than a block).
    #[test]
    fn hmac_sha1_rfc_2202() {
        for (key, data, mac) in [
            (
                vec![0x0b; 20],
                &b"Hi There"[..],
                "b617318655057264e28bc0b6fb378c8ef146be00",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?",
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
        ] {
            let hmac = HmacSha1::new(&key).unwrap();
            // Split in two parts: the parts are concatenated.
            let (a, b) = data.split_at(3);
            assert_eq!(hmac.sign(&[a, b]).unwrap()[..], unhex(mac));
            hmac.verify(&[data], &unhex(mac)[..10]).unwrap();
            assert!(hmac.verify(&[data], &[0; 10]).is_err());
        }
    }
}
