//! A fleet of Rust peers for `scripts/soak`: PAIRS pairs in loops, each
//! round joining a fresh room of `realtimer serve` over `/ws`, connecting
//! (odd pairs relay-only through TURN_URLS\[(k / 2) % n\] when TURN_URLS
//! is given, `turns:` ones trusting the PEM CA of TURN_CA_FILE; host
//! candidates otherwise), exchanging reliable data-channel messages for a
//! random 1 to 4 seconds (every message must come back from the echoing
//! side, in order) while the room's creator sends an audio track of 20 ms
//! samples (the other side must receive some), then closing and leaving.
//! Beside them SIO_CLIENTS Socket.IO clients (Engine.IO v4 over WebSocket)
//! come and go: connect, `create or join` a room of their own, wait for
//! `created`, `bye`, close.
//!
//! A round sends 40 to 160 messages, scaled by MESSAGES_PCT (100), and
//! must end within ROUND_TIMEOUT_S (60) seconds, Socket.IO clients too:
//! a round that does not is a failure, printed with what each of its
//! peers did (steps with times since the round began) and their states
//! (connection, ICE, DTLS, selected pair, SCTP, channel counts), and the
//! pair goes on with its next round. The echoing side also ends when the
//! other leaves the room after all its messages (its channel close can be
//! lost with its relay): counted as `closes_by_signaling`.
//!
//! Every REPORT_S seconds it prints one line of counts,
//! `fleet rounds=… failures=… messages=… media_packets=… sio_clients=…
//! closes_by_signaling=…`, and at the end the same with `fleet done`; each
//! failure is printed as `fleet failure: …`. Exits 1 if any round failed.
//! RUST_LOG (e.g. `realtimer_sctp=debug`) logs the stacks to stderr.
//!
//! ```text
//! SERVER=http://127.0.0.1:8080 PAIRS=4 DURATION_S=60 SIO_CLIENTS=2 \
//!   TURN_URLS='turn:127.0.0.1:3478?transport=udp,turn:127.0.0.1:3478?transport=tcp' \
//!   TURN_USER=u TURN_PASSWORD=p cargo run --example soak_fleet --features peer
//! ```
// A load driver owns the clock and reports on stdout.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use realtimer::{
    ChannelData, DataChannelInit, IceTransportPolicy, MediaKind, PeerConnection,
    PeerConnectionConfig, PeerConnectionEvent, PeerConnectionState, Sample, TrackLocal,
};
use realtimer_signaling::{Handled, PeerSession, SessionMessage, SignalingClient, SignalingEvent};

#[derive(Default)]
struct Counts {
    rounds: AtomicU64,
    failures: AtomicU64,
    messages: AtomicU64,
    media_packets: AtomicU64,
    sio_clients: AtomicU64,
    /// Rounds whose echoing side learned the end from signaling (the
    /// peer left) before the channel's close arrived.
    closes_by_signaling: AtomicU64,
}

impl Counts {
    fn line(&self) -> String {
        format!(
            "rounds={} failures={} messages={} media_packets={} sio_clients={} closes_by_signaling={}",
            self.rounds.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            self.messages.load(Ordering::Relaxed),
            self.media_packets.load(Ordering::Relaxed),
            self.sio_clients.load(Ordering::Relaxed),
            self.closes_by_signaling.load(Ordering::Relaxed)
        )
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// One pair's settings.
#[derive(Clone)]
struct Setup {
    ws_url: String,
    turn: Option<(String, String, String)>,
    turn_ca_pem: Option<String>,
}

impl Setup {
    fn config(&self) -> PeerConnectionConfig {
        let mut config = PeerConnectionConfig::default().with_loopback(true);
        config.turn_tls_ca_pem = self.turn_ca_pem.clone();
        match &self.turn {
            Some((url, user, password)) => config
                .with_turn_server(url, user, password)
                .with_ice_transport_policy(IceTransportPolicy::Relay),
            None => config,
        }
    }
}

/// What one peer of a round did, for the report of a round that does
/// not finish in time: its steps (with the time since the round began)
/// and its connection, whose states are read when the round is given up.
struct Trace {
    start: Instant,
    steps: Mutex<Vec<String>>,
    pc: Mutex<Option<PeerConnection>>,
}

impl Trace {
    fn new(start: Instant) -> Arc<Self> {
        Arc::new(Self {
            start,
            steps: Mutex::new(Vec::new()),
            pc: Mutex::new(None),
        })
    }

    fn step(&self, step: impl std::fmt::Display) {
        let at = self.start.elapsed().as_millis();
        self.steps
            .lock()
            .expect("trace lock")
            .push(format!("{at}ms {step}"));
    }

    /// The states of the connection (if one was made), its selected
    /// pair and the steps, on one line; closes the connection, since
    /// the round that owned it is gone.
    async fn report(&self) -> String {
        let pc = self.pc.lock().expect("trace lock").clone();
        let mut line = String::new();
        if let Some(pc) = pc {
            line = format!(
                "connection {:?} ice {:?} signaling {:?}",
                pc.connection_state(),
                pc.ice_connection_state(),
                pc.signaling_state()
            );
            match tokio::time::timeout(Duration::from_secs(2), pc.get_stats()).await {
                Ok(Ok(stats)) => {
                    let t = &stats.transport;
                    line += &format!(" transport ice {} dtls {}", t.ice_state, t.dtls_state);
                    if let Some(pair) = stats.selected_candidate_pair() {
                        let kind = |id: &str| {
                            stats
                                .candidate(id)
                                .map(|c| {
                                    format!(
                                        "{}/{}",
                                        c.candidate_type,
                                        c.relay_protocol.unwrap_or(c.protocol)
                                    )
                                })
                                .unwrap_or_default()
                        };
                        line += &format!(
                            " pair {}->{} packets sent {} received {}",
                            kind(&pair.local_candidate_id),
                            kind(&pair.remote_candidate_id),
                            pair.packets_sent,
                            pair.packets_received
                        );
                    }
                    if let Some(sctp) = &stats.sctp {
                        line += &format!(
                            " sctp unacked {} retransmissions {} cwnd {}",
                            sctp.unack_data, sctp.retransmissions, sctp.congestion_window
                        );
                    }
                    for dc in &stats.data_channels {
                        line += &format!(
                            " channel {} {} sent {} received {}",
                            dc.label, dc.state, dc.messages_sent, dc.messages_received
                        );
                    }
                }
                Ok(Err(e)) => line += &format!(" getStats: {e}"),
                Err(_) => line += " getStats: no answer in 2 s",
            }
            pc.close().await;
        }
        let steps = self.steps.lock().expect("trace lock").join(", ");
        format!("{line} steps [{steps}]")
    }
}

/// Joins `room`, connects with whoever else joins, and runs the data
/// exchange: the room's creator sends `messages` numbered texts and
/// expects each back, in order, while it sends audio samples; the other
/// side echoes the messages and counts the media packets (into
/// `media_packets`), failing if none came.
async fn peer(
    setup: Setup,
    room: String,
    messages: u64,
    counts: Arc<Counts>,
    trace: Arc<Trace>,
) -> Result<u64, String> {
    let (signaling, mut events) = SignalingClient::connect(&setup.ws_url, &room)
        .await
        .map_err(|e| format!("signaling: {e}"))?;
    let initiator = events.created();
    trace.step(if initiator { "created" } else { "joined" });
    let pc = PeerConnection::new(setup.config())
        .await
        .map_err(|e| format!("new: {e}"))?;
    *trace.pc.lock().expect("trace lock") = Some(pc.clone());
    let mut pc_events = pc.events().ok_or("events taken")?;
    let session = PeerSession::new(pc.clone());
    let channel = if initiator {
        Some(
            pc.create_data_channel("soak", DataChannelInit::default())
                .await
                .map_err(|e| format!("channel: {e}"))?,
        )
    } else {
        None
    };
    let audio = TrackLocal::new(MediaKind::Audio, "soak", "audio");
    if initiator {
        pc.add_track(audio.clone())
            .await
            .map_err(|e| format!("add_track: {e}"))?;
    }
    let received = Arc::new(AtomicU64::new(0));
    let result: Result<u64, String> = async {
        let mut echo_channel = None;
        // Signaling until connected (and, for the answerer, the channel).
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(SignalingEvent::Ready { .. }) if initiator => {
                        trace.step("ready");
                        let offer = session.offer().await.map_err(|e| format!("offer: {e}"))?;
                        signaling.send(offer.to_value()).await.map_err(|e| e.to_string())?;
                    }
                    Some(SignalingEvent::Message { data, .. }) => {
                        let Some(message) = SessionMessage::from_value(&data) else { continue };
                        trace.step(format_args!("got {}", data.get("type").and_then(|t| t.as_str()).unwrap_or("candidate")));
                        match session.handle(message).await.map_err(|e| format!("apply: {e}"))? {
                            Handled::Reply(reply) => signaling.send(reply.to_value()).await.map_err(|e| e.to_string())?,
                            Handled::Applied | Handled::Held => {}
                            Handled::Bye => return Err("bye before connecting".into()),
                        }
                    }
                    Some(SignalingEvent::Error { code, message }) => return Err(format!("refused: {code:?} {message}")),
                    Some(other) => trace.step(format_args!("signaling {other:?}")),
                    None => return Err("signaling closed before connecting".into()),
                },
                event = pc_events.recv() => match event {
                    Some(PeerConnectionEvent::IceCandidate(Some(c))) => {
                        trace.step(format_args!("candidate {}", c.candidate.split(' ').nth(7).unwrap_or("?")));
                        signaling.send(PeerSession::candidate(Some(c)).to_value()).await.map_err(|e| e.to_string())?;
                    }
                    Some(PeerConnectionEvent::ConnectionStateChange(PeerConnectionState::Failed)) => {
                        return Err("connection failed".into());
                    }
                    Some(PeerConnectionEvent::ConnectionStateChange(state)) => trace.step(format_args!("{state:?}")),
                    Some(PeerConnectionEvent::IceConnectionStateChange(state)) => trace.step(format_args!("ice {state:?}")),
                    Some(PeerConnectionEvent::DataChannel(dc)) => {
                        trace.step("datachannel");
                        echo_channel = Some(dc);
                    }
                    Some(PeerConnectionEvent::Track(track)) => {
                        let received = received.clone();
                        tokio::spawn(async move {
                            while track.read_rtp().await.is_some() {
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                    Some(_) => {}
                    None => return Err("connection gone".into()),
                },
            }
            if pc.connection_state() == PeerConnectionState::Connected
                && (initiator || echo_channel.is_some())
            {
                break;
            }
        }
        trace.step("connected");
        if let Some(dc) = echo_channel {
            // Echo until the other side closes the channel, or leaves the
            // room: its close can be lost (the relay torn down with its
            // connection), and signaling is how an application learns the
            // call ended then.
            let mut echoed = 0;
            loop {
                tokio::select! {
                    data = dc.recv() => match data {
                        Some(data) => {
                            dc.send(data).await.map_err(|e| format!("echo: {e}"))?;
                            echoed += 1;
                        }
                        None => {
                            trace.step("channel closed");
                            break;
                        }
                    },
                    event = events.next() => match event {
                        Some(SignalingEvent::Left { .. }) | None if echoed == messages => {
                            trace.step("the peer left before its channel close arrived");
                            counts.closes_by_signaling.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Some(SignalingEvent::Left { .. }) | None => {
                            return Err(format!("the peer left after {echoed} of {messages} messages"));
                        }
                        Some(_) => {}
                    },
                    event = pc_events.recv() => match event {
                        Some(PeerConnectionEvent::ConnectionStateChange(state)) => {
                            trace.step(format_args!("{state:?}"));
                            if state == PeerConnectionState::Failed {
                                return Err(format!("connection failed after {echoed} of {messages} messages"));
                            }
                        }
                        Some(_) => {}
                        None => return Err("connection gone".into()),
                    },
                }
            }
            let packets = received.load(Ordering::Relaxed);
            counts.media_packets.fetch_add(packets, Ordering::Relaxed);
            if packets == 0 {
                return Err("no media packet arrived".into());
            }
            return Ok(0);
        }
        // 20 ms of "Opus" (opaque bytes: nothing decodes them) per sample.
        let _sender = AbortOnDrop(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tick.tick().await;
                let sample = Sample::new(vec![0xf8; 80], Duration::from_millis(20));
                if audio.write_sample(sample).await.is_err() {
                    break;
                }
            }
        }));
        let dc = channel.ok_or("no channel")?;
        if !dc.wait_open().await {
            return Err("the channel closed before opening".into());
        }
        trace.step("open");
        let mut sent = 0;
        while sent < messages {
            dc.send_text(format!("message {sent}")).await.map_err(|e| format!("send: {e}"))?;
            match dc.recv().await {
                Some(ChannelData::Text(text)) if text == format!("message {sent}") => sent += 1,
                other => return Err(format!("expected message {sent}, got {other:?}")),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trace.step(format_args!("sent {sent}, closing the channel"));
        dc.close().await;
        Ok(sent)
    }
    .await;
    trace.step("closing");
    pc.close().await;
    trace.step("leaving");
    let _ = signaling.leave().await;
    trace.step("left");
    result
}

/// Aborts its task when dropped, whichever way the round ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One Socket.IO client's life (Engine.IO v4 over WebSocket, the
/// protocol the codelab's pages speak): open, connect the default
/// namespace, `create or join` `room`, wait for `created`, `bye`, close.
async fn socket_io_client(server: &str, room: &str) -> Result<(), String> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        server.trim_end_matches('/').replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| format!("socket.io connect: {e}"))?;
    // Engine.IO packets: 0 open, 2 ping, 3 pong, 4 message; Socket.IO
    // inside a message: 0 connect, 2 event. The server may ping at any
    // point: answered here; `log` events are skipped.
    async fn next_text<S>(ws: &mut S) -> Result<String, String>
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
            + Unpin,
    {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                    ws.send(Message::text("3"))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Some(Ok(Message::Text(text))) if text.starts_with(r#"42["log""#) => {}
                Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
                Some(Ok(_)) => {}
                other => return Err(format!("socket.io: connection ended: {other:?}")),
            }
        }
    }
    for (send, prefix) in [
        (None, "0{"),
        (Some("40".to_owned()), "40"),
        (
            Some(format!(r#"42["create or join","{room}"]"#)),
            r#"42["created""#,
        ),
    ] {
        if let Some(send) = send {
            ws.send(Message::text(send))
                .await
                .map_err(|e| e.to_string())?;
        }
        let text = next_text(&mut ws).await?;
        if !text.starts_with(prefix) {
            return Err(format!("socket.io: expected {prefix}…, got {text}"));
        }
    }
    ws.send(Message::text(r#"42["bye"]"#))
        .await
        .map_err(|e| e.to_string())?;
    ws.close(None).await.map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let server = env("SERVER", "http://127.0.0.1:8080");
    let ws_url = format!(
        "{}/ws",
        server.trim_end_matches('/').replacen("http", "ws", 1)
    );
    let pairs: u64 = env("PAIRS", "4").parse().expect("PAIRS is a number");
    let duration = Duration::from_secs(env("DURATION_S", "60").parse().expect("DURATION_S"));
    let report = Duration::from_secs(env("REPORT_S", "5").parse().expect("REPORT_S"));
    let turn_urls: Vec<String> = env("TURN_URLS", "")
        .split(',')
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    let (user, password) = (env("TURN_USER", "u"), env("TURN_PASSWORD", "p"));
    let turn_ca_pem = std::env::var("TURN_CA_FILE")
        .ok()
        .map(|f| std::fs::read_to_string(f).expect("TURN_CA_FILE is readable"));
    let sio_clients: u64 = env("SIO_CLIENTS", "0")
        .parse()
        .expect("SIO_CLIENTS is a number");
    // A round sends 40 to 160 messages, times MESSAGES_PCT / 100 (100).
    let scale: u64 = env("MESSAGES_PCT", "100").parse().expect("MESSAGES_PCT");
    let round_timeout = Duration::from_secs(
        env("ROUND_TIMEOUT_S", "60")
            .parse()
            .expect("ROUND_TIMEOUT_S"),
    );
    let counts = Arc::new(Counts::default());
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for pair in 0..pairs {
        let turn = (pair % 2 == 1 && !turn_urls.is_empty()).then(|| {
            let url = &turn_urls[(pair as usize / 2) % turn_urls.len()];
            (url.clone(), user.clone(), password.clone())
        });
        let setup = Setup {
            ws_url: ws_url.clone(),
            turn,
            turn_ca_pem: turn_ca_pem.clone(),
        };
        let counts = counts.clone();
        tasks.push(tokio::spawn(async move {
            let mut round = 0u64;
            while Instant::now() < deadline {
                round += 1;
                let room = format!("soak-{pair}-{round}");
                // 1 to 4 seconds of messages at about 40 per second.
                let messages = (40 + (pair * 7919 + round * 104_729) % 120) * scale / 100;
                let start = Instant::now();
                let (first, second) = (Trace::new(start), Trace::new(start));
                let both = async {
                    tokio::join!(
                        peer(setup.clone(), room.clone(), messages, counts.clone(), first.clone()),
                        async {
                            // The second peer joins once the first created the room.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            peer(setup.clone(), room.clone(), messages, counts.clone(), second.clone()).await
                        }
                    )
                };
                let Ok((a, b)) = tokio::time::timeout(round_timeout, both).await else {
                    // The round's futures are dropped (their signaling
                    // connections close); what they were doing is printed.
                    counts.failures.fetch_add(1, Ordering::Relaxed);
                    println!(
                        "fleet failure: pair {pair} round {round}: not done in {} s; first: {}; second: {}",
                        round_timeout.as_secs(),
                        first.report().await,
                        second.report().await
                    );
                    continue;
                };
                match (a, b) {
                    (Ok(x), Ok(y)) => {
                        counts.messages.fetch_add(x + y, Ordering::Relaxed);
                        counts.rounds.fetch_add(1, Ordering::Relaxed);
                    }
                    (a, b) => {
                        counts.failures.fetch_add(1, Ordering::Relaxed);
                        println!(
                            "fleet failure: pair {pair} round {round}: {:?} / {:?}",
                            a.err(),
                            b.err()
                        );
                    }
                }
            }
        }));
    }
    for client in 0..sio_clients {
        let counts = counts.clone();
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut round = 0u64;
            while Instant::now() < deadline {
                round += 1;
                let room = format!("sio-{client}-{round}");
                let life = socket_io_client(&server, &room);
                let result = tokio::time::timeout(round_timeout, life)
                    .await
                    .unwrap_or_else(|_| Err(format!("not done in {} s", round_timeout.as_secs())));
                match result {
                    Ok(()) => counts.sio_clients.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        println!("fleet failure: socket.io client {client} round {round}: {e}");
                        counts.failures.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::time::sleep(Duration::from_millis(
                    200 + (client * 37 + round * 53) % 800,
                ))
                .await;
            }
        }));
    }
    let reporter = {
        let counts = counts.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(report).await;
                println!("fleet {}", counts.line());
            }
        })
    };
    for task in tasks {
        let _ = task.await;
    }
    reporter.abort();
    println!("fleet done {}", counts.line());
    if counts.failures.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}
