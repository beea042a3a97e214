//! The peer side of TCP allocations (RFC 6062) for the TURN driver: a
//! listener per TCP relay, connections to peers made from the relayed
//! address, and the byte pipe between a client's data connection and its
//! peer connection. The core (`realtimer_turn::Server`) decides which
//! connections may exist and for how long; these tasks only move bytes.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::driver::{ConnectionKey, CoreSender, Input};
use crate::streams::ToClient;

/// Bytes in flight per direction of a pipe: what one read takes before it
/// is written on, so a slow side holds the other back (backpressure).
const PIPE_BUFFER: usize = 16 * 1024;

/// Bytes piped through TCP allocations, both directions.
#[derive(Debug, Default)]
pub(crate) struct PipeCounters {
    to_peers: AtomicU64,
    to_clients: AtomicU64,
}

impl PipeCounters {
    /// Prometheus lines for the piped bytes.
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write;
        for (name, help, counter) in [
            (
                "tcp_bytes_to_peers_total",
                "Bytes piped from data connections to TCP peers (RFC 6062).",
                &self.to_peers,
            ),
            (
                "tcp_bytes_to_clients_total",
                "Bytes piped from TCP peers to data connections (RFC 6062).",
                &self.to_clients,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP realtimer_turn_{name} {help}\n# TYPE realtimer_turn_{name} counter\nrealtimer_turn_{name} {}",
                counter.load(Ordering::Relaxed)
            );
        }
    }
}

/// One peer connection, by the CONNECTION-ID the core gave it.
pub(crate) enum PeerSide {
    /// A Connect's connection being made.
    Connecting(JoinHandle<()>),
    /// Up and waiting for ConnectionBind: the peer's bytes wait in the
    /// kernel's buffer meanwhile.
    Ready(TcpStream),
    /// Handed to the task of this data connection.
    Piped(ConnectionKey),
}

/// A TCP socket on `local` that may share its port: the relay's listener
/// and the connections made from the relayed address use the same one
/// (RFC 6062 §5.2).
fn relay_socket(local: SocketAddr) -> io::Result<TcpSocket> {
    let socket = match local {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(local)?;
    Ok(socket)
}

/// Listens on a TCP allocation's relayed address (RFC 6062 §5.1). Call
/// inside the tokio runtime.
pub(crate) fn listen(relay: SocketAddr) -> io::Result<TcpListener> {
    relay_socket(relay)?.listen(1024)
}

/// Hands every connection a peer makes to `relay` to the core, which
/// keeps it or has it dropped (RFC 6062 §5.3). Runs until aborted.
pub(crate) async fn accept(listener: TcpListener, relay: SocketAddr, core: CoreSender) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let input = Input::PeerAccepted {
                    relay,
                    peer,
                    stream,
                };
                if core.send(input).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                warn!(%relay, "accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Connects from `relay` to `peer` for a Connect (RFC 6062 §5.2) and
/// reports the outcome; the core bounds how long it may take.
pub(crate) async fn connect(
    connection: u32,
    relay: SocketAddr,
    peer: SocketAddr,
    core: CoreSender,
) {
    let stream = match relay_socket(relay) {
        Ok(socket) => socket.connect(peer).await,
        Err(e) => Err(e),
    };
    let stream = stream
        .inspect_err(|e| debug!(%relay, %peer, "connect: {e}"))
        .ok();
    let _ = core.send(Input::PeerConnected { connection, stream }).await;
}

/// Pipes bytes between a client's data connection and its peer connection
/// (RFC 6062 §5.4), starting with `early` bytes the client sent right
/// after its ConnectionBind. Each direction ends on its own at end of
/// stream, passed on as a half-close; the pipe ends when both have, on an
/// error, or when the core's thread drops `from_core`.
pub(crate) async fn pipe<S: AsyncRead + AsyncWrite + Unpin>(
    client: S,
    early: &[u8],
    peer: TcpStream,
    counters: &PipeCounters,
    mut from_core: mpsc::Receiver<ToClient>,
) {
    let _ = peer.set_nodelay(true);
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut peer_read, mut peer_write) = peer.into_split();
    let up = async {
        peer_write.write_all(early).await?;
        counters
            .to_peers
            .fetch_add(early.len() as u64, Ordering::Relaxed);
        copy(&mut client_read, &mut peer_write, &counters.to_peers).await
    };
    let down = copy(&mut peer_read, &mut client_write, &counters.to_clients);
    let closed = async { while from_core.recv().await.is_some() {} };
    tokio::select! {
        piped = async { tokio::try_join!(up, down) } => {
            if let Err(e) = piped {
                debug!("pipe: {e}");
            }
        }
        () = closed => {}
    }
}

/// Copies `from` to `to` until end of stream, then shuts `to`'s sending
/// side (a half-close), counting the bytes.
async fn copy<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    from: &mut R,
    to: &mut W,
    counter: &AtomicU64,
) -> io::Result<()> {
    let mut buf = vec![0u8; PIPE_BUFFER];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}
