//! An async client for the `/ws` protocol ([`crate::ws`]), over `ws://`
//! and `wss://` (rustls; the system's roots unless
//! [`ClientOptions::tls`] says otherwise), so native peers meet browsers
//! and each other in rooms of `realtimer serve`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::debug;

use crate::ws::{ErrorCode, SignalingEvent, SignalingRequest};

/// Events (and requests) queued per direction; a full event queue stops
/// reading from the server (back-pressure), it never drops an event.
const QUEUE: usize = 256;

/// How long `connect` waits for each of the server's first answers
/// (`welcome`, then the join's outcome).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Signaling frames are small; tungstenite's default 128 KiB read buffer
/// is zero-filled before every read.
const READ_BUFFER: usize = 1024;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Why the client failed, grouped by cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not a `ws://` or `wss://` URL.
    #[error("{url:?} is not a ws:// or wss:// URL")]
    InvalidUrl {
        /// The URL given.
        url: String,
    },
    /// The TLS settings could not be made (no usable root certificate).
    #[error("TLS settings: {reason}")]
    Tls {
        /// What was wrong.
        reason: String,
    },
    /// The server could not be reached: connection refused, DNS, TLS
    /// handshake, or an HTTP answer that is not a WebSocket upgrade.
    #[error("cannot reach the signaling server at {url}: {source}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The WebSocket library's error.
        source: tungstenite::Error,
    },
    /// The server did not answer in time.
    #[error("no {expected} from the server within {waited:?}")]
    Timeout {
        /// What was awaited (`welcome`, the join's outcome).
        expected: &'static str,
        /// How long.
        waited: Duration,
    },
    /// The server said something that is not the protocol.
    #[error("protocol error: expected {expected}, got {got}")]
    Protocol {
        /// What the protocol wants at this point.
        expected: &'static str,
        /// What came (the frame, or why it could not be read).
        got: String,
    },
    /// The room is at capacity.
    #[error("room {room:?} is full")]
    RoomFull {
        /// The room.
        room: String,
    },
    /// The server refused the request.
    #[error("the server refused: {code}: {message}")]
    Refused {
        /// Why, for programs.
        code: ErrorCode,
        /// Why, in words.
        message: String,
    },
    /// The connection broke.
    #[error("the signaling connection broke: {0}")]
    Connection(tungstenite::Error),
    /// The connection is closed; nothing more can be sent.
    #[error("the signaling connection is closed")]
    Closed,
}

/// How to connect.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// TLS for `wss://`; `None`: the system's root certificates.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientOptions {
    /// Trusts only the CA certificate(s) in `pem` for `wss://` (a test CA,
    /// a private deployment).
    pub fn trusting_pem(pem: &str) -> Result<Self, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| ClientError::Tls {
                reason: format!("a CA certificate in the PEM: {e}"),
            })?;
            roots.add(cert).map_err(|e| ClientError::Tls {
                reason: format!("a CA certificate rustls refuses: {e}"),
            })?;
        }
        if roots.is_empty() {
            return Err(ClientError::Tls {
                reason: "no certificate in the PEM".into(),
            });
        }
        Ok(Self {
            tls: Some(tls_config(roots)?),
        })
    }
}

/// rustls with `ring` (the workspace's provider) and `roots`.
fn tls_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls {
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The system's root certificates (`/etc/ssl/certs` on Debian).
fn system_roots() -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(ClientError::Tls {
            reason: format!(
                "no system root certificate could be loaded ({:?})",
                found.errors
            ),
        });
    }
    tls_config(roots)
}

/// Connects native peers to rooms.
#[derive(Debug)]
pub struct SignalingClient;

impl SignalingClient {
    /// Opens `url` (`ws://HOST:PORT/ws` or `wss://...`), waits for
    /// `welcome`, and creates or joins `room`. A full room is
    /// [`ClientError::RoomFull`]; a refused join (a bad name, a full
    /// server) [`ClientError::Refused`].
    pub async fn connect(
        url: &str,
        room: &str,
    ) -> Result<(SignalingSender, SignalingEvents), ClientError> {
        Self::connect_with(url, room, &ClientOptions::default()).await
    }

    /// [`SignalingClient::connect`] with `options`.
    pub async fn connect_with(
        url: &str,
        room: &str,
        options: &ClientOptions,
    ) -> Result<(SignalingSender, SignalingEvents), ClientError> {
        let connector = if url.starts_with("wss://") {
            let tls = match &options.tls {
                Some(tls) => Arc::clone(tls),
                None => system_roots()?,
            };
            Some(Connector::Rustls(tls))
        } else if url.starts_with("ws://") {
            None
        } else {
            return Err(ClientError::InvalidUrl { url: url.into() });
        };
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (mut ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(url, Some(config), false, connector)
                .await
                .map_err(|source| ClientError::Unreachable {
                    url: url.into(),
                    source,
                })?;
        let id = match answer(&mut ws, "welcome").await? {
            SignalingEvent::Welcome { id } => id,
            other => return Err(unexpected("welcome", &other)),
        };
        send(&mut ws, &SignalingRequest::Join { room: room.into() }).await?;
        let created = match answer(&mut ws, "the join's outcome").await? {
            SignalingEvent::Created { .. } => true,
            SignalingEvent::Joined { .. } => false,
            SignalingEvent::Full { room } => return Err(ClientError::RoomFull { room }),
            SignalingEvent::Error { code, message } => {
                return Err(ClientError::Refused { code, message })
            }
            other => return Err(unexpected("created, joined or full", &other)),
        };

        let (request_tx, request_rx) = mpsc::channel::<SignalingRequest>(QUEUE);
        let (event_tx, event_rx) = mpsc::channel::<SignalingEvent>(QUEUE);
        tokio::spawn(pump(ws, request_rx, event_tx));
        Ok((
            SignalingSender { tx: request_tx },
            SignalingEvents {
                id,
                created,
                rx: event_rx,
            },
        ))
    }
}

fn unexpected(expected: &'static str, got: &SignalingEvent) -> ClientError {
    ClientError::Protocol {
        expected,
        got: format!("{got:?}"),
    }
}

async fn send(ws: &mut Socket, request: &SignalingRequest) -> Result<(), ClientError> {
    ws.send(Message::text(encode(request)))
        .await
        .map_err(ClientError::Connection)
}

/// The next event, within [`ANSWER_TIMEOUT`].
async fn answer(ws: &mut Socket, expected: &'static str) -> Result<SignalingEvent, ClientError> {
    let next = async {
        while let Some(frame) = ws.next().await {
            if let Message::Text(text) = frame.map_err(ClientError::Connection)? {
                return serde_json::from_str(&text).map_err(|e| ClientError::Protocol {
                    expected,
                    got: format!("{text} ({e})"),
                });
            }
        }
        Err(ClientError::Closed)
    };
    tokio::time::timeout(ANSWER_TIMEOUT, next)
        .await
        .map_err(|_| ClientError::Timeout {
            expected,
            waited: ANSWER_TIMEOUT,
        })?
}

/// Moves requests to the socket and frames to the event queue until
/// either side is gone.
async fn pump(
    mut ws: Socket,
    mut requests: mpsc::Receiver<SignalingRequest>,
    events: mpsc::Sender<SignalingEvent>,
) {
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else {
                    // Every sender is gone: say goodbye.
                    let _ = ws.close(None).await;
                    break;
                };
                if send(&mut ws, &request).await.is_err() {
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
                        if events.send(event).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => debug!("ignoring a frame this client does not know: {e}"),
                }
            }
        }
    }
}

fn encode(request: &SignalingRequest) -> String {
    // A tagged enum of strings and JSON values always serializes.
    serde_json::to_string(request).unwrap_or_default()
}

/// Sends to the room. Cheap to clone; the connection closes when every
/// clone is dropped.
#[derive(Debug, Clone)]
pub struct SignalingSender {
    tx: mpsc::Sender<SignalingRequest>,
}

impl SignalingSender {
    /// Relays `data` (an offer, an answer, a candidate...) to the other
    /// members. Waits while the outgoing queue is full.
    pub async fn send(&self, data: Value) -> Result<(), ClientError> {
        self.request(SignalingRequest::Message { data }).await
    }

    /// Leaves the room (the connection stays open).
    pub async fn leave(&self) -> Result<(), ClientError> {
        self.request(SignalingRequest::Leave).await
    }

    /// Joins (or creates) another room, after [`SignalingSender::leave`];
    /// its outcome (`Created`, `Joined`, `Full`...) comes as an event.
    pub async fn join(&self, room: &str) -> Result<(), ClientError> {
        self.request(SignalingRequest::Join { room: room.into() })
            .await
    }

    /// Asks the server for a [`SignalingEvent::Pong`].
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.request(SignalingRequest::Ping).await
    }

    async fn request(&self, request: SignalingRequest) -> Result<(), ClientError> {
        self.tx.send(request).await.map_err(|_| ClientError::Closed)
    }
}

/// The server's events after the join, in order; ends when the connection
/// closes.
#[derive(Debug)]
pub struct SignalingEvents {
    id: String,
    created: bool,
    rx: mpsc::Receiver<SignalingEvent>,
}

impl SignalingEvents {
    /// This client's id, as the other members see it (`from` of its
    /// messages).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether this client created the room (joined it first): by the
    /// web app's convention, the side that offers once the room is
    /// [`SignalingEvent::Ready`].
    pub fn created(&self) -> bool {
        self.created
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
