//! TCP allocations (RFC 6062) on virtual time: Connect, ConnectionAttempt,
//! ConnectionBind, their timeouts, refusals and limits.

use realtimer_stun::attributes::ConnectionId;

use super::*;

const CONNECTION_BIND_TIMEOUT: Duration = Duration::from_secs(30);

fn tcp_client() -> Client {
    Client::new("192.0.2.10:5000", "alice", "wonderland").over(Transport::Tcp)
}

/// The same client on a new connection from another port (a data
/// connection), keeping the nonce it learned.
fn data_connection(client: &Client, port: u16) -> Client {
    let mut data = Client::new(
        &format!("{}:{port}", client.address.ip()),
        &client.username,
        &client.password,
    )
    .over(client.transport);
    data.nonce = client.nonce.clone();
    data
}

fn success(bytes: &[u8]) -> Message<'_> {
    let m = Message::decode(bytes).unwrap();
    assert_eq!(m.class(), Class::SuccessResponse, "{:?}", error_code(bytes));
    m
}

impl Harness {
    /// A TCP allocation (RFC 6062 §5.1) for `client`: its relayed address.
    fn allocate_tcp(&mut self, client: &mut Client) -> SocketAddr {
        let response = self.request(client, Method::ALLOCATE, |enc| {
            enc.add(&RequestedTransport::TCP).unwrap();
        });
        let m = success(&response);
        m.get::<XorRelayedAddress>().unwrap().unwrap().0
    }

    /// Sends a signed request and returns the events it raised; its answer
    /// is left queued (a Connect is answered once the peer is reached).
    fn send_signed(
        &mut self,
        client: &Client,
        method: Method,
        build: impl Fn(&mut MessageEncoder<'_>),
    ) -> Vec<Event> {
        let tid = self.next_tid();
        let bytes = encode(client, method, tid, &build, true);
        self.send(client, &bytes);
        self.drive()
    }

    /// Sends Connect to `peer`: the CONNECTION-ID of the connection the
    /// server asks its driver to open.
    fn connect_request(&mut self, client: &Client, peer: SocketAddr) -> u32 {
        let events = self.send_signed(client, Method::CONNECT, |enc| {
            enc.add(&XorPeerAddress(peer)).unwrap();
        });
        match events.as_slice() {
            [Event::ConnectPeer {
                connection,
                peer: to,
                ..
            }] if *to == peer => *connection,
            other => panic!("no connection asked for: {other:?} {:?}", self.transmits()),
        }
    }

    /// Connect to `peer` that reaches it: the CONNECTION-ID the client got.
    fn connect_ok(&mut self, client: &Client, peer: SocketAddr) -> u32 {
        let connection = self.connect_request(client, peer);
        self.server.peer_connected(self.now, connection, true);
        let out = self.transmits();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].destination, client.address);
        let m = success(&out[0].contents);
        m.verify_integrity(&client.key()).unwrap();
        assert_eq!(
            m.get::<ConnectionId>().unwrap(),
            Some(ConnectionId(connection))
        );
        connection
    }

    /// ConnectionBind from `data`: the response code (`None` on success)
    /// and the events raised. A nonce of the control connection is taken
    /// for a connection it holds; otherwise the answer is 438 and the
    /// client retries with the new nonce.
    fn connection_bind(&mut self, data: &mut Client, connection: u32) -> (Option<u16>, Vec<Event>) {
        for _ in 0..2 {
            let tid = self.next_tid();
            let bytes = encode(
                data,
                Method::CONNECTION_BIND,
                tid,
                &|enc| {
                    enc.add(&ConnectionId(connection)).unwrap();
                },
                true,
            );
            self.send(data, &bytes);
            let events = self.drive();
            let out: Vec<Transmit> = std::iter::from_fn(|| self.server.poll_transmit()).collect();
            assert_eq!(out.len(), 1, "one answer to ConnectionBind");
            let code = error_code(&out[0].contents);
            if code == Some(438) {
                let m = Message::decode(&out[0].contents).unwrap();
                data.nonce = Some(m.get::<Nonce>().unwrap().unwrap().0.to_owned());
                continue;
            }
            return (code, events);
        }
        panic!("438 twice");
    }

    fn connection_error(&mut self, client: &mut Client, peer: SocketAddr) -> Option<u16> {
        let response = self.request(client, Method::CONNECT, |enc| {
            enc.add(&XorPeerAddress(peer)).unwrap();
        });
        error_code(&response)
    }
}

#[test]
fn tcp_allocations_listen_on_the_relay_and_are_refused_over_udp() {
    let mut h = Harness::new(config());
    let mut udp = Client::new("192.0.2.11:5000", "alice", "wonderland");
    let response = h.request(&mut udp, Method::ALLOCATE, |enc| {
        enc.add(&RequestedTransport::TCP).unwrap();
    });
    assert_eq!(error_code(&response), Some(442));

    let mut tcp = tcp_client();
    assert_eq!(h.permit(&mut tcp, public_peer()), Some(437));
    let tid = h.next_tid();
    let allocate = encode(
        &tcp,
        Method::ALLOCATE,
        tid,
        &|enc| {
            enc.add(&RequestedTransport::TCP).unwrap();
        },
        true,
    );
    h.send(&tcp, &allocate);
    let Some(Event::OpenTcpRelay { relay }) = h.server.poll_event() else {
        panic!("no TCP relay asked for");
    };
    h.server.relay_opened(h.now, relay, true);
    let out = h.transmits();
    assert_eq!(
        success(&out[0].contents)
            .get::<XorRelayedAddress>()
            .unwrap(),
        Some(XorRelayedAddress(relay))
    );
    // No datagrams through a TCP relay: ChannelBind is refused and Send
    // indications are dropped.
    assert_eq!(h.bind_channel(&mut tcp, 0x4000, public_peer()), Some(400));
    h.send(&tcp, &send_indication(public_peer(), b"x"));
    assert!(h.transmits().is_empty());

    let mut off = config();
    off.limits.tcp_connections_per_allocation = 0;
    let mut h = Harness::new(off);
    let mut tcp = tcp_client();
    let response = h.request(&mut tcp, Method::ALLOCATE, |enc| {
        enc.add(&RequestedTransport::TCP).unwrap();
    });
    assert_eq!(error_code(&response), Some(442));
}

#[test]
fn connect_then_connection_bind_pipes_a_new_connection_to_the_peer() {
    let mut h = Harness::new(config());
    let mut control = tcp_client();
    let relay = h.allocate_tcp(&mut control);
    let connection = h.connect_ok(&control, public_peer());
    // RFC 6062 §5.2: one connection per peer address at a time.
    assert_eq!(h.connection_error(&mut control, public_peer()), Some(446));

    let mut data = data_connection(&control, 5001);
    let (code, events) = h.connection_bind(&mut data, connection);
    assert_eq!(code, None);
    assert_eq!(
        events,
        vec![Event::BindConnection {
            connection,
            transport: Transport::Tcp,
            listener: listener(),
            client: data.address,
        }]
    );
    // The data connection is kept open however idle, and a second bind of
    // the same id is refused.
    assert!(h
        .server
        .has_allocation(Transport::Tcp, listener(), data.address));
    let mut again = data_connection(&control, 5002);
    assert_eq!(h.connection_bind(&mut again, connection).0, Some(400));
    let text = h.server.render_prometheus();
    assert!(text.contains("realtimer_turn_tcp_connections_active 1\n"));
    assert!(text.contains("realtimer_turn_tcp_connections_bound_total 1\n"));

    // The data connection closing closes the peer connection.
    h.server
        .stream_closed(h.now, Transport::Tcp, listener(), data.address);
    assert_eq!(h.drive(), vec![Event::ClosePeerConnection { connection }]);
    assert!(!h
        .server
        .has_allocation(Transport::Tcp, listener(), data.address));
    // The peer may be connected to again, and the control connection
    // closing takes every connection and the relay with it.
    let second = h.connect_ok(&control, public_peer());
    h.server
        .stream_closed(h.now, Transport::Tcp, listener(), control.address);
    assert_eq!(
        h.drive(),
        vec![
            Event::ClosePeerConnection { connection: second },
            Event::CloseRelay { relay }
        ]
    );
}

#[test]
fn a_connect_that_fails_or_times_out_gets_447() {
    let mut h = Harness::new(config());
    let mut control = tcp_client();
    h.allocate_tcp(&mut control);
    let refused = h.connect_request(&control, public_peer());
    h.server.peer_connected(h.now, refused, false);
    assert_eq!(error_code(&h.transmits()[0].contents), Some(447));
    assert_eq!(h.drive(), vec![]);

    let peer: SocketAddr = "198.51.100.21:7000".parse().unwrap();
    let slow = h.connect_request(&control, peer);
    h.advance(Duration::from_secs(9));
    assert!(h.transmits().is_empty());
    h.now += Duration::from_secs(1);
    h.server.handle_timeout(h.now);
    let events = h.drive();
    assert_eq!(error_code(&h.transmits()[0].contents), Some(447));
    assert_eq!(
        events,
        vec![Event::ClosePeerConnection { connection: slow }]
    );
    // A connection that comes up after all is closed at once.
    h.server.peer_connected(h.now, slow, true);
    assert_eq!(
        h.drive(),
        vec![Event::ClosePeerConnection { connection: slow }]
    );
    assert!(h.transmits().is_empty());
    assert_eq!(h.server.metrics().tcp_connections_failed, 2);
}

#[test]
fn peer_connections_need_a_permission_and_are_announced_with_connection_attempt() {
    let mut h = Harness::new(config());
    let mut control = tcp_client();
    let relay = h.allocate_tcp(&mut control);
    let peer = public_peer();
    assert_eq!(h.server.handle_peer_connection(h.now, relay, peer), None);
    // Nor on an address that is no TCP relay.
    let elsewhere: SocketAddr = "203.0.113.1:1".parse().unwrap();
    assert_eq!(
        h.server.handle_peer_connection(h.now, elsewhere, peer),
        None
    );

    assert_eq!(h.permit(&mut control, peer), None);
    let connection = h.server.handle_peer_connection(h.now, relay, peer).unwrap();
    let out = h.transmits();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].destination, control.address);
    let m = Message::decode(&out[0].contents).unwrap();
    assert_eq!(
        (m.class(), m.method()),
        (Class::Indication, Method::CONNECTION_ATTEMPT)
    );
    assert_eq!(
        m.get::<XorPeerAddress>().unwrap(),
        Some(XorPeerAddress(peer))
    );
    assert_eq!(
        m.get::<ConnectionId>().unwrap(),
        Some(ConnectionId(connection))
    );

    let mut data = data_connection(&control, 5001);
    let (code, events) = h.connection_bind(&mut data, connection);
    assert_eq!(code, None);
    assert!(matches!(
        events.as_slice(),
        [Event::BindConnection { connection: c, .. }] if *c == connection
    ));
}

#[test]
fn an_unbound_peer_connection_closes_after_30_seconds() {
    let mut h = Harness::new(config());
    let mut control = tcp_client();
    let relay = h.allocate_tcp(&mut control);
    assert_eq!(h.permit(&mut control, public_peer()), None);
    let connection = h
        .server
        .handle_peer_connection(h.now, relay, public_peer())
        .unwrap();
    let _ = h.transmits();
    h.advance(CONNECTION_BIND_TIMEOUT - Duration::from_secs(1));
    assert_eq!(h.drive(), vec![]);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.drive(), vec![Event::ClosePeerConnection { connection }]);
    let mut data = data_connection(&control, 5001);
    assert_eq!(h.connection_bind(&mut data, connection).0, Some(400));
    assert_eq!(h.server.metrics().tcp_bind_timeouts, 1);
}

#[test]
fn connection_bind_is_refused_for_unknown_ids_other_users_and_control_connections() {
    let mut h = Harness::new(config());
    let mut control = tcp_client();
    h.allocate_tcp(&mut control);
    let connection = h.connect_ok(&control, public_peer());

    let mut data = data_connection(&control, 5001);
    assert_eq!(h.connection_bind(&mut data, connection ^ 1).0, Some(400));
    // On the control connection itself, or over UDP.
    assert_eq!(h.connection_bind(&mut control, connection).0, Some(400));
    let mut udp = data_connection(&control, 5002).over(Transport::Udp);
    assert_eq!(h.connection_bind(&mut udp, connection).0, Some(400));
    // Bob cannot take Alice's connection.
    let mut bob = Client::new("192.0.2.10:5003", "bob", "builder").over(Transport::Tcp);
    let tid = h.next_tid();
    h.send(
        &bob,
        &encode(&bob, Method::CONNECTION_BIND, tid, &|_| {}, false),
    );
    let challenge = h.transmits();
    let m = Message::decode(&challenge[0].contents).unwrap();
    bob.nonce = Some(m.get::<Nonce>().unwrap().unwrap().0.to_owned());
    assert_eq!(h.connection_bind(&mut bob, connection).0, Some(441));
    // Still there for Alice.
    assert_eq!(h.connection_bind(&mut data, connection).0, None);

    // Not while the Connect is still under way; a repeated report of the
    // connect changes nothing.
    let pending = h.connect_request(&control, "198.51.100.21:7000".parse().unwrap());
    let mut early = data_connection(&control, 5004);
    assert_eq!(h.connection_bind(&mut early, pending).0, Some(400));
    h.server.peer_connected(h.now, pending, true);
    assert_eq!(h.transmits().len(), 1);
    h.server.peer_connected(h.now, pending, false);
    assert!(h.transmits().is_empty());
    assert_eq!(h.drive(), vec![]);
    let mut late = data_connection(&control, 5005);
    assert_eq!(h.connection_bind(&mut late, pending).0, None);
}

#[test]
fn connect_to_a_refused_peer_gets_403_and_limits_hold() {
    let mut config = config();
    config.limits.tcp_connections_per_allocation = 2;
    let mut h = Harness::new(config);
    let mut control = tcp_client();
    let relay = h.allocate_tcp(&mut control);
    let loopback: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    assert_eq!(h.connection_error(&mut control, loopback), Some(403));
    assert_eq!(h.server.metrics().forbidden_peers, 1);

    let peers: Vec<SocketAddr> = (0..3)
        .map(|i| format!("198.51.100.{}:7000", 30 + i).parse().unwrap())
        .collect();
    h.connect_ok(&control, peers[0]);
    h.connect_ok(&control, peers[1]);
    assert_eq!(h.connection_error(&mut control, peers[2]), Some(508));
    assert_eq!(h.permit(&mut control, peers[2]), None);
    assert_eq!(
        h.server.handle_peer_connection(h.now, relay, peers[2]),
        None
    );
}

#[test]
fn refresh_to_zero_closes_every_peer_connection() {
    let mut h = Harness::new(config());
    let mut control = tcp_client();
    let relay = h.allocate_tcp(&mut control);
    let first = h.connect_ok(&control, public_peer());
    let second = h.connect_ok(&control, "198.51.100.21:7000".parse().unwrap());
    let mut data = data_connection(&control, 5001);
    assert_eq!(h.connection_bind(&mut data, first).0, None);
    let mut events = h.send_signed(&control, Method::REFRESH, |enc| {
        enc.add(&Lifetime(0)).unwrap();
    });
    success(&h.transmits()[0].contents);
    assert_eq!(events.pop(), Some(Event::CloseRelay { relay }));
    events.sort_by_key(|e| match e {
        Event::ClosePeerConnection { connection } => *connection,
        _ => 0,
    });
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(
        events,
        expected
            .into_iter()
            .map(|connection| Event::ClosePeerConnection { connection })
            .collect::<Vec<_>>()
    );
    assert!(!h
        .server
        .has_allocation(Transport::Tcp, listener(), data.address));
    assert!(h
        .server
        .render_prometheus()
        .contains("realtimer_turn_tcp_connections_active 0\n"));
}
