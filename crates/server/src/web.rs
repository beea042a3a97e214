//! The web app (the repository's `web/` folder): embedded in the binary at
//! build time, or read from a folder on each request (`--web-dir`) while
//! developing it.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};
use tracing::debug;

/// The `web/` folder as it was at build time.
static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// Our Socket.IO client script, built in (see [`socket_io_client`]).
const SOCKET_IO_CLIENT: &str = include_str!("../../../web/socket.io/socket.io.js");

/// Where pages come from.
#[derive(Debug, Clone)]
pub struct Site {
    dir: Option<PathBuf>,
}

impl Site {
    /// The embedded app, or the one in `dir`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// A router answering every GET with a file of the app.
    pub fn into_router(self) -> Router {
        Router::new().fallback(get(page)).with_state(self)
    }

    /// The bytes of `path` (relative, already checked), if it exists.
    async fn read(&self, path: &str) -> Option<Vec<u8>> {
        match &self.dir {
            None => EMBEDDED.get_file(path).map(|f| f.contents().to_vec()),
            Some(dir) => tokio::fs::read(dir.join(path)).await.ok(),
        }
    }

    async fn respond(&self, path: &str) -> Response {
        match self.read(path).await {
            Some(bytes) => (
                [
                    (header::CONTENT_TYPE, content_type(path)),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                Body::from(bytes),
            )
                .into_response(),
            None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
        }
    }
}

/// Maps a URL path to a file of the app: `/` and `.../` to `index.html`;
/// no `..`, hidden files or backslashes.
fn file_for(uri_path: &str) -> Option<String> {
    let mut path = uri_path.trim_start_matches('/').to_owned();
    if path.is_empty() || path.ends_with('/') {
        path.push_str("index.html");
    }
    let safe = path
        .split('/')
        .all(|seg| !seg.is_empty() && !seg.starts_with('.') && !seg.contains('\\'));
    safe.then_some(path)
}

async fn page(State(site): State<Site>, uri: Uri) -> Response {
    match file_for(uri.path()) {
        Some(path) => site.respond(&path).await,
        None => {
            debug!(path = uri.path(), "refused a web path");
            (StatusCode::NOT_FOUND, "not found\n").into_response()
        }
    }
}

/// `GET /socket.io/socket.io.js`: our small Socket.IO client (`io()`,
/// `io.connect()`, `emit`, `on`; Engine.IO v4 over WebSocket), which the
/// codelab's pages load from the signaling server.
///
/// It belongs to the server, not to the pages: like a Socket.IO server, we
/// serve the copy built into the binary whatever `--web-dir` says, so a
/// folder of pages (the codelab's step folders) needs no copy of it.
pub async fn socket_io_client() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SOCKET_IO_CLIENT,
    )
        .into_response()
}

/// The rooms' counts in the Prometheus text exposition format (0.0.4),
/// for a `/metrics` route.
pub fn rooms_prometheus(stats: crate::rooms::RoomsStats) -> String {
    let lines = [
        (
            "clients",
            "gauge",
            "Signaling clients connected now.",
            stats.clients as u64,
        ),
        (
            "rooms",
            "gauge",
            "Signaling rooms open now.",
            stats.rooms as u64,
        ),
        (
            "messages_relayed_total",
            "counter",
            "Signaling messages relayed.",
            stats.relayed,
        ),
        (
            "rejections_total",
            "counter",
            "Signaling requests refused.",
            stats.refused,
        ),
        (
            "slow_clients_dropped_total",
            "counter",
            "Signaling clients dropped because their outbound queue was full.",
            stats.slow_clients_dropped,
        ),
        (
            "cluster_commands_dropped_total",
            "counter",
            "Room events and joins refused because the queue to Redis was full.",
            stats.cluster_commands_dropped,
        ),
        (
            "cluster_events_lost_total",
            "counter",
            "Room events for other processes given up (Redis unreachable too long, or unheard).",
            stats.cluster_events_lost,
        ),
        (
            "cluster_duplicates_dropped_total",
            "counter",
            "Room events from other processes heard twice and dropped.",
            stats.cluster_duplicates_dropped,
        ),
    ];
    lines
        .iter()
        .map(|(name, kind, help, value)| {
            format!(
                "# HELP realtimer_signaling_{name} {help}\n# TYPE realtimer_signaling_{name} {kind}\nrealtimer_signaling_{name} {value}\n"
            )
        })
        .collect()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("md" | "txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_files_safely() {
        assert_eq!(file_for("/").as_deref(), Some("index.html"));
        assert_eq!(file_for("/uc/").as_deref(), Some("uc/index.html"));
        assert_eq!(file_for("/js/app.js").as_deref(), Some("js/app.js"));
        assert_eq!(file_for("/../etc/passwd"), None);
        assert_eq!(file_for("/a//b"), None);
        assert_eq!(file_for("/.git/config"), None);
        assert_eq!(file_for("/a\\..\\b"), None);
    }

    #[test]
    fn rooms_counts_render_as_prometheus_text() {
        let text = rooms_prometheus(crate::rooms::RoomsStats {
            rooms: 2,
            clients: 3,
            relayed: 40,
            refused: 1,
            slow_clients_dropped: 5,
            cluster_events_lost: 6,
            ..Default::default()
        });
        assert!(text
            .contains("# TYPE realtimer_signaling_clients gauge\nrealtimer_signaling_clients 3\n"));
        assert!(text.contains("realtimer_signaling_rooms 2\n"));
        assert!(text.contains("realtimer_signaling_messages_relayed_total 40\n"));
        assert!(text.contains("realtimer_signaling_rejections_total 1\n"));
        assert!(text.contains("realtimer_signaling_slow_clients_dropped_total 5\n"));
        assert!(text.contains("realtimer_signaling_cluster_events_lost_total 6\n"));
    }

    #[test]
    fn the_app_is_embedded() {
        assert!(EMBEDDED.get_file("index.html").is_some());
        // The built-in client is the script the web app ships.
        let shipped = EMBEDDED.get_file("socket.io/socket.io.js").unwrap();
        assert_eq!(shipped.contents(), SOCKET_IO_CLIENT.as_bytes());
    }
}
