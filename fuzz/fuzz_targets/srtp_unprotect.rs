//! Feeds arbitrary bytes to unprotect_rtp and unprotect_rtcp of fixed-key
//! contexts of every profile: errors are fine, panics are not. The first
//! byte picks the profile and whether to try RTP or RTCP.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtimer_srtp::{ProtectionProfile, SrtpContext};

const PROFILES: [ProtectionProfile; 4] = [
    ProtectionProfile::Aes128CmHmacSha1_80,
    ProtectionProfile::Aes128CmHmacSha1_32,
    ProtectionProfile::AeadAes128Gcm,
    ProtectionProfile::AeadAes256Gcm,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let profile = PROFILES[usize::from(selector) % PROFILES.len()];
    let key = vec![0x42; profile.key_len()];
    let salt = vec![0x24; profile.salt_len()];
    let mut context = SrtpContext::new(profile, &key, &salt).expect("fixed keys are valid");
    let mut out = Vec::new();
    if selector & 0x80 == 0 {
        let _ = context.unprotect_rtp(packet, &mut out);
    } else {
        let _ = context.unprotect_rtcp(packet, &mut out);
    }
    // Also the same bytes protected first: a packet that authenticates
    // must come back as it went in.
    let mut sender = SrtpContext::new(profile, &key, &salt).expect("fixed keys are valid");
    let mut protected = Vec::new();
    let (protect, unprotect): (
        fn(&mut SrtpContext, &[u8], &mut Vec<u8>) -> _,
        fn(&mut SrtpContext, &[u8], &mut Vec<u8>) -> _,
    ) = if selector & 0x80 == 0 {
        (SrtpContext::protect_rtp, SrtpContext::unprotect_rtp)
    } else {
        (SrtpContext::protect_rtcp, SrtpContext::unprotect_rtcp)
    };
    if protect(&mut sender, packet, &mut protected).is_ok() {
        let mut receiver = SrtpContext::new(profile, &key, &salt).expect("fixed keys are valid");
        unprotect(&mut receiver, &protected, &mut out)
            .expect("our own protected packet unprotects");
        assert_eq!(out, packet);
    }
});
