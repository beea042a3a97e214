//! One load client: a sans-IO [`Rtc`] on its own loopback UDP socket,
//! driven by a task of the generator's single-threaded runtime. A
//! publisher sends Opus-shaped audio and VP8-shaped video at fixed
//! rates, each payload ending in its send time; a viewer records, for
//! every packet, how long it took to arrive.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_proto::{
    Certificate, Direction, MediaKind, MediaRef, PeerConnectionState, Rtc, RtcConfig, RtcEvent,
    RtpPacket, SessionDescription,
};
use realtimer_server::latency::LatencyHistogram;
use realtimer_signaling::whip::WhipClient;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::now;

/// What each publisher sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    pub(crate) audio_pps: u32,
    pub(crate) audio_bytes: usize,
    pub(crate) video_pps: u32,
    pub(crate) video_bytes: usize,
}

/// What the viewers saw; shared by every task of the runtime.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// Counting (after the warm-up) or not.
    pub(crate) measuring: bool,
    /// Packets viewers received while measuring.
    pub(crate) received: u64,
    /// Packets publishers wrote while measuring.
    pub(crate) sent: u64,
    /// Packets the publishers' connections refused (pacer or queue full).
    pub(crate) refused: u64,
    /// Send to arrival, while measuring.
    pub(crate) latency: LatencyHistogram,
    /// Connections that reached `connected`.
    pub(crate) connected: usize,
    /// Connections that failed or closed.
    pub(crate) failed: usize,
}

pub(crate) type Shared = Rc<RefCell<Recorder>>;

/// The send time a payload carries in its last 8 bytes (nanoseconds
/// since `epoch`).
fn stamp(payload: &mut [u8], epoch: Instant) {
    let ns = now().saturating_duration_since(epoch).as_nanos() as u64;
    let n = payload.len();
    payload[n - 8..].copy_from_slice(&ns.to_be_bytes());
}

fn stamped(payload: &[u8], epoch: Instant) -> Option<Instant> {
    let tail: [u8; 8] = payload
        .get(payload.len().checked_sub(8)?..)?
        .try_into()
        .ok()?;
    Some(epoch + Duration::from_nanos(u64::from_be_bytes(tail)))
}

/// One published stream: its transceiver and where it is.
struct Stream {
    media: MediaRef,
    kind: MediaKind,
    codec: &'static str,
    /// Timestamp ticks per packet.
    ticks: u32,
    interval: Duration,
    bytes: usize,
    next: Instant,
    sequence: u16,
    timestamp: u32,
}

/// A connection of the generator.
pub(crate) struct Client {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    streams: Vec<Stream>,
    epoch: Instant,
    shared: Shared,
    /// Told once the connection is up (dropped if it fails first).
    on_connected: Option<oneshot::Sender<()>>,
}

impl Client {
    /// A connection on a fresh loopback socket. A publisher (`rates`)
    /// adds an audio and a video track; a viewer adds `receive` pairs of
    /// receive-only audio and video transceivers.
    pub(crate) async fn new(
        certificate: &Certificate,
        seed: u64,
        rates: Option<Rates>,
        receive: usize,
        epoch: Instant,
        shared: Shared,
    ) -> std::io::Result<Client> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let local = socket.local_addr()?;
        let at = now();
        let config = RtcConfig::default().with_seed(seed).with_loopback(true);
        let mut rtc = Rtc::new(config, certificate.clone(), at);
        rtc.add_local_address(at, local);
        let mut streams = Vec::new();
        if let Some(r) = rates {
            let tracks = [
                (MediaKind::Audio, "opus", 48_000, r.audio_pps, r.audio_bytes),
                (MediaKind::Video, "VP8", 90_000, r.video_pps, r.video_bytes),
            ];
            for (kind, codec, clock_rate, pps, bytes) in tracks {
                if pps == 0 {
                    continue;
                }
                let media = rtc
                    .add_track(kind, "load", &format!("{kind}"))
                    .map_err(std::io::Error::other)?;
                streams.push(Stream {
                    media,
                    kind,
                    codec,
                    ticks: clock_rate / pps,
                    interval: Duration::from_secs(1) / pps,
                    bytes: bytes.max(16),
                    next: at,
                    sequence: 0,
                    timestamp: 0,
                });
            }
        }
        for _ in 0..receive {
            for kind in [MediaKind::Audio, MediaKind::Video] {
                rtc.add_transceiver(kind, Direction::RecvOnly)
                    .map_err(std::io::Error::other)?;
            }
        }
        Ok(Client {
            rtc,
            socket,
            local,
            streams,
            epoch,
            shared,
            on_connected: None,
        })
    }

    /// Resolves once the connection is up; an error if it failed first.
    pub(crate) fn connected(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.on_connected = Some(tx);
        rx
    }

    /// Our offer, set as the local description.
    pub(crate) fn offer(&mut self) -> Result<SessionDescription, realtimer_proto::RtcError> {
        let offer = self.rtc.create_offer()?;
        self.rtc.set_local_description(now(), offer.clone())?;
        Ok(offer)
    }

    /// The peer's answer.
    pub(crate) fn answer(&mut self, sdp: String) -> Result<(), realtimer_proto::RtcError> {
        self.rtc
            .set_remote_description(now(), SessionDescription::answer(sdp))
    }

    /// The other side of a direct pair: takes its offer, returns our answer.
    pub(crate) fn accept(
        &mut self,
        offer: SessionDescription,
    ) -> Result<SessionDescription, realtimer_proto::RtcError> {
        self.rtc.set_remote_description(now(), offer)?;
        let answer = self.rtc.create_answer()?;
        self.rtc.set_local_description(now(), answer.clone())?;
        Ok(answer)
    }

    /// Our host candidate lines (for a peer that does not learn us from
    /// our checks).
    pub(crate) fn candidates(&mut self) -> Vec<realtimer_proto::IceCandidateInit> {
        self.rtc.handle_timeout(now());
        let mut out = Vec::new();
        while let Some(e) = self.rtc.poll_event() {
            if let RtcEvent::IceCandidate(Some(c)) = e {
                out.push(c);
            }
        }
        out
    }

    /// A candidate of the peer.
    pub(crate) fn add_candidate(&mut self, c: &realtimer_proto::IceCandidateInit) {
        let _ = self.rtc.add_ice_candidate(now(), Some(c));
    }

    /// Sends the packets that are due.
    fn publish(&mut self, at: Instant) {
        for s in &mut self.streams {
            while s.next <= at {
                s.next += s.interval;
                let Some(payload_type) = self
                    .rtc
                    .transceiver_codecs(s.media)
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(s.codec))
                    .map(|c| c.payload_type)
                else {
                    continue;
                };
                let mut payload = vec![0u8; s.bytes];
                if s.kind == MediaKind::Video {
                    // VP8 descriptor: S=1, partition 0; a keyframe's tag
                    // (P=0), so a subscriber may start on any packet.
                    payload[0] = 0x10;
                    payload[1] = 0x00;
                }
                stamp(&mut payload, self.epoch);
                s.sequence = s.sequence.wrapping_add(1);
                s.timestamp = s.timestamp.wrapping_add(s.ticks);
                let packet = RtpPacket {
                    payload_type,
                    sequence_number: s.sequence,
                    timestamp: s.timestamp,
                    marker: true,
                    ssrc: 0,
                    payload: Bytes::from(payload),
                };
                let ok = self.rtc.write_rtp(at, s.media, &packet).is_ok();
                let mut r = self.shared.borrow_mut();
                if r.measuring {
                    if ok {
                        r.sent += 1;
                    } else {
                        r.refused += 1;
                    }
                }
            }
        }
    }

    fn flush(&mut self) {
        while let Some(t) = self.rtc.poll_transmit() {
            let _ = self.socket.try_send_to(&t.contents, t.destination);
        }
        while let Some(e) = self.rtc.poll_event() {
            match e {
                RtcEvent::Rtp(_, packet) => {
                    let mut r = self.shared.borrow_mut();
                    if r.measuring {
                        if let Some(sent) = stamped(&packet.payload, self.epoch) {
                            r.received += 1;
                            r.latency.record(now().saturating_duration_since(sent));
                        }
                    }
                }
                RtcEvent::ConnectionState(PeerConnectionState::Connected) => {
                    self.shared.borrow_mut().connected += 1;
                    if let Some(tx) = self.on_connected.take() {
                        let _ = tx.send(());
                    }
                }
                RtcEvent::ConnectionState(
                    PeerConnectionState::Failed | PeerConnectionState::Closed,
                ) => {
                    self.shared.borrow_mut().failed += 1;
                    self.on_connected = None;
                }
                _ => {}
            }
        }
    }

    /// Runs the connection until the runtime stops.
    pub(crate) async fn run(mut self) {
        let mut buffer = vec![0u8; 2048];
        loop {
            let at = now();
            if self.rtc.connection_state() == PeerConnectionState::Connected {
                self.publish(at);
            }
            self.flush();
            let next_send = self.streams.iter().map(|s| s.next).min();
            let deadline = [self.rtc.poll_timeout(), next_send]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(at + Duration::from_secs(1));
            tokio::select! {
                r = self.socket.recv_from(&mut buffer) => {
                    let Ok((n, source)) = r else { continue };
                    self.rtc.handle_receive(now(), source, self.local, &buffer[..n]);
                    for _ in 0..32 {
                        let Ok((n, source)) = self.socket.try_recv_from(&mut buffer) else { break };
                        self.rtc.handle_receive(now(), source, self.local, &buffer[..n]);
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => self.rtc.handle_timeout(now()),
            }
        }
    }
}

/// A WHIP publisher or WHEP viewer of `room` at `base`: offered, answered,
/// connecting.
pub(crate) async fn connect(
    mut client: Client,
    base: &str,
    protocol: &str,
    room: &str,
) -> Result<Client, String> {
    let offer = client.offer().map_err(|e| e.to_string())?;
    let mut whip =
        WhipClient::new(&format!("{base}/{protocol}/{room}"), None).map_err(|e| e.to_string())?;
    let answer = whip.offer(&offer.sdp).await.map_err(|e| e.to_string())?;
    client.answer(answer).map_err(|e| e.to_string())?;
    // Our host candidate, trickled (RFC 8840).
    let lines: Vec<String> = client
        .candidates()
        .into_iter()
        .map(|c| c.candidate)
        .collect();
    whip.trickle("0", &lines).await.map_err(|e| e.to_string())?;
    Ok(client)
}
