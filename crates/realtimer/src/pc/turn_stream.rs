//! TCP and TLS connections to TURN servers (RFC 8656 §3.1) for the
//! driver: the core asks for one ([`RtcEvent::OpenTurnConnection`]), a
//! task per connection connects (and does the TLS handshake, verifying the
//! server's certificate), cuts what the server sends into messages
//! ([`TurnStreamDecoder`]) and writes what the core queues for it
//! ([`Rtc::poll_turn_stream`]). The allocation, its refreshes and the
//! wrapping of data stay in the sans-IO ICE agent.
//!
//! [`RtcEvent::OpenTurnConnection`]: crate::RtcEvent::OpenTurnConnection

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use realtimer_ice::{Transport, TurnStreamDecoder};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, trace, warn};

use super::now;
use crate::Rtc;

/// How long a connection (and its TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages queued for one connection's writer; more are dropped like
/// datagrams the kernel has no room for.
const WRITE_QUEUE: usize = 512;
/// Messages read from every connection, waiting for the driver.
const READ_QUEUE: usize = 256;
/// Connections tried before giving up when the kernel keeps picking the
/// UDP socket's port for the TCP one.
const CONNECT_ATTEMPTS: usize = 3;
/// Where Debian, Fedora and Alpine keep the system's CA bundle.
const SYSTEM_ROOTS: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// What a connection task tells the driver.
#[derive(Debug)]
pub(super) enum StreamIo {
    Connected {
        server: usize,
        local: SocketAddr,
        writer: mpsc::Sender<Bytes>,
    },
    Message {
        local: SocketAddr,
        from: SocketAddr,
        contents: Bytes,
    },
    Closed {
        server: usize,
    },
}

/// The driver's TURN connections.
#[derive(Debug)]
pub(super) struct TurnStreams {
    /// Host names by server index (TLS server name and verification).
    names: Vec<String>,
    /// PEM certificates trusted for TLS instead of the system's roots.
    tls_ca: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The UDP socket's port: a TCP connection must not have it (the core
    /// tells its allocations apart by local address).
    udp_port: u16,
    io_tx: mpsc::Sender<StreamIo>,
    io_rx: mpsc::Receiver<StreamIo>,
    /// Dropping them (with the driver) lets each connection write what is
    /// queued (the last DTLS records, the allocation's release), then
    /// close.
    writers: HashMap<usize, mpsc::Sender<Bytes>>,
}

impl TurnStreams {
    pub(super) fn new(names: Vec<String>, tls_ca: Option<String>, udp_port: u16) -> Self {
        let (io_tx, io_rx) = mpsc::channel(READ_QUEUE);
        TurnStreams {
            names,
            tls_ca,
            tls: None,
            udp_port,
            io_tx,
            io_rx,
            writers: HashMap::new(),
        }
    }

    /// The host names of servers from index `first` on (the TURN servers
    /// a restart will switch to; names past them are dropped).
    pub(super) fn set_names_from(&mut self, first: usize, names: Vec<String>) {
        self.names.resize(first, String::new());
        self.names.extend(names);
    }

    /// Starts connecting to `server` at `address`.
    pub(super) fn open(&mut self, server: usize, address: SocketAddr, transport: Transport) {
        let name = self.names.get(server).cloned().unwrap_or_default();
        let tls = match transport {
            Transport::Tls => match self.tls_config() {
                Ok(config) => Some((config, name)),
                Err(e) => {
                    warn!(%address, "no TLS to the TURN server: {e}");
                    let _ = self.io_tx.try_send(StreamIo::Closed { server });
                    return;
                }
            },
            _ => None,
        };
        let io = self.io_tx.clone();
        let udp_port = self.udp_port;
        tokio::spawn(async move {
            let reason = match connect(server, address, tls, udp_port, io.clone()).await {
                Ok(()) => "closed".to_owned(),
                Err(e) => e.to_string(),
            };
            debug!(%address, "TURN connection ended: {reason}");
            let _ = io.send(StreamIo::Closed { server }).await;
        });
    }

    /// The next report of a connection task (for the driver's `select!`).
    pub(super) async fn recv(&mut self) -> Option<StreamIo> {
        self.io_rx.recv().await
    }

    /// Hands a report to the core.
    pub(super) fn handle(&mut self, rtc: &mut Rtc, io: StreamIo) {
        match io {
            StreamIo::Connected {
                server,
                local,
                writer,
            } => {
                self.writers.insert(server, writer);
                rtc.turn_connected(now(), server, local);
            }
            StreamIo::Message {
                local,
                from,
                contents,
            } => rtc.handle_receive(now(), from, local, &contents),
            StreamIo::Closed { server } => {
                self.writers.remove(&server);
                rtc.turn_disconnected(now(), server);
            }
        }
    }

    /// Moves what the core queued for the connections to their writers.
    pub(super) fn flush(&mut self, rtc: &mut Rtc) {
        while let Some(t) = rtc.poll_turn_stream() {
            match self.writers.get(&t.server) {
                Some(w) => {
                    if w.try_send(t.contents).is_err() {
                        trace!(server = t.server, "TURN connection busy: message dropped");
                    }
                }
                None => trace!(server = t.server, "no TURN connection: message dropped"),
            }
        }
    }

    fn tls_config(&mut self) -> Result<Arc<rustls::ClientConfig>, String> {
        if let Some(c) = &self.tls {
            return Ok(c.clone());
        }
        let config = Arc::new(client_config(self.tls_ca.as_deref())?);
        self.tls = Some(config.clone());
        Ok(config)
    }
}

/// A TLS client verifying servers against `ca_pem`, or against the
/// system's CA bundle when `None` (`SSL_CERT_FILE` or the usual paths).
fn client_config(ca_pem: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let pem = match ca_pem {
        Some(pem) => pem.as_bytes().to_vec(),
        None => {
            let env = std::env::var("SSL_CERT_FILE").ok();
            let found = env
                .iter()
                .map(String::as_str)
                .chain(SYSTEM_ROOTS)
                .find_map(|path| std::fs::read(path).ok());
            found.ok_or("no system CA bundle found")?
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("CA certificates: {e}"))?;
        // A bundle may hold certificates webpki cannot use; skip those.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("no usable CA certificate".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Connects (TCP, then TLS when asked), reports the connection, then
/// moves messages both ways until either side closes.
async fn connect(
    server: usize,
    address: SocketAddr,
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
    udp_port: u16,
    io: mpsc::Sender<StreamIo>,
) -> std::io::Result<()> {
    let tcp_connect = || async {
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
    };
    let mut tcp = tcp_connect().await?;
    for _ in 1..CONNECT_ATTEMPTS {
        if tcp.local_addr()?.port() != udp_port {
            break;
        }
        tcp = tcp_connect().await?;
    }
    let local = tcp.local_addr()?;
    if local.port() == udp_port {
        return Err(std::io::Error::other(
            "the kernel keeps picking the UDP port",
        ));
    }
    let _ = tcp.set_nodelay(true);
    match tls {
        None => run(tcp, server, local, address, io).await,
        Some((config, name)) => {
            let name = ServerName::try_from(name)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let handshake = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            run(stream, server, local, address, io).await;
        }
    }
    Ok(())
}

/// One connection's loop: frames from the server to the driver, the
/// core's messages to the server.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    server: usize,
    local: SocketAddr,
    from: SocketAddr,
    io: mpsc::Sender<StreamIo>,
) {
    let (writer, mut outgoing) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    if io
        .send(StreamIo::Connected {
            server,
            local,
            writer,
        })
        .await
        .is_err()
    {
        return;
    }
    let mut decoder = TurnStreamDecoder::new();
    loop {
        tokio::select! {
            biased;
            message = outgoing.recv() => {
                let Some(message) = message else {
                    // The driver is gone and everything queued is written.
                    let _ = stream.shutdown().await;
                    return;
                };
                if stream.write_all(&message).await.is_err() {
                    return;
                }
            }
            read = stream.read(decoder.read_buf()) => {
                match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => decoder.filled(n),
                }
                loop {
                    match decoder.next_message() {
                        Ok(Some(m)) => {
                            let contents = Bytes::copy_from_slice(m);
                            let message = StreamIo::Message { local, from, contents };
                            if io.send(message).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            debug!(%from, "TURN stream framing lost: {e}");
                            return;
                        }
                    }
                }
            }
        }
    }
}
