//! Interop with libsrtp, the SRTP library of Chromium and most stacks:
//! what it protects we unprotect, and the reverse, for every profile, over
//! a sequence number wrap; SRTP packets are byte-identical both ways.

mod libsrtp;

use libsrtp::LibSrtp;
use realtimer_srtp::{ProtectionProfile, SrtpContext};

const PROFILES: [ProtectionProfile; 4] = [
    ProtectionProfile::Aes128CmHmacSha1_80,
    ProtectionProfile::Aes128CmHmacSha1_32,
    ProtectionProfile::AeadAes128Gcm,
    ProtectionProfile::AeadAes256Gcm,
];

fn keys(profile: ProtectionProfile) -> (Vec<u8>, Vec<u8>) {
    let key = (0..profile.key_len()).map(|i| (i * 7 + 3) as u8).collect();
    let salt = (0..profile.salt_len())
        .map(|i| (i * 13 + 1) as u8)
        .collect();
    (key, salt)
}

/// RTP packets 65500..=65535, 0..40 of SSRC 0x11223344, payloads of
/// assorted sizes; every fifth with a CSRC and a header extension.
fn rtp_packets() -> Vec<Vec<u8>> {
    (65500u16..=65535)
        .chain(0..40)
        .enumerate()
        .map(|(i, seq)| {
            let mut header = realtimer_rtp::RtpHeader {
                payload_type: 96,
                sequence_number: seq,
                timestamp: 3000 * i as u32,
                ssrc: 0x1122_3344,
                marker: i % 3 == 0,
                ..Default::default()
            };
            if i % 5 == 0 {
                header.csrcs = vec![0xcafe];
                header.extensions = vec![realtimer_rtp::Extension {
                    id: 3,
                    data: vec![1, 2, 3],
                }];
            }
            let payload: Vec<u8> = (0..(i * 37) % 1200).map(|b| b as u8).collect();
            let mut packet = Vec::new();
            header.write_packet(&payload, 0, &mut packet).unwrap();
            packet
        })
        .collect()
}

/// RTCP compound packets (SR + SDES) from SSRC 0x11223344.
fn rtcp_packets() -> Vec<Vec<u8>> {
    use realtimer_rtp::rtcp::{SenderReport, SourceDescription};
    (0..20u32)
        .map(|i| {
            let mut packet = Vec::new();
            SenderReport {
                ssrc: 0x1122_3344,
                packet_count: i,
                ..Default::default()
            }
            .write(&mut packet)
            .unwrap();
            SourceDescription::cname(0x1122_3344, "interop")
                .write(&mut packet)
                .unwrap();
            packet
        })
        .collect()
}

fn ours(profile: ProtectionProfile) -> SrtpContext {
    let (key, salt) = keys(profile);
    SrtpContext::new(profile, &key, &salt).unwrap()
}

fn libsrtp_key(profile: ProtectionProfile) -> Vec<u8> {
    let (key, salt) = keys(profile);
    [key, salt].concat()
}

#[test]
fn libsrtp_protects_we_unprotect() {
    let tool = LibSrtp::build();
    for profile in PROFILES {
        let rtp = rtp_packets();
        let protected = tool.run(profile, &libsrtp_key(profile), "protect-rtp", &rtp);
        let (mut rx, mut tx) = (ours(profile), ours(profile));
        let (mut out, mut again) = (Vec::new(), Vec::new());
        for (plain, srtp) in rtp.iter().zip(&protected) {
            let srtp = srtp.as_ref().unwrap();
            rx.unprotect_rtp(srtp, &mut out)
                .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
            assert_eq!(&out, plain, "{profile:?}");
            // Same keys, same index (rollover counter included): our
            // protect gives the same bytes.
            tx.protect_rtp(plain, &mut again).unwrap();
            assert_eq!(
                &again, srtp,
                "{profile:?}: SRTP bytes differ from libsrtp's"
            );
        }
        let rtcp = rtcp_packets();
        let protected = tool.run(profile, &libsrtp_key(profile), "protect-rtcp", &rtcp);
        for (plain, srtcp) in rtcp.iter().zip(&protected) {
            rx.unprotect_rtcp(srtcp.as_ref().unwrap(), &mut out)
                .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
            assert_eq!(&out, plain, "{profile:?}");
        }
    }
}

#[test]
fn we_protect_libsrtp_unprotects() {
    let tool = LibSrtp::build();
    for profile in PROFILES {
        let mut tx = ours(profile);
        let rtp = rtp_packets();
        let protected: Vec<Vec<u8>> = rtp
            .iter()
            .map(|p| {
                let mut out = Vec::new();
                tx.protect_rtp(p, &mut out).unwrap();
                out
            })
            .collect();
        let back = tool.run(profile, &libsrtp_key(profile), "unprotect-rtp", &protected);
        for (plain, result) in rtp.iter().zip(&back) {
            assert_eq!(
                result
                    .as_ref()
                    .unwrap_or_else(|e| panic!("{profile:?}: libsrtp {e}")),
                plain
            );
        }
        let rtcp = rtcp_packets();
        let protected: Vec<Vec<u8>> = rtcp
            .iter()
            .map(|p| {
                let mut out = Vec::new();
                tx.protect_rtcp(p, &mut out).unwrap();
                out
            })
            .collect();
        let back = tool.run(profile, &libsrtp_key(profile), "unprotect-rtcp", &protected);
        for (plain, result) in rtcp.iter().zip(&back) {
            assert_eq!(
                result
                    .as_ref()
                    .unwrap_or_else(|e| panic!("{profile:?}: libsrtp {e}")),
                plain
            );
        }
        // libsrtp refuses a replay of ours, and a tampered packet.
        let mut tampered = protected[3].clone();
        tampered[10] ^= 1;
        let refused = tool.run(
            profile,
            &libsrtp_key(profile),
            "unprotect-rtcp",
            &[protected[3].clone(), protected[3].clone(), tampered],
        );
        assert!(
            refused[0].is_ok() && refused[1].is_err() && refused[2].is_err(),
            "{profile:?}: {refused:?}"
        );
    }
}
