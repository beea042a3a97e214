//! Drives the TURN server core with arbitrary datagrams from a client that
//! already holds an allocation, a permission and a channel, and from peers,
//! with time moving forward; and the same over a TCP stream (messages,
//! then the stream closing); and a TCP allocation (RFC 6062) with a
//! connection to a peer bound to a data connection, taking signed Connect
//! and ConnectionBind requests with the fuzzer's ids, peers' connections
//! and the driver's reports. The server must never panic, and its state
//! must stay within its limits.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use realtimer_stun::attributes::{
    ChannelNumber, ConnectionId, Nonce, Realm, RequestedTransport, Username, XorPeerAddress,
};
use realtimer_stun::{
    Class, IntegrityKey, Message, MessageEncoder, Method, PasswordAlgorithm, TransactionId,
};
use realtimer_turn::{Credentials, Event, Server, ServerConfig, Transport};

const REALM: &str = "fuzz";

/// Plays the driver: binds relays (all but some ports), reaches peers (all
/// but some ports), remembers CONNECTION-IDs; returns the last nonce seen.
fn drain(server: &mut Server, now: Instant, connections: &mut Vec<u32>) -> Option<String> {
    let mut nonce = None;
    while let Some(event) = server.poll_event() {
        match event {
            Event::OpenRelay { relay } | Event::OpenTcpRelay { relay } => {
                server.relay_opened(now, relay, relay.port() % 7 != 0)
            }
            Event::ConnectPeer {
                connection, peer, ..
            } => {
                connections.push(connection);
                server.peer_connected(now, connection, peer.port() % 3 != 0);
            }
            _ => {}
        }
    }
    while let Some(t) = server.poll_transmit() {
        if let Ok(m) = Message::decode(&t.contents) {
            if let Ok(Some(Nonce(n))) = m.get::<Nonce>() {
                nonce = Some(n.to_owned());
            }
            if let Ok(Some(ConnectionId(id))) = m.get::<ConnectionId>() {
                connections.push(id);
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
    config.limits.tcp_connections_per_allocation = 4;
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
    let tcp_client: SocketAddr = "127.0.0.1:5100".parse().unwrap();
    let mut connections = Vec::new();

    // Set up: learn a nonce, allocate, permit, bind a channel.
    server.handle_client(
        now,
        listener,
        client,
        &request(Method::ALLOCATE, 1, "x", |_| {}),
    );
    let nonce = drain(&mut server, now, &mut connections).unwrap_or_default();
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
        drain(&mut server, now, &mut connections);
    }
    let relay = relays.first().copied().unwrap_or(listener);

    // A TCP allocation with a permission for the peer, a connection to it
    // and that connection bound to a data connection.
    let tcp = |server: &mut Server, now, from, message: &[u8]| {
        server.handle_stream_message(now, Transport::Tcp, listener, from, message)
    };
    tcp(
        &mut server,
        now,
        tcp_client,
        &request(Method::ALLOCATE, 5, "x", |_| {}),
    );
    let tcp_nonce = drain(&mut server, now, &mut connections).unwrap_or_default();
    let connect = |tid, to: SocketAddr| {
        request(Method::CONNECT, tid, &tcp_nonce, |e| {
            e.add(&XorPeerAddress(to)).unwrap();
        })
    };
    let bind = |tid, id| {
        request(Method::CONNECTION_BIND, tid, &tcp_nonce, |e| {
            e.add(&ConnectionId(id)).unwrap();
        })
    };
    tcp(
        &mut server,
        now,
        tcp_client,
        &request(Method::ALLOCATE, 6, &tcp_nonce, |e| {
            e.add(&RequestedTransport::TCP).unwrap();
        }),
    );
    let mut tcp_relay = listener;
    while let Some(event) = server.poll_event() {
        if let Event::OpenTcpRelay { relay } = event {
            tcp_relay = relay;
            server.relay_opened(now, relay, true);
        }
    }
    // Port 6001: the driver stand-in reaches it (not a multiple of 3).
    tcp(
        &mut server,
        now,
        tcp_client,
        &connect(7, SocketAddr::new(peer.ip(), 6001)),
    );
    drain(&mut server, now, &mut connections);
    let data_connection = SocketAddr::new(tcp_client.ip(), 5200);
    if let Some(&id) = connections.first() {
        tcp(&mut server, now, data_connection, &bind(8, id));
    }
    drain(&mut server, now, &mut connections);
    assert!(
        server.has_allocation(Transport::Tcp, listener, data_connection),
        "the setup bound a data connection"
    );

    // Then the fuzzer's operations: [op, len_hi, len_lo, bytes...].
    let mut rest = data;
    while rest.len() >= 3 {
        let op = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let body = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let port = 5000 + u16::from(op >> 4);
        let from = SocketAddr::new(client.ip(), port);
        let pick = |b: Option<&u8>| {
            let i = usize::from(b.copied().unwrap_or(0));
            connections
                .get(i % connections.len().max(1))
                .copied()
                .unwrap_or(0)
        };
        match op & 0x7 {
            0 => server.handle_client(now, listener, from, body),
            1 => server.handle_client(now, listener, client, body),
            2 => server.handle_peer(now, relay, SocketAddr::new(peer.ip(), port + 1000), body),
            4 => server.handle_stream_message(now, Transport::Tcp, listener, client, body),
            5 => server.handle_stream_message(now, Transport::Tls, listener, from, body),
            6 => server.stream_closed(now, Transport::Tcp, listener, client),
            // RFC 6062, by the first byte: a peer connecting, a signed
            // Connect or ConnectionBind, a data connection closing, the
            // driver's report on a connect.
            3 => match body.first().copied().unwrap_or(0) % 5 {
                0 => {
                    let from = SocketAddr::new(peer.ip(), port + 1000);
                    if let Some(id) = server.handle_peer_connection(now, tcp_relay, from) {
                        connections.push(id);
                    }
                }
                1 => tcp(
                    &mut server,
                    now,
                    tcp_client,
                    &connect(op, SocketAddr::new(peer.ip(), port)),
                ),
                2 => tcp(&mut server, now, from, &bind(op, pick(body.get(1)))),
                3 => server.stream_closed(now, Transport::Tcp, listener, from),
                _ => server.peer_connected(now, pick(body.get(1)), body.len() % 2 == 0),
            },
            _ => {
                let secs = body.first().copied().unwrap_or(1);
                now += Duration::from_millis(u64::from(secs) * 250);
                server.handle_timeout(now);
            }
        }
        drain(&mut server, now, &mut connections);
        connections.truncate(64);
        assert!(server.allocation_count() <= 4);
    }
    // At most 4 TCP allocations of 4 connections each.
    let text = server.render_prometheus();
    let active = text
        .lines()
        .find_map(|l| l.strip_prefix("realtimer_turn_tcp_connections_active "))
        .and_then(|v| v.parse::<usize>().ok());
    assert!(active.is_some_and(|n| n <= 16), "{active:?}");
});
