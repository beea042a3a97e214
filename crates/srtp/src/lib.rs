//! SRTP and SRTCP (RFC 3711), with the AES-GCM profiles of RFC 7714, sans-IO.
//!
//! An [`SrtpContext`] protects or unprotects one direction of one SRTP
//! session: every SSRC sent (or received) under one master key and salt,
//! as DTLS-SRTP exports them (RFC 5764 §4.2). It derives the session keys
//! (RFC 3711 §4.3), keeps the rollover counter of each SSRC and estimates
//! the packet index of each packet received (§3.3.1, Appendix A), refuses
//! replayed packets (§3.3.2) and numbers SRTCP packets (§3.4).
//!
//! ```
//! use realtimer_srtp::{ProtectionProfile, SrtpContext};
//! let (key, salt) = ([7u8; 16], [9u8; 14]);
//! let profile = ProtectionProfile::Aes128CmHmacSha1_80;
//! let mut sender = SrtpContext::new(profile, &key, &salt).unwrap();
//! let mut receiver = SrtpContext::new(profile, &key, &salt).unwrap();
//! let rtp = [0x80, 111, 0, 1, 0, 0, 0, 160, 0, 0, 0, 42, 1, 2, 3];
//! let (mut srtp, mut back) = (Vec::new(), Vec::new());
//! sender.protect_rtp(&rtp, &mut srtp).unwrap();
//! receiver.unprotect_rtp(&srtp, &mut back).unwrap();
//! assert_eq!(back, rtp);
//! assert!(receiver.unprotect_rtp(&srtp, &mut back).is_err(), "a replay is refused");
//! ```

// Library code never unwraps: peer input gets typed errors.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod cipher;
mod context;
mod kdf;
mod profile;
mod replay;

pub use context::{SrtpContext, MAX_SSRCS};
pub use profile::ProtectionProfile;
pub use replay::REPLAY_WINDOW;

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// The master key or salt (or a session key) has the wrong length for
    /// the profile.
    #[error("{what} is {got} bytes, the profile needs {expected}")]
    KeyLength {
        /// Which value.
        what: &'static str,
        /// The length the profile needs.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The RTP header is malformed.
    #[error("malformed RTP packet: {0}")]
    Rtp(#[from] realtimer_rtp::ParseError),
    /// The packet is shorter than its header, index and tag need.
    #[error("packet of {len} bytes is shorter than the {min} bytes its header and tag need")]
    TooShort {
        /// The packet's length.
        len: usize,
        /// The least it needs.
        min: usize,
    },
    /// The packet is not version 2 RTCP.
    #[error("not an RTCP packet")]
    NotRtcp,
    /// The authentication tag does not match (RFC 3711 §3.3, step 5): a
    /// forged or corrupted packet, or a wrong key or rollover counter.
    #[error("authentication failed")]
    Authentication,
    /// RFC 3711 §3.3.2: this index was received before.
    #[error("replayed packet: SSRC {ssrc:#010x} index {index}")]
    Replayed {
        /// The stream.
        ssrc: u32,
        /// The packet index.
        index: u64,
    },
    /// RFC 3711 §3.3.2: the index is older than the replay window reaches.
    #[error("packet too old for the replay window: SSRC {ssrc:#010x} index {index}")]
    TooOld {
        /// The stream.
        ssrc: u32,
        /// The packet index.
        index: u64,
    },
    /// RFC 3711 §9.1, RFC 7714 §8.1: this index was already protected
    /// (or is too old to tell); protecting other bytes under it would reuse
    /// the keystream or the GCM nonce. Retransmit the protected bytes.
    #[error("SRTP index already sent: SSRC {ssrc:#010x} index {index}")]
    IndexReused {
        /// The stream.
        ssrc: u32,
        /// The packet index.
        index: u64,
    },
    /// The context already tracks [`MAX_SSRCS`] streams.
    #[error("more than {max} SSRCs in one SRTP context")]
    TooManySsrcs {
        /// The limit.
        max: usize,
    },
    /// RFC 3711 §3.3.1, §3.4: the packet index space of a stream is used
    /// up (2^48 SRTP or 2^31 SRTCP packets); the session must be re-keyed.
    #[error("packet index space of SSRC {ssrc:#010x} exhausted: re-key")]
    IndexExhausted {
        /// The stream.
        ssrc: u32,
    },
    /// OpenSSL failed (not caused by the packet).
    #[error("cipher failure: {0}")]
    Cipher(#[from] openssl::error::ErrorStack),
}

#[cfg(test)]
mod tests {
    /// Hex to bytes, for test vectors.
    pub(crate) fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
