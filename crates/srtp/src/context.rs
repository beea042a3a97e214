//! [`SrtpContext`]: packet transforms, per-SSRC rollover counters, SRTCP
//! indices and replay windows.

use std::collections::HashMap;

use crate::cipher::{xor_into, AesCtr, AesGcm, HmacSha1, GCM_TAG_LEN};
use crate::kdf::{KeyDerivation, SessionKeys};
use crate::replay::{Replay, ReplayWindow};
use crate::{ProtectionProfile, SrtpError};

/// Most SSRCs one context tracks in each of its tables (RTP and RTCP), so a
/// peer cannot grow its state without bound.
pub const MAX_SSRCS: usize = 1024;

/// RFC 3711 §3.4: the SRTCP index is 31 bits; the top bit is the E flag.
const SRTCP_E_FLAG: u32 = 0x8000_0000;
const SRTCP_INDEX_MASK: u32 = 0x7FFF_FFFF;
/// RFC 3711 §3.4: the first 8 bytes of SRTCP (header and sender SSRC) stay
/// in the clear.
const RTCP_CLEAR_LEN: usize = 8;

/// The cipher and authentication of one of SRTP or SRTCP.
enum Transform {
    /// RFC 3711 §4.1.1 AES-CM and §4.2.1 HMAC-SHA1.
    Cm {
        ctr: AesCtr,
        hmac: HmacSha1,
        salt: [u8; 14],
        tag_len: usize,
    },
    /// RFC 7714 AES-GCM.
    Gcm { gcm: AesGcm, salt: [u8; 12] },
}

impl Transform {
    fn new(
        profile: ProtectionProfile,
        keys: &SessionKeys,
        tag_len: usize,
    ) -> Result<Self, SrtpError> {
        Ok(if profile.is_aead() {
            Self::Gcm {
                gcm: AesGcm::new(&keys.encryption)?,
                salt: salt_array(&keys.salt)?,
            }
        } else {
            Self::Cm {
                ctr: AesCtr::new(&keys.encryption)?,
                hmac: HmacSha1::new(&keys.authentication)?,
                salt: salt_array(&keys.salt)?,
                tag_len,
            }
        })
    }
}

fn salt_array<const N: usize>(salt: &[u8]) -> Result<[u8; N], SrtpError> {
    salt.try_into().map_err(|_| SrtpError::KeyLength {
        what: "session salt",
        expected: N,
        got: salt.len(),
    })
}

/// RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16).
fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0; 16];
    iv[..14].copy_from_slice(salt);
    xor_into(&mut iv[4..8], &ssrc.to_be_bytes());
    xor_into(&mut iv[8..14], &index.to_be_bytes()[2..]);
    iv
}

/// RFC 7714 §8.1 (SRTP: `tail` = ROC || SEQ) and §9.1 (SRTCP: `tail` =
/// 0x0000 || SRTCP index): IV = (0x0000 || SSRC || tail) XOR salt.
fn gcm_iv(salt: &[u8; 12], ssrc: u32, tail: [u8; 6]) -> [u8; 12] {
    let mut iv = *salt;
    xor_into(&mut iv[2..6], &ssrc.to_be_bytes());
    xor_into(&mut iv[6..], &tail);
    iv
}

fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// RFC 3711 Appendix A: the index of a packet with sequence number `seq`,
/// given the highest index seen: the rollover counter that puts it closest.
fn estimate_index(highest: u64, seq: u16) -> u64 {
    let roc = highest >> 16;
    let s_l = highest as u16;
    let v = if s_l < 0x8000 {
        // A packet from before the last wrap; before ROC 0 there is none.
        if seq > s_l && seq - s_l > 0x8000 {
            roc.saturating_sub(1)
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    v << 16 | u64::from(seq)
}

/// Inserts into a table bounded by [`MAX_SSRCS`].
fn insert_bounded<V>(table: &mut HashMap<u32, V>, ssrc: u32, value: V) -> Result<(), SrtpError> {
    if table.len() >= MAX_SSRCS {
        return Err(SrtpError::TooManySsrcs { max: MAX_SSRCS });
    }
    table.insert(ssrc, value);
    Ok(())
}

/// Checks `index` of `ssrc` against its window, if the stream is known.
fn check_replay(
    windows: &HashMap<u32, ReplayWindow>,
    ssrc: u32,
    index: u64,
) -> Result<(), SrtpError> {
    match windows.get(&ssrc).map(|w| w.check(index)) {
        Some(Err(Replay::Duplicate)) => Err(SrtpError::Replayed { ssrc, index }),
        Some(Err(Replay::TooOld)) => Err(SrtpError::TooOld { ssrc, index }),
        _ => Ok(()),
    }
}

/// Records an authenticated `index` of `ssrc`.
fn accept(
    windows: &mut HashMap<u32, ReplayWindow>,
    ssrc: u32,
    index: u64,
) -> Result<(), SrtpError> {
    match windows.get_mut(&ssrc) {
        Some(window) => {
            window.accept(index);
            Ok(())
        }
        None => insert_bounded(windows, ssrc, ReplayWindow::new(index)),
    }
}

/// One direction of one SRTP session: all SSRCs protected with one master
/// key (RFC 3711 §3.2.1 cryptographic context, one per direction).
///
/// Use one context to protect what is sent and another to unprotect what
/// is received.
pub struct SrtpContext {
    profile: ProtectionProfile,
    rtp: Transform,
    rtcp: Transform,
    /// SRTP indices sent per SSRC (rollover counter and sequence number):
    /// an index is never protected twice (RFC 3711 §9.1 keystream reuse,
    /// RFC 7714 §8.1 nonce reuse).
    sent_rtp: HashMap<u32, ReplayWindow>,
    /// Next SRTCP index to send per SSRC.
    sent_rtcp: HashMap<u32, u32>,
    /// Received SRTP indices per SSRC.
    received_rtp: HashMap<u32, ReplayWindow>,
    /// Received SRTCP indices per SSRC.
    received_rtcp: HashMap<u32, ReplayWindow>,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field(
                "rtp_ssrcs",
                &(self.sent_rtp.len() + self.received_rtp.len()),
            )
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// Derives the session keys of `profile` from the master key and salt
    /// (RFC 3711 §4.3, key derivation rate 0).
    pub fn new(
        profile: ProtectionProfile,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        for (what, expected, got) in [
            ("master key", profile.key_len(), master_key.len()),
            ("master salt", profile.salt_len(), master_salt.len()),
        ] {
            if expected != got {
                return Err(SrtpError::KeyLength {
                    what,
                    expected,
                    got,
                });
            }
        }
        let mut kdf = KeyDerivation::new(master_key, master_salt)?;
        let rtp = kdf.session_keys(profile, false)?;
        let rtcp = kdf.session_keys(profile, true)?;
        Self::with_session_keys(profile, &rtp, &rtcp)
    }

    /// A context over session keys already derived.
    fn with_session_keys(
        profile: ProtectionProfile,
        rtp: &SessionKeys,
        rtcp: &SessionKeys,
    ) -> Result<Self, SrtpError> {
        Ok(Self {
            profile,
            rtp: Transform::new(profile, rtp, profile.rtp_tag_len())?,
            rtcp: Transform::new(profile, rtcp, profile.rtcp_tag_len())?,
            sent_rtp: HashMap::new(),
            sent_rtcp: HashMap::new(),
            received_rtp: HashMap::new(),
            received_rtcp: HashMap::new(),
        })
    }

    /// The profile.
    pub fn profile(&self) -> ProtectionProfile {
        self.profile
    }

    /// Appends the protected packet to `out` (cleared first).
    pub fn protect_rtp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        copy_into(packet, out);
        self.protect_rtp_in_place(out)
    }

    /// Appends the unprotected packet to `out` (cleared first).
    pub fn unprotect_rtp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        copy_into(packet, out);
        self.unprotect_rtp_in_place(out)
    }

    /// Appends the protected packet to `out` (cleared first).
    pub fn protect_rtcp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        copy_into(packet, out);
        self.protect_rtcp_in_place(out)
    }

    /// Appends the unprotected packet to `out` (cleared first).
    pub fn unprotect_rtcp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        copy_into(packet, out);
        self.unprotect_rtcp_in_place(out)
    }

    /// Turns the RTP packet in `packet` into SRTP (RFC 3711 §3.3): encrypts
    /// the payload and appends the tag. The packet index continues the
    /// SSRC's rollover counter (a sequence number that wraps to 0 starts
    /// the next one).
    ///
    /// An index already protected, or older than [`REPLAY_WINDOW`] behind
    /// the highest one, is refused with [`SrtpError::IndexReused`]: the same
    /// index on other bytes would reuse the AES-CM keystream (RFC 3711
    /// §9.1) or the GCM nonce (RFC 7714 §8.1). To retransmit, send the
    /// protected bytes again.
    ///
    /// [`REPLAY_WINDOW`]: crate::REPLAY_WINDOW
    pub fn protect_rtp_in_place(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let header_len = realtimer_rtp::header_len(packet)?;
        let ssrc = be32(packet, 8);
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let index = match self.sent_rtp.get(&ssrc) {
            Some(window) => estimate_index(window.top(), seq),
            None => u64::from(seq),
        };
        if index >> 48 != 0 {
            return Err(SrtpError::IndexExhausted { ssrc });
        }
        if check_replay(&self.sent_rtp, ssrc, index).is_err() {
            return Err(SrtpError::IndexReused { ssrc, index });
        }
        accept(&mut self.sent_rtp, ssrc, index)?;
        let roc = (index >> 16) as u32;
        match &mut self.rtp {
            Transform::Cm {
                ctr,
                hmac,
                salt,
                tag_len,
            } => {
                ctr.apply(&cm_iv(salt, ssrc, index), &mut packet[header_len..])?;
                let tag = hmac.sign(&[packet, &roc.to_be_bytes()])?;
                packet.extend_from_slice(&tag[..*tag_len]);
            }
            Transform::Gcm { gcm, salt } => {
                let iv = gcm_iv(salt, ssrc, rtp_tail(roc, seq));
                let (header, payload) = packet.split_at_mut(header_len);
                let tag = gcm.seal(iv, header, payload)?;
                packet.extend_from_slice(tag.as_ref());
            }
        }
        Ok(())
    }

    /// Turns the SRTP packet in `packet` back into RTP (RFC 3711 §3.3):
    /// estimates its index, refuses a replay, checks the tag, decrypts.
    pub fn unprotect_rtp_in_place(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let header_len = realtimer_rtp::header_len(packet)?;
        let tag_len = self.profile.rtp_tag_len();
        let min = header_len + tag_len;
        if packet.len() < min {
            return Err(SrtpError::TooShort {
                len: packet.len(),
                min,
            });
        }
        let ssrc = be32(packet, 8);
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let index = match self.received_rtp.get(&ssrc) {
            Some(window) => estimate_index(window.top(), seq),
            // RFC 3711 §3.3.1: the first packet of a stream starts ROC 0.
            None => u64::from(seq),
        };
        check_replay(&self.received_rtp, ssrc, index)?;
        let roc = (index >> 16) as u32;
        match &mut self.rtp {
            Transform::Cm {
                ctr, hmac, salt, ..
            } => {
                let body_len = packet.len() - tag_len;
                let (body, tag) = packet.split_at(body_len);
                hmac.verify(&[body, &roc.to_be_bytes()], tag)?;
                packet.truncate(body_len);
                ctr.apply(&cm_iv(salt, ssrc, index), &mut packet[header_len..])?;
            }
            Transform::Gcm { gcm, salt } => {
                let iv = gcm_iv(salt, ssrc, rtp_tail(roc, seq));
                let (header, payload) = packet.split_at_mut(header_len);
                let len = gcm.open(iv, header, payload)?;
                packet.truncate(header_len + len);
            }
        }
        accept(&mut self.received_rtp, ssrc, index)
    }

    /// Turns the RTCP compound packet in `packet` into SRTCP (RFC 3711
    /// §3.4): encrypts all but the first 8 bytes, appends E flag and SRTCP
    /// index, and the tag (for GCM, RFC 7714 §9: the tag, then E and index).
    pub fn protect_rtcp_in_place(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        check_rtcp(packet, RTCP_CLEAR_LEN)?;
        let ssrc = be32(packet, 4);
        let index = match self.sent_rtcp.get_mut(&ssrc) {
            Some(next) => std::mem::replace(next, next.wrapping_add(1)),
            None => {
                insert_bounded(&mut self.sent_rtcp, ssrc, 1)?;
                0
            }
        };
        if index > SRTCP_INDEX_MASK {
            return Err(SrtpError::IndexExhausted { ssrc });
        }
        let trailer = (SRTCP_E_FLAG | index).to_be_bytes();
        match &mut self.rtcp {
            Transform::Cm {
                ctr,
                hmac,
                salt,
                tag_len,
            } => {
                ctr.apply(
                    &cm_iv(salt, ssrc, u64::from(index)),
                    &mut packet[RTCP_CLEAR_LEN..],
                )?;
                packet.extend_from_slice(&trailer);
                let tag = hmac.sign(&[packet])?;
                packet.extend_from_slice(&tag[..*tag_len]);
            }
            Transform::Gcm { gcm, salt } => {
                let iv = gcm_iv(salt, ssrc, rtcp_tail(index));
                let aad = rtcp_aad(packet, trailer);
                let tag = gcm.seal(iv, &aad, &mut packet[RTCP_CLEAR_LEN..])?;
                packet.extend_from_slice(tag.as_ref());
                packet.extend_from_slice(&trailer);
            }
        }
        Ok(())
    }

    /// Turns the SRTCP packet in `packet` back into RTCP (RFC 3711 §3.4):
    /// refuses a replayed index, checks the tag, decrypts when the E flag
    /// says the packet is encrypted.
    pub fn unprotect_rtcp_in_place(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.profile.rtcp_tag_len();
        check_rtcp(packet, RTCP_CLEAR_LEN + 4 + tag_len)?;
        let ssrc = be32(packet, 4);
        let trailer_at = match self.rtcp {
            Transform::Cm { .. } => packet.len() - tag_len - 4,
            Transform::Gcm { .. } => packet.len() - 4,
        };
        let trailer = be32(packet, trailer_at);
        let encrypted = trailer & SRTCP_E_FLAG != 0;
        let index = trailer & SRTCP_INDEX_MASK;
        check_replay(&self.received_rtcp, ssrc, u64::from(index))?;
        match &mut self.rtcp {
            Transform::Cm {
                ctr, hmac, salt, ..
            } => {
                let body_len = packet.len() - tag_len;
                let (body, tag) = packet.split_at(body_len);
                hmac.verify(&[body], tag)?;
                packet.truncate(trailer_at);
                if encrypted {
                    ctr.apply(
                        &cm_iv(salt, ssrc, u64::from(index)),
                        &mut packet[RTCP_CLEAR_LEN..],
                    )?;
                }
            }
            Transform::Gcm { gcm, salt } => {
                let iv = gcm_iv(salt, ssrc, rtcp_tail(index));
                let trailer = trailer.to_be_bytes();
                packet.truncate(trailer_at);
                if encrypted {
                    let aad = rtcp_aad(packet, trailer);
                    let len = gcm.open(iv, &aad, &mut packet[RTCP_CLEAR_LEN..])?;
                    packet.truncate(RTCP_CLEAR_LEN + len);
                } else {
                    // RFC 7714 §9.3: unencrypted, the whole packet and the
                    // trailer are associated data; only the tag follows.
                    let body_len = packet.len() - GCM_TAG_LEN;
                    let mut aad = Vec::with_capacity(body_len + 4);
                    aad.extend_from_slice(&packet[..body_len]);
                    aad.extend_from_slice(&trailer);
                    gcm.open(iv, &aad, &mut packet[body_len..])?;
                    packet.truncate(body_len);
                }
            }
        }
        accept(&mut self.received_rtcp, ssrc, u64::from(index))
    }
}

fn copy_into(packet: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(packet);
}

/// Checks an (S)RTCP packet: at least `min` bytes, version 2.
fn check_rtcp(packet: &[u8], min: usize) -> Result<(), SrtpError> {
    if packet.len() < min {
        return Err(SrtpError::TooShort {
            len: packet.len(),
            min,
        });
    }
    if packet[0] >> 6 != 2 {
        return Err(SrtpError::NotRtcp);
    }
    Ok(())
}

/// RFC 7714 §8.1: ROC || SEQ.
fn rtp_tail(roc: u32, seq: u16) -> [u8; 6] {
    let mut tail = [0; 6];
    tail[..4].copy_from_slice(&roc.to_be_bytes());
    tail[4..].copy_from_slice(&seq.to_be_bytes());
    tail
}

/// RFC 7714 §9.1: 0x0000 || SRTCP index.
fn rtcp_tail(index: u32) -> [u8; 6] {
    let mut tail = [0; 6];
    tail[2..].copy_from_slice(&index.to_be_bytes());
    tail
}

/// RFC 7714 §9.2: the AAD of encrypted SRTCP: the clear 8 bytes, then E
/// flag and index.
fn rtcp_aad(packet: &[u8], trailer: [u8; 4]) -> [u8; 12] {
    let mut aad = [0; 12];
    aad[..RTCP_CLEAR_LEN].copy_from_slice(&packet[..RTCP_CLEAR_LEN]);
    aad[RTCP_CLEAR_LEN..].copy_from_slice(&trailer);
    aad
}

#[cfg(test)]
mod tests;
