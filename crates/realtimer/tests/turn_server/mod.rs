//! Our TURN server in the test's process: the `realtimer_turn` core on
//! tokio sockets, listening on 127.0.0.1 over UDP and TCP (one port) and,
//! with a certificate, TLS; one UDP socket per relayed address. Relays to
//! loopback are allowed (denied by default). Stops when dropped.
#![allow(clippy::disallowed_methods, unreachable_pub)] // the test drives the core's clock

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use realtimer_turn::{Credentials, Event, Server, ServerConfig, StreamDecoder, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub struct OurTurnServer {
    /// The UDP and TCP listener.
    pub address: SocketAddr,
    /// The TLS listener, when started with a certificate.
    pub tls_address: Option<SocketAddr>,
    task: JoinHandle<()>,
}

impl Drop for OurTurnServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now() -> Instant {
    Instant::now()
}

/// What the socket tasks hand the core's task.
enum Input {
    Peer {
        relay: SocketAddr,
        peer: SocketAddr,
        data: Vec<u8>,
    },
    Stream {
        transport: Transport,
        listener: SocketAddr,
        client: SocketAddr,
        message: Vec<u8>,
    },
    Writer {
        transport: Transport,
        client: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    },
    Closed {
        transport: Transport,
        listener: SocketAddr,
        client: SocketAddr,
    },
}

/// Starts the server with one user; `tls` = (certificate chain, key) files.
pub async fn start(
    realm: &str,
    user: &str,
    password: &str,
    tls: Option<(&str, &str)>,
) -> OurTurnServer {
    let mut credentials = Credentials::new(realm);
    credentials.add_user(user, password).unwrap();
    let mut config = ServerConfig::new(credentials, [std::process::id() as u8; 16]);
    config.peer_policy.allow = vec!["127.0.0.0/8".parse().unwrap()];
    let unix = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .as_secs();
    let mut server = Server::new(config, now(), unix).unwrap();
    // A port free for both UDP and TCP.
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()).await {
            break (udp, tcp);
        }
    };
    let address = udp.local_addr().unwrap();
    let (input_tx, mut input) = mpsc::channel::<Input>(1024);
    tokio::spawn(accept(tcp, Transport::Tcp, None, input_tx.clone()));
    let tls_address = match tls {
        Some((cert, key)) => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tls_address = listener.local_addr().unwrap();
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            tokio::spawn(accept(
                listener,
                Transport::Tls,
                Some(acceptor),
                input_tx.clone(),
            ));
            Some(tls_address)
        }
        None => None,
    };
    let task = tokio::spawn(async move {
        let mut relays: HashMap<SocketAddr, (Arc<UdpSocket>, JoinHandle<()>)> = HashMap::new();
        let mut writers: HashMap<(Transport, SocketAddr), mpsc::Sender<Vec<u8>>> = HashMap::new();
        let mut buf = vec![0u8; 65536];
        loop {
            while let Some(event) = server.poll_event() {
                match event {
                    Event::OpenRelay { relay } => match StdUdpSocket::bind(relay) {
                        Ok(s) => {
                            s.set_nonblocking(true).unwrap();
                            let socket = Arc::new(UdpSocket::from_std(s).unwrap());
                            let reader =
                                tokio::spawn(relay_reader(relay, socket.clone(), input_tx.clone()));
                            relays.insert(relay, (socket, reader));
                            server.relay_opened(now(), relay, true);
                        }
                        Err(_) => server.relay_opened(now(), relay, false),
                    },
                    Event::CloseRelay { relay } => {
                        if let Some((_, reader)) = relays.remove(&relay) {
                            reader.abort();
                        }
                    }
                    _ => {}
                }
            }
            while let Some(t) = server.poll_transmit() {
                if t.transport.is_stream() {
                    if let Some(w) = writers.get(&(t.transport, t.destination)) {
                        let _ = w.try_send(t.contents);
                    }
                    continue;
                }
                let socket = relays.get(&t.source).map_or(&udp, |(s, _)| s.as_ref());
                let _ = socket.send_to(&t.contents, t.destination).await;
                server.recycle(t.contents);
            }
            let deadline = server
                .poll_timeout()
                .unwrap_or_else(|| now() + Duration::from_secs(1));
            tokio::select! {
                r = udp.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        server.handle_client(now(), address, from, &buf[..n]);
                    }
                }
                Some(i) = input.recv() => match i {
                    Input::Peer { relay, peer, data } => server.handle_peer(now(), relay, peer, &data),
                    Input::Stream { transport, listener, client, message } => {
                        server.handle_stream_message(now(), transport, listener, client, &message);
                    }
                    Input::Writer { transport, client, tx } => {
                        writers.insert((transport, client), tx);
                    }
                    Input::Closed { transport, listener, client } => {
                        writers.remove(&(transport, client));
                        server.stream_closed(now(), transport, listener, client);
                    }
                },
                () = tokio::time::sleep_until(deadline.into()) => server.handle_timeout(now()),
            }
        }
    });
    OurTurnServer {
        address,
        tls_address,
        task,
    }
}

async fn relay_reader(relay: SocketAddr, socket: Arc<UdpSocket>, to: mpsc::Sender<Input>) {
    let mut buf = vec![0u8; 65536];
    while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
        let data = buf[..n].to_vec();
        if to.send(Input::Peer { relay, peer, data }).await.is_err() {
            break;
        }
    }
}

async fn accept(
    listener: TcpListener,
    transport: Transport,
    tls: Option<tokio_rustls::TlsAcceptor>,
    to: mpsc::Sender<Input>,
) {
    let local = listener.local_addr().unwrap();
    while let Ok((tcp, client)) = listener.accept().await {
        let to = to.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(tcp, transport, local, client, to).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        connection(stream, transport, local, client, to).await;
                    }
                }
            }
        });
    }
}

/// One client connection: messages to the core, the core's to the client.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    transport: Transport,
    listener: SocketAddr,
    client: SocketAddr,
    to: mpsc::Sender<Input>,
) {
    let (tx, mut outgoing) = mpsc::channel(256);
    let _ = to
        .send(Input::Writer {
            transport,
            client,
            tx,
        })
        .await;
    let mut decoder = StreamDecoder::new();
    'read: loop {
        tokio::select! {
            r = stream.read(decoder.read_buf()) => {
                match r {
                    Ok(0) | Err(_) => break 'read,
                    Ok(n) => decoder.filled(n),
                }
                while let Ok(Some(m)) = decoder.next_message() {
                    let message = m.to_vec();
                    let input = Input::Stream { transport, listener, client, message };
                    if to.send(input).await.is_err() {
                        break 'read;
                    }
                }
            }
            Some(m) = outgoing.recv() => {
                if stream.write_all(&m).await.is_err() {
                    break 'read;
                }
            }
        }
    }
    let _ = to
        .send(Input::Closed {
            transport,
            listener,
            client,
        })
        .await;
}
