//! Scale-out: several server processes share rooms through Redis.
//!
//! The rooms core ([`crate::rooms`]) stays the rule book of each process
//! (rate limits, sizes, names, who of *its* clients is in which room); Redis
//! holds what the processes must agree on:
//!
//! - `PREFIX:room:NAME`, a list of the room's members (`NODE\tNAME`) in join
//!   order. Joins and leaves are Lua scripts, so a room's capacity holds
//!   across processes.
//! - `PREFIX:node:NODE`, one key per live process, written every third of
//!   the node TTL with that expiry. A process that crashes stops writing; its
//!   key expires, and its members are pruned from their rooms by the next
//!   join there, or by the periodic sweep of a live process with members in
//!   the room (their peers get `left`). So a crash frees its slots within
//!   about one TTL.
//! - `PREFIX:events:NAME`, a pub/sub channel per room: each process
//!   publishes the room events of its own clients (`join`, `ready`,
//!   `message`, `left`) there, and delivers the others' events to its local
//!   members. A process subscribes to a room's channel while it has members
//!   in the room (from just before their join is decided), so it receives
//!   only the traffic of its own rooms: adding processes spreads the relay
//!   work instead of copying all of it to each.
//!
//! One task per process runs the Redis commands in the order the hub queued
//! them, so a client's offer is published before its candidates, and a
//! room's channel is subscribed before the join that needs it is decided
//! (so no event of that room can be published before this process hears
//! it). The connection speaks RESP3 (Redis 6 or later), whose pushes carry
//! the messages of the subscribed channels on the same connection, and the
//! client resubscribes by itself after a reconnect.
//!
//! Losing Redis (a restart without persistence, a network cut) does not
//! stop the rooms of one process: local members still reach each other,
//! and the events for other processes wait in the command queue (bounded;
//! what does not fit is refused and counted). Each event is published by a
//! script that also counts the live processes with members in the room;
//! while fewer of them heard it (one has not resubscribed yet) it is
//! published again, and receivers drop what they already had by its
//! per-process sequence number. After an outage the task first waits one
//! node TTL: by then every live process has rewritten its key and, if
//! Redis lost its data, put its members back in their rooms (the
//! heartbeat sees its own key gone), so the count is right again. A
//! process that cannot reach Redis for `OUTAGE_LIMIT` stops waiting:
//! its events are then dropped (counted) until Redis answers again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Script};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::hub::Hub;
use crate::rooms::{ClientId, RoomsConfig};

/// Where and how to share rooms.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT[/DB]` (or `rediss://`, `redis+unix://`).
    pub url: String,
    /// Prefix of every key and channel, so several deployments can share a
    /// Redis.
    pub prefix: String,
    /// How long a silent process counts as alive; its members lose their
    /// slots after that.
    pub node_ttl: Duration,
}

impl ClusterConfig {
    /// Defaults for `url`: prefix `realtimer`, node TTL 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "realtimer".into(),
            node_ttl: Duration::from_secs(5),
        }
    }
}

/// Why the cluster layer could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The URL is invalid or Redis did not answer.
    #[error("Redis at {url}: {source}")]
    Redis {
        /// The URL as given.
        url: String,
        /// The client's error.
        source: redis::RedisError,
    },
}

/// Commands queued between the hub (synchronous, under its lock) and the
/// Redis task.
const COMMAND_QUEUE: usize = 16 * 1024;

/// How long the Redis task keeps retrying one event or leave while Redis
/// does not answer; past it, events are dropped (and counted) at once
/// until Redis is back, so joins are refused promptly instead of waiting
/// behind a queue that cannot drain.
pub(crate) const OUTAGE_LIMIT: Duration = Duration::from_secs(30);

/// How long a Redis command may take to answer before it counts as
/// failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest wait between two attempts while Redis does not answer.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Origins whose last sequence number a process remembers; more are
/// forgotten at once (a process name is random per start, so only
/// restarts add names).
const ORIGINS_REMEMBERED: usize = 1024;

/// What the cluster layer counts for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ClusterCounters {
    /// Commands refused because the queue to the Redis task was full.
    pub(crate) commands_dropped: AtomicU64,
    /// Events given up after [`OUTAGE_LIMIT`] without Redis, or published
    /// while fewer processes listened than had members after retries.
    pub(crate) events_lost: AtomicU64,
    /// Events received twice (a retry after an unclear failure) and
    /// dropped by their sequence number.
    pub(crate) duplicates_dropped: AtomicU64,
}

/// A room event as carried between processes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "k", rename_all = "kebab-case")]
pub(crate) enum RoomEvent {
    /// Someone (on the origin node) is joining the room.
    Join,
    /// The room is complete.
    Ready,
    /// A message from `from`.
    Message {
        /// Sender's name.
        from: String,
        /// The message.
        data: Arc<Value>,
    },
    /// `id` left the room (or its process died).
    Left {
        /// Who left.
        id: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    /// The node that published it (which delivered it locally already).
    origin: String,
    /// Numbers the origin's events from 1, across rooms (one task publishes
    /// them in order, and Redis keeps a publisher's order per subscriber):
    /// a receiver drops one not above the last it had from that origin.
    /// 0 (absent) is never dropped.
    #[serde(default)]
    seq: u64,
    room: String,
    #[serde(flatten)]
    event: RoomEvent,
}

/// What a join script decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClusterJoin {
    /// First member.
    Created,
    /// Joined `others` members (anywhere).
    Joined {
        /// Members before this one, across all processes.
        others: usize,
    },
    /// At capacity (`members` members).
    Full {
        /// Members in it.
        members: usize,
    },
}

#[derive(Debug)]
pub(crate) enum Command {
    Join {
        id: ClientId,
        name: String,
        room: String,
    },
    Leave {
        name: String,
        room: String,
    },
    Publish {
        room: String,
        event: RoomEvent,
    },
}

/// The hub's side of the cluster: its node name and the command queue.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) node: String,
    tx: mpsc::Sender<Command>,
    pub(crate) counters: Arc<ClusterCounters>,
}

impl Link {
    /// Queues a command; false if the queue is full or the task is gone.
    pub(crate) fn queue(&self, command: Command) -> bool {
        match self.tx.try_send(command) {
            Ok(()) => true,
            Err(e) => {
                self.counters
                    .commands_dropped
                    .fetch_add(1, Ordering::Relaxed);
                warn!("cluster command queue: {e}");
                false
            }
        }
    }
}

/// Prunes members of dead processes, then adds ARGV[1] unless the room is
/// at capacity. Returns {outcome, live members before, pruned members}.
const JOIN: &str = r#"
local members = redis.call('LRANGE', KEYS[1], 0, -1)
local pruned = {}
local live = 0
for _, m in ipairs(members) do
  local node = string.match(m, '^([^\t]*)\t')
  if node == nil or redis.call('EXISTS', ARGV[3] .. node) == 0 then
    redis.call('LREM', KEYS[1], 0, m)
    table.insert(pruned, m)
  else
    live = live + 1
  end
end
if live >= tonumber(ARGV[2]) then
  return {'full', live, pruned}
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if live == 0 then
  return {'created', live, pruned}
end
return {'joined', live, pruned}
"#;

/// Removes ARGV[1] from the room; an empty room is deleted.
const LEAVE: &str = r#"
redis.call('LREM', KEYS[1], 0, ARGV[1])
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Publishes ARGV[2] on channel ARGV[1]; returns {processes that heard it,
/// live processes with members in the room KEYS[1]} (node keys are
/// ARGV[3] .. node).
const PUBLISH: &str = r#"
local members = redis.call('LRANGE', KEYS[1], 0, -1)
local seen = {}
local live = 0
for _, m in ipairs(members) do
  local node = string.match(m, '^([^\t]*)\t')
  if node ~= nil and seen[node] == nil then
    seen[node] = true
    if redis.call('EXISTS', ARGV[3] .. node) == 1 then
      live = live + 1
    end
  end
end
local heard = redis.call('PUBLISH', ARGV[1], ARGV[2])
return {heard, live}
"#;

/// Puts ARGV[1] back in the room KEYS[1] (once), after Redis lost it.
const REJOIN: &str = r#"
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"#;

/// Removes members of dead processes; returns them.
const PRUNE: &str = r#"
local members = redis.call('LRANGE', KEYS[1], 0, -1)
local pruned = {}
for _, m in ipairs(members) do
  local node = string.match(m, '^([^\t]*)\t')
  if node == nil or redis.call('EXISTS', ARGV[1] .. node) == 0 then
    redis.call('LREM', KEYS[1], 0, m)
    table.insert(pruned, m)
  end
end
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
end
return pruned
"#;

/// Keys, channels and scripts of one deployment.
#[derive(Debug, Clone)]
struct Names {
    prefix: String,
    node: String,
    node_ttl: Duration,
    /// Rooms in Redis outlive their idle timeout only by a crash of every
    /// member's process; then they expire after this.
    room_ttl: Duration,
}

impl Names {
    fn room(&self, room: &str) -> String {
        format!("{}:room:{room}", self.prefix)
    }
    fn channel(&self, room: &str) -> String {
        format!("{}:events:{room}", self.prefix)
    }
    fn node_prefix(&self) -> String {
        format!("{}:node:", self.prefix)
    }
    fn node_key(&self) -> String {
        format!("{}:node:{}", self.prefix, self.node)
    }
    fn member(&self, name: &str) -> String {
        format!("{}\t{name}", self.node)
    }
}

/// The member's client name (after the node and a tab).
fn member_name(member: &str) -> &str {
    member.split_once('\t').map_or(member, |(_, name)| name)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Connects to Redis, registers this process, subscribes to the room
/// events, and returns a hub whose rooms are shared, with the tasks that
/// keep it so (abort them to stop).
pub async fn start(
    rooms: RoomsConfig,
    config: ClusterConfig,
) -> Result<(Hub, Vec<JoinHandle<()>>), ClusterError> {
    let redis_error = |source| ClusterError::Redis {
        url: config.url.clone(),
        source,
    };
    let info = config
        .url
        .as_str()
        .into_connection_info()
        .map_err(redis_error)?;
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(resp3)).map_err(redis_error)?;
    // Pushes (the subscribed rooms' messages) go to `receive_events`. The
    // channel is unbounded as Redis's own output buffer is: the hub only
    // queues each event to its members, so it does not fall behind.
    let (push_tx, push_rx) = mpsc::unbounded_channel();
    // redis-rs waits 500 ms for an answer by default: the one-hour soak
    // (load average 20-35 on 2 cores) saw 3 joins of 1,938 refused by
    // that timeout although Redis was fine.
    // Reconnecting: redis-rs doubles from 100 ms and stops after six tries
    // (6.3 s in all), so a Redis back after a few seconds could wait 3 s
    // more to be noticed, and the subscriptions with it (a cross-node
    // message after a Redis restart waited that long under load). Capped
    // at RETRY_MAX, tried for as long as OUTAGE_LIMIT.
    let manager_config = ConnectionManagerConfig::new()
        .set_max_delay(RETRY_MAX)
        .set_number_of_retries((OUTAGE_LIMIT.as_secs() / RETRY_MAX.as_secs().max(1)) as usize + 6)
        .set_push_sender(push_tx)
        .set_automatic_resubscription()
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut manager = ConnectionManager::new_with_config(client, manager_config)
        .await
        .map_err(redis_error)?;
    let node = format!("{:08x}", rand::random::<u32>());
    let names = Names {
        prefix: config.prefix.clone(),
        node: node.clone(),
        node_ttl: config.node_ttl,
        room_ttl: rooms.room_idle_timeout.max(Duration::from_secs(60)),
    };
    let () = manager
        .set_options(
            names.node_key(),
            1,
            redis::SetOptions::default()
                .with_expiration(redis::SetExpiry::PX(millis(names.node_ttl))),
        )
        .await
        .map_err(redis_error)?;

    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let counters = Arc::new(ClusterCounters::default());
    let link = Link {
        node,
        tx,
        counters: counters.clone(),
    };
    let hub = Hub::with_cluster(rooms, link);
    info!(node = %names.node, url = %config.url, "sharing rooms through Redis");
    let tasks = vec![
        tokio::spawn(run_commands(
            hub.clone(),
            Publisher::new(manager.clone(), names.clone(), counters.clone()),
            rx,
        )),
        tokio::spawn(receive_events(
            hub.clone(),
            push_rx,
            names.clone(),
            counters,
        )),
        tokio::spawn(heartbeat(hub.clone(), manager, names)),
    ];
    Ok((hub, tasks))
}

/// The Redis task's connection and what it keeps across commands: the
/// sequence of published events and whether Redis is out.
struct Publisher {
    manager: ConnectionManager,
    names: Names,
    counters: Arc<ClusterCounters>,
    publish: Script,
    leave: Script,
    seq: u64,
    /// Redis has not answered for [`OUTAGE_LIMIT`]: try each command once.
    given_up: bool,
}

/// What one attempt of a retried command found.
enum Attempt {
    Done,
    /// Redis answered, but not every live member's process heard it.
    Unheard,
    Failed(redis::RedisError),
}

impl Publisher {
    fn new(manager: ConnectionManager, names: Names, counters: Arc<ClusterCounters>) -> Self {
        Self {
            manager,
            names,
            counters,
            publish: Script::new(PUBLISH),
            leave: Script::new(LEAVE),
            seq: 0,
            given_up: false,
        }
    }

    /// Runs `attempt` until it is done: while Redis fails, with a backoff
    /// up to [`RETRY_MAX`] for at most [`OUTAGE_LIMIT`], then one node TTL
    /// of grace once it answers again (so every live process is back in
    /// its rooms, see the module doc) and once more; while it answers but
    /// a live process did not hear, for up to two node TTLs. False if it
    /// gave up.
    async fn retry<'a, F>(&'a mut self, what: &str, mut attempt: F) -> bool
    where
        F: for<'b> FnMut(
            &'b mut Publisher,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Attempt> + Send + 'b>,
        >,
    {
        let mut started = tokio::time::Instant::now();
        let mut wait = Duration::from_millis(50);
        let mut outage = false;
        loop {
            match attempt(self).await {
                Attempt::Done if outage => {
                    // Redis is back: let every process come back, and go
                    // again (receivers drop a copy they had).
                    info!("Redis answers again");
                    self.given_up = false;
                    outage = false;
                    tokio::time::sleep(self.names.node_ttl).await;
                    // The grace for processes that have not resubscribed
                    // yet (and a next outage's limit) count from here, not
                    // from before the outage: else an event that waited
                    // out an outage was given up as unheard at once.
                    started = tokio::time::Instant::now();
                    wait = Duration::from_millis(50);
                    continue;
                }
                Attempt::Done => return true,
                Attempt::Unheard if started.elapsed() < self.names.node_ttl * 2 => {}
                Attempt::Unheard => {
                    warn!("{what}: a process with members did not hear it");
                    return false;
                }
                Attempt::Failed(e) if self.given_up || started.elapsed() >= OUTAGE_LIMIT => {
                    if !self.given_up {
                        warn!("Redis unreachable for {OUTAGE_LIMIT:?}; dropping events until it is back");
                    }
                    self.given_up = true;
                    debug!("{what} failed: {e}");
                    return false;
                }
                Attempt::Failed(e) => {
                    if !outage {
                        warn!("{what} failed, retrying until Redis is back: {e}");
                    }
                    outage = true;
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RETRY_MAX);
        }
    }

    /// Publishes one event of this node's clients, until every live
    /// process with members in the room heard it (or gives up, counted).
    async fn publish(&mut self, room: &str, event: RoomEvent) {
        self.seq += 1;
        let envelope = Envelope {
            origin: self.names.node.clone(),
            seq: self.seq,
            room: room.to_owned(),
            event,
        };
        let payload = serde_json::to_string(&envelope).unwrap_or_default();
        let (key, channel) = (self.names.room(room), self.names.channel(room));
        let published = self
            .retry("Redis PUBLISH", |p| {
                let (key, channel, payload) = (key.clone(), channel.clone(), payload.clone());
                Box::pin(async move {
                    let heard: redis::RedisResult<(i64, i64)> = p
                        .publish
                        .key(key)
                        .arg(channel)
                        .arg(payload)
                        .arg(p.names.node_prefix())
                        .invoke_async(&mut p.manager)
                        .await;
                    match heard {
                        Ok((heard, live)) if heard >= live => Attempt::Done,
                        Ok(_) => Attempt::Unheard,
                        Err(e) => Attempt::Failed(e),
                    }
                })
            })
            .await;
        if !published {
            self.counters.events_lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes `name` out of the room's list (retried like an event: a
    /// leave that never lands keeps a slot taken while this process lives).
    async fn leave(&mut self, name: &str, room: &str) {
        let (key, member) = (self.names.room(room), self.names.member(name));
        self.retry("Redis leave", |p| {
            let (key, member) = (key.clone(), member.clone());
            Box::pin(async move {
                let done: redis::RedisResult<i64> = p
                    .leave
                    .key(key)
                    .arg(member)
                    .invoke_async(&mut p.manager)
                    .await;
                match done {
                    Ok(_) => Attempt::Done,
                    Err(e) => Attempt::Failed(e),
                }
            })
        })
        .await;
    }

    /// Tells everyone, here and elsewhere, that pruned members are gone.
    async fn announce_pruned(&mut self, hub: &Hub, room: &str, pruned: Vec<String>) {
        for member in pruned {
            let id = member_name(&member).to_owned();
            info!(%room, client = %id, "member of a dead server removed");
            let event = RoomEvent::Left { id };
            hub.deliver(room, &event);
            self.publish(room, event).await;
        }
    }
}

async fn run_commands(hub: Hub, mut p: Publisher, mut rx: mpsc::Receiver<Command>) {
    let join = Script::new(JOIN);
    let capacity = hub.config().capacity;
    while let Some(command) = rx.recv().await {
        match command {
            Command::Join { id, name, room } => {
                // Hear the room before anyone can see this member in it.
                let subscribed: redis::RedisResult<()> =
                    p.manager.subscribe(p.names.channel(&room)).await;
                if let Err(e) = subscribed {
                    warn!(%room, "Redis SUBSCRIBE failed: {e}");
                    hub.join_failed(id, &e.to_string());
                    continue;
                }
                let result: redis::RedisResult<(String, usize, Vec<String>)> = join
                    .key(p.names.room(&room))
                    .arg(p.names.member(&name))
                    .arg(capacity)
                    .arg(p.names.node_prefix())
                    .arg(millis(p.names.room_ttl))
                    .invoke_async(&mut p.manager)
                    .await;
                let (outcome, live, pruned) = match result {
                    Ok(decided) => decided,
                    Err(e) => {
                        warn!(%room, "Redis join failed: {e}");
                        hub.join_failed(id, &e.to_string());
                        // A timeout may come after the script ran: take the
                        // member out again, or its slot stays taken for as
                        // long as this process lives.
                        p.leave(&name, &room).await;
                        unsubscribe_if_unused(&hub, &mut p.manager, &p.names, &room).await;
                        continue;
                    }
                };
                p.announce_pruned(&hub, &room, pruned).await;
                let outcome = match outcome.as_str() {
                    "created" => ClusterJoin::Created,
                    "joined" => ClusterJoin::Joined { others: live },
                    _ => ClusterJoin::Full { members: live },
                };
                match hub.finish_join(id, &room, outcome) {
                    Some(events) => {
                        for event in events {
                            p.publish(&room, event).await;
                        }
                    }
                    None if outcome != (ClusterJoin::Full { members: live }) => {
                        // The client left while its join was in flight.
                        p.leave(&name, &room).await;
                    }
                    None => {}
                }
                unsubscribe_if_unused(&hub, &mut p.manager, &p.names, &room).await;
            }
            Command::Leave { name, room } => {
                p.leave(&name, &room).await;
                p.publish(&room, RoomEvent::Left { id: name }).await;
                unsubscribe_if_unused(&hub, &mut p.manager, &p.names, &room).await;
            }
            Command::Publish { room, event } => p.publish(&room, event).await,
        }
    }
}

/// Stops hearing a room that has no members in this process any more.
/// Members are only added by this task (after `SUBSCRIBE`), and every
/// removal queues a `Leave` that ends here, so the check is never stale in
/// the unsafe direction.
async fn unsubscribe_if_unused(
    hub: &Hub,
    manager: &mut ConnectionManager,
    names: &Names,
    room: &str,
) {
    if hub.has_local_members(room) {
        return;
    }
    let done: redis::RedisResult<()> = manager.unsubscribe(names.channel(room)).await;
    if let Err(e) = done {
        warn!(%room, "Redis UNSUBSCRIBE failed: {e}");
    }
}

/// Delivers the other nodes' events (pushes of the subscribed rooms'
/// channels) to local members, each once (by its origin's sequence). After
/// a lost connection the client resubscribes; publishers publish again
/// what not every process heard (see the module doc).
async fn receive_events(
    hub: Hub,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    names: Names,
    counters: Arc<ClusterCounters>,
) {
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    while let Some(push) = pushes.recv().await {
        match push.kind {
            PushKind::Message => {
                let Some(redis::Value::BulkString(payload)) = push.data.get(1) else {
                    debug!("ignoring a room event without a payload");
                    continue;
                };
                match serde_json::from_slice::<Envelope>(payload) {
                    Ok(envelope) if envelope.origin == names.node => {}
                    Ok(envelope) => {
                        if envelope.seq != 0 {
                            if last_seq.len() >= ORIGINS_REMEMBERED
                                && !last_seq.contains_key(&envelope.origin)
                            {
                                last_seq.clear();
                            }
                            let last = last_seq.entry(envelope.origin.clone()).or_default();
                            if envelope.seq <= *last {
                                counters.duplicates_dropped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            *last = envelope.seq;
                        }
                        hub.deliver(&envelope.room, &envelope.event)
                    }
                    Err(e) => debug!("ignoring a malformed room event: {e}"),
                }
            }
            PushKind::Disconnection => {
                warn!("lost the Redis connection; room events are lost until it is back")
            }
            _ => {}
        }
    }
}

/// Keeps this node's key alive and prunes dead members from rooms with
/// local members. When the key was gone (Redis restarted without its data,
/// or this process was silent past its TTL), puts its members back in
/// their rooms' lists.
async fn heartbeat(hub: Hub, mut manager: ConnectionManager, names: Names) {
    let prune = Script::new(PRUNE);
    let rejoin = Script::new(REJOIN);
    let beat = names.node_ttl / 3;
    let sweeps_every = 3u32;
    let mut tick = tokio::time::interval(beat.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u32;
    loop {
        tick.tick().await;
        let written: redis::RedisResult<Option<i64>> = manager
            .set_options(
                names.node_key(),
                1,
                redis::SetOptions::default()
                    .get(true)
                    .with_expiration(redis::SetExpiry::PX(millis(names.node_ttl))),
            )
            .await;
        match written {
            Err(e) => {
                warn!("Redis heartbeat failed: {e}");
                continue;
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                let members = hub.local_members();
                info!(
                    members = members.len(),
                    "this process was gone from Redis; putting its members back"
                );
                for (room, name) in members {
                    let done: redis::RedisResult<i64> = rejoin
                        .key(names.room(&room))
                        .arg(names.member(&name))
                        .arg(millis(names.room_ttl))
                        .invoke_async(&mut manager)
                        .await;
                    if let Err(e) = done {
                        warn!(%room, "Redis rejoin failed: {e}");
                    }
                }
            }
        }
        n = n.wrapping_add(1);
        if n % sweeps_every != 0 {
            continue;
        }
        for room in hub.local_rooms() {
            let pruned: redis::RedisResult<Vec<String>> = prune
                .key(names.room(&room))
                .arg(names.node_prefix())
                .invoke_async(&mut manager)
                .await;
            match pruned {
                Ok(pruned) => {
                    for member in pruned {
                        // The Redis task publishes it (in order with the
                        // room's other events).
                        hub.member_pruned(&room, member_name(&member));
                    }
                }
                Err(e) => warn!(%room, "Redis prune failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let envelope = Envelope {
            origin: "n1".into(),
            seq: 7,
            room: "r".into(),
            event: RoomEvent::Message {
                from: "c1".into(),
                data: Arc::new(serde_json::json!({"type": "offer"})),
            },
        };
        let text = serde_json::to_string(&envelope).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.event, envelope.event);
        assert_eq!(back.seq, 7);
        assert_eq!(member_name("n1\tc1"), "c1");
        // An envelope of an older process (no sequence) is never a copy.
        let old: Envelope = serde_json::from_str(&text.replace(r#""seq":7,"#, "")).unwrap();
        assert_eq!(old.seq, 0);
    }
}
