//! The hostile participant: a WHEP viewer of the normal peers' room
//! whose connection is as good as any (ICE, DTLS, SRTP done), and which
//! then floods the server from its own address with what only a
//! connected peer can send: RTCP NACKs and PLIs (valid SRTCP), SRTCP
//! that fails authentication, and DTLS ClientHellos on the established
//! association's 5-tuple.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use realtimer_proto::{
    Certificate, Direction, MediaKind, MediaRef, PeerConnectionState, Rtc, RtcConfig, RtcEvent,
};
use realtimer_signaling::whip::WhipClient;
use tokio::net::UdpSocket;

use crate::now;

/// What the hostile participant floods with, from its own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attack {
    /// Generic NACKs (RFC 4585 §6.2.1) for the last `MAX_NACKED` video
    /// packets it received, again and again.
    Nack,
    /// PLIs (RFC 4585 §6.3.1) for the video.
    Pli,
    /// RTCP-shaped datagrams with a wrong SRTCP tag.
    SrtcpGarbage,
    /// A DTLS ClientHello (the bytes of a real one).
    ClientHello,
}

/// Shared with the coordinator.
#[derive(Debug, Default)]
pub(crate) struct HostileState {
    /// What to flood with now, and at how many datagrams a second.
    pub(crate) attack: Option<(Attack, u32)>,
    /// Datagrams and bytes the flood sent.
    pub(crate) sent: (u64, u64),
    /// Datagrams and bytes the server sent to the hostile participant.
    pub(crate) received: (u64, u64),
    pub(crate) connected: bool,
    /// Its credentials and address: (server ufrag, server password, its
    /// ufrag), its address, the server's address.
    pub(crate) ice: Option<(String, String, String)>,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) server: Option<SocketAddr>,
}

pub(crate) type Hostile = Rc<RefCell<HostileState>>;

/// The value of SDP attribute `name` (`a=name:value`).
fn sdp_attribute(sdp: &str, name: &str) -> Option<String> {
    sdp.lines().find_map(|l| {
        Some(
            l.strip_prefix("a=")?
                .strip_prefix(name)?
                .strip_prefix(':')?
                .trim()
                .to_owned(),
        )
    })
}

/// Joins `room` at `base` as a WHEP viewer and runs until the runtime
/// stops, flooding whenever `state.attack` says so.
pub(crate) async fn run(
    certificate: Certificate,
    base: String,
    room: String,
    client_hello: Vec<u8>,
    state: Hostile,
) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let at = now();
    let mut rtc = Rtc::new(
        RtcConfig::default().with_seed(0xF100D).with_loopback(true),
        certificate,
        at,
    );
    rtc.add_local_address(at, local);
    rtc.add_transceiver(MediaKind::Audio, Direction::RecvOnly)
        .map_err(|e| e.to_string())?;
    let video = rtc
        .add_transceiver(MediaKind::Video, Direction::RecvOnly)
        .map_err(|e| e.to_string())?;
    let offer = rtc.create_offer().map_err(|e| e.to_string())?;
    rtc.set_local_description(at, offer.clone())
        .map_err(|e| e.to_string())?;
    let mut whep =
        WhipClient::new(&format!("{base}/whep/{room}"), None).map_err(|e| e.to_string())?;
    let answer = whep.offer(&offer.sdp).await.map_err(|e| e.to_string())?;
    let ice = (
        sdp_attribute(&answer, "ice-ufrag").ok_or("no ufrag in the answer")?,
        sdp_attribute(&answer, "ice-pwd").ok_or("no password in the answer")?,
        rtc.local_ufrag().to_owned(),
    );
    rtc.set_remote_description(now(), realtimer_proto::SessionDescription::answer(answer))
        .map_err(|e| e.to_string())?;
    rtc.handle_timeout(now());
    let mut lines = Vec::new();
    while let Some(e) = rtc.poll_event() {
        if let RtcEvent::IceCandidate(Some(c)) = e {
            lines.push(c.candidate);
        }
    }
    whep.trickle("0", &lines).await.map_err(|e| e.to_string())?;
    {
        let mut s = state.borrow_mut();
        s.ice = Some(ice);
        s.local = Some(local);
    }
    let mut flood = Flood {
        video,
        seqs: Vec::new(),
        client_hello,
        started: None,
        sent: 0,
    };
    let mut buffer = vec![0u8; 2048];
    loop {
        let at = now();
        while let Some(t) = rtc.poll_transmit() {
            let _ = socket.try_send_to(&t.contents, t.destination);
        }
        while let Some(e) = rtc.poll_event() {
            match e {
                RtcEvent::Rtp(m, p) if m == video => {
                    flood.seqs.push(p.sequence_number);
                    let excess = flood.seqs.len().saturating_sub(realtimer_proto::MAX_NACKED);
                    flood.seqs.drain(..excess);
                }
                RtcEvent::ConnectionState(PeerConnectionState::Connected) => {
                    let mut s = state.borrow_mut();
                    s.connected = true;
                    s.server = rtc.selected_pair().map(|(_, remote)| remote);
                }
                RtcEvent::ConnectionState(
                    PeerConnectionState::Failed | PeerConnectionState::Closed,
                ) => return Err("the hostile participant's connection failed".into()),
                _ => {}
            }
        }
        let attack = state.borrow().attack;
        let next_flood = match attack {
            Some((attack, pps)) if rtc.connection_state() == PeerConnectionState::Connected => {
                let (n, mut bytes) = flood.send(&mut rtc, &socket, at, attack, pps);
                // What our connection protected for the flood (NACK, PLI).
                while let Some(t) = rtc.poll_transmit() {
                    bytes += t.contents.len() as u64;
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                let mut s = state.borrow_mut();
                s.sent.0 += n;
                s.sent.1 += bytes;
                Some(at + Duration::from_millis(1))
            }
            _ => {
                flood.started = None;
                None
            }
        };
        let deadline = [rtc.poll_timeout(), next_flood]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(at + Duration::from_secs(1));
        tokio::select! {
            r = socket.recv_from(&mut buffer) => {
                let Ok((n, source)) = r else { continue };
                rtc.handle_receive(now(), source, local, &buffer[..n]);
                let mut count = (1u64, n as u64);
                for _ in 0..64 {
                    let Ok((n, source)) = socket.try_recv_from(&mut buffer) else { break };
                    rtc.handle_receive(now(), source, local, &buffer[..n]);
                    count.0 += 1;
                    count.1 += n as u64;
                }
                let mut s = state.borrow_mut();
                s.received.0 += count.0;
                s.received.1 += count.1;
            }
            () = tokio::time::sleep_until(deadline.into()) => rtc.handle_timeout(now()),
        }
    }
}

/// The hostile participant's flood: how many it sent since it started.
struct Flood {
    video: MediaRef,
    /// The last video sequence numbers received (what a NACK names).
    seqs: Vec<u16>,
    client_hello: Vec<u8>,
    started: Option<Instant>,
    sent: u64,
}

impl Flood {
    /// Sends what is due at `pps` since the attack started; returns the
    /// datagrams and bytes sent.
    fn send(
        &mut self,
        rtc: &mut Rtc,
        socket: &UdpSocket,
        at: Instant,
        attack: Attack,
        pps: u32,
    ) -> (u64, u64) {
        let started = *self.started.get_or_insert_with(|| {
            self.sent = 0;
            at
        });
        let due = (at.duration_since(started).as_secs_f64() * f64::from(pps)) as u64;
        let server = rtc.selected_pair().map(|(_, remote)| remote);
        let (mut n, mut bytes) = (0, 0);
        while self.sent < due {
            self.sent += 1;
            let len = match attack {
                Attack::Nack => {
                    if self.seqs.is_empty()
                        || rtc.request_retransmission(self.video, &self.seqs).is_err()
                    {
                        continue;
                    }
                    // Our connection protects it (counted as it leaves).
                    0
                }
                Attack::Pli => {
                    if rtc.request_keyframe(self.video).is_err() {
                        continue;
                    }
                    0
                }
                Attack::SrtcpGarbage => {
                    let Some(server) = server else { continue };
                    // A receiver report's header, then junk where the
                    // SRTCP index and tag go.
                    let mut d = vec![0x81, 201, 0, 7];
                    d.extend_from_slice(&(self.sent as u32).to_be_bytes());
                    d.resize(42, 0x5A);
                    let _ = socket.try_send_to(&d, server);
                    d.len()
                }
                Attack::ClientHello => {
                    let Some(server) = server else { continue };
                    let _ = socket.try_send_to(&self.client_hello, server);
                    self.client_hello.len()
                }
            };
            n += 1;
            bytes += len as u64;
        }
        (n, bytes)
    }
}
