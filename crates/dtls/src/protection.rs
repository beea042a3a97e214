//! Our own record layer for application data, once OpenSSL has finished
//! the handshake.
//!
//! OpenSSL 3 spends most of a small record's time outside the cipher (BIO
//! calls, provider parameter lookups, copies through its buffers). After
//! the handshake a WebRTC connection only moves application data and the
//! odd alert, in one epoch, with an AEAD suite, so that part is done here:
//! the keys come from OpenSSL's session (master secret and randoms, TLS 1.2
//! key expansion, RFC 5246 §6.3), and the AEAD is `ring`'s, which seals
//! and opens in place with no per-record setup: through OpenSSL 3's EVP
//! interface each record paid for parameter lookups (string compares) and
//! context re-initialisation that cost more than the cipher itself.
//!
//! Before it is used, [`RecordProtection::derive`] proves its keys on the
//! two Finished records of the handshake (ours and the peer's, epoch 1):
//! both must authenticate, or the connection stays on OpenSSL's record
//! layer. A wrong derivation therefore costs speed, never data.

#[cfg(test)]
use bytes::Bytes;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::ssl::SslRef;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::record::HEADER_LEN;
use crate::Role;

/// RFC 6347 §4.1: DTLS 1.2 is version {254, 253} on the wire.
const DTLS_1_2: [u8; 2] = [0xfe, 0xfd];

/// The epoch of the keys the handshake establishes (no renegotiation).
pub(crate) const EPOCH: u16 = 1;

/// RFC 5246 §6.2.1 content types this layer handles.
pub(crate) const ALERT: u8 = 21;
pub(crate) const APPLICATION_DATA: u8 = 23;

/// AEAD tag length of every suite we offer.
const TAG_LEN: usize = 16;

/// RFC 6347 §4.1.2.6: the replay window covers the last 64 sequence numbers.
const WINDOW: u64 = 64;

/// The AEAD cipher suites we offer ([`crate::connection`]'s list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    /// RFC 5288: 4-byte implicit salt, 8-byte explicit nonce per record.
    Aes128Gcm,
    Aes256Gcm,
    /// RFC 7905: 12-byte IV XORed with the sequence number, no explicit nonce.
    ChaCha20Poly1305,
}

impl Suite {
    /// From the RFC name OpenSSL reports for the negotiated suite.
    fn from_standard_name(name: &str) -> Option<Self> {
        if name.ends_with("_WITH_AES_128_GCM_SHA256") {
            Some(Self::Aes128Gcm)
        } else if name.ends_with("_WITH_AES_256_GCM_SHA384") {
            Some(Self::Aes256Gcm)
        } else if name.ends_with("_WITH_CHACHA20_POLY1305_SHA256") {
            Some(Self::ChaCha20Poly1305)
        } else {
            None
        }
    }

    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Self::Aes128Gcm => &aead::AES_128_GCM,
            Self::Aes256Gcm => &aead::AES_256_GCM,
            Self::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    /// The PRF hash (RFC 5246 §5; the suite's own hash, RFC 5288 §3).
    fn prf_digest(self) -> MessageDigest {
        match self {
            Self::Aes256Gcm => MessageDigest::sha384(),
            Self::Aes128Gcm | Self::ChaCha20Poly1305 => MessageDigest::sha256(),
        }
    }

    fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => 32,
        }
    }

    /// `fixed_iv_length` of the key block (RFC 5288 §3, RFC 7905 §2).
    fn fixed_iv_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => 4,
            Self::ChaCha20Poly1305 => 12,
        }
    }

    /// Bytes of nonce carried in each record before the ciphertext.
    fn explicit_nonce_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => 8,
            Self::ChaCha20Poly1305 => 0,
        }
    }

    /// Record bytes besides the plaintext: header, explicit nonce, tag.
    fn overhead(self) -> usize {
        HEADER_LEN + self.explicit_nonce_len() + TAG_LEN
    }

    /// The per-record nonce for `epoch_seq` (epoch << 48 | sequence number,
    /// the DTLS `seq_num` of RFC 6347 §4.1.2.1).
    fn nonce(self, fixed: &[u8; 12], epoch_seq: u64) -> [u8; 12] {
        let mut nonce = *fixed;
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => {
                nonce[4..].copy_from_slice(&epoch_seq.to_be_bytes())
            }
            Self::ChaCha20Poly1305 => {
                for (n, s) in nonce[4..].iter_mut().zip(epoch_seq.to_be_bytes()) {
                    *n ^= s;
                }
            }
        }
        nonce
    }
}

/// One direction's key and fixed IV.
struct Direction {
    key: LessSafeKey,
    fixed_iv: [u8; 12],
}

impl Direction {
    fn new(suite: Suite, key: &[u8], fixed_iv: &[u8]) -> Result<Self, Unavailable> {
        let key = UnboundKey::new(suite.algorithm(), key).map_err(|_| Unavailable::KeysDisagree)?;
        let mut iv = [0; 12];
        iv[..fixed_iv.len()].copy_from_slice(fixed_iv);
        Ok(Self {
            key: LessSafeKey::new(key),
            fixed_iv: iv,
        })
    }
}

/// RFC 5246 §6.2.3.3: `additional_data = seq_num + type + version + length`.
fn additional_data(epoch_seq: u64, content_type: u8, plaintext_len: usize) -> [u8; 13] {
    let mut aad = [0; 13];
    aad[..8].copy_from_slice(&epoch_seq.to_be_bytes());
    aad[8] = content_type;
    aad[9..11].copy_from_slice(&DTLS_1_2);
    // Callers bound records to 2^14 + 2048 bytes.
    aad[11..].copy_from_slice(&(plaintext_len as u16).to_be_bytes());
    aad
}

/// A received epoch-1 record, parsed but not yet authenticated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProtectedRecord<'a> {
    pub(crate) content_type: u8,
    pub(crate) epoch_seq: u64,
    /// Explicit nonce (if any), ciphertext and tag.
    pub(crate) fragment: &'a [u8],
}

impl<'a> ProtectedRecord<'a> {
    /// Splits a datagram into records (RFC 6347 §4.1: several may share
    /// one); stops at the first that does not fit.
    pub(crate) fn iter(datagram: &'a [u8]) -> impl Iterator<Item = ProtectedRecord<'a>> + 'a {
        let mut rest = datagram;
        std::iter::from_fn(move || {
            let header = rest.get(..HEADER_LEN)?;
            let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
            let fragment = rest.get(HEADER_LEN..HEADER_LEN + len)?;
            let mut epoch_seq = [0; 8];
            epoch_seq.copy_from_slice(&header[3..11]);
            let record = ProtectedRecord {
                content_type: header[0],
                epoch_seq: u64::from_be_bytes(epoch_seq),
                fragment,
            };
            rest = &rest[HEADER_LEN + len..];
            Some(record)
        })
    }

    pub(crate) fn epoch(&self) -> u16 {
        (self.epoch_seq >> 48) as u16
    }
}

/// RFC 6347 §4.1.2.6 sliding window over received sequence numbers
/// (epoch 1 only), updated only for records that authenticate.
#[derive(Debug, Default)]
struct ReplayWindow {
    /// The highest sequence number accepted, if any.
    top: Option<u64>,
    /// Bit `i` set: `top - i` was received.
    seen: u64,
}

impl ReplayWindow {
    fn is_fresh(&self, seq: u64) -> bool {
        match self.top {
            None => true,
            Some(top) if seq > top => true,
            Some(top) => top - seq < WINDOW && self.seen & (1 << (top - seq)) == 0,
        }
    }

    fn mark(&mut self, seq: u64) {
        match self.top {
            Some(top) if seq <= top => {
                self.seen |= 1u64.checked_shl((top - seq) as u32).unwrap_or(0)
            }
            Some(top) => {
                self.seen = self.seen.checked_shl((seq - top) as u32).unwrap_or(0) | 1;
                self.top = Some(seq);
            }
            None => {
                self.seen = 1;
                self.top = Some(seq);
            }
        }
    }
}

/// Seals and opens epoch-1 records with the session's keys.
pub(crate) struct RecordProtection {
    suite: Suite,
    write: Direction,
    read: Direction,
    /// The next sequence number we write (after OpenSSL's last).
    next_seq: u64,
    window: ReplayWindow,
}

impl std::fmt::Debug for RecordProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordProtection")
            .field("suite", &self.suite)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

/// Why the connection stays on OpenSSL's record layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// A suite we have no fast path for.
    Suite(String),
    /// OpenSSL did not give the session's secrets.
    NoSession,
    /// A Finished record did not authenticate with the derived keys.
    KeysDisagree,
    Ssl(String),
}

impl From<ErrorStack> for Unavailable {
    fn from(e: ErrorStack) -> Self {
        Self::Ssl(e.to_string())
    }
}

impl RecordProtection {
    /// Derives the record keys of the finished handshake on `ssl`
    /// (RFC 5246 §6.3) and checks them on the epoch-1 records the handshake
    /// carried: `ours` (written by OpenSSL, the highest sequence number it
    /// used comes from there) and `theirs` (received). The sequence numbers
    /// of the peer's records that authenticate are marked as seen.
    pub(crate) fn derive(
        ssl: &SslRef,
        role: Role,
        ours: &[Vec<u8>],
        theirs: &[Vec<u8>],
    ) -> Result<Self, Unavailable> {
        let cipher = ssl.current_cipher().ok_or(Unavailable::NoSession)?;
        let name = cipher.standard_name().unwrap_or_else(|| cipher.name());
        let suite =
            Suite::from_standard_name(name).ok_or_else(|| Unavailable::Suite(name.to_owned()))?;
        let session = ssl.session().ok_or(Unavailable::NoSession)?;
        let mut master = [0; 48];
        if session.master_key(&mut master) != master.len() {
            return Err(Unavailable::NoSession);
        }
        // RFC 5246 §6.3: seed = server_random + client_random.
        let mut seed = [0; 64];
        if ssl.server_random(&mut seed[..32]) != 32 || ssl.client_random(&mut seed[32..]) != 32 {
            return Err(Unavailable::NoSession);
        }
        let (key_len, iv_len) = (suite.key_len(), suite.fixed_iv_len());
        let mut block = vec![0; 2 * (key_len + iv_len)];
        prf(
            suite.prf_digest(),
            &master,
            b"key expansion",
            &seed,
            &mut block,
        )?;
        master.fill(0);
        // client_write_key, server_write_key, client_write_IV, server_write_IV.
        let (keys, ivs) = block.split_at(2 * key_len);
        let (client_key, server_key) = keys.split_at(key_len);
        let (client_iv, server_iv) = ivs.split_at(iv_len);
        let (write, read) = match role {
            Role::Client => ((client_key, client_iv), (server_key, server_iv)),
            Role::Server => ((server_key, server_iv), (client_key, client_iv)),
        };
        let mut protection = Self {
            suite,
            write: Direction::new(suite, write.0, write.1)?,
            read: Direction::new(suite, read.0, read.1)?,
            next_seq: 0,
            window: ReplayWindow::default(),
        };
        // Our own records are checked with our write keys.
        let check_ours = Direction::new(suite, write.0, write.1)?;
        block.fill(0);

        let mut ours_ok = false;
        for datagram in ours {
            for record in ProtectedRecord::iter(datagram).filter(|r| r.epoch() == EPOCH) {
                let seq = record.epoch_seq & 0xffff_ffff_ffff;
                protection.next_seq = protection.next_seq.max(seq + 1);
                ours_ok |= open_with(suite, &check_ours, &record).is_some();
            }
        }
        let mut theirs_ok = false;
        for datagram in theirs {
            for record in ProtectedRecord::iter(datagram).filter(|r| r.epoch() == EPOCH) {
                if open_with(suite, &protection.read, &record).is_some() {
                    protection.window.mark(record.epoch_seq & 0xffff_ffff_ffff);
                    theirs_ok = true;
                }
            }
        }
        if ours_ok && theirs_ok {
            Ok(protection)
        } else {
            Err(Unavailable::KeysDisagree)
        }
    }

    /// The record bytes around `plaintext_len` bytes of plaintext.
    pub(crate) fn overhead(&self) -> usize {
        self.suite.overhead()
    }

    /// One record of `content_type` carrying `plaintext`, appended to
    /// `out` (RFC 6347 §4.1 header, RFC 5246 §6.2.3.3 AEAD fragment).
    pub(crate) fn seal(
        &mut self,
        content_type: u8,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        let epoch_seq = (u64::from(EPOCH) << 48) | self.next_seq;
        self.next_seq += 1;
        let explicit = self.suite.explicit_nonce_len();
        let fragment_len = explicit + plaintext.len() + TAG_LEN;
        out.reserve(HEADER_LEN + fragment_len);
        out.push(content_type);
        out.extend_from_slice(&DTLS_1_2);
        out.extend_from_slice(&epoch_seq.to_be_bytes());
        // Callers bound plaintext to 2^14 bytes.
        out.extend_from_slice(&(fragment_len as u16).to_be_bytes());
        out.extend_from_slice(&epoch_seq.to_be_bytes()[..explicit]);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let nonce = Nonce::assume_unique_for_key(self.suite.nonce(&self.write.fixed_iv, epoch_seq));
        let aad = Aad::from(additional_data(epoch_seq, content_type, plaintext.len()));
        let tag = self
            .write
            .key
            .seal_in_place_separate_tag(nonce, aad, &mut out[start..])
            .map_err(|_| SealError)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// The plaintext of an epoch-1 record, or `None` if it is a replay or
    /// does not authenticate (RFC 6347 §4.1.2.7: dropped silently).
    pub(crate) fn open(&mut self, record: &ProtectedRecord<'_>) -> Option<Vec<u8>> {
        let seq = record.epoch_seq & 0xffff_ffff_ffff;
        if record.epoch() != EPOCH || !self.window.is_fresh(seq) {
            return None;
        }
        let plaintext = open_with(self.suite, &self.read, record)?;
        self.window.mark(seq);
        Some(plaintext)
    }
}

/// Authenticates and decrypts one record with `keys`.
fn open_with(suite: Suite, keys: &Direction, record: &ProtectedRecord<'_>) -> Option<Vec<u8>> {
    let explicit = suite.explicit_nonce_len();
    let body_len = record.fragment.len().checked_sub(explicit + TAG_LEN)?;
    let nonce = match explicit {
        0 => suite.nonce(&keys.fixed_iv, record.epoch_seq),
        _ => {
            let mut nonce = keys.fixed_iv;
            nonce[4..].copy_from_slice(&record.fragment[..8]);
            nonce
        }
    };
    let aad = Aad::from(additional_data(
        record.epoch_seq,
        record.content_type,
        body_len,
    ));
    let mut plaintext = record.fragment[explicit..].to_vec();
    keys.key
        .open_in_place(Nonce::assume_unique_for_key(nonce), aad, &mut plaintext)
        .ok()?;
    plaintext.truncate(body_len);
    Some(plaintext)
}

/// The AEAD refused to seal (only for a record larger than it allows,
/// which callers rule out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealError;

/// RFC 5246 §5: `PRF(secret, label, seed) = P_hash(secret, label + seed)`,
/// `P_hash = HMAC(secret, A(1) + seed') + HMAC(secret, A(2) + seed') + ...`,
/// `A(0) = seed'`, `A(i) = HMAC(secret, A(i-1))`.
fn prf(
    digest: MessageDigest,
    secret: &[u8],
    label: &[u8],
    seed: &[u8],
    out: &mut [u8],
) -> Result<(), ErrorStack> {
    let key = PKey::hmac(secret)?;
    let hmac = |parts: &[&[u8]]| -> Result<Vec<u8>, ErrorStack> {
        let mut signer = Signer::new(digest, &key)?;
        for part in parts {
            signer.update(part)?;
        }
        signer.sign_to_vec()
    };
    let mut a = hmac(&[label, seed])?;
    let mut filled = 0;
    while filled < out.len() {
        let chunk = hmac(&[&a, label, seed])?;
        let n = chunk.len().min(out.len() - filled);
        out[filled..filled + n].copy_from_slice(&chunk[..n]);
        filled += n;
        a = hmac(&[&a])?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the clock for a start time
mod tests {
    use super::*;
    use crate::{Certificate, Dtls, DtlsConfig, DtlsEvent, DtlsState};
    use std::time::{Duration, Instant, SystemTime};

    /// Two connections joined by a perfect wire; `own` says which sides
    /// use our record layer.
    fn connect(own: [bool; 2], ciphers: &'static str) -> [Dtls; 2] {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        let certs = [
            Certificate::generate(wall).unwrap(),
            Certificate::generate(wall).unwrap(),
        ];
        let fps = [
            certs[0].fingerprint().clone(),
            certs[1].fingerprint().clone(),
        ];
        let now = Instant::now();
        let [c0, c1] = certs;
        let config = |cert, own| {
            let mut config = DtlsConfig::new(cert).with_own_record_layer(own);
            config.cipher_list = ciphers;
            config
        };
        let mut peers = [
            Dtls::new(config(c0, own[0]), Role::Client, fps[1].clone(), now).unwrap(),
            Dtls::new(config(c1, own[1]), Role::Server, fps[0].clone(), now).unwrap(),
        ];
        pump(&mut peers);
        for p in &mut peers {
            assert!(matches!(p.poll_event(), Some(DtlsEvent::Connected { .. })));
        }
        peers
    }

    /// Moves datagrams both ways until both sides are quiet.
    fn pump(peers: &mut [Dtls; 2]) {
        let now = Instant::now();
        loop {
            let mut moved = false;
            for from in 0..2 {
                while let Some(d) = peers[from].poll_transmit() {
                    let _ = peers[1 - from].handle_input(now, &d);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn received(peer: &mut Dtls) -> Vec<Bytes> {
        std::iter::from_fn(|| peer.poll_event())
            .filter_map(|e| match e {
                DtlsEvent::ApplicationData(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    /// Each suite, each pairing of record layers: data both ways, then
    /// close_notify answered.
    #[test]
    fn our_records_interoperate_with_openssls_in_every_suite() {
        let suites = [
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
        ];
        for ciphers in suites {
            for own in [[true, true], [true, false], [false, true]] {
                let mut peers = connect(own, ciphers);
                for (p, on) in peers.iter().zip(own) {
                    assert_eq!(p.uses_own_record_layer(), on, "{ciphers} {own:?}");
                }
                let big = vec![0xa5; MAX_PLAINTEXT];
                for from in 0..2 {
                    peers[from].send(b"hello").unwrap();
                    peers[from].send(&big).unwrap();
                    peers[from].send(&[7]).unwrap();
                    pump(&mut peers);
                    let got = received(&mut peers[1 - from]);
                    assert_eq!(
                        got,
                        vec![
                            Bytes::from_static(b"hello"),
                            Bytes::from(big.clone()),
                            Bytes::from_static(&[7])
                        ],
                        "{ciphers} {own:?} from {from}"
                    );
                }
                peers[0].close();
                pump(&mut peers);
                assert_eq!(
                    peers[1].poll_event(),
                    Some(DtlsEvent::Closed),
                    "{ciphers} {own:?}"
                );
                assert_eq!(peers[1].state(), DtlsState::Closed);
            }
        }
    }

    const MAX_PLAINTEXT: usize = crate::MAX_APPLICATION_DATA;

    #[test]
    fn replayed_tampered_and_truncated_records_are_dropped() {
        let mut peers = connect([true, true], crate::connection::CIPHER_LIST);
        peers[0].send(b"once").unwrap();
        let record = peers[0].poll_transmit().unwrap();
        let now = Instant::now();
        peers[1].handle_input(now, &record).unwrap();
        peers[1].handle_input(now, &record).unwrap();
        assert_eq!(
            received(&mut peers[1]),
            vec![Bytes::from_static(b"once")],
            "a replay is dropped"
        );
        peers[0].send(b"twice").unwrap();
        let record = peers[0].poll_transmit().unwrap();
        let mut tampered = record.to_vec();
        *tampered.last_mut().unwrap() ^= 1;
        peers[1].handle_input(now, &tampered).unwrap();
        peers[1]
            .handle_input(now, &record[..record.len() - 1])
            .unwrap();
        peers[1]
            .handle_input(now, &record[..HEADER_LEN + 3])
            .unwrap();
        assert!(received(&mut peers[1]).is_empty());
        peers[1].handle_input(now, &record).unwrap();
        assert_eq!(
            received(&mut peers[1]),
            vec![Bytes::from_static(b"twice")],
            "the genuine one still passes"
        );
        assert_eq!(peers[1].state(), DtlsState::Connected);
    }

    #[test]
    fn a_fatal_alert_fails_the_connection() {
        let mut peers = connect([true, true], crate::connection::CIPHER_LIST);
        let protection = peers[0].protection.as_mut().unwrap();
        let mut alert = Vec::new();
        protection.seal(ALERT, &[2, 40], &mut alert).unwrap(); // handshake_failure
        peers[1].handle_input(Instant::now(), &alert).unwrap_err();
        assert_eq!(peers[1].state(), DtlsState::Failed);
    }

    #[test]
    fn replay_window_accepts_each_number_once_within_64() {
        let mut w = ReplayWindow::default();
        assert!(w.is_fresh(5));
        w.mark(5);
        assert!(!w.is_fresh(5));
        assert!(w.is_fresh(4), "older but unseen and inside the window");
        w.mark(100);
        assert!(!w.is_fresh(5), "fell out of the window");
        assert!(w.is_fresh(37) && !w.is_fresh(36));
        w.mark(37);
        assert!(!w.is_fresh(37));
        assert!(w.is_fresh(101));
        w.mark(1000);
        assert!(!w.is_fresh(100) && w.is_fresh(999));
    }

    /// A known-answer test for the TLS 1.2 PRF with SHA-256 (the vector
    /// the IETF TLS list circulated for RFC 5246, used by many stacks'
    /// tests): secret, "test label", seed -> 100 bytes.
    #[test]
    fn prf_sha256_known_answer() {
        let secret = hex("9bbe436ba940f017b17652849a71db35");
        let seed = hex("a0ba9f936cda311827a6f796ffd5198c");
        let mut out = [0; 100];
        prf(
            MessageDigest::sha256(),
            &secret,
            b"test label",
            &seed,
            &mut out,
        )
        .unwrap();
        let expected = hex(
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66",
        );
        assert_eq!(out.to_vec(), expected);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
