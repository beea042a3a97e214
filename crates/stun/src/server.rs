//! The server side of Binding (RFC 8489 §6.3), sans-IO: a request in, the
//! response bytes out.

use std::net::SocketAddr;

use crate::attributes::{ErrorCode, UnknownAttributeList, XorMappedAddress};
use crate::encode::MessageEncoder;
use crate::error::DecodeError;
use crate::message::{Class, Message, Method};
use crate::AttributeType;

/// What [`BindingServer::handle`] did with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindingOutcome {
    /// A response was written to the output buffer; send it to the source.
    Respond,
    /// Nothing to send: indications and responses are not answered
    /// (RFC 8489 §6.3.2, §6.3.3).
    Ignore,
    /// Not a well-formed STUN message; RFC 8489 §6.3 says to discard it
    /// silently. The error is for logs and metrics.
    Malformed(DecodeError),
}

/// Answers Binding requests with the source's reflexive address.
///
/// Anyone can send it a request from a forged source, so a response carries
/// nothing that is not needed (no SOFTWARE, FINGERPRINT only when the request
/// has one, RFC 8489 §14.7): a 20-byte request gets 32 bytes back over IPv4.
#[derive(Debug, Clone, Default)]
pub struct BindingServer {
    _private: (),
}

/// The largest attribute list a 420 response repeats.
const MAX_UNKNOWN_LISTED: usize = 16;

impl BindingServer {
    /// A Binding server.
    pub fn new() -> Self {
        BindingServer::default()
    }

    /// Handles one datagram from `source`, writing any response into `out`
    /// (cleared first).
    ///
    /// - Binding request: success with XOR-MAPPED-ADDRESS (RFC 8489 §6.3.1.1).
    /// - Request with unknown comprehension-required attributes: 420 with
    ///   UNKNOWN-ATTRIBUTES (§6.3.1).
    /// - Request of another method: 400, as this server offers only Binding.
    pub fn handle(&self, datagram: &[u8], source: SocketAddr, out: &mut Vec<u8>) -> BindingOutcome {
        out.clear();
        let request = match Message::decode(datagram) {
            Ok(m) => m,
            Err(e) => return BindingOutcome::Malformed(e),
        };
        if request.class() != Class::Request {
            return BindingOutcome::Ignore;
        }
        let mut unknown = [AttributeType(0); MAX_UNKNOWN_LISTED];
        let mut unknown_count = 0;
        for t in request
            .unknown_comprehension_required()
            .take(MAX_UNKNOWN_LISTED)
        {
            unknown[unknown_count] = t;
            unknown_count += 1;
        }
        match self.respond(&request, source, &unknown[..unknown_count], out) {
            Ok(_) => BindingOutcome::Respond,
            // Our own attributes always fit; should one not, send nothing.
            Err(_) => {
                out.clear();
                BindingOutcome::Ignore
            }
        }
    }

    fn respond(
        &self,
        request: &Message<'_>,
        source: SocketAddr,
        unknown: &[AttributeType],
        out: &mut Vec<u8>,
    ) -> Result<usize, crate::EncodeError> {
        let tid = request.transaction_id();
        let mut enc;
        if !unknown.is_empty() {
            enc = MessageEncoder::new(out, Class::ErrorResponse, request.method(), tid);
            enc.add(&ErrorCode::new(
                ErrorCode::UNKNOWN_ATTRIBUTE,
                "Unknown Attribute",
            ))?;
            enc.add(&UnknownAttributeList(unknown))?;
        } else if request.method() != Method::BINDING {
            enc = MessageEncoder::new(out, Class::ErrorResponse, request.method(), tid);
            enc.add(&ErrorCode::new(ErrorCode::BAD_REQUEST, "Bad Request"))?;
        } else {
            enc = MessageEncoder::new(out, Class::SuccessResponse, Method::BINDING, tid);
            enc.add(&XorMappedAddress(source))?;
        }
        if request.has_fingerprint() {
            enc.add_fingerprint()
        } else {
            Ok(enc.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::UnknownAttributes;
    use crate::TransactionId;

    fn request(method: Method, extra: Option<AttributeType>) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut enc = MessageEncoder::new(
            &mut buf,
            Class::Request,
            method,
            TransactionId::new([8; 12]),
        );
        if let Some(t) = extra {
            enc.add_raw(t, b"x").unwrap();
        }
        enc.finish();
        buf
    }

    #[test]
    fn answers_binding_with_the_source_address() {
        let server = BindingServer::new();
        let source: SocketAddr = "[2001:db8::7]:40000".parse().unwrap();
        let mut out = Vec::new();
        assert_eq!(
            server.handle(&request(Method::BINDING, None), source, &mut out),
            BindingOutcome::Respond
        );
        let response = Message::decode(&out).unwrap();
        assert_eq!(response.class(), Class::SuccessResponse);
        assert_eq!(response.transaction_id(), TransactionId::new([8; 12]));
        assert_eq!(
            response.get::<XorMappedAddress>().unwrap(),
            Some(XorMappedAddress(source))
        );
        // Nothing but the address: no SOFTWARE, and no FINGERPRINT as the
        // request had none.
        assert_eq!(response.attributes().count(), 1);
        assert!(!response.has_fingerprint());
        assert_eq!(out.len(), 20 + 4 + 20);
    }

    #[test]
    fn a_response_is_at_most_the_request_plus_the_address() {
        let server = BindingServer::new();
        let mut out = Vec::new();
        for (source, answer_len) in [("192.0.2.1:9", 32), ("[2001:db8::1]:9", 44)] {
            let source: SocketAddr = source.parse().unwrap();
            let plain = request(Method::BINDING, None);
            assert_eq!(plain.len(), 20);
            server.handle(&plain, source, &mut out);
            assert_eq!(out.len(), answer_len);
            // With FINGERPRINT in the request (as ICE agents send), the
            // response has one too: 8 bytes more each way.
            let mut fingerprinted = Vec::new();
            let enc = MessageEncoder::new(
                &mut fingerprinted,
                Class::Request,
                Method::BINDING,
                TransactionId::new([3; 12]),
            );
            enc.add_fingerprint().unwrap();
            server.handle(&fingerprinted, source, &mut out);
            let response = Message::decode(&out).unwrap();
            assert!(response.has_fingerprint());
            assert_eq!(out.len(), answer_len + 8);
        }
    }

    #[test]
    fn unknown_attributes_get_420_and_other_methods_400() {
        let server = BindingServer::default();
        let source: SocketAddr = "192.0.2.9:1".parse().unwrap();
        let mut out = Vec::new();
        let with_unknown = request(Method::BINDING, Some(AttributeType(0x7001)));
        assert_eq!(
            server.handle(&with_unknown, source, &mut out),
            BindingOutcome::Respond
        );
        let response = Message::decode(&out).unwrap();
        assert_eq!(response.class(), Class::ErrorResponse);
        assert_eq!(response.get::<ErrorCode>().unwrap().unwrap().code, 420);
        let listed: Vec<_> = response
            .get::<UnknownAttributes>()
            .unwrap()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(listed, vec![AttributeType(0x7001)]);

        assert_eq!(
            server.handle(&request(Method::ALLOCATE, None), source, &mut out),
            BindingOutcome::Respond
        );
        let response = Message::decode(&out).unwrap();
        assert_eq!(response.get::<ErrorCode>().unwrap().unwrap().code, 400);
    }

    #[test]
    fn ignores_non_requests_and_garbage() {
        let server = BindingServer::default();
        let source: SocketAddr = "192.0.2.9:1".parse().unwrap();
        let mut out = vec![1, 2, 3];
        let mut indication = Vec::new();
        MessageEncoder::new(
            &mut indication,
            Class::Indication,
            Method::BINDING,
            TransactionId::new([1; 12]),
        )
        .finish();
        assert_eq!(
            server.handle(&indication, source, &mut out),
            BindingOutcome::Ignore
        );
        assert!(out.is_empty());
        assert!(matches!(
            server.handle(b"GET / HTTP/1.1\r\n\r\n", source, &mut out),
            BindingOutcome::Malformed(_)
        ));
    }
}
