//! What `realtimer serve` adds to the HTTP server for its TURN server:
//!
//! - `GET /api/ice-servers`: an `RTCConfiguration.iceServers` list for the
//!   browser pages, STUN and TURN URLs of this server with a time-limited
//!   credential in coturn's REST scheme (`use-auth-secret`): username
//!   `expiry:user`, password `base64(HMAC-SHA1(secret, username))`.
//! - `GET /metrics`: TURN, signaling and forwarding-unit counters in the
//!   Prometheus text exposition format 0.0.4.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use realtimer_server::sfu::SfuService;
use realtimer_server::Hub;
use serde_json::{json, Value};

use realtimer_turn_server::TurnHandle;

/// How the ICE servers handed to pages are made.
#[derive(Debug, Clone)]
pub(crate) struct IceServers {
    /// The REST shared secret the TURN core checks.
    pub(crate) secret: String,
    /// How long a credential is valid, in seconds.
    pub(crate) ttl: u64,
    /// The host name in the URLs; `None` for the host the page was loaded from.
    pub(crate) host: Option<String>,
    /// Port of STUN and TURN over UDP (and TCP when `tcp`).
    pub(crate) port: u16,
    /// TURN over TCP is served on `port`.
    pub(crate) tcp: bool,
    /// Port of TURN over TLS, when served.
    pub(crate) tls_port: Option<u16>,
}

impl IceServers {
    /// The list for a page loaded from `page_host` (the Host header), with
    /// a credential for `user` valid until `expiry` (Unix seconds).
    fn list(&self, page_host: &str, user: &str, expiry: u64) -> Value {
        let host = self.host.as_deref().unwrap_or(page_host);
        let port = self.port;
        let mut turn = vec![format!("turn:{host}:{port}?transport=udp")];
        if self.tcp {
            turn.push(format!("turn:{host}:{port}?transport=tcp"));
        }
        if let Some(tls) = self.tls_port {
            turn.push(format!("turns:{host}:{tls}?transport=tcp"));
        }
        let username = format!("{expiry}:{user}");
        let credential = realtimer_turn::rest_password(self.secret.as_bytes(), &username);
        json!({
            "iceServers": [
                { "urls": [format!("stun:{host}:{port}")] },
                { "urls": turn, "username": username, "credential": credential },
            ],
            "ttl": self.ttl,
        })
    }
}

/// The host part of a Host header: `example.org:8080` -> `example.org`,
/// `[::1]:8080` -> `[::1]`.
fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() => {
            if name.starts_with('[') || !name.contains(':') {
                name
            } else {
                host
            }
        }
        _ => host,
    }
}

#[derive(Clone)]
struct Shared {
    hub: Hub,
    sfu: Option<SfuService>,
    turn: TurnHandle,
    ice: IceServers,
}

/// The routes, to merge into the HTTP server's.
pub(crate) fn routes(
    hub: Hub,
    sfu: Option<SfuService>,
    turn: TurnHandle,
    ice: IceServers,
) -> Router {
    Router::new()
        .route("/api/ice-servers", get(ice_servers))
        .route("/metrics", get(metrics))
        .with_state(Shared {
            hub,
            sfu,
            turn,
            ice,
        })
}

#[allow(clippy::disallowed_methods)] // the driver owns the wall clock; credentials expire by it
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn ice_servers(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let page_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or("localhost", host_name);
    // A user name per page: REST quotas count per user, so pages do not
    // share one quota.
    let user = format!("web-{:016x}", rand::random::<u64>());
    let list = shared
        .ice
        .list(page_host, &user, unix_now() + shared.ice.ttl);
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        list.to_string(),
    )
        .into_response()
}

async fn metrics(State(shared): State<Shared>) -> Response {
    let Some(turn) = shared.turn.metrics().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "TURN server stopped\n").into_response();
    };
    let mut body = turn + &realtimer_server::web::rooms_prometheus(shared.hub.stats());
    if let Some(sfu) = &shared.sfu {
        body.push_str(&sfu.metrics().prometheus());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_lose_their_port() {
        assert_eq!(host_name("example.org:8080"), "example.org");
        assert_eq!(host_name("example.org"), "example.org");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
        assert_eq!(host_name("127.0.0.1:80"), "127.0.0.1");
    }

    #[test]
    fn the_list_has_stun_turn_and_a_rest_credential() {
        let ice = IceServers {
            secret: "north".into(),
            ttl: 3600,
            host: None,
            port: 3478,
            tcp: true,
            tls_port: Some(5349),
        };
        let list = ice.list("example.org", "web-1", 1_700_003_600);
        let servers = list["iceServers"].as_array().unwrap();
        assert_eq!(servers[0]["urls"][0], "stun:example.org:3478");
        assert_eq!(
            servers[1]["urls"],
            json!([
                "turn:example.org:3478?transport=udp",
                "turn:example.org:3478?transport=tcp",
                "turns:example.org:5349?transport=tcp"
            ])
        );
        assert_eq!(servers[1]["username"], "1700003600:web-1");
        // The password the TURN core checks for this username.
        assert_eq!(
            servers[1]["credential"],
            realtimer_turn::rest_password(b"north", "1700003600:web-1")
        );
        let pinned = IceServers {
            host: Some("turn.example.net".into()),
            tcp: false,
            tls_port: None,
            ..ice
        };
        let list = pinned.list("ignored", "u", 1);
        assert_eq!(
            list["iceServers"][1]["urls"],
            json!(["turn:turn.example.net:3478?transport=udp"])
        );
    }
}
