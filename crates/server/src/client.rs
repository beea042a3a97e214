//! A Rust client for the WebSocket JSON signaling protocol (`/ws`,
//! `docs/signaling.md`), so native peers can meet browsers and each other
//! in rooms of `realtimer serve`.
//!
//! ```no_run
//! # async fn run() -> Result<(), realtimer_server::client::ClientError> {
//! use realtimer_server::client::{SignalingClient, SignalingEvent};
//! let (sender, mut events) = SignalingClient::connect("ws://127.0.0.1:8080/ws", "room1").await?;
//! while let Some(event) = events.next().await {
//!     match event {
//!         SignalingEvent::Ready { .. } => {
//!             sender.send(serde_json::json!({"type": "offer", "sdp": "v=0\r\n"})).await?;
//!         }
//!         SignalingEvent::Message { data, .. } => println!("got {data}"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

/// Events (and requests) queued per direction; a full event queue stops
/// reading from the server (back-pressure), it never drops an event.
const QUEUE: usize = 256;

/// How long `connect` waits for the server's `welcome`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The WebSocket could not be opened or broke.
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server did not greet with `welcome` in time.
    #[error("no welcome from the server within {0:?}")]
    NoWelcome(Duration),
    /// The server said something that is not the protocol.
    #[error("unexpected frame from the server: {0}")]
    Protocol(String),
    /// The connection is closed; nothing more can be sent.
    #[error("the signaling connection is closed")]
    Closed,
}

/// An event from the server, as in `docs/signaling.md`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SignalingEvent {
    /// You created `room` (you are the first member: the caller, usually).
    Created {
        /// The room.
        room: String,
        /// Your id.
        id: String,
    },
    /// Someone is joining your room.
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
    /// The room is complete; the creator may call.
    Ready {
        /// The room.
        room: String,
    },
    /// The room is at capacity; you are not in it.
    Full {
        /// The room.
        room: String,
    },
    /// A message relayed from another member.
    Message {
        /// Its sender's id.
        from: String,
        /// What it sent.
        data: Value,
    },
    /// A member left.
    Left {
        /// The room.
        room: String,
        /// Who left.
        id: String,
    },
    /// The server refused a request.
    Error {
        /// Machine-readable code (`rate-limited`, `message-too-large`...).
        code: String,
        /// In words.
        message: String,
    },
    /// The answer to [`SignalingSender::ping`].
    Pong,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Request {
    Join { room: String },
    Message { data: Value },
    Leave,
    Ping,
}

/// Connects native peers to rooms.
#[derive(Debug)]
pub struct SignalingClient;

impl SignalingClient {
    /// Opens `url` (`ws://HOST:PORT/ws`), waits for `welcome`, and asks to
    /// create or join `room`; the outcome (`Created`, `Joined`, `Full`...)
    /// is the first event of the stream.
    pub async fn connect(
        url: &str,
        room: &str,
    ) -> Result<(SignalingSender, SignalingEvents), ClientError> {
        // Signaling frames are small; tungstenite's default 128 KiB read
        // buffer is zero-filled before every read.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(crate::ws::READ_BUFFER);
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
        let id = tokio::time::timeout(WELCOME_TIMEOUT, async {
            while let Some(frame) = ws.next().await {
                if let Message::Text(text) = frame? {
                    let value: Value = serde_json::from_str(&text)
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    return match (value["type"].as_str(), value["id"].as_str()) {
                        (Some("welcome"), Some(id)) => Ok(id.to_owned()),
                        _ => Err(ClientError::Protocol(text.to_string())),
                    };
                }
            }
            Err(ClientError::Closed)
        })
        .await
        .map_err(|_| ClientError::NoWelcome(WELCOME_TIMEOUT))??;
        let join = Request::Join {
            room: room.to_owned(),
        };
        ws.send(Message::text(encode(&join))).await?;

        let (request_tx, mut request_rx) = mpsc::channel::<Request>(QUEUE);
        let (event_tx, event_rx) = mpsc::channel::<SignalingEvent>(QUEUE);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    request = request_rx.recv() => {
                        let Some(request) = request else {
                            // Every sender is gone: say goodbye.
                            let _ = ws.close(None).await;
                            break;
                        };
                        if ws.send(Message::text(encode(&request))).await.is_err() {
                            break;
                        }
                    }
                    frame = ws.next() => {
                        let text = match frame {
                            Some(Ok(Message::Text(text))) => text,
                            Some(Ok(Message::Close(_))) | None => break,
                            Some(Ok(_)) => continue,
                            Some(Err(e)) => {
                                debug!("signaling connection: {e}");
                                break;
                            }
                        };
                        match serde_json::from_str::<SignalingEvent>(&text) {
                            Ok(event) => {
                                if event_tx.send(event).await.is_err() {
                                    break;
                                }
                            }
                            Err(e) => debug!("ignoring a frame this client does not know: {e}"),
                        }
                    }
                }
            }
        });
        Ok((
            SignalingSender { tx: request_tx },
            SignalingEvents { id, rx: event_rx },
        ))
    }
}

fn encode(request: &Request) -> String {
    // A tagged enum of strings and JSON values always serializes.
    serde_json::to_string(request).unwrap_or_default()
}

/// Sends to the room. Cheap to clone; the connection closes when every
/// clone is dropped.
#[derive(Debug, Clone)]
pub struct SignalingSender {
    tx: mpsc::Sender<Request>,
}

impl SignalingSender {
    /// Relays `data` (an offer, an answer, a candidate...) to the other
    /// members. Waits while the outgoing queue is full.
    pub async fn send(&self, data: Value) -> Result<(), ClientError> {
        self.request(Request::Message { data }).await
    }

    /// Leaves the room (the connection stays open).
    pub async fn leave(&self) -> Result<(), ClientError> {
        self.request(Request::Leave).await
    }

    /// Joins (or creates) another room, after [`SignalingSender::leave`].
    pub async fn join(&self, room: &str) -> Result<(), ClientError> {
        self.request(Request::Join {
            room: room.to_owned(),
        })
        .await
    }

    /// Asks the server for a [`SignalingEvent::Pong`].
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.request(Request::Ping).await
    }

    async fn request(&self, request: Request) -> Result<(), ClientError> {
        self.tx.send(request).await.map_err(|_| ClientError::Closed)
    }
}

/// The server's events, in order; ends when the connection closes.
#[derive(Debug)]
pub struct SignalingEvents {
    id: String,
    rx: mpsc::Receiver<SignalingEvent>,
}

impl SignalingEvents {
    /// This client's id, as the other members see it (`from` of its
    /// messages).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next event; `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<SignalingEvent> {
        self.rx.recv().await
    }
}

impl Stream for SignalingEvents {
    type Item = SignalingEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SignalingEvent>> {
        self.rx.poll_recv(cx)
    }
}
