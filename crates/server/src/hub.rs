//! The hub: the rooms core plus a bounded outbound queue per connected
//! client. Fronts (Socket.IO, WebSocket) turn their clients' requests into
//! calls here and drain their queue of [`Outbound`] events; so a Socket.IO
//! client and a WebSocket client can share a room.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use realtimer_signaling::codelab::LOG_PREFIX;
use realtimer_signaling::{ErrorCode, SignalingEvent};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::cluster::{ClusterJoin, Command, Link, RoomEvent};
use crate::latency::{LatencyHistogram, LatencySummary};
use crate::rooms::{ClientId, JoinOutcome, RoomError, Rooms, RoomsConfig, RoomsStats};

/// Events queued per client before it counts as too slow and is dropped.
pub const OUTBOUND_QUEUE: usize = 256;

/// An event for one client, independent of the front that carries it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outbound {
    /// An event of the room protocol: `/ws` sends it as JSON, the
    /// Socket.IO front as the codelab's event of the same name.
    Event(SignalingEvent<Relayed>),
    /// The codelab's `log` event: text for the client's console.
    Log(Vec<Value>),
    /// The codelab's `log` echo of a message the client sent: `log`
    /// ([`"Message from server:"`, `"Client said: "`, message]). Shares the
    /// relayed message instead of copying it.
    Said(Arc<Value>),
}

/// A relayed message's data, shared by every receiver, and when it
/// reached this process (for [`Hub::relayed`]). Serializes as the data.
#[derive(Debug, Clone, PartialEq)]
pub struct Relayed {
    /// The message as sent.
    pub data: Arc<Value>,
    /// When it reached this process.
    pub received: Instant,
}

impl Serialize for Relayed {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.data.serialize(serializer)
    }
}

impl Outbound {
    fn refused(error: &RoomError) -> Self {
        Outbound::Event(SignalingEvent::Error {
            code: error.code(),
            message: error.to_string(),
        })
    }
}

/// What became of an event handed to a [`Deliver`] front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Queued for the client.
    Sent,
    /// The client's transport buffer is full: it is too slow.
    Full,
    /// The client is gone; its disconnect is on its way to the hub.
    Gone,
}

/// A front that takes events synchronously, under the hub's lock, in order
/// (Socket.IO: the engine socket queues them), so no task and queue of the
/// hub's own stand between a relayed message and the client's transport.
pub(crate) trait Deliver: Send + Sync + std::fmt::Debug {
    /// Hands one event over.
    fn deliver(&self, event: Outbound) -> Delivery;
    /// Closes the client's connection (without calling back into the hub
    /// synchronously: the caller holds its lock).
    fn close(&self);
}

/// How the hub reaches one client.
#[derive(Debug)]
enum Route {
    /// A queue the front drains (the WebSocket front, the Rust client).
    Queue(mpsc::Sender<Outbound>),
    /// Events handed straight to the front; `held` keeps them in order
    /// until the front says the client can take them ([`Hub::go_live`]).
    Direct {
        deliver: Arc<dyn Deliver>,
        held: Option<Vec<Outbound>>,
    },
}

#[derive(Debug)]
struct Handle {
    name: String,
    route: Route,
}

#[derive(Debug)]
struct Inner {
    rooms: Rooms,
    clients: HashMap<ClientId, Handle>,
    next_id: u64,
    /// With `--redis`: the shared rooms; `None` keeps rooms in-process.
    cluster: Option<Link>,
    /// Clients dropped because their outbound queue was full.
    slow_clients_dropped: u64,
    /// Clients whose join the cluster is deciding.
    joining: HashSet<ClientId>,
}

/// How a join turned out, whoever decided it.
enum Decided {
    Created,
    Joined {
        /// Members before this one, in this process.
        local_others: Vec<ClientId>,
        /// Members before this one, anywhere.
        count: usize,
    },
    Full {
        count: usize,
    },
}

/// Shared signaling state of one server process.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
    /// Outside the lock: the fronts record into it from their own tasks.
    latency: Arc<LatencyHistogram>,
}

fn log_line(parts: impl IntoIterator<Item = Value>) -> Outbound {
    let mut line = vec![Value::from(LOG_PREFIX)];
    line.extend(parts);
    Outbound::Log(line)
}

impl Hub {
    /// A hub with these room limits.
    pub fn new(config: RoomsConfig) -> Self {
        Self::build(config, None)
    }

    /// A hub whose rooms the cluster layer shares with other processes.
    pub(crate) fn with_cluster(config: RoomsConfig, link: Link) -> Self {
        Self::build(config, Some(link))
    }

    fn build(config: RoomsConfig, cluster: Option<Link>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                rooms: Rooms::new(config),
                clients: HashMap::new(),
                next_id: 1,
                cluster,
                slow_clients_dropped: 0,
                joining: HashSet::new(),
            })),
            latency: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is our bug; the state is still
        // consistent enough to keep serving other rooms.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The limits in force.
    pub fn config(&self) -> RoomsConfig {
        self.lock().rooms.config().clone()
    }

    /// Counts for metrics.
    pub fn stats(&self) -> RoomsStats {
        let inner = self.lock();
        let counter = |read: fn(&crate::cluster::ClusterCounters) -> &AtomicU64| {
            inner
                .cluster
                .as_ref()
                .map_or(0, |link| read(&link.counters).load(Ordering::Relaxed))
        };
        RoomsStats {
            slow_clients_dropped: inner.slow_clients_dropped,
            cluster_commands_dropped: counter(|c| &c.commands_dropped),
            cluster_events_lost: counter(|c| &c.events_lost),
            cluster_duplicates_dropped: counter(|c| &c.duplicates_dropped),
            ..inner.rooms.stats()
        }
    }

    /// A front handed an [`SignalingEvent::Message`] that reached this process at
    /// `received` to its receiver's transport at `now`.
    pub fn relayed(&self, received: Instant, now: Instant) {
        self.latency.record(now.saturating_duration_since(received));
    }

    /// The relay latency inside this process so far (see [`crate::latency`]).
    pub fn relay_latency(&self) -> LatencySummary {
        self.latency.summary()
    }

    /// Registers a client named `name` (its id as shown to peers; `None`
    /// picks one). The receiver yields its events; when it returns `None`
    /// the hub dropped the client and the front should close it.
    pub fn connect(
        &self,
        name: Option<String>,
        now: Instant,
    ) -> Result<(ClientId, String, mpsc::Receiver<Outbound>), RoomError> {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let (id, name) = self.register(name, now, Route::Queue(tx))?;
        Ok((id, name, rx))
    }

    /// Registers a client whose front takes events synchronously; they are
    /// held (in order, at most [`OUTBOUND_QUEUE`]) until [`Hub::go_live`].
    pub(crate) fn connect_direct(
        &self,
        name: Option<String>,
        now: Instant,
        deliver: Arc<dyn Deliver>,
    ) -> Result<(ClientId, String), RoomError> {
        let route = Route::Direct {
            deliver,
            held: Some(Vec::new()),
        };
        self.register(name, now, route)
    }

    /// The front of a [`Hub::connect_direct`] client can deliver now: the
    /// held events go first.
    pub(crate) fn go_live(&self, id: ClientId) {
        let mut inner = self.lock();
        let held = match inner.clients.get_mut(&id).map(|h| &mut h.route) {
            Some(Route::Direct { held, .. }) => held.take().unwrap_or_default(),
            _ => return,
        };
        for event in held {
            inner.send(id, event);
        }
    }

    fn register(
        &self,
        name: Option<String>,
        now: Instant,
        route: Route,
    ) -> Result<(ClientId, String), RoomError> {
        let mut inner = self.lock();
        let id = ClientId(inner.next_id);
        inner.next_id += 1;
        inner.rooms.connect(id, now)?;
        // Names are unique across processes: each carries its node's.
        let name = name.unwrap_or_else(|| match &inner.cluster {
            Some(link) => format!("c{}-{}", id.0, link.node),
            None => format!("c{}", id.0),
        });
        inner.clients.insert(
            id,
            Handle {
                name: name.clone(),
                route,
            },
        );
        debug!(client = %name, "connected");
        Ok((id, name))
    }

    /// Forgets a client; the others in its room get [`SignalingEvent::Left`].
    pub fn disconnect(&self, id: ClientId) {
        let mut inner = self.lock();
        let name = inner.clients.get(&id).map(|h| h.name.clone());
        if let Some(departure) = inner.rooms.disconnect(id) {
            let name = name.clone().unwrap_or_default();
            inner.departed(departure, name);
        }
        inner.clients.remove(&id);
        inner.joining.remove(&id);
        debug!(client = ?name, "disconnected");
    }

    /// The codelab's `create or join`, with its events in its order:
    /// `created`; or `join` to the room, `joined` to the newcomer, `ready`
    /// to everyone; or `full`. `log` lines go first, as the codelab's.
    pub fn create_or_join(&self, id: ClientId, room: &str, now: Instant) {
        let mut inner = self.lock();
        let Some(name) = inner.clients.get(&id).map(|h| h.name.clone()) else {
            return;
        };
        if let Some(link) = inner.cluster.clone() {
            // The cluster decides capacity; this process checks the rest.
            let checked = if inner.joining.contains(&id) {
                Err(RoomError::AlreadyInRoom {
                    room: room.to_owned(),
                })
            } else {
                inner.rooms.check_join(id, room, now)
            };
            if let Err(e) = checked {
                debug!(client = %name, "create or join refused: {e}");
                inner.send(id, Outbound::refused(&e));
                return;
            }
            let command = Command::Join {
                id,
                name,
                room: room.to_owned(),
            };
            if link.queue(command) {
                inner.joining.insert(id);
            } else {
                let e = RoomError::Unavailable("too many requests queued".into());
                inner.send(id, Outbound::refused(&e));
            }
            return;
        }
        match inner.rooms.join(id, room, now) {
            Err(e) => {
                debug!(client = %name, "create or join refused: {e}");
                inner.send(id, Outbound::refused(&e));
            }
            Ok(outcome) => {
                let decided = match outcome {
                    JoinOutcome::Created => Decided::Created,
                    JoinOutcome::Joined { others } => Decided::Joined {
                        count: others.len(),
                        local_others: others,
                    },
                    JoinOutcome::Full => Decided::Full {
                        count: inner.rooms.members(room).len(),
                    },
                };
                inner.announce_join(id, name, room, decided);
            }
        }
    }

    /// The cluster decided a join: tells the client and the local members,
    /// and returns the events for the other processes; `None` if the client
    /// disconnected meanwhile (the cluster then undoes the join).
    pub(crate) fn finish_join(
        &self,
        id: ClientId,
        room: &str,
        outcome: ClusterJoin,
    ) -> Option<Vec<RoomEvent>> {
        let mut inner = self.lock();
        if !inner.joining.remove(&id) {
            return None;
        }
        let name = inner.clients.get(&id)?.name.clone();
        // Idle time is counted from the decision, as a local join would.
        let now = crate::now();
        let (decided, events) = match outcome {
            ClusterJoin::Created => {
                inner.rooms.enter(id, room, now);
                (Decided::Created, Vec::new())
            }
            ClusterJoin::Joined { others } => {
                let local_others = inner.rooms.enter(id, room, now);
                let decided = Decided::Joined {
                    local_others,
                    count: others,
                };
                (decided, vec![RoomEvent::Join, RoomEvent::Ready])
            }
            ClusterJoin::Full { members } => (Decided::Full { count: members }, Vec::new()),
        };
        inner.announce_join(id, name, room, decided);
        Some(events)
    }

    /// The cluster could not decide a join (Redis unreachable).
    pub(crate) fn join_failed(&self, id: ClientId, why: &str) {
        let mut inner = self.lock();
        if inner.joining.remove(&id) {
            let e = RoomError::Unavailable(format!("shared rooms unreachable: {why}"));
            inner.send(id, Outbound::refused(&e));
        }
    }

    /// Delivers another process's room event to the members here.
    pub(crate) fn deliver(&self, room: &str, event: &RoomEvent) {
        let mut inner = self.lock();
        let members = inner.rooms.members(room).to_vec();
        if members.is_empty() {
            return;
        }
        let outbound = match event {
            RoomEvent::Join => Outbound::Event(SignalingEvent::Join {
                room: room.to_owned(),
            }),
            RoomEvent::Ready => Outbound::Event(SignalingEvent::Ready {
                room: room.to_owned(),
            }),
            RoomEvent::Message { from, data } => Outbound::Event(SignalingEvent::Message {
                from: from.clone(),
                data: Relayed {
                    data: Arc::clone(data),
                    received: crate::now(),
                },
            }),
            RoomEvent::Left { id } => Outbound::Event(SignalingEvent::Left {
                room: room.to_owned(),
                id: id.clone(),
            }),
        };
        for member in members {
            inner.send(member, outbound.clone());
        }
    }

    /// True if `room` has members in this process.
    pub(crate) fn has_local_members(&self, room: &str) -> bool {
        !self.lock().rooms.members(room).is_empty()
    }

    /// Rooms with members in this process.
    pub(crate) fn local_rooms(&self) -> Vec<String> {
        self.lock().rooms.room_names().map(str::to_owned).collect()
    }

    /// Every (room, member name) of this process, for putting them back in
    /// a Redis that lost them.
    pub(crate) fn local_members(&self) -> Vec<(String, String)> {
        let inner = self.lock();
        inner
            .rooms
            .room_names()
            .flat_map(|room| {
                inner.rooms.members(room).iter().filter_map(|id| {
                    let name = inner.clients.get(id)?.name.clone();
                    Some((room.to_owned(), name))
                })
            })
            .collect()
    }

    /// The cluster's sweep removed `name`, a member of a dead process, from
    /// `room`: tells the members here, and queues the news for the other
    /// processes (after the room's events already queued).
    pub(crate) fn member_pruned(&self, room: &str, name: &str) {
        info!(%room, client = %name, "member of a dead server removed");
        let event = RoomEvent::Left {
            id: name.to_owned(),
        };
        self.deliver(room, &event);
        if let Some(link) = self.lock().cluster.clone() {
            link.queue(Command::Publish {
                room: room.to_owned(),
                event,
            });
        }
    }

    /// Refuses a request that could not even be parsed, charging the rate
    /// limit so a flood of garbage is throttled like any other.
    pub fn reject(&self, id: ClientId, error: RoomError, now: Instant) {
        let mut inner = self.lock();
        // The request is refused either way; the charge is what matters.
        let _ = inner.rooms.admit(id, now);
        inner.send(id, Outbound::refused(&error));
    }

    /// Relays `data` (its JSON encoding is `len` bytes) to the other members
    /// of the sender's room. With `echo_log`, the sender gets the codelab's
    /// `Client said:` log line.
    pub fn message(&self, id: ClientId, data: Value, len: usize, echo_log: bool, now: Instant) {
        let mut inner = self.lock();
        let Some(name) = inner.clients.get(&id).map(|h| h.name.clone()) else {
            return;
        };
        match inner.rooms.relay(id, len, now) {
            Err(e) => {
                debug!(client = %name, "message refused: {e}");
                inner.send(id, Outbound::refused(&e));
            }
            Ok(relay) => {
                let data = Arc::new(data);
                if echo_log {
                    inner.send(id, Outbound::Said(Arc::clone(&data)));
                }
                if let Some(link) = &inner.cluster {
                    let event = RoomEvent::Message {
                        from: name.clone(),
                        data: Arc::clone(&data),
                    };
                    let command = Command::Publish {
                        room: relay.room.clone(),
                        event,
                    };
                    if !link.queue(command) {
                        let e = RoomError::Unavailable("too many messages queued".into());
                        inner.send(id, Outbound::refused(&e));
                    }
                }
                let message = Outbound::Event(SignalingEvent::Message {
                    from: name,
                    data: Relayed {
                        data,
                        received: now,
                    },
                });
                for member in relay.to {
                    inner.send(member, message.clone());
                }
            }
        }
    }

    /// Leaves the current room (the codelab's `bye`); the others get
    /// [`SignalingEvent::Left`].
    pub fn leave(&self, id: ClientId, now: Instant) {
        let mut inner = self.lock();
        if let Err(e) = inner.rooms.admit(id, now) {
            inner.send(id, Outbound::refused(&e));
            return;
        }
        let name = inner
            .clients
            .get(&id)
            .map(|h| h.name.clone())
            .unwrap_or_default();
        if let Some(departure) = inner.rooms.leave(id) {
            info!(client = %name, room = %departure.room, "left room");
            inner.departed(departure, name);
        }
    }

    /// Charges a request that needs no room work (e.g. `ipaddr`); false if
    /// the client is over its rate (it was told).
    pub fn admit(&self, id: ClientId, now: Instant) -> bool {
        let mut inner = self.lock();
        match inner.rooms.admit(id, now) {
            Ok(()) => true,
            Err(e) => {
                inner.send(id, Outbound::refused(&e));
                false
            }
        }
    }

    /// Closes rooms idle past the configured timeout; their members are told
    /// with an error event.
    pub fn expire(&self, now: Instant) {
        let mut inner = self.lock();
        for (room, members) in inner.rooms.expire(now) {
            info!(%room, "room expired");
            for member in members {
                if let (Some(link), Some(handle)) = (&inner.cluster, inner.clients.get(&member)) {
                    link.queue(Command::Leave {
                        name: handle.name.clone(),
                        room: room.clone(),
                    });
                }
                inner.send(
                    member,
                    Outbound::Event(SignalingEvent::Error {
                        code: ErrorCode::RoomExpired,
                        message: format!("room {room:?} was idle too long and is closed"),
                    }),
                );
            }
        }
    }
}

impl Inner {
    /// Announces a join's outcome with the codelab's events in its order:
    /// `created`; or `join` to the room, `joined` to the newcomer, `ready`
    /// to everyone; or `full`. `log` lines go first.
    fn announce_join(&mut self, id: ClientId, name: String, room: &str, decided: Decided) {
        let count = match &decided {
            Decided::Created => 0,
            Decided::Joined { count, .. } | Decided::Full { count } => *count,
        };
        self.send(
            id,
            log_line([format!("Received request to create or join room {room}").into()]),
        );
        self.send(
            id,
            log_line([format!("Room {room} now has {count} client(s)").into()]),
        );
        match decided {
            Decided::Created => {
                info!(client = %name, %room, "created room");
                self.send(
                    id,
                    log_line([format!("Client ID {name} created room {room}").into()]),
                );
                self.send(
                    id,
                    Outbound::Event(SignalingEvent::Created {
                        room: room.to_owned(),
                        id: name,
                    }),
                );
            }
            Decided::Joined { local_others, .. } => {
                info!(client = %name, %room, "joined room");
                self.send(
                    id,
                    log_line([format!("Client ID {name} joined room {room}").into()]),
                );
                for other in &local_others {
                    self.send(
                        *other,
                        Outbound::Event(SignalingEvent::Join {
                            room: room.to_owned(),
                        }),
                    );
                }
                self.send(
                    id,
                    Outbound::Event(SignalingEvent::Joined {
                        room: room.to_owned(),
                        id: name,
                    }),
                );
                let ready = Outbound::Event(SignalingEvent::Ready {
                    room: room.to_owned(),
                });
                for member in local_others.iter().chain(std::iter::once(&id)) {
                    self.send(*member, ready.clone());
                }
            }
            Decided::Full { .. } => {
                debug!(client = %name, %room, "room full");
                self.send(
                    id,
                    Outbound::Event(SignalingEvent::Full {
                        room: room.to_owned(),
                    }),
                );
            }
        }
    }

    /// Tells the room (here and, with a cluster, elsewhere) that `name` left.
    fn departed(&mut self, departure: crate::rooms::Departure, name: String) {
        if let Some(link) = &self.cluster {
            link.queue(Command::Leave {
                name: name.clone(),
                room: departure.room.clone(),
            });
        }
        let left = Outbound::Event(SignalingEvent::Left {
            room: departure.room,
            id: name,
        });
        for member in departure.remaining {
            self.send(member, left.clone());
        }
    }

    /// Queues an event; a client whose queue is full is too slow to keep
    /// up and is dropped (its front sees the queue close), never a silent
    /// loss to a client that stays. Only refusals to a client that floods
    /// are left out when its queue is full.
    fn send(&mut self, to: ClientId, event: Outbound) {
        let Some(handle) = self.clients.get_mut(&to) else {
            return;
        };
        // Refusals are advice to a client that is flooding us: when its
        // queue is full it has been told enough.
        let refusal = matches!(event, Outbound::Event(SignalingEvent::Error { .. }));
        let delivery = match &mut handle.route {
            Route::Queue(tx) => match tx.try_send(event) {
                Ok(()) => Delivery::Sent,
                Err(mpsc::error::TrySendError::Full(_)) => Delivery::Full,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.drop_client(to);
                    return;
                }
            },
            Route::Direct {
                held: Some(held), ..
            } => {
                if held.len() < OUTBOUND_QUEUE {
                    held.push(event);
                    Delivery::Sent
                } else {
                    Delivery::Full
                }
            }
            // A client that is gone is forgotten by its disconnect handler.
            Route::Direct {
                deliver,
                held: None,
            } => deliver.deliver(event),
        };
        if delivery == Delivery::Full && !refusal {
            warn!(client = %handle.name, "outbound queue full; dropping the client");
            self.slow_clients_dropped += 1;
            self.drop_client(to);
        }
    }

    /// Forgets a client that cannot be reached; its room is told by the
    /// next departure notice elsewhere (not from here: this runs while
    /// sending to that room).
    fn drop_client(&mut self, id: ClientId) {
        let handle = self.clients.remove(&id);
        self.joining.remove(&id);
        // A queue's front sees its queue close; a direct one is told.
        if let Some(Handle {
            route: Route::Direct { deliver, .. },
            ..
        }) = &handle
        {
            deliver.close();
        }
        if let (Some(departure), Some(handle)) = (self.rooms.disconnect(id), handle) {
            if let Some(link) = &self.cluster {
                link.queue(Command::Leave {
                    name: handle.name,
                    room: departure.room,
                });
            }
        }
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
