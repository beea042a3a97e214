//! `realtimer whip URL FILE...` and `realtimer whep URL OUT`: publish
//! media files to a WHIP endpoint (RFC 9725), record what a WHEP endpoint
//! (draft-ietf-wish-whep) plays. The files go through the same code as
//! `play` and `record`; only the session differs: one HTTP POST of our
//! offer instead of a room, our candidates trickled by PATCH, DELETE at
//! the end.

use std::path::PathBuf;

use clap::Args;
use realtimer::{
    PeerConnection, PeerConnectionConfig, PeerConnectionEvent, PeerConnectionEvents,
    PeerConnectionState, SessionDescription, TrackLocal, TrackRemote,
};
use realtimer_signaling::whip::WhipClient;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::media::{self, MediaSession};
use crate::peer::{Ended, EndedWatch, PeerError};

/// How the endpoint is reached (both verbs).
#[derive(Debug, Args)]
pub(crate) struct EndpointArgs {
    /// The bearer token the endpoint wants (`Authorization: Bearer`,
    /// RFC 9725 §4.5).
    #[arg(long, env = "REALTIMER_WHIP_TOKEN")]
    token: Option<String>,
    /// Offer loopback host candidates too (the server on this host).
    #[arg(long, env = "REALTIMER_LOOPBACK", value_parser = clap::builder::BoolishValueParser::new())]
    loopback: bool,
}

/// `realtimer whip` options.
#[derive(Debug, Args)]
pub(crate) struct WhipArgs {
    /// The WHIP endpoint (`http://HOST:PORT/whip/ROOM` on `realtimer
    /// serve`).
    #[arg(value_name = "URL")]
    url: String,
    /// An IVF file (VP8, VP9) and/or an Ogg Opus file.
    #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Play the files again and again (until Ctrl-C or the server ends
    /// the session).
    #[arg(long = "loop")]
    repeat: bool,
    #[command(flatten)]
    endpoint: EndpointArgs,
}

/// `realtimer whep` options.
#[derive(Debug, Args)]
pub(crate) struct WhepArgs {
    /// The WHEP endpoint (`http://HOST:PORT/whep/ROOM` on `realtimer
    /// serve`).
    #[arg(value_name = "URL")]
    url: String,
    /// The file to write: `.ivf` (video), `.ogg` (audio) or `.webm`
    /// (both).
    #[arg(value_name = "OUT")]
    out: PathBuf,
    /// Stop after this many seconds (default: when the server ends the
    /// session, or Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    seconds: Option<f64>,
    #[command(flatten)]
    endpoint: EndpointArgs,
}

/// Runs `realtimer whip`.
pub(crate) async fn whip(args: WhipArgs) -> Result<(), PeerError> {
    let playlist = media::Playlist::open(&args.files, "realtimer-whip").await?;
    let session = WhipSession::start(&args.url, &args.endpoint, playlist.tracks()).await?;
    media::play_on(session, playlist, args.repeat).await
}

/// Runs `realtimer whep`.
pub(crate) async fn whep(args: WhepArgs) -> Result<(), PeerError> {
    let recording = media::Recording::create(&args.out)?;
    let session =
        WhipSession::start(&args.url, &args.endpoint, media::record_tracks(None).await?).await?;
    media::record_on(session, recording, args.seconds).await
}

/// A WHIP or WHEP session: the connection, the endpoint's session, the
/// tracks the server sends.
pub(crate) struct WhipSession {
    pc: PeerConnection,
    client: WhipClient,
    tracks: mpsc::Receiver<TrackRemote>,
    ended: watch::Receiver<Option<Ended>>,
}

/// Remote tracks waiting to be taken (a WHEP viewer gets one per kind).
const REMOTE_TRACKS: usize = 8;

impl WhipSession {
    /// Offers `tracks` (sending on a WHIP endpoint, receiving the room's
    /// on a WHEP one) to `url` and applies the answer.
    async fn start(
        url: &str,
        endpoint: &EndpointArgs,
        tracks: Vec<TrackLocal>,
    ) -> Result<WhipSession, PeerError> {
        let config = PeerConnectionConfig::default().with_loopback(endpoint.loopback);
        let pc = PeerConnection::new(config).await?;
        for track in tracks {
            pc.add_track(track).await?;
        }
        let events = pc.events().ok_or_else(|| PeerError::ConnectionFailed {
            reason: "the connection's events were taken".into(),
        })?;
        let offer = pc.create_offer().await?;
        pc.set_local_description(offer.clone()).await?;
        let mut client = WhipClient::new(url, endpoint.token.as_deref())?;
        let answer = client.offer(&offer.sdp).await?;
        info!(
            session = client.session().unwrap_or_default(),
            "session created"
        );
        pc.set_remote_description(SessionDescription::answer(answer))
            .await?;
        let (tracks_tx, tracks) = mpsc::channel(REMOTE_TRACKS);
        let (ended_tx, ended) = watch::channel(None);
        tokio::spawn(drive(events, client.clone(), tracks_tx, ended_tx));
        Ok(WhipSession {
            pc,
            client,
            tracks,
            ended,
        })
    }
}

/// Trickles our candidates to the session (RFC 8840 fragments by PATCH),
/// hands on the server's tracks, and notes a failed connection.
async fn drive(
    mut events: PeerConnectionEvents,
    client: WhipClient,
    tracks: mpsc::Sender<TrackRemote>,
    ended: watch::Sender<Option<Ended>>,
) {
    while let Some(event) = events.recv().await {
        match event {
            PeerConnectionEvent::IceCandidate(Some(c)) => {
                let mid = c.sdp_mid.clone().unwrap_or_else(|| "0".into());
                // A server that takes no trickle (405) has our host
                // candidates in the offer already.
                if let Err(e) = client.trickle(&mid, &[c.candidate]).await {
                    debug!("candidate not trickled: {e}");
                }
            }
            PeerConnectionEvent::ConnectionStateChange(state) => {
                debug!(%state, "connection");
                if matches!(
                    state,
                    PeerConnectionState::Failed | PeerConnectionState::Closed
                ) {
                    let _ = ended.send(Some(Ended::Failed));
                    return;
                }
            }
            PeerConnectionEvent::Track(track) => {
                let full = tracks.try_send(track).is_err();
                if full {
                    debug!("more remote tracks than wanted: ignored");
                }
            }
            _ => {}
        }
    }
    let _ = ended.send(Some(Ended::Failed));
}

impl MediaSession for WhipSession {
    async fn connected(&self) -> Result<(), PeerError> {
        let up = tokio::time::timeout(
            crate::peer::CONNECT_TIMEOUT,
            self.pc
                .wait_for_connection_state(PeerConnectionState::Connected),
        )
        .await;
        if up.is_ok() && self.pc.connection_state() == PeerConnectionState::Connected {
            info!("connected");
            Ok(())
        } else {
            Err(PeerError::ConnectionFailed {
                reason: format!(
                    "no connection to the server (state {})",
                    self.pc.connection_state()
                ),
            })
        }
    }

    fn ended(&self) -> EndedWatch {
        EndedWatch(self.ended.clone())
    }

    async fn remote_track(&mut self) -> Option<TrackRemote> {
        self.tracks.recv().await
    }

    async fn hang_up(mut self) {
        if let Err(e) = self.client.delete().await {
            warn!("the session was not deleted: {e}");
        }
        self.pc.close().await;
    }
}
