//! TCP allocations (RFC 6062) end to end through `realtimer serve`: a
//! client speaking STUN over TCP makes a TCP allocation, reaches a TCP
//! echo peer with Connect and ConnectionBind, and takes a peer's
//! connection announced by ConnectionAttempt; and coturn's uclient `-T`.

use std::net::{Shutdown, TcpListener};

use super::*;
use realtimer_test_support::turn_client::{connection_id, read_message, StreamClient, User};

const ALICE: User<'static> = User {
    name: "alice",
    password: "secret",
};

/// Bytes each way before the pipe is trusted, in uneven writes.
const ECHO_BYTES: usize = 256 * 1024;

fn serve_tcp_relays() -> (Running, Vec<String>, u16) {
    let (server, listening) = serve_listening(&[
        "--turn-user",
        "alice:secret",
        "--relay-allow",
        "127.0.0.1/32",
    ]);
    let port = port_of(&listening, "(UDP)");
    (server, listening, port)
}

/// A TCP echo server on loopback: each connection echoes until its end of
/// stream, then closes. Serves `connections` connections.
fn tcp_echo_peer(connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    if stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

/// Writes `ECHO_BYTES` of a pattern on `writer` (from a thread) while
/// reading them back on `reader`: true when every byte came back in order.
fn echoes(writer: &TcpStream, reader: &mut TcpStream) -> bool {
    let pattern: Vec<u8> = (0..ECHO_BYTES).map(|i| (i % 251) as u8).collect();
    let mut writer = writer.try_clone().unwrap();
    let sent = pattern.clone();
    let sender = thread::spawn(move || {
        for chunk in sent.chunks(1000 + 337) {
            writer.write_all(chunk).unwrap();
        }
    });
    let mut back = vec![0u8; ECHO_BYTES];
    let ok = reader.read_exact(&mut back).is_ok() && back == pattern;
    sender.join().unwrap();
    ok
}

#[test]
fn connect_and_connection_bind_pipe_bytes_to_a_tcp_peer_and_back() {
    let (_server, listening, port) = serve_tcp_relays();
    let peer = tcp_echo_peer(1);
    let mut control = StreamClient::connect(port, ALICE).unwrap();
    control.allocate_tcp().unwrap();
    let response = control
        .request_ok(Method::CONNECT, &|enc| {
            enc.add(&XorPeerAddress(peer)).map(|_| ())
        })
        .unwrap();
    let connection = connection_id(&response).unwrap();
    let mut data = control.data_connection(port).unwrap();
    data.bind(connection).unwrap();
    let mut pipe = data.stream.try_clone().unwrap();
    assert!(echoes(&data.stream, &mut pipe), "the echo came back intact");

    // Half-close: our end of stream reaches the peer, which closes, and
    // that reaches us.
    data.stream.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    assert_eq!(data.stream.read_to_end(&mut rest).unwrap(), 0);

    let (_, metrics) = http_get(&listening, "/metrics");
    let piped = ECHO_BYTES as u64;
    assert_eq!(
        sample(&metrics, "realtimer_turn_tcp_bytes_to_peers_total"),
        piped
    );
    assert_eq!(
        sample(&metrics, "realtimer_turn_tcp_bytes_to_clients_total"),
        piped
    );
    assert_eq!(
        sample(&metrics, "realtimer_turn_tcp_connections_bound_total"),
        1
    );
}

#[test]
fn a_refused_connect_gets_447_and_an_internal_peer_403() {
    let (_server, _listening, port) = serve_tcp_relays();
    // A port with nothing listening: the connection is refused.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut control = StreamClient::connect(port, ALICE).unwrap();
    control.allocate_tcp().unwrap();
    let code = |response: Vec<u8>| {
        let m = Message::decode(&response).unwrap();
        m.get::<ErrorCode>().unwrap().map(|e| e.code)
    };
    let refused = control
        .request(Method::CONNECT, &|enc| {
            enc.add(&XorPeerAddress(closed)).map(|_| ())
        })
        .unwrap();
    assert_eq!(code(refused), Some(447));
    let internal: SocketAddr = "10.0.0.1:80".parse().unwrap();
    let forbidden = control
        .request(Method::CONNECT, &|enc| {
            enc.add(&XorPeerAddress(internal)).map(|_| ())
        })
        .unwrap();
    assert_eq!(code(forbidden), Some(403));
}

#[test]
fn a_peer_connecting_to_the_relay_is_announced_and_bound() {
    let (_server, _listening, port) = serve_tcp_relays();
    let mut control = StreamClient::connect(port, ALICE).unwrap();
    let relay = control.allocate_tcp().unwrap();
    // Without a permission the server closes a peer's connection at once.
    let mut stranger = TcpStream::connect(relay).unwrap();
    stranger
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(matches!(stranger.read(&mut [0u8; 1]), Ok(0) | Err(_)));

    control
        .request_ok(Method::CREATE_PERMISSION, &|enc| {
            enc.add(&XorPeerAddress(relay)).map(|_| ())
        })
        .unwrap();
    let mut peer = TcpStream::connect(relay).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let attempt = read_message(&mut control.stream).unwrap();
    let m = Message::decode(&attempt).unwrap();
    assert_eq!(
        (m.class(), m.method()),
        (Class::Indication, Method::CONNECTION_ATTEMPT)
    );
    assert_eq!(
        m.get::<XorPeerAddress>().unwrap(),
        Some(XorPeerAddress(peer.local_addr().unwrap()))
    );
    // Bytes the peer sends before the bind wait for it.
    peer.write_all(b"early").unwrap();
    let mut data = control.data_connection(port).unwrap();
    data.bind(connection_id(&attempt).unwrap()).unwrap();
    let mut early = [0u8; 5];
    data.stream.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"early");
    // Both ways, the peer echoing what the client sends.
    let echo = thread::spawn({
        let mut peer = peer.try_clone().unwrap();
        move || {
            let mut buf = vec![0u8; ECHO_BYTES];
            peer.read_exact(&mut buf).unwrap();
            peer.write_all(&buf).unwrap();
        }
    });
    let mut pipe = data.stream.try_clone().unwrap();
    assert!(echoes(&data.stream, &mut pipe));
    echo.join().unwrap();
    // The control connection closing takes the data connection with it.
    drop(control);
    let mut rest = Vec::new();
    assert!(matches!(data.stream.read_to_end(&mut rest), Ok(0) | Err(_)));
    assert!(matches!(peer.read(&mut [0u8; 1]), Ok(0) | Err(_)));
}

#[test]
fn coturn_uclient_relays_over_tcp_allocations_between_two_clients() {
    let (_server, _listening, port) = serve_tcp_relays();
    // -T: TCP allocations (RFC 6062), client to client: each Connects to
    // the other's relayed address, which the other takes from a
    // ConnectionAttempt.
    let out = uclient(
        port,
        &[
            "-T", "-u", "alice", "-w", "secret", "-n", "50", "-m", "2", "-l", "400",
        ],
    );
    assert_eq!(totals(&out), (100, 100, 0), "{out}");
}

#[test]
fn coturn_uclient_relays_over_tcp_allocations_on_tls() {
    let tls = TestCertificate::new();
    let mut flags = vec![
        "--turn-user",
        "alice:secret",
        "--relay-allow",
        "127.0.0.1/32",
    ];
    flags.extend(tls.serve_flags());
    let (_server, listening) = serve_listening(&flags);
    let tls_port = port_of(&listening, "(TLS)");
    // -T -S: control and data connections over TLS; the pipe carries the
    // TLS connection's plaintext to the other client's relay.
    let out = uclient(
        tls_port,
        &[
            "-T", "-S", "-u", "alice", "-w", "secret", "-n", "30", "-m", "2", "-l", "300",
        ],
    );
    assert_eq!(totals(&out), (60, 60, 0), "{out}");
}
