//! Bad input gets a typed error naming what is wrong, never a panic.

use realtimer_stun::attributes::{
    ErrorCode, Lifetime, Software, Username, XorMappedAddress, XorPeerAddress,
};
use realtimer_stun::{
    AttributeError, AttributeType, Class, DecodeError, IntegrityError, IntegrityKey, Message,
    MessageEncoder, Method, TransactionId, MAX_ATTRIBUTES,
};

fn binding_request(build: impl FnOnce(&mut MessageEncoder<'_>)) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId::new([9; 12]),
    );
    build(&mut enc);
    enc.finish();
    buf
}

fn set_length(bytes: &mut [u8], length: u16) {
    bytes[2..4].copy_from_slice(&length.to_be_bytes());
}

#[test]
fn truncated_header() {
    let msg = binding_request(|_| {});
    assert_eq!(
        Message::decode(&msg[..19]).unwrap_err(),
        DecodeError::TruncatedHeader { len: 19 }
    );
    assert_eq!(
        Message::decode(&[]).unwrap_err(),
        DecodeError::TruncatedHeader { len: 0 }
    );
}

#[test]
fn leading_bits_and_cookie() {
    let mut msg = binding_request(|_| {});
    msg[0] |= 0x80;
    assert_eq!(
        Message::decode(&msg).unwrap_err(),
        DecodeError::LeadingBitsSet(0b10)
    );
    let mut msg = binding_request(|_| {});
    msg[4] = 0;
    assert_eq!(
        Message::decode(&msg).unwrap_err(),
        DecodeError::BadMagicCookie(0x0012_a442)
    );
}

#[test]
fn length_field_checks() {
    let mut msg = binding_request(|e| {
        e.add(&Lifetime(600)).unwrap();
    });
    set_length(&mut msg, 6);
    assert_eq!(
        Message::decode(&msg).unwrap_err(),
        DecodeError::LengthNotMultipleOfFour(6)
    );
    set_length(&mut msg, 12);
    assert_eq!(
        Message::decode(&msg).unwrap_err(),
        DecodeError::LengthMismatch {
            declared: 12,
            available: 8
        }
    );
    // A datagram with trailing bytes is not one message.
    set_length(&mut msg, 8);
    msg.extend_from_slice(&[0; 4]);
    assert_eq!(
        Message::decode(&msg).unwrap_err(),
        DecodeError::LengthMismatch {
            declared: 8,
            available: 12
        }
    );
}

#[test]
fn attribute_overrun() {
    let mut msg = binding_request(|e| {
        e.add(&Lifetime(600)).unwrap();
    });
    // LIFETIME claims 8 bytes where 4 remain.
    msg[22..24].copy_from_slice(&8u16.to_be_bytes());
    assert_eq!(
        Message::decode(&msg).unwrap_err(),
        DecodeError::AttributeOverrun {
            attribute: AttributeType::LIFETIME,
            offset: 20,
            length: 8
        }
    );
}

#[test]
fn missing_padding() {
    // USERNAME "abcde" sent without its 3 padding bytes: the length is 9.
    let mut msg = binding_request(|_| {});
    msg.extend_from_slice(&[0x00, 0x06, 0x00, 0x05]);
    msg.extend_from_slice(b"abcde");
    set_length(&mut msg, 9);
    assert_eq!(
        Message::decode(&msg).unwrap_err(),
        DecodeError::LengthNotMultipleOfFour(9)
    );
    // The same with the length rounded up but the bytes absent.
    set_length(&mut msg, 12);
    assert_eq!(
        Message::decode(&msg).unwrap_err(),
        DecodeError::LengthMismatch {
            declared: 12,
            available: 9
        }
    );
    // Non-zero padding is ignored (RFC 8489 §14).
    msg.extend_from_slice(b"xyz");
    assert_eq!(
        Message::decode(&msg).unwrap().get::<Username>().unwrap(),
        Some(Username("abcde"))
    );
}

#[test]
fn too_many_attributes() {
    let msg = binding_request(|e| {
        for _ in 0..=MAX_ATTRIBUTES {
            e.add(&realtimer_stun::attributes::UseCandidate).unwrap();
        }
    });
    assert_eq!(
        Message::decode(&msg).unwrap_err(),
        DecodeError::TooManyAttributes(MAX_ATTRIBUTES)
    );
}

#[test]
fn fingerprint_mismatch_and_order() {
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId::new([3; 12]),
    );
    enc.add(&Software("x")).unwrap();
    enc.add_fingerprint().unwrap();
    Message::decode(&buf).unwrap();
    let mut flipped = buf.clone();
    flipped[24] ^= 1; // alter SOFTWARE
    assert!(matches!(
        Message::decode(&flipped).unwrap_err(),
        DecodeError::FingerprintMismatch { .. }
    ));
    // Nothing may follow FINGERPRINT.
    let mut after = buf.clone();
    after.extend_from_slice(&[0x00, 0x25, 0x00, 0x00]);
    let len = (after.len() - 20) as u16;
    set_length(&mut after, len);
    assert_eq!(
        Message::decode(&after).unwrap_err(),
        DecodeError::AttributeAfterFingerprint {
            attribute: AttributeType::USE_CANDIDATE
        }
    );
}

#[test]
fn integrity_mismatch_and_missing() {
    let key = IntegrityKey::short_term("pass").unwrap();
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId::new([4; 12]),
    );
    enc.add(&Username("a:b")).unwrap();
    enc.add_message_integrity(&key).unwrap();
    enc.add(&Software("ignored after integrity")).unwrap();
    enc.finish();
    let msg = Message::decode(&buf).unwrap();
    msg.verify_integrity(&key).unwrap();
    // Attributes after MESSAGE-INTEGRITY are ignored (RFC 8489 §14.5).
    assert_eq!(msg.get::<Software>().unwrap(), None);
    let mut altered = buf.clone();
    altered[24] = b'z';
    assert_eq!(
        Message::decode(&altered).unwrap().verify_integrity(&key),
        Err(IntegrityError::Mismatch(AttributeType::MESSAGE_INTEGRITY))
    );
    let plain = binding_request(|_| {});
    assert_eq!(
        Message::decode(&plain).unwrap().verify_integrity(&key),
        Err(IntegrityError::Missing)
    );
}

#[test]
fn sha256_integrity_round_trip_and_truncation() {
    let key = IntegrityKey::long_term(
        "user",
        "realm",
        "pass",
        realtimer_stun::PasswordAlgorithm::Sha256,
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut buf,
        Class::Request,
        Method::ALLOCATE,
        TransactionId::new([5; 12]),
    );
    enc.add(&Username("user")).unwrap();
    enc.add_message_integrity(&key).unwrap();
    enc.add_message_integrity_sha256(&key).unwrap();
    enc.add_fingerprint().unwrap();
    let msg = Message::decode(&buf).unwrap();
    msg.verify_integrity(&key).unwrap();
    assert!(msg
        .verify_integrity(&IntegrityKey::from_bytes(b"other"))
        .is_err());
    // A 12-byte MESSAGE-INTEGRITY-SHA256 is refused (16 to 32 bytes).
    let mut short = binding_request(|e| {
        e.add_raw(AttributeType::MESSAGE_INTEGRITY_SHA256, &[0; 12])
            .unwrap();
    });
    assert!(matches!(
        Message::decode(&short).unwrap_err(),
        DecodeError::Attribute {
            attribute: AttributeType::MESSAGE_INTEGRITY_SHA256,
            error: AttributeError::BadLength { actual: 12, .. }
        }
    ));
    short.clear();
}

#[test]
fn bad_attribute_values() {
    // Address family 3.
    let msg = binding_request(|e| {
        e.add_raw(AttributeType::XOR_MAPPED_ADDRESS, &[0, 3, 0, 0, 1, 2, 3, 4])
            .unwrap();
    });
    let msg = Message::decode(&msg).unwrap();
    assert_eq!(
        msg.get::<XorMappedAddress>().unwrap_err(),
        DecodeError::Attribute {
            attribute: AttributeType::XOR_MAPPED_ADDRESS,
            error: AttributeError::UnknownAddressFamily(3)
        }
    );
    // IPv6 family with 4 address bytes.
    let msg = binding_request(|e| {
        e.add_raw(AttributeType::XOR_PEER_ADDRESS, &[0, 2, 0, 0, 1, 2, 3, 4])
            .unwrap();
    });
    assert!(matches!(
        Message::decode(&msg).unwrap().get::<XorPeerAddress>(),
        Err(DecodeError::Attribute {
            error: AttributeError::BadLength { actual: 8, .. },
            ..
        })
    ));
    // USERNAME that is not UTF-8, and one too long.
    let msg = binding_request(|e| {
        e.add_raw(AttributeType::USERNAME, &[0xff, 0xfe]).unwrap();
    });
    assert!(matches!(
        Message::decode(&msg).unwrap().get::<Username>(),
        Err(DecodeError::Attribute {
            error: AttributeError::NotUtf8,
            ..
        })
    ));
    let long = "u".repeat(509);
    let msg = binding_request(|e| {
        e.add_raw(AttributeType::USERNAME, long.as_bytes()).unwrap();
    });
    assert!(matches!(
        Message::decode(&msg).unwrap().get::<Username>(),
        Err(DecodeError::Attribute {
            error: AttributeError::TooLong {
                actual: 509,
                max: 508,
                ..
            },
            ..
        })
    ));
    // ERROR-CODE class 7.
    let msg = binding_request(|e| {
        e.add_raw(AttributeType::ERROR_CODE, &[0, 0, 7, 0]).unwrap();
    });
    assert!(matches!(
        Message::decode(&msg).unwrap().get::<ErrorCode>(),
        Err(DecodeError::Attribute {
            error: AttributeError::BadErrorCode {
                class: 7,
                number: 0
            },
            ..
        })
    ));
    // LIFETIME of 3 bytes.
    let msg = binding_request(|e| {
        e.add_raw(AttributeType::LIFETIME, &[0, 0, 1]).unwrap();
    });
    assert!(matches!(
        Message::decode(&msg).unwrap().get::<Lifetime>(),
        Err(DecodeError::Attribute {
            error: AttributeError::BadLength { actual: 3, .. },
            ..
        })
    ));
}

#[test]
fn encoder_refuses_what_decoder_would() {
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId::new([1; 12]),
    );
    let long = "s".repeat(200);
    assert!(enc.add(&Software(&long)).is_err());
    assert!(enc.add(&ErrorCode::new(700, "no")).is_err());
    let big = vec![0u8; 70_000];
    assert!(matches!(
        enc.add(&realtimer_stun::attributes::Data(&big)),
        Err(realtimer_stun::EncodeError::MessageTooLong(_))
    ));
}

#[test]
fn unknown_comprehension_required_attributes_are_reported() {
    let msg = binding_request(|e| {
        e.add_raw(AttributeType(0x7777), b"abcd").unwrap();
        e.add_raw(AttributeType(0xC001), b"").unwrap();
    });
    let msg = Message::decode(&msg).unwrap();
    let unknown: Vec<_> = msg.unknown_comprehension_required().collect();
    assert_eq!(unknown, vec![AttributeType(0x7777)]);
    assert_eq!(msg.raw(AttributeType(0xC001)), Some(&b""[..]));
}
