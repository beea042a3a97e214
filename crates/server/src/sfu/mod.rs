//! The selective forwarding unit in the server: one task owns a
//! [`realtimer_sfu::Sfu`] and its UDP sockets (every participant's
//! connection on the same ports) and takes commands from the signaling
//! fronts: WHIP and WHEP ([`whip`]) and the SFU messages of `/ws`.

pub mod metrics;
pub mod placement;
pub mod whip;
pub mod ws;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use realtimer_proto::{Certificate, IceCandidateInit, SessionDescription};
use realtimer_sfu::{LimitError, Limits, ParticipantId, Sfu, SfuConfig, SfuError, SfuEvent};
use realtimer_udp::{BindOptions, Received, SendQueue, Sockets, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

pub use self::metrics::{SfuMetrics, SfuMetricsSnapshot};
use crate::now;

/// Commands waiting for the forwarding task; past it callers wait.
const COMMAND_QUEUE: usize = 256;

/// `recvmmsg` batches the task reads from a socket before it looks at
/// its commands and timers again.
const MAX_READS: usize = 8;

/// Datagrams made (runs, really) that are sent at once, without waiting
/// for the end of the read: one `sendmmsg` call's worth. Fewer would
/// cost more calls; more, latency (at 300k forwards a second, 64 wait
/// at most about 0.2 ms).
const SEND_BATCH: usize = 64;

/// Kernel buffers asked for each socket: a burst must fit while the task
/// is busy (the kernel caps it at `net.core.rmem_max` / `wmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;

/// Events queued for one participant's signaling; past it they are
/// dropped (and counted in the log): a front that does not read loses
/// its events, never the unit's memory.
pub const PARTICIPANT_EVENTS: usize = 256;

/// How the server's forwarding unit runs.
#[derive(Debug, Clone)]
pub struct SfuSettings {
    /// UDP addresses to bind, one socket each; every connection gathers
    /// a host candidate on each (port 0: any free port).
    pub udp: Vec<SocketAddr>,
    /// Rooms' and participants' limits.
    pub limits: Limits,
    /// The bearer token WHIP and WHEP requests must carry
    /// (`Authorization: Bearer TOKEN`, RFC 9725 §4.5); `None`: open.
    pub token: Option<String>,
    /// This node's base URL as clients reach it (`http[s]://HOST[:PORT]`),
    /// where other nodes redirect joins of the rooms it hosts when rooms
    /// are shared through Redis ([`placement`]). `None`: the listening
    /// address, unless that is a wildcard one (then rooms are not placed
    /// across nodes).
    pub public_url: Option<String>,
}

impl Default for SfuSettings {
    /// Loopback only, any port, default limits, no token.
    fn default() -> Self {
        SfuSettings {
            udp: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            limits: Limits::default(),
            token: None,
            public_url: None,
        }
    }
}

/// Every IPv4 address of this host's interfaces (loopback included),
/// any port: where `serve` binds the unit by default.
pub fn interface_addresses() -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.ip().is_ipv4())
        .map(|i| SocketAddr::new(i.ip(), 0))
        .collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        out.push(SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    out
}

/// Why the forwarding unit could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfuStartError {
    /// A UDP address could not be bound.
    #[error("SFU UDP {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The DTLS certificate could not be made.
    #[error("SFU certificate: {0}")]
    Certificate(String),
}

/// Why a command to the forwarding unit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfuCommandError {
    /// The unit refused it.
    #[error(transparent)]
    Sfu(#[from] SfuError),
    /// The unit's task is gone (the server is stopping).
    #[error("the forwarding unit stopped")]
    Stopped,
}

/// What the task is asked to do; each answers on its `reply`.
enum Command {
    Join {
        room: String,
        subscribe: bool,
        /// A viewer that takes no offers (WHEP): [`Sfu::join_viewer`].
        viewer: bool,
        events: mpsc::Sender<SfuEvent>,
        reply: oneshot::Sender<Result<Joined, SfuError>>,
    },
    Offer {
        participant: ParticipantId,
        offer: SessionDescription,
        reply: oneshot::Sender<Result<SessionDescription, SfuError>>,
    },
    Answer {
        participant: ParticipantId,
        answer: SessionDescription,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Candidate {
        participant: ParticipantId,
        candidate: Option<IceCandidateInit>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Mute {
        participant: ParticipantId,
        muted: bool,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Leave {
        participant: ParticipantId,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Rooms {
        reply: oneshot::Sender<Result<Vec<String>, SfuError>>,
    },
}

/// A participant that joined, and who was in its room before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The newcomer.
    pub participant: ParticipantId,
    /// The others in the room, in the order they joined.
    pub others: Vec<ParticipantId>,
}

/// A handle on the server's forwarding unit; clones share it. The task
/// ends when the last handle is dropped.
#[derive(Clone)]
pub struct SfuService {
    commands: mpsc::Sender<Command>,
    token: Option<Arc<str>>,
    local: Arc<[SocketAddr]>,
    metrics: Arc<SfuMetrics>,
}

impl std::fmt::Debug for SfuService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfuService")
            .field("udp", &self.local)
            .finish_non_exhaustive()
    }
}

impl SfuService {
    /// Binds the sockets and starts the task.
    pub async fn start(settings: SfuSettings) -> Result<SfuService, SfuStartError> {
        let mut sockets = Vec::new();
        for address in &settings.udp {
            let bind_error = |source| SfuStartError::Bind {
                address: *address,
                source,
            };
            let socket =
                realtimer_udp::bind(*address, BindOptions::default().with_buffer(SOCKET_BUFFER))
                    .and_then(UdpSocket::from_std)
                    .map_err(bind_error)?;
            let local = socket.local_addr().map_err(bind_error)?;
            let state = UdpSocketState::new((&socket).into()).map_err(bind_error)?;
            sockets.push(UnitSocket {
                local,
                socket,
                state,
            });
        }
        let certificate = Certificate::generate(wall_clock())
            .map_err(|e| SfuStartError::Certificate(e.to_string()))?;
        let local: Vec<SocketAddr> = sockets.iter().map(|s| s.local).collect();
        let mut config = SfuConfig::new(local.clone(), certificate);
        config.limits = settings.limits;
        // Loopback candidates only when asked for by address (tests, a
        // server for this host alone).
        let loopback = local.iter().any(|a| a.ip().is_loopback());
        config.rtc = config.rtc.with_loopback(loopback);
        config.seed = rand::random();
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let metrics = Arc::new(SfuMetrics::default());
        let max_segments = sockets
            .iter()
            .map(|s| s.state.max_gso_segments())
            .min()
            .unwrap_or(1);
        let unit = Unit {
            sfu: Sfu::new(config),
            sockets: UnitSockets(sockets),
            received: Received::new(),
            outgoing: Outgoing {
                queue: SendQueue::new(max_segments),
                made_by: Vec::new(),
                metrics: metrics.clone(),
            },
        };
        tokio::spawn(run(unit, command_rx));
        Ok(SfuService {
            commands,
            token: settings.token.map(Into::into),
            local: local.into(),
            metrics,
        })
    }

    /// The UDP addresses the unit's sockets are bound to.
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local
    }

    /// The forwarding task's counters and its dwell-time histogram.
    pub fn metrics(&self) -> &SfuMetrics {
        &self.metrics
    }

    /// The bearer token WHIP and WHEP need, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command,
    ) -> Result<T, SfuCommandError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| SfuCommandError::Stopped)?;
        Ok(rx.await.map_err(|_| SfuCommandError::Stopped)??)
    }

    /// Joins `room` (receiving the others' tracks if `subscribe`); the
    /// participant's events come on `events`, with those of its room
    /// (who joins and leaves, tracks published and gone).
    pub async fn join(
        &self,
        room: &str,
        events: mpsc::Sender<SfuEvent>,
        subscribe: bool,
    ) -> Result<ParticipantId, SfuCommandError> {
        Ok(self.join_room(room, events, subscribe).await?.participant)
    }

    /// [`SfuService::join`], also saying who is in the room already.
    pub async fn join_room(
        &self,
        room: &str,
        events: mpsc::Sender<SfuEvent>,
        subscribe: bool,
    ) -> Result<Joined, SfuCommandError> {
        let room = room.to_owned();
        self.call(|reply| Command::Join {
            room,
            subscribe,
            viewer: false,
            events,
            reply,
        })
        .await
    }

    /// Joins `room` as a viewer that takes no offers (WHEP): the room's
    /// tracks, now and later, reach it on the transceivers of its own
    /// offer ([`Sfu::join_viewer`]).
    pub async fn join_viewer(
        &self,
        room: &str,
        events: mpsc::Sender<SfuEvent>,
    ) -> Result<ParticipantId, SfuCommandError> {
        let room = room.to_owned();
        let joined: Joined = self
            .call(|reply| Command::Join {
                room,
                subscribe: true,
                viewer: true,
                events,
                reply,
            })
            .await?;
        Ok(joined.participant)
    }

    /// The participant's offer; the answer carries the unit's candidates.
    pub async fn offer(
        &self,
        participant: ParticipantId,
        offer: SessionDescription,
    ) -> Result<SessionDescription, SfuCommandError> {
        self.call(|reply| Command::Offer {
            participant,
            offer,
            reply,
        })
        .await
    }

    /// The participant's answer to an [`SfuEvent::Offer`].
    pub async fn answer(
        &self,
        participant: ParticipantId,
        answer: SessionDescription,
    ) -> Result<(), SfuCommandError> {
        self.call(|reply| Command::Answer {
            participant,
            answer,
            reply,
        })
        .await
    }

    /// A trickled candidate of the participant (`None`: the end).
    pub async fn candidate(
        &self,
        participant: ParticipantId,
        candidate: Option<IceCandidateInit>,
    ) -> Result<(), SfuCommandError> {
        self.call(|reply| Command::Candidate {
            participant,
            candidate,
            reply,
        })
        .await
    }

    /// Holds or releases what the participant publishes.
    pub async fn mute(
        &self,
        participant: ParticipantId,
        muted: bool,
    ) -> Result<(), SfuCommandError> {
        self.call(|reply| Command::Mute {
            participant,
            muted,
            reply,
        })
        .await
    }

    /// The participant leaves.
    pub async fn leave(&self, participant: ParticipantId) -> Result<(), SfuCommandError> {
        self.call(|reply| Command::Leave { participant, reply })
            .await
    }

    /// The names of the rooms with participants on this unit.
    pub async fn rooms(&self) -> Result<Vec<String>, SfuCommandError> {
        self.call(|reply| Command::Rooms { reply }).await
    }
}

/// The certificate's validity starts now (the driver owns the clock).
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// The unit's UDP sockets, by local address: what [`SendQueue::send`]
/// sends from.
struct UnitSockets(Vec<UnitSocket>);

struct UnitSocket {
    local: SocketAddr,
    socket: UdpSocket,
    state: UdpSocketState,
}

impl Sockets for UnitSockets {
    fn udp(&self, local: SocketAddr) -> Option<(BorrowedFd<'_>, &UdpSocketState)> {
        let s = self.0.iter().find(|s| s.local == local)?;
        Some((s.socket.as_fd(), &s.state))
    }
}

impl UnitSockets {
    /// The index of a socket with datagrams to read.
    async fn readable(&self) -> usize {
        std::future::poll_fn(|cx| {
            for (i, s) in self.0.iter().enumerate() {
                // An error (none is expected) is the read's to report.
                if s.socket.poll_recv_ready(cx).is_ready() {
                    return Poll::Ready(i);
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// What the unit made and the sockets did not take yet.
struct Outgoing {
    /// Datagrams, in runs for `sendmmsg` and GSO.
    queue: SendQueue,
    /// For the datagrams queued: when the datagram whose handling made
    /// them arrived, and how many (their dwell is recorded when sent).
    made_by: Vec<(Instant, u64)>,
    metrics: Arc<SfuMetrics>,
}

impl Outgoing {
    /// Queues what the unit has to send; `since`: when the datagram that
    /// made it arrived.
    fn take(&mut self, sfu: &mut Sfu, since: Option<Instant>) {
        let mut made = 0;
        while let Some(t) = sfu.poll_transmit() {
            self.queue.push(t.source, t.destination, &t.contents);
            made += 1;
        }
        match since {
            Some(at) if made > 0 => self.made_by.push((at, made)),
            _ => self.metrics.sent(None, made),
        }
    }

    /// Sends what is queued, recording each datagram's dwell.
    fn send(&mut self, sockets: &UnitSockets) {
        if self.queue.is_empty() {
            return;
        }
        let refused = self.queue.send(sockets);
        let at = now();
        for (since, count) in self.made_by.drain(..) {
            self.metrics
                .sent(Some(at.saturating_duration_since(since)), count);
        }
        self.metrics.refused(refused as u64);
    }
}

/// The unit, its sockets and what goes in and out: what the forwarding
/// task owns.
struct Unit {
    sfu: Sfu,
    sockets: UnitSockets,
    /// What one `recvmmsg` read.
    received: Received,
    outgoing: Outgoing,
}

impl Unit {
    /// Reads socket `i` until it is empty or [`MAX_READS`] batches were
    /// taken (then commands and timers get their turn): each datagram
    /// into the unit, what it made out once [`SEND_BATCH`] datagrams wait
    /// (a `sendmmsg` call's worth), the rest after the reads.
    fn read(&mut self, i: usize) {
        let Unit {
            sfu,
            sockets,
            received,
            outgoing,
        } = self;
        let s = &sockets.0[i];
        for _ in 0..MAX_READS {
            let count = match s
                .socket
                .try_io(Interest::READABLE, || received.read(&s.socket, &s.state))
            {
                Ok(count) => count,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors of earlier sends (port unreachable) surface here.
                Err(e) => {
                    debug!("SFU UDP {}: {e}", s.local);
                    continue;
                }
            };
            for d in received.datagrams(count) {
                outgoing.metrics.received();
                sfu.handle_receive(now(), d.source, s.local, d.contents);
                // From the kernel's receive stamp: the socket's queue is
                // part of what the server adds.
                outgoing.take(sfu, Some(d.arrival));
                if outgoing.queue.len() >= SEND_BATCH {
                    outgoing.send(sockets);
                }
            }
            if count < received.slots() {
                break;
            }
        }
        outgoing.send(sockets);
    }
}

/// The forwarding task: datagrams, commands and timers into the unit;
/// its datagrams out of the sockets, its events to the participants.
async fn run(mut unit: Unit, mut commands: mpsc::Receiver<Command>) {
    let mut listeners: HashMap<ParticipantId, mpsc::Sender<SfuEvent>> = HashMap::new();
    loop {
        let deadline = unit
            .sfu
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            i = unit.sockets.readable() => unit.read(i),
            command = commands.recv() => {
                let Some(command) = command else { return };
                handle_command(&mut unit.sfu, &mut listeners, command, &unit.outgoing.metrics);
            }
            () = tokio::time::sleep_until(deadline) => unit.sfu.handle_timeout(now()),
        }
        unit.outgoing.take(&mut unit.sfu, None);
        unit.outgoing.send(&unit.sockets);
        let metrics = &unit.outgoing.metrics;
        while let Some(event) = unit.sfu.poll_event() {
            dispatch(&mut listeners, &unit.sfu, event, metrics);
        }
        metrics.update(
            unit.sfu.stats(),
            unit.sfu.participant_count(),
            unit.sfu.room_count(),
        );
    }
}

fn handle_command(
    sfu: &mut Sfu,
    listeners: &mut HashMap<ParticipantId, mpsc::Sender<SfuEvent>>,
    command: Command,
    metrics: &SfuMetrics,
) {
    let now = now();
    match command {
        Command::Join {
            room,
            subscribe,
            viewer,
            events,
            reply,
        } => {
            let joined = if viewer {
                sfu.join_viewer(now, &room)
            } else {
                sfu.join_with(now, &room, subscribe)
            };
            let result = joined.map(|participant| {
                listeners.insert(participant, events);
                let others = sfu
                    .room(&room)
                    .iter()
                    .copied()
                    .filter(|p| *p != participant)
                    .collect();
                Joined {
                    participant,
                    others,
                }
            });
            let _ = reply.send(result);
        }
        Command::Offer {
            participant,
            offer,
            reply,
        } => {
            let result = sfu.handle_offer(now, participant, offer).map(|answer| {
                // Host candidates are known at once: put them in the
                // answer, for peers that take no trickled ones (a WHIP
                // server does not trickle, RFC 9725 §4.3.1).
                sfu.handle_timeout(now);
                let mut candidates = Vec::new();
                while let Some(event) = sfu.poll_event() {
                    if let SfuEvent::IceCandidate(p, Some(c)) = &event {
                        if *p == participant {
                            candidates.push(c.candidate.clone());
                        }
                    }
                    dispatch(listeners, sfu, event, metrics);
                }
                with_candidates(answer, &candidates)
            });
            let _ = reply.send(result);
        }
        Command::Answer {
            participant,
            answer,
            reply,
        } => {
            let _ = reply.send(sfu.handle_answer(now, participant, answer));
        }
        Command::Candidate {
            participant,
            candidate,
            reply,
        } => {
            let _ = reply.send(sfu.add_ice_candidate(now, participant, candidate.as_ref()));
        }
        Command::Mute {
            participant,
            muted,
            reply,
        } => {
            let _ = reply.send(sfu.set_muted(participant, muted));
        }
        Command::Leave { participant, reply } => {
            listeners.remove(&participant);
            let _ = reply.send(sfu.leave(now, participant));
        }
        Command::Rooms { reply } => {
            let _ = reply.send(Ok(sfu.rooms().map(str::to_owned).collect()));
        }
    }
}

/// `answer` with `a=candidate` lines and `a=end-of-candidates` in its
/// first media section (the bundle carries them all, RFC 8843 §7.1).
fn with_candidates(answer: SessionDescription, candidates: &[String]) -> SessionDescription {
    if candidates.is_empty() {
        return answer;
    }
    let lines: String = candidates
        .iter()
        .map(|c| format!("a={c}\r\n"))
        .chain(std::iter::once("a=end-of-candidates\r\n".to_owned()))
        .collect();
    let sdp = &answer.sdp;
    // The end of the first media section: the next `m=` line or the end.
    let first = sdp.find("\r\nm=").map(|i| i + 2);
    let insert_at = first
        .and_then(|f| sdp[f..].find("\r\nm=").map(|i| f + i + 2))
        .unwrap_or(sdp.len());
    let mut out = String::with_capacity(sdp.len() + lines.len());
    out.push_str(&sdp[..insert_at]);
    out.push_str(&lines);
    out.push_str(&sdp[insert_at..]);
    SessionDescription::answer(out)
}

/// Gives an event to its participant's signaling front, or a room's
/// event to the front of every participant in the room.
fn dispatch(
    listeners: &mut HashMap<ParticipantId, mpsc::Sender<SfuEvent>>,
    sfu: &Sfu,
    event: SfuEvent,
    metrics: &SfuMetrics,
) {
    let to: Vec<ParticipantId> = match &event {
        SfuEvent::IceCandidate(p, _)
        | SfuEvent::Offer(p, _)
        | SfuEvent::ConnectionState(p, _)
        | SfuEvent::Message(p, _)
        | SfuEvent::Left(p)
        | SfuEvent::LimitExceeded(
            LimitError::TooManyTracks { participant: p, .. }
            | LimitError::BitrateExceeded { participant: p, .. },
        ) => vec![*p],
        SfuEvent::ParticipantJoined { room, .. }
        | SfuEvent::ParticipantLeft { room, .. }
        | SfuEvent::TrackPublished { room, .. }
        | SfuEvent::TrackUnpublished { room, .. }
        | SfuEvent::ActiveSpeaker { room, .. } => sfu.room(room).to_vec(),
        _ => return,
    };
    for p in &to {
        let Some(listener) = listeners.get(p) else {
            continue;
        };
        if listener.try_send(event.clone()).is_err() {
            let dropped = metrics.event_dropped();
            warn!(participant = %p, dropped, "SFU event dropped: its front does not read");
        }
    }
    if let SfuEvent::Left(p) = event {
        listeners.remove(&p);
    }
}
