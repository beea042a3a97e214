use super::*;
use crate::tests::unhex;

const PROFILES: [ProtectionProfile; 4] = [
    ProtectionProfile::Aes128CmHmacSha1_80,
    ProtectionProfile::Aes128CmHmacSha1_32,
    ProtectionProfile::AeadAes128Gcm,
    ProtectionProfile::AeadAes256Gcm,
];

fn pair(profile: ProtectionProfile) -> (SrtpContext, SrtpContext) {
    let key: Vec<u8> = (0..profile.key_len() as u8).collect();
    let salt: Vec<u8> = (100..100 + profile.salt_len() as u8).collect();
    (
        SrtpContext::new(profile, &key, &salt).unwrap(),
        SrtpContext::new(profile, &key, &salt).unwrap(),
    )
}

fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&u32::from(seq).wrapping_mul(960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| i as u8));
    p
}

/// An RTCP receiver report from `ssrc` with no blocks, plus some bytes.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 3];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    p
}

/// RFC 7714 §16-17 give the session key and salt directly.
fn session_context(profile: ProtectionProfile, key: &str) -> SrtpContext {
    let keys = SessionKeys {
        encryption: unhex(key),
        authentication: Vec::new(),
        salt: unhex(RFC7714_SALT),
    };
    SrtpContext::with_session_keys(profile, &keys, &keys).unwrap()
}

const RFC7714_KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const RFC7714_KEY_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// "Quid pro quo".
const RFC7714_SALT: &str = "517569642070726f2071756f";
/// RFC 7714 §16: SSRC 0x5501a0b2, seq 0xf17b, "Gallia est omnis divisa in partes tres".
const RFC7714_RTP: &str =
    "8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573";
/// RFC 7714 §17: an SR from SSRC "Mars", sent with SRTCP index 0x5d4.
const RFC7714_RTCP: &str = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

#[test]
fn rfc_7714_16_srtp_vectors() {
    for (profile, key, expected) in [
        (
            ProtectionProfile::AeadAes128Gcm,
            RFC7714_KEY_128,
            // §16.1.1
            "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce",
        ),
        (
            ProtectionProfile::AeadAes256Gcm,
            RFC7714_KEY_256,
            // §16.2.1
            "8040f17b8041f8d35501a0b232b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a76c13",
        ),
    ] {
        let mut out = Vec::new();
        session_context(profile, key).protect_rtp(&unhex(RFC7714_RTP), &mut out).unwrap();
        assert_eq!(out, unhex(expected), "{profile:?}");
        let mut back = Vec::new();
        session_context(profile, key).unprotect_rtp(&out, &mut back).unwrap();
        assert_eq!(back, unhex(RFC7714_RTP), "{profile:?}");
    }
}

#[test]
fn rfc_7714_17_srtcp_vectors() {
    for (profile, key, expected) in [
        (
            ProtectionProfile::AeadAes128Gcm,
            RFC7714_KEY_128,
            // §17.1
            "81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4",
        ),
        (
            ProtectionProfile::AeadAes256Gcm,
            RFC7714_KEY_256,
            // §17.2
            "81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4",
        ),
    ] {
        let plain = unhex(RFC7714_RTCP);
        let mut back = Vec::new();
        session_context(profile, key).unprotect_rtcp(&unhex(expected), &mut back).unwrap();
        assert_eq!(back, plain, "{profile:?}");
        // The sender numbers from 0: the 0x5d4th packet is the vector.
        let mut sender = session_context(profile, key);
        let mut out = Vec::new();
        for _ in 0..0x5d4 {
            sender.protect_rtcp(&plain, &mut out).unwrap();
        }
        sender.protect_rtcp(&plain, &mut out).unwrap();
        assert_eq!(out, unhex(expected), "{profile:?}");
    }
    // §17.3: authenticated but not encrypted (E flag clear).
    let tag_only = "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef841dd9683dd78ec92ae58790125f62b3000005d4";
    let mut back = Vec::new();
    session_context(ProtectionProfile::AeadAes128Gcm, RFC7714_KEY_128)
        .unprotect_rtcp(&unhex(tag_only), &mut back)
        .unwrap();
    assert_eq!(back, unhex(RFC7714_RTCP));
}

#[test]
fn round_trip_every_profile() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let (mut srtp, mut back) = (Vec::new(), Vec::new());
        for (seq, len) in [(1u16, 0usize), (2, 1), (3, 1200)] {
            let packet = rtp(seq, 0xabcd, len);
            tx.protect_rtp(&packet, &mut srtp).unwrap();
            assert_eq!(srtp.len(), packet.len() + profile.rtp_tag_len());
            if len > 0 {
                assert_ne!(
                    srtp[12..12 + len],
                    packet[12..],
                    "{profile:?}: payload encrypted"
                );
            }
            rx.unprotect_rtp(&srtp, &mut back).unwrap();
            assert_eq!(back, packet, "{profile:?}");
        }
        // A header with CSRCs and an extension is authenticated, not encrypted.
        let header = realtimer_rtp::RtpHeader {
            ssrc: 0xabcd,
            sequence_number: 4,
            csrcs: vec![1, 2],
            extensions: vec![realtimer_rtp::Extension {
                id: 1,
                data: vec![9],
            }],
            ..Default::default()
        };
        let mut packet = Vec::new();
        header.write_packet(b"payload", 3, &mut packet).unwrap();
        tx.protect_rtp(&packet, &mut srtp).unwrap();
        let header_len = realtimer_rtp::header_len(&packet).unwrap();
        assert_eq!(srtp[..header_len], packet[..header_len]);
        rx.unprotect_rtp(&srtp, &mut back).unwrap();
        assert_eq!(back, packet);

        for _ in 0..3 {
            let packet = rtcp(0x1234);
            tx.protect_rtcp(&packet, &mut srtp).unwrap();
            assert_eq!(srtp.len(), packet.len() + 4 + profile.rtcp_tag_len());
            rx.unprotect_rtcp(&srtp, &mut back).unwrap();
            assert_eq!(back, packet, "{profile:?}");
        }
    }
}

#[test]
fn rollover_counter_follows_the_wrap() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let sent: Vec<Vec<u8>> = (65530u16..=65535)
            .chain(0..6)
            .map(|seq| {
                let mut out = Vec::new();
                tx.protect_rtp(&rtp(seq, 7, 50), &mut out).unwrap();
                out
            })
            .collect();
        // Reordered across the wrap: 0 arrives before 65535.
        let order = [0usize, 1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11];
        let mut back = Vec::new();
        for i in order {
            rx.unprotect_rtp(&sent[i], &mut back)
                .unwrap_or_else(|e| panic!("{profile:?} packet {i}: {e}"));
        }
        assert_eq!(rx.received_rtp[&7].top(), 1 << 16 | 5);
        // 65535 with ROC 0 is not protected a second time.
        let mut again = Vec::new();
        assert!(matches!(
            tx.protect_rtp(&rtp(65535, 7, 50), &mut again),
            Err(SrtpError::IndexReused {
                ssrc: 7,
                index: 65535
            })
        ));
    }
}

#[test]
fn a_sent_index_is_never_protected_again() {
    for profile in PROFILES {
        let (mut tx, _) = pair(profile);
        let mut out = Vec::new();
        tx.protect_rtp(&rtp(10, 3, 20), &mut out).unwrap();
        // Late but unused: allowed.
        tx.protect_rtp(&rtp(5, 3, 20), &mut out).unwrap();
        // 10 again with another payload would reuse keystream / nonce.
        assert!(matches!(
            tx.protect_rtp(&rtp(10, 3, 30), &mut out),
            Err(SrtpError::IndexReused { ssrc: 3, index: 10 })
        ));
        // Out of the window: cannot tell, refused.
        tx.protect_rtp(&rtp(2000, 3, 20), &mut out).unwrap();
        assert!(matches!(
            tx.protect_rtp(&rtp(20, 3, 20), &mut out),
            Err(SrtpError::IndexReused { index: 20, .. })
        ));
        // Other SSRCs have their own space.
        tx.protect_rtp(&rtp(10, 4, 20), &mut out).unwrap();
    }
}

#[test]
fn index_estimation_follows_rfc_3711_appendix_a() {
    // s_l in the lower half: a much larger seq is from the previous ROC.
    assert_eq!(estimate_index(2 << 16 | 10, 65000), 1 << 16 | 65000);
    assert_eq!(estimate_index(2 << 16 | 10, 20), 2 << 16 | 20);
    // ...but there is no ROC before 0.
    assert_eq!(estimate_index(10, 65000), 65000);
    // s_l in the upper half: a much smaller seq is from the next ROC.
    assert_eq!(estimate_index(65000, 3), 1 << 16 | 3);
    assert_eq!(estimate_index(65000, 40000), 40000);
}

#[test]
fn replays_are_refused() {
    for profile in PROFILES {
        let (mut tx, mut rx) = pair(profile);
        let (mut srtp, mut back) = (Vec::new(), Vec::new());
        tx.protect_rtp(&rtp(100, 1, 10), &mut srtp).unwrap();
        rx.unprotect_rtp(&srtp, &mut back).unwrap();
        assert!(matches!(
            rx.unprotect_rtp(&srtp, &mut back),
            Err(SrtpError::Replayed {
                ssrc: 1,
                index: 100
            })
        ));
        // Move the window 2000 packets on: packet 100 is now too old.
        let old = srtp.clone();
        tx.protect_rtp(&rtp(2100, 1, 10), &mut srtp).unwrap();
        rx.unprotect_rtp(&srtp, &mut back).unwrap();
        assert!(matches!(
            rx.unprotect_rtp(&old, &mut back),
            Err(SrtpError::TooOld { .. })
        ));

        let mut srtcp = Vec::new();
        tx.protect_rtcp(&rtcp(1), &mut srtcp).unwrap();
        rx.unprotect_rtcp(&srtcp, &mut back).unwrap();
        assert!(matches!(
            rx.unprotect_rtcp(&srtcp, &mut back),
            Err(SrtpError::Replayed { index: 0, .. })
        ));
    }
}

#[test]
fn tampered_and_truncated_packets_are_refused() {
    for profile in PROFILES {
        let (mut tx, _) = pair(profile);
        let (mut srtp, mut srtcp, mut back) = (Vec::new(), Vec::new(), Vec::new());
        tx.protect_rtp(&rtp(9, 3, 40), &mut srtp).unwrap();
        tx.protect_rtcp(&rtcp(3), &mut srtcp).unwrap();
        for i in 0..srtp.len() {
            let mut bad = srtp.clone();
            bad[i] ^= 0x01;
            let (_, mut rx) = pair(profile);
            assert!(
                rx.unprotect_rtp(&bad, &mut back).is_err(),
                "{profile:?} byte {i}"
            );
        }
        for i in 0..srtcp.len() {
            let mut bad = srtcp.clone();
            bad[i] ^= 0x01;
            let (_, mut rx) = pair(profile);
            assert!(
                rx.unprotect_rtcp(&bad, &mut back).is_err(),
                "{profile:?} byte {i}"
            );
        }
        let (_, mut rx) = pair(profile);
        for n in 0..srtp.len() {
            assert!(rx.unprotect_rtp(&srtp[..n], &mut back).is_err());
        }
        for n in 0..srtcp.len() {
            assert!(rx.unprotect_rtcp(&srtcp[..n], &mut back).is_err());
        }
        // The untouched packets still pass: failures left no state behind.
        rx.unprotect_rtp(&srtp, &mut back).unwrap();
        rx.unprotect_rtcp(&srtcp, &mut back).unwrap();
        // A wrong key fails authentication.
        let mut other = SrtpContext::new(
            profile,
            &vec![1; profile.key_len()],
            &vec![0; profile.salt_len()],
        )
        .unwrap();
        assert!(matches!(
            other.unprotect_rtp(&srtp, &mut back),
            Err(SrtpError::Authentication)
        ));
    }
}

#[test]
fn limits_and_bad_input() {
    let profile = ProtectionProfile::Aes128CmHmacSha1_80;
    assert!(matches!(
        SrtpContext::new(profile, &[0; 15], &[0; 14]),
        Err(SrtpError::KeyLength {
            what: "master key",
            expected: 16,
            got: 15
        })
    ));
    assert!(matches!(
        SrtpContext::new(ProtectionProfile::AeadAes128Gcm, &[0; 16], &[0; 14]),
        Err(SrtpError::KeyLength {
            what: "master salt",
            expected: 12,
            ..
        })
    ));
    let (mut tx, _) = pair(profile);
    let mut out = Vec::new();
    for ssrc in 0..MAX_SSRCS as u32 {
        tx.protect_rtp(&rtp(1, ssrc, 1), &mut out).unwrap();
    }
    assert!(matches!(
        tx.protect_rtp(&rtp(1, u32::MAX, 1), &mut out),
        Err(SrtpError::TooManySsrcs { max: MAX_SSRCS })
    ));
    assert!(matches!(
        tx.protect_rtp(&[0x80; 5], &mut out),
        Err(SrtpError::Rtp(_))
    ));
    assert!(matches!(
        tx.protect_rtcp(&[0x80, 200, 0], &mut out),
        Err(SrtpError::TooShort { .. })
    ));
    assert!(matches!(
        tx.protect_rtcp(&[0x40; 8], &mut out),
        Err(SrtpError::NotRtcp)
    ));
    // The SRTCP index space ends at 2^31.
    tx.sent_rtcp.insert(5, SRTCP_INDEX_MASK + 1);
    assert!(matches!(
        tx.protect_rtcp(&rtcp(5), &mut out),
        Err(SrtpError::IndexExhausted { ssrc: 5 })
    ));
}

#[test]
fn context_moves_between_threads() {
    // The async driver owns its contexts on a tokio worker.
    fn send<T: Send + Sync>() {}
    send::<SrtpContext>();
}
