//! Property tests: arbitrary bytes never panic unprotect; whatever protect
//! accepts, unprotect gives back.

use proptest::prelude::*;
use realtimer_srtp::{ProtectionProfile, SrtpContext};

const PROFILES: [ProtectionProfile; 4] = [
    ProtectionProfile::Aes128CmHmacSha1_80,
    ProtectionProfile::Aes128CmHmacSha1_32,
    ProtectionProfile::AeadAes128Gcm,
    ProtectionProfile::AeadAes256Gcm,
];

fn context(profile: ProtectionProfile) -> SrtpContext {
    SrtpContext::new(
        profile,
        &vec![3; profile.key_len()],
        &vec![5; profile.salt_len()],
    )
    .unwrap()
}

proptest! {
    #[test]
    fn unprotect_never_panics(profile in 0..4usize, data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut rx = context(PROFILES[profile]);
        let mut out = Vec::new();
        let _ = rx.unprotect_rtp(&data, &mut out);
        let _ = rx.unprotect_rtcp(&data, &mut out);
    }

    #[test]
    fn what_protects_unprotects(
        profile in 0..4usize,
        mut data in proptest::collection::vec(any::<u8>(), 12..300),
        rtcp in any::<bool>(),
    ) {
        let profile = PROFILES[profile];
        // Version 2, no extension, so it is a packet both sides accept.
        data[0] = 0x80 | (data[0] & 0x2F);
        let (mut tx, mut rx) = (context(profile), context(profile));
        let (mut protected, mut back) = (Vec::new(), Vec::new());
        if rtcp {
            tx.protect_rtcp(&data, &mut protected).unwrap();
            rx.unprotect_rtcp(&protected, &mut back).unwrap();
        } else if tx.protect_rtp(&data, &mut protected).is_ok() {
            rx.unprotect_rtp(&protected, &mut back).unwrap();
        } else {
            return Ok(());
        }
        prop_assert_eq!(back, data);
    }
}
