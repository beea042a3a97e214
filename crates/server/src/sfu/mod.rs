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
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_proto::{Certificate, IceCandidateInit, SessionDescription};
use realtimer_sfu::{LimitError, Limits, ParticipantId, Sfu, SfuConfig, SfuError, SfuEvent};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

pub use self::metrics::{SfuMetrics, SfuMetricsSnapshot};
use crate::now;

/// Commands waiting for the forwarding task; past it callers wait.
const COMMAND_QUEUE: usize = 256;

/// Datagrams read and not yet handed to the unit; past it the readers
/// wait (the kernel's buffer then drops, as UDP does).
const DATAGRAM_QUEUE: usize = 4096;

/// Events queued for one participant's signaling; past it they are
/// dropped (and counted in the log): a front that does not read loses
/// its events, never the unit's memory.
pub const PARTICIPANT_EVENTS: usize = 256;

/// Largest datagram read.
const MAX_DATAGRAM: usize = 2048;

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
            let socket = UdpSocket::bind(address)
                .await
                .map_err(|source| SfuStartError::Bind {
                    address: *address,
                    source,
                })?;
            let local = socket.local_addr().map_err(|source| SfuStartError::Bind {
                address: *address,
                source,
            })?;
            sockets.push((local, Arc::new(socket)));
        }
        let certificate = Certificate::generate(wall_clock())
            .map_err(|e| SfuStartError::Certificate(e.to_string()))?;
        let local: Vec<SocketAddr> = sockets.iter().map(|(a, _)| *a).collect();
        let mut config = SfuConfig::new(local.clone(), certificate);
        config.limits = settings.limits;
        // Loopback candidates only when asked for by address (tests, a
        // server for this host alone).
        let loopback = local.iter().any(|a| a.ip().is_loopback());
        config.rtc = config.rtc.with_loopback(loopback);
        config.seed = rand::random();
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let metrics = Arc::new(SfuMetrics::default());
        let (datagram_tx, datagram_rx) = mpsc::channel(DATAGRAM_QUEUE);
        let mut readers = Vec::new();
        for (address, socket) in &sockets {
            readers.push(tokio::spawn(read(
                *address,
                socket.clone(),
                datagram_tx.clone(),
            )));
        }
        let task_metrics = metrics.clone();
        tokio::spawn(async move {
            let unit = Unit {
                sfu: Sfu::new(config),
                sockets,
                metrics: task_metrics,
            };
            run(unit, command_rx, datagram_rx).await;
            for reader in readers {
                reader.abort();
            }
        });
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

struct Datagram {
    source: SocketAddr,
    local: SocketAddr,
    contents: Bytes,
    /// When it was read from the socket.
    received: Instant,
}

async fn read(local: SocketAddr, socket: Arc<UdpSocket>, to: mpsc::Sender<Datagram>) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buffer).await {
            Ok((n, source)) => {
                let datagram = Datagram {
                    source,
                    local,
                    contents: Bytes::copy_from_slice(&buffer[..n]),
                    received: now(),
                };
                if to.send(datagram).await.is_err() {
                    return;
                }
            }
            // ICMP errors of earlier sends (port unreachable) surface here.
            Err(e) => debug!("SFU UDP {local}: {e}"),
        }
    }
}

/// The unit, its sockets and its counters: what the forwarding task owns.
struct Unit {
    sfu: Sfu,
    sockets: Vec<(SocketAddr, Arc<UdpSocket>)>,
    metrics: Arc<SfuMetrics>,
}

impl Unit {
    /// A datagram into the unit, and at once what it made out: each sent
    /// datagram's dwell (from `d` read to sent) is recorded.
    fn receive(&mut self, d: Datagram) {
        self.metrics.received();
        self.sfu
            .handle_receive(now(), d.source, d.local, &d.contents);
        self.transmit(Some(d.received));
    }

    /// Sends what the unit has to send; `since`: when the datagram that
    /// made it was read.
    fn transmit(&mut self, since: Option<Instant>) {
        while let Some(t) = self.sfu.poll_transmit() {
            let Some((_, socket)) = self.sockets.iter().find(|(a, _)| *a == t.source) else {
                continue;
            };
            let sent = match socket.try_send_to(&t.contents, t.destination) {
                Ok(_) => true,
                Err(e) => {
                    debug!("SFU UDP send to {}: {e}", t.destination);
                    false
                }
            };
            let dwell = since.map(|at| now().saturating_duration_since(at));
            self.metrics.sent(dwell, sent);
        }
    }
}

/// The forwarding task: datagrams, commands and timers into the unit;
/// its datagrams out of the sockets, its events to the participants.
async fn run(
    mut unit: Unit,
    mut commands: mpsc::Receiver<Command>,
    mut datagrams: mpsc::Receiver<Datagram>,
) {
    let mut listeners: HashMap<ParticipantId, mpsc::Sender<SfuEvent>> = HashMap::new();
    loop {
        let deadline = unit
            .sfu
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            datagram = datagrams.recv() => {
                let Some(d) = datagram else { return };
                unit.receive(d);
                // Take what else is there before the events.
                for _ in 0..64 {
                    let Ok(d) = datagrams.try_recv() else { break };
                    unit.receive(d);
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { return };
                handle_command(&mut unit.sfu, &mut listeners, command, &unit.metrics);
            }
            () = tokio::time::sleep_until(deadline) => unit.sfu.handle_timeout(now()),
        }
        unit.transmit(None);
        while let Some(event) = unit.sfu.poll_event() {
            dispatch(&mut listeners, &unit.sfu, event, &unit.metrics);
        }
        unit.metrics.update(
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
