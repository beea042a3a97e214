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
    fn rfc7983_demux() {
        assert!(looks_like_dtls(&[20]));
        assert!(looks_like_dtls(&[63]));
        assert!(!looks_like_dtls(&[0]));
        assert!(!looks_like_dtls(&[64]));
        assert!(!looks_like_dtls(&[128]));
        assert!(!looks_like_dtls(&[]));
    }
}
