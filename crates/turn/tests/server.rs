//! The server core driven on virtual time with hand-built requests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use realtimer_stun::attributes::{
    AddressFamily, ChannelNumber, Data, ErrorCode, Lifetime, Nonce, Realm, RequestedAddressFamily,
    RequestedTransport, Software, Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use realtimer_stun::{
    Class, IntegrityKey, Message, MessageEncoder, Method, PasswordAlgorithm, TransactionId,
};
use realtimer_turn::channel_data::ChannelData;
use realtimer_turn::{
    rest_password, AuthFailure, Credentials, Event, Limits, Quota, Server, ServerConfig, Transmit,
    Transport,
};

#[path = "server/dont_fragment.rs"]
mod dont_fragment;
#[path = "server/tcp.rs"]
mod tcp;

const REALM: &str = "realtimer.test";
const UNIX_START: u64 = 1_700_000_000;

fn listener() -> SocketAddr {
    "203.0.113.1:3478".parse().unwrap()
}

fn config() -> ServerConfig {
    let mut credentials = Credentials::new(REALM);
    credentials.add_user("alice", "wonderland").unwrap();
    credentials.add_user("bob", "builder").unwrap();
    credentials.set_rest_secret("north");
    let mut config = ServerConfig::new(credentials, [9; 16]);
    config.relay_ipv4 = Some("203.0.113.1".parse().unwrap());
    config.port_range = 50000..=50999;
    config
}

struct Harness {
    server: Server,
    now: Instant,
    tid: u8,
}

/// One client's view: address, credentials and the nonce it learned.
struct Client {
    address: SocketAddr,
    username: String,
    password: String,
    nonce: Option<String>,
    transport: Transport,
}

impl Client {
    fn new(address: &str, username: &str, password: &str) -> Self {
        Client {
            address: address.parse().unwrap(),
            username: username.into(),
            password: password.into(),
            nonce: None,
            transport: Transport::Udp,
        }
    }

    /// The same client on a TCP or TLS connection.
    fn over(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    fn key(&self) -> IntegrityKey {
        IntegrityKey::long_term(
            &self.username,
            REALM,
            &self.password,
            PasswordAlgorithm::Md5,
        )
        .unwrap()
    }
}

fn error_code(bytes: &[u8]) -> Option<u16> {
    let m = Message::decode(bytes).unwrap();
    m.get::<ErrorCode>().unwrap().map(|e| e.code)
}

impl Harness {
    fn new(config: ServerConfig) -> Self {
        // The start of virtual time; the test moves it by hand from here.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        Harness {
            server: Server::new(config, now, UNIX_START).unwrap(),
            now,
            tid: 0,
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.server.handle_timeout(self.now);
    }

    fn next_tid(&mut self) -> TransactionId {
        self.tid = self.tid.wrapping_add(1);
        TransactionId::new([self.tid; 12])
    }

    /// Binds every relay the server asks for, and returns the events seen.
    fn drive(&mut self) -> Vec<Event> {
        let mut seen = Vec::new();
        while let Some(event) = self.server.poll_event() {
            if let Event::OpenRelay { relay } | Event::OpenTcpRelay { relay } = event {
                self.server.relay_opened(self.now, relay, true);
            }
            seen.push(event);
        }
        seen
    }

    fn transmits(&mut self) -> Vec<Transmit> {
        self.drive();
        std::iter::from_fn(|| self.server.poll_transmit()).collect()
    }

    /// Sends a request built by `build`, signed when the client has a
    /// nonce; answers 401/438 once by retrying with the new nonce.
    fn request(
        &mut self,
        client: &mut Client,
        method: Method,
        build: impl Fn(&mut MessageEncoder<'_>),
    ) -> Vec<u8> {
        for _ in 0..2 {
            let tid = self.next_tid();
            let bytes = encode(client, method, tid, &build, true);
            self.send(client, &bytes);
            let out = self.transmits();
            assert_eq!(out.len(), 1, "one response to {method:?}");
            let response = out.into_iter().next().unwrap().contents;
            let code = error_code(&response);
            if matches!(code, Some(401 | 438)) && client.nonce.is_none() || code == Some(438) {
                let m = Message::decode(&response).unwrap();
                client.nonce = Some(m.get::<Nonce>().unwrap().unwrap().0.to_owned());
                continue;
            }
            return response;
        }
        panic!("no answer after a nonce retry");
    }

    /// One message from `client` on its transport.
    fn send(&mut self, client: &Client, bytes: &[u8]) {
        match client.transport {
            Transport::Udp => {
                self.server
                    .handle_client(self.now, listener(), client.address, bytes)
            }
            transport => self.server.handle_stream_message(
                self.now,
                transport,
                listener(),
                client.address,
                bytes,
            ),
        }
    }

    fn allocate(&mut self, client: &mut Client) -> Vec<u8> {
        self.request(client, Method::ALLOCATE, |enc| {
            enc.add(&RequestedTransport::UDP).unwrap();
        })
    }

    fn allocate_ok(&mut self, client: &mut Client) -> SocketAddr {
        let response = self.allocate(client);
        let m = Message::decode(&response).unwrap();
        assert_eq!(
            m.class(),
            Class::SuccessResponse,
            "{:?}",
            error_code(&response)
        );
        m.verify_integrity(&client.key()).unwrap();
        assert_eq!(
            m.get::<XorMappedAddress>().unwrap(),
            Some(XorMappedAddress(client.address))
        );
        assert_eq!(m.get::<Lifetime>().unwrap(), Some(Lifetime(600)));
        m.get::<XorRelayedAddress>().unwrap().unwrap().0
    }

    fn permit(&mut self, client: &mut Client, peer: SocketAddr) -> Option<u16> {
        let response = self.request(client, Method::CREATE_PERMISSION, |enc| {
            enc.add(&XorPeerAddress(peer)).unwrap();
        });
        error_code(&response)
    }

    fn bind_channel(&mut self, client: &mut Client, channel: u16, peer: SocketAddr) -> Option<u16> {
        let response = self.request(client, Method::CHANNEL_BIND, |enc| {
            enc.add(&ChannelNumber(channel)).unwrap();
            enc.add(&XorPeerAddress(peer)).unwrap();
        });
        error_code(&response)
    }
}

/// An Allocate for UDP relaying (REQUESTED-TRANSPORT), signed or not.
fn allocate_request(client: &Client, tid: TransactionId, signed: bool) -> Vec<u8> {
    encode(
        client,
        Method::ALLOCATE,
        tid,
        &|enc| {
            enc.add(&RequestedTransport::UDP).unwrap();
        },
        signed,
    )
}

fn encode(
    client: &Client,
    method: Method,
    tid: TransactionId,
    build: &dyn Fn(&mut MessageEncoder<'_>),
    sign: bool,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(&mut buf, Class::Request, method, tid);
    build(&mut enc);
    if let (true, Some(nonce)) = (sign, &client.nonce) {
        enc.add(&Username(&client.username)).unwrap();
        enc.add(&Realm(REALM)).unwrap();
        enc.add(&Nonce(nonce)).unwrap();
        enc.add_message_integrity(&client.key()).unwrap();
    }
    enc.add_fingerprint().unwrap();
    buf
}

fn send_indication(peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut buf,
        Class::Indication,
        Method::SEND,
        TransactionId::new([0xAA; 12]),
    );
    enc.add(&XorPeerAddress(peer)).unwrap();
    enc.add(&Data(data)).unwrap();
    enc.finish();
    buf
}

fn public_peer() -> SocketAddr {
    "198.51.100.20:7000".parse().unwrap()
}

#[test]
fn binding_requests_are_answered_on_the_turn_port() {
    let mut h = Harness::new(config());
    let client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let bytes = encode(
        &client,
        Method::BINDING,
        TransactionId::new([1; 12]),
        &|_| {},
        false,
    );
    h.send(&client, &bytes);
    let out = h.transmits();
    assert_eq!(out.len(), 1);
    let m = Message::decode(&out[0].contents).unwrap();
    assert_eq!(m.class(), Class::SuccessResponse);
    assert_eq!(
        m.get::<XorMappedAddress>().unwrap(),
        Some(XorMappedAddress(client.address))
    );
    assert_eq!(h.server.metrics().binding_requests, 1);
}

/// The answers the driver has not taken yet are a queue clients fill:
/// past its bound (4,096) more are dropped, and counted in `/metrics`.
#[test]
fn a_full_transmit_queue_drops_and_counts() {
    let mut h = Harness::new(config());
    let client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    for i in 0..5_000u32 {
        let mut tid = [0; 12];
        tid[..4].copy_from_slice(&i.to_be_bytes());
        let bytes = encode(
            &client,
            Method::BINDING,
            TransactionId::new(tid),
            &|_| {},
            false,
        );
        h.send(&client, &bytes);
    }
    assert_eq!(h.server.metrics().binding_requests, 5_000);
    assert_eq!(h.transmits().len(), 4_096);
    assert_eq!(h.server.metrics().dropped_queue_full, 5_000 - 4_096);
    let text = h.server.render_prometheus();
    assert!(
        text.contains("realtimer_turn_dropped_queue_full_total 904"),
        "{text}"
    );
}

#[test]
fn no_credentials_get_401_with_realm_and_nonce() {
    let mut h = Harness::new(config());
    let client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let bytes = allocate_request(&client, TransactionId::new([1; 12]), false);
    h.send(&client, &bytes);
    let out = h.transmits();
    let m = Message::decode(&out[0].contents).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().unwrap().code, 401);
    assert_eq!(m.get::<Realm>().unwrap(), Some(Realm(REALM)));
    assert!(m.get::<Nonce>().unwrap().is_some());
    assert!(!m.has_integrity());
    assert_eq!(h.server.allocation_count(), 0);
    assert!(h.server.poll_event().is_none());
}

/// Unauthenticated answers are small, as anyone can ask for them from a
/// forged source: a 20-byte Binding request gets 32 bytes (coturn: 80), a
/// 28-byte Allocate without credentials gets at most coturn's 92 with a
/// 14-character realm (88 with serve's default "realtimer"), SOFTWARE
/// configured. Authenticated answers still name the software.
#[test]
fn unauthenticated_answers_amplify_little() {
    let mut config = config();
    config.software = Some("realtimer 0.1.0".into());
    let mut h = Harness::new(config);
    let client = Client::new("192.0.2.10:5000", "alice", "wonderland");

    let mut binding = Vec::new();
    MessageEncoder::new(
        &mut binding,
        Class::Request,
        Method::BINDING,
        TransactionId::new([1; 12]),
    )
    .finish();
    h.send(&client, &binding);
    let out = h.transmits();
    assert_eq!((binding.len(), out[0].contents.len()), (20, 32));

    let mut allocate = Vec::new();
    let mut enc = MessageEncoder::new(
        &mut allocate,
        Class::Request,
        Method::ALLOCATE,
        TransactionId::new([2; 12]),
    );
    enc.add(&RequestedTransport::UDP).unwrap();
    enc.finish();
    h.send(&client, &allocate);
    let out = h.transmits();
    let challenge = Message::decode(&out[0].contents).unwrap();
    assert_eq!(challenge.get::<ErrorCode>().unwrap().unwrap().code, 401);
    assert!(challenge.get::<Software>().unwrap().is_none());
    assert_eq!(allocate.len(), 28);
    assert!(
        out[0].contents.len() <= 92,
        "{} bytes",
        out[0].contents.len()
    );

    let mut alice = Client::new("192.0.2.11:5000", "alice", "wonderland");
    let success = h.allocate(&mut alice);
    let success = Message::decode(&success).unwrap();
    assert_eq!(success.class(), Class::SuccessResponse);
    assert_eq!(
        success.get::<Software>().unwrap(),
        Some(Software("realtimer 0.1.0"))
    );
}

#[test]
fn wrong_password_and_unknown_user_get_401() {
    let mut h = Harness::new(config());
    let mut wrong = Client::new("192.0.2.10:5000", "alice", "not-her-password");
    assert_eq!(error_code(&h.allocate(&mut wrong)), Some(401));
    let mut nobody = Client::new("192.0.2.11:5000", "mallory", "x");
    assert_eq!(error_code(&h.allocate(&mut nobody)), Some(401));
    assert_eq!(h.server.allocation_count(), 0);
    let m = h.server.metrics();
    assert_eq!(m.auth_failures, 4);
    // Each client's first 401 is the challenge; then the real reasons.
    assert_eq!(m.auth_failures_for(AuthFailure::Challenge), 2);
    assert_eq!(m.auth_failures_for(AuthFailure::BadIntegrity), 1);
    assert_eq!(m.auth_failures_for(AuthFailure::UnknownUser), 1);
    let text = h.server.render_prometheus();
    assert!(text.contains("realtimer_turn_auth_failures_total{reason=\"bad_integrity\"} 1\n"));
    assert!(text.contains("realtimer_turn_auth_failures_total{reason=\"expired\"} 0\n"));
}

#[test]
fn rest_credentials_work_until_they_expire() {
    let mut h = Harness::new(config());
    let username = format!("{}:carol", UNIX_START + 3600);
    let password = rest_password(b"north", &username);
    let mut fresh = Client::new("192.0.2.12:5000", &username, &password);
    h.allocate_ok(&mut fresh);

    let expired_name = format!("{}:carol", UNIX_START - 1);
    let password = rest_password(b"north", &expired_name);
    let mut expired = Client::new("192.0.2.13:5000", &expired_name, &password);
    assert_eq!(error_code(&h.allocate(&mut expired)), Some(401));

    // The same credential stops working once its time passes.
    let soon = format!("{}:dave", UNIX_START + 30);
    let password = rest_password(b"north", &soon);
    let mut later = Client::new("192.0.2.14:5000", &soon, &password);
    h.advance(Duration::from_secs(31));
    assert_eq!(error_code(&h.allocate(&mut later)), Some(401));
}

#[test]
fn stale_nonce_gets_438_and_a_retry_succeeds() {
    let mut h = Harness::new(config());
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    h.allocate_ok(&mut client);
    let old_nonce = client.nonce.clone().unwrap();
    h.advance(Duration::from_secs(601));
    // The allocation expired with the nonce; a new Allocate first sees 438.
    let tid = h.next_tid();
    let bytes = allocate_request(&client, tid, true);
    h.send(&client, &bytes);
    let out = h.transmits();
    assert_eq!(error_code(&out[0].contents), Some(438));
    let m = Message::decode(&out[0].contents).unwrap();
    let new_nonce = m.get::<Nonce>().unwrap().unwrap().0.to_owned();
    assert_ne!(new_nonce, old_nonce);
    assert_eq!(m.get::<Realm>().unwrap(), Some(Realm(REALM)));
    h.allocate_ok(&mut client);
}

#[test]
fn data_flows_through_send_and_data_indications() {
    let mut h = Harness::new(config());
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let relay = h.allocate_ok(&mut client);
    assert_eq!(relay.ip().to_string(), "203.0.113.1");
    assert!((50000..=50999).contains(&relay.port()));
    let peer = public_peer();

    // Without a permission nothing passes either way.
    h.server.handle_client(
        h.now,
        listener(),
        client.address,
        &send_indication(peer, b"early"),
    );
    h.server.handle_peer(h.now, relay, peer, b"early");
    assert!(h.transmits().is_empty());
    assert_eq!(h.server.metrics().dropped_no_route, 2);

    assert_eq!(h.permit(&mut client, peer), None);
    h.server.handle_client(
        h.now,
        listener(),
        client.address,
        &send_indication(peer, b"hello"),
    );
    let out = h.transmits();
    assert_eq!(
        out,
        vec![Transmit {
            transport: Transport::Udp,
            source: relay,
            destination: peer,
            contents: b"hello".to_vec()
        }]
    );
    // The permission is by IP: another port of the peer may answer.
    let other_port: SocketAddr = "198.51.100.20:7001".parse().unwrap();
    h.server.handle_peer(h.now, relay, other_port, b"world");
    let out = h.transmits();
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].source, out[0].destination),
        (listener(), client.address)
    );
    let m = Message::decode(&out[0].contents).unwrap();
    assert_eq!((m.class(), m.method()), (Class::Indication, Method::DATA));
    assert_eq!(
        m.get::<XorPeerAddress>().unwrap(),
        Some(XorPeerAddress(other_port))
    );
    assert_eq!(m.get::<Data>().unwrap(), Some(Data(b"world")));

    // Permissions last 300 s unless refreshed.
    h.advance(Duration::from_secs(301));
    h.server.handle_peer(h.now, relay, peer, b"late");
    assert!(h.transmits().is_empty());
    let m = h.server.metrics();
    assert_eq!((m.packets_to_peers, m.packets_to_clients), (1, 1));
}

#[test]
fn channels_carry_channel_data_both_ways() {
    let mut h = Harness::new(config());
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let relay = h.allocate_ok(&mut client);
    let peer = public_peer();
    assert_eq!(h.bind_channel(&mut client, 0x4001, peer), None);
    // Refreshing the same binding is fine; rebinding elsewhere is not.
    assert_eq!(h.bind_channel(&mut client, 0x4001, peer), None);
    assert_eq!(h.bind_channel(&mut client, 0x4002, peer), Some(400));
    let elsewhere: SocketAddr = "198.51.100.21:7000".parse().unwrap();
    assert_eq!(h.bind_channel(&mut client, 0x4001, elsewhere), Some(400));
    assert_eq!(h.bind_channel(&mut client, 0x3FFF, elsewhere), Some(400));
    assert_eq!(h.bind_channel(&mut client, 0x8000, elsewhere), Some(400));

    let mut frame = Vec::new();
    ChannelData::encode(0x4001, b"via channel", false, &mut frame);
    h.send(&client, &frame);
    let out = h.transmits();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].source, out[0].destination), (relay, peer));
    assert_eq!(out[0].contents, b"via channel");

    h.server.handle_peer(h.now, relay, peer, b"back");
    let out = h.transmits();
    let cd = ChannelData::decode(&out[0].contents).unwrap();
    assert_eq!((cd.channel, cd.data), (0x4001, &b"back"[..]));

    // Unbound channel, bad length, bad number: dropped, nothing sent.
    let before = h.server.metrics().dropped_malformed;
    for bad in [
        vec![0x40, 0x09, 0, 1, 7],
        vec![0x40, 0x01, 0, 200, 1, 2, 3],
        vec![0x7F, 0xFF, 0],
        vec![0x40],
    ] {
        h.send(&client, &bad);
    }
    assert!(h.transmits().is_empty());
    assert_eq!(h.server.metrics().dropped_malformed, before + 3);
    let text = h.server.render_prometheus();
    for line in [
        "# TYPE realtimer_turn_channels_active gauge\nrealtimer_turn_channels_active 1\n",
        "realtimer_turn_permissions_active 1\n",
        "realtimer_turn_allocations_active 1\n",
        "realtimer_turn_packets_to_peers_total 1\n",
        "realtimer_turn_bytes_to_peers_total 11\n",
        "realtimer_turn_packets_to_clients_total 1\n",
        "realtimer_turn_bytes_to_clients_total 4\n",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

#[test]
fn internal_peers_are_forbidden_by_default_and_allow_listed_on_request() {
    let mut h = Harness::new(config());
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    h.allocate_ok(&mut client);
    for peer in [
        "127.0.0.1:9",
        "10.0.0.1:9",
        "192.168.1.1:9",
        "169.254.1.1:9",
        "0.0.0.0:9",
    ] {
        let peer: SocketAddr = peer.parse().unwrap();
        assert_eq!(h.permit(&mut client, peer), Some(403), "{peer}");
        assert_eq!(
            h.bind_channel(&mut client, 0x4000, peer),
            Some(403),
            "{peer}"
        );
    }
    // An IPv6 peer on an IPv4 relay is a family mismatch.
    assert_eq!(
        h.permit(&mut client, "[2001:db8::1]:9".parse().unwrap()),
        Some(443)
    );

    let mut config = config();
    config
        .peer_policy
        .allow
        .push("127.0.0.1/8".parse().unwrap());
    let mut h = Harness::new(config);
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    h.allocate_ok(&mut client);
    assert_eq!(h.permit(&mut client, "127.0.0.1:9".parse().unwrap()), None);
    assert_eq!(
        h.permit(&mut client, "10.0.0.1:9".parse().unwrap()),
        Some(403)
    );
}

#[test]
fn quotas_answer_486_and_a_flood_from_one_host_leaves_room_for_others() {
    let mut config = config();
    config.limits = Limits {
        total_allocations: 8,
        allocations_per_user: 5,
        allocations_per_ip: 3,
        ..Limits::default()
    };
    let mut h = Harness::new(config);
    // One host floods with many source ports: capped at 3.
    let mut granted = 0;
    for port in 0..50 {
        let mut c = Client::new(
            &format!("192.0.2.66:{}", 10000 + port),
            "alice",
            "wonderland",
        );
        let response = h.allocate(&mut c);
        match error_code(&response) {
            None => granted += 1,
            Some(code) => assert_eq!(code, 486),
        }
    }
    assert_eq!(granted, 3);
    // Same user from other hosts: capped at 5 in all.
    let mut c = Client::new("192.0.2.67:1", "alice", "wonderland");
    h.allocate_ok(&mut c);
    let mut c = Client::new("192.0.2.68:1", "alice", "wonderland");
    h.allocate_ok(&mut c);
    let mut c = Client::new("192.0.2.69:1", "alice", "wonderland");
    assert_eq!(error_code(&h.allocate(&mut c)), Some(486));
    // Another user still gets in, up to the total.
    for i in 0..3 {
        let mut c = Client::new(&format!("192.0.2.{}:1", 100 + i), "bob", "builder");
        h.allocate_ok(&mut c);
    }
    let mut c = Client::new("192.0.2.110:1", "bob", "builder");
    assert_eq!(error_code(&h.allocate(&mut c)), Some(486));
    assert_eq!(h.server.allocation_count(), 8);
    let m = h.server.metrics();
    assert!(m.quota_rejections >= 47);
    assert!(m.quota_rejections_for(Quota::Ip) >= 45);
    assert_eq!(m.quota_rejections_for(Quota::User), 1);
    assert_eq!(m.quota_rejections_for(Quota::Total), 1);
}

#[test]
fn retransmitted_allocate_gets_the_same_answer_and_another_gets_437() {
    let mut h = Harness::new(config());
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let first = h.allocate(&mut client);
    let tid = Message::decode(&first).unwrap().transaction_id();
    let again = allocate_request(&client, tid, true);
    h.send(&client, &again);
    let out = h.transmits();
    assert_eq!(out[0].contents, first);
    assert_eq!(error_code(&h.allocate(&mut client)), Some(437));
    // Another user on the same 5-tuple: 441.
    let mut bob = Client::new("192.0.2.10:5000", "bob", "builder");
    let response = h.request(&mut bob, Method::REFRESH, |_| {});
    assert_eq!(error_code(&response), Some(441));
}

#[test]
fn lifetimes_expire_and_refresh_zero_deletes() {
    let mut h = Harness::new(config());
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let relay = h.allocate_ok(&mut client);
    assert!(h.server.poll_timeout().is_some());
    // A refresh asking for a day gets the maximum, an hour.
    let response = h.request(&mut client, Method::REFRESH, |enc| {
        enc.add(&Lifetime(86_400)).unwrap();
    });
    let m = Message::decode(&response).unwrap();
    assert_eq!(m.get::<Lifetime>().unwrap(), Some(Lifetime(3600)));
    h.advance(Duration::from_secs(3599));
    assert_eq!(h.server.allocation_count(), 1);
    // Keep the nonce fresh, then let the allocation lapse.
    h.advance(Duration::from_secs(2));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.server.poll_event(), Some(Event::CloseRelay { relay }));
    assert_eq!(h.server.poll_timeout(), None);
    // Refresh on nothing: 437.
    let response = h.request(&mut client, Method::REFRESH, |_| {});
    assert_eq!(error_code(&response), Some(437));

    let relay = h.allocate_ok(&mut client);
    let response = h.request(&mut client, Method::REFRESH, |enc| {
        enc.add(&Lifetime(0)).unwrap();
    });
    assert_eq!(error_code(&response), None);
    assert_eq!(h.server.allocation_count(), 0);
    // The relay is free again for the next allocation.
    assert!(!h
        .server
        .render_prometheus()
        .contains("relay_ports_active 1"));
    let _ = relay;
    assert_eq!(h.server.metrics().allocations_closed, 2);
}

#[test]
fn permission_and_channel_limits_answer_508() {
    let mut config = config();
    config.limits.permissions_per_allocation = 2;
    config.limits.channels_per_allocation = 1;
    let mut h = Harness::new(config);
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    h.allocate_ok(&mut client);
    assert_eq!(
        h.permit(&mut client, "198.51.100.1:1".parse().unwrap()),
        None
    );
    assert_eq!(
        h.permit(&mut client, "198.51.100.2:1".parse().unwrap()),
        None
    );
    assert_eq!(
        h.permit(&mut client, "198.51.100.3:1".parse().unwrap()),
        Some(508)
    );
    assert_eq!(
        h.bind_channel(&mut client, 0x4000, "198.51.100.1:1".parse().unwrap()),
        None
    );
    assert_eq!(
        h.bind_channel(&mut client, 0x4001, "198.51.100.2:1".parse().unwrap()),
        Some(508)
    );
}

#[test]
fn bandwidth_cap_drops_the_excess() {
    let mut config = config();
    config.limits.bandwidth_per_allocation = Some(10_000);
    let mut h = Harness::new(config);
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let relay = h.allocate_ok(&mut client);
    let peer = public_peer();
    h.permit(&mut client, peer);
    for _ in 0..20 {
        h.server.handle_peer(h.now, relay, peer, &[0; 1000]);
    }
    assert_eq!(h.transmits().len(), 10);
    assert_eq!(h.server.metrics().dropped_bandwidth, 10);
    // Half a second refills half the bucket.
    h.now += Duration::from_millis(500);
    for _ in 0..20 {
        h.server.handle_peer(h.now, relay, peer, &[0; 1000]);
    }
    assert_eq!(h.transmits().len(), 5);
}

#[test]
fn a_relay_port_that_cannot_be_bound_is_replaced_then_508() {
    let mut h = Harness::new(config());
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    // Fail the first bind: the server picks another port.
    let tid = TransactionId::new([0x77; 12]);
    let _ = h.allocate(&mut Client::new("192.0.2.99:1", "alice", "wonderland"));
    client.nonce = None;
    let bytes = allocate_request(&client, tid, false);
    h.send(&client, &bytes);
    let out = h.transmits();
    client.nonce = Some(
        Message::decode(&out[0].contents)
            .unwrap()
            .get::<Nonce>()
            .unwrap()
            .unwrap()
            .0
            .to_owned(),
    );
    let bytes = allocate_request(&client, tid, true);
    h.send(&client, &bytes);
    let mut failed = Vec::new();
    while let Some(Event::OpenRelay { relay }) = h.server.poll_event() {
        failed.push(relay);
        h.server.relay_opened(h.now, relay, false);
    }
    assert_eq!(failed.len(), 8);
    let out: Vec<_> = std::iter::from_fn(|| h.server.poll_transmit()).collect();
    assert_eq!(error_code(&out[0].contents), Some(508));
    assert_eq!(h.server.allocation_count(), 1);
    // The quota taken while binding is given back.
    h.allocate_ok(&mut Client::new("192.0.2.10:5001", "alice", "wonderland"));
}

#[test]
fn requested_address_family_ipv6() {
    let mut h = Harness::new(config());
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let response = h.request(&mut client, Method::ALLOCATE, |enc| {
        enc.add(&RequestedTransport::UDP).unwrap();
        enc.add(&RequestedAddressFamily(AddressFamily::V6)).unwrap();
    });
    assert_eq!(error_code(&response), Some(440));

    let mut config = config();
    config.relay_ipv6 = Some("2001:db8::1".parse().unwrap());
    let mut h = Harness::new(config);
    let mut client = Client::new("[2001:db8::9]:5000", "alice", "wonderland");
    let response = h.request(&mut client, Method::ALLOCATE, |enc| {
        enc.add(&RequestedTransport::UDP).unwrap();
        enc.add(&RequestedAddressFamily(AddressFamily::V6)).unwrap();
    });
    let m = Message::decode(&response).unwrap();
    let relay = m.get::<XorRelayedAddress>().unwrap().unwrap().0;
    assert_eq!(relay.ip().to_string(), "2001:db8::1");
    assert_eq!(
        h.permit(&mut client, "[2001:db8:1::5]:1".parse().unwrap()),
        None
    );
    assert_eq!(
        h.permit(&mut client, "198.51.100.1:1".parse().unwrap()),
        Some(443)
    );
    assert_eq!(
        h.permit(&mut client, "[fd00::1]:1".parse().unwrap()),
        Some(403)
    );
}

#[test]
fn other_transports_and_missing_attributes_are_refused() {
    let mut h = Harness::new(config());
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let response = h.request(&mut client, Method::ALLOCATE, |enc| {
        enc.add(&RequestedTransport::TCP).unwrap();
    });
    assert_eq!(error_code(&response), Some(442));
    let response = h.request(&mut client, Method::ALLOCATE, |_| {});
    assert_eq!(error_code(&response), Some(400));
    assert_eq!(h.permit(&mut client, public_peer()), Some(437));
    let response = h.request(&mut client, Method::CREATE_PERMISSION, |_| {});
    assert_eq!(error_code(&response), Some(400));
    let response = h.request(&mut client, Method::CONNECT, |_| {});
    assert_eq!(error_code(&response), Some(400));
}

#[test]
fn hostile_input_never_panics_or_answers_garbage_with_state() {
    let mut h = Harness::new(config());
    let mut client = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let relay = h.allocate_ok(&mut client);
    h.permit(&mut client, public_peer());
    let seed_messages = [
        h.request(&mut client, Method::REFRESH, |_| {}),
        send_indication(public_peer(), b"abc"),
        vec![0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4],
    ];
    let mut x: u64 = 0x1234_5678_9ABC_DEF1;
    for round in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut m = seed_messages[round % seed_messages.len()].clone();
        let flips = (x % 4) as usize + 1;
        for i in 0..flips {
            let at = ((x >> (8 * i)) as usize) % m.len();
            m[at] ^= (x >> (3 + i)) as u8;
        }
        if x % 5 == 0 {
            m.truncate((x as usize >> 5) % (m.len() + 1));
        }
        h.send(&client, &m);
        h.server.handle_peer(h.now, relay, public_peer(), &m);
        h.drive();
        while let Some(t) = h.server.poll_transmit() {
            h.server.recycle(t.contents);
        }
    }
    assert!(h.server.allocation_count() <= 1);
}

#[test]
fn streams_carry_turn_with_padded_channel_data_and_closing_frees_the_allocation() {
    let mut h = Harness::new(config());
    // The transport is part of the 5-tuple: the same address over UDP and
    // over TCP holds two allocations.
    let mut udp = Client::new("192.0.2.10:5000", "alice", "wonderland");
    let mut tcp = Client::new("192.0.2.10:5000", "alice", "wonderland").over(Transport::Tcp);
    let udp_relay = h.allocate_ok(&mut udp);
    let relay = h.allocate_ok(&mut tcp);
    assert_ne!(udp_relay, relay);
    assert_eq!(h.server.allocation_count(), 2);
    let peer = public_peer();
    assert_eq!(h.bind_channel(&mut tcp, 0x4001, peer), None);

    // Client to peer: the padding of the stream frame is not relayed.
    let mut frame = Vec::new();
    ChannelData::encode(0x4001, b"via tcp!!", true, &mut frame);
    assert_eq!(frame.len(), 16);
    h.send(&tcp, &frame);
    let out = h.transmits();
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].transport, out[0].source, out[0].destination),
        (Transport::Udp, relay, peer)
    );
    assert_eq!(out[0].contents, b"via tcp!!");

    // Peer to client: on the stream, padded to 4 (RFC 8656 §12.5).
    h.server.handle_peer(h.now, relay, peer, b"abcde");
    let out = h.transmits();
    assert_eq!(
        (out[0].transport, out[0].source, out[0].destination),
        (Transport::Tcp, listener(), tcp.address)
    );
    assert_eq!(out[0].contents.len(), 12);
    let cd = ChannelData::decode(&out[0].contents).unwrap();
    assert_eq!((cd.channel, cd.data), (0x4001, &b"abcde"[..]));
    // Over UDP the same data is not padded.
    assert_eq!(h.bind_channel(&mut udp, 0x4001, peer), None);
    h.server.handle_peer(h.now, udp_relay, peer, b"abcde");
    let out = h.transmits();
    assert_eq!(
        (out[0].transport, out[0].contents.len()),
        (Transport::Udp, 9)
    );

    // Closing the connection ends its allocation only.
    assert!(h
        .server
        .has_allocation(Transport::Tcp, listener(), tcp.address));
    h.server
        .stream_closed(h.now, Transport::Tcp, listener(), tcp.address);
    assert!(!h
        .server
        .has_allocation(Transport::Tcp, listener(), tcp.address));
    assert!(h
        .server
        .has_allocation(Transport::Udp, listener(), udp.address));
    assert_eq!(h.drive(), vec![Event::CloseRelay { relay }]);
    assert_eq!(h.server.allocation_count(), 1);
    h.server.handle_peer(h.now, relay, peer, b"gone");
    assert!(h.transmits().is_empty());
}

#[test]
fn a_stream_closed_while_its_relay_is_being_bound_frees_the_relay_and_quota() {
    let mut config = config();
    config.limits.allocations_per_ip = 1;
    let mut h = Harness::new(config);
    let mut tcp = Client::new("192.0.2.10:5000", "alice", "wonderland").over(Transport::Tcp);
    // Learn a nonce, then allocate without letting the harness bind.
    assert_eq!(h.permit(&mut tcp, public_peer()), Some(437));
    let tid = h.next_tid();
    let allocate = allocate_request(&tcp, tid, true);
    h.send(&tcp, &allocate);
    let Some(Event::OpenRelay { relay }) = h.server.poll_event() else {
        panic!("no relay asked for");
    };
    h.server
        .stream_closed(h.now, Transport::Tcp, listener(), tcp.address);
    h.server.relay_opened(h.now, relay, true);
    assert_eq!(h.server.poll_event(), Some(Event::CloseRelay { relay }));
    assert!(h.server.poll_transmit().is_none());
    assert_eq!(h.server.allocation_count(), 0);
    let mut again = Client::new("192.0.2.10:5001", "alice", "wonderland").over(Transport::Tcp);
    h.allocate_ok(&mut again);
}

#[test]
fn repeated_wrong_passwords_from_one_address_are_refused_unchecked_for_a_while() {
    let mut h = Harness::new(config());
    let mut guesser = Client::new("192.0.2.66:5000", "alice", "guess");
    // The challenge, then ten wrong passwords are checked and answered 401.
    for _ in 0..10 {
        assert_eq!(error_code(&h.allocate(&mut guesser)), Some(401));
    }
    assert_eq!(
        h.server
            .metrics()
            .auth_failures_for(AuthFailure::BadIntegrity),
        10
    );
    // Now even the right password from that address gets 401: it is not
    // checked, so guessing teaches nothing.
    guesser.password = "wonderland".into();
    assert_eq!(error_code(&h.allocate(&mut guesser)), Some(401));
    assert_eq!(
        h.server.metrics().auth_failures_for(AuthFailure::Throttled),
        1
    );
    let text = h.server.render_prometheus();
    assert!(text.contains("realtimer_turn_auth_failures_total{reason=\"throttled\"} 1\n"));
    assert!(text.contains("realtimer_turn_auth_throttle_addresses 1\n"));
    // Another address of the same user is unaffected.
    let mut alice = Client::new("192.0.2.67:5000", "alice", "wonderland");
    h.allocate_ok(&mut alice);
    // Six seconds later one try is checked again, and the right one works.
    h.advance(Duration::from_secs(6));
    h.allocate_ok(&mut guesser);
}
