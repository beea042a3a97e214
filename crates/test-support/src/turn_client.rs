//! A blocking TURN client for the relay load generator
//! (`realtimer-turn`'s `relay_load` bench) and the CLI's fragmentation
//! test: an allocation over UDP with
//! long-term credentials (RFC 8656 §7.1: Allocate, 401 with REALM and
//! NONCE, Allocate again signed; RFC 8489 §9.2), then a ChannelBind to an
//! echo peer (§12.1), which also installs the permission. Blocking, with
//! retransmissions: the setup is not what is measured.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use realtimer_stun::attributes::{
    ChannelNumber, DontFragment, ErrorCode, Nonce, Realm, RequestedTransport, Username,
    XorPeerAddress, XorRelayedAddress,
};
use realtimer_stun::{
    Class, IntegrityKey, Message, MessageEncoder, Method, PasswordAlgorithm, TransactionId,
};

/// Wait for one answer before sending the request again.
const ANSWER_WAIT: Duration = Duration::from_millis(500);
/// Sends of one request before giving up.
const TRIES: usize = 6;

/// A long-term user.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    /// The USERNAME.
    pub name: &'a str,
    /// Its password.
    pub password: &'a str,
}

/// What the server told one client: the credentials in use and the relay.
struct Session {
    realm: String,
    nonce: String,
    key: IntegrityKey,
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
    let mut tid = Transactions(tid_seed << 8);
    let add_transport = |enc: &mut MessageEncoder<'_>| {
        enc.add(&RequestedTransport::UDP)?;
        if dont_fragment {
            enc.add(&DontFragment)?;
        }
        Ok(())
    };
    // RFC 8656 §7.1: the first Allocate, unsigned, learns REALM and NONCE.
    let challenge = exchange(
        socket,
        server,
        &request(Method::ALLOCATE, tid.next(), add_transport, None)?,
    )?;
    let message = decode(&challenge)?;
    let code = message.get::<ErrorCode>().map_err(invalid)?.map(|e| e.code);
    let (Some(401), Ok(Some(Realm(realm))), Ok(Some(Nonce(nonce)))) =
        (code, message.get::<Realm>(), message.get::<Nonce>())
    else {
        return Err(other(format!(
            "expected 401 with realm and nonce, got {code:?}"
        )));
    };
    let key = IntegrityKey::long_term(user.name, realm, user.password, PasswordAlgorithm::Md5)
        .map_err(|e| other(e.to_string()))?;
    let session = Session {
        realm: realm.to_owned(),
        nonce: nonce.to_owned(),
        key,
    };
    let signed = (user.name, &session);
    let answer = exchange(
        socket,
        server,
        &request(Method::ALLOCATE, tid.next(), add_transport, Some(signed))?,
    )?;
    success(&answer)?
        .get::<XorRelayedAddress>()
        .map_err(invalid)?
        .ok_or_else(|| other("Allocate success without XOR-RELAYED-ADDRESS".into()))?;
    let bind = |enc: &mut MessageEncoder<'_>| {
        enc.add(&ChannelNumber(channel))?;
        enc.add(&XorPeerAddress(peer)).map(|_| ())
    };
    let answer = exchange(
        socket,
        server,
        &request(Method::CHANNEL_BIND, tid.next(), bind, Some(signed))?,
    )?;
    success(&answer).map(|_| ())
}

/// Transaction ids unique per client and request.
struct Transactions(u64);

impl Transactions {
    fn next(&mut self) -> TransactionId {
        self.0 += 1;
        let mut id = [0x5a; 12];
        id[..8].copy_from_slice(&self.0.to_be_bytes());
        TransactionId::new(id)
    }
}

/// A request with the attributes `build` adds, signed for `session`'s user
/// when given.
fn request(
    method: Method,
    tid: TransactionId,
    build: impl Fn(&mut MessageEncoder<'_>) -> Result<(), realtimer_stun::EncodeError>,
    signed: Option<(&str, &Session)>,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut enc = MessageEncoder::new(&mut buf, Class::Request, method, tid);
    build(&mut enc).map_err(invalid)?;
    if let Some((user, session)) = signed {
        enc.add(&Username(user)).map_err(invalid)?;
        enc.add(&Realm(&session.realm)).map_err(invalid)?;
        enc.add(&Nonce(&session.nonce)).map_err(invalid)?;
        enc.add_message_integrity(&session.key).map_err(invalid)?;
    }
    enc.add_fingerprint().map_err(invalid)?;
    Ok(buf)
}

/// Sends `request` until a response with its transaction id comes back.
fn exchange(socket: &UdpSocket, server: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
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
