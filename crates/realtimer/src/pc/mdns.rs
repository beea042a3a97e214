//! The process's mDNS endpoint (RFC 6762), shared by every
//! PeerConnection: publishes the `.local` names of our host candidates
//! (`IceConfig::mdns_host_candidates`) and resolves the names peers send
//! (browsers hide their host addresses behind such names by default).
//!
//! One socket on UDP 5353 (SO_REUSEADDR and SO_REUSEPORT, so a system
//! responder such as avahi keeps working), driven by the sans-IO
//! [`realtimer_mdns::Mdns`] on a thread of its own. It joins 224.0.0.251
//! and sends only on the interfaces the connections use: the address a
//! published name stands for, the host addresses of a connection that
//! resolves a name (a connection limited to loopback never queries the
//! LAN). IPv4 only: names of IPv6 addresses are answered to unicast
//! queries but not announced. The thread exists because
//! PeerConnections live on any tokio runtime, and tests start and stop
//! many, so the shared endpoint cannot live on one: PeerConnections live on any tokio runtime, and
//! tests start and stop many, so the shared endpoint cannot live on one.
//! When 5353 cannot be bound, an ephemeral port still resolves names
//! (RFC 6762 §6.7 legacy unicast answers) but cannot publish them.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Instant;

use realtimer_mdns::{
    Mdns, MdnsConfig, MdnsEvent, Transmit, MAX_MESSAGE, MDNS_PORT, MDNS_V4_GROUP,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

/// Most commands queued for the endpoint's thread.
const COMMAND_QUEUE: usize = 1024;

enum Command {
    Register(String, IpAddr),
    Unregister(String),
    Resolve(String, Vec<IpAddr>, oneshot::Sender<Option<IpAddr>>),
}

/// A handle on the shared endpoint.
#[derive(Debug, Clone)]
pub(super) struct MdnsService {
    commands: mpsc::Sender<Command>,
}

/// A published name; dropping it unpublishes the name (with an RFC 6762
/// §10.1 goodbye).
#[derive(Debug)]
pub(super) struct MdnsRegistration {
    name: String,
    service: MdnsService,
}

impl Drop for MdnsRegistration {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        let _ = self.service.commands.try_send(Command::Unregister(name));
    }
}

impl MdnsService {
    /// The endpoint, started on first use; `None` if no socket could be
    /// opened at all (logged once).
    pub(super) fn get() -> Option<&'static MdnsService> {
        static SERVICE: OnceLock<Option<MdnsService>> = OnceLock::new();
        SERVICE.get_or_init(start).as_ref()
    }

    /// Publishes `name` for `address` while the registration lives.
    pub(super) fn register(&self, name: String, address: IpAddr) -> MdnsRegistration {
        if self
            .commands
            .try_send(Command::Register(name.clone(), address))
            .is_err()
        {
            warn!(%name, "mDNS endpoint busy or gone: name not published");
        }
        MdnsRegistration {
            name,
            service: self.clone(),
        }
    }

    /// Asks the links of `interfaces` (local addresses) for `name`;
    /// `None` when nobody answers in time.
    pub(super) async fn resolve(&self, name: String, interfaces: Vec<IpAddr>) -> Option<IpAddr> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Resolve(name, interfaces, tx))
            .await
            .ok()?;
        rx.await.ok().flatten()
    }
}

fn start() -> Option<MdnsService> {
    let (socket, publishing) = match open_socket(MDNS_PORT) {
        Ok(socket) => (socket, true),
        Err(e) => {
            warn!("mDNS: cannot bind UDP {MDNS_PORT} ({e}); resolving only, our names will not be published");
            match open_socket(0) {
                Ok(socket) => (socket, false),
                Err(e) => {
                    warn!("mDNS unavailable: {e}");
                    return None;
                }
            }
        }
    };
    let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
    let spawned = std::thread::Builder::new()
        .name("realtimer-mdns".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    warn!("mDNS runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                match UdpSocket::from_std(socket.into()) {
                    Ok(socket) => run(socket, publishing, rx).await,
                    Err(e) => warn!("mDNS socket: {e}"),
                }
            });
        });
    match spawned {
        Ok(_) => Some(MdnsService { commands }),
        Err(e) => {
            warn!("mDNS thread: {e}");
            None
        }
    }
}

fn open_socket(port: u16) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    socket.set_multicast_loop_v4(true)?;
    // RFC 6762 §11: link-local scope; 255 lets receivers check it.
    socket.set_multicast_ttl_v4(255)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[allow(clippy::disallowed_methods)] // the driver of a sans-IO core owns the clock
fn now() -> Instant {
    Instant::now()
}

async fn run(socket: UdpSocket, publishing: bool, mut commands: mpsc::Receiver<Command>) {
    let mut mdns = Mdns::new(MdnsConfig::default());
    let mut joined = HashSet::new();
    let mut waiting: HashMap<String, Vec<oneshot::Sender<Option<IpAddr>>>> = HashMap::new();
    let mut buf = vec![0; MAX_MESSAGE];
    loop {
        while let Some(t) = mdns.poll_transmit() {
            send(&socket, &mut joined, &t).await;
        }
        while let Some(event) = mdns.poll_event() {
            let (name, address) = match event {
                MdnsEvent::Resolved { name, address } => (name, Some(address)),
                MdnsEvent::NotFound { name } => (name, None),
                _ => continue,
            };
            for reply in waiting.remove(&name).unwrap_or_default() {
                let _ = reply.send(address);
            }
        }
        let timeout = mdns.poll_timeout();
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, source)) => mdns.handle_input(now(), source, &buf[..n]),
                Err(e) => debug!("mDNS receive: {e}"),
            },
            command = commands.recv() => match command {
                Some(Command::Register(name, address)) if publishing => {
                    join(&socket, &mut joined, address);
                    if let Err(e) = mdns.register(&name, address) {
                        warn!("mDNS: {e}");
                    }
                }
                Some(Command::Register(name, _)) => debug!(%name, "mDNS: not publishing (no port 5353)"),
                Some(Command::Unregister(name)) => mdns.unregister(&name),
                Some(Command::Resolve(name, interfaces, reply)) => {
                    let name = name.trim_end_matches('.').to_ascii_lowercase();
                    for &interface in &interfaces {
                        join(&socket, &mut joined, interface);
                    }
                    waiting.entry(name.clone()).or_default().push(reply);
                    mdns.resolve(now(), &name, &interfaces);
                }
                None => return,
            },
            () = sleep_until(timeout) => mdns.handle_timeout(now()),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Joins the group on the interface of `address` (IPv4), once.
fn join(socket: &UdpSocket, joined: &mut HashSet<Ipv4Addr>, address: IpAddr) {
    let IpAddr::V4(interface) = address else {
        return;
    };
    if joined.insert(interface) {
        if let Err(e) = socket.join_multicast_v4(MDNS_V4_GROUP, interface) {
            debug!(%interface, "mDNS: joining 224.0.0.251 failed: {e}");
        }
    }
}

/// Sends a multicast packet out of the interface the core chose (joining
/// the group there first), a unicast one directly.
async fn send(socket: &UdpSocket, joined: &mut HashSet<Ipv4Addr>, t: &Transmit) {
    match t.source.ip() {
        _ if !t.destination.ip().is_multicast() => {}
        IpAddr::V4(interface) if !interface.is_unspecified() => {
            join(socket, joined, IpAddr::V4(interface));
            if let Err(e) = socket2::SockRef::from(socket).set_multicast_if_v4(&interface) {
                debug!(%interface, "mDNS: cannot send from this interface: {e}");
                return;
            }
        }
        // IPv6 interfaces and packets without one stay home.
        _ => return,
    }
    if let Err(e) = socket.send_to(&t.contents, t.destination).await {
        debug!(to = %t.destination, interface = %t.source.ip(), "mDNS send: {e}");
    }
}
