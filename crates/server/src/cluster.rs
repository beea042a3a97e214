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
}

impl Link {
    /// Queues a command; false if the queue is full or the task is gone.
    pub(crate) fn queue(&self, command: Command) -> bool {
        match self.tx.try_send(command) {
            Ok(()) => true,
            Err(e) => {
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
    let manager_config = ConnectionManagerConfig::new()
        .set_push_sender(push_tx)
        .set_automatic_resubscription();
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
    let hub = Hub::with_cluster(rooms, Link { node, tx });
    info!(node = %names.node, url = %config.url, "sharing rooms through Redis");
    let tasks = vec![
        tokio::spawn(run_commands(
            hub.clone(),
            manager.clone(),
            names.clone(),
            rx,
        )),
        tokio::spawn(receive_events(hub.clone(), push_rx, names.clone())),
        tokio::spawn(heartbeat(hub.clone(), manager, names)),
    ];
    Ok((hub, tasks))
}

/// Publishes one event of this node's clients.
async fn publish(manager: &mut ConnectionManager, names: &Names, room: &str, event: RoomEvent) {
    let envelope = Envelope {
        origin: names.node.clone(),
        room: room.to_owned(),
        event,
    };
    let payload = serde_json::to_string(&envelope).unwrap_or_default();
    let published: redis::RedisResult<i64> = manager.publish(names.channel(room), payload).await;
    if let Err(e) = published {
        warn!("Redis PUBLISH failed, event lost: {e}");
    }
}

/// Tells everyone, here and elsewhere, that pruned members are gone.
async fn announce_pruned(
    hub: &Hub,
    manager: &mut ConnectionManager,
    names: &Names,
    room: &str,
    pruned: Vec<String>,
) {
    for member in pruned {
        let id = member_name(&member).to_owned();
        info!(%room, client = %id, "member of a dead server removed");
        let event = RoomEvent::Left { id };
        hub.deliver(room, &event);
        publish(manager, names, room, event).await;
    }
}

async fn run_commands(
    hub: Hub,
    mut manager: ConnectionManager,
    names: Names,
    mut rx: mpsc::Receiver<Command>,
) {
    let join = Script::new(JOIN);
    let leave = Script::new(LEAVE);
    let capacity = hub.config().capacity;
    while let Some(command) = rx.recv().await {
        match command {
            Command::Join { id, name, room } => {
                // Hear the room before anyone can see this member in it.
                let subscribed: redis::RedisResult<()> =
                    manager.subscribe(names.channel(&room)).await;
                if let Err(e) = subscribed {
                    warn!(%room, "Redis SUBSCRIBE failed: {e}");
                    hub.join_failed(id, &e.to_string());
                    continue;
                }
                let result: redis::RedisResult<(String, usize, Vec<String>)> = join
                    .key(names.room(&room))
                    .arg(names.member(&name))
                    .arg(capacity)
                    .arg(names.node_prefix())
                    .arg(millis(names.room_ttl))
                    .invoke_async(&mut manager)
                    .await;
                let (outcome, live, pruned) = match result {
                    Ok(decided) => decided,
                    Err(e) => {
                        warn!(%room, "Redis join failed: {e}");
                        hub.join_failed(id, &e.to_string());
                        unsubscribe_if_unused(&hub, &mut manager, &names, &room).await;
                        continue;
                    }
                };
                announce_pruned(&hub, &mut manager, &names, &room, pruned).await;
                let outcome = match outcome.as_str() {
                    "created" => ClusterJoin::Created,
                    "joined" => ClusterJoin::Joined { others: live },
                    _ => ClusterJoin::Full { members: live },
                };
                match hub.finish_join(id, &room, outcome) {
                    Some(events) => {
                        for event in events {
                            publish(&mut manager, &names, &room, event).await;
                        }
                    }
                    None if outcome != (ClusterJoin::Full { members: live }) => {
                        // The client left while its join was in flight.
                        let undone: redis::RedisResult<i64> = leave
                            .key(names.room(&room))
                            .arg(names.member(&name))
                            .invoke_async(&mut manager)
                            .await;
                        if let Err(e) = undone {
                            warn!(%room, "Redis leave failed: {e}");
                        }
                    }
                    None => {}
                }
                unsubscribe_if_unused(&hub, &mut manager, &names, &room).await;
            }
            Command::Leave { name, room } => {
                let done: redis::RedisResult<i64> = leave
                    .key(names.room(&room))
                    .arg(names.member(&name))
                    .invoke_async(&mut manager)
                    .await;
                if let Err(e) = done {
                    warn!(%room, "Redis leave failed: {e}");
                }
                publish(&mut manager, &names, &room, RoomEvent::Left { id: name }).await;
                unsubscribe_if_unused(&hub, &mut manager, &names, &room).await;
            }
            Command::Publish { room, event } => {
                publish(&mut manager, &names, &room, event).await;
            }
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
/// channels) to local members. After a lost connection the client
/// resubscribes; events published meanwhile are lost.
async fn receive_events(hub: Hub, mut pushes: mpsc::UnboundedReceiver<PushInfo>, names: Names) {
    while let Some(push) = pushes.recv().await {
        match push.kind {
            PushKind::Message => {
                let Some(redis::Value::BulkString(payload)) = push.data.get(1) else {
                    debug!("ignoring a room event without a payload");
                    continue;
                };
                match serde_json::from_slice::<Envelope>(payload) {
                    Ok(envelope) if envelope.origin == names.node => {}
                    Ok(envelope) => hub.deliver(&envelope.room, &envelope.event),
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
/// local members.
async fn heartbeat(hub: Hub, mut manager: ConnectionManager, names: Names) {
    let prune = Script::new(PRUNE);
    let beat = names.node_ttl / 3;
    let sweeps_every = 3u32;
    let mut tick = tokio::time::interval(beat.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u32;
    loop {
        tick.tick().await;
        let written: redis::RedisResult<()> = manager
            .set_options(
                names.node_key(),
                1,
                redis::SetOptions::default()
                    .with_expiration(redis::SetExpiry::PX(millis(names.node_ttl))),
            )
            .await;
        if let Err(e) = written {
            warn!("Redis heartbeat failed: {e}");
            continue;
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
                Ok(pruned) => announce_pruned(&hub, &mut manager, &names, &room, pruned).await,
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
            room: "r".into(),
            event: RoomEvent::Message {
                from: "c1".into(),
                data: Arc::new(serde_json::json!({"type": "offer"})),
            },
        };
        let text = serde_json::to_string(&envelope).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.event, envelope.event);
        assert_eq!(member_name("n1\tc1"), "c1");
    }
}
