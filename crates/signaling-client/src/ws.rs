//! The WebSocket JSON protocol at `/ws`: one JSON object per text frame,
//! tagged by `type` (`docs/signaling.md`, "WebSocket JSON").

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A frame a client sends. Exhaustive: a server must answer every request
/// of the protocol, so a new one should not compile until it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SignalingRequest {
    /// Create or join `room`.
    Join {
        /// The room's name (1–128 bytes of UTF-8, no control characters).
        room: String,
    },
    /// Relay `data` to the other member(s), unchanged.
    Message {
        /// Any JSON value (an offer, an answer, a candidate...).
        data: Value,
    },
    /// Leave the room (the connection stays open).
    Leave,
    /// Liveness check, answered with [`SignalingEvent::Pong`].
    Ping,
}

/// A frame the server sends. `D` is the type of relayed messages' data:
/// a JSON [`Value`] for clients; the server relays a shared value with
/// when it was received, serialized as the value alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SignalingEvent<D = Value> {
    /// The first frame: `id` is how the other members see you.
    Welcome {
        /// Your id.
        id: String,
    },
    /// You created `room`: you are its first member (the caller, usually).
    Created {
        /// The room.
        room: String,
        /// Your id.
        id: String,
    },
    /// Someone is joining your room (sent before they are in it).
    Join {
        /// The room.
        room: String,
    },
    /// You joined `room`.
    Joined {
        /// The room.
        room: String,
        /// Your id.
        id: String,
    },
    /// The room is complete (to every member, after `joined`): the
    /// creator may call.
    Ready {
        /// The room.
        room: String,
    },
    /// `room` is at capacity; you are not in it.
    Full {
        /// The room.
        room: String,
    },
    /// A message relayed from another member.
    Message {
        /// Its sender's id.
        from: String,
        /// What it sent, unchanged.
        data: D,
    },
    /// A member left (leave or disconnect).
    Left {
        /// The room.
        room: String,
        /// Who left.
        id: String,
    },
    /// A request was refused.
    Error {
        /// Why, for programs.
        code: ErrorCode,
        /// Why, in words.
        message: String,
    },
    /// The answer to [`SignalingRequest::Ping`].
    Pong,
}

/// Why the server refused a request (`docs/signaling.md`, "Error codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The room name is empty, longer than 128 bytes, or has control
    /// characters.
    BadRoomName,
    /// Not JSON, an unknown `type` or event, or wrong field types.
    Malformed,
    /// A message before joining a room.
    NotInRoom,
    /// A join while in a room.
    AlreadyInRoom,
    /// A relayed message over the size limit (64 KiB by default).
    MessageTooLarge,
    /// Over the per-client request rate.
    RateLimited,
    /// Too many rooms or clients on the server.
    ServerFull,
    /// The room was idle too long and was closed.
    RoomExpired,
    /// The server no longer knows this client.
    UnknownClient,
    /// The server cannot decide now (its shared room store is unreachable).
    ServerBusy,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it is on the wire (`rate-limited`...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRoomName => "bad-room-name",
            ErrorCode::Malformed => "malformed",
            ErrorCode::NotInRoom => "not-in-room",
            ErrorCode::AlreadyInRoom => "already-in-room",
            ErrorCode::MessageTooLarge => "message-too-large",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::ServerFull => "server-full",
            ErrorCode::RoomExpired => "room-expired",
            ErrorCode::UnknownClient => "unknown-client",
            ErrorCode::ServerBusy => "server-busy",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_are_the_documented_frames() {
        let join = SignalingRequest::Join { room: "R".into() };
        assert_eq!(
            serde_json::to_value(&join).unwrap(),
            json!({"type": "join", "room": "R"})
        );
        assert_eq!(
            serde_json::to_value(SignalingRequest::Ping).unwrap(),
            json!({"type": "ping"})
        );
        let parsed: SignalingRequest =
            serde_json::from_value(json!({"type": "message", "data": {"a": 1}})).unwrap();
        assert_eq!(
            parsed,
            SignalingRequest::Message {
                data: json!({"a": 1})
            }
        );
        // Unknown fields and types are malformed requests.
        let extra = json!({"type": "join", "room": "R", "x": 1});
        assert!(serde_json::from_value::<SignalingRequest>(extra).is_err());
        assert!(serde_json::from_value::<SignalingRequest>(json!({"type": "shout"})).is_err());
    }

    #[test]
    fn events_round_trip_and_codes_are_kebab_case() {
        for (event, wire) in [
            (
                SignalingEvent::Created {
                    room: "R".into(),
                    id: "7".into(),
                },
                json!({"type": "created", "room": "R", "id": "7"}),
            ),
            (
                SignalingEvent::Error {
                    code: ErrorCode::MessageTooLarge,
                    message: "too big".into(),
                },
                json!({"type": "error", "code": "message-too-large", "message": "too big"}),
            ),
            (SignalingEvent::Pong, json!({"type": "pong"})),
        ] {
            assert_eq!(serde_json::to_value(&event).unwrap(), wire);
            assert_eq!(
                serde_json::from_value::<SignalingEvent>(wire).unwrap(),
                event
            );
        }
        let future: SignalingEvent =
            serde_json::from_value(json!({"type": "error", "code": "new-code", "message": ""}))
                .unwrap();
        assert!(matches!(
            future,
            SignalingEvent::Error {
                code: ErrorCode::Unknown,
                ..
            }
        ));
        assert_eq!(
            serde_json::to_value(ErrorCode::ServerBusy).unwrap(),
            json!(ErrorCode::ServerBusy.as_str())
        );
    }
}
