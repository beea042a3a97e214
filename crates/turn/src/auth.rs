//! Long-term credentials (RFC 8489 §9.2): static users, the REST scheme of
//! coturn's `use-auth-secret`, and stateless nonces that expire.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use realtimer_stun::{CredentialError, IntegrityKey, PasswordAlgorithm};
use sha1::Sha1;

use crate::error::RequestError;

/// Who may allocate: static users and, optionally, a shared secret for
/// time-limited usernames.
#[derive(Clone)]
pub struct Credentials {
    realm: String,
    users: HashMap<String, IntegrityKey>,
    rest_secret: Option<Vec<u8>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .field("rest_secret", &self.rest_secret.is_some())
            .finish()
    }
}

/// The user a request authenticated as, with the key its response is signed with.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    /// The USERNAME as sent (the allocation is tied to it, RFC 8656 §7.2).
    pub(crate) username: String,
    /// The account quotas count against: the static user, or the user part
    /// of a REST username, so minting new expiry times buys no more quota.
    pub(crate) account: String,
    pub(crate) key: IntegrityKey,
}

impl Credentials {
    /// No users yet, in `realm` (sent in REALM, part of every key).
    pub fn new(realm: impl Into<String>) -> Self {
        Credentials {
            realm: realm.into(),
            users: HashMap::new(),
            rest_secret: None,
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Adds a static user. The key MD5(user:realm:password) is computed now
    /// and the password forgotten.
    pub fn add_user(&mut self, username: &str, password: &str) -> Result<(), CredentialError> {
        let key = IntegrityKey::long_term(username, &self.realm, password, PasswordAlgorithm::Md5)?;
        self.users.insert(username.to_owned(), key);
        Ok(())
    }

    /// Accepts time-limited usernames `expiry:user` (expiry in Unix seconds)
    /// whose password is `base64(HMAC-SHA1(secret, username))`, as coturn's
    /// `use-auth-secret` and the "TURN REST API" draft define.
    pub fn set_rest_secret(&mut self, secret: impl Into<Vec<u8>>) {
        self.rest_secret = Some(secret.into());
    }

    /// True when no request can ever authenticate.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.rest_secret.is_none()
    }

    /// The key for `username` at `unix_now`, or why there is none.
    pub(crate) fn lookup(
        &self,
        username: &str,
        unix_now: u64,
    ) -> Result<Authenticated, RequestError> {
        if let Some(key) = self.users.get(username) {
            return Ok(Authenticated {
                username: username.to_owned(),
                account: username.to_owned(),
                key: key.clone(),
            });
        }
        let Some(secret) = &self.rest_secret else {
            return Err(RequestError::UnknownUser);
        };
        let (expiry, user) = match username.split_once(':') {
            Some((expiry, user)) => (expiry, user),
            None => (username, ""),
        };
        let expiry: u64 = expiry.parse().map_err(|_| RequestError::UnknownUser)?;
        if expiry < unix_now {
            return Err(RequestError::CredentialExpired);
        }
        let password = rest_password(secret, username);
        let key = IntegrityKey::long_term(username, &self.realm, &password, PasswordAlgorithm::Md5)
            .map_err(|_| RequestError::UnknownUser)?;
        Ok(Authenticated {
            username: username.to_owned(),
            account: format!("rest:{user}"),
            key,
        })
    }
}

/// The REST scheme's password: `base64(HMAC-SHA1(secret, username))`.
pub fn rest_password(secret: &[u8], username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    base64(&mac.finalize().into_bytes())
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of a nonce: 48 bits of expiry, 64 of MAC.
const NONCE_BYTES: usize = 14;
/// 48 bits of milliseconds: about 8,900 years after the server's epoch.
const NONCE_EXPIRY_MASK: u64 = (1 << 48) - 1;

/// The 14 bytes of a nonce from its 20 base64 characters, or `None` for
/// anything that is not exactly what [`Nonces::issue`] writes.
fn decode_nonce(nonce: &str) -> Option<[u8; NONCE_BYTES]> {
    let text = nonce.as_bytes();
    // 14 bytes: four groups of three, then two bytes as three characters and '='.
    if text.len() != 20 || text[19] != b'=' {
        return None;
    }
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = [0u8; NONCE_BYTES];
    let mut filled = 0;
    for &c in &text[..19] {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            if filled == NONCE_BYTES {
                return None;
            }
            out[filled] = (bits >> count) as u8;
            filled += 1;
            bits &= (1 << count) - 1;
        }
    }
    // The two bits left over must be zero, as the encoder writes them.
    (filled == NONCE_BYTES && bits == 0).then_some(out)
}

/// Stateless nonces: the expiry time and an HMAC over it and the client's
/// address, so a nonce cannot be forged, moved to another client or
/// extended, and the server keeps no table of them.
#[derive(Clone)]
pub(crate) struct Nonces {
    secret: [u8; 16],
}

impl fmt::Debug for Nonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nonces")
    }
}

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceError {
    /// Not one of ours, or for another client.
    Invalid,
    /// Ours, but past its expiry: 438 Stale Nonce.
    Expired,
}

impl Nonces {
    pub(crate) fn new(secret: [u8; 16]) -> Self {
        Nonces { secret }
    }

    fn mac(&self, expiry_ms: u64, client: SocketAddr) -> [u8; 8] {
        let mut mac =
            Hmac::<Sha1>::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(&expiry_ms.to_be_bytes());
        match client {
            SocketAddr::V4(a) => mac.update(&a.ip().octets()),
            SocketAddr::V6(a) => mac.update(&a.ip().octets()),
        }
        mac.update(&client.port().to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest[..8]);
        out
    }

    /// A nonce for `client` valid until `expiry_ms` (milliseconds since the
    /// server's epoch): the expiry's low 48 bits and a 64-bit MAC, 14 bytes in
    /// base64 (20 characters, all `qdtext` as RFC 8489 §14.10 asks). Short on
    /// purpose: it goes in every 401 anyone can ask for from a forged address.
    pub(crate) fn issue(&self, expiry_ms: u64, client: SocketAddr) -> String {
        let expiry_ms = expiry_ms & NONCE_EXPIRY_MASK;
        let mut raw = [0u8; NONCE_BYTES];
        raw[..6].copy_from_slice(&expiry_ms.to_be_bytes()[2..]);
        raw[6..].copy_from_slice(&self.mac(expiry_ms, client));
        base64(&raw)
    }

    /// Checks a nonce from `client` at `now_ms`.
    pub(crate) fn check(
        &self,
        nonce: &str,
        client: SocketAddr,
        now_ms: u64,
    ) -> Result<(), NonceError> {
        let raw = decode_nonce(nonce).ok_or(NonceError::Invalid)?;
        let mut expiry = [0u8; 8];
        expiry[2..].copy_from_slice(&raw[..6]);
        let expiry = u64::from_be_bytes(expiry);
        let mac = &raw[6..];
        let expected = self.mac(expiry, client);
        // Compare without an early exit.
        let diff = mac
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(NonceError::Invalid);
        }
        if now_ms >= expiry {
            return Err(NonceError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn rest_password_matches_coturn() {
        // Secret "north", username
        // "1600000000:alice"; the value below is
        // `echo -n 1600000000:alice | openssl dgst -sha1 -hmac north -binary | base64`.
        assert_eq!(
            rest_password(b"north", "1600000000:alice"),
            "gq98pTOhhHaAu0we9aV79kOVVv0="
        );
    }

    #[test]
    fn rest_usernames_expire_and_share_one_account() {
        let mut c = Credentials::new("r");
        c.set_rest_secret("s");
        let a = c.lookup("2000:bob", 1999).unwrap();
        let b = c.lookup("3000:bob", 1999).unwrap();
        assert_eq!(a.account, b.account);
        assert_ne!(a.key, b.key);
        assert_eq!(
            c.lookup("1000:bob", 1999).unwrap_err(),
            RequestError::CredentialExpired
        );
        assert_eq!(c.lookup("bob", 1).unwrap_err(), RequestError::UnknownUser);
        assert!(c.lookup("5000", 1).is_ok());
    }

    #[test]
    fn nonces_bind_client_and_expire() {
        let n = Nonces::new([3; 16]);
        let client: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let other: SocketAddr = "192.0.2.1:5001".parse().unwrap();
        let nonce = n.issue(10_000, client);
        assert_eq!(n.check(&nonce, client, 9_999), Ok(()));
        assert_eq!(n.check(&nonce, client, 10_000), Err(NonceError::Expired));
        assert_eq!(n.check(&nonce, other, 1), Err(NonceError::Invalid));
        assert_eq!(nonce.len(), 20);
        // A longer expiry with the old MAC is refused.
        let mut forged = decode_nonce(&nonce).unwrap();
        forged[5] ^= 0x80;
        assert_eq!(
            n.check(&base64(&forged), client, 1),
            Err(NonceError::Invalid)
        );
        // One character changed anywhere is refused.
        for i in 0..19 {
            let mut bytes = nonce.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(
                n.check(&changed, client, 1),
                Err(NonceError::Invalid),
                "{i}"
            );
        }
        assert_eq!(n.check("zz", client, 1), Err(NonceError::Invalid));
        assert_eq!(
            n.check(&"é".repeat(16), client, 1),
            Err(NonceError::Invalid)
        );
    }
}
