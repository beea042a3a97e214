//! RTCIceServer URLs (RFC 7064 `stun:`, RFC 7065 `turn:`) made into the
//! ICE agent's STUN and TURN servers, and the ICE transport policy.
//!
//! Validation follows W3C webrtc-pc §4.4.1.6 ("validate the ICE servers"):
//! a URL that does not parse is a `SyntaxError`, a `turn:` server without
//! a username or credential an `InvalidAccessError`, both thrown by the
//! constructor. A name that does not resolve is not an error (a browser
//! gathers no candidate from it either): it is logged and skipped.

use std::net::SocketAddr;
use std::time::Duration;

use realtimer_ice::{IceConfig, Transport, TurnServer};
use realtimer_stun::{Scheme, ServerUrl, UrlTransport};
use tracing::warn;

use super::{IceServer, PeerConnectionConfig};
use crate::{AccessError, IceServerUrlError, RtcError};

/// RTCIceTransportPolicy (W3C webrtc-pc §4.2.5): which candidates ICE may
/// use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IceTransportPolicy {
    /// `"all"`: host, server-reflexive and relayed candidates.
    #[default]
    All,
    /// `"relay"`: only relayed candidates (TURN), so the peer never learns
    /// a host or server-reflexive address (RFC 8829 §4.1.1).
    Relay,
}

/// One server URL, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Checked {
    Stun(ServerUrl),
    Turn {
        url: ServerUrl,
        username: String,
        password: String,
    },
}

/// W3C webrtc-pc §4.4.1.6: every URL parses (with an explicit scheme), and
/// TURN servers come with credentials.
fn validate(servers: &[IceServer]) -> Result<Vec<Checked>, RtcError> {
    let mut out = Vec::new();
    for server in servers {
        if server.urls.is_empty() {
            return Err(IceServerUrlError::NoUrl.into());
        }
        for text in &server.urls {
            let has_scheme = text.split_once(':').is_some_and(|(scheme, _)| {
                ["stun", "stuns", "turn", "turns"]
                    .iter()
                    .any(|s| scheme.eq_ignore_ascii_case(s))
            });
            if !has_scheme {
                return Err(IceServerUrlError::NoScheme { url: text.clone() }.into());
            }
            let url = ServerUrl::parse(text).map_err(|error| IceServerUrlError::Invalid {
                url: text.clone(),
                error,
            })?;
            match url.scheme {
                Scheme::Stun | Scheme::Stuns => out.push(Checked::Stun(url)),
                Scheme::Turn | Scheme::Turns => {
                    let (Some(username), Some(password)) = (&server.username, &server.credential)
                    else {
                        return Err(
                            AccessError::TurnWithoutCredentials { url: text.clone() }.into()
                        );
                    };
                    out.push(Checked::Turn {
                        url,
                        username: username.clone(),
                        password: password.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// How long one ICE server name may take to resolve (the constructor
/// waits for it).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The server's address: the first IPv4 one (the driver's bases are IPv4
/// first; an IPv6-only name gives its IPv6 address). `None` when the name
/// does not resolve.
async fn resolve(url: &ServerUrl) -> Option<SocketAddr> {
    let lookup = tokio::net::lookup_host((url.host.as_str(), url.port));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let found = addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| addrs.first())
                .copied();
            if found.is_none() {
                warn!(%url, "ICE server has no address");
            }
            found
        }
        Err(e) => {
            warn!(%url, "ICE server does not resolve: {e}");
            None
        }
    }
}

/// RFC 7065 §3.1: `turns:` is TLS over TCP, `turn:` UDP unless
/// `?transport=tcp`. `None` for DTLS (`turns:…?transport=udp`), which we
/// do not speak.
fn turn_transport(url: &ServerUrl) -> Option<Transport> {
    match (url.scheme, url.transport) {
        (Scheme::Turns, Some(UrlTransport::Udp)) => None,
        (Scheme::Turns, _) => Some(Transport::Tls),
        (_, Some(UrlTransport::Tcp)) => Some(Transport::Tcp),
        _ => Some(Transport::Udp),
    }
}

/// Validates `config.ice_servers`, resolves them into `ice`'s STUN and
/// TURN servers, and applies the transport policy. Returns the TURN
/// servers' host names, in `ice.turn_servers` order (TLS verifies them).
pub(super) async fn configure(
    config: &PeerConnectionConfig,
    ice: &mut IceConfig,
) -> Result<Vec<String>, RtcError> {
    let mut names = Vec::new();
    ice.relay_only = config.ice_transport_policy == IceTransportPolicy::Relay;
    for checked in validate(&config.ice_servers)? {
        match checked {
            Checked::Stun(url) => {
                if url.scheme == Scheme::Stuns {
                    warn!(%url, "stuns: servers are not supported; skipped");
                    continue;
                }
                ice.stun_servers.extend(resolve(&url).await);
            }
            Checked::Turn {
                url,
                username,
                password,
            } => {
                let Some(transport) = turn_transport(&url) else {
                    warn!(%url, "TURN over DTLS is not supported; skipped");
                    continue;
                };
                if let Some(address) = resolve(&url).await {
                    ice.turn_servers.push(
                        TurnServer::udp(address, &username, &password).with_transport(transport),
                    );
                    names.push(url.host.clone());
                }
            }
        }
    }
    Ok(names)
}

/// The TURN servers of `servers` (validated and resolved as
/// [`configure`] does) and their host names, for setConfiguration.
pub(super) async fn turn_servers(
    servers: Vec<crate::IceServer>,
) -> Result<(Vec<realtimer_ice::TurnServer>, Vec<String>), RtcError> {
    let config = PeerConnectionConfig {
        ice_servers: servers,
        ..PeerConnectionConfig::default()
    };
    let mut ice = IceConfig::default();
    let names = configure(&config, &mut ice).await?;
    Ok((ice.turn_servers, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(urls: &[&str], username: Option<&str>, credential: Option<&str>) -> IceServer {
        IceServer {
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            username: username.map(str::to_owned),
            credential: credential.map(str::to_owned),
        }
    }

    #[test]
    fn bad_urls_are_syntax_errors_and_turn_needs_credentials() {
        let syntax = [
            server(&[], None, None),
            server(&["127.0.0.1:3478"], None, None),
            server(&["http://example.org"], None, None),
            server(&["stun:"], None, None),
            server(&["turn:h:99999"], Some("u"), Some("p")),
            server(&["turn:h?transport=sctp"], Some("u"), Some("p")),
        ];
        for s in syntax {
            assert!(
                matches!(
                    validate(std::slice::from_ref(&s)),
                    Err(RtcError::SyntaxError(_))
                ),
                "{s:?}"
            );
        }
        for s in [
            server(&["turn:h"], None, Some("p")),
            server(&["turns:h"], Some("u"), None),
        ] {
            assert!(
                matches!(
                    validate(std::slice::from_ref(&s)),
                    Err(RtcError::InvalidAccess(_))
                ),
                "{s:?}"
            );
        }
        let ok = validate(&[
            server(&["stun:h", "turn:h?transport=udp"], Some("u"), Some("p")),
            server(&["STUN:[::1]:3478"], None, None),
        ])
        .unwrap();
        assert_eq!(ok.len(), 3);
        assert!(
            matches!(&ok[1], Checked::Turn { url, username, .. } if url.port == 3478 && username == "u")
        );
    }

    #[tokio::test]
    async fn turn_urls_become_turn_servers_and_relay_policy_relay_only() {
        let config = PeerConnectionConfig {
            ice_servers: vec![
                server(&["stun:127.0.0.1:3000"], None, None),
                server(
                    &[
                        "turn:127.0.0.1:3001",
                        "turn:127.0.0.1:3001?transport=tcp",
                        "turns:localhost:3002",
                        "turns:localhost:3002?transport=udp",
                    ],
                    Some("alice"),
                    Some("secret"),
                ),
            ],
            ice_transport_policy: IceTransportPolicy::Relay,
            ..PeerConnectionConfig::default()
        };
        let mut ice = IceConfig::default();
        let names = configure(&config, &mut ice).await.unwrap();
        assert_eq!(names, ["127.0.0.1", "127.0.0.1", "localhost"]);
        assert!(ice.relay_only);
        assert_eq!(ice.stun_servers, vec!["127.0.0.1:3000".parse().unwrap()]);
        let udp = TurnServer::udp("127.0.0.1:3001".parse().unwrap(), "alice", "secret");
        let tls = TurnServer::udp("127.0.0.1:3002".parse().unwrap(), "alice", "secret");
        assert_eq!(
            ice.turn_servers,
            vec![
                udp.clone(),
                udp.with_transport(Transport::Tcp),
                tls.with_transport(Transport::Tls),
            ]
        );
    }
}
