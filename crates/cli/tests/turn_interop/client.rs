//! A small TURN client for tests and benchmarks, built on `realtimer-stun`:
//! long-term credentials with the nonce retry, and a client on a TCP
//! stream that makes TCP allocations (RFC 6062). Included by path; the
//! including crate root defines `REALM`.
// Each includer uses a part.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use realtimer_stun::attributes::{
    ConnectionId, ErrorCode, Nonce, Realm, RequestedTransport, Username, XorRelayedAddress,
};
use realtimer_stun::{
    Class, IntegrityKey, Message, MessageEncoder, Method, PasswordAlgorithm, TransactionId,
};

use super::REALM;

/// One request and its final response through `exchange`: signed with the
/// long-term credential once a nonce is known, retried once on 401/438
/// with the server's nonce (RFC 8489 §9.2).
pub(crate) fn signed_exchange(
    (username, password): (&str, &str),
    (nonce, tid): (&mut Option<String>, &mut u8),
    (method, build): (Method, &dyn Fn(&mut MessageEncoder<'_>)),
    mut exchange: impl FnMut(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    for _ in 0..2 {
        *tid += 1;
        let mut buf = Vec::new();
        let mut enc = MessageEncoder::new(
            &mut buf,
            Class::Request,
            method,
            TransactionId::new([*tid; 12]),
        );
        build(&mut enc);
        if let Some(nonce) = nonce.as_deref() {
            let key =
                IntegrityKey::long_term(username, REALM, password, PasswordAlgorithm::Md5).unwrap();
            enc.add(&Username(username)).unwrap();
            enc.add(&Realm(REALM)).unwrap();
            enc.add(&Nonce(nonce)).unwrap();
            enc.add_message_integrity(&key).unwrap();
        }
        enc.add_fingerprint().unwrap();
        let response = exchange(&buf);
        let m = Message::decode(&response).unwrap();
        let code = m.get::<ErrorCode>().unwrap().map(|e| e.code);
        if (code == Some(401) && nonce.is_none()) || code == Some(438) {
            *nonce = Some(m.get::<Nonce>().unwrap().unwrap().0.to_owned());
            continue;
        }
        return response;
    }
    panic!("no answer after a nonce retry");
}

/// A TURN client on a TCP connection (a control or data connection).
pub(crate) struct StreamClient {
    pub(crate) stream: TcpStream,
    nonce: Option<String>,
    tid: u8,
}

impl StreamClient {
    pub(crate) fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        StreamClient {
            stream,
            nonce: None,
            tid: 0,
        }
    }

    /// A new connection that signs with this one's nonce.
    pub(crate) fn data_connection(&self, port: u16) -> Self {
        let mut data = StreamClient::connect(port);
        data.nonce = self.nonce.clone();
        data.tid = 100;
        data
    }

    pub(crate) fn request(
        &mut self,
        method: Method,
        build: &dyn Fn(&mut MessageEncoder<'_>),
    ) -> Vec<u8> {
        let stream = &mut self.stream;
        signed_exchange(
            ("alice", "secret"),
            (&mut self.nonce, &mut self.tid),
            (method, build),
            |request| {
                stream.write_all(request).unwrap();
                read_message(stream)
            },
        )
    }

    /// A successful request's response.
    pub(crate) fn request_ok(
        &mut self,
        method: Method,
        build: &dyn Fn(&mut MessageEncoder<'_>),
    ) -> Vec<u8> {
        let response = self.request(method, build);
        let m = Message::decode(&response).unwrap();
        assert_eq!(
            m.class(),
            Class::SuccessResponse,
            "{method:?}: {:?}",
            m.get::<ErrorCode>().unwrap()
        );
        response
    }

    /// A TCP allocation: its relayed address.
    pub(crate) fn allocate_tcp(&mut self) -> SocketAddr {
        let response = self.request_ok(Method::ALLOCATE, &|enc| {
            enc.add(&RequestedTransport::TCP).unwrap();
        });
        let m = Message::decode(&response).unwrap();
        m.get::<XorRelayedAddress>().unwrap().unwrap().0
    }

    /// ConnectionBind for `connection`: from here on the stream is a pipe
    /// to the peer.
    pub(crate) fn bind(&mut self, connection: u32) {
        self.request_ok(Method::CONNECTION_BIND, &|enc| {
            enc.add(&ConnectionId(connection)).unwrap();
        });
    }
}

/// The next STUN message on a stream (RFC 8489 §5: its length is in the
/// header).
pub(crate) fn read_message(stream: &mut TcpStream) -> Vec<u8> {
    let mut message = vec![0u8; 20];
    stream.read_exact(&mut message).unwrap();
    let len = usize::from(u16::from_be_bytes([message[2], message[3]]));
    message.resize(20 + len, 0);
    stream.read_exact(&mut message[20..]).unwrap();
    message
}

pub(crate) fn connection_id(message: &[u8]) -> u32 {
    let m = Message::decode(message).unwrap();
    m.get::<ConnectionId>().unwrap().unwrap().0
}
