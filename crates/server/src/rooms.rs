//! The rooms core: who is in which room, who may join, who gets a relayed
//! message. Transport-independent and deterministic: time comes from the
//! caller, nothing here touches a socket or a clock, so the fronts
//! (Socket.IO, WebSocket) share one set of rules and tests drive it directly.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use realtimer_signaling::ErrorCode;

/// Identifies one connected client inside the server (any front).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// Limits of the rooms core. Every number bounds something a client drives.
#[derive(Debug, Clone)]
pub struct RoomsConfig {
    /// Members per room; the codelab allows two (a call).
    pub capacity: usize,
    /// Rooms that may exist at once.
    pub max_rooms: usize,
    /// Clients that may be connected at once.
    pub max_clients: usize,
    /// Longest room name, in bytes of UTF-8.
    pub max_room_name: usize,
    /// Largest relayed message, in bytes of its JSON encoding.
    pub max_message_bytes: usize,
    /// Requests a client may make in a burst (token bucket size).
    pub rate_burst: u32,
    /// Requests per second a client may sustain (token bucket refill).
    pub rate_per_second: u32,
    /// A room with no activity for this long is closed by [`Rooms::expire`].
    pub room_idle_timeout: Duration,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            capacity: 2,
            max_rooms: 10_000,
            max_clients: 20_000,
            max_room_name: 128,
            max_message_bytes: 64 * 1024,
            rate_burst: 200,
            rate_per_second: 100,
            room_idle_timeout: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why a request was refused. The message is what a client is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The room name is empty.
    #[error("the room name is empty")]
    EmptyRoomName,
    /// The room name is longer than the limit.
    #[error("the room name is {len} bytes long; the limit is {max}")]
    RoomNameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The room name has control characters.
    #[error("the room name contains control characters")]
    RoomNameInvalid,
    /// The server already has as many rooms as it allows.
    #[error("the server has too many rooms ({max})")]
    TooManyRooms {
        /// The limit.
        max: usize,
    },
    /// The server already has as many clients as it allows.
    #[error("the server has too many clients ({max})")]
    TooManyClients {
        /// The limit.
        max: usize,
    },
    /// The client is already in a room; it must leave first.
    #[error("already in room {room:?}; leave it first")]
    AlreadyInRoom {
        /// The room it is in.
        room: String,
    },
    /// The client is in no room, so a message has nobody to go to.
    #[error("not in a room")]
    NotInRoom,
    /// The message is larger than the limit.
    #[error("the message is {len} bytes; the limit is {max}")]
    MessageTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The client sends faster than its rate limit.
    #[error("too many requests; slow down")]
    RateLimited,
    /// The client id is unknown (not connected).
    #[error("unknown client")]
    UnknownClient,
    /// The request could not be understood.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The shared room state (Redis, with `--redis`) could not be reached
    /// or this server is too busy to queue the request.
    #[error("the server cannot handle this now: {0}")]
    Unavailable(String),
}

impl RoomError {
    /// The error's stable code on the wire (`docs/signaling.md`).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::EmptyRoomName | Self::RoomNameTooLong { .. } | Self::RoomNameInvalid => {
                ErrorCode::BadRoomName
            }
            Self::TooManyRooms { .. } | Self::TooManyClients { .. } => ErrorCode::ServerFull,
            Self::AlreadyInRoom { .. } => ErrorCode::AlreadyInRoom,
            Self::NotInRoom => ErrorCode::NotInRoom,
            Self::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::RateLimited => ErrorCode::RateLimited,
            Self::UnknownClient => ErrorCode::UnknownClient,
            Self::Malformed(_) => ErrorCode::Malformed,
            Self::Unavailable(_) => ErrorCode::ServerBusy,
        }
    }
}

/// What a join did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The room did not exist; the client is its first member.
    Created,
    /// The client joined; `others` were already there (in join order).
    Joined {
        /// The members before this one.
        others: Vec<ClientId>,
    },
    /// The room is at capacity; nothing changed.
    Full,
}

/// A client left a room (leave, bye or disconnect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// The room it left.
    pub room: String,
    /// Who is still there.
    pub remaining: Vec<ClientId>,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// The sender's room.
    pub room: String,
    /// The other members.
    pub to: Vec<ClientId>,
}

/// Counts for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomsStats {
    /// Rooms open now.
    pub rooms: usize,
    /// Clients connected now.
    pub clients: usize,
    /// Messages relayed since start.
    pub relayed: u64,
    /// Requests refused since start.
    pub refused: u64,
    /// Clients dropped because their outbound queue (a front's, bounded
    /// by the hub) was full: they did not read what their room sent.
    pub slow_clients_dropped: u64,
    /// With Redis: room events and joins refused because the queue to the
    /// Redis task was full (Redis slow or gone).
    pub cluster_commands_dropped: u64,
    /// With Redis: room events given up (Redis gone too long, or a process
    /// with members never heard them).
    pub cluster_events_lost: u64,
    /// With Redis: room events heard twice (published again after an
    /// outage) and dropped.
    pub cluster_duplicates_dropped: u64,
}

/// A token bucket: `burst` tokens, refilled at `per_second`.
#[derive(Debug, Clone)]
struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn take(&mut self, now: Instant, burst: u32, per_second: u32) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * f64::from(per_second)).min(f64::from(burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct Client {
    room: Option<String>,
    bucket: TokenBucket,
}

#[derive(Debug)]
struct Room {
    members: Vec<ClientId>,
    last_activity: Instant,
}

/// All rooms and clients of one server.
#[derive(Debug)]
pub struct Rooms {
    config: RoomsConfig,
    rooms: HashMap<String, Room>,
    clients: HashMap<ClientId, Client>,
    stats: RoomsStats,
}

impl Rooms {
    /// An empty set of rooms with these limits.
    pub fn new(config: RoomsConfig) -> Self {
        Self {
            config,
            rooms: HashMap::new(),
            clients: HashMap::new(),
            stats: RoomsStats::default(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &RoomsConfig {
        &self.config
    }

    /// Counts of rooms, clients, relayed and refused requests.
    pub fn stats(&self) -> RoomsStats {
        RoomsStats {
            rooms: self.rooms.len(),
            clients: self.clients.len(),
            ..self.stats
        }
    }

    /// Registers a newly connected client.
    pub fn connect(&mut self, id: ClientId, now: Instant) -> Result<(), RoomError> {
        if self.clients.len() >= self.config.max_clients && !self.clients.contains_key(&id) {
            self.stats.refused += 1;
            return Err(RoomError::TooManyClients {
                max: self.config.max_clients,
            });
        }
        self.clients.insert(
            id,
            Client {
                room: None,
                bucket: TokenBucket {
                    tokens: f64::from(self.config.rate_burst),
                    last: now,
                },
            },
        );
        Ok(())
    }

    /// Forgets a client; it leaves its room if it was in one.
    pub fn disconnect(&mut self, id: ClientId) -> Option<Departure> {
        let departure = self.leave(id);
        self.clients.remove(&id);
        departure
    }

    /// Charges one request to the client's rate limit.
    pub fn admit(&mut self, id: ClientId, now: Instant) -> Result<(), RoomError> {
        let (burst, rate) = (self.config.rate_burst, self.config.rate_per_second);
        let client = self.clients.get_mut(&id).ok_or(RoomError::UnknownClient)?;
        if client.bucket.take(now, burst, rate) {
            Ok(())
        } else {
            self.stats.refused += 1;
            Err(RoomError::RateLimited)
        }
    }

    /// Checks a room name: 1 to `max_room_name` bytes, no control characters.
    pub fn validate_room_name(&self, room: &str) -> Result<(), RoomError> {
        if room.is_empty() {
            return Err(RoomError::EmptyRoomName);
        }
        if room.len() > self.config.max_room_name {
            return Err(RoomError::RoomNameTooLong {
                len: room.len(),
                max: self.config.max_room_name,
            });
        }
        if room.chars().any(char::is_control) {
            return Err(RoomError::RoomNameInvalid);
        }
        Ok(())
    }

    /// The codelab's `create or join`: the first client creates the room,
    /// the next ones join until it is at capacity, then it is `Full`.
    /// Charges the rate limit.
    pub fn join(
        &mut self,
        id: ClientId,
        room: &str,
        now: Instant,
    ) -> Result<JoinOutcome, RoomError> {
        self.admit(id, now)?;
        let result = self.join_admitted(id, room, now);
        if result.is_err() {
            self.stats.refused += 1;
        }
        result
    }

    fn join_admitted(
        &mut self,
        id: ClientId,
        room: &str,
        now: Instant,
    ) -> Result<JoinOutcome, RoomError> {
        self.validate_room_name(room)?;
        let client = self.clients.get(&id).ok_or(RoomError::UnknownClient)?;
        if let Some(current) = &client.room {
            return Err(RoomError::AlreadyInRoom {
                room: current.clone(),
            });
        }
        let outcome = match self.rooms.get_mut(room) {
            None => {
                if self.rooms.len() >= self.config.max_rooms {
                    return Err(RoomError::TooManyRooms {
                        max: self.config.max_rooms,
                    });
                }
                self.rooms.insert(
                    room.to_owned(),
                    Room {
                        members: vec![id],
                        last_activity: now,
                    },
                );
                JoinOutcome::Created
            }
            Some(existing) if existing.members.len() >= self.config.capacity => {
                return Ok(JoinOutcome::Full);
            }
            Some(existing) => {
                let others = existing.members.clone();
                existing.members.push(id);
                existing.last_activity = now;
                JoinOutcome::Joined { others }
            }
        };
        if let Some(client) = self.clients.get_mut(&id) {
            client.room = Some(room.to_owned());
        }
        Ok(outcome)
    }

    /// Checks a join that another authority (the cluster layer, over Redis)
    /// will decide on: charges the rate limit, checks the name, that the
    /// client is in no room, and room count limit of this process. Capacity
    /// is the authority's to enforce; on success call [`Rooms::enter`].
    pub fn check_join(&mut self, id: ClientId, room: &str, now: Instant) -> Result<(), RoomError> {
        self.admit(id, now)?;
        let result = self.validate_room_name(room).and_then(|()| {
            let client = self.clients.get(&id).ok_or(RoomError::UnknownClient)?;
            if let Some(current) = &client.room {
                return Err(RoomError::AlreadyInRoom {
                    room: current.clone(),
                });
            }
            if !self.rooms.contains_key(room) && self.rooms.len() >= self.config.max_rooms {
                return Err(RoomError::TooManyRooms {
                    max: self.config.max_rooms,
                });
            }
            Ok(())
        });
        if result.is_err() {
            self.stats.refused += 1;
        }
        result
    }

    /// Puts a client in a room that the authority admitted it to (after
    /// [`Rooms::check_join`]); returns the other members known here, in
    /// join order. No capacity check: the authority did it.
    pub fn enter(&mut self, id: ClientId, room: &str, now: Instant) -> Vec<ClientId> {
        let Some(client) = self.clients.get_mut(&id) else {
            return Vec::new();
        };
        client.room = Some(room.to_owned());
        let entry = self.rooms.entry(room.to_owned()).or_insert_with(|| Room {
            members: Vec::new(),
            last_activity: now,
        });
        let others = entry.members.clone();
        entry.members.push(id);
        entry.last_activity = now;
        others
    }

    /// Names of the rooms with members here.
    pub fn room_names(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str)
    }

    /// Takes the client out of its room; an empty room is closed.
    pub fn leave(&mut self, id: ClientId) -> Option<Departure> {
        let room_name = self.clients.get_mut(&id)?.room.take()?;
        let room = self.rooms.get_mut(&room_name)?;
        room.members.retain(|m| *m != id);
        let remaining = room.members.clone();
        if remaining.is_empty() {
            self.rooms.remove(&room_name);
        }
        Some(Departure {
            room: room_name,
            remaining,
        })
    }

    /// The room a client is in.
    pub fn room_of(&self, id: ClientId) -> Option<&str> {
        self.clients.get(&id)?.room.as_deref()
    }

    /// Members of a room, in join order.
    pub fn members(&self, room: &str) -> &[ClientId] {
        self.rooms.get(room).map_or(&[], |r| &r.members)
    }

    /// Who gets a message of `len` bytes from `id`: the other members of its
    /// room. Charges the rate limit.
    pub fn relay(&mut self, id: ClientId, len: usize, now: Instant) -> Result<Relay, RoomError> {
        self.admit(id, now)?;
        if len > self.config.max_message_bytes {
            self.stats.refused += 1;
            return Err(RoomError::MessageTooLarge {
                len,
                max: self.config.max_message_bytes,
            });
        }
        let room_name = self.room_of(id).ok_or(RoomError::NotInRoom)?.to_owned();
        let room = self.rooms.get_mut(&room_name).ok_or(RoomError::NotInRoom)?;
        room.last_activity = now;
        let to = room.members.iter().copied().filter(|m| *m != id).collect();
        self.stats.relayed += 1;
        Ok(Relay {
            room: room_name,
            to,
        })
    }

    /// Closes rooms idle for longer than the configured timeout and returns
    /// them with their members (who are now in no room).
    pub fn expire(&mut self, now: Instant) -> Vec<(String, Vec<ClientId>)> {
        let timeout = self.config.room_idle_timeout;
        let expired: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.last_activity) >= timeout)
            .map(|(name, _)| name.clone())
            .collect();
        let mut closed = Vec::with_capacity(expired.len());
        for name in expired {
            if let Some(room) = self.rooms.remove(&name) {
                for member in &room.members {
                    if let Some(client) = self.clients.get_mut(member) {
                        client.room = None;
                    }
                }
                closed.push((name, room.members));
            }
        }
        closed
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock once
mod tests {
    use super::*;

    fn rooms() -> (Rooms, Instant) {
        (Rooms::new(RoomsConfig::default()), Instant::now())
    }

    #[test]
    fn create_join_full_like_the_codelab() {
        let (mut r, now) = rooms();
        for i in 1..=3 {
            r.connect(ClientId(i), now).unwrap();
        }
        assert_eq!(r.join(ClientId(1), "foo", now), Ok(JoinOutcome::Created));
        assert_eq!(
            r.join(ClientId(2), "foo", now),
            Ok(JoinOutcome::Joined {
                others: vec![ClientId(1)]
            })
        );
        assert_eq!(r.join(ClientId(3), "foo", now), Ok(JoinOutcome::Full));
        assert_eq!(r.room_of(ClientId(3)), None);
        assert_eq!(r.members("foo"), &[ClientId(1), ClientId(2)]);
    }

    #[test]
    fn relay_goes_to_the_others_only() {
        let (mut r, now) = rooms();
        for i in 1..=3 {
            r.connect(ClientId(i), now).unwrap();
        }
        r.join(ClientId(1), "a", now).unwrap();
        r.join(ClientId(2), "a", now).unwrap();
        r.join(ClientId(3), "b", now).unwrap();
        let relay = r.relay(ClientId(1), 10, now).unwrap();
        assert_eq!(relay.to, vec![ClientId(2)]);
        assert_eq!(r.relay(ClientId(3), 10, now).unwrap().to, vec![]);
        assert_eq!(r.stats().relayed, 2);
    }

    #[test]
    fn leave_frees_the_slot_and_closes_empty_rooms() {
        let (mut r, now) = rooms();
        for i in 1..=3 {
            r.connect(ClientId(i), now).unwrap();
        }
        r.join(ClientId(1), "a", now).unwrap();
        r.join(ClientId(2), "a", now).unwrap();
        let d = r.disconnect(ClientId(1)).unwrap();
        assert_eq!(d.remaining, vec![ClientId(2)]);
        assert!(matches!(
            r.join(ClientId(3), "a", now),
            Ok(JoinOutcome::Joined { .. })
        ));
        r.leave(ClientId(2));
        r.leave(ClientId(3));
        assert_eq!(r.stats().rooms, 0);
    }

    #[test]
    fn bad_room_names_are_refused() {
        let (mut r, now) = rooms();
        r.connect(ClientId(1), now).unwrap();
        assert_eq!(r.join(ClientId(1), "", now), Err(RoomError::EmptyRoomName));
        let long = "x".repeat(10_000);
        assert!(matches!(
            r.join(ClientId(1), &long, now),
            Err(RoomError::RoomNameTooLong { len: 10_000, .. })
        ));
        assert_eq!(
            r.join(ClientId(1), "a\u{0}b", now),
            Err(RoomError::RoomNameInvalid)
        );
        assert_eq!(
            r.join(ClientId(1), "café ☕", now),
            Ok(JoinOutcome::Created)
        );
    }

    #[test]
    fn join_flood_is_rate_limited_and_recovers() {
        let (mut r, now) = rooms();
        r.connect(ClientId(1), now).unwrap();
        let burst = r.config().rate_burst as usize;
        let mut limited = 0;
        for i in 0..1000 {
            if r.join(ClientId(1), &format!("room{i}"), now) == Err(RoomError::RateLimited) {
                limited += 1;
            }
        }
        assert_eq!(limited, 1000 - burst);
        // One room only: the client stays in the first one it joined.
        assert_eq!(r.stats().rooms, 1);
        let later = now + Duration::from_secs(1);
        assert!(r.admit(ClientId(1), later).is_ok());
    }

    #[test]
    fn limits_on_rooms_clients_and_message_size() {
        let config = RoomsConfig {
            max_rooms: 1,
            max_clients: 2,
            max_message_bytes: 100,
            ..RoomsConfig::default()
        };
        let mut r = Rooms::new(config);
        let now = Instant::now();
        r.connect(ClientId(1), now).unwrap();
        r.connect(ClientId(2), now).unwrap();
        assert!(matches!(
            r.connect(ClientId(3), now),
            Err(RoomError::TooManyClients { .. })
        ));
        r.join(ClientId(1), "a", now).unwrap();
        assert!(matches!(
            r.join(ClientId(2), "b", now),
            Err(RoomError::TooManyRooms { .. })
        ));
        assert!(matches!(
            r.relay(ClientId(1), 101, now),
            Err(RoomError::MessageTooLarge { .. })
        ));
        assert_eq!(r.relay(ClientId(2), 1, now), Err(RoomError::NotInRoom));
    }

    #[test]
    fn check_join_then_enter_leaves_capacity_to_the_authority() {
        let (mut r, now) = rooms();
        for i in 1..=3 {
            r.connect(ClientId(i), now).unwrap();
        }
        assert_eq!(r.check_join(ClientId(1), "a", now), Ok(()));
        assert!(r.enter(ClientId(1), "a", now).is_empty());
        assert_eq!(r.enter(ClientId(2), "a", now), vec![ClientId(1)]);
        // A third member is the authority's call, not this core's.
        assert_eq!(
            r.enter(ClientId(3), "a", now),
            vec![ClientId(1), ClientId(2)]
        );
        assert!(matches!(
            r.check_join(ClientId(1), "b", now),
            Err(RoomError::AlreadyInRoom { .. })
        ));
        assert_eq!(
            r.check_join(ClientId(1), "", now),
            Err(RoomError::EmptyRoomName)
        );
        assert_eq!(r.room_names().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn idle_rooms_expire() {
        let config = RoomsConfig {
            room_idle_timeout: Duration::from_secs(60),
            ..RoomsConfig::default()
        };
        let mut r = Rooms::new(config);
        let now = Instant::now();
        r.connect(ClientId(1), now).unwrap();
        r.join(ClientId(1), "a", now).unwrap();
        assert!(r.expire(now + Duration::from_secs(59)).is_empty());
        let closed = r.expire(now + Duration::from_secs(60));
        assert_eq!(closed, vec![("a".to_owned(), vec![ClientId(1)])]);
        assert_eq!(r.room_of(ClientId(1)), None);
    }
}
