//! The STUN and TURN servers of a peer verb: the server's own, from
//! `GET /api/ice-servers` (the list the web app's pages use, with a
//! time-limited TURN credential, docs/turn.md), or the `--ice-server`
//! URLs given instead.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use realtimer::IceServer;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;

/// The answer is a few hundred bytes; anything much larger is not it.
const MAX_BODY: usize = 64 * 1024;

/// How long the request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the server's ICE servers could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IceConfigError {
    /// The URL is not `http://HOST[:PORT]` or `https://...`.
    #[error("{0:?} is not an http:// or https:// URL")]
    Url(String),
    /// Connecting, TLS, or the HTTP exchange failed.
    #[error("{0}")]
    Http(String),
    /// An HTTP status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is not the expected JSON.
    #[error("not an iceServers list: {0}")]
    Body(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// `GET {web_url}/api/ice-servers`, with `tls` for `https://` (the
/// system's roots when `None`).
pub(crate) async fn fetch(
    web_url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Vec<IceServer>, IceConfigError> {
    tokio::time::timeout(FETCH_TIMEOUT, get(web_url, tls))
        .await
        .map_err(|_| IceConfigError::Timeout(FETCH_TIMEOUT))?
}

async fn get(
    web_url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Vec<IceServer>, IceConfigError> {
    let (secure, authority) = if let Some(rest) = web_url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = web_url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(IceConfigError::Url(web_url.into()));
    };
    let authority = authority.split('/').next().unwrap_or_default();
    let (host, port) = split_authority(authority, if secure { 443 } else { 80 })
        .ok_or_else(|| IceConfigError::Url(web_url.into()))?;
    let http = |e: &dyn std::fmt::Display| IceConfigError::Http(e.to_string());
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| http(&e))?;
    let request = Request::get("/api/ice-servers")
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| http(&e))?;
    let body = if secure {
        let config = match tls {
            Some(config) => config,
            None => system_tls().map_err(|e| http(&e))?,
        };
        let name =
            ServerName::try_from(host.trim_matches(['[', ']']).to_owned()).map_err(|e| http(&e))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| http(&e))?;
        exchange(TokioIo::new(stream), request).await?
    } else {
        exchange(TokioIo::new(tcp), request).await?
    };
    parse_list(&body)
}

/// One HTTP/1.1 request on `io`; the body of a 200 answer.
async fn exchange<I>(io: I, request: Request<Empty<Bytes>>) -> Result<Bytes, IceConfigError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let http = |e: &dyn std::fmt::Display| IceConfigError::Http(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| http(&e))?;
    let connection = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| http(&e))?;
    let status = response.status().as_u16();
    if status != 200 {
        connection.abort();
        return Err(IceConfigError::Status(status));
    }
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| http(&e))?
        .to_bytes();
    connection.abort();
    Ok(body)
}

/// rustls with the system's root certificates.
fn system_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err("no system root certificate could be loaded".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `HOST[:PORT]` or `[V6][:PORT]`.
fn split_authority(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None if !authority.is_empty() => Some((authority.to_owned(), default_port)),
        None => None,
    }
}

/// The `iceServers` of the answer (`{"iceServers": [{"urls": [...],
/// "username": ..., "credential": ...}], "ttl": ...}`); `urls` may be one
/// string, as in RTCIceServer.
fn parse_list(body: &[u8]) -> Result<Vec<IceServer>, IceConfigError> {
    let bad = |what: &str| IceConfigError::Body(what.to_owned());
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let list = value
        .get("iceServers")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no iceServers array"))?;
    let text =
        |server: &Value, key: &str| server.get(key).and_then(Value::as_str).map(str::to_owned);
    list.iter()
        .map(|server| {
            let urls = match server.get("urls") {
                Some(Value::String(url)) => vec![url.clone()],
                Some(Value::Array(urls)) => urls
                    .iter()
                    .map(|u| {
                        u.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad("a URL that is not a string"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(bad("a server without urls")),
            };
            Ok(IceServer {
                urls,
                username: text(server, "username"),
                credential: text(server, "credential"),
            })
        })
        .collect()
}

/// The `--ice-server` URLs: `stun:HOST:PORT`, or
/// `turn[s]:USER:PASSWORD@HOST:PORT[?transport=...]` (the credentials
/// written into the URL, as a command line has no other place for them);
/// `none` for no server at all.
pub(crate) fn parse_overrides(urls: &[String]) -> Result<Vec<IceServer>, String> {
    let mut servers = Vec::new();
    for url in urls {
        if url == "none" {
            continue;
        }
        let (scheme, rest) = url
            .split_once(':')
            .ok_or_else(|| format!("{url:?}: no scheme (stun:, turn:, turns:)"))?;
        match scheme {
            "stun" | "stuns" => servers.push(IceServer {
                urls: vec![url.clone()],
                username: None,
                credential: None,
            }),
            "turn" | "turns" => {
                let (credentials, address) = rest.rsplit_once('@').ok_or_else(|| {
                    format!("{url:?}: a TURN server needs USER:PASSWORD@ before its host")
                })?;
                let (user, password) = credentials
                    .split_once(':')
                    .ok_or_else(|| format!("{url:?}: write the credentials as USER:PASSWORD"))?;
                servers.push(IceServer {
                    urls: vec![format!("{scheme}:{address}")],
                    username: Some(user.to_owned()),
                    credential: Some(password.to_owned()),
                });
            }
            other => return Err(format!("{url:?}: unknown scheme {other:?}")),
        }
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_answer() {
        let body = br#"{"iceServers":[{"urls":["stun:h:3478"]},
            {"urls":["turn:h:3478?transport=udp"],"username":"9:u","credential":"pw"},
            {"urls":"stun:other:3478"}],"ttl":86400}"#;
        let list = parse_list(body).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].urls, ["stun:h:3478"]);
        assert_eq!(list[1].username.as_deref(), Some("9:u"));
        assert_eq!(list[1].credential.as_deref(), Some("pw"));
        assert_eq!(list[2].urls, ["stun:other:3478"]);
        assert!(parse_list(b"{}").is_err());
        assert!(parse_list(br#"{"iceServers":[{"urls":[1]}]}"#).is_err());
    }

    #[test]
    fn overrides() {
        let list = parse_overrides(&[
            "stun:s.example:3478".into(),
            "turn:alice:p@ss:w@t.example:3478?transport=tcp".into(),
            "none".into(),
        ])
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].urls, ["turn:t.example:3478?transport=tcp"]);
        assert_eq!(list[1].username.as_deref(), Some("alice"));
        assert_eq!(list[1].credential.as_deref(), Some("p@ss:w"));
        assert!(parse_overrides(&["turn:t.example:3478".into()]).is_err());
        assert!(parse_overrides(&["http://x".into()]).is_err());
    }

    #[test]
    fn authorities() {
        assert_eq!(split_authority("h:8080", 80), Some(("h".into(), 8080)));
        assert_eq!(split_authority("h", 443), Some(("h".into(), 443)));
        assert_eq!(split_authority("[::1]:9", 80), Some(("::1".into(), 9)));
        assert_eq!(split_authority("[::1]", 80), Some(("::1".into(), 80)));
        assert_eq!(split_authority("h:x", 80), None);
    }
}
