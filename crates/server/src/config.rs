//! `realtimer serve --config FILE`: every server setting in one TOML file
//! (see `docs/config.md`). Command-line flags and `REALTIMER_*` environment
//! variables override the file; the file overrides the defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cluster::ClusterConfig;
use crate::rooms::RoomsConfig;
use crate::{ServerConfig, TlsConfig};

/// The whole file. Every field is optional; unknown keys are an error, so
/// a typo does not silently fall back to a default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// `[http]`: the web server.
    pub http: HttpSection,
    /// `[rooms]`: room limits and per-client rates.
    pub rooms: RoomsSection,
    /// `[redis]`: sharing rooms between processes.
    pub redis: RedisSection,
    /// `[stun]`: the STUN/TURN UDP listeners.
    pub stun: StunSection,
    /// `[turn]`: TURN credentials, relay addresses and quotas. Read by the
    /// `realtimer` binary, which runs the TURN server.
    pub turn: TurnSection,
}

/// `[http]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// TCP address of the HTTP (or HTTPS) server.
    pub listen: Option<SocketAddr>,
    /// Serve the web app from this folder.
    pub web_dir: Option<PathBuf>,
    /// PEM certificate chain: with `tls_key`, serve HTTPS/WSS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

/// `[rooms]`; see [`RoomsConfig`] for each limit.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsSection {
    /// Members per room.
    pub capacity: Option<usize>,
    /// Rooms at once.
    pub max_rooms: Option<usize>,
    /// Clients at once.
    pub max_clients: Option<usize>,
    /// Longest room name in bytes.
    pub max_room_name: Option<usize>,
    /// Largest relayed message in bytes.
    pub max_message_bytes: Option<usize>,
    /// Requests per client in a burst.
    pub rate_burst: Option<u32>,
    /// Requests per client per second, sustained.
    pub rate_per_second: Option<u32>,
    /// Seconds without activity before a room is closed.
    pub idle_timeout_secs: Option<u64>,
}

/// `[redis]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSection {
    /// `redis://HOST:PORT`: share rooms with the other servers using it.
    pub url: Option<String>,
    /// Prefix of keys and channels.
    pub prefix: Option<String>,
    /// Milliseconds after which a silent server's members lose their slots.
    pub node_ttl_ms: Option<u64>,
}

/// `[stun]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StunSection {
    /// UDP addresses of the STUN/TURN server.
    pub listen: Option<Vec<SocketAddr>>,
    /// Use this port on every listen address.
    pub port: Option<u16>,
}

/// `[turn]`: every TURN flag of `realtimer serve` (docs/turn.md), each
/// named after its flag without the `--turn-` prefix. `None` means "not in
/// the file": the flag or the default applies. Prefixes and the port range
/// stay text here and are parsed where the TURN server is configured.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnSection {
    /// Static users as `name:password` (`--turn-user`).
    pub users: Option<Vec<String>>,
    /// Shared secret of the REST scheme (`--turn-secret`).
    pub secret: Option<String>,
    /// Seconds the credentials of `GET /api/ice-servers` stay valid
    /// (`--turn-credential-ttl`).
    pub credential_ttl_secs: Option<u64>,
    /// Host name in the URLs of `GET /api/ice-servers` (`--turn-host`).
    pub host: Option<String>,
    /// Realm of the long-term credentials (`--turn-realm`).
    pub realm: Option<String>,
    /// Addresses relayed addresses are taken on (`--relay-ip`).
    pub relay_ip: Option<Vec<IpAddr>>,
    /// Ports of relayed addresses as `first-last` (`--relay-ports`).
    pub relay_ports: Option<String>,
    /// Peer prefixes allowed although denied by default (`--relay-allow`).
    pub relay_allow: Option<Vec<String>>,
    /// Peer prefixes denied on top of the defaults (`--relay-deny`).
    pub relay_deny: Option<Vec<String>>,
    /// Allocations on the whole server (`--turn-total-quota`).
    pub total_quota: Option<usize>,
    /// Allocations per user (`--turn-user-quota`).
    pub user_quota: Option<usize>,
    /// Allocations per client IP address (`--turn-ip-quota`).
    pub ip_quota: Option<usize>,
    /// Bytes per second relayed per allocation, 0 for no cap
    /// (`--turn-bandwidth`).
    pub bandwidth: Option<u64>,
    /// Peer TCP connections per TCP allocation, 0 for none
    /// (`--turn-tcp-relay-connections`).
    pub tcp_relay_connections: Option<usize>,
    /// TURN over TCP on the STUN ports (`--turn-tcp`).
    pub tcp: Option<bool>,
    /// Port of TURN over TLS (`--turn-tls-port`).
    pub tls_port: Option<u16>,
    /// TCP and TLS connections at once (`--turn-max-connections`).
    pub max_connections: Option<usize>,
    /// TCP and TLS connections at once from one IP address
    /// (`--turn-connections-per-ip`).
    pub connections_per_ip: Option<usize>,
    /// Seconds a TCP or TLS connection without an allocation may stay
    /// silent (`--turn-idle-timeout`).
    pub idle_timeout_secs: Option<u64>,
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why (line, column, the unknown key...).
        source: Box<toml::de::Error>,
    },
    /// Only one of the certificate and the key was given.
    #[error("TLS needs both a certificate (--tls-cert) and a key (--tls-key)")]
    TlsHalf,
}

impl ConfigFile {
    /// Parses TOML text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }
}

/// The signaling settings given as flags or environment variables; `None`
/// means "not given", so the file or the default applies.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
// These comments are also the flags' --help, where `[N]` shows the
// default; rustdoc would take each for a link.
#[allow(rustdoc::broken_intra_doc_links)]
pub struct SignalingArgs {
    /// A TOML file with settings (docs/config.md); flags and environment
    /// variables override it.
    #[cfg_attr(feature = "clap", arg(long, env = "REALTIMER_CONFIG"))]
    pub config: Option<PathBuf>,

    /// Share rooms with other `realtimer serve` processes through this
    /// Redis (`redis://127.0.0.1:6379`).
    #[cfg_attr(feature = "clap", arg(long, env = "REALTIMER_REDIS"))]
    pub redis: Option<String>,

    /// PEM certificate chain: serve HTTPS and WSS (with --tls-key).
    #[cfg_attr(feature = "clap", arg(long = "tls-cert", env = "REALTIMER_TLS_CERT"))]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[cfg_attr(feature = "clap", arg(long = "tls-key", env = "REALTIMER_TLS_KEY"))]
    pub tls_key: Option<PathBuf>,

    /// Members per room [2].
    #[cfg_attr(
        feature = "clap",
        arg(long = "room-capacity", env = "REALTIMER_ROOM_CAPACITY")
    )]
    pub room_capacity: Option<usize>,

    /// Rooms at once [10000].
    #[cfg_attr(feature = "clap", arg(long = "max-rooms", env = "REALTIMER_MAX_ROOMS"))]
    pub max_rooms: Option<usize>,

    /// Signaling clients at once [20000].
    #[cfg_attr(
        feature = "clap",
        arg(long = "max-clients", env = "REALTIMER_MAX_CLIENTS")
    )]
    pub max_clients: Option<usize>,

    /// Longest room name in bytes [128].
    #[cfg_attr(
        feature = "clap",
        arg(long = "max-room-name", env = "REALTIMER_MAX_ROOM_NAME")
    )]
    pub max_room_name: Option<usize>,

    /// Largest relayed message in bytes of JSON [65536].
    #[cfg_attr(
        feature = "clap",
        arg(long = "max-message-bytes", env = "REALTIMER_MAX_MESSAGE_BYTES")
    )]
    pub max_message_bytes: Option<usize>,

    /// Requests a client may make in a burst [200].
    #[cfg_attr(
        feature = "clap",
        arg(long = "rate-burst", env = "REALTIMER_RATE_BURST")
    )]
    pub rate_burst: Option<u32>,

    /// Requests per second a client may sustain [100].
    #[cfg_attr(
        feature = "clap",
        arg(long = "rate-per-second", env = "REALTIMER_RATE_PER_SECOND")
    )]
    pub rate_per_second: Option<u32>,

    /// Seconds without activity before a room is closed [86400].
    #[cfg_attr(
        feature = "clap",
        arg(long = "room-idle-timeout", env = "REALTIMER_ROOM_IDLE_TIMEOUT")
    )]
    pub room_idle_timeout: Option<u64>,

    /// UDP address of the selective forwarding unit (group calls, WHIP,
    /// WHEP); repeat for more [every IPv4 interface, any port].
    #[cfg_attr(feature = "clap", arg(long = "sfu-udp", env = "REALTIMER_SFU_UDP"))]
    pub sfu_udp: Vec<SocketAddr>,

    /// Bearer token WHIP and WHEP requests must carry [none: open].
    #[cfg_attr(
        feature = "clap",
        arg(long = "whip-token", env = "REALTIMER_WHIP_TOKEN")
    )]
    pub whip_token: Option<String>,

    /// This node's base URL as clients reach it, where other nodes
    /// sharing rooms through Redis redirect joins of the forwarding
    /// unit's rooms it hosts [http(s)://the listening address, unless it
    /// is a wildcard one].
    #[cfg_attr(
        feature = "clap",
        arg(long = "sfu-public-url", env = "REALTIMER_SFU_PUBLIC_URL")
    )]
    pub sfu_public_url: Option<String>,

    /// Most participants in one room of the forwarding unit (a WHEP
    /// viewer counts as one) [50].
    #[cfg_attr(
        feature = "clap",
        arg(long = "sfu-room-size", env = "REALTIMER_SFU_ROOM_SIZE")
    )]
    pub sfu_room_size: Option<usize>,
}

impl SignalingArgs {
    /// The file named by `--config`, or an empty one.
    pub fn load_file(&self) -> Result<ConfigFile, ConfigError> {
        self.config
            .as_deref()
            .map_or_else(|| Ok(ConfigFile::default()), ConfigFile::load)
    }

    /// The server's settings: these flags over the file over the defaults.
    /// `web_dir` is the caller's, already merged.
    pub fn server_config(
        &self,
        file: &ConfigFile,
        web_dir: Option<PathBuf>,
    ) -> Result<ServerConfig, ConfigError> {
        let d = RoomsConfig::default();
        let f = &file.rooms;
        let rooms = RoomsConfig {
            capacity: self.room_capacity.or(f.capacity).unwrap_or(d.capacity),
            max_rooms: self.max_rooms.or(f.max_rooms).unwrap_or(d.max_rooms),
            max_clients: self.max_clients.or(f.max_clients).unwrap_or(d.max_clients),
            max_room_name: self
                .max_room_name
                .or(f.max_room_name)
                .unwrap_or(d.max_room_name),
            max_message_bytes: self
                .max_message_bytes
                .or(f.max_message_bytes)
                .unwrap_or(d.max_message_bytes),
            rate_burst: self.rate_burst.or(f.rate_burst).unwrap_or(d.rate_burst),
            rate_per_second: self
                .rate_per_second
                .or(f.rate_per_second)
                .unwrap_or(d.rate_per_second),
            room_idle_timeout: self
                .room_idle_timeout
                .or(f.idle_timeout_secs)
                .map_or(d.room_idle_timeout, Duration::from_secs),
        };
        let cluster = self
            .redis
            .clone()
            .or_else(|| file.redis.url.clone())
            .map(|url| {
                let mut cluster = ClusterConfig::new(url);
                if let Some(prefix) = &file.redis.prefix {
                    cluster.prefix.clone_from(prefix);
                }
                if let Some(ms) = file.redis.node_ttl_ms {
                    cluster.node_ttl = Duration::from_millis(ms.max(30));
                }
                cluster
            });
        let cert = self.tls_cert.clone().or_else(|| file.http.tls_cert.clone());
        let key = self.tls_key.clone().or_else(|| file.http.tls_key.clone());
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsConfig { cert, key }),
            (None, None) => None,
            _ => return Err(ConfigError::TlsHalf),
        };
        let sfu = crate::sfu::SfuSettings {
            udp: if self.sfu_udp.is_empty() {
                crate::sfu::interface_addresses()
            } else {
                self.sfu_udp.clone()
            },
            token: self.whip_token.clone(),
            public_url: self.sfu_public_url.clone(),
            limits: realtimer_sfu::Limits {
                participants_per_room: self
                    .sfu_room_size
                    .unwrap_or(realtimer_sfu::Limits::default().participants_per_room),
                ..realtimer_sfu::Limits::default()
            },
        };
        Ok(ServerConfig {
            rooms,
            web_dir: web_dir.or_else(|| file.http.web_dir.clone()),
            cluster,
            tls,
            sfu: Some(sfu),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_and_applies() {
        let doc = include_str!("../../../docs/config.md");
        let start = doc
            .find("```toml\n")
            .expect("docs/config.md has a TOML example")
            + 8;
        let end = start + doc[start..].find("```").unwrap();
        let file = ConfigFile::parse(&doc[start..end], Path::new("docs/config.md")).unwrap();
        assert_eq!(file.http.listen, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(file.rooms.capacity, Some(2));
        assert_eq!(file.redis.url.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(file.stun.listen.as_ref().map(Vec::len), Some(2));
        assert_eq!(file.turn.realm.as_deref(), Some("realtimer"));
        assert_eq!(file.turn.relay_ports.as_deref(), Some("49152-65535"));
        assert_eq!(file.turn.tcp, Some(true));
        let config = SignalingArgs::default().server_config(&file, None).unwrap();
        assert_eq!(config.rooms.max_message_bytes, 65_536);
        assert_eq!(config.cluster.unwrap().node_ttl, Duration::from_secs(5));
    }

    #[test]
    fn flags_override_the_file_and_the_file_the_defaults() {
        let file = ConfigFile::parse(
            "[rooms]\ncapacity = 4\nrate_burst = 7\n[redis]\nurl = \"redis://a\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let args = SignalingArgs {
            room_capacity: Some(3),
            redis: Some("redis://b".into()),
            ..SignalingArgs::default()
        };
        let config = args.server_config(&file, None).unwrap();
        assert_eq!(config.rooms.capacity, 3);
        assert_eq!(config.rooms.rate_burst, 7);
        assert_eq!(config.rooms.max_rooms, RoomsConfig::default().max_rooms);
        assert_eq!(config.cluster.unwrap().url, "redis://b");
    }

    #[test]
    fn typos_and_half_tls_are_errors() {
        let e = ConfigFile::parse("[rooms]\ncapacty = 4\n", Path::new("t.toml")).unwrap_err();
        assert!(e.to_string().contains("capacty"), "{e}");
        let file =
            ConfigFile::parse("[http]\ntls_cert = \"c.pem\"\n", Path::new("t.toml")).unwrap();
        assert!(matches!(
            SignalingArgs::default().server_config(&file, None),
            Err(ConfigError::TlsHalf)
        ));
    }
}
