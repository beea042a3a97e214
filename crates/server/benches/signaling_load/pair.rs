//! One room's two clients, driven by one task: both connect, A creates the
//! room and B joins it once A has `created`, then each sends its messages
//! (paced or in a burst) and the task stamps what arrives. Both ends of a
//! relay live in this task, so latency is measured on one clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::front::Incoming;
use super::payload::{stamp, Role};
use super::{now, Command, Ctx, Phase, Tally};

type Ws = WebSocketStream<TcpStream>;

/// How long one client may take to connect (TCP, WebSocket upgrade,
/// Socket.IO CONNECT).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The generator's WebSocket settings: a small read buffer (tungstenite
/// grows it for a larger frame; its 128 KiB default would cost 1.3 GB at
/// 10,000 clients) and no write batching but what `feed` asks for.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(64 * 1024)
}

/// One client.
struct Member {
    ws: Ws,
    /// Where its messages are written; reused from message to message.
    buf: BytesMut,
    ready: bool,
    /// Messages sent and received in the current relay phase.
    sent: usize,
    received: usize,
    /// When the next paced message is due.
    next_send: Option<Instant>,
}

/// Why the task woke.
enum Wake {
    Frame(
        Role,
        Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ),
    SendDue,
    Command(Option<Command>),
}

/// Runs room `room` until the coordinator says stop (or the pair fails,
/// which counts it as done, unsuccessfully, in every later phase).
pub(crate) async fn run(ctx: Arc<Ctx>, room: usize, mut commands: watch::Receiver<Command>) {
    let mut tally = Tally::default();
    let name = format!("{}-{room}", ctx.cfg.room_prefix);
    let mut members = Vec::with_capacity(2);
    for _ in [Role::A, Role::B] {
        match connect(&ctx).await {
            Ok((ws, took)) => {
                tally.samples_ns.push(nanos(took));
                members.push(Member {
                    ws,
                    buf: BytesMut::new(),
                    ready: false,
                    sent: 0,
                    received: 0,
                    next_send: None,
                });
            }
            Err(e) => {
                tally.failed += 1;
                tally.note(format!("connect: {e}"));
            }
        }
    }
    let Ok([a, b]) = <[Member; 2]>::try_from(members) else {
        ctx.shared.report_from(0, tally);
        return;
    };
    let mut pair = Pair {
        ctx,
        room,
        name,
        members: [a, b],
        phase: 0,
        unreported: 0,
        tally,
        join_started: now(),
    };
    pair.report();
    pair.drive(&mut commands).await;
}

struct Pair {
    ctx: Arc<Ctx>,
    room: usize,
    name: String,
    members: [Member; 2],
    /// The phase under way, or the last one if it is over.
    phase: usize,
    /// The first phase this pair has not reported yet.
    unreported: usize,
    tally: Tally,
    join_started: Instant,
}

/// The pair stopped: failed (already reported) or told to stop.
struct Stopped;

impl Pair {
    async fn drive(&mut self, commands: &mut watch::Receiver<Command>) {
        // A command may have come while this pair was still connecting.
        let mut pending = Some(*commands.borrow_and_update());
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        loop {
            if let Some(command) = pending.take() {
                if self.command(command).await.is_err() {
                    return;
                }
            }
            if let Some(due) = self.next_due() {
                if due != sleep.deadline().into_std() {
                    sleep.as_mut().reset(due.into());
                }
            }
            let sending = self.next_due().is_some();
            let wake = {
                let [a, b] = &mut self.members;
                tokio::select! {
                    frame = a.ws.next() => Wake::Frame(Role::A, frame),
                    frame = b.ws.next() => Wake::Frame(Role::B, frame),
                    () = &mut sleep, if sending => Wake::SendDue,
                    changed = commands.changed() => {
                        Wake::Command(changed.ok().map(|()| *commands.borrow_and_update()))
                    }
                }
            };
            let step = match wake {
                Wake::Frame(role, Some(Ok(Message::Text(text)))) => self.frame(role, &text).await,
                Wake::Frame(_, Some(Ok(Message::Close(_)) | Err(_)) | None) => {
                    self.tally.closed += 1;
                    Err(self.fail("connection closed"))
                }
                Wake::Frame(_, Some(Ok(_))) => Ok(()),
                Wake::SendDue => self.send_due().await,
                Wake::Command(Some(command)) => {
                    pending = Some(command);
                    Ok(())
                }
                Wake::Command(None) => Err(Stopped),
            };
            if step.is_err() {
                return;
            }
        }
    }

    /// Starts phase `index`, or stops (reporting what the phase under way
    /// has so far).
    async fn command(&mut self, command: Command) -> Result<(), Stopped> {
        let index = match command {
            Command::Go(index) if index > self.phase => index,
            Command::Go(_) => return Ok(()),
            Command::Stop => {
                self.report_rest();
                return Err(Stopped);
            }
        };
        self.phase = index;
        match self.ctx.cfg.phases[index] {
            Phase::Connect => Ok(()),
            Phase::Join => {
                self.join_started = now();
                let join = self.ctx.cfg.front.join(&self.name);
                self.send_text(Role::A, join.into()).await
            }
            Phase::Relay {
                msgs,
                interval_ms: 0,
            } => {
                self.reset_counts();
                for k in 0..msgs {
                    for role in [Role::A, Role::B] {
                        let message = self.message(role, k);
                        let ws = &mut self.members[role as usize].ws;
                        ws.feed(message)
                            .await
                            .map_err(|_| self.fail("send failed"))?;
                    }
                }
                for role in [Role::A, Role::B] {
                    let ws = &mut self.members[role as usize].ws;
                    ws.flush().await.map_err(|_| self.fail("send failed"))?;
                }
                self.tally.sent += 2 * msgs as u64;
                for member in &mut self.members {
                    member.sent = msgs;
                }
                Ok(())
            }
            Phase::Relay { interval_ms, .. } => {
                self.reset_counts();
                let start = now();
                let mut rng = rand::rng();
                for member in &mut self.members {
                    let phase = rng.random_range(0..interval_ms * 1000);
                    member.next_send = Some(start + Duration::from_micros(phase));
                }
                Ok(())
            }
        }
    }

    fn reset_counts(&mut self) {
        for member in &mut self.members {
            member.sent = 0;
            member.received = 0;
            member.next_send = None;
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.members.iter().filter_map(|m| m.next_send).min()
    }

    /// Sends every paced message that is due.
    async fn send_due(&mut self) -> Result<(), Stopped> {
        let Phase::Relay { msgs, interval_ms } = self.ctx.cfg.phases[self.phase] else {
            return Ok(());
        };
        let t = now();
        for role in [Role::A, Role::B] {
            let member = &self.members[role as usize];
            if member.next_send.is_none_or(|due| due > t) {
                continue;
            }
            let k = member.sent;
            let message = self.message(role, k);
            self.members[role as usize]
                .ws
                .send(message)
                .await
                .map_err(|_| self.fail("send failed"))?;
            self.tally.sent += 1;
            let member = &mut self.members[role as usize];
            member.sent += 1;
            member.next_send = (member.sent < msgs)
                .then(|| {
                    member
                        .next_send
                        .map(|due| due + Duration::from_millis(interval_ms))
                })
                .flatten();
        }
        Ok(())
    }

    /// Message `k` of `role`, stamped now.
    fn message(&mut self, role: Role, k: usize) -> Message {
        let t = now();
        if self.tally.first_send.is_none() {
            self.tally.first_send = Some(t);
        }
        let t_ns = nanos(t - self.ctx.epoch);
        let member = &mut self.members[role as usize];
        let bytes = self
            .ctx
            .payloads
            .message(&mut member.buf, self.room, role, k, t_ns);
        // The payloads are ASCII.
        Message::Text(Utf8Bytes::try_from(bytes).unwrap_or_default())
    }

    async fn send_text(&mut self, role: Role, text: Utf8Bytes) -> Result<(), Stopped> {
        let ws = &mut self.members[role as usize].ws;
        ws.send(Message::Text(text))
            .await
            .map_err(|_| self.fail("send failed"))
    }

    async fn frame(&mut self, role: Role, text: &str) -> Result<(), Stopped> {
        match self.ctx.cfg.front.classify(text) {
            Incoming::Ping => return self.send_text(role, Utf8Bytes::from_static("3")).await,
            Incoming::Log => self.tally.logs += 1,
            Incoming::Message => self.relayed(role, text),
            Incoming::Created if role == Role::A && self.in_phase(Phase::Join) => {
                let join = self.ctx.cfg.front.join(&self.name);
                return self.send_text(Role::B, join.into()).await;
            }
            Incoming::Joined if role == Role::B => {}
            Incoming::Ready => {
                self.members[role as usize].ready = true;
                if self.members.iter().all(|m| m.ready) && self.in_phase(Phase::Join) {
                    self.tally
                        .samples_ns
                        .push(nanos(self.join_started.elapsed()));
                    self.report();
                }
            }
            Incoming::Closed => {
                self.tally.closed += 1;
                return Err(self.fail("the server closed the session"));
            }
            Incoming::Refused | Incoming::Created | Incoming::Joined => {
                self.tally.errors += 1;
                self.tally.note(format!(
                    "unexpected: {}",
                    text.chars().take(120).collect::<String>()
                ));
                if self.in_phase(Phase::Join) {
                    return Err(self.fail("join failed"));
                }
            }
            Incoming::Open | Incoming::Connected | Incoming::Other => {}
        }
        Ok(())
    }

    fn in_phase(&self, phase: Phase) -> bool {
        std::mem::discriminant(&self.ctx.cfg.phases[self.phase]) == std::mem::discriminant(&phase)
    }

    /// A relayed message reached `role`: from its peer in this room, or
    /// misrouted.
    fn relayed(&mut self, role: Role, text: &str) {
        let at = now();
        let Some(stamp) = stamp(text) else {
            self.tally.errors += 1;
            return;
        };
        if stamp.room != self.room {
            self.tally.foreign += 1;
            return;
        }
        if stamp.from == role {
            self.tally.echoed += 1;
            return;
        }
        let sent = self.ctx.epoch + Duration::from_nanos(stamp.t_ns);
        self.tally
            .samples_ns
            .push(nanos(at.saturating_duration_since(sent)));
        self.tally.received += 1;
        self.tally.last_receive = Some(at);
        self.members[role as usize].received += 1;
        if let Phase::Relay { msgs, .. } = self.ctx.cfg.phases[self.phase] {
            if self.members.iter().all(|m| m.received >= msgs) {
                self.report();
            }
        }
    }

    /// Gives up on this pair: it counts as done (failed) in this and every
    /// later phase.
    fn fail(&mut self, why: &str) -> Stopped {
        self.tally.failed += 1;
        self.tally.note(format!("room {}: {why}", self.room));
        self.report_rest();
        Stopped
    }

    /// Reports the phase under way as done (once).
    fn report(&mut self) {
        if self.unreported == self.phase {
            self.ctx
                .shared
                .report(self.phase, std::mem::take(&mut self.tally));
            self.unreported = self.phase + 1;
        }
    }

    /// Reports every phase not reported yet, with what this one has so far.
    fn report_rest(&mut self) {
        self.ctx
            .shared
            .report_from(self.unreported, std::mem::take(&mut self.tally));
        self.unreported = self.ctx.cfg.phases.len();
    }
}

/// Opens one client: TCP (no Nagle delay: signaling is small messages that
/// must go now), the WebSocket upgrade, and on Socket.IO the CONNECT
/// exchange; returns the socket and how long it took.
async fn connect(ctx: &Ctx) -> Result<(Ws, Duration), String> {
    let _permit = ctx.connecting.acquire().await.map_err(|e| e.to_string())?;
    let started = now();
    let open = async {
        let tcp = TcpStream::connect(&ctx.cfg.addr)
            .await
            .map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let url = format!("ws://{}{}", ctx.cfg.addr, ctx.cfg.front.path());
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(ws_config()))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let text = match ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("closed while connecting".into()),
            };
            match ctx.cfg.front.classify(&text) {
                Incoming::Open => ws
                    .send(Message::text("40"))
                    .await
                    .map_err(|e| e.to_string())?,
                Incoming::Ping => ws
                    .send(Message::text("3"))
                    .await
                    .map_err(|e| e.to_string())?,
                Incoming::Connected => return Ok(ws),
                Incoming::Refused | Incoming::Closed => return Err(format!("refused: {text}")),
                _ => {}
            }
        }
    };
    let ws = tokio::time::timeout(CONNECT_TIMEOUT, open)
        .await
        .map_err(|_| "timed out".to_string())??;
    Ok((ws, started.elapsed()))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
