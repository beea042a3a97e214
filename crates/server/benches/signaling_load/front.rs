//! The two signaling fronts as a client sees them: the codelab's Socket.IO
//! (Engine.IO v4 packets over WebSocket, Socket.IO v5 packets inside) and
//! realtimer's plain WebSocket JSON (`docs/signaling.md`). Frames are
//! classified by their first bytes; only relayed messages are parsed
//! further (for their stamp).

use super::payload::Framing;

/// Which front the clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Front {
    /// `/socket.io/?EIO=4&transport=websocket`, the codelab's events.
    Sio,
    /// `/ws`, one JSON object per text frame.
    Ws,
}

/// A frame from the server, by what the client does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// Engine.IO OPEN (`0{"sid":…}`): answer with a Socket.IO CONNECT.
    Open,
    /// Socket.IO CONNECT (`40{…}`) or `welcome`: the client is in.
    Connected,
    /// Engine.IO PING (`2`): answer PONG (`3`) or the server drops us.
    Ping,
    Created,
    Joined,
    Ready,
    /// `full`, CONNECT_ERROR, `refused` / `error`: the server said no.
    Refused,
    /// A relayed `message`.
    Message,
    /// The codelab's `log` lines (one echoes every relayed message).
    Log,
    /// Engine.IO CLOSE or Socket.IO DISCONNECT.
    Closed,
    /// Anything else (`join`, `pong`, `left`, ...): nothing to do.
    Other,
}

impl Front {
    /// The WebSocket URL path (and query) of the front.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Front::Sio => "/socket.io/?EIO=4&transport=websocket",
            Front::Ws => "/ws",
        }
    }

    /// How a `message` request is framed.
    pub(crate) fn framing(self) -> Framing {
        match self {
            Front::Sio => Framing {
                open: "42[\"message\",",
                close: b"]",
            },
            Front::Ws => Framing {
                open: "{\"type\":\"message\",\"data\":",
                close: b"}",
            },
        }
    }

    /// The request that creates or joins `room`.
    pub(crate) fn join(self, room: &str) -> String {
        match self {
            Front::Sio => format!("42[\"create or join\",\"{room}\"]"),
            Front::Ws => format!("{{\"type\":\"join\",\"room\":\"{room}\"}}"),
        }
    }

    /// What `frame` is.
    pub(crate) fn classify(self, frame: &str) -> Incoming {
        match self {
            Front::Sio => match frame.as_bytes() {
                [b'0', ..] => Incoming::Open,
                [b'2', ..] => Incoming::Ping,
                [b'1', ..] | [b'4', b'1', ..] => Incoming::Closed,
                [b'4', b'0', ..] => Incoming::Connected,
                [b'4', b'4', ..] => Incoming::Refused,
                [b'4', b'2', ..] => event(frame.strip_prefix("42[\"")),
                _ => Incoming::Other,
            },
            Front::Ws => match event(frame.strip_prefix("{\"type\":\"")) {
                Incoming::Other if frame.starts_with("{\"type\":\"welcome\"") => {
                    Incoming::Connected
                }
                other => other,
            },
        }
    }
}

/// An event by its name, at the start of `rest` up to its closing quote.
fn event(rest: Option<&str>) -> Incoming {
    let Some(name) = rest.and_then(|r| r.split('"').next()) else {
        return Incoming::Other;
    };
    match name {
        "message" => Incoming::Message,
        "log" => Incoming::Log,
        "created" => Incoming::Created,
        "joined" => Incoming::Joined,
        "ready" => Incoming::Ready,
        "full" | "refused" | "error" => Incoming::Refused,
        _ => Incoming::Other,
    }
}
