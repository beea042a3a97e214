//! Drives the TURN server core with arbitrary datagrams from a client that
//! already holds an allocation, a permission and a channel, and from peers,
//! with time moving forward; and the same over a TCP stream (messages,
//! then the stream closing). The server must never panic, and its state
//! must stay within its limits.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use realtimer_stun::attributes::{
    ChannelNumber, Nonce, Realm, RequestedTransport, Username, XorPeerAddress,
};
use realtimer_stun::{
    Class, IntegrityKey, Message, MessageEncoder, Method, PasswordAlgorithm, TransactionId,
};
use realtimer_turn::{Credentials, Event, Server, ServerConfig, Transport};

const REALM: &str = "fuzz";

fn drain(server: &mut Server, now: Instant) -> Option<String> {
    let mut nonce = None;
    while let Some(event) = server.poll_event() {
        if let Event::OpenRelay { relay } = event {
            server.relay_opened(now, relay, relay.port() % 7 != 0);
        }
    }
    while let Some(t) = server.poll_transmit() {
        if let Ok(m) = Message::decode(&t.contents) {
            if let Ok(Some(Nonce(n))) = m.get::<Nonce>() {
                nonce = Some(n.to_owned());
            }
        }
        server.recycle(t.contents);
    }
    nonce
}

fn request(
    method: Method,
    tid: u8,
    nonce: &str,
    build: impl Fn(&mut MessageEncoder<'_>),
) -> Vec<u8> {
    let key = IntegrityKey::long_term("u", REALM, "p", PasswordAlgorithm::Md5).unwrap();
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut buf,
        Class::Request,
        method,
        TransactionId::new([tid; 12]),
    );
    build(&mut enc);
    enc.add(&Username("u")).unwrap();
    enc.add(&Realm(REALM)).unwrap();
    enc.add(&Nonce(nonce)).unwrap();
    enc.add_message_integrity(&key).unwrap();
    enc.add_fingerprint().unwrap();
    buf
}

fuzz_target!(|data: &[u8]| {
    let mut credentials = Credentials::new(REALM);
    credentials.add_user("u", "p").unwrap();
    credentials.set_rest_secret("s");
    let mut config = ServerConfig::new(credentials, [1; 16]);
    config.port_range = 40000..=40015;
    config.limits.total_allocations = 4;
    config.limits.permissions_per_allocation = 4;
    config.limits.channels_per_allocation = 4;
    config
        .peer_policy
        .allow
        .push("127.0.0.1/8".parse().unwrap());
    let mut now = Instant::now();
    let Ok(mut server) = Server::new(config, now, 1_700_000_000) else {
        return;
    };
    let listener: SocketAddr = "127.0.0.1:3478".parse().unwrap();
    let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let peer: SocketAddr = "127.0.0.1:6000".parse().unwrap();

    // Set up: learn a nonce, allocate, permit, bind a channel.
    server.handle_client(
        now,
        listener,
        client,
        &request(Method::ALLOCATE, 1, "x", |_| {}),
    );
    let nonce = drain(&mut server, now).unwrap_or_default();
    let setup = [
        request(Method::ALLOCATE, 2, &nonce, |e| {
            e.add(&RequestedTransport::UDP).unwrap();
        }),
        request(Method::CREATE_PERMISSION, 3, &nonce, |e| {
            e.add(&XorPeerAddress(peer)).unwrap();
        }),
        request(Method::CHANNEL_BIND, 4, &nonce, |e| {
            e.add(&ChannelNumber(0x4000)).unwrap();
            e.add(&XorPeerAddress(peer)).unwrap();
        }),
    ];
    let mut relays = Vec::new();
    for m in &setup {
        server.handle_client(now, listener, client, m);
        server.handle_stream_message(now, Transport::Tcp, listener, client, m);
        while let Some(event) = server.poll_event() {
            if let Event::OpenRelay { relay } = event {
                relays.push(relay);
                server.relay_opened(now, relay, true);
            }
        }
        drain(&mut server, now);
    }
    let relay = relays.first().copied().unwrap_or(listener);

    // Then the fuzzer's operations: [op, len_hi, len_lo, bytes...].
    let mut rest = data;
    while rest.len() >= 3 {
        let op = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let body = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let port = 5000 + u16::from(op >> 4);
        let from = SocketAddr::new(client.ip(), port);
        match op & 0x7 {
            0 => server.handle_client(now, listener, from, body),
            1 => server.handle_client(now, listener, client, body),
            2 => server.handle_peer(now, relay, SocketAddr::new(peer.ip(), port + 1000), body),
            4 => server.handle_stream_message(now, Transport::Tcp, listener, client, body),
            5 => server.handle_stream_message(now, Transport::Tls, listener, from, body),
            6 => server.stream_closed(now, Transport::Tcp, listener, client),
            _ => {
                let secs = body.first().copied().unwrap_or(1);
                now += Duration::from_millis(u64::from(secs) * 250);
                server.handle_timeout(now);
            }
        }
        drain(&mut server, now);
        assert!(server.allocation_count() <= 4);
    }
});
