//! [`RoomPeer`]: a `realtimer::PeerConnection` in a room of `realtimer
//! serve`, with the web app's convention (`web/js/room-peer.js`): the
//! room's creator offers once the other side is there, both trickle
//! candidates, either says `bye`. The CLI's peers, `realtimer echo` and
//! the examples all run this one loop.

use std::future::Future;
use std::time::Duration;

use realtimer::RtcError;
use realtimer::{PeerConnection, PeerConnectionEvent, PeerConnectionEvents, PeerConnectionState};
use tracing::{debug, info, warn};

use crate::client::{
    ClientError, ClientOptions, SignalingClient, SignalingEvents, SignalingSender,
};
use crate::peer::{Handled, PeerSession};
use crate::session::SessionMessage;
use crate::ws::{ErrorCode, SignalingEvent};

/// How long [`RoomPeer::hang_up`] lets the `bye` and the leave reach the
/// server before the socket may drop with the process.
const FAREWELL: Duration = Duration::from_millis(50);

/// What [`RoomPeer::next`] has for the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum RoomEvent {
    /// The other side is in the room. When we created it, our offer goes
    /// out at the next call of [`RoomPeer::next`], so that a data channel
    /// or a track made now is in it.
    Arrived,
    /// An event of the connection, except its candidates (which the room
    /// peer trickles itself) and the failed state (which is
    /// [`RoomEnd::Failed`]).
    Connection(PeerConnectionEvent),
    /// A message of the other side that the connection refused (a
    /// description it cannot apply, a candidate it cannot add, W3C
    /// webrtc-pc's exceptions). The session goes on; the application
    /// says it or stops.
    Refused(RtcError),
    /// The session is over.
    Ended(RoomEnd),
}

/// Why a room session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomEnd {
    /// The other side said `bye`.
    HungUp,
    /// The other side left the room.
    Left,
    /// The connection state went to failed (RFC 8445 §8: no pair works).
    Failed,
    /// The connection closed (its events ended).
    ConnectionClosed,
    /// The signaling connection closed.
    SignalingClosed,
    /// [`RoomPeer::run`]'s `until` completed: we said `bye`.
    Finished,
}

/// Why a room peer could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// Signaling failed: the server unreachable, the room full, the
    /// socket gone.
    #[error("signaling: {0}")]
    Signaling(#[from] ClientError),
    /// The connection refused our own call (createOffer, an answer).
    #[error("peer connection: {0}")]
    Rtc(#[from] RtcError),
    /// The server refused a request once in the room.
    #[error("the server refused: {code}: {message}")]
    Refused {
        /// Why, for programs.
        code: ErrorCode,
        /// Why, in words.
        message: String,
    },
    /// The connection's event stream was taken before the room peer
    /// could.
    #[error("the connection's events were taken")]
    EventsTaken,
    /// [`RoomPeer::run`]: the connection failed ([`RoomEnd::Failed`]).
    #[error("the connection failed")]
    ConnectionFailed,
}

/// A [`PeerConnection`] driven through a room: the messages of the other
/// side go to a [`PeerSession`] (which holds candidates that come before
/// their description), our candidates and answers go back, and what is
/// left is the application's ([`RoomEvent`]).
///
/// ```no_run
/// # async fn run() -> Result<(), realtimer_signaling::RoomError> {
/// use realtimer::{PeerConnection, PeerConnectionConfig};
/// use realtimer_signaling::{ClientOptions, RoomEvent, RoomPeer};
///
/// let pc = PeerConnection::new(PeerConnectionConfig::default()).await?;
/// let options = ClientOptions::default();
/// let mut room = RoomPeer::join("ws://127.0.0.1:8080/ws", "demo", &options, pc).await?;
/// loop {
///     match room.next().await? {
///         RoomEvent::Connection(event) => println!("{event:?}"),
///         RoomEvent::Ended(why) => break println!("over: {why:?}"),
///         _ => {}
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct RoomPeer {
    signaling: SignalingSender,
    members: SignalingEvents,
    session: PeerSession,
    events: PeerConnectionEvents,
    /// We created the room: we offer.
    created: bool,
    /// The other side arrived and our offer is yet to go.
    offer_due: bool,
    /// Set once the session is over (no `bye` to send then).
    ended: bool,
}

impl std::fmt::Debug for RoomPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomPeer")
            .field("room_member", &self.members.id())
            .field("created", &self.created)
            .field("offer_due", &self.offer_due)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl RoomPeer {
    /// Joins `room` at the `/ws` URL `url` with `pc`.
    pub async fn join(
        url: &str,
        room: &str,
        options: &ClientOptions,
        pc: PeerConnection,
    ) -> Result<RoomPeer, RoomError> {
        let (signaling, members) = SignalingClient::connect_with(url, room, options).await?;
        info!(%url, room, created = members.created(), "in the room");
        RoomPeer::new(signaling, members, pc)
    }

    /// A room peer for a room already joined (`members` is the join's
    /// event stream), driving `pc`; takes `pc`'s events.
    pub fn new(
        signaling: SignalingSender,
        members: SignalingEvents,
        pc: PeerConnection,
    ) -> Result<RoomPeer, RoomError> {
        let events = pc.events().ok_or(RoomError::EventsTaken)?;
        Ok(RoomPeer {
            signaling,
            created: members.created(),
            members,
            session: PeerSession::new(pc),
            events,
            offer_due: false,
            ended: false,
        })
    }

    /// Whether we created the room (and so offer).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The connection it drives.
    pub fn peer_connection(&self) -> &PeerConnection {
        self.session.peer_connection()
    }

    /// The signaling sender, for the application's own messages.
    pub fn signaling(&self) -> &SignalingSender {
        &self.signaling
    }

    /// Moves messages until there is something for the application.
    ///
    /// Cancel it (in a `select!`) only to stop: a message being applied
    /// when it is dropped is lost.
    pub async fn next(&mut self) -> Result<RoomEvent, RoomError> {
        if self.offer_due {
            self.offer_due = false;
            info!("the other side is here: offering");
            let offer = self.session.offer().await?;
            self.signaling.send(offer.to_value()).await?;
        }
        let event = loop {
            let found = tokio::select! {
                event = self.members.next() => self.on_signaling(event).await?,
                event = self.events.recv() => self.on_connection(event).await?,
            };
            if let Some(event) = found {
                break event;
            }
        };
        if let RoomEvent::Ended(why) = &event {
            debug!(?why, "session over");
            self.ended = true;
        }
        Ok(event)
    }

    async fn on_signaling(
        &mut self,
        event: Option<SignalingEvent>,
    ) -> Result<Option<RoomEvent>, RoomError> {
        let Some(event) = event else {
            return Ok(Some(RoomEvent::Ended(RoomEnd::SignalingClosed)));
        };
        Ok(match event {
            SignalingEvent::Ready { .. } => {
                self.offer_due = self.created;
                Some(RoomEvent::Arrived)
            }
            SignalingEvent::Message { data, .. } => {
                let Some(message) = SessionMessage::from_value(&data) else {
                    debug!(%data, "not a session message: ignored");
                    return Ok(None);
                };
                match self.session.handle(message).await {
                    Ok(Handled::Reply(reply)) => {
                        self.signaling.send(reply.to_value()).await?;
                        None
                    }
                    Ok(Handled::Applied | Handled::Held) => None,
                    Ok(Handled::Bye) => {
                        info!("the other side hung up");
                        Some(RoomEvent::Ended(RoomEnd::HungUp))
                    }
                    Err(e) => Some(RoomEvent::Refused(e)),
                }
            }
            SignalingEvent::Left { .. } => {
                info!("the other side left");
                Some(RoomEvent::Ended(RoomEnd::Left))
            }
            SignalingEvent::Error { code, message } => {
                return Err(RoomError::Refused { code, message })
            }
            other => {
                debug!(?other, "signaling");
                None
            }
        })
    }

    async fn on_connection(
        &mut self,
        event: Option<PeerConnectionEvent>,
    ) -> Result<Option<RoomEvent>, RoomError> {
        Ok(match event {
            None => Some(RoomEvent::Ended(RoomEnd::ConnectionClosed)),
            Some(PeerConnectionEvent::IceCandidate(candidate)) => {
                let message = PeerSession::candidate(candidate);
                self.signaling.send(message.to_value()).await?;
                None
            }
            Some(PeerConnectionEvent::ConnectionStateChange(PeerConnectionState::Failed)) => {
                info!("connection failed");
                Some(RoomEvent::Ended(RoomEnd::Failed))
            }
            Some(event) => Some(RoomEvent::Connection(event)),
        })
    }

    /// Hangs up: `bye` to the other side (unless the session is over
    /// already), the connection closed, the room left.
    pub async fn hang_up(self) {
        if !self.ended {
            let _ = self.signaling.send(SessionMessage::Bye.to_value()).await;
        }
        self.peer_connection().close().await;
        let _ = self.signaling.leave().await;
        tokio::time::sleep(FAREWELL).await;
    }

    /// Runs the session to its end: each connection event goes to
    /// `on_event`, a refused message is logged; when `until` completes
    /// first, we say `bye` ([`RoomEnd::Finished`]). A failed connection
    /// is [`RoomError::ConnectionFailed`]. Hangs up before returning.
    pub async fn run(
        mut self,
        mut on_event: impl FnMut(PeerConnectionEvent),
        until: impl Future<Output = ()>,
    ) -> Result<RoomEnd, RoomError> {
        tokio::pin!(until);
        let result = loop {
            tokio::select! {
                event = self.next() => match event {
                    Ok(RoomEvent::Connection(event)) => {
                        if let PeerConnectionEvent::ConnectionStateChange(state) = &event {
                            info!(%state, "connection");
                        }
                        on_event(event);
                    }
                    Ok(RoomEvent::Refused(e)) => warn!("a message of the other side refused: {e}"),
                    Ok(RoomEvent::Ended(RoomEnd::Failed)) => break Err(RoomError::ConnectionFailed),
                    Ok(RoomEvent::Ended(why)) => break Ok(why),
                    Ok(RoomEvent::Arrived) => {}
                    Err(e) => break Err(e),
                },
                () = &mut until => {
                    info!("done: hanging up");
                    break Ok(RoomEnd::Finished);
                }
            }
        };
        self.hang_up().await;
        result
    }
}
