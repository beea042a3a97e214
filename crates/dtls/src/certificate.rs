//! Certificates and their fingerprints.
//!
//! WebRTC authenticates DTLS with self-signed certificates whose hash travels
//! in the SDP (`a=fingerprint`, RFC 8122 §5); no certificate authority is
//! involved (RFC 8827 §6.5). A certificate is generated once and may be
//! reused across connections, as `RTCCertificate` is in browsers.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::SslContext;
use openssl::x509::{X509Name, X509};
use realtimer_sdp::{Fingerprint, HashFunction};

use crate::{DtlsError, SrtpProfile};

/// Most distinct context settings cached per certificate (a process uses
/// one or two).
const CONTEXTS_KEPT: usize = 4;

/// What shapes an SSL context besides the certificate: cipher list and
/// SRTP profiles.
type ContextKey = (&'static str, Vec<SrtpProfile>);

/// How long a generated certificate stays valid: 30 days, the default
/// expiry of a browser's `RTCCertificate` (W3C webrtc-pc §4.9).
const VALIDITY: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How far back `notBefore` is set, so that peers with a slow clock accept
/// the certificate from the first second.
const BACKDATE: Duration = Duration::from_secs(24 * 60 * 60);

/// A certificate with its private key, and the SHA-256 fingerprint to put
/// in the local SDP.
///
/// Cloning is cheap (OpenSSL reference counts); the same certificate can
/// serve many connections.
#[derive(Clone)]
pub struct Certificate {
    pub(crate) cert: X509,
    pub(crate) key: PKey<Private>,
    fingerprint: Fingerprint,
    /// OpenSSL contexts built for this certificate, shared by the
    /// connections that use it: building one checks the key and costs
    /// about 0.25 ms and 8 KB. A cache on an immutable value, hence the
    /// lock; no connection state lives here.
    contexts: Arc<Mutex<Vec<(ContextKey, SslContext)>>>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Generates an ECDSA P-256 self-signed certificate (what browsers
    /// generate by default, RFC 8827 §6.5 and webrtc-pc §4.9), valid from one
    /// day before `now` for 30 days, subject `CN=WebRTC`, random serial.
    ///
    /// `now` comes from the caller: this crate never reads a clock. Key and
    /// serial come from OpenSSL's CSPRNG; cryptographic randomness is the one
    /// thing a test cannot (and should not) seed.
    pub fn generate(now: SystemTime) -> Result<Self, DtlsError> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(cert_err)?;
        let ec = EcKey::generate(&group).map_err(cert_err)?;
        let key = PKey::from_ec_key(ec).map_err(cert_err)?;
        let cert = self_signed(&key, now, MessageDigest::sha256())?;
        Self::from_parts(cert, key)
    }

    /// A certificate from PEM text: the certificate, and its private key
    /// (PKCS#8 or traditional format). The key must match the certificate.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, DtlsError> {
        let cert = X509::from_pem(cert_pem).map_err(cert_err)?;
        let key = PKey::private_key_from_pem(key_pem).map_err(cert_err)?;
        Self::from_parts(cert, key)
    }

    /// A certificate from OpenSSL objects (e.g. an RSA certificate built by
    /// the caller). The key must match the certificate.
    pub fn from_openssl(cert: X509, key: PKey<Private>) -> Result<Self, DtlsError> {
        Self::from_parts(cert, key)
    }

    fn from_parts(cert: X509, key: PKey<Private>) -> Result<Self, DtlsError> {
        let public = cert.public_key().map_err(cert_err)?;
        if !public.public_eq(&key) {
            return Err(DtlsError::Certificate(
                "the private key does not match the certificate".into(),
            ));
        }
        let der = cert.to_der().map_err(cert_err)?;
        let fingerprint = fingerprint_of_der(HashFunction::Sha256, &der)?;
        Ok(Self {
            cert,
            key,
            fingerprint,
            contexts: Arc::default(),
        })
    }

    /// The context for these settings: the cached one, or a new one from
    /// `build` (kept for the next connection).
    pub(crate) fn context(
        &self,
        cipher_list: &'static str,
        srtp_profiles: &[SrtpProfile],
        build: impl FnOnce() -> Result<SslContext, DtlsError>,
    ) -> Result<SslContext, DtlsError> {
        let key = (cipher_list, srtp_profiles.to_vec());
        // A poisoned lock only means another thread panicked mid-push.
        let mut cached = self.contexts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, ctx)) = cached.iter().find(|(k, _)| *k == key) {
            return Ok(ctx.clone());
        }
        let ctx = build()?;
        if cached.len() < CONTEXTS_KEPT {
            cached.push((key, ctx.clone()));
        }
        Ok(ctx)
    }

    /// The SHA-256 fingerprint for the local SDP's `a=fingerprint`.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The certificate in DER form.
    pub fn to_der(&self) -> Result<Vec<u8>, DtlsError> {
        self.cert.to_der().map_err(cert_err)
    }

    /// The certificate and its private key (PKCS#8) as PEM text, to store
    /// and reload with [`Certificate::from_pem`].
    pub fn to_pem(&self) -> Result<(Vec<u8>, Vec<u8>), DtlsError> {
        let cert = self.cert.to_pem().map_err(cert_err)?;
        let key = self.key.private_key_to_pem_pkcs8().map_err(cert_err)?;
        Ok((cert, key))
    }
}

/// Builds a self-signed certificate for `key`, valid from a day before `now`
/// for 30 days.
fn self_signed(
    key: &PKey<Private>,
    now: SystemTime,
    digest: MessageDigest,
) -> Result<X509, DtlsError> {
    let mut name = X509Name::builder().map_err(cert_err)?;
    name.append_entry_by_nid(Nid::COMMONNAME, "WebRTC")
        .map_err(cert_err)?;
    let name = name.build();

    let mut serial = BigNum::new().map_err(cert_err)?;
    serial
        .rand(63, MsbOption::MAYBE_ZERO, false)
        .map_err(cert_err)?;
    let serial = serial.to_asn1_integer().map_err(cert_err)?;

    let unix = |t: SystemTime| -> Result<Asn1Time, DtlsError> {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| DtlsError::Certificate("the time is before 1970".into()))?
            .as_secs();
        let secs = i64::try_from(secs)
            .map_err(|_| DtlsError::Certificate("the time is out of range".into()))?;
        Asn1Time::from_unix(secs).map_err(cert_err)
    };
    let not_before = unix(now.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH))?;
    let not_after = unix(now + VALIDITY)?;

    let mut builder = X509::builder().map_err(cert_err)?;
    builder.set_version(2).map_err(cert_err)?;
    builder.set_serial_number(&serial).map_err(cert_err)?;
    builder.set_subject_name(&name).map_err(cert_err)?;
    builder.set_issuer_name(&name).map_err(cert_err)?;
    builder.set_not_before(&not_before).map_err(cert_err)?;
    builder.set_not_after(&not_after).map_err(cert_err)?;
    builder.set_pubkey(key).map_err(cert_err)?;
    builder.sign(key, digest).map_err(cert_err)?;
    Ok(builder.build())
}

fn cert_err(e: openssl::error::ErrorStack) -> DtlsError {
    DtlsError::Certificate(e.to_string())
}

/// The OpenSSL digest of a hash function, for those a fingerprint can use
/// (RFC 8122 §5: SHA-1 is still accepted from peers, MD5 and MD2 are not).
fn message_digest(algorithm: &HashFunction) -> Option<MessageDigest> {
    match algorithm {
        HashFunction::Sha1 => Some(MessageDigest::sha1()),
        HashFunction::Sha224 => Some(MessageDigest::sha224()),
        HashFunction::Sha256 => Some(MessageDigest::sha256()),
        HashFunction::Sha384 => Some(MessageDigest::sha384()),
        HashFunction::Sha512 => Some(MessageDigest::sha512()),
        _ => None,
    }
}

/// The fingerprint of a DER-encoded certificate: its hash by `hash`
/// (RFC 8122 §5).
pub fn fingerprint_of_der(hash: HashFunction, der: &[u8]) -> Result<Fingerprint, DtlsError> {
    let digest =
        message_digest(&hash).ok_or_else(|| DtlsError::UnsupportedHash(hash.to_string()))?;
    let digest = openssl::hash::hash(digest, der).map_err(|e| DtlsError::Ssl(e.to_string()))?;
    Ok(Fingerprint {
        hash,
        value: digest.to_vec(),
    })
}

/// Checks that a peer's fingerprint can authenticate it: a hash function we
/// compute (RFC 8122 §5 forbids MD5 and MD2) and a digest of that
/// function's length.
pub fn check_fingerprint(fingerprint: &Fingerprint) -> Result<(), DtlsError> {
    let expected_len = message_digest(&fingerprint.hash)
        .and(fingerprint.hash.digest_len())
        .ok_or_else(|| DtlsError::UnsupportedHash(fingerprint.hash.to_string()))?;
    if fingerprint.value.len() != expected_len {
        return Err(DtlsError::MalformedFingerprint(
            "digest length does not match the hash function",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_of_a_certificate_share_one_context_per_settings() {
        let cert = Certificate::generate(UNIX_EPOCH + Duration::from_secs(1_700_000_000)).unwrap();
        let built = std::cell::Cell::new(0);
        let build = || {
            built.set(built.get() + 1);
            Ok(
                openssl::ssl::SslContext::builder(openssl::ssl::SslMethod::dtls())
                    .unwrap()
                    .build(),
            )
        };
        cert.clone().context("A", &[], build).unwrap();
        cert.context("A", &[], build).unwrap();
        assert_eq!(built.get(), 1, "the clone's context serves the original");
        cert.context("A", &[SrtpProfile::AeadAes128Gcm], build)
            .unwrap();
        assert_eq!(built.get(), 2, "other settings, another context");
    }

    #[test]
    fn generated_certificate_is_p256_and_fingerprint_round_trips() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cert = Certificate::generate(now).unwrap();
        let fp = cert.fingerprint();
        assert_eq!(fp.hash, HashFunction::Sha256);
        assert_eq!(fp.value.len(), 32);
        let text = fp.to_string();
        assert!(text.starts_with("sha-256 "));
        assert_eq!(text.len(), "sha-256 ".len() + 32 * 3 - 1);
        assert_eq!(text.parse::<Fingerprint>().unwrap(), *fp);
        assert_eq!(
            text.to_ascii_lowercase()
                .replace("sha-256", "SHA-256")
                .parse::<Fingerprint>()
                .unwrap(),
            *fp
        );
        let ec = cert.key.ec_key().unwrap();
        assert_eq!(ec.group().curve_name(), Some(Nid::X9_62_PRIME256V1));
        assert_eq!(
            cert.cert.not_before().to_string(),
            Asn1Time::from_unix(1_700_000_000 - 86_400)
                .unwrap()
                .to_string()
        );
    }

    #[test]
    fn pem_round_trip_keeps_the_fingerprint() {
        let cert = Certificate::generate(UNIX_EPOCH + Duration::from_secs(1_700_000_000)).unwrap();
        let (c, k) = cert.to_pem().unwrap();
        let back = Certificate::from_pem(&c, &k).unwrap();
        assert_eq!(back.fingerprint(), cert.fingerprint());
        let other = Certificate::generate(UNIX_EPOCH + Duration::from_secs(1_700_000_000)).unwrap();
        let (_, other_key) = other.to_pem().unwrap();
        assert!(matches!(
            Certificate::from_pem(&c, &other_key),
            Err(DtlsError::Certificate(_))
        ));
    }

    #[test]
    fn fingerprints_that_cannot_authenticate_are_rejected() {
        for bad in [
            "sha-256 AB:CD",
            "md5 AB",
            "md5 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F",
        ] {
            let parsed: Fingerprint = bad.parse().unwrap();
            assert!(check_fingerprint(&parsed).is_err(), "{bad}");
        }
        for bad in ["", "sha-256", "sha-256 AB:C", "sha-1 GG"] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
        }
        let sha1: Fingerprint = format!("sha-1 {}", ["0a"; 20].join(":")).parse().unwrap();
        assert_eq!(check_fingerprint(&sha1), Ok(()));
        assert_eq!(sha1.value, vec![10; 20]);
    }
}
