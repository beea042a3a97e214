//! Rooms of the forwarding unit placed on nodes through Redis, so that the
//! participants of a room meet on one process however they reached the
//! deployment.
//!
//! Media is forwarded inside one process: a room split over two nodes
//! would be two rooms. So each room has a home, kept in Redis:
//!
//! - `PREFIX:sfu:node:NODE` holds the node's public base URL (such as
//!   `https://node1.example.com`), written every third of the node TTL
//!   with that expiry; a node that dies stops writing and its key expires.
//! - `PREFIX:sfu:room:ROOM` holds the node the room lives on. The first
//!   join anywhere places the room on the node it reached (a Lua script,
//!   so two nodes placing a room at once agree); a join on another node
//!   is redirected there. The home refreshes the key while the room has
//!   participants and deletes it once the room is empty.
//! - A room whose home's node key is gone (the node died) is placed again
//!   by the next join, on the node that join reached: participants that
//!   reconnect after a crash meet again within about one node TTL.
//!
//! WHIP and WHEP redirect with `307 Temporary Redirect` to the same path
//! on the home node, which RFC 9725 allows a WHIP endpoint for load
//! balancing (its "Load Balancing and Redirections" section).
//! A `/ws` group call's join (protocol version 2) is answered with an
//! `sfu-redirect` frame naming the home's base URL (`docs/sfu.md`).
//!
//! When Redis cannot be reached, a join stays on the node it reached (and
//! a warning says so): a call that can go ahead on one node is better than
//! no call. Rooms placed that way may live on two nodes until their
//! participants rejoin.

use std::collections::HashSet;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{IntoConnectionInfo, Script};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::SfuService;

/// The longest a join waits for Redis before it stays where it is.
const REDIS_WAIT: Duration = Duration::from_millis(500);

/// Where and as whom this node places rooms.
#[derive(Debug, Clone)]
pub struct PlacementConfig {
    /// `redis://HOST:PORT[/DB]` (or `rediss://`, `redis+unix://`).
    pub redis_url: String,
    /// Prefix of every key (shared with the signaling cluster's).
    pub prefix: String,
    /// This node's base URL as clients reach it (`http[s]://HOST[:PORT]`):
    /// joins on other nodes are redirected there.
    pub public_url: String,
    /// How long a silent node's rooms stay placed on it.
    pub node_ttl: Duration,
}

/// Why placement could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// The URL is invalid or Redis did not answer.
    #[error("SFU room placement, Redis at {url}: {source}")]
    Redis {
        /// The URL as given.
        url: String,
        /// The client's error.
        source: redis::RedisError,
    },
}

/// Where a room lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// On this node: go ahead.
    Here,
    /// On the node at this base URL: send the participant there.
    Elsewhere {
        /// The home node's public base URL.
        url: String,
    },
}

/// Places ARGV[1] (this node) as the home of KEYS[1] unless a live node
/// (one whose `ARGV[3]NODE` key exists) already is; refreshes the room's
/// expiry (ARGV[2] ms) when the home is this node. Returns the home and,
/// when it is another node, its URL.
const PLACE: &str = r#"
local home = redis.call('GET', KEYS[1])
if home and home ~= ARGV[1] then
  local url = redis.call('GET', ARGV[3] .. home)
  if url then
    return {home, url}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {ARGV[1]}
"#;

/// Deletes KEYS[1] if this node (ARGV[1]) is its home.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
"#;

/// A handle on this node's room placement; clones share the connection.
#[derive(Clone)]
pub struct Placement {
    manager: ConnectionManager,
    config: PlacementConfig,
    node: String,
    place: Script,
}

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placement")
            .field("node", &self.node)
            .field("public_url", &self.config.public_url)
            .finish_non_exhaustive()
    }
}

impl Placement {
    /// Connects to Redis and announces this node; the returned task keeps
    /// the node's and its rooms' keys fresh (abort it to stop).
    pub async fn start(
        config: PlacementConfig,
        sfu: SfuService,
    ) -> Result<(Placement, JoinHandle<()>), PlacementError> {
        let url = config.redis_url.clone();
        let redis_error = |source| PlacementError::Redis {
            url: url.clone(),
            source,
        };
        let info = config
            .redis_url
            .as_str()
            .into_connection_info()
            .map_err(redis_error)?;
        let client = redis::Client::open(info).map_err(redis_error)?;
        let manager = ConnectionManager::new(client).await.map_err(redis_error)?;
        let placement = Placement {
            manager,
            node: format!("{:08x}", rand::random::<u32>()),
            config,
            place: Script::new(PLACE),
        };
        placement.announce().await.map_err(redis_error)?;
        info!(
            node = %placement.node,
            url = %placement.config.public_url,
            "SFU rooms placed through Redis"
        );
        let task = tokio::spawn(placement.clone().refresh(sfu));
        Ok((placement, task))
    }

    fn room_key(&self, room: &str) -> String {
        format!("{}:sfu:room:{room}", self.config.prefix)
    }

    fn node_prefix(&self) -> String {
        format!("{}:sfu:node:", self.config.prefix)
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.config.node_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Writes this node's key with its URL.
    async fn announce(&self) -> redis::RedisResult<()> {
        let mut manager = self.manager.clone();
        redis::cmd("SET")
            .arg(format!("{}{}", self.node_prefix(), self.node))
            .arg(&self.config.public_url)
            .arg("PX")
            .arg(self.ttl_ms())
            .query_async(&mut manager)
            .await
    }

    async fn run_place(&self, room: &str) -> redis::RedisResult<Vec<String>> {
        let mut manager = self.manager.clone();
        self.place
            .key(self.room_key(room))
            .arg(&self.node)
            .arg(self.ttl_ms())
            .arg(self.node_prefix())
            .invoke_async(&mut manager)
            .await
    }

    /// Where `room` lives, placing it here if it lives nowhere (or on a
    /// dead node).
    pub async fn place(&self, room: &str) -> Placed {
        match tokio::time::timeout(REDIS_WAIT, self.run_place(room)).await {
            Ok(Ok(answer)) => match answer.as_slice() {
                [home, url] if *home != self.node => {
                    debug!(room, home = %home, %url, "room lives on another node");
                    Placed::Elsewhere { url: url.clone() }
                }
                _ => Placed::Here,
            },
            Ok(Err(e)) => {
                warn!(
                    room,
                    "SFU room placement: Redis: {e}; the room stays on this node"
                );
                Placed::Here
            }
            Err(_) => {
                warn!(room, "SFU room placement: Redis did not answer in {REDIS_WAIT:?}; the room stays on this node");
                Placed::Here
            }
        }
    }

    /// Every third of the node TTL: this node's key, its rooms' keys, and
    /// the release of rooms that emptied.
    async fn refresh(self, sfu: SfuService) {
        let release = Script::new(RELEASE);
        let mut hosted: HashSet<String> = HashSet::new();
        let mut tick = tokio::time::interval(self.config.node_ttl / 3);
        loop {
            tick.tick().await;
            let Ok(rooms) = sfu.rooms().await else {
                return; // the unit stopped
            };
            let rooms: HashSet<String> = rooms.into_iter().collect();
            if let Err(e) = self.announce().await {
                warn!("SFU room placement: Redis: {e}");
                continue;
            }
            for room in &rooms {
                // Keeps the room here (or places it again after an outage).
                if let Err(e) = self.run_place(room).await {
                    warn!(room, "SFU room placement: Redis: {e}");
                }
            }
            let mut manager = self.manager.clone();
            for room in hosted.difference(&rooms) {
                let released: redis::RedisResult<i64> = release
                    .key(self.room_key(room))
                    .arg(&self.node)
                    .invoke_async(&mut manager)
                    .await;
                if let Err(e) = released {
                    warn!(room, "SFU room placement: Redis: {e}");
                }
            }
            hosted = rooms;
        }
    }
}
