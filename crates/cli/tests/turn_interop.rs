//! `realtimer serve` as a TURN server: against coturn's client
//! (`turnutils_uclient`, with `turnutils_peer` as the echoing peer), and
//! security cases over real loopback sockets with a small client built on
//! `realtimer-stun`.

#[path = "turn_interop/tcp.rs"]
mod tcp;

use realtimer_test_support::certificate::TestCertificate;
use realtimer_test_support::ports::free_udp_port;
use realtimer_test_support::process::{spawn, Running};
use realtimer_test_support::turn_client::{Credentials, User};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime};

use realtimer_signaling::{SignalingClient, SignalingEvent};
use realtimer_stun::attributes::{
    ErrorCode, Lifetime, Nonce, Realm, RequestedTransport, XorPeerAddress, XorRelayedAddress,
};
use realtimer_stun::{Class, EncodeError, Message, MessageEncoder, Method, TransactionId};

const REALTIMER: &str = env!("CARGO_BIN_EXE_realtimer");
const REALM: &str = "realtimer.test";

/// Starts `realtimer serve` with TURN on an ephemeral loopback port plus
/// `extra` flags; returns the process and the TURN port (UDP and TCP).
fn serve(extra: &[&str]) -> (Running, u16) {
    let (server, listening) = serve_listening(extra);
    (server, port_of(&listening, "(UDP)"))
}

/// The port in the "listening on ADDRESS (TRANSPORT)" line for `transport`.
fn port_of(lines: &[String], transport: &str) -> u16 {
    let line = lines
        .iter()
        .find(|l| l.contains(transport))
        .unwrap_or_else(|| panic!("no {transport} listener in {lines:?}"));
    let address: SocketAddr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    address.port()
}

/// Starts `realtimer serve` as [`serve`] does and returns its "listening
/// on" lines, up to the HTTP server's.
fn serve_listening(extra: &[&str]) -> (Running, Vec<String>) {
    serve_with(&[&["--turn-realm", REALM], extra].concat())
}

/// `realtimer serve` on ephemeral loopback ports with `extra` flags only
/// (no realm of the tests'); its "listening on" lines, up to the HTTP
/// server's.
fn serve_with(extra: &[&str]) -> (Running, Vec<String>) {
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--stun-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let server = spawn(REALTIMER, &args, &[("REALTIMER_LOG", "info")]);
    let mut lines = Vec::new();
    loop {
        let line = server.wait_for_line("listening on ");
        let http = line.contains("HTTP server");
        lines.push(line);
        if http {
            return (server, lines);
        }
    }
}

/// Starts coturn's echoing peer on a free loopback port.
/// coturn's uclient relaying through our server on `port` to a UDP echo
/// peer of its own (`-c`, no RTCP allocation), as `(user, password)`, with
/// `(messages, sessions)` and `extra` flags; its output.
fn uclient_to_echo(
    port: u16,
    (user, password): (&str, &str),
    (messages, sessions): (usize, usize),
    extra: &[&str],
) -> String {
    let (mut peer, peer_port) = echo_peer();
    let (peer_port, messages, sessions) = (
        peer_port.to_string(),
        messages.to_string(),
        sessions.to_string(),
    );
    let mut args = vec![
        "-c",
        "-u",
        user,
        "-w",
        password,
        "-e",
        "127.0.0.1",
        "-r",
        &peer_port,
        "-n",
        &messages,
        "-m",
        &sessions,
    ];
    args.extend_from_slice(extra);
    let out = uclient(port, &args);
    let _ = peer.kill();
    let _ = peer.wait();
    out
}

fn echo_peer() -> (Child, u16) {
    let port = free_udp_port();
    let child = Command::new("turnutils_peer")
        .args(["-p", &port.to_string(), "-L", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnutils_peer (coturn) must be installed");
    thread::sleep(Duration::from_millis(300));
    (child, port)
}

/// Runs `turnutils_uclient` against our server and returns its output.
fn uclient(port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let mut all = vec!["-p", &port];
    all.extend_from_slice(args);
    all.push("127.0.0.1");
    let output = Command::new("timeout")
        .arg("60")
        .arg("turnutils_uclient")
        .args(&all)
        .output()
        .expect("turnutils_uclient (coturn) must be installed");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The totals of uclient's last report: (sent, received, lost).
fn totals(output: &str) -> (u64, u64, u64) {
    let number = |line: &str, key: &str| -> Option<u64> {
        let rest = line.split(key).nth(1)?;
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let sent_line = output
        .lines()
        .rfind(|l| l.contains("start_mclient: tot_send_msgs="))
        .unwrap_or_else(|| panic!("no totals in uclient output:\n{output}"));
    let lost_line = output
        .lines()
        .rfind(|l| l.contains("Total lost packets"))
        .unwrap_or_else(|| panic!("no loss line in uclient output:\n{output}"));
    (
        number(sent_line, "tot_send_msgs=").unwrap(),
        number(sent_line, "tot_recv_msgs=").unwrap(),
        number(lost_line, "Total lost packets").unwrap(),
    )
}

#[test]
fn coturn_uclient_echoes_channel_data_through_our_server() {
    let (_server, port) = serve(&[
        "--turn-user",
        "alice:secret",
        "--relay-allow",
        "127.0.0.1/8",
    ]);
    let out = uclient_to_echo(port, ("alice", "secret"), (50, 4), &[]);
    assert_eq!(totals(&out), (200, 200, 0), "{out}");
}

#[test]
fn coturn_uclient_over_tcp_echoes_channel_data() {
    let (_server, port) = serve(&[
        "--turn-user",
        "alice:secret",
        "--relay-allow",
        "127.0.0.1/8",
    ]);
    // -t: TURN over TCP to the same port as UDP; ChannelData padded.
    let out = uclient_to_echo(port, ("alice", "secret"), (50, 4), &["-t", "-l", "171"]);
    assert_eq!(totals(&out), (200, 200, 0), "{out}");
}

#[test]
fn coturn_uclient_over_tls_echoes_channel_data() {
    let tls = TestCertificate::new();
    let mut flags = vec![
        "--turn-user",
        "alice:secret",
        "--relay-allow",
        "127.0.0.1/8",
    ];
    flags.extend(tls.serve_flags());
    let (_server, listening) = serve_listening(&flags);
    let tls_port = port_of(&listening, "(TLS)");
    // -t -S: TURN over TLS (uclient does not check the certificate).
    let out = uclient_to_echo(
        tls_port,
        ("alice", "secret"),
        (50, 2),
        &["-t", "-S", "-l", "333"],
    );
    assert_eq!(totals(&out), (100, 100, 0), "{out}");
}

#[test]
fn tcp_garbage_closes_only_its_connection_and_connection_limits_hold() {
    let (_server, port) = serve(&[
        "--turn-user",
        "alice:secret",
        "--turn-connections-per-ip",
        "3",
        "--turn-idle-timeout",
        "2",
    ]);
    let connect = || {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(8)))
            .unwrap();
        stream
    };
    let mut good = connect();
    // A TLS ClientHello on the plain port, and a STUN header without the
    // magic cookie: each closes its own connection.
    for garbage in [&[0x16, 3, 1, 0, 5][..], &[0, 1, 0, 8, 1, 2, 3, 4][..]] {
        let mut bad = connect();
        bad.write_all(garbage).unwrap();
        assert!(closed(&mut bad), "garbage {garbage:?} did not close");
    }
    thread::sleep(Duration::from_millis(300));
    // The good connection still gets Binding answered, split in two writes.
    let request = binding_request();
    good.write_all(&request[..7]).unwrap();
    thread::sleep(Duration::from_millis(50));
    good.write_all(&request[7..]).unwrap();
    let mut header = [0u8; 20];
    good.read_exact(&mut header).unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes([header[2], header[3]]))];
    good.read_exact(&mut body).unwrap();
    let response = Message::decode(&[&header[..], &body].concat())
        .unwrap()
        .class();
    assert_eq!(response, Class::SuccessResponse);

    // Three connections per IP: a fourth is closed at once.
    let _second = connect();
    let _third = connect();
    thread::sleep(Duration::from_millis(300));
    assert!(closed(&mut connect()), "a fourth connection was kept");

    // Without an allocation, a silent connection is closed after the idle time.
    assert!(closed(&mut good), "an idle connection was kept");
}

/// GET `path` from the HTTP server whose "listening on" line is in
/// `lines`; returns the head and the body.
fn http_get(lines: &[String], path: &str) -> (String, String) {
    let line = lines.iter().find(|l| l.contains("HTTP server")).unwrap();
    let address = line.split("http://").nth(1).unwrap().trim();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    (head.to_owned(), body.to_owned())
}

/// The value of the sample `name` (with its labels) in Prometheus text.
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

#[test]
fn ice_servers_credentials_work_out_of_the_box_and_metrics_count_the_traffic() {
    // No --turn-user, no --turn-secret: serve draws a secret, and
    // /api/ice-servers hands out REST credentials for it.
    let (_server, lines) = serve_listening(&["--relay-allow", "127.0.0.1/8"]);
    let port = port_of(&lines, "(UDP)");
    let (head, body) = http_get(&lines, "/api/ice-servers");
    assert!(head.contains("application/json"), "{head}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let turn = &list["iceServers"][1];
    let urls: Vec<&str> = turn["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            format!("turn:127.0.0.1:{port}?transport=udp"),
            format!("turn:127.0.0.1:{port}?transport=tcp")
        ]
    );
    assert_eq!(
        list["iceServers"][0]["urls"][0],
        format!("stun:127.0.0.1:{port}")
    );
    let username = turn["username"].as_str().unwrap();
    let password = turn["credential"].as_str().unwrap();
    let expiry: u64 = username.split(':').next().unwrap().parse().unwrap();
    assert!(expiry > unix_now() + 86_000, "{username}");

    let out = uclient_to_echo(port, (username, password), (20, 2), &["-t"]);
    assert_eq!(totals(&out), (40, 40, 0), "{out}");

    let (head, text) = http_get(&lines, "/metrics");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(sample(&text, "realtimer_turn_packets_to_peers_total") >= 40);
    assert!(sample(&text, "realtimer_turn_packets_to_clients_total") >= 40);
    assert!(sample(&text, "realtimer_turn_bytes_to_peers_total") >= 40 * 100);
    assert!(sample(&text, "realtimer_turn_allocations_created_total") >= 2);
    assert!(
        sample(
            &text,
            "realtimer_turn_auth_failures_total{reason=\"challenge\"}"
        ) >= 2
    );
    assert_eq!(
        sample(
            &text,
            "realtimer_turn_auth_failures_total{reason=\"bad_integrity\"}"
        ),
        0
    );
    assert_eq!(
        sample(&text, "realtimer_turn_quota_rejections_total{quota=\"ip\"}"),
        0
    );
    sample(
        &text,
        "realtimer_turn_connections_active{transport=\"tcp\"}",
    );
    sample(&text, "realtimer_turn_channels_active");
    assert_eq!(sample(&text, "realtimer_signaling_clients"), 0);

    // Signaling traffic: two /ws clients in a room, one message relayed.
    let http = lines.iter().find(|l| l.contains("HTTP server")).unwrap();
    let url = format!("ws://{}/ws", http.split("http://").nth(1).unwrap().trim());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _clients = runtime.block_on(async {
        let (a, _a_events) = SignalingClient::connect(&url, "metrics").await.unwrap();
        let (b, mut b_events) = SignalingClient::connect(&url, "metrics").await.unwrap();
        // connect returns once b has joined: wait until the room is ready.
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), b_events.next()).await;
            match event {
                Ok(Some(SignalingEvent::Ready { .. })) => break,
                Ok(Some(_)) => continue,
                other => panic!("b never got ready: {other:?}"),
            }
        }
        a.send(serde_json::json!({"type": "hello"})).await.unwrap();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), b_events.next()).await;
            match event {
                Ok(Some(SignalingEvent::Message { .. })) => break,
                Ok(Some(_)) => continue,
                other => panic!("no relayed message: {other:?}"),
            }
        }
        (a, b)
    });
    let (_, text) = http_get(&lines, "/metrics");
    assert_eq!(sample(&text, "realtimer_signaling_clients"), 2);
    assert_eq!(sample(&text, "realtimer_signaling_rooms"), 1);
    assert!(sample(&text, "realtimer_signaling_messages_relayed_total") >= 1);
}

/// True when the server closes `stream` (end of stream or reset) before
/// the read timeout.
fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

fn binding_request() -> Vec<u8> {
    let mut buf = Vec::new();
    let enc = MessageEncoder::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId::new([7; 12]),
    );
    enc.add_fingerprint().unwrap();
    buf
}

#[test]
fn coturn_uclient_echoes_send_indications_through_our_server() {
    let (_server, port) = serve(&[
        "--turn-user",
        "alice:secret",
        "--relay-allow",
        "127.0.0.1/8",
    ]);
    let out = uclient_to_echo(port, ("alice", "secret"), (30, 2), &["-s", "-l", "1000"]);
    assert_eq!(totals(&out), (60, 60, 0), "{out}");
}

#[test]
fn coturn_uclient_client_to_client_with_rest_credentials() {
    let (_server, port) = serve(&["--turn-secret", "north", "--relay-allow", "127.0.0.1/8"]);
    // -y: pairs of clients relay to each other's relayed addresses; -W: the
    // REST scheme, uclient mints `expiry:user` and the HMAC password.
    let out = uclient(
        port,
        &[
            "-c", "-y", "-W", "north", "-u", "carol", "-n", "30", "-m", "2",
        ],
    );
    let (sent, received, lost) = totals(&out);
    assert_eq!((sent, lost), (60, 0), "{out}");
    assert_eq!(received, 60, "{out}");
}

#[test]
fn coturn_uclient_with_a_wrong_password_gets_nothing() {
    let (_server, port) = serve(&[
        "--turn-user",
        "alice:secret",
        "--relay-allow",
        "127.0.0.1/8",
    ]);
    let out = uclient_to_echo(port, ("alice", "wrong"), (5, 1), &[]);
    assert!(out.contains("Cannot complete Allocation"), "{out}");
    assert!(!out.contains("tot_recv_msgs=5"), "{out}");
}

/// A minimal TURN client over a real socket, for the security cases: one
/// send and one wait per request (no retransmission, so an unanswered
/// request fails at once).
struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    credentials: Credentials,
}

impl Client {
    fn new(bind: &str, server_port: u16, username: &str, password: &str) -> Self {
        let socket = UdpSocket::bind(bind).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let user = User {
            name: username,
            password,
        };
        Client {
            socket,
            server: SocketAddr::from(([127, 0, 0, 1], server_port)),
            credentials: Credentials::new(user, 0),
        }
    }

    fn send_raw(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).unwrap();
    }

    fn receive(&self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        let (len, _) = self.socket.recv_from(&mut buf).ok()?;
        Some(buf[..len].to_vec())
    }

    /// Sends a request (signed once a nonce is known), retrying once on
    /// 401/438 with the server's nonce; returns the final response.
    fn request(
        &mut self,
        method: Method,
        build: &dyn Fn(&mut MessageEncoder<'_>) -> Result<(), EncodeError>,
    ) -> Vec<u8> {
        let (socket, server) = (&self.socket, self.server);
        self.credentials
            .exchange(method, build, |request| {
                socket.send_to(request, server)?;
                let mut buf = [0u8; 2048];
                let (len, _) = socket.recv_from(&mut buf)?;
                Ok(buf[..len].to_vec())
            })
            .expect("a response")
    }

    /// Sends an Allocate without credentials and returns the realm of
    /// the 401 challenge (which must carry a nonce too).
    fn challenge_realm(&self) -> String {
        let mut buf = Vec::new();
        let mut enc = MessageEncoder::new(
            &mut buf,
            Class::Request,
            Method::ALLOCATE,
            TransactionId::new([1; 12]),
        );
        enc.add(&RequestedTransport::UDP).unwrap();
        enc.add_fingerprint().unwrap();
        self.send_raw(&buf);
        let response = self.receive().unwrap();
        let m = Message::decode(&response).unwrap();
        assert_eq!(m.get::<ErrorCode>().unwrap().unwrap().code, 401);
        assert!(m.get::<Nonce>().unwrap().is_some());
        m.get::<Realm>().unwrap().unwrap().0.to_owned()
    }

    fn allocate(&mut self) -> Result<SocketAddr, u16> {
        let response = self.request(Method::ALLOCATE, &|enc| {
            enc.add(&RequestedTransport::UDP)?.add(&Lifetime(60))?;
            Ok(())
        });
        let m = Message::decode(&response).unwrap();
        match m.get::<ErrorCode>().unwrap() {
            Some(e) => Err(e.code),
            None => Ok(m.get::<XorRelayedAddress>().unwrap().unwrap().0),
        }
    }

    fn permit(&mut self, peer: &str) -> Option<u16> {
        let peer: SocketAddr = peer.parse().unwrap();
        let response = self.request(Method::CREATE_PERMISSION, &|enc| {
            enc.add(&XorPeerAddress(peer)).map(|_| ())
        });
        let m = Message::decode(&response).unwrap();
        m.get::<ErrorCode>().unwrap().map(|e| e.code)
    }
}

fn unix_now() -> u64 {
    #[allow(clippy::disallowed_methods)] // a test minting REST credentials reads the wall clock
    let now = SystemTime::now();
    now.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rest(secret: &str, username: &str) -> String {
    realtimer_turn::rest_password(secret.as_bytes(), username)
}

#[test]
fn security_no_or_wrong_or_expired_credentials_get_401() {
    let (_server, port) = serve(&["--turn-user", "alice:secret", "--turn-secret", "north"]);
    // No credentials at all: the first answer is 401 with REALM and NONCE.
    let mut anonymous = Client::new("127.0.0.1:0", port, "alice", "secret");
    assert_eq!(anonymous.challenge_realm(), REALM);

    let mut wrong = Client::new("127.0.0.1:0", port, "alice", "not-secret");
    assert_eq!(wrong.allocate(), Err(401));
    let mut unknown = Client::new("127.0.0.1:0", port, "mallory", "secret");
    assert_eq!(unknown.allocate(), Err(401));

    let expired_name = format!("{}:carol", unix_now() - 10);
    let mut expired = Client::new(
        "127.0.0.1:0",
        port,
        &expired_name,
        &rest("north", &expired_name),
    );
    assert_eq!(expired.allocate(), Err(401));
    let wrong_secret_name = format!("{}:carol", unix_now() + 600);
    let mut forged = Client::new(
        "127.0.0.1:0",
        port,
        &wrong_secret_name,
        &rest("south", &wrong_secret_name),
    );
    assert_eq!(forged.allocate(), Err(401));
    let good_name = format!("{}:carol", unix_now() + 600);
    let mut good = Client::new("127.0.0.1:0", port, &good_name, &rest("north", &good_name));
    assert!(good.allocate().is_ok());
    anonymous.allocate().expect("alice with her password");
}

#[test]
fn security_relay_to_internal_addresses_is_403_by_default() {
    let (_server, port) = serve(&["--turn-user", "alice:secret"]);
    let mut client = Client::new("127.0.0.1:0", port, "alice", "secret");
    client.allocate().unwrap();
    for peer in [
        "127.0.0.1:9",
        "10.0.0.1:9",
        "10.255.1.2:9",
        "192.168.0.1:9",
        "169.254.0.1:9",
    ] {
        assert_eq!(client.permit(peer), Some(403), "{peer}");
    }
    assert_eq!(client.permit("198.51.100.1:9"), None);
}

#[test]
fn security_quota_486_and_an_allocation_flood_is_capped_without_hurting_others() {
    let (_server, port) = serve(&[
        "--turn-user",
        "alice:secret",
        "--turn-user",
        "bob:builder",
        "--turn-user-quota",
        "3",
        "--turn-ip-quota",
        "5",
    ]);
    // Alice from many ports: 3 allocations, then 486.
    let mut alice: Vec<Client> = (0..5)
        .map(|_| Client::new("127.0.0.1:0", port, "alice", "secret"))
        .collect();
    let results: Vec<_> = alice.iter_mut().map(|c| c.allocate()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        3,
        "{results:?}"
    );
    assert_eq!(results.iter().filter(|r| **r == Err(486)).count(), 2);
    // Bob floods from 127.0.0.1 (which already holds 3): capped by the IP quota.
    let mut flood: Vec<Client> = (0..40)
        .map(|_| Client::new("127.0.0.1:0", port, "bob", "builder"))
        .collect();
    let granted = flood
        .iter_mut()
        .map(|c| c.allocate())
        .filter(Result::is_ok)
        .count();
    assert_eq!(granted, 2);
    // Another host (127.0.0.2 is loopback too) is not hurt by the flood.
    let mut other = Client::new("127.0.0.2:0", port, "bob", "builder");
    other.allocate().expect("another host still allocates");
}

#[test]
fn security_malformed_channel_data_and_garbage_are_dropped() {
    let (_server, port) = serve(&[
        "--turn-user",
        "alice:secret",
        "--relay-allow",
        "127.0.0.1/8",
    ]);
    let mut client = Client::new("127.0.0.1:0", port, "alice", "secret");
    client.allocate().unwrap();
    client
        .socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for bad in [
        &[0x40u8, 0x00, 0xFF, 0xFF, 1, 2][..],
        &[0x40, 0x01, 0x00, 0x01, 9],
        &[0x7F],
        &[0x00, 0x01, 0x00, 0x08, 0x21, 0x12],
        b"GET / HTTP/1.1\r\n\r\n",
        &[0xFF; 1200],
    ] {
        client.send_raw(bad);
    }
    assert!(client.receive().is_none(), "garbage is never answered");
    client
        .socket
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    // The server is still there and the allocation still works.
    assert_eq!(client.permit("127.0.0.1:9"), None);
}

/// The `[turn]` section of `--config` alone sets TURN up (realm, user,
/// relay ports, a peer prefix allowed), and a flag overrides the file's
/// value while the rest of the file still applies.
#[test]
fn turn_settings_from_the_config_file_take_effect_and_flags_override_them() {
    let file =
        std::env::temp_dir().join(format!("realtimer-turn-config-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "[turn]\nrealm = \"from.the.file\"\nusers = [\"carol:from-file\"]\n\
         relay_ports = \"40100-40199\"\nrelay_allow = [\"127.0.0.0/8\"]\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();

    let (server, lines) = serve_with(&["--config", config]);
    let port = port_of(&lines, "(UDP)");
    let mut carol = Client::new("127.0.0.1:0", port, "carol", "from-file");
    assert_eq!(carol.challenge_realm(), "from.the.file");
    let relayed = carol.allocate().expect("the file's user allocates");
    assert!(
        (40_100..=40_199).contains(&relayed.port()),
        "{relayed} outside the file's relay_ports"
    );
    // Loopback is denied by default (403); the file's relay_allow permits it.
    assert_eq!(carol.permit("127.0.0.1:9"), None);
    drop(server);

    let (_server, lines) = serve_with(&[
        "--config",
        config,
        "--relay-ports",
        "40200-40299",
        "--turn-user",
        "dave:from-flag",
    ]);
    let port = port_of(&lines, "(UDP)");
    let mut carol = Client::new("127.0.0.1:0", port, "carol", "from-file");
    assert_eq!(carol.challenge_realm(), "from.the.file");
    assert_eq!(
        carol.allocate(),
        Err(401),
        "--turn-user replaces the file's users"
    );
    let mut dave = Client::new("127.0.0.1:0", port, "dave", "from-flag");
    let relayed = dave.allocate().expect("the flag's user allocates");
    assert!(
        (40_200..=40_299).contains(&relayed.port()),
        "{relayed} outside --relay-ports"
    );
    assert_eq!(dave.permit("127.0.0.1:9"), None);
    let _ = std::fs::remove_file(&file);
}
