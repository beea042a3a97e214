//! The one TURN client of the tests and benches, blocking, built on
//! `realtimer-stun`:
//! - [`Credentials`]: long-term credentials (RFC 8489 §9.2): a request goes
//!   out unsigned, the 401 teaches the realm and nonce, and the request is
//!   sent again signed; a 438 (stale nonce) brings a new nonce the same way;
//! - [`allocate_and_bind`]: a UDP allocation (RFC 8656 §7.1) and a
//!   ChannelBind to a peer (§12.1), with retransmissions, for the relay load
//!   generator and the fragmentation test;
//! - [`StreamClient`]: a client on a TCP connection that makes TCP
//!   allocations (RFC 6062), a control or a data connection.
//!
//! The setup is not what is measured, so this favours plainness over
//! speed; failures are `io::Error`s whose text says what the server answered.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use realtimer_stun::attributes::{
    ChannelNumber, ConnectionId, DontFragment, ErrorCode, Nonce, Realm, RequestedTransport,
    Username, XorPeerAddress, XorRelayedAddress,
};
use realtimer_stun::{
    Class, EncodeError, IntegrityKey, Message, MessageEncoder, Method, PasswordAlgorithm,
    TransactionId,
};

/// Wait for one answer over UDP before sending the request again.
const ANSWER_WAIT: Duration = Duration::from_millis(500);
/// Sends of one request over UDP before giving up.
const TRIES: usize = 6;

/// A long-term user.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    /// The USERNAME.
    pub name: &'a str,
    /// Its password.
    pub password: &'a str,
}

/// Adds a request's own attributes (before the credentials).
pub type Build<'a> = &'a dyn Fn(&mut MessageEncoder<'_>) -> Result<(), EncodeError>;

/// A user's credentials and what the server said of them so far: the realm
/// and nonce of the last challenge. Transaction ids are unique per client
/// (`tid_seed`) and request.
#[derive(Debug, Clone)]
pub struct Credentials {
    user: String,
    password: String,
    /// The realm, nonce and key of the last challenge.
    session: Option<(String, String, IntegrityKey)>,
    next_tid: u64,
}

impl Credentials {
    /// Credentials with no challenge seen yet.
    pub fn new(user: User<'_>, tid_seed: u64) -> Self {
        Credentials {
            user: user.name.to_owned(),
            password: user.password.to_owned(),
            session: None,
            next_tid: tid_seed << 16,
        }
    }

    /// A request with `build`'s attributes, signed once a challenge was
    /// seen, with a FINGERPRINT.
    pub fn request(&mut self, method: Method, build: Build<'_>) -> io::Result<Vec<u8>> {
        self.next_tid += 1;
        let mut id = [0x5a; 12];
        id[..8].copy_from_slice(&self.next_tid.to_be_bytes());
        let mut buf = Vec::new();
        let mut enc = MessageEncoder::new(&mut buf, Class::Request, method, TransactionId::new(id));
        build(&mut enc).map_err(invalid)?;
        if let Some((realm, nonce, key)) = &self.session {
            enc.add(&Username(&self.user)).map_err(invalid)?;
            enc.add(&Realm(realm)).map_err(invalid)?;
            enc.add(&Nonce(nonce)).map_err(invalid)?;
            enc.add_message_integrity(key).map_err(invalid)?;
        }
        enc.add_fingerprint().map_err(invalid)?;
        Ok(buf)
    }

    /// One request and its final response over `transport` (which sends a
    /// request and returns the answer): sent again signed after a 401 to an
    /// unsigned request, or with the new nonce after a 438.
    pub fn exchange(
        &mut self,
        method: Method,
        build: Build<'_>,
        mut transport: impl FnMut(&[u8]) -> io::Result<Vec<u8>>,
    ) -> io::Result<Vec<u8>> {
        for _ in 0..2 {
            let response = transport(&self.request(method, build)?)?;
            if !self.learn(&decode(&response)?)? {
                return Ok(response);
            }
        }
        Err(other(format!("{method:?}: still challenged after a retry")))
    }

    /// Takes the realm and nonce of a challenge worth answering; whether to
    /// send the request again.
    fn learn(&mut self, answer: &Message<'_>) -> io::Result<bool> {
        let code = answer.get::<ErrorCode>().map_err(invalid)?.map(|e| e.code);
        let retry = match code {
            Some(401) => self.session.is_none(),
            Some(438) => true,
            _ => false,
        };
        if !retry {
            return Ok(false);
        }
        let (Ok(Some(Realm(realm))), Ok(Some(Nonce(nonce)))) =
            (answer.get::<Realm>(), answer.get::<Nonce>())
        else {
            return Err(other(format!("error {code:?} without realm and nonce")));
        };
        let key =
            IntegrityKey::long_term(&self.user, realm, &self.password, PasswordAlgorithm::Md5)
                .map_err(invalid)?;
        self.session = Some((realm.to_owned(), nonce.to_owned(), key));
        Ok(true)
    }
}

/// Allocates a UDP relay for `socket` on `server` (asking for the DF bit
/// on what it relays when `dont_fragment`, RFC 8656 §7.1) and binds
/// `channel` to `peer`. The socket is left with a read timeout.
pub fn allocate_and_bind(
    socket: &UdpSocket,
    server: SocketAddr,
    user: User<'_>,
    tid_seed: u64,
    (channel, peer): (u16, SocketAddr),
    dont_fragment: bool,
) -> io::Result<()> {
    socket.set_read_timeout(Some(ANSWER_WAIT))?;
    let mut credentials = Credentials::new(user, tid_seed);
    let transport = |request: &[u8]| udp_exchange(socket, server, request);
    let answer = credentials.exchange(
        Method::ALLOCATE,
        &|enc| {
            enc.add(&RequestedTransport::UDP)?;
            if dont_fragment {
                enc.add(&DontFragment)?;
            }
            Ok(())
        },
        transport,
    )?;
    success(&answer)?
        .get::<XorRelayedAddress>()
        .map_err(invalid)?
        .ok_or_else(|| other("Allocate success without XOR-RELAYED-ADDRESS".into()))?;
    let answer = credentials.exchange(
        Method::CHANNEL_BIND,
        &|enc| {
            enc.add(&ChannelNumber(channel))?;
            enc.add(&XorPeerAddress(peer)).map(|_| ())
        },
        transport,
    )?;
    success(&answer).map(|_| ())
}

/// Sends `request` over UDP until a response with its transaction id comes
/// back (RFC 8489 §6.2.1, simplified: a fixed wait between sends).
pub fn udp_exchange(socket: &UdpSocket, server: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
    let tid = &request[8..20];
    let mut buf = vec![0; 2048];
    for _ in 0..TRIES {
        socket.send_to(request, server)?;
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) if from == server && n >= 20 && &buf[8..20] == tid => {
                    return Ok(buf[..n].to_vec());
                }
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(e),
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "no answer from the TURN server",
    ))
}

/// A TURN client on a TCP connection (RFC 6062: a control connection, or a
/// data connection after ConnectionBind).
#[derive(Debug)]
pub struct StreamClient {
    /// The connection; after [`StreamClient::bind`] a pipe to the peer.
    pub stream: TcpStream,
    credentials: Credentials,
}

impl StreamClient {
    /// Connects to the server's TCP listener on loopback `port`.
    pub fn connect(port: u16, user: User<'_>) -> io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(StreamClient {
            stream,
            credentials: Credentials::new(user, 1),
        })
    }

    /// A new connection to `port` that signs with this one's nonce.
    pub fn data_connection(&self, port: u16) -> io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut credentials = self.credentials.clone();
        credentials.next_tid += 1 << 12;
        Ok(StreamClient {
            stream,
            credentials,
        })
    }

    /// A request's final response (see [`Credentials::exchange`]).
    pub fn request(&mut self, method: Method, build: Build<'_>) -> io::Result<Vec<u8>> {
        let stream = &mut self.stream;
        self.credentials.exchange(method, build, |request| {
            stream.write_all(request)?;
            read_message(stream)
        })
    }

    /// A request's response when it is a success; an error naming the
    /// error code otherwise.
    pub fn request_ok(&mut self, method: Method, build: Build<'_>) -> io::Result<Vec<u8>> {
        let response = self.request(method, build)?;
        success(&response)?;
        Ok(response)
    }

    /// A TCP allocation: its relayed address.
    pub fn allocate_tcp(&mut self) -> io::Result<SocketAddr> {
        let response = self.request_ok(Method::ALLOCATE, &|enc| {
            enc.add(&RequestedTransport::TCP).map(|_| ())
        })?;
        decode(&response)?
            .get::<XorRelayedAddress>()
            .map_err(invalid)?
            .map(|a| a.0)
            .ok_or_else(|| other("Allocate success without XOR-RELAYED-ADDRESS".into()))
    }

    /// ConnectionBind for `connection`: from here on the stream is a pipe
    /// to the peer.
    pub fn bind(&mut self, connection: u32) -> io::Result<()> {
        self.request_ok(Method::CONNECTION_BIND, &|enc| {
            enc.add(&ConnectionId(connection)).map(|_| ())
        })
        .map(|_| ())
    }
}

/// The next STUN message on a stream (RFC 8489 §5: its length is in the
/// header).
pub fn read_message(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut message = vec![0u8; 20];
    stream.read_exact(&mut message)?;
    let len = usize::from(u16::from_be_bytes([message[2], message[3]]));
    message.resize(20 + len, 0);
    stream.read_exact(&mut message[20..])?;
    Ok(message)
}

/// The CONNECTION-ID of a message (a ConnectionAttempt indication or a
/// Connect response, RFC 6062 §4.3, §4.4).
pub fn connection_id(message: &[u8]) -> io::Result<u32> {
    decode(message)?
        .get::<ConnectionId>()
        .map_err(invalid)?
        .map(|c| c.0)
        .ok_or_else(|| other("no CONNECTION-ID".into()))
}

fn decode(bytes: &[u8]) -> io::Result<Message<'_>> {
    Message::decode(bytes).map_err(invalid)
}

/// The message when it is a success response, else its error code.
fn success(bytes: &[u8]) -> io::Result<Message<'_>> {
    let message = decode(bytes)?;
    if message.class() == Class::SuccessResponse {
        return Ok(message);
    }
    let code = message.get::<ErrorCode>().map_err(invalid)?.map(|e| e.code);
    Err(other(format!(
        "{:?} failed: error {code:?}",
        message.method()
    )))
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn other(text: String) -> io::Error {
    io::Error::other(text)
}
