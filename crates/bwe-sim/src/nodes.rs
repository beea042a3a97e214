//! The two ends of a media flow on netsim: a sender with an encoder model,
//! the estimator and the pacer, and a receiver that sends transport-wide
//! feedback and measures what arrives.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_bwe::{Bitrate, BweConfig, Paced, Pacer, PacketKind, SendSideBwe, SentPacket};
use realtimer_netsim::{Datagram, Node};
use realtimer_rtp::rtcp::{CompoundPacket, RtcpPacket};
use realtimer_rtp::{
    is_rtcp, parse_transport_sequence, Extension, FeedbackConfig, RtpHeader, RtpPacket,
    TransportFeedbackGenerator,
};

/// The `a=extmap` id the flows use for the transport-wide sequence number.
const TWCC_ID: u8 = 3;
/// Frames per second of the encoder model.
const FRAME_RATE: u32 = 30;
/// Largest RTP payload.
const MAX_PAYLOAD: usize = 1200;
/// Bins of the time series.
pub const BIN: Duration = Duration::from_millis(100);

/// What a sender recorded per bin.
#[derive(Debug, Clone, Copy, Default)]
pub struct SenderBin {
    /// Bytes that left (media and padding).
    pub sent_bytes: u64,
    /// Packets that left.
    pub packets: u64,
    /// The target at the end of the bin.
    pub target: Bitrate,
}

/// An RTP sender: an encoder producing frames at the target bitrate, the
/// pacer and the estimator.
#[derive(Debug)]
pub struct Sender {
    start: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    bwe: SendSideBwe,
    pacer: Pacer<Vec<u8>>,
    next_frame: Instant,
    frame: u32,
    rtp_sequence: u16,
    transport_sequence: u16,
    /// Per bin.
    pub bins: Vec<SenderBin>,
    /// Packets sent.
    pub packets_sent: u64,
    /// Frames the pacer queue refused.
    pub frames_dropped: u64,
}

impl Sender {
    /// A sender from `local` to `remote` whose first frame is at `begins`;
    /// its send times and bins count from `start`, the run's origin.
    pub fn new(
        start: Instant,
        begins: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        config: BweConfig,
    ) -> Self {
        let bwe = SendSideBwe::new(config);
        Self {
            start,
            local,
            remote,
            pacer: Pacer::new(bwe.pacing_rate(), 4096),
            bwe,
            next_frame: begins,
            frame: 0,
            rtp_sequence: 0,
            transport_sequence: 0,
            bins: Vec::new(),
            packets_sent: 0,
            frames_dropped: 0,
        }
    }

    fn bin(&mut self, now: Instant) -> &mut SenderBin {
        let index = (now.duration_since(self.start).as_nanos() / BIN.as_nanos()) as usize;
        if self.bins.len() <= index {
            let target = self.bwe.target();
            self.bins.resize(
                index + 1,
                SenderBin {
                    target,
                    ..SenderBin::default()
                },
            );
        }
        &mut self.bins[index]
    }

    /// The encoder: a frame of target / frame rate bytes, in packets.
    fn encode_frame(&mut self, now: Instant) {
        let bytes = (self.bwe.target().as_f64() / 8.0 / f64::from(FRAME_RATE)) as usize;
        let packets = bytes.div_ceil(MAX_PAYLOAD).max(1);
        let timestamp = self.frame.wrapping_mul(90_000 / FRAME_RATE);
        self.frame += 1;
        for i in 0..packets {
            let size = (bytes / packets).max(20);
            let header = RtpHeader {
                marker: i + 1 == packets,
                payload_type: 96,
                sequence_number: self.rtp_sequence,
                timestamp,
                ssrc: 0x5eed,
                ..Default::default()
            };
            self.rtp_sequence = self.rtp_sequence.wrapping_add(1);
            let payload = vec![0u8; size];
            let mut packet = Vec::with_capacity(size + 20);
            // The transport sequence number and send time are stamped when
            // the pacer lets the packet go; here the header without them.
            header.write_packet(&payload, 0, &mut packet).ok();
            if self
                .pacer
                .enqueue(now, PacketKind::Video, packet.len() + 8, packet)
                .is_err()
            {
                self.frames_dropped += 1;
            }
        }
    }

    /// Stamps the transport-wide sequence number and the send time (in
    /// the payload, for the receiver's delay measurement).
    fn stamp(&mut self, now: Instant, packet: &[u8], padding: Option<usize>) -> Vec<u8> {
        let seq = self.transport_sequence;
        self.transport_sequence = self.transport_sequence.wrapping_add(1);
        let (mut header, payload_len) = match RtpPacket::parse(packet) {
            Ok(p) => (p.to_header(), p.payload().len()),
            Err(_) => (RtpHeader::default(), 0),
        };
        header.extensions = vec![Extension {
            id: TWCC_ID,
            data: seq.to_be_bytes().to_vec(),
        }];
        if padding.is_some() {
            header.payload_type = 97;
            header.ssrc = 0xbad;
        }
        let len = padding.unwrap_or(payload_len).max(8);
        let mut payload = vec![0u8; len];
        let sent_nanos = now.duration_since(self.start).as_nanos() as u64;
        payload[..8].copy_from_slice(&sent_nanos.to_be_bytes());
        let mut out = Vec::with_capacity(len + 24);
        header.write_packet(&payload, 0, &mut out).ok();
        out
    }

    /// The estimator.
    pub fn bwe(&self) -> &SendSideBwe {
        &self.bwe
    }
}

impl Node for Sender {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        if !is_rtcp(&datagram.contents) {
            return;
        }
        for packet in CompoundPacket::new(&datagram.contents).map_while(Result::ok) {
            if let RtcpPacket::TransportFeedback(f) = packet {
                self.bwe.on_transport_feedback(now, &f);
            }
        }
        self.pacer.set_rate(now, self.bwe.pacing_rate());
        let target = self.bwe.target();
        self.bin(now).target = target;
    }

    fn handle_timeout(&mut self, now: Instant) {
        while self.next_frame <= now {
            self.encode_frame(now);
            self.next_frame += Duration::from_secs(1) / FRAME_RATE;
        }
        let target = self.bwe.target();
        self.bin(now).target = target;
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Datagram> {
        while let Some(cluster) = self.bwe.poll_probe(now) {
            self.pacer.start_probe(now, cluster);
        }
        let (contents, probe_cluster) = match self.pacer.poll_send(now)? {
            Paced::Packet {
                packet,
                probe_cluster,
                ..
            } => (self.stamp(now, &packet, None), probe_cluster),
            Paced::Padding {
                size,
                probe_cluster,
            } => (self.stamp(now, &[], Some(size)), Some(probe_cluster)),
            _ => return None,
        };
        let sequence = self.transport_sequence.wrapping_sub(1);
        self.bwe.on_packet_sent(
            now,
            SentPacket {
                sequence,
                size: contents.len(),
                probe_cluster,
            },
        );
        self.packets_sent += 1;
        let bin = self.bin(now);
        bin.sent_bytes += contents.len() as u64;
        bin.packets += 1;
        Some(Datagram {
            source: self.local,
            destination: self.remote,
            contents: Bytes::from(contents),
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Some(match self.pacer.poll_timeout() {
            Some(t) => t.min(self.next_frame),
            None => self.next_frame,
        })
    }
}

/// What a receiver recorded per bin.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiverBin {
    /// Bytes received.
    pub bytes: u64,
    /// The largest one-way delay of a packet that arrived in the bin.
    pub max_delay: Duration,
    /// Packets received that were *sent* in this bin (to compare with
    /// the sender's count: loss by send time).
    pub packets_by_send_time: u64,
}

/// An RTP receiver sending transport-wide feedback.
#[derive(Debug)]
pub struct Receiver {
    start: Instant,
    local: SocketAddr,
    feedback: TransportFeedbackGenerator,
    reply_to: Option<SocketAddr>,
    outbox: Vec<Datagram>,
    /// Per bin.
    pub bins: Vec<ReceiverBin>,
    /// Every packet's arrival time since start and one-way delay.
    pub delays: Vec<(Duration, Duration)>,
    /// Packets received.
    pub packets_received: u64,
}

impl Receiver {
    /// A receiver on `local`.
    pub fn new(start: Instant, local: SocketAddr) -> Self {
        Self {
            start,
            local,
            feedback: TransportFeedbackGenerator::new(FeedbackConfig::default(), 0xfeed, 0x5eed),
            reply_to: None,
            outbox: Vec::new(),
            bins: Vec::new(),
            delays: Vec::new(),
            packets_received: 0,
        }
    }
}

impl Node for Receiver {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        let Ok(packet) = RtpPacket::parse(&datagram.contents) else {
            return;
        };
        self.reply_to = Some(datagram.source);
        if let Some(seq) = packet
            .extensions()
            .and_then(|e| e.get(TWCC_ID))
            .and_then(parse_transport_sequence)
        {
            self.feedback.on_packet(now, seq);
        }
        let since = now.duration_since(self.start);
        let sent = packet
            .payload()
            .get(..8)
            .map(|b| Duration::from_nanos(u64::from_be_bytes(b.try_into().unwrap_or_default())))
            .unwrap_or(since);
        let delay = since.saturating_sub(sent);
        self.delays.push((since, delay));
        self.packets_received += 1;
        let index = (since.as_nanos() / BIN.as_nanos()) as usize;
        if self.bins.len() <= index {
            self.bins.resize(index + 1, ReceiverBin::default());
        }
        let bin = &mut self.bins[index];
        bin.bytes += datagram.contents.len() as u64;
        bin.max_delay = bin.max_delay.max(delay);
        let sent_in = (sent.as_nanos() / BIN.as_nanos()) as usize;
        if let Some(bin) = self.bins.get_mut(sent_in) {
            bin.packets_by_send_time += 1;
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        let Some(to) = self.reply_to else { return };
        while let Some(f) = self.feedback.poll_feedback(now) {
            let mut out = Vec::new();
            if RtcpPacket::TransportFeedback(f).write(&mut out).is_ok() {
                self.outbox.push(Datagram {
                    source: self.local,
                    destination: to,
                    contents: Bytes::from(out),
                });
            }
        }
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Datagram> {
        self.outbox.pop()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.feedback.poll_timeout()
    }
}
