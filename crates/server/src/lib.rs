//! realtimer's signaling server: a transport-independent rooms core
//! ([`rooms`]), the classic WebRTC codelab's Socket.IO protocol
//! ([`socketio`]), a plain WebSocket JSON protocol at `/ws` ([`ws`]), and the
//! web app ([`web`]), embedded in the binary or served from a folder;
//! [`cluster`] shares rooms between processes through Redis; [`config`]
//! reads `--config`. The wire types of both protocols, and a Rust client
//! for `/ws`, are the `realtimer-signaling` crate's.
//!
//! ```no_run
//! # async fn run() -> Result<(), realtimer_server::ServerError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await
//!     .map_err(realtimer_server::ServerError::Io)?;
//! realtimer_server::serve(listener, realtimer_server::ServerConfig::default()).await
//! # }
//! ```

pub mod cluster;
pub mod config;
pub mod hub;
pub mod latency;
pub mod rooms;
pub mod sfu;
pub mod socketio;
pub mod web;
pub mod ws;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

pub use cluster::{ClusterConfig, ClusterError};
pub use config::{ConfigError, ConfigFile, SignalingArgs, TurnSection};
pub use hub::{Hub, Outbound, Relayed};
pub use rooms::{ClientId, RoomError, Rooms, RoomsConfig};

/// Settings of the HTTP server.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Room limits.
    pub rooms: RoomsConfig,
    /// Serve the web app from this folder instead of the embedded copy.
    pub web_dir: Option<PathBuf>,
    /// Share rooms with other server processes through Redis.
    pub cluster: Option<ClusterConfig>,
    /// Serve HTTPS and WSS instead of HTTP and WS.
    pub tls: Option<TlsConfig>,
    /// Run the selective forwarding unit (group calls on `/ws`, WHIP and
    /// WHEP) with these settings.
    pub sfu: Option<sfu::SfuSettings>,
}

/// A certificate and key for HTTPS (browsers need a secure context for the
/// camera on any host but localhost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsConfig {
    /// Reads the files into a rustls server configuration (ring provider,
    /// TLS 1.2 and 1.3, HTTP/1.1 by ALPN).
    pub fn load(&self) -> Result<rustls::ServerConfig, ServerError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad =
            |path: &PathBuf, why: String| ServerError::Tls(format!("{}: {why}", path.display()));
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| bad(&self.cert, e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&self.cert, e.to_string()))?;
        if certs.is_empty() {
            return Err(bad(&self.cert, "no certificate in the file".into()));
        }
        let key =
            PrivateKeyDer::from_pem_file(&self.key).map_err(|e| bad(&self.key, e.to_string()))?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ServerError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad(&self.cert, e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Listening or accepting failed.
    #[error("HTTP server: {0}")]
    Io(#[from] io::Error),
    /// The shared rooms (Redis) could not be set up.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The forwarding unit could not start.
    #[error(transparent)]
    Sfu(#[from] sfu::SfuStartError),
    /// The forwarding unit's room placement (Redis) could not start.
    #[error(transparent)]
    Placement(#[from] sfu::placement::PlacementError),
}

/// `http[s]://ADDRESS` of the listener, unless it listens on a wildcard
/// address (which says nothing of how clients reach it).
fn listening_url(listener: &TcpListener, tls: bool) -> Option<String> {
    let address = listener.local_addr().ok()?;
    if address.ip().is_unspecified() {
        return None;
    }
    let scheme = if tls { "https" } else { "http" };
    Some(format!("{scheme}://{address}"))
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
        .layer(socketio::layer(hub))
        .layer(axum::middleware::map_request(socketio::own_request_head));
    Router::new()
        .route("/socket.io/socket.io.js", get(web::socket_io_client))
        .fallback_service(inner)
}

/// Serves the app on `listener` until the task is dropped or accepting
/// fails.
pub async fn serve(listener: TcpListener, config: ServerConfig) -> Result<(), ServerError> {
    start(listener, config).await?.run().await
}

/// A server ready to run: its TLS settings loaded and, with a cluster,
/// connected to Redis. Setting up first lets a caller report a bad
/// certificate or an unreachable Redis before it serves anything.
#[derive(Debug)]
pub struct Prepared {
    listener: TcpListener,
    hub: Hub,
    app: Router,
    tls: Option<rustls::ServerConfig>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    sfu: Option<sfu::SfuService>,
}

/// Loads the TLS files and joins the cluster (if configured).
pub async fn start(listener: TcpListener, config: ServerConfig) -> Result<Prepared, ServerError> {
    let tls = config.tls.as_ref().map(TlsConfig::load).transpose()?;
    let (hub, mut tasks) = match config.cluster.clone() {
        Some(cluster) => cluster::start(config.rooms, cluster).await?,
        None => (Hub::new(config.rooms), Vec::new()),
    };
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
    tasks.push(expiry);
    tasks.push(tokio::spawn(latency::report(
        hub.clone(),
        Duration::from_secs(5),
    )));
    let mut app = app(hub.clone(), config.web_dir);
    let sfu = match config.sfu {
        Some(settings) => {
            let public_url = settings
                .public_url
                .clone()
                .or_else(|| listening_url(&listener, tls.is_some()));
            let service = sfu::SfuService::start(settings).await?;
            let placement = match (&config.cluster, public_url) {
                (Some(cluster), Some(public_url)) => {
                    let placement_config = sfu::placement::PlacementConfig {
                        redis_url: cluster.url.clone(),
                        prefix: cluster.prefix.clone(),
                        public_url,
                        node_ttl: cluster.node_ttl,
                    };
                    let (placement, task) =
                        sfu::placement::Placement::start(placement_config, service.clone()).await?;
                    tasks.push(task);
                    Some(placement)
                }
                (Some(_), None) => {
                    tracing::warn!(
                        "the forwarding unit's rooms are not placed across nodes: \
                         the server listens on a wildcard address, so set --sfu-public-url"
                    );
                    None
                }
                (None, _) => None,
            };
            app = app
                .merge(sfu::whip::routes(service.clone(), placement.clone()))
                .layer(axum::Extension(service.clone()));
            if let Some(placement) = placement {
                // `/ws` group calls are placed too.
                app = app.layer(axum::Extension(placement));
            }
            Some(service)
        }
        None => None,
    };
    Ok(Prepared {
        listener,
        hub,
        app,
        tls,
        tasks,
        sfu,
    })
}

impl Prepared {
    /// True when it serves HTTPS/WSS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The rooms, e.g. for their counts ([`web::rooms_prometheus`]).
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The forwarding unit, when it runs.
    pub fn sfu(&self) -> Option<&sfu::SfuService> {
        self.sfu.as_ref()
    }

    /// Adds the embedding program's routes (e.g. `/metrics`), which take
    /// precedence over the web app's files.
    pub fn merge(mut self, routes: Router) -> Self {
        self.app = self.app.merge(routes);
        self
    }

    /// Serves until the task is dropped or accepting fails.
    pub async fn run(self) -> Result<(), ServerError> {
        let Prepared {
            listener,
            hub: _,
            app,
            tls,
            tasks,
            sfu: _,
        } = self;
        // Signaling is small messages that must go now: no Nagle delay
        // (else a message written while an earlier one is unacknowledged
        // can wait for the peer's delayed ACK, tens of milliseconds).
        let result = match tls {
            None => {
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app).await
            }
            Some(tls) => {
                let rustls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
                match listener
                    .into_std()
                    .and_then(|l| axum_server::from_tcp_rustls(l, rustls))
                {
                    Ok(server) => {
                        let server = server
                            .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()));
                        server.serve(app.into_make_service()).await
                    }
                    Err(e) => Err(e),
                }
            }
        };
        for task in tasks {
            task.abort();
        }
        result.map_err(ServerError::Io)
    }
}
