//! Protect and unprotect 1,200-byte RTP payloads: MB of payload per CPU
//! second (this thread's CPU time), for AES_CM_128_HMAC_SHA1_80 and
//! AEAD_AES_128_GCM, against two references measured in the same run:
//! the raw cipher ceiling (OpenSSL AES-CTR + SHA-1, or ring AES-GCM, over
//! the same bytes, with no SRTP around them) and libsrtp
//! (Debian's libsrtp2, through tests/libsrtp/srtp_tool.c).
//!
//! `cargo bench -p realtimer-srtp`
#![allow(clippy::print_stdout)] // a benchmark prints its figures

#[path = "../tests/libsrtp/mod.rs"]
mod libsrtp;

use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;
use openssl::hash::MessageDigest;
use realtimer_srtp::{ProtectionProfile, SrtpContext};
use ring::aead;

const PAYLOAD: usize = 1200;
/// Packets per measurement (51,200 packets, 61 MB of payload).
const BATCHES: usize = 200;
const BATCH: usize = 256;
const RUNS: usize = 3;

/// CPU time of this thread in nanoseconds (Linux schedstat).
fn thread_cpu_ns() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("Linux schedstat");
    stat.split_whitespace().next().unwrap().parse().unwrap()
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 42]);
    p.extend((0..PAYLOAD).map(|i| i as u8));
    p
}

/// Runs `prepare` (untimed) then `timed` on each of BATCHES batches of
/// packets; returns MB of payload per CPU second.
fn measure(
    mut prepare: impl FnMut(&mut [Vec<u8>], u16),
    mut timed: impl FnMut(&mut [Vec<u8>]),
) -> f64 {
    let mut batch: Vec<Vec<u8>> = (0..BATCH)
        .map(|_| Vec::with_capacity(PAYLOAD + 64))
        .collect();
    let mut spent = 0.0;
    let mut seq = 0u16;
    for _ in 0..BATCHES {
        prepare(&mut batch, seq);
        seq = seq.wrapping_add(BATCH as u16);
        let start = thread_cpu_ns();
        timed(&mut batch);
        spent += thread_cpu_ns() - start;
    }
    (BATCHES * BATCH * PAYLOAD) as f64 / spent * 1e3
}

fn fill(batch: &mut [Vec<u8>], seq: u16) {
    for (i, p) in batch.iter_mut().enumerate() {
        p.clear();
        p.extend_from_slice(&rtp(seq.wrapping_add(i as u16)));
    }
}

fn ours(profile: ProtectionProfile, key: &[u8], salt: &[u8], unprotect: bool) -> f64 {
    let mut tx = SrtpContext::new(profile, key, salt).unwrap();
    let mut rx = SrtpContext::new(profile, key, salt).unwrap();
    if unprotect {
        let mut sender = SrtpContext::new(profile, key, salt).unwrap();
        measure(
            |batch, seq| {
                fill(batch, seq);
                batch
                    .iter_mut()
                    .for_each(|p| sender.protect_rtp_in_place(p).unwrap());
            },
            |batch| {
                batch
                    .iter_mut()
                    .for_each(|p| rx.unprotect_rtp_in_place(p).unwrap())
            },
        )
    } else {
        measure(fill, |batch| {
            batch
                .iter_mut()
                .for_each(|p| tx.protect_rtp_in_place(p).unwrap())
        })
    }
}

/// The cipher work of one packet and nothing else: OpenSSL AES-CTR over
/// the payload and one OpenSSL SHA-1 over the packet (the hashing HMAC-SHA1
/// cannot avoid, without its two pad blocks), or ring AES-GCM over the
/// payload with the header as AAD.
fn raw_ceiling(profile: ProtectionProfile) -> f64 {
    let key = [7u8; 16];
    if profile.is_aead() {
        let gcm = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &key).unwrap());
        measure(fill, |batch| {
            for p in batch.iter_mut() {
                let (header, payload) = p.split_at_mut(12);
                let nonce = aead::Nonce::assume_unique_for_key([1; 12]);
                let tag = gcm
                    .seal_in_place_separate_tag(nonce, aead::Aad::from(&*header), payload)
                    .unwrap();
                p.extend_from_slice(tag.as_ref());
            }
        })
    } else {
        let mut ctr = CipherCtx::new().unwrap();
        ctr.encrypt_init(Some(Cipher::aes_128_ctr()), Some(&key), None)
            .unwrap();
        measure(fill, |batch| {
            for p in batch.iter_mut() {
                ctr.encrypt_init(None, None, Some(&[3; 16])).unwrap();
                let len = p.len() - 12;
                ctr.cipher_update_inplace(&mut p[12..], len).unwrap();
                // The SHA-1 work an HMAC cannot avoid: the packet, once.
                let digest = openssl::hash::hash(MessageDigest::sha1(), p).unwrap();
                p.extend_from_slice(&digest[..10]);
            }
        })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let tool = libsrtp::LibSrtp::build();
    println!(
        "SRTP, {PAYLOAD}-byte payloads, MB of payload per CPU second (median of {RUNS} runs of {} packets)",
        BATCHES * BATCH
    );
    println!(
        "{:<22} {:<10} {:>9} {:>11} {:>7} {:>9} {:>7}",
        "profile", "operation", "ours", "raw cipher", "ratio", "libsrtp", "ratio"
    );
    for profile in [
        ProtectionProfile::Aes128CmHmacSha1_80,
        ProtectionProfile::AeadAes128Gcm,
    ] {
        let key = vec![0x11; profile.key_len()];
        let salt = vec![0x22; profile.salt_len()];
        let key_and_salt = [key.clone(), salt.clone()].concat();
        for unprotect in [false, true] {
            let (mut us, mut raw, mut lib) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..RUNS {
                us.push(ours(profile, &key, &salt, unprotect));
                raw.push(raw_ceiling(profile));
                let (ns, bytes) = tool.bench(
                    profile,
                    &key_and_salt,
                    unprotect,
                    (BATCHES * BATCH) as u64,
                    PAYLOAD,
                );
                lib.push(bytes as f64 / ns * 1e3);
            }
            let (us, raw, lib) = (median(us), median(raw), median(lib));
            println!(
                "{:<22} {:<10} {:>9.0} {:>11.0} {:>7.2} {:>9.0} {:>7.2}",
                format!("{profile:?}"),
                if unprotect { "unprotect" } else { "protect" },
                us,
                raw,
                us / raw,
                lib,
                us / lib
            );
        }
    }
}
