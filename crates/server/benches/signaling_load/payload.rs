//! What the clients send: browser-like SDP offers/answers and ICE candidates
//! as the codelab's `message` payload, each stamped with its send time, and
//! how a receiver reads the stamp back without parsing the whole JSON.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The two members of a room: A creates it (and sends the offer), B joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    A,
    B,
}

/// Distinct SDPs and candidates per kind, so a compressing server or
/// transport sees realistic text rather than one repeated message.
const POOL: usize = 64;

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn token(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect()
}

fn digits(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// An audio + video session description as Chrome writes one (RFC 8866
/// lines, RFC 8829 attributes): random ICE credentials, DTLS fingerprint,
/// SSRCs and msids, padded with `a=ssrc` lines to `len` bytes of SDP text.
fn session_description(rng: &mut StdRng, len: usize) -> String {
    let ufrag = token(rng, 4);
    let pwd = token(rng, 24);
    let fingerprint: Vec<String> = (0..32)
        .map(|_| format!("{:02X}", rng.random::<u8>()))
        .collect();
    let fingerprint = fingerprint.join(":");
    let stream = token(rng, 36);
    let mut sdp = format!(
        "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
         a=extmap-allow-mixed\r\na=msid-semantic: WMS {stream}\r\n",
        digits(rng, 19)
    );
    for (mid, (kind, codecs)) in [
        (
            "audio",
            &[
                "111 opus/48000/2",
                "63 red/48000/2",
                "126 telephone-event/8000",
            ][..],
        ),
        (
            "video",
            &[
                "96 VP8/90000",
                "97 rtx/90000",
                "98 VP9/90000",
                "99 rtx/90000",
                "45 AV1/90000",
                "102 H264/90000",
            ][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let pts: Vec<&str> = codecs
            .iter()
            .map(|c| c.split(' ').next().unwrap_or("0"))
            .collect();
        sdp += &format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF {}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=ice-options:trickle\r\n\
             a=fingerprint:sha-256 {fingerprint}\r\na=setup:actpass\r\na=mid:{mid}\r\n\
             a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
             a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
             a=sendrecv\r\na=msid:{stream} {}\r\na=rtcp-mux\r\n",
            pts.join(" "),
            token(rng, 36)
        );
        for codec in codecs {
            let pt = pts[0];
            sdp += &format!("a=rtpmap:{codec}\r\na=rtcp-fb:{pt} transport-cc\r\n");
        }
        let ssrc = digits(rng, 10);
        sdp += &format!("a=ssrc:{ssrc} cname:{}\r\n", token(rng, 16));
    }
    while sdp.len() < len {
        sdp += &format!("a=ssrc:{} cname:{}\r\n", digits(rng, 10), token(rng, 16));
    }
    sdp.truncate(len);
    sdp
}

/// An RFC 8839 §5.1 candidate line, padded with extension attributes to
/// `len` bytes.
fn candidate(rng: &mut StdRng, len: usize) -> String {
    let mut line = format!(
        "candidate:{} 1 udp 2122260223 192.168.{}.{} {} typ host generation 0 ufrag {} network-id 1",
        digits(rng, 10),
        rng.random_range(0..=255u8),
        rng.random_range(1..=254u8),
        rng.random_range(1024..=65535u16),
        token(rng, 4)
    );
    while line.len() < len {
        line += &format!(" x-{}", token(rng, 6));
    }
    line.truncate(len);
    line
}

/// One message ready to send but for its room, sequence number, sender
/// and stamp: those are written after `prefix` (the framing and the
/// message's other fields), then the object is closed and `suffix` ends it.
#[derive(Debug)]
struct Template {
    prefix: Vec<u8>,
    suffix: &'static [u8],
}

/// The messages every client sends, framed for one signaling front.
#[derive(Debug)]
pub(crate) struct Payloads {
    /// Per role: offers (A) or answers (B).
    descriptions: [Vec<Template>; 2],
    candidates: [Vec<Template>; 2],
    sdp_every: usize,
}

/// How `message` requests are framed on a front.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framing {
    /// Before the message object (`42["message",` for Socket.IO).
    pub(crate) open: &'static str,
    /// After it (`]`).
    pub(crate) close: &'static [u8],
}

impl Payloads {
    /// Builds the pools: a `message` whose JSON is about `sdp_bytes` long
    /// every `sdp_every` messages, `cand_bytes` long candidates otherwise.
    pub(crate) fn new(
        framing: Framing,
        sdp_bytes: usize,
        cand_bytes: usize,
        sdp_every: usize,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(7);
        // `{"type":"offer","sdp":"…","r":123456,"f":"A","n":123,"t":12345678901234}`:
        // the JSON around the SDP text, which also grows by escaping CRLF.
        let description = |rng: &mut StdRng, role: Role| {
            let kind = match role {
                Role::A => "offer",
                Role::B => "answer",
            };
            let target = sdp_bytes.saturating_sub(70);
            let mut sdp = session_description(rng, target);
            // JSON escapes each CR and LF as two characters.
            let mut escaped =
                sdp.len() + sdp.bytes().filter(|b| matches!(b, b'\r' | b'\n')).count();
            while escaped > target {
                escaped -= match sdp.pop() {
                    Some('\r' | '\n') => 2,
                    Some(_) => 1,
                    None => break,
                };
            }
            let sdp = serde_json::to_string(&sdp).unwrap_or_default();
            format!(r#"{{"type":"{kind}","sdp":{sdp},"#)
        };
        let ice = |rng: &mut StdRng| {
            let line = candidate(rng, cand_bytes.saturating_sub(110).max(16));
            format!(r#"{{"type":"candidate","label":0,"id":"0","candidate":"{line}","#)
        };
        let mut pools = |make: &mut dyn FnMut(&mut StdRng, Role) -> String| {
            [Role::A, Role::B].map(|role| {
                (0..POOL)
                    .map(|_| {
                        let head = make(&mut rng, role);
                        let mut prefix = framing.open.as_bytes().to_vec();
                        prefix.extend_from_slice(head.as_bytes());
                        Template {
                            prefix,
                            suffix: framing.close,
                        }
                    })
                    .collect()
            })
        };
        let descriptions = pools(&mut |rng, role| description(rng, role));
        let candidates = pools(&mut |rng, _| ice(rng));
        Self {
            descriptions,
            candidates,
            sdp_every: sdp_every.max(1),
        }
    }

    /// Writes message `n` of the client `role` in room `room`, sent at
    /// `t_ns`, into `buf` (reused: its space is reclaimed once the frame it
    /// handed out before has been written and dropped).
    pub(crate) fn message(
        &self,
        buf: &mut BytesMut,
        room: usize,
        role: Role,
        n: usize,
        t_ns: u64,
    ) -> Bytes {
        let pool = if n % self.sdp_every == 0 {
            &self.descriptions
        } else {
            &self.candidates
        };
        let template = &pool[role as usize][(room * 7 + n) % POOL];
        buf.reserve(template.prefix.len() + 64 + template.suffix.len());
        buf.put_slice(&template.prefix);
        let from = match role {
            Role::A => 'A',
            Role::B => 'B',
        };
        // Writing into a BytesMut cannot fail.
        let _ = write!(buf, r#""r":{room},"n":{n},"f":"{from}","t":{t_ns}}}"#);
        buf.put_slice(template.suffix);
        buf.split().freeze()
    }
}

/// What a receiver reads back from a relayed message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) room: usize,
    pub(crate) from: Role,
    pub(crate) t_ns: u64,
}

/// Reads the room, sender and send time of a relayed message (anywhere in
/// `frame`: servers may reorder the object's keys). Quoted text inside the
/// JSON escapes its quotes, so `"t":` can only be the key.
pub(crate) fn stamp(frame: &str) -> Option<Stamp> {
    let number = |key: &str| -> Option<u64> {
        let at = frame.rfind(key)? + key.len();
        let rest = &frame[at..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    };
    let from = match frame
        .rfind("\"f\":\"")
        .map(|at| frame.as_bytes().get(at + 5))
    {
        Some(Some(b'A')) => Role::A,
        Some(Some(b'B')) => Role::B,
        _ => return None,
    };
    Some(Stamp {
        room: usize::try_from(number("\"r\":")?).ok()?,
        from,
        t_ns: number("\"t\":")?,
    })
}
