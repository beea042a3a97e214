//! RFC 5769 test vectors, decoded and re-encoded byte for byte, and the
//! USERHASH of RFC 8489 Appendix B.1.

use realtimer_stun::attributes::{
    IceControlled, Nonce, Priority, Realm, Software, Userhash, Username, XorMappedAddress,
};
use realtimer_stun::{
    userhash, Class, IntegrityError, IntegrityKey, Message, MessageEncoder, Method,
    PasswordAlgorithm, PasswordPreparation, TransactionId,
};

fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 5769 §2.1: Binding request, short-term credentials, padding with spaces.
const SAMPLE_REQUEST: &str = "
    00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
    00 24 00 04 6e 00 01 ff
    80 29 00 08 93 2f f9 b1 51 26 3b 36
    00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
    00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
    80 28 00 04 e5 7a 3b cf";

/// RFC 5769 §2.2: IPv4 success response.
const SAMPLE_IPV4_RESPONSE: &str = "
    01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 08 00 01 a1 47 e1 12 a6 43
    00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
    80 28 00 04 c0 7d 4c 96";

/// RFC 5769 §2.3: IPv6 success response.
const SAMPLE_IPV6_RESPONSE: &str = "
    01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
    80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
    00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
    00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
    80 28 00 04 c8 fb 0b 4c";

/// RFC 5769 §2.4: Binding request with long-term credentials.
const SAMPLE_LONG_TERM_REQUEST: &str = "
    00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
    00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
    00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
    00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
    00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66";

const SHORT_TERM_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";
const TID: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

#[test]
fn sample_request_decodes_verifies_and_reencodes() {
    let bytes = hex(SAMPLE_REQUEST);
    let msg = Message::decode(&bytes).unwrap();
    assert_eq!(msg.class(), Class::Request);
    assert_eq!(msg.method(), Method::BINDING);
    assert_eq!(msg.transaction_id(), TransactionId::new(TID));
    assert!(msg.has_fingerprint());
    assert_eq!(
        msg.get::<Software>().unwrap(),
        Some(Software("STUN test client"))
    );
    assert_eq!(msg.get::<Priority>().unwrap(), Some(Priority(0x6e0001ff)));
    assert_eq!(
        msg.get::<IceControlled>().unwrap(),
        Some(IceControlled(0x932ff9b151263b36))
    );
    assert_eq!(msg.get::<Username>().unwrap(), Some(Username("evtj:h6vY")));
    let key = IntegrityKey::short_term(SHORT_TERM_PASSWORD).unwrap();
    msg.verify_integrity(&key).unwrap();
    assert_eq!(
        msg.verify_integrity(&IntegrityKey::short_term("wrong").unwrap()),
        Err(IntegrityError::Mismatch(
            realtimer_stun::AttributeType::MESSAGE_INTEGRITY
        ))
    );

    let mut out = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut out,
        Class::Request,
        Method::BINDING,
        TransactionId::new(TID),
    )
    .with_padding_byte(b' ');
    enc.add(&Software("STUN test client")).unwrap();
    enc.add(&Priority(0x6e0001ff)).unwrap();
    enc.add(&IceControlled(0x932ff9b151263b36)).unwrap();
    enc.add(&Username("evtj:h6vY")).unwrap();
    enc.add_message_integrity(&key).unwrap();
    enc.add_fingerprint().unwrap();
    assert_eq!(out, bytes);
}

fn check_response(vector: &str, mapped: &str) {
    let bytes = hex(vector);
    let msg = Message::decode(&bytes).unwrap();
    assert_eq!(msg.class(), Class::SuccessResponse);
    assert_eq!(msg.method(), Method::BINDING);
    let mapped = mapped.parse().unwrap();
    assert_eq!(
        msg.get::<XorMappedAddress>().unwrap(),
        Some(XorMappedAddress(mapped))
    );
    assert_eq!(
        msg.get::<Software>().unwrap(),
        Some(Software("test vector"))
    );
    let key = IntegrityKey::short_term(SHORT_TERM_PASSWORD).unwrap();
    msg.verify_integrity(&key).unwrap();

    let mut out = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut out,
        Class::SuccessResponse,
        Method::BINDING,
        TransactionId::new(TID),
    )
    .with_padding_byte(b' ');
    enc.add(&Software("test vector")).unwrap();
    enc.add(&XorMappedAddress(mapped)).unwrap();
    enc.add_message_integrity(&key).unwrap();
    enc.add_fingerprint().unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn sample_ipv4_response() {
    check_response(SAMPLE_IPV4_RESPONSE, "192.0.2.1:32853");
}

#[test]
fn sample_ipv6_response() {
    check_response(
        SAMPLE_IPV6_RESPONSE,
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
    );
}

/// RFC 5769 §2.4 predates RFC 8489: its password is prepared with SASLprep,
/// which maps "The\u{AD}M\u{AA}tr\u{2168}" to "TheMatrIX".
#[test]
fn sample_long_term_request() {
    let bytes = hex(SAMPLE_LONG_TERM_REQUEST);
    let msg = Message::decode(&bytes).unwrap();
    let username = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
    assert_eq!(msg.get::<Username>().unwrap(), Some(Username(username)));
    assert_eq!(
        msg.get::<Nonce>().unwrap(),
        Some(Nonce("f//499k954d6OL34oL9FSTvy64sA"))
    );
    assert_eq!(msg.get::<Realm>().unwrap(), Some(Realm("example.org")));
    assert!(!msg.has_fingerprint());

    let raw_password = "The\u{AD}M\u{AA}tr\u{2168}";
    let key = IntegrityKey::long_term_prepared_with(
        username,
        "example.org",
        raw_password,
        PasswordAlgorithm::Md5,
        PasswordPreparation::SaslPrep,
    )
    .unwrap();
    msg.verify_integrity(&key).unwrap();
    // The prepared password gives the same key through OpaqueString.
    let prepared =
        IntegrityKey::long_term(username, "example.org", "TheMatrIX", PasswordAlgorithm::Md5)
            .unwrap();
    assert_eq!(prepared, key);
    // OpaqueString refuses the soft hyphen that SASLprep maps to nothing.
    assert!(IntegrityKey::long_term(
        username,
        "example.org",
        raw_password,
        PasswordAlgorithm::Md5
    )
    .is_err());

    let mut out = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut out,
        Class::Request,
        Method::BINDING,
        TransactionId::new([
            0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e,
        ]),
    );
    enc.add(&Username(username)).unwrap();
    enc.add(&Nonce("f//499k954d6OL34oL9FSTvy64sA")).unwrap();
    enc.add(&Realm("example.org")).unwrap();
    enc.add_message_integrity(&key).unwrap();
    enc.finish();
    assert_eq!(out, bytes);
}

/// RFC 8489 Appendix B.1 gives the USERHASH of the same username and realm.
#[test]
fn rfc8489_userhash() {
    let hash = userhash(
        "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}",
        "example.org",
    )
    .unwrap();
    let expected = hex("4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704");
    assert_eq!(hash.to_vec(), expected);
    let mut out = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut out,
        Class::Request,
        Method::BINDING,
        TransactionId::new([0; 12]),
    );
    enc.add(&Userhash(hash)).unwrap();
    enc.finish();
    let msg = Message::decode(&out).unwrap();
    assert_eq!(msg.get::<Userhash>().unwrap(), Some(Userhash(hash)));
}
