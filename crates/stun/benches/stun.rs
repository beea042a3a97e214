//! STUN decode + integrity check of a typical ICE Binding request, and its
//! encoding, against webrtc-rs's `stun` crate in the same run.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

use realtimer_stun::attributes::{IceControlling, Priority, UseCandidate, Username};
use realtimer_stun::{Class, IntegrityKey, Message, MessageEncoder, Method, TransactionId};

const UFRAGS: &str = "mF7q:x2Ab";
const PASSWORD: &str = "ZuLsCmkPH3eN0a1kdTzGq5zK";
const TID: [u8; 12] = *b"0123456789ab";
/// Chrome's GOOG-NETWORK-INFO: an unknown comprehension-optional attribute.
const GOOG_NETWORK_INFO: u16 = 0xC057;

/// The Binding request a browser sends on a nominated pair.
fn ice_binding_request(buf: &mut Vec<u8>, key: &IntegrityKey) {
    buf.clear();
    let mut enc = MessageEncoder::new(
        buf,
        Class::Request,
        Method::BINDING,
        TransactionId::new(TID),
    );
    enc.add(&Username(UFRAGS)).unwrap();
    enc.add_raw(
        realtimer_stun::AttributeType(GOOG_NETWORK_INFO),
        &[0, 1, 0, 10],
    )
    .unwrap();
    enc.add(&IceControlling(0x1234_5678_9abc_def0)).unwrap();
    enc.add(&UseCandidate).unwrap();
    enc.add(&Priority(1_853_824_767)).unwrap();
    enc.add_message_integrity(key).unwrap();
    enc.add_fingerprint().unwrap();
}

fn webrtc_rs_binding_request(
    m: &mut stun::message::Message,
    integrity: &stun::integrity::MessageIntegrity,
) {
    use stun::attributes::*;
    use stun::message::Setter;
    m.reset();
    m.set_type(stun::message::BINDING_REQUEST);
    m.transaction_id = stun::agent::TransactionId(TID);
    m.write_header();
    m.add(ATTR_USERNAME, UFRAGS.as_bytes());
    m.add(AttrType(GOOG_NETWORK_INFO), &[0, 1, 0, 10]);
    m.add(
        ATTR_ICE_CONTROLLING,
        &0x1234_5678_9abc_def0u64.to_be_bytes(),
    );
    m.add(ATTR_USE_CANDIDATE, &[]);
    m.add(ATTR_PRIORITY, &1_853_824_767u32.to_be_bytes());
    integrity.add_to(m).unwrap();
    stun::fingerprint::FINGERPRINT.add_to(m).unwrap();
}

fn bench(c: &mut Criterion) {
    let key = IntegrityKey::short_term(PASSWORD).unwrap();
    let mut request = Vec::with_capacity(256);
    ice_binding_request(&mut request, &key);

    let theirs_integrity =
        stun::integrity::MessageIntegrity::new_short_term_integrity(PASSWORD.to_owned());
    let mut theirs = stun::message::Message::new();
    webrtc_rs_binding_request(&mut theirs, &theirs_integrity);
    assert_eq!(theirs.raw, request, "both encoders write the same bytes");

    let mut group = c.benchmark_group("ice_binding_request_decode_and_check");
    group.bench_function("realtimer", |b| {
        b.iter(|| {
            let msg = Message::decode(black_box(&request)).unwrap();
            let username = msg.get::<Username>().unwrap().unwrap();
            msg.verify_integrity(&key).unwrap();
            black_box(username);
        })
    });
    let mut m = stun::message::Message::new();
    group.bench_function("webrtc-rs", |b| {
        b.iter(|| {
            m.raw.clear();
            m.raw.extend_from_slice(black_box(&request));
            m.decode().unwrap();
            let username =
                stun::textattrs::TextAttribute::get_from_as(&m, stun::attributes::ATTR_USERNAME)
                    .unwrap();
            theirs_integrity.check(&mut m).unwrap();
            stun::fingerprint::FINGERPRINT.check(&m).unwrap();
            black_box(username);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("ice_binding_request_encode");
    let mut buf = Vec::with_capacity(256);
    group.bench_function("realtimer", |b| {
        b.iter(|| {
            ice_binding_request(&mut buf, black_box(&key));
            black_box(&buf);
        })
    });
    let mut m = stun::message::Message::new();
    group.bench_function("webrtc-rs", |b| {
        b.iter(|| {
            webrtc_rs_binding_request(&mut m, black_box(&theirs_integrity));
            black_box(&m.raw);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
