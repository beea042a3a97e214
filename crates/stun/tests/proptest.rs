//! Property tests: whatever we encode decodes to the same attributes, and no
//! byte string makes decoding panic.

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;
use realtimer_stun::attributes::*;
use realtimer_stun::{Class, IntegrityKey, Message, MessageEncoder, Method, TransactionId};

/// An owned attribute value, so proptest can generate and shrink it.
#[derive(Debug, Clone)]
enum Owned {
    Mapped(SocketAddr),
    XorMapped(SocketAddr),
    XorPeer(SocketAddr),
    XorRelayed(SocketAddr),
    AlternateServer(SocketAddr),
    Username(String),
    Realm(String),
    Nonce(String),
    Software(String),
    AlternateDomain(String),
    ErrorCode(u16, String),
    Userhash([u8; 32]),
    Priority(u32),
    UseCandidate,
    IceControlled(u64),
    IceControlling(u64),
    ChannelNumber(u16),
    Lifetime(u32),
    Data(Vec<u8>),
    RequestedAddressFamily(bool),
    AdditionalAddressFamily(bool),
    EvenPort(bool),
    RequestedTransport(u8),
    DontFragment,
    ReservationToken(u64),
    Icmp(u8, u16, u32),
    AddressErrorCode(bool, u16, String),
    PasswordAlgorithm(u16, Vec<u8>),
    Unknown(u16, Vec<u8>),
}

fn family(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::V6
    } else {
        AddressFamily::V4
    }
}

impl Owned {
    fn encode(&self, enc: &mut MessageEncoder<'_>) {
        match self {
            Owned::Mapped(a) => enc.add(&MappedAddress(*a)),
            Owned::XorMapped(a) => enc.add(&XorMappedAddress(*a)),
            Owned::XorPeer(a) => enc.add(&XorPeerAddress(*a)),
            Owned::XorRelayed(a) => enc.add(&XorRelayedAddress(*a)),
            Owned::AlternateServer(a) => enc.add(&AlternateServer(*a)),
            Owned::Username(s) => enc.add(&Username(s)),
            Owned::Realm(s) => enc.add(&Realm(s)),
            Owned::Nonce(s) => enc.add(&Nonce(s)),
            Owned::Software(s) => enc.add(&Software(s)),
            Owned::AlternateDomain(s) => enc.add(&AlternateDomain(s)),
            Owned::ErrorCode(c, r) => enc.add(&ErrorCode::new(*c, r)),
            Owned::Userhash(h) => enc.add(&Userhash(*h)),
            Owned::Priority(p) => enc.add(&Priority(*p)),
            Owned::UseCandidate => enc.add(&UseCandidate),
            Owned::IceControlled(t) => enc.add(&IceControlled(*t)),
            Owned::IceControlling(t) => enc.add(&IceControlling(*t)),
            Owned::ChannelNumber(n) => enc.add(&ChannelNumber(*n)),
            Owned::Lifetime(l) => enc.add(&Lifetime(*l)),
            Owned::Data(d) => enc.add(&Data(d)),
            Owned::RequestedAddressFamily(v6) => enc.add(&RequestedAddressFamily(family(*v6))),
            Owned::AdditionalAddressFamily(v6) => enc.add(&AdditionalAddressFamily(family(*v6))),
            Owned::EvenPort(r) => enc.add(&EvenPort { reserve_next: *r }),
            Owned::RequestedTransport(p) => enc.add(&RequestedTransport(*p)),
            Owned::DontFragment => enc.add(&DontFragment),
            Owned::ReservationToken(t) => enc.add(&ReservationToken(*t)),
            Owned::Icmp(t, c, d) => enc.add(&Icmp {
                icmp_type: *t,
                code: *c,
                error_data: *d,
            }),
            Owned::AddressErrorCode(v6, c, r) => enc.add(&AddressErrorCode {
                family: family(*v6),
                code: *c,
                reason: r,
            }),
            Owned::PasswordAlgorithm(a, p) => enc.add(&PasswordAlgorithmParams {
                algorithm: *a,
                parameters: p,
            }),
            Owned::Unknown(t, v) => enc.add_raw(AttributeType(*t), v),
        }
        .unwrap();
    }

    fn matches(&self, decoded: &Attribute<'_>) -> bool {
        match (self, decoded) {
            (Owned::Mapped(a), Attribute::MappedAddress(d)) => d.0 == *a,
            (Owned::XorMapped(a), Attribute::XorMappedAddress(d)) => d.0 == *a,
            (Owned::XorPeer(a), Attribute::XorPeerAddress(d)) => d.0 == *a,
            (Owned::XorRelayed(a), Attribute::XorRelayedAddress(d)) => d.0 == *a,
            (Owned::AlternateServer(a), Attribute::AlternateServer(d)) => d.0 == *a,
            (Owned::Username(s), Attribute::Username(d)) => d.0 == s,
            (Owned::Realm(s), Attribute::Realm(d)) => d.0 == s,
            (Owned::Nonce(s), Attribute::Nonce(d)) => d.0 == s,
            (Owned::Software(s), Attribute::Software(d)) => d.0 == s,
            (Owned::AlternateDomain(s), Attribute::AlternateDomain(d)) => d.0 == s,
            (Owned::ErrorCode(c, r), Attribute::ErrorCode(d)) => d.code == *c && d.reason == r,
            (Owned::Userhash(h), Attribute::Userhash(d)) => d.0 == *h,
            (Owned::Priority(p), Attribute::Priority(d)) => d.0 == *p,
            (Owned::UseCandidate, Attribute::UseCandidate(_)) => true,
            (Owned::IceControlled(t), Attribute::IceControlled(d)) => d.0 == *t,
            (Owned::IceControlling(t), Attribute::IceControlling(d)) => d.0 == *t,
            (Owned::ChannelNumber(n), Attribute::ChannelNumber(d)) => d.0 == *n,
            (Owned::Lifetime(l), Attribute::Lifetime(d)) => d.0 == *l,
            (Owned::Data(v), Attribute::Data(d)) => d.0 == v.as_slice(),
            (Owned::RequestedAddressFamily(v6), Attribute::RequestedAddressFamily(d)) => {
                d.0 == family(*v6)
            }
            (Owned::AdditionalAddressFamily(v6), Attribute::AdditionalAddressFamily(d)) => {
                d.0 == family(*v6)
            }
            (Owned::EvenPort(r), Attribute::EvenPort(d)) => d.reserve_next == *r,
            (Owned::RequestedTransport(p), Attribute::RequestedTransport(d)) => d.0 == *p,
            (Owned::DontFragment, Attribute::DontFragment(_)) => true,
            (Owned::ReservationToken(t), Attribute::ReservationToken(d)) => d.0 == *t,
            (Owned::Icmp(t, c, e), Attribute::Icmp(d)) => {
                d.icmp_type == *t && d.code == *c && d.error_data == *e
            }
            (Owned::AddressErrorCode(v6, c, r), Attribute::AddressErrorCode(d)) => {
                d.family == family(*v6) && d.code == *c && d.reason == r
            }
            (Owned::PasswordAlgorithm(a, p), Attribute::PasswordAlgorithm(d)) => {
                d.algorithm == *a && d.parameters == p.as_slice()
            }
            (Owned::Unknown(t, v), Attribute::Unknown(d)) => {
                d.attribute_type == AttributeType(*t) && d.value == v.as_slice()
            }
            _ => false,
        }
    }
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
    ]
}

/// Text within the short-text limits (127 characters, 763 bytes).
fn short_text() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn owned() -> impl Strategy<Value = Owned> {
    prop_oneof![
        socket_addr().prop_map(Owned::Mapped),
        socket_addr().prop_map(Owned::XorMapped),
        socket_addr().prop_map(Owned::XorPeer),
        socket_addr().prop_map(Owned::XorRelayed),
        socket_addr().prop_map(Owned::AlternateServer),
        "\\PC{0,100}".prop_map(Owned::Username),
        short_text().prop_map(Owned::Realm),
        short_text().prop_map(Owned::Nonce),
        short_text().prop_map(Owned::Software),
        "[a-z.]{0,60}".prop_map(Owned::AlternateDomain),
        (300u16..700, short_text()).prop_map(|(c, r)| Owned::ErrorCode(c, r)),
        any::<[u8; 32]>().prop_map(Owned::Userhash),
        any::<u32>().prop_map(Owned::Priority),
        Just(Owned::UseCandidate),
        any::<u64>().prop_map(Owned::IceControlled),
        any::<u64>().prop_map(Owned::IceControlling),
        any::<u16>().prop_map(Owned::ChannelNumber),
        any::<u32>().prop_map(Owned::Lifetime),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Owned::Data),
        any::<bool>().prop_map(Owned::RequestedAddressFamily),
        any::<bool>().prop_map(Owned::AdditionalAddressFamily),
        any::<bool>().prop_map(Owned::EvenPort),
        any::<u8>().prop_map(Owned::RequestedTransport),
        Just(Owned::DontFragment),
        any::<u64>().prop_map(Owned::ReservationToken),
        (0u8..128, 0u16..512, any::<u32>()).prop_map(|(t, c, d)| Owned::Icmp(t, c, d)),
        (any::<bool>(), 300u16..700, short_text())
            .prop_map(|(f, c, r)| Owned::AddressErrorCode(f, c, r)),
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(a, p)| Owned::PasswordAlgorithm(a, p)),
        // Types no RFC here assigns, in both ranges.
        (
            prop_oneof![0x4000u16..0x7000, 0xC000u16..0xFFFF],
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(t, v)| Owned::Unknown(t, v)),
    ]
}

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![
        Just(Class::Request),
        Just(Class::Indication),
        Just(Class::SuccessResponse),
        Just(Class::ErrorResponse),
    ]
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_same_message(
        class in class(),
        method in 0u16..0x1000,
        tid in any::<[u8; 12]>(),
        attributes in proptest::collection::vec(owned(), 0..12),
        integrity in any::<bool>(),
        integrity_sha256 in any::<bool>(),
        fingerprint in any::<bool>(),
        password in "[a-zA-Z0-9+/]{1,30}",
    ) {
        let method = Method::new(method).unwrap();
        let key = IntegrityKey::short_term(&password).unwrap();
        let mut buf = vec![0xAA; 3]; // the encoder appends after what is there
        let mut enc = MessageEncoder::new(&mut buf, class, method, TransactionId::new(tid));
        for a in &attributes {
            a.encode(&mut enc);
        }
        if integrity {
            enc.add_message_integrity(&key).unwrap();
        }
        if integrity_sha256 {
            enc.add_message_integrity_sha256(&key).unwrap();
        }
        let len = if fingerprint { enc.add_fingerprint().unwrap() } else { enc.finish() };
        prop_assert_eq!(len, buf.len() - 3);

        let msg = Message::decode(&buf[3..]).unwrap();
        prop_assert_eq!(msg.class(), class);
        prop_assert_eq!(msg.method(), method);
        prop_assert_eq!(msg.transaction_id(), TransactionId::new(tid));
        prop_assert_eq!(msg.has_fingerprint(), fingerprint);
        let decoded: Vec<_> = msg.attributes().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded.len(), attributes.len());
        for (owned, decoded) in attributes.iter().zip(&decoded) {
            prop_assert!(owned.matches(decoded), "{:?} != {:?}", owned, decoded);
        }
        if integrity || integrity_sha256 {
            prop_assert!(msg.verify_integrity(&key).is_ok());
            let wrong = IntegrityKey::from_bytes(b"not the key");
            prop_assert!(msg.verify_integrity(&wrong).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(msg) = Message::decode(&bytes) {
            for attribute in msg.attributes() {
                let _ = attribute;
            }
            let _ = msg.verify_integrity(&IntegrityKey::from_bytes(b"k"));
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        attributes in proptest::collection::vec(owned(), 0..6),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut buf = Vec::new();
        let mut enc = MessageEncoder::new(&mut buf, Class::Request, Method::BINDING, TransactionId::new([1; 12]));
        for a in &attributes {
            a.encode(&mut enc);
        }
        enc.finish();
        for (at, value) in flips {
            let at = at % buf.len();
            buf[at] = value;
        }
        if let Ok(msg) = Message::decode(&buf) {
            let _: Vec<_> = msg.attributes().collect();
            let _ = msg.verify_integrity(&IntegrityKey::from_bytes(b"k"));
        }
    }
}
