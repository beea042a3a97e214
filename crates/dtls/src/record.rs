//! Just enough of the DTLS record layer (RFC 6347 §4.1) to classify a
//! datagram before OpenSSL sees it.

/// RFC 6347 §4.1: type(1) version(2) epoch(2) sequence_number(6) length(2).
pub(crate) const HEADER_LEN: usize = 13;

/// The largest record: 2^14 bytes of plaintext + 2048 of expansion
/// (RFC 5246 §6.2.3) + the header. A datagram can hold no more.
pub(crate) const MAX_DATAGRAM: usize = (1 << 14) + 2048 + HEADER_LEN;

/// RFC 7983 §7: a first byte in 20..=63 means DTLS.
pub(crate) fn looks_like_dtls(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(20..=63))
}

/// Whether any whole record in `datagram` is of epoch 1.
pub(crate) fn has_epoch1_record(datagram: &[u8]) -> bool {
    let mut found = false;
    for_each_record(datagram, |_, epoch| found |= epoch == 1);
    found
}

/// Content types (RFC 5246 §6.2.1).
const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;

/// Whether the datagram carries a handshake or ChangeCipherSpec record: the
/// peer is (re)sending a handshake flight. Walks the record headers; stops
/// at the first one that does not fit.
pub(crate) fn has_handshake_record(datagram: &[u8]) -> bool {
    let mut rest = datagram;
    while rest.len() >= HEADER_LEN {
        let content_type = rest[0];
        if content_type == HANDSHAKE || content_type == CHANGE_CIPHER_SPEC {
            return true;
        }
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let Some(next) = rest.get(HEADER_LEN + len..) else {
            break;
        };
        rest = next;
    }
    false
}

/// Calls `f` with the byte range of each whole record in `datagram` and
/// its epoch (RFC 6347 §4.1 header: epoch at bytes 3..5, sequence number at
/// 5..11, length at 11..13).
fn for_each_record(datagram: &[u8], mut f: impl FnMut(usize, u16)) {
    let mut at = 0;
    while let Some(header) = datagram.get(at..at + HEADER_LEN) {
        let epoch = u16::from_be_bytes([header[3], header[4]]);
        let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
        if datagram.len() < at + HEADER_LEN + len {
            break;
        }
        f(at, epoch);
        at += HEADER_LEN + len;
    }
}

/// Gives every epoch-0 record in `datagram` the next sequence number from
/// `next`.
///
/// Why: a byte-identical resend is dropped by the peer's replay window
/// (RFC 6347 §4.1.2.6) for every record it has seen, even one its
/// handshake layer threw away, such as a ChangeCipherSpec that arrived
/// before the messages preceding it (OpenSSL drops those as
/// "out-of-order"). Resent records need fresh numbers, as RFC 6347
/// §4.2.4 has them. Epoch-0 records are unprotected, so renumbering them is
/// invisible to the peer; epoch-1 records (the Finished message) are
/// authenticated with their number and are resent as they are, which is
/// safe because the peer buffers them without marking them seen until it
/// can decrypt them.
pub(crate) fn renumber_epoch0(datagram: &mut [u8], next: &mut u64) {
    let mut starts = Vec::new();
    for_each_record(datagram, |at, epoch| {
        if epoch == 0 {
            starts.push(at);
        }
    });
    for at in starts {
        let seq = next.to_be_bytes();
        datagram[at + 5..at + 11].copy_from_slice(&seq[2..]);
        *next += 1;
    }
}

/// A hash of the datagram that ignores epoch-0 sequence numbers: equal for
/// a flight the peer resends, whoever numbered it (OpenSSL, BoringSSL and
/// this crate all renumber resent epoch-0 records).
pub(crate) fn retransmission_key(datagram: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut covered = 0;
    for_each_record(datagram, |at, epoch| {
        if epoch == 0 {
            datagram[covered..at + 5].hash(&mut hasher);
            covered = at + 11;
        }
    });
    datagram[covered..].hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![content_type, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 7];
        r.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn finds_a_handshake_record_after_application_data() {
        let mut d = record(23, &[0; 40]);
        assert!(!has_handshake_record(&d));
        d.extend(record(22, &[1; 5]));
        assert!(has_handshake_record(&d));
        assert!(has_handshake_record(&record(20, &[1])));
        assert!(!has_handshake_record(&[22, 0, 0]));
        // A length running past the end stops the walk.
        let mut bad = record(23, &[0; 4]);
        bad[12] = 200;
        bad.extend(record(22, &[]));
        assert!(!has_handshake_record(&bad));
    }

    #[test]
    fn renumbering_touches_epoch_0_only_and_the_key_ignores_it() {
        let mut d = record(22, &[1; 5]);
        d[3..5].copy_from_slice(&[0, 0]);
        let mut e1 = record(22, &[2; 5]); // epoch 1
        e1[10] = 9;
        d.extend(&e1);
        let key = retransmission_key(&d);
        let mut next = 0x0102_0304_0506;
        renumber_epoch0(&mut d, &mut next);
        assert_eq!(&d[5..11], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(&d[18..], &e1[..]);
        assert_eq!(next, 0x0102_0304_0507);
        assert_eq!(retransmission_key(&d), key);
        d[20] ^= 1; // the epoch-1 sequence number counts
        assert_ne!(retransmission_key(&d), key);
    }

    #[test]
    fn rfc7983_demux() {
        assert!(looks_like_dtls(&[20]));
        assert!(looks_like_dtls(&[63]));
        assert!(!looks_like_dtls(&[0]));
        assert!(!looks_like_dtls(&[64]));
        assert!(!looks_like_dtls(&[128]));
        assert!(!looks_like_dtls(&[]));
    }
}
