//! WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep): publishing into and
//! watching a room of the forwarding unit with one HTTP request each way.
//!
//! - `POST /whip/{room}` (`application/sdp` offer) → `201 Created`, the
//!   answer, `Location: /whip/{room}/{session}` (RFC 9725 §4.2). The
//!   publisher joins the room as a participant that sends only.
//! - `POST /whep/{room}` the same for a viewer: its offer's receiving
//!   sections get the room's tracks in the answer (who publishes after
//!   it joined is not added: WHEP has no server offer).
//! - `PATCH` on a session (`application/trickle-ice-sdpfrag`, RFC 8840):
//!   trickled candidates → `204`; an ICE restart (new ufrag) → `422`, as
//!   RFC 9725 §4.3.1 asks of a server that trickles but does not restart.
//! - `DELETE` on a session → `200`, the participant leaves.
//! - When nodes share rooms through Redis ([`super::placement`]), a `POST`
//!   for a room that lives on another node → `307` to the same path there.
//! - Another method → `405`; a body of another type → `415`; a body over
//!   [`MAX_SDP`] → `413`; no or a wrong bearer token when one is set →
//!   `401` (RFC 9725 §4.5); an unknown session → `404`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use realtimer_proto::{IceCandidateInit, SessionDescription};
use realtimer_sfu::{ParticipantId, SfuError, SfuEvent};
use tokio::sync::mpsc;
use tracing::debug;

use super::placement::{Placed, Placement};
use super::{SfuCommandError, SfuService, PARTICIPANT_EVENTS};

/// Largest SDP offer or fragment taken (a browser's offer with audio,
/// video and simulcast is about 6 KB).
pub const MAX_SDP: usize = 64 * 1024;

/// Longest room name in a WHIP or WHEP path.
pub const MAX_ROOM_NAME: usize = 128;

/// Most WHIP and WHEP sessions at once.
pub const MAX_SESSIONS: usize = 10_000;

/// Which of the two protocols a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Whip,
    Whep,
}

impl Protocol {
    fn path(self) -> &'static str {
        match self {
            Protocol::Whip => "whip",
            Protocol::Whep => "whep",
        }
    }
}

struct Session {
    participant: ParticipantId,
    /// The peer's ICE ufrag (a PATCH with another is an ICE restart).
    ufrag: Option<String>,
    protocol: Protocol,
}

#[derive(Clone)]
struct Whip {
    service: SfuService,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// Where rooms live when nodes share them through Redis.
    placement: Option<Placement>,
}

impl Whip {
    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The WHIP and WHEP routes on `service`; with a `placement`, a new
/// session for a room that lives on another node is redirected there.
pub fn routes(service: SfuService, placement: Option<Placement>) -> Router {
    let state = Whip {
        service,
        sessions: Arc::default(),
        placement,
    };
    Router::new()
        .route(
            "/whip/{room}",
            post(|s, p, h, b| create(s, p, h, b, Protocol::Whip)).options(options),
        )
        .route(
            "/whep/{room}",
            post(|s, p, h, b| create(s, p, h, b, Protocol::Whep)).options(options),
        )
        .route(
            "/whip/{room}/{session}",
            axum::routing::patch(|s, p, h, b| patch(s, p, h, b, Protocol::Whip))
                .delete(|s, p, h| delete(s, p, h, Protocol::Whip)),
        )
        .route(
            "/whep/{room}/{session}",
            axum::routing::patch(|s, p, h, b| patch(s, p, h, b, Protocol::Whep))
                .delete(|s, p, h| delete(s, p, h, Protocol::Whep)),
        )
        .layer(DefaultBodyLimit::max(MAX_SDP))
        .with_state(state)
}

/// A refused request: its status and why, in plain words.
struct Refusal(StatusCode, String);

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal(status, message.into())
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let unauthorized = self.0 == StatusCode::UNAUTHORIZED;
        let mut response = (self.0, self.1).into_response();
        if unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// RFC 9725 §4.5: `Authorization: Bearer TOKEN` when a token is set.
fn authorize(whip: &Whip, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(token) = whip.service.token() else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(token) {
        Ok(())
    } else {
        Err(refuse(StatusCode::UNAUTHORIZED, "a bearer token is needed"))
    }
}

/// The body's media type must be `expected` (RFC 9725 §4.2, §4.3.1).
fn content_type(headers: &HeaderMap, expected: &str) -> Result<(), Refusal> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if given.is_some_and(|g| g.eq_ignore_ascii_case(expected)) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the body must be {expected}"),
        ))
    }
}

impl From<SfuCommandError> for Refusal {
    fn from(e: SfuCommandError) -> Refusal {
        let status = match &e {
            SfuCommandError::Sfu(SfuError::Limit(_)) | SfuCommandError::Stopped => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            SfuCommandError::Sfu(SfuError::UnknownParticipant(_)) => StatusCode::NOT_FOUND,
            SfuCommandError::Sfu(_) => StatusCode::BAD_REQUEST,
        };
        refuse(status, e.to_string())
    }
}

/// `OPTIONS`: what a POST takes (RFC 9725 §4.2).
async fn options() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert("accept-post", HeaderValue::from_static("application/sdp"));
    response
}

/// The first `a=ice-ufrag` of an SDP or fragment (public for the
/// `sfu_signaling` fuzz target).
pub fn ice_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
}

async fn create(
    State(whip): State<Whip>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    protocol: Protocol,
) -> Result<Response, Refusal> {
    authorize(&whip, &headers)?;
    content_type(&headers, "application/sdp")?;
    if room.is_empty() || room.len() > MAX_ROOM_NAME {
        return Err(refuse(StatusCode::BAD_REQUEST, "bad room name"));
    }
    let sdp = std::str::from_utf8(&body)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "the offer is not UTF-8"))?;
    if !sdp.starts_with("v=0") {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the body is not an SDP offer",
        ));
    }
    if let Some(placement) = &whip.placement {
        if let Placed::Elsewhere { url } = placement.place(&room).await {
            // The same request on the room's node (307 keeps the method
            // and the body; RFC 9725, Load Balancing and Redirections).
            let location = format!("{url}/{}/{}", protocol.path(), path_segment(&room));
            let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(response);
        }
    }
    if whip.sessions().len() >= MAX_SESSIONS {
        whip.service.metrics().whip_session_refused();
        return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "too many sessions"));
    }
    let (events, event_rx) = mpsc::channel(PARTICIPANT_EVENTS);
    // A WHEP viewer gets the room's tracks, later ones too, on the
    // transceivers of its offer: WHEP has no way to send it ours.
    let participant = match protocol {
        Protocol::Whep => whip.service.join_viewer(&room, events).await?,
        _ => whip.service.join(&room, events, false).await?,
    };
    let answer = match whip
        .service
        .offer(participant, SessionDescription::offer(sdp))
        .await
    {
        Ok(answer) => answer,
        Err(e) => {
            let _ = whip.service.leave(participant).await;
            return Err(e.into());
        }
    };
    let session = format!("{:032x}", rand::random::<u128>());
    whip.sessions().insert(
        session.clone(),
        Session {
            participant,
            ufrag: ice_ufrag(sdp).map(str::to_owned),
            protocol,
        },
    );
    tokio::spawn(watch(whip.clone(), session.clone(), event_rx));
    debug!(%participant, room, protocol = protocol.path(), "session created");
    let location = format!("/{}/{room}/{session}", protocol.path());
    let mut response = (StatusCode::CREATED, answer.sdp).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{session}\"")) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

/// `text` percent-encoded as one path segment: every byte but RFC 3986's
/// unreserved characters (§2.3) as `%XX`.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Ends the session when its participant's connection fails or closes.
async fn watch(whip: Whip, session: String, mut events: mpsc::Receiver<SfuEvent>) {
    while let Some(event) = events.recv().await {
        if let SfuEvent::Left(_) = event {
            break;
        }
    }
    whip.sessions().remove(&session);
}

fn lookup(whip: &Whip, session: &str, protocol: Protocol) -> Result<ParticipantId, Refusal> {
    whip.sessions()
        .get(session)
        .filter(|s| s.protocol == protocol)
        .map(|s| s.participant)
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "no such session"))
}

/// Trickled candidates in an SDP fragment (RFC 8840 §4.4): each
/// `a=candidate` with the `a=mid` before it; `a=end-of-candidates`
/// (public for the `sfu_signaling` fuzz target).
pub fn fragment_candidates(fragment: &str) -> Vec<Option<IceCandidateInit>> {
    let mut mid = None;
    let mut out = Vec::new();
    for line in fragment.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
        } else if let Some(c) = line.strip_prefix("a=") {
            if c.starts_with("candidate:") {
                out.push(Some(IceCandidateInit {
                    candidate: c.to_owned(),
                    sdp_mid: mid.clone(),
                    sdp_m_line_index: None,
                    username_fragment: None,
                }));
            } else if c == "end-of-candidates" {
                out.push(None);
            }
        }
    }
    out
}

async fn patch(
    State(whip): State<Whip>,
    Path((_room, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    protocol: Protocol,
) -> Result<Response, Refusal> {
    authorize(&whip, &headers)?;
    let participant = lookup(&whip, &session, protocol)?;
    content_type(&headers, "application/trickle-ice-sdpfrag")?;
    let fragment = std::str::from_utf8(&body)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "the fragment is not UTF-8"))?;
    let known = whip.sessions().get(&session).and_then(|s| s.ufrag.clone());
    if let (Some(new), Some(old)) = (ice_ufrag(fragment), known) {
        if new != old {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ICE restarts are not supported: start a new session",
            ));
        }
    }
    for candidate in fragment_candidates(fragment) {
        whip.service.candidate(participant, candidate).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete(
    State(whip): State<Whip>,
    Path((_room, session)): Path<(String, String)>,
    headers: HeaderMap,
    protocol: Protocol,
) -> Result<Response, Refusal> {
    authorize(&whip, &headers)?;
    let participant = lookup(&whip, &session, protocol)?;
    whip.sessions().remove(&session);
    match whip.service.leave(participant).await {
        Ok(()) | Err(SfuCommandError::Sfu(SfuError::UnknownParticipant(_))) => {
            Ok(StatusCode::OK.into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_candidates_of_a_trickle_fragment() {
        let fragment = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
            m=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
            a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n\
            a=end-of-candidates\r\n";
        assert_eq!(ice_ufrag(fragment), Some("EsAw"));
        let c = fragment_candidates(fragment);
        assert_eq!(c.len(), 2);
        let first = c[0].as_ref().unwrap();
        assert!(first.candidate.starts_with("candidate:1387637174 1 udp"));
        assert_eq!(first.sdp_mid.as_deref(), Some("0"));
        assert_eq!(c[1], None);
    }
}
