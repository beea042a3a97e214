//! realtimer's signaling server: a transport-independent rooms core
//! ([`rooms`]), the classic WebRTC codelab's Socket.IO protocol
//! ([`socketio`]), a plain WebSocket JSON protocol at `/ws` ([`ws`]), and the
//! web app ([`web`]), embedded in the binary or served from a folder.
//!
//! ```no_run
//! # async fn run() -> Result<(), realtimer_server::ServerError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await
//!     .map_err(realtimer_server::ServerError::Io)?;
//! realtimer_server::serve(listener, realtimer_server::ServerConfig::default()).await
//! # }
//! ```

pub mod hub;
pub mod rooms;
pub mod socketio;
pub mod web;
pub mod ws;

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

pub use hub::{Hub, Outbound};
pub use rooms::{ClientId, RoomError, Rooms, RoomsConfig};

/// Settings of the HTTP server.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Room limits.
    pub rooms: RoomsConfig,
    /// Serve the web app from this folder instead of the embedded copy.
    pub web_dir: Option<PathBuf>,
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Listening or accepting failed.
    #[error("HTTP server: {0}")]
    Io(#[from] io::Error),
}

/// The fronts take the time of each request from the wall clock; the rooms
/// core itself never reads a clock.
#[allow(clippy::disallowed_methods)] // the server driver owns the clock
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// The whole HTTP application: Socket.IO at `/socket.io/`, our Socket.IO
/// client at `/socket.io/socket.io.js`, WebSocket JSON at `/ws`, the web app
/// everywhere else.
pub fn app(hub: Hub, web_dir: Option<PathBuf>) -> Router {
    let site = web::Site::new(web_dir);
    let inner = Router::new()
        .route("/ws", get(ws::handler))
        .with_state(hub.clone())
        .fallback_service(site.clone().into_router())
        .layer(socketio::layer(hub));
    Router::new()
        .route(
            "/socket.io/socket.io.js",
            get(web::socket_io_client).with_state(site),
        )
        .fallback_service(inner)
}

/// Serves the app on `listener` until the task is dropped or accepting
/// fails.
pub async fn serve(listener: TcpListener, config: ServerConfig) -> Result<(), ServerError> {
    let hub = Hub::new(config.rooms);
    let expiry = {
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                hub.expire(now());
            }
        })
    };
    let result = axum::serve(listener, app(hub, config.web_dir)).await;
    expiry.abort();
    result.map_err(ServerError::Io)
}
