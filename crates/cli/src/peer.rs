//! What every data-channel peer of the CLI (`send`, `recv`, `chat`,
//! `bench`) shares: the options (`--server`, `--room`, `--ice-server`...),
//! joining a room of `realtimer serve` over `/ws`, the server's STUN/TURN
//! servers from `GET /api/ice-servers`, the offer/answer exchange of the
//! web app's pages (`web/js/room-peer.js`: whoever created the room offers
//! on `ready` and creates the data channel), and the exit codes.
//!
//! Signaling keeps running in a task after the channel opens (trickled
//! candidates, `bye`), and tells the verb when the other side is gone.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use realtimer::{
    DataChannel, DataChannelInit, IceTransportPolicy, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent, PeerConnectionState, RtcError, TrackLocal, TrackRemote,
};
use realtimer_signaling::{
    ClientError, ClientOptions, ErrorCode, RoomEnd, RoomEvent, RoomPeer, SessionMessage,
    SignalingClient, SignalingSender,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::ice_config;

/// How long the connection may take from the other side's arrival to an
/// open data channel (ICE checks, DTLS, SCTP): past it, `ConnectionFailed`.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Remote tracks held until the verb takes them (a call has two).
const REMOTE_TRACKS: usize = 8;

/// Options of every peer verb.
#[derive(Debug, Clone, Args)]
pub(crate) struct PeerArgs {
    /// The server: its web address (`http://HOST:PORT`, `https://...`) or
    /// its WebSocket signaling URL (`ws://HOST:PORT/ws`, `wss://...`).
    #[arg(
        long,
        env = "REALTIMER_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub(crate) server: String,

    /// The room to create or join (the web app's `?room=` parameter).
    #[arg(long, env = "REALTIMER_ROOM")]
    pub(crate) room: String,

    /// A STUN or TURN server to use instead of the server's (repeatable):
    /// `stun:HOST:PORT`, `turn:USER:PASSWORD@HOST:PORT[?transport=tcp]`,
    /// `turns:USER:PASSWORD@HOST:PORT`. `--ice-server none` uses none.
    #[arg(long = "ice-server", value_name = "URL")]
    pub(crate) ice_servers: Vec<String>,

    /// Offer loopback host candidates too (both peers on this host, no
    /// other network).
    #[arg(long, env = "REALTIMER_LOOPBACK", value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) loopback: bool,

    /// Use TURN relays only (W3C `iceTransportPolicy: "relay"`): no host
    /// or server-reflexive candidates, so the other side never learns
    /// this host's addresses.
    #[arg(long = "relay-only")]
    pub(crate) relay_only: bool,

    /// Trust this PEM CA certificate for `https://`/`wss://` and `turns:`
    /// instead of the system's (a private deployment, a test CA).
    #[arg(long = "ca-file", value_name = "PEM")]
    pub(crate) ca_file: Option<PathBuf>,

    /// Give up if the other side has not arrived after this many seconds
    /// (0: wait as long as it takes).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub(crate) wait: u64,
}

/// Why a peer verb stopped. Each cause has its own exit code
/// ([`PeerError::exit_code`]), listed in `--help`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerError {
    /// The server could not be reached or did not speak the protocol.
    #[error("{0}")]
    Unreachable(ClientError),
    /// The room already has two members.
    #[error("room {room:?} is full (two members already): choose another room")]
    RoomFull {
        /// The room.
        room: String,
    },
    /// The server refused the join or a message.
    #[error("the server refused: {code}: {message}")]
    Refused {
        /// Why, for programs.
        code: ErrorCode,
        /// Why, in words.
        message: String,
    },
    /// Signaling broke after the join.
    #[error("signaling: {0}")]
    Signaling(ClientError),
    /// The peer connection refused something.
    #[error("peer connection: {0}")]
    Rtc(#[from] RtcError),
    /// No other side within `--wait`.
    #[error("nobody joined room {room:?} within {waited:?}")]
    NobodyCame {
        /// The room.
        room: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The connection failed or took too long.
    #[error("the connection to the other side failed: {reason}")]
    ConnectionFailed {
        /// What happened.
        reason: String,
    },
    /// The other side left before the work was done.
    #[error("the other side left before the end: {what}")]
    Incomplete {
        /// What was missing.
        what: String,
    },
    /// A received file does not match its checksum.
    #[error("{name}: checksum mismatch: expected SHA-256 {expected}, got {got}")]
    Checksum {
        /// The file.
        name: String,
        /// The sender's.
        expected: String,
        /// Ours.
        got: String,
    },
    /// A local file or terminal error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A WHIP or WHEP endpoint refused us or could not be reached.
    #[error("WHIP/WHEP: {0}")]
    Whip(#[from] realtimer_signaling::whip::WhipError),
    /// The other side sent something this protocol does not allow.
    #[error("the other side broke the protocol: {0}")]
    Protocol(String),
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
}

impl PeerError {
    /// The process's exit code for this error (listed in the peers'
    /// `--help`).
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            PeerError::Unreachable(_)
            | PeerError::Refused { .. }
            | PeerError::Signaling(_)
            | PeerError::Whip(_) => 3,
            PeerError::RoomFull { .. } => 4,
            PeerError::NobodyCame { .. } | PeerError::ConnectionFailed { .. } => 5,
            PeerError::Incomplete { .. } | PeerError::Checksum { .. } => 6,
            PeerError::Interrupted => 130,
            PeerError::Rtc(_) | PeerError::Io { .. } | PeerError::Protocol(_) => 1,
        })
    }

    /// An I/O error while doing `what`.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PeerError {
        let what = what.into();
        move |source| PeerError::Io { what, source }
    }
}

impl From<ClientError> for PeerError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::RoomFull { room } => PeerError::RoomFull { room },
            ClientError::Refused { code, message } => PeerError::Refused { code, message },
            e @ (ClientError::InvalidUrl { .. }
            | ClientError::Tls { .. }
            | ClientError::Unreachable { .. }
            | ClientError::Timeout { .. }
            | ClientError::Protocol { .. }) => PeerError::Unreachable(e),
            e => PeerError::Signaling(e),
        }
    }
}

/// The `/ws` URL and the web base URL of `--server` (`http(s)://HOST`
/// or `ws(s)://HOST[/PATH]`). Another scheme is passed on as it is, for
/// the signaling client to refuse by name.
pub(crate) fn server_urls(server: &str) -> (String, String) {
    let server = server.trim_end_matches('/');
    let Some((scheme, rest)) = server.split_once("://") else {
        return (server.to_owned(), server.to_owned());
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (ws, web) = match scheme {
        "http" | "ws" => ("ws", "http"),
        "https" | "wss" => ("wss", "https"),
        _ => return (server.to_owned(), server.to_owned()),
    };
    let path = if scheme.starts_with("ws") && !path.is_empty() {
        path
    } else {
        "/ws"
    };
    (format!("{ws}://{host}{path}"), format!("{web}://{host}"))
}

/// A joined room, a peer connection, and (once the other side is here)
/// its data channel.
pub(crate) struct Peer {
    pc: PeerConnection,
    signaling: SignalingSender,
    channel: Option<oneshot::Receiver<DataChannel>>,
    /// The other side's tracks, as they come.
    tracks: mpsc::Receiver<TrackRemote>,
    /// Why the session ended, once it has (the other side left, hung up,
    /// or the connection failed).
    ended: watch::Receiver<Option<Ended>>,
    room: String,
    wait: Duration,
    /// We created the room (and so offer, and make the channel).
    created: bool,
}

/// How the session ended without us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// `bye`, or the other side left the room.
    Left,
    /// The connection failed.
    Failed,
    /// The signaling connection closed.
    SignalingClosed,
}

impl Peer {
    /// Joins `args.room`, fetches the ICE servers, makes the connection,
    /// and starts the offer/answer exchange; the data channel is labelled
    /// `label` when we create it (we created the room).
    pub(crate) async fn join(args: &PeerArgs, label: &str) -> Result<Peer, PeerError> {
        Self::join_with(args, Some(label), Vec::new()).await
    }

    /// A media peer: `tracks` are added before any offer (so an offer of
    /// ours carries them, and the other side's reuses their
    /// transceivers, RFC 8829 §5.10); no data channel; the other side's
    /// tracks come from [`Peer::remote_track`].
    pub(crate) async fn join_media(
        args: &PeerArgs,
        tracks: Vec<TrackLocal>,
    ) -> Result<Peer, PeerError> {
        Self::join_with(args, None, tracks).await
    }

    async fn join_with(
        args: &PeerArgs,
        label: Option<&str>,
        tracks: Vec<TrackLocal>,
    ) -> Result<Peer, PeerError> {
        let (ws_url, web_url) = server_urls(&args.server);
        let ca_pem = match &args.ca_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(PeerError::io(format!("reading {}", path.display())))?,
            ),
            None => None,
        };
        let options = match &ca_pem {
            Some(pem) => ClientOptions::trusting_pem(pem)?,
            None => ClientOptions::default(),
        };
        let (signaling, room) =
            SignalingClient::connect_with(&ws_url, &args.room, &options).await?;
        let initiator = room.created();
        info!(url = %ws_url, room = %args.room, created = initiator, "in the room");

        let ice_servers = if args.ice_servers.is_empty() {
            match ice_config::fetch(&web_url, options.tls.clone()).await {
                Ok(servers) => servers,
                Err(e) => {
                    warn!("no STUN/TURN servers from {web_url}/api/ice-servers: {e}");
                    Vec::new()
                }
            }
        } else {
            ice_config::parse_overrides(&args.ice_servers)
                .map_err(|e| PeerError::Protocol(format!("--ice-server: {e}")))?
        };
        debug!(?ice_servers, "ICE servers");
        let mut config = PeerConnectionConfig::default().with_loopback(args.loopback);
        config.ice_servers = ice_servers;
        config.turn_tls_ca_pem = ca_pem;
        if args.relay_only {
            config.ice_transport_policy = IceTransportPolicy::Relay;
        }
        let pc = PeerConnection::new(config).await?;
        for track in tracks {
            pc.add_track(track).await?;
        }
        let room = RoomPeer::new(signaling.clone(), room, pc.clone()).map_err(|e| {
            PeerError::ConnectionFailed {
                reason: e.to_string(),
            }
        })?;
        let (channel_tx, channel_rx) = oneshot::channel();
        let (ended_tx, ended_rx) = watch::channel(None);
        let (tracks_tx, tracks_rx) = mpsc::channel(REMOTE_TRACKS);
        let driver = Driver {
            label: label.map(str::to_owned),
            channel: Some(channel_tx),
            tracks: tracks_tx,
            ended: ended_tx,
        };
        tokio::spawn(driver.run(room));
        Ok(Peer {
            pc,
            signaling,
            channel: Some(channel_rx),
            tracks: tracks_rx,
            ended: ended_rx,
            room: args.room.clone(),
            wait: Duration::from_secs(args.wait),
            created: initiator,
        })
    }

    /// Whether we created the room (the first member: the one that offers).
    pub(crate) fn created_room(&self) -> bool {
        self.created
    }

    /// Waits for the other side and the open data channel.
    pub(crate) async fn channel(&mut self) -> Result<DataChannel, PeerError> {
        let Some(rx) = self.channel.take() else {
            return Err(PeerError::Protocol("the channel was already taken".into()));
        };
        let wait = async {
            if self.wait.is_zero() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(self.wait).await;
        };
        let channel = tokio::select! {
            channel = rx => channel.map_err(|_| self.ended_error("before the data channel opened"))?,
            () = wait => {
                return Err(PeerError::NobodyCame { room: self.room.clone(), waited: self.wait });
            }
        };
        info!(
            label = channel.label(),
            "the other side is here: connecting"
        );
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, channel.wait_open()).await;
        match opened {
            Ok(true) => {
                info!(label = channel.label(), "data channel open");
                log_route(&self.pc).await;
                Ok(channel)
            }
            Ok(false) => Err(self.ended_error("the data channel closed before it opened")),
            Err(_) => Err(PeerError::ConnectionFailed {
                reason: format!(
                    "no open data channel within {CONNECT_TIMEOUT:?} (state {})",
                    self.pc.connection_state()
                ),
            }),
        }
    }

    /// Waits for the other side and a connected connection (media peers).
    pub(crate) async fn connected(&self) -> Result<(), PeerError> {
        let wait = async {
            if self.wait.is_zero() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(self.wait).await;
        };
        tokio::select! {
            () = self.pc.wait_for_connection_state(PeerConnectionState::Connected) => {}
            () = wait => {
                return Err(PeerError::NobodyCame { room: self.room.clone(), waited: self.wait });
            }
        }
        if self.pc.connection_state() == PeerConnectionState::Connected {
            info!("connected");
            log_route(&self.pc).await;
            Ok(())
        } else {
            Err(self.ended_error("before the connection was up"))
        }
    }

    /// The next track of the other side; `None` once the session is over.
    pub(crate) async fn remote_track(&mut self) -> Option<TrackRemote> {
        self.tracks.recv().await
    }

    /// The error for the session having ended while `when`.
    fn ended_error(&self, when: &str) -> PeerError {
        match self.ended.borrow().clone() {
            Some(Ended::Failed) | None => PeerError::ConnectionFailed {
                reason: when.to_owned(),
            },
            Some(Ended::Left) => PeerError::Incomplete {
                what: format!("the other side left {when}"),
            },
            Some(Ended::SignalingClosed) => {
                PeerError::Signaling(realtimer_signaling::ClientError::Closed)
            }
        }
    }

    /// What resolves once the session ended without us (held apart from
    /// the peer, to wait on while it is borrowed).
    pub(crate) fn ended(&self) -> EndedWatch {
        EndedWatch(self.ended.clone())
    }

    /// Hangs up: `bye` to the other side, the connection closed, the room
    /// left.
    pub(crate) async fn hang_up(self) {
        if self.ended.borrow().is_none() {
            let _ = self.signaling.send(SessionMessage::Bye.to_value()).await;
        }
        self.pc.close().await;
        let _ = self.signaling.leave().await;
        // Let the bye and the leave reach the server before the socket
        // closes with the process.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Logs the selected candidate pair (RFC 8445 §8.1), each end as its
/// type, transport and address: `host` is direct, `srflx`/`prflx`
/// through a NAT, `relay` through a TURN server (what troubleshooting
/// "connected, but how?" needs first).
async fn log_route(pc: &PeerConnection) {
    let Ok(stats) = pc.get_stats().await else {
        return;
    };
    let Some(pair) = stats.selected_candidate_pair() else {
        return;
    };
    let describe = |id: &str| {
        stats.candidate(id).map_or_else(String::new, |c| {
            let transport = c.relay_protocol.unwrap_or(c.protocol);
            format!("{} {transport} {}:{}", c.candidate_type, c.address, c.port)
        })
    };
    info!(
        local = describe(&pair.local_candidate_id),
        remote = describe(&pair.remote_candidate_id),
        "route"
    );
}

/// See [`Peer::ended`].
pub(crate) struct EndedWatch(pub(crate) watch::Receiver<Option<Ended>>);

impl EndedWatch {
    /// Resolves once the session ended without us, with how.
    pub(crate) async fn wait(mut self) -> Ended {
        match self.0.wait_for(Option::is_some).await {
            Ok(ended) => ended.clone().unwrap_or(Ended::SignalingClosed),
            Err(_) => Ended::SignalingClosed,
        }
    }
}

/// How long [`close_channel`] waits for the other side to close its end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Closes `channel` and waits (a while) until it is closed: the stream
/// reset (RFC 8831 §6.7) is done only once the other side has received
/// everything sent before it, so what was sent is delivered before the
/// connection goes.
pub(crate) async fn close_channel(channel: &DataChannel) {
    channel.close().await;
    if tokio::time::timeout(CLOSE_TIMEOUT, channel.wait_closed())
        .await
        .is_err()
    {
        debug!("the data channel did not close within {CLOSE_TIMEOUT:?}");
    }
}

/// A rate in MB/s (10^6 bytes) for the summary lines and tables.
pub(crate) fn rate(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64().max(1e-6) / 1e6
}

/// Resolves on Ctrl-C (never, if the handler cannot be installed).
pub(crate) async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs the room session in its own task: hands the verb its data
/// channel and the other side's tracks, and says how the session ended.
struct Driver {
    /// The data channel to create when we offer.
    label: Option<String>,
    channel: Option<oneshot::Sender<DataChannel>>,
    tracks: mpsc::Sender<TrackRemote>,
    ended: watch::Sender<Option<Ended>>,
}

impl Driver {
    async fn run(mut self, mut room: RoomPeer) {
        let ended = loop {
            match room.next().await {
                Ok(RoomEvent::Arrived) => {
                    if let Err(e) = self.arrived(&room).await {
                        warn!("{e}");
                        break Ended::Failed;
                    }
                }
                Ok(RoomEvent::Connection(event)) => self.on_connection(event),
                Ok(RoomEvent::Refused(e)) => warn!("signaling message refused: {e}"),
                Ok(RoomEvent::Ended(RoomEnd::HungUp | RoomEnd::Left)) => break Ended::Left,
                Ok(RoomEvent::Ended(RoomEnd::SignalingClosed)) => break Ended::SignalingClosed,
                Ok(RoomEvent::Ended(_)) => break Ended::Failed,
                Ok(_) => {}
                Err(e) => {
                    warn!("{e}");
                    break Ended::SignalingClosed;
                }
            }
        };
        let _ = self.ended.send(Some(ended));
    }

    /// The other side is here: as the room's creator we make the channel
    /// now, so that it is in the offer that goes out next (the page's
    /// convention).
    async fn arrived(&mut self, room: &RoomPeer) -> Result<(), RtcError> {
        let Some(label) = self.label.as_deref().filter(|_| room.created()) else {
            return Ok(());
        };
        let channel = room
            .peer_connection()
            .create_data_channel(label, DataChannelInit::default())
            .await?;
        if let Some(tx) = self.channel.take() {
            let _ = tx.send(channel);
        }
        Ok(())
    }

    fn on_connection(&mut self, event: PeerConnectionEvent) {
        match event {
            PeerConnectionEvent::ConnectionStateChange(state) => debug!(%state, "connection"),
            PeerConnectionEvent::Track(track) => {
                let full = self.tracks.try_send(track).is_err();
                if full {
                    debug!("more remote tracks than wanted: ignored");
                }
            }
            PeerConnectionEvent::DataChannel(channel) => match self.channel.take() {
                Some(tx) => {
                    let _ = tx.send(channel);
                }
                None => debug!(label = channel.label(), "another data channel: ignored"),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_from_web_and_ws_forms() {
        let both = |s: &str| server_urls(s);
        assert_eq!(
            both("http://127.0.0.1:8080"),
            (
                "ws://127.0.0.1:8080/ws".into(),
                "http://127.0.0.1:8080".into()
            )
        );
        assert_eq!(
            both("https://h.example/"),
            ("wss://h.example/ws".into(), "https://h.example".into())
        );
        assert_eq!(
            both("ws://127.0.0.1:8080/ws"),
            (
                "ws://127.0.0.1:8080/ws".into(),
                "http://127.0.0.1:8080".into()
            )
        );
        assert_eq!(
            both("wss://h.example"),
            ("wss://h.example/ws".into(), "https://h.example".into())
        );
    }
}
