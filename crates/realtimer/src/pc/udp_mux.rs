//! Shared-socket mode: many connections on one UDP port, for servers that
//! can open one port in their firewall.
//!
//! One task reads the socket and hands each datagram to its connection:
//! a STUN request by the local ICE ufrag in its USERNAME (RFC 8445 §7.2.2:
//! "RFRAG:LFRAG" as the peer writes it, our ufrag first), anything else by
//! its source address, learned from those requests and from the addresses a
//! connection sends its own checks to. A datagram nobody claims is dropped
//! and counted. Connections send straight through the shared socket.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use realtimer_stun::local_ufrag;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, trace};

use crate::RtcError;

use super::udp::{Outgoing, UdpIo};

/// Datagrams queued for one connection; past this, its datagrams are
/// dropped (UDP: the peer retransmits) so one slow connection cannot hold
/// up the others.
const CONNECTION_QUEUE: usize = 256;

/// Most queued datagrams one connection takes per wakeup.
const TAKE_BATCH: usize = 64;

/// One UDP socket shared by many [`PeerConnection`](super::PeerConnection)s
/// (set [`PeerConnectionConfig::udp_mux`](super::PeerConnectionConfig::udp_mux)).
/// Clones share the socket; its reading task ends once every clone and
/// every connection using it is gone.
///
/// Past ICE, datagrams are told apart by their source address only: two
/// connections of one mux with the same remote address (say, to one
/// remote port shared the same way) cannot both carry data.
#[derive(Clone)]
pub struct UdpMux {
    shared: Arc<Shared>,
    /// Stops the reading task when the last handle goes.
    _stop: Arc<StopOnDrop>,
}

impl std::fmt::Debug for UdpMux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpMux")
            .field("local_addr", &self.shared.local)
            .finish_non_exhaustive()
    }
}

struct StopOnDrop(Option<oneshot::Sender<()>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

struct Shared {
    io: UdpIo,
    local: SocketAddr,
    routes: Mutex<Routes>,
    dropped: AtomicU64,
}

/// Who gets what: connections by id, their ufrags and peer addresses.
#[derive(Default)]
struct Routes {
    next_id: u64,
    connections: HashMap<u64, mpsc::Sender<Datagram>>,
    by_ufrag: HashMap<String, u64>,
    by_address: HashMap<SocketAddr, u64>,
}

/// One datagram for a connection.
#[derive(Debug)]
pub(super) struct Datagram {
    from: SocketAddr,
    to_ip: Option<IpAddr>,
    contents: Bytes,
    /// When the kernel received it.
    arrival: Instant,
}

impl UdpMux {
    /// Binds `address` (port 0: any) and starts reading it; call from
    /// within a tokio runtime.
    pub async fn bind(address: SocketAddr) -> Result<UdpMux, RtcError> {
        let io = UdpIo::bind_addr(address).await?;
        let local = io.local_addr()?;
        let shared = Arc::new(Shared {
            io,
            local,
            routes: Mutex::new(Routes::default()),
            dropped: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(read(shared.clone(), stop_rx));
        Ok(UdpMux {
            shared,
            _stop: Arc::new(StopOnDrop(Some(stop_tx))),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Datagrams dropped so far: from a source no connection knows, or for
    /// a connection whose queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// A new connection's end of the socket.
    pub(super) fn port(&self) -> MuxPort {
        let (tx, rx) = mpsc::channel(CONNECTION_QUEUE);
        let mut routes = self.shared.routes();
        let id = routes.next_id;
        routes.next_id += 1;
        routes.connections.insert(id, tx);
        MuxPort {
            mux: self.clone(),
            id,
            rx,
            first: None,
        }
    }
}

impl Shared {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        // A panic while holding the lock leaves plain maps behind: usable.
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands one read to its connection, or drops it.
    fn route(&self, from: SocketAddr, to_ip: Option<IpAddr>, contents: &[u8], arrival: Instant) {
        let mut routes = self.routes();
        let id = match local_ufrag(contents).and_then(|u| routes.by_ufrag.get(u).copied()) {
            Some(id) => {
                // RFC 8445 §7.3: a check names a pair; its source is where
                // the peer's DTLS and data will come from too.
                routes.by_address.insert(from, id);
                Some(id)
            }
            None => routes.by_address.get(&from).copied(),
        };
        let sent = id.and_then(|id| routes.connections.get(&id)).map(|tx| {
            tx.try_send(Datagram {
                from,
                to_ip,
                contents: Bytes::copy_from_slice(contents),
                arrival,
            })
        });
        drop(routes);
        if !matches!(sent, Some(Ok(()))) {
            trace!(%from, len = contents.len(), "shared socket: datagram dropped");
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The reading task: until stopped, everything the socket gets goes to
/// [`Shared::route`].
async fn read(shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            r = shared.io.readable() => {
                if let Err(e) = r {
                    debug!("shared socket: {e}");
                    continue;
                }
                // Each datagram of a GRO batch on its own: two checks for
                // two of our connections can come from one peer socket.
                let r = shared.io.try_recv(|from, to_ip, contents, arrival| {
                    shared.route(from, to_ip, contents, arrival);
                });
                if let Err(e) = r {
                    debug!("shared socket receive: {e}");
                }
            }
        }
    }
    debug!(local = %shared.local, "shared socket closed");
}

/// One connection's end of a [`UdpMux`]: its queue of datagrams and its
/// routes, removed when it is dropped.
#[derive(Debug)]
pub(super) struct MuxPort {
    mux: UdpMux,
    id: u64,
    rx: mpsc::Receiver<Datagram>,
    /// What `readable` took from the queue.
    first: Option<Datagram>,
}

impl MuxPort {
    /// The shared socket.
    pub(super) fn io(&self) -> &UdpIo {
        &self.mux.shared.io
    }

    /// Claims STUN requests for `ufrag` (the connection's current local
    /// ufrag; earlier ones stay until the connection closes, for checks
    /// still on their way after an ICE restart).
    pub(super) fn claim_ufrag(&self, ufrag: &str) {
        let mut routes = self.mux.shared.routes();
        if routes.by_ufrag.get(ufrag) != Some(&self.id) {
            routes.by_ufrag.insert(ufrag.to_owned(), self.id);
        }
    }

    /// Sends what `next` gives; STUN goes to addresses whose answers are
    /// then ours.
    pub(super) async fn send_all(&self, mut next: impl FnMut() -> Option<Outgoing>) {
        let shared = &self.mux.shared;
        let id = self.id;
        shared
            .io
            .send_all(|| {
                let t = next()?;
                if matches!(t.contents.first(), Some(0..=3)) {
                    shared
                        .routes()
                        .by_address
                        .entry(t.destination)
                        .or_insert(id);
                }
                Some(t)
            })
            .await;
    }

    /// Waits for a datagram (cancel-safe: what arrives is kept for
    /// [`MuxPort::try_recv`]). Never returns once the socket is closed.
    pub(super) async fn readable(&mut self) -> io::Result<()> {
        if self.first.is_none() {
            match self.rx.recv().await {
                Some(d) => self.first = Some(d),
                None => std::future::pending::<()>().await,
            }
        }
        Ok(())
    }

    /// Hands what is queued (a batch) to `handle`, as the own socket's
    /// `try_recv` does.
    pub(super) fn try_recv(
        &mut self,
        mut handle: impl FnMut(SocketAddr, Option<IpAddr>, &[u8], Instant),
    ) -> io::Result<usize> {
        let mut count = 0;
        let mut next = self.first.take();
        for _ in 0..TAKE_BATCH {
            let Some(d) = next.take().or_else(|| self.rx.try_recv().ok()) else {
                break;
            };
            handle(d.from, d.to_ip, &d.contents, d.arrival);
            count += 1;
        }
        Ok(count)
    }
}

impl Drop for MuxPort {
    fn drop(&mut self) {
        let mut routes = self.mux.shared.routes();
        let id = self.id;
        routes.connections.remove(&id);
        routes.by_ufrag.retain(|_, v| *v != id);
        routes.by_address.retain(|_, v| *v != id);
    }
}
