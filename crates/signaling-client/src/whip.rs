//! The client half of WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep):
//! POST an SDP offer, get the answer and the session's URL; PATCH
//! trickled candidates; DELETE to end. Plain `http://` (hyper, HTTP/1.1).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, LOCATION};
pub use hyper::Method;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest response body read (an SDP answer is a few KB).
const MAX_RESPONSE: usize = 256 * 1024;

/// Redirects followed for one offer before the last answer is taken as it
/// is (a loop of redirects then fails as a `307` status).
pub const MAX_REDIRECTS: usize = 4;

/// Why a WHIP or WHEP request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WhipError {
    /// The URL is not `http://HOST[:PORT]/PATH`.
    #[error("not an http:// URL: {0}")]
    Url(String),
    /// Connecting or talking HTTP failed.
    #[error("HTTP: {0}")]
    Http(String),
    /// The server answered with another status.
    #[error("the server answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// Its body (the server's reason).
        body: String,
    },
    /// A 201 or a redirect without a `Location`.
    #[error("no Location in the server's answer")]
    NoLocation,
}

/// An HTTP response: status, `Location`, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhipResponse {
    /// The status code.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The body as text.
    pub body: String,
}

/// A WHIP or WHEP endpoint and, once created, its session.
#[derive(Debug, Clone)]
pub struct WhipClient {
    /// `host:port`.
    authority: String,
    /// The endpoint's path.
    endpoint: String,
    /// The session's path, once created.
    session: Option<String>,
    token: Option<String>,
}

impl WhipClient {
    /// A client of the endpoint at `url` (`http://HOST[:PORT]/PATH`),
    /// sending `Authorization: Bearer TOKEN` when `token` is given.
    pub fn new(url: &str, token: Option<&str>) -> Result<WhipClient, WhipError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| WhipError::Url(url.to_owned()))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(WhipError::Url(url.to_owned()));
        }
        let authority = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(WhipClient {
            authority,
            endpoint: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            session: None,
            token: token.map(str::to_owned),
        })
    }

    /// The session's path, once [`WhipClient::offer`] created it.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// One request; any status comes back.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> Result<WhipResponse, WhipError> {
        let http = |e: &dyn std::fmt::Display| WhipError::Http(e.to_string());
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|e| http(&e))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http(&e))?;
        let task = tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.authority);
        if let Some(t) = content_type {
            request = request.header(CONTENT_TYPE, t);
        }
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| http(&e))?;
            request = request.header(AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| http(&e))?;
        let response = sender.send_request(request).await.map_err(|e| http(&e))?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| http(&*e))?
            .to_bytes();
        task.abort();
        Ok(WhipResponse {
            status: status.as_u16(),
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// POSTs `offer` (RFC 9725 §4.2); returns the answer's SDP and keeps
    /// the session's `Location`. A `307`/`308` redirect (a deployment
    /// sending the room to the node it lives on) is followed, at most
    /// [`MAX_REDIRECTS`] times, and the session then lives there.
    pub async fn offer(&mut self, offer: &str) -> Result<String, WhipError> {
        let mut redirects = 0;
        let response = loop {
            let response = self
                .request(
                    Method::POST,
                    &self.endpoint.clone(),
                    Some("application/sdp"),
                    offer,
                )
                .await?;
            let redirect = response.status == StatusCode::TEMPORARY_REDIRECT.as_u16()
                || response.status == StatusCode::PERMANENT_REDIRECT.as_u16();
            if !redirect || redirects == MAX_REDIRECTS {
                break response;
            }
            redirects += 1;
            let location = response.location.ok_or(WhipError::NoLocation)?;
            if location.starts_with('/') {
                self.endpoint = location;
            } else {
                let target = WhipClient::new(&location, None)?;
                self.authority = target.authority;
                self.endpoint = target.endpoint;
            }
        };
        if response.status != StatusCode::CREATED.as_u16() {
            return Err(WhipError::Status {
                status: response.status,
                body: response.body,
            });
        }
        let location = response.location.ok_or(WhipError::NoLocation)?;
        // A relative Location is relative to the endpoint's authority.
        let path = match location.strip_prefix("http://") {
            Some(rest) => rest[rest.find('/').unwrap_or(rest.len())..].to_owned(),
            None => location,
        };
        self.session = Some(path);
        Ok(response.body)
    }

    /// PATCHes trickled candidates (`a=candidate:` lines of one section,
    /// RFC 8840 §4.4) to the session.
    pub async fn trickle(&self, mid: &str, candidates: &[String]) -> Result<(), WhipError> {
        let session = self.session.clone().ok_or(WhipError::NoLocation)?;
        let mut fragment = format!("a=mid:{mid}\r\n");
        for c in candidates {
            fragment.push_str(&format!("a={c}\r\n"));
        }
        let response = self
            .request(
                Method::PATCH,
                &session,
                Some("application/trickle-ice-sdpfrag"),
                &fragment,
            )
            .await?;
        match response.status {
            200 | 204 => Ok(()),
            status => Err(WhipError::Status {
                status,
                body: response.body,
            }),
        }
    }

    /// DELETEs the session (RFC 9725 §4.2).
    pub async fn delete(&mut self) -> Result<(), WhipError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let response = self.request(Method::DELETE, &session, None, "").await?;
        match response.status {
            200 | 204 => Ok(()),
            status => Err(WhipError::Status {
                status,
                body: response.body,
            }),
        }
    }
}
