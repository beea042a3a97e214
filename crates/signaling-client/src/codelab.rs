//! The classic WebRTC codelab's Socket.IO protocol (`docs/signaling.md`,
//! "Socket.IO"): events named by strings, their arguments positional.
//! The server's Socket.IO front speaks it for the codelab's pages and
//! Socket.IO clients (Engine.IO v3 and v4).
//!
//! | client emits | server emits |
//! |---|---|
//! | `create or join`(room) | `created`(room, id) to the first; `join`(room) to the member, `joined`(room, id) to the newcomer, `ready`() to both; `full`(room) to later ones |
//! | `message`(data) | `message`(data) to the other member |
//! | `ipaddr`() | `ipaddr`(address) per IPv4 address of the host |
//! | `bye`() | nothing; the sender leaves its room |
//!
//! and `log`([...]) console lines; `refused`(code, message) when a request
//! is refused (a realtimer addition).

/// An event of the codelab protocol, either direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodelabEvent {
    /// Client: create or join a room (one argument, the room).
    CreateOrJoin,
    /// Server: you created the room (room, your id).
    Created,
    /// Server: someone is joining your room (room).
    Join,
    /// Server: you joined the room (room, your id).
    Joined,
    /// Server: the room is complete (no argument, as the codelab's step 5).
    Ready,
    /// Server: the room is full (room).
    Full,
    /// Both: a message to relay, relayed unchanged (data).
    Message,
    /// Client: leave the room (no argument).
    Bye,
    /// Client asks, server answers with one address per event.
    Ipaddr,
    /// Server: a console line (an array).
    Log,
    /// Server: a request was refused (code, message).
    Refused,
}

impl CodelabEvent {
    /// Every event, for lookups by name.
    pub const ALL: [CodelabEvent; 11] = [
        CodelabEvent::CreateOrJoin,
        CodelabEvent::Created,
        CodelabEvent::Join,
        CodelabEvent::Joined,
        CodelabEvent::Ready,
        CodelabEvent::Full,
        CodelabEvent::Message,
        CodelabEvent::Bye,
        CodelabEvent::Ipaddr,
        CodelabEvent::Log,
        CodelabEvent::Refused,
    ];

    /// The event's name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            CodelabEvent::CreateOrJoin => "create or join",
            CodelabEvent::Created => "created",
            CodelabEvent::Join => "join",
            CodelabEvent::Joined => "joined",
            CodelabEvent::Ready => "ready",
            CodelabEvent::Full => "full",
            CodelabEvent::Message => "message",
            CodelabEvent::Bye => "bye",
            CodelabEvent::Ipaddr => "ipaddr",
            CodelabEvent::Log => "log",
            CodelabEvent::Refused => "refused",
        }
    }

    /// The event named `name`, if the protocol has one.
    pub fn from_name(name: &str) -> Option<CodelabEvent> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// The codelab prefixes every `log` line with this.
pub const LOG_PREFIX: &str = "Message from server:";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for event in CodelabEvent::ALL {
            assert_eq!(CodelabEvent::from_name(event.name()), Some(event));
        }
        assert_eq!(
            CodelabEvent::from_name("create or join"),
            Some(CodelabEvent::CreateOrJoin)
        );
        assert_eq!(CodelabEvent::from_name("hello"), None);
    }
}
