//! The Socket.IO front: the classic WebRTC codelab's signaling protocol, on
//! socketioxide. Accepts both Socket.IO protocol v4 (Engine.IO v3, the
//! socket.io-client 2.x the codelab ships) and v5 (Engine.IO v4, current
//! clients).
//!
//! | client emits | server answers |
//! |---|---|
//! | `create or join`(room) | `created`(room, id) to a first member; else `join`(room) to the room, `joined`(room, id) to the newcomer, `ready`() to the room; or `full`(room) |
//! | `message`(data) | `message`(data) to the other members of the room |
//! | `ipaddr`() | `ipaddr`(address) per non-loopback IPv4 address of the host |
//! | `bye`() | leaves the room |
//!
//! Like the codelab, the server sends `log`([`"Message from server:"`, ...])
//! lines along the way. Refused requests get `refused`(code, message).

use std::future::ready;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use socketioxide::extract::{Data, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SendError, SocketError, SocketIo};
use tracing::{debug, info};

use realtimer_signaling::codelab::{CodelabEvent, LOG_PREFIX};
use realtimer_signaling::SignalingEvent;

use crate::hub::{Deliver, Delivery, Hub, Outbound};
use crate::now;
use crate::rooms::{ClientId, RoomError};

/// Largest Engine.IO payload accepted (a polling request body, a WebSocket
/// message). Messages past the rooms core's limit but under this one get a
/// `refused` event; past this one the transport is closed.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// Builds the Socket.IO layer (mounted at `/socket.io/`) serving the hub.
pub fn layer(hub: Hub) -> SocketIoLayer {
    let (layer, io) = SocketIo::builder()
        .max_payload(MAX_PAYLOAD as u64)
        .ws_max_message_size(MAX_PAYLOAD)
        .ws_max_frame_size(MAX_PAYLOAD)
        .max_buffer_size(crate::hub::OUTBOUND_QUEUE * 2)
        .ws_read_buffer_size(crate::ws::READ_BUFFER)
        .connect_timeout(Duration::from_secs(30))
        .build_layer();
    // socketioxide sends CONNECT and only then spawns the connect handler:
    // handlers registered there can miss the events a client sends the
    // moment it reads CONNECT (socket.io clients flush their queued emits
    // then), and an event without a handler is dropped without a word. A
    // middleware runs before CONNECT is sent, so the handlers are in place
    // first; the connect handler (run once the socket counts as connected,
    // so emits work) only tells the hub it may deliver.
    let live_hub = hub.clone();
    let handler = move |socket: SocketRef| {
        if let Some(Registered(id)) = socket.extensions.get::<Registered>() {
            live_hub.go_live(id);
        }
        ready(())
    };
    let sockets = io.clone();
    io.ns(
        "/",
        handler.with(move |socket: SocketRef| ready(register(&socket, &hub, &sockets))),
    );
    layer
}

/// Copies a request's URI and header values into allocations of their own.
///
/// hyper parses them as slices of the connection's read buffer (8 to 16
/// KiB), and engineioxide keeps every Socket.IO connection's request parts
/// for the socket's life, so each connection kept that whole buffer alive:
/// about 16 KiB per client at 10,000 clients (heaptrack). Mounted in front
/// of the Socket.IO layer.
pub async fn own_request_head(mut request: axum::extract::Request) -> axum::extract::Request {
    for value in request.headers_mut().values_mut() {
        if let Ok(mut owned) = axum::http::HeaderValue::from_bytes(value.as_bytes()) {
            owned.set_sensitive(value.is_sensitive());
            *value = owned;
        }
    }
    if let Ok(uri) = axum::http::Uri::try_from(request.uri().to_string()) {
        *request.uri_mut() = uri;
    }
    request
}

/// The hub's id of a socket, from [`register`] to the connect handler.
#[derive(Clone, Copy)]
struct Registered(ClientId);

/// The hub delivers a socket's events by emitting them itself (under its
/// lock, so in order): no task or queue per client besides the engine
/// socket's own. The socket is looked up by id, so the hub does not keep it
/// alive.
#[derive(Debug)]
struct SocketSink {
    sockets: SocketIo,
    sid: socketioxide::socket::Sid,
    hub: Hub,
}

impl Deliver for SocketSink {
    fn deliver(&self, event: Outbound) -> Delivery {
        let Some(socket) = self.sockets.get_socket(self.sid) else {
            return Delivery::Gone;
        };
        let received = match &event {
            Outbound::Event(SignalingEvent::Message { data, .. }) => Some(data.received),
            _ => None,
        };
        match emit(&socket, event) {
            Ok(()) => {
                if let Some(received) = received {
                    self.hub.relayed(received, now());
                }
                Delivery::Sent
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => Delivery::Full,
            Err(e) => {
                debug!(sid = %self.sid, "emit failed: {e}");
                Delivery::Gone
            }
        }
    }

    fn close(&self) {
        // Disconnecting runs our disconnect handler, which takes the hub's
        // lock, held by our caller: do it from a task.
        let (sockets, sid) = (self.sockets.clone(), self.sid);
        tokio::spawn(async move {
            if let Some(socket) = sockets.get_socket(sid) {
                let _ = socket.disconnect();
            }
        });
    }
}

/// Forgets the hub client when the socket is dropped without its
/// disconnect handler running (a connect that failed after [`register`]).
struct Registration {
    hub: Hub,
    id: ClientId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.disconnect(self.id);
    }
}

/// Connect middleware: registers the client with the hub and installs the
/// event handlers, before the client is told it is connected. A refusal
/// (server full) reaches the client as a CONNECT_ERROR with its message.
fn register(socket: &SocketRef, hub: &Hub, sockets: &SocketIo) -> Result<(), RoomError> {
    let sink = SocketSink {
        sockets: sockets.clone(),
        sid: socket.id,
        hub: hub.clone(),
    };
    let (id, name) = hub
        .connect_direct(Some(socket.id.to_string()), now(), Arc::new(sink))
        .inspect_err(|e| info!("refusing a Socket.IO client: {e}"))?;
    debug!(client = %name, protocol = ?socket.protocol(), "Socket.IO client connected");
    socket.extensions.insert(Registered(id));

    // Handlers do their work synchronously and return a finished future:
    // socketioxide calls them in arrival order but spawns their futures,
    // and signaling must keep the order (an offer before its candidates).
    for event in [CodelabEvent::CreateOrJoin, CodelabEvent::Message] {
        let h = hub.clone();
        socket.on(event.name(), move |TryData::<Value>(data)| {
            handle_event(&h, id, event, data.map_err(|e| e.to_string()));
            ready(())
        });
    }
    let h = hub.clone();
    socket.on(CodelabEvent::Bye.name(), move || {
        info!(client = id.0, "received bye");
        h.leave(id, now());
        ready(())
    });
    let h = hub.clone();
    socket.on(CodelabEvent::Ipaddr.name(), move |s: SocketRef| {
        if h.admit(id, now()) {
            for address in host_ipv4_addresses() {
                let _ = s.emit(CodelabEvent::Ipaddr.name(), &address.to_string());
            }
        }
        ready(())
    });
    let h = hub.clone();
    socket.on_fallback(move |Event(event): Event, Data::<Value>(_)| {
        let shown: String = event.chars().take(64).collect();
        h.reject(
            id,
            RoomError::Malformed(format!("unknown event {shown:?}")),
            now(),
        );
        ready(())
    });
    let registration = Arc::new(Registration {
        hub: hub.clone(),
        id,
    });
    socket.on_disconnect(move || {
        registration.hub.disconnect(registration.id);
        ready(())
    });
    Ok(())
}

/// What a client's `create or join` or `message` does, given the event's
/// first argument or why it did not deserialize: the handlers [`layer`]
/// installs call it, and so does the `signaling_frames` fuzz target with
/// what socketioxide's parser makes of arbitrary frames. Other events are
/// ignored here.
pub fn handle_event(hub: &Hub, id: ClientId, event: CodelabEvent, data: Result<Value, String>) {
    match (event, data) {
        (CodelabEvent::CreateOrJoin, Ok(Value::String(room))) => {
            hub.create_or_join(id, &room, now())
        }
        (CodelabEvent::CreateOrJoin, Ok(other)) => hub.reject(
            id,
            RoomError::Malformed(format!("the room must be a string, not {}", kind(&other))),
            now(),
        ),
        (CodelabEvent::Message, Ok(data)) => {
            let len = json_len(&data);
            hub.message(id, data, len, true, now());
        }
        (CodelabEvent::CreateOrJoin | CodelabEvent::Message, Err(e)) => {
            hub.reject(id, RoomError::Malformed(e), now())
        }
        _ => {}
    }
}

/// The length of `value`'s JSON encoding, counted without building it.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Emits one hub event with the codelab's event name and arguments. Tuples
/// are spread into several arguments by socketioxide, so single values that
/// may be arrays are wrapped in a 1-tuple.
fn emit(socket: &SocketRef, event: Outbound) -> Result<(), socketioxide::SendError> {
    use CodelabEvent as E;
    let event = match event {
        Outbound::Event(event) => event,
        Outbound::Log(line) => return socket.emit(E::Log.name(), &(line,)),
        Outbound::Said(data) => {
            return socket.emit(E::Log.name(), &((LOG_PREFIX, "Client said: ", &*data),))
        }
    };
    match event {
        SignalingEvent::Created { room, id } => socket.emit(E::Created.name(), &(room, id)),
        SignalingEvent::Join { room } => socket.emit(E::Join.name(), &(room,)),
        SignalingEvent::Joined { room, id } => socket.emit(E::Joined.name(), &(room, id)),
        // The codelab's step 5 emits `ready` without arguments.
        SignalingEvent::Ready { .. } => socket.emit(E::Ready.name(), &[(); 0]),
        SignalingEvent::Full { room } => socket.emit(E::Full.name(), &(room,)),
        SignalingEvent::Message { data, .. } => socket.emit(E::Message.name(), &(&*data.data,)),
        SignalingEvent::Error { code, message } => {
            socket.emit(E::Refused.name(), &(code.as_str(), message))
        }
        // The codelab tells peers about departures only through their own
        // `message`('bye'); `welcome` and `pong` are `/ws` frames the hub
        // never sends: nothing to send here.
        _ => Ok(()),
    }
}

/// The host's IPv4 addresses other than 127.0.0.1, as the codelab's
/// `ipaddr` handler lists them.
fn host_ipv4_addresses() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces
            .into_iter()
            .map(|i| i.ip())
            .filter(|ip| ip.is_ipv4() && *ip != IpAddr::from([127, 0, 0, 1]))
            .collect(),
        Err(e) => {
            debug!("cannot list interfaces: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_owned_request_head_keeps_uri_and_headers() {
        let mut secret = axum::http::HeaderValue::from_static("Bearer x");
        secret.set_sensitive(true);
        let request = axum::http::Request::builder()
            .uri("/socket.io/?EIO=4&transport=websocket")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("authorization", secret)
            .body(axum::body::Body::empty())
            .unwrap();
        let owned = own_request_head(request).await;
        assert_eq!(owned.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(
            owned.headers()["sec-websocket-key"],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert!(owned.headers()["authorization"].is_sensitive());
    }

    #[test]
    fn json_len_is_the_length_of_the_encoding() {
        for value in [
            serde_json::json!({"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 ☃\r\n"}),
            serde_json::json!(["a", 1, null, {"b": [true, 2.5]}]),
            serde_json::json!("quote \" and \\ and \u{1}"),
        ] {
            assert_eq!(
                json_len(&value),
                serde_json::to_string(&value).unwrap().len()
            );
        }
    }
}
