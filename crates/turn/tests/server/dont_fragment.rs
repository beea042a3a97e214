//! DONT-FRAGMENT (RFC 8656 §7.2, §11.2, §14): the DF bit on relayed
//! datagrams only when the client asked in its Allocate.

use realtimer_stun::attributes::DontFragment;

use super::*;

/// A Send indication with DONT-FRAGMENT.
fn send_indication_df(peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut buf,
        Class::Indication,
        Method::SEND,
        TransactionId::new([0xBB; 12]),
    );
    enc.add(&XorPeerAddress(peer)).unwrap();
    enc.add(&Data(data)).unwrap();
    enc.add(&DontFragment).unwrap();
    enc.finish();
    buf
}

/// Allocates for `client`, with DONT-FRAGMENT when `df`; the relay.
fn allocate(h: &mut Harness, client: &mut Client, df: bool) -> SocketAddr {
    let response = h.request(client, Method::ALLOCATE, |enc| {
        enc.add(&RequestedTransport::UDP).unwrap();
        if df {
            enc.add(&DontFragment).unwrap();
        }
    });
    let m = Message::decode(&response).unwrap();
    assert_eq!(m.class(), Class::SuccessResponse);
    m.get::<XorRelayedAddress>().unwrap().unwrap().0
}

#[test]
fn the_df_bit_only_when_the_allocate_asked() {
    let mut h = Harness::new(config());
    let mut plain = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let mut asking = Client::new("192.0.2.10:5001", "alice", "wonderland");
    let plain_relay = allocate(&mut h, &mut plain, false);
    let asking_relay = allocate(&mut h, &mut asking, true);
    assert!(!h.server.relay_dont_fragment(plain_relay));
    assert!(h.server.relay_dont_fragment(asking_relay));
    assert!(!h
        .server
        .relay_dont_fragment("203.0.113.1:1".parse().unwrap()));

    // A Send indication asking for DF passes only where the relay sets it
    // (§11.2: otherwise it is discarded); without the attribute it passes.
    let peer = public_peer();
    for client in [&mut plain, &mut asking] {
        assert_eq!(h.permit(client, peer), None);
    }
    h.send(&plain, &send_indication_df(peer, b"df"));
    assert!(h.transmits().is_empty());
    assert_eq!(h.server.metrics().dropped_malformed, 1);
    h.send(&plain, &send_indication(peer, b"plain"));
    h.send(&asking, &send_indication_df(peer, b"df"));
    let sent: Vec<(SocketAddr, Vec<u8>)> = h
        .transmits()
        .into_iter()
        .map(|t| (t.source, t.contents))
        .collect();
    assert_eq!(
        sent,
        [
            (plain_relay, b"plain".to_vec()),
            (asking_relay, b"df".to_vec())
        ]
    );
}
