//! Credentials: the HMAC keys of the short-term and long-term mechanisms
//! (RFC 8489 §9) and USERHASH (§14.4).

use std::borrow::Cow;
use std::fmt;

use md5::{Digest, Md5};
use precis_core::profile::PrecisFastInvocation;
use precis_profiles::OpaqueString;
use sha2::Sha256;

/// The hash that turns long-term credentials into a key (RFC 8489 §18.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PasswordAlgorithm {
    /// MD5 (0x0001), the default and what RFC 5389 servers use.
    #[default]
    Md5,
    /// SHA-256 (0x0002).
    Sha256,
}

impl PasswordAlgorithm {
    /// The number carried in PASSWORD-ALGORITHM(S).
    pub const fn number(self) -> u16 {
        match self {
            PasswordAlgorithm::Md5 => 0x0001,
            PasswordAlgorithm::Sha256 => 0x0002,
        }
    }

    /// The algorithm with this number, if known.
    pub const fn from_number(number: u16) -> Option<Self> {
        match number {
            0x0001 => Some(PasswordAlgorithm::Md5),
            0x0002 => Some(PasswordAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// How passwords and realms are normalized before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PasswordPreparation {
    /// PRECIS OpaqueString (RFC 8265 §4.2), as RFC 8489 requires.
    #[default]
    OpaqueString,
    /// SASLprep (RFC 4013), as RFC 5389 and its test vectors (RFC 5769) use.
    SaslPrep,
}

impl PasswordPreparation {
    fn apply<'a>(self, what: &'static str, text: &'a str) -> Result<Cow<'a, str>, CredentialError> {
        match self {
            PasswordPreparation::OpaqueString => {
                OpaqueString::enforce(text).map_err(|e| CredentialError {
                    what,
                    profile: "OpaqueString",
                    reason: format!("{e:?}"),
                })
            }
            PasswordPreparation::SaslPrep => {
                stringprep::saslprep(text).map_err(|e| CredentialError {
                    what,
                    profile: "SASLprep",
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// A username, realm or password that its string profile refuses (for
/// example one with control characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {what} cannot be prepared with {profile}: {reason}")]
pub struct CredentialError {
    what: &'static str,
    profile: &'static str,
    reason: String,
}

/// The key of MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256.
#[derive(Clone, PartialEq, Eq)]
pub struct IntegrityKey(Vec<u8>);

impl fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IntegrityKey({} bytes)", self.0.len())
    }
}

impl IntegrityKey {
    /// RFC 8489 §9.1.1: the short-term key is the OpaqueString-prepared
    /// password (for ICE, the remote or local `ice-pwd`).
    pub fn short_term(password: &str) -> Result<Self, CredentialError> {
        let prepared = PasswordPreparation::OpaqueString.apply("password", password)?;
        Ok(IntegrityKey(prepared.as_bytes().to_vec()))
    }

    /// RFC 8489 §9.2.2: key = H(username ":" OpaqueString(realm) ":"
    /// OpaqueString(password)), H being MD5 or SHA-256.
    pub fn long_term(
        username: &str,
        realm: &str,
        password: &str,
        algorithm: PasswordAlgorithm,
    ) -> Result<Self, CredentialError> {
        Self::long_term_prepared_with(
            username,
            realm,
            password,
            algorithm,
            PasswordPreparation::OpaqueString,
        )
    }

    /// [`Self::long_term`] with a chosen string preparation; SASLprep gives
    /// the keys of RFC 5389 peers.
    pub fn long_term_prepared_with(
        username: &str,
        realm: &str,
        password: &str,
        algorithm: PasswordAlgorithm,
        preparation: PasswordPreparation,
    ) -> Result<Self, CredentialError> {
        let realm = preparation.apply("realm", realm)?;
        let password = preparation.apply("password", password)?;
        let parts: [&[u8]; 5] = [
            username.as_bytes(),
            b":",
            realm.as_bytes(),
            b":",
            password.as_bytes(),
        ];
        Ok(IntegrityKey(match algorithm {
            PasswordAlgorithm::Md5 => hash::<Md5>(&parts),
            PasswordAlgorithm::Sha256 => hash::<Sha256>(&parts),
        }))
    }

    /// A key from its bytes, as computed elsewhere (a stored long-term key,
    /// or an ICE password taken verbatim).
    pub fn from_bytes(key: &[u8]) -> Self {
        IntegrityKey(key.to_vec())
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

fn hash<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut digest = D::new();
    for part in parts {
        digest.update(part);
    }
    digest.finalize().to_vec()
}

/// RFC 8489 §14.4: userhash = SHA-256(OpaqueString(username) ":" OpaqueString(realm)).
pub fn userhash(username: &str, realm: &str) -> Result<[u8; 32], CredentialError> {
    let username = PasswordPreparation::OpaqueString.apply("username", username)?;
    let realm = PasswordPreparation::OpaqueString.apply("realm", realm)?;
    let digest = hash::<Sha256>(&[username.as_bytes(), b":", realm.as_bytes()]);
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest);
    Ok(out)
}
