//! TURN clients over TCP and TLS (RFC 8656 §3.1): tokio tasks that accept
//! connections, finish the TLS handshake, cut each stream into messages
//! with `realtimer_turn::StreamDecoder`, hand them to the core's thread,
//! and write back what the core sends. Bytes that are not TURN close that
//! connection only. A data connection of a TCP allocation (RFC 6062 §5.4)
//! turns into a byte pipe to its peer ([`crate::peers::pipe`]) once
//! its ConnectionBind is answered.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use realtimer_turn::{StreamDecoder, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::driver::{ConnectionKey, CoreSender, Input};
use crate::peers::{self, PipeCounters};

/// The STUN message types (RFC 8489 §5) of a ConnectionBind request and
/// its error response (RFC 6062 §6.1).
const CONNECTION_BIND_REQUEST: [u8; 2] = [0x00, 0x0B];
const CONNECTION_BIND_ERROR: [u8; 2] = [0x01, 0x1B];

/// What the core's thread sends a client connection, in order.
#[derive(Debug)]
pub(crate) enum ToClient {
    /// Framed messages to write.
    Bytes(Vec<u8>),
    /// RFC 6062 §5.4: from here on, pipe raw bytes between this connection
    /// and this peer connection.
    Pipe(TcpStream),
}

/// Accepts connections on one TCP listener until the task is aborted; the
/// core decides whether to keep each (connection limits).
pub(crate) async fn accept(
    listener: TcpListener,
    transport: Transport,
    local: SocketAddr,
    core: CoreSender,
) {
    loop {
        match listener.accept().await {
            Ok((stream, client)) => {
                let key = ConnectionKey {
                    transport,
                    listener: local,
                    client,
                };
                if core.send(Input::Accepted { key, stream }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // Out of file descriptors, mostly: wait rather than spin.
                warn!(%local, "accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Runs one admitted connection: the TLS handshake (bounded by
/// `handshake`) when `tls` is given, then [`serve`]; tells the core when it
/// ends.
pub(crate) async fn run(
    stream: TcpStream,
    key: ConnectionKey,
    id: u64,
    tls: Option<(tokio_rustls::TlsAcceptor, Duration)>,
    core: CoreSender,
    from_core: mpsc::Receiver<ToClient>,
    pipes: Arc<PipeCounters>,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        Some((acceptor, handshake)) => {
            match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve(tls, key, &core, from_core, &pipes).await,
                Ok(Err(e)) => debug!(client = %key.client, "TLS handshake failed: {e}"),
                Err(_) => debug!(client = %key.client, "TLS handshake timed out"),
            }
        }
        None => serve(stream, key, &core, from_core, &pipes).await,
    }
    let _ = core.send(Input::Closed { key, id }).await;
}

/// Reads messages from a client's stream into the core, and writes what
/// the core sends back, until either side ends or the stream is not TURN;
/// or pipes it to a peer when the core says so.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    key: ConnectionKey,
    core: &CoreSender,
    mut from_core: mpsc::Receiver<ToClient>,
    pipes: &PipeCounters,
) {
    let mut decoder = StreamDecoder::new();
    let mut out = Vec::new();
    // A ConnectionBind is with the core: the stream is not read meanwhile.
    let mut bind_pending = false;
    loop {
        tokio::select! {
            read = stream.read(decoder.read_buf()), if !bind_pending => {
                let n = match read {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        debug!(client = %key.client, "read: {e}");
                        break;
                    }
                };
                decoder.filled(n);
                loop {
                    match decoder.next_message() {
                        Ok(Some(message)) => {
                            // What follows a ConnectionBind may be the
                            // peer's bytes: read on once it is refused.
                            bind_pending = message.starts_with(&CONNECTION_BIND_REQUEST);
                            let data = message.to_vec();
                            if core.send(Input::Message { key, data }).await.is_err() {
                                return;
                            }
                            if bind_pending {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            debug!(client = %key.client, "closing the connection: {e}");
                            return;
                        }
                    }
                }
            }
            message = from_core.recv() => {
                // Coalesce what is queued into one write.
                out.clear();
                let mut next = message;
                let mut peer = None;
                while let Some(item) = next.take() {
                    match item {
                        ToClient::Bytes(bytes) => {
                            if bytes.starts_with(&CONNECTION_BIND_ERROR) {
                                bind_pending = false;
                            }
                            out.extend_from_slice(&bytes);
                        }
                        ToClient::Pipe(stream) => {
                            peer = Some(stream);
                            break;
                        }
                    }
                    if out.len() < 64 * 1024 {
                        next = from_core.try_recv().ok();
                    }
                }
                if out.is_empty() && peer.is_none() {
                    break;
                }
                if let Err(e) = write(&mut stream, &out).await {
                    debug!(client = %key.client, "write: {e}");
                    break;
                }
                if let Some(peer) = peer {
                    peers::pipe(stream, decoder.unread(), peer, pipes, from_core).await;
                    return;
                }
            }
        }
    }
    let _ = stream.shutdown().await;
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}
