//! TURN clients over TCP and TLS (RFC 8656 §3.1): tokio tasks that accept
//! connections, finish the TLS handshake, cut each stream into messages
//! with `realtimer_turn::StreamDecoder`, hand them to the core's thread,
//! and write back what the core sends. Bytes that are not TURN close that
//! connection only.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use realtimer_turn::{StreamDecoder, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::turn_driver::{ConnectionKey, CoreSender, Input};

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
    from_core: mpsc::Receiver<Vec<u8>>,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        Some((acceptor, handshake)) => {
            match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve(tls, key, &core, from_core).await,
                Ok(Err(e)) => debug!(client = %key.client, "TLS handshake failed: {e}"),
                Err(_) => debug!(client = %key.client, "TLS handshake timed out"),
            }
        }
        None => serve(stream, key, &core, from_core).await,
    }
    let _ = core.send(Input::Closed { key, id }).await;
}

/// Reads messages from a client's stream into the core, and writes what
/// the core sends back, until either side ends or the stream is not TURN.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    key: ConnectionKey,
    core: &CoreSender,
    mut from_core: mpsc::Receiver<Vec<u8>>,
) {
    let mut decoder = StreamDecoder::new();
    let mut out = Vec::new();
    loop {
        tokio::select! {
            read = stream.read(decoder.read_buf()) => {
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
                            let data = message.to_vec();
                            if core.send(Input::Message { key, data }).await.is_err() {
                                return;
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
                let Some(first) = message else { break };
                // Coalesce what is queued into one write.
                out.clear();
                out.extend_from_slice(&first);
                while out.len() < 64 * 1024 {
                    match from_core.try_recv() {
                        Ok(more) => out.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                if let Err(e) = write(&mut stream, &out).await {
                    debug!(client = %key.client, "write: {e}");
                    break;
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
