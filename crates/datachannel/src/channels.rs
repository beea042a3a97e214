//! Channels: ids, states, messages, close by stream reset (RFC 8831 §6).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_sctp::{Association, Reliability, SctpConfig, SctpEvent, SendError};
use tracing::debug;

use crate::dcep::{ChannelType, DcepMessage, OpenMessage};
use crate::ppid;

/// Which side of DTLS we are: it decides stream id parity (RFC 8832 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// The DTLS client uses even stream ids.
    Client,
    /// The DTLS server uses odd stream ids.
    Server,
}

/// RTCDataChannelInit (W3C webrtc-pc §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInit {
    /// Delivered in order (default true).
    pub ordered: bool,
    /// At most this long in milliseconds (maxPacketLifeTime).
    pub max_packet_lifetime: Option<u16>,
    /// At most this many retransmissions (maxRetransmits).
    pub max_retransmits: Option<u16>,
    /// The sub-protocol.
    pub protocol: String,
    /// Negotiated out of band with this id: no DCEP.
    pub negotiated: Option<u16>,
    /// RFC 8831 §6.4 priority (256 is normal).
    pub priority: u16,
}

impl Default for ChannelInit {
    fn default() -> Self {
        ChannelInit {
            ordered: true,
            max_packet_lifetime: None,
            max_retransmits: None,
            protocol: String::new(),
            negotiated: None,
            priority: 256,
        }
    }
}

/// RTCDataChannelState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// Waiting for the association or the peer's ACK.
    Connecting,
    /// Messages flow.
    Open,
    /// Closing: streams being reset.
    Closing,
    /// Closed; the id can be used again.
    Closed,
}

/// What a channel is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The SCTP stream id.
    pub id: u16,
    /// The label.
    pub label: String,
    /// The sub-protocol.
    pub protocol: String,
    /// In-order delivery.
    pub ordered: bool,
    /// maxRetransmits.
    pub max_retransmits: Option<u16>,
    /// maxPacketLifeTime, in milliseconds.
    pub max_packet_lifetime: Option<u16>,
    /// Negotiated out of band.
    pub negotiated: bool,
    /// Priority.
    pub priority: u16,
}

/// A message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelData {
    /// Text (PPID 51, or 56 when empty).
    Text(String),
    /// Binary (PPID 53, or 57 when empty).
    Binary(Bytes),
}

/// What the data channels tell their user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataChannelEvent {
    /// The SCTP association is up.
    Connected,
    /// One of our channels opened.
    Opened(u16),
    /// The peer opened a channel (RTCPeerConnection `datachannel`); it is open.
    Incoming(ChannelInfo),
    /// A message arrived on a channel.
    Message {
        /// The channel.
        channel: u16,
        /// The content.
        data: ChannelData,
    },
    /// A channel's buffered amount fell to its low threshold.
    BufferedAmountLow(u16),
    /// A channel closed; its id is free again.
    Closed(u16),
    /// The association ended: every channel is closed.
    AssociationClosed,
}

/// Why a channel operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// W3C: maxPacketLifeTime and maxRetransmits together are a TypeError.
    #[error("maxPacketLifeTime and maxRetransmits cannot both be set")]
    BothReliabilityLimits,
    /// The id is taken, or every id of our parity is.
    #[error("data channel id {0} is in use")]
    IdInUse(u16),
    /// No free id left.
    #[error("no data channel id is free")]
    NoFreeId,
    /// The label or protocol is too long for DCEP.
    #[error("label or protocol longer than 65535 bytes")]
    LabelTooLong,
    /// No such channel.
    #[error("no data channel {0}")]
    UnknownChannel(u16),
    /// W3C InvalidStateError: the channel is not open.
    #[error("data channel {0} is not open")]
    NotOpen(u16),
    /// SCTP refused the message.
    #[error(transparent)]
    Send(#[from] SendError),
}

#[derive(Debug)]
struct Channel {
    info: ChannelInfo,
    state: ChannelState,
    /// DCEP OPEN still to send (the association was not up).
    open_pending: bool,
    outgoing_reset: bool,
    incoming_reset: bool,
}

impl Channel {
    fn reliability(&self) -> Reliability {
        match (self.info.max_retransmits, self.info.max_packet_lifetime) {
            (Some(n), _) => Reliability::MaxRetransmits(u32::from(n)),
            (None, Some(ms)) => Reliability::MaxLifetime(Duration::from_millis(u64::from(ms))),
            (None, None) => Reliability::Reliable,
        }
    }
}

/// The data channels of one peer connection, over its SCTP association.
#[derive(Debug)]
pub struct DataChannels {
    sctp: Association,
    role: DtlsRole,
    channels: BTreeMap<u16, Channel>,
    events: VecDeque<DataChannelEvent>,
    max_channels: usize,
}

impl DataChannels {
    /// Channels over a new association; `role` is our DTLS role.
    pub fn new(config: SctpConfig, role: DtlsRole, now: Instant) -> Self {
        let max_channels = usize::from(config.streams);
        DataChannels {
            sctp: Association::new(config, now),
            role,
            channels: BTreeMap::new(),
            events: VecDeque::new(),
            max_channels,
        }
    }

    /// Starts the SCTP handshake (both sides may; RFC 8841 §10 lets either).
    pub fn connect(&mut self, now: Instant) {
        self.sctp.connect(now);
    }

    /// The association, for stats and settings.
    pub fn association(&self) -> &Association {
        &self.sctp
    }

    /// The association, to set the peer's max-message-size and such.
    pub fn association_mut(&mut self) -> &mut Association {
        &mut self.sctp
    }

    /// Opens a channel (RTCPeerConnection.createDataChannel). With
    /// `negotiated`, no DCEP: both sides create it with the same id.
    pub fn create_channel(
        &mut self,
        now: Instant,
        label: &str,
        init: &ChannelInit,
    ) -> Result<u16, ChannelError> {
        if init.max_packet_lifetime.is_some() && init.max_retransmits.is_some() {
            return Err(ChannelError::BothReliabilityLimits);
        }
        if label.len() > usize::from(u16::MAX) || init.protocol.len() > usize::from(u16::MAX) {
            return Err(ChannelError::LabelTooLong);
        }
        let id = match init.negotiated {
            Some(id) => {
                if self.channels.contains_key(&id) {
                    return Err(ChannelError::IdInUse(id));
                }
                id
            }
            None => self.free_id()?,
        };
        let established = self.sctp.state() == realtimer_sctp::AssociationState::Established;
        let channel = Channel {
            info: ChannelInfo {
                id,
                label: label.to_owned(),
                protocol: init.protocol.clone(),
                ordered: init.ordered,
                max_retransmits: init.max_retransmits,
                max_packet_lifetime: init.max_packet_lifetime,
                negotiated: init.negotiated.is_some(),
                priority: init.priority,
            },
            state: ChannelState::Connecting,
            open_pending: init.negotiated.is_none(),
            outgoing_reset: false,
            incoming_reset: false,
        };
        self.channels.insert(id, channel);
        if established {
            self.start_channel(now, id);
        }
        Ok(id)
    }

    /// RFC 8832 §6: even ids for the DTLS client, odd for the server.
    fn free_id(&self) -> Result<u16, ChannelError> {
        if self.channels.len() >= self.max_channels {
            return Err(ChannelError::NoFreeId);
        }
        let first = match self.role {
            DtlsRole::Client => 0,
            DtlsRole::Server => 1,
        };
        (first..u16::MAX)
            .step_by(2)
            .find(|id| !self.channels.contains_key(id))
            .ok_or(ChannelError::NoFreeId)
    }

    /// Sends DCEP OPEN, or for a negotiated channel just opens it.
    fn start_channel(&mut self, now: Instant, id: u16) {
        let Some(channel) = self.channels.get_mut(&id) else {
            return;
        };
        if !channel.open_pending {
            if channel.state == ChannelState::Connecting {
                channel.state = ChannelState::Open;
                self.events.push_back(DataChannelEvent::Opened(id));
            }
            return;
        }
        channel.open_pending = false;
        let open = DcepMessage::Open(OpenMessage {
            channel_type: match (
                channel.info.max_retransmits,
                channel.info.max_packet_lifetime,
            ) {
                (Some(n), _) => ChannelType::MaxRetransmits(u32::from(n)),
                (None, Some(ms)) => ChannelType::MaxLifetime(u32::from(ms)),
                (None, None) => ChannelType::Reliable,
            },
            unordered: !channel.info.ordered,
            priority: channel.info.priority,
            label: channel.info.label.clone(),
            protocol: channel.info.protocol.clone(),
        });
        // RFC 8832 §6: DCEP goes ordered and reliable on the channel's stream.
        if let Err(e) = self.sctp.send(
            now,
            id,
            ppid::DCEP,
            open.to_bytes(),
            false,
            Reliability::Reliable,
        ) {
            debug!(id, "DATA_CHANNEL_OPEN not sent: {e}");
        }
    }

    /// What a channel is, if it exists.
    pub fn info(&self, id: u16) -> Option<&ChannelInfo> {
        self.channels.get(&id).map(|c| &c.info)
    }

    /// A channel's state; `Closed` for an unknown id.
    pub fn state(&self, id: u16) -> ChannelState {
        self.channels
            .get(&id)
            .map_or(ChannelState::Closed, |c| c.state)
    }

    /// Sends a message (RTCDataChannel.send).
    pub fn send(&mut self, now: Instant, id: u16, data: ChannelData) -> Result<(), ChannelError> {
        let channel = self
            .channels
            .get(&id)
            .ok_or(ChannelError::UnknownChannel(id))?;
        if channel.state != ChannelState::Open {
            return Err(ChannelError::NotOpen(id));
        }
        // RFC 8831 §6.6: empty messages travel as one zero byte with their own PPIDs.
        let (ppid, payload) = match data {
            ChannelData::Text(t) if t.is_empty() => (ppid::STRING_EMPTY, Bytes::from_static(&[0])),
            ChannelData::Text(t) => (ppid::STRING, Bytes::from(t)),
            ChannelData::Binary(b) if b.is_empty() => {
                (ppid::BINARY_EMPTY, Bytes::from_static(&[0]))
            }
            ChannelData::Binary(b) => (ppid::BINARY, b),
        };
        let (unordered, reliability) = (!channel.info.ordered, channel.reliability());
        self.sctp
            .send(now, id, ppid, payload, unordered, reliability)?;
        Ok(())
    }

    /// Bytes queued on a channel and not yet sent (bufferedAmount).
    pub fn buffered_amount(&self, id: u16) -> usize {
        self.sctp.buffered_amount(id)
    }

    /// bufferedAmountLowThreshold.
    pub fn set_buffered_amount_low_threshold(&mut self, id: u16, threshold: usize) {
        self.sctp.set_buffered_amount_low_threshold(id, threshold);
    }

    /// Closes a channel: its outgoing stream is reset once queued data is
    /// acknowledged, the peer resets its own, then both see Closed (RFC 8831 §6.7).
    pub fn close(&mut self, now: Instant, id: u16) {
        let Some(channel) = self.channels.get_mut(&id) else {
            return;
        };
        if matches!(channel.state, ChannelState::Closing | ChannelState::Closed) {
            return;
        }
        channel.state = ChannelState::Closing;
        self.sctp.reset_streams(now, &[id]);
    }

    /// An SCTP packet (from DTLS).
    pub fn handle_packet(&mut self, now: Instant, packet: &Bytes) {
        self.sctp.handle_packet(now, packet);
        self.process(now);
    }

    /// How many bytes of delivered messages ([`DataChannelEvent::Message`])
    /// the application holds unread: they count against the SCTP receive
    /// window ([`Association::set_unread`]), which bounds them.
    pub fn set_unread(&mut self, now: Instant, bytes: usize) {
        self.sctp.set_unread(now, bytes);
    }

    /// Moves time to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sctp.handle_timeout(now);
        self.process(now);
    }

    /// The next SCTP packet for DTLS.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.sctp.poll_transmit()
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sctp.poll_timeout()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DataChannelEvent> {
        self.events.pop_front()
    }

    fn process(&mut self, now: Instant) {
        while let Some(event) = self.sctp.poll_event() {
            match event {
                SctpEvent::Connected => {
                    self.events.push_back(DataChannelEvent::Connected);
                    let ids: Vec<u16> = self.channels.keys().copied().collect();
                    for id in ids {
                        self.start_channel(now, id);
                    }
                }
                SctpEvent::Message(m) => self.handle_message(now, m.stream, m.ppid, m.payload),
                SctpEvent::IncomingStreamsReset(streams) => {
                    for id in streams {
                        self.incoming_reset(now, id);
                    }
                }
                SctpEvent::OutgoingStreamsReset(streams) => {
                    for id in streams {
                        if let Some(c) = self.channels.get_mut(&id) {
                            c.outgoing_reset = true;
                        }
                        self.maybe_closed(id);
                    }
                }
                SctpEvent::BufferedAmountLow(id) => {
                    self.events
                        .push_back(DataChannelEvent::BufferedAmountLow(id));
                }
                SctpEvent::Closed(_) => {
                    for (id, _) in std::mem::take(&mut self.channels) {
                        self.events.push_back(DataChannelEvent::Closed(id));
                    }
                    self.events.push_back(DataChannelEvent::AssociationClosed);
                }
                _ => {}
            }
        }
    }

    fn handle_message(&mut self, now: Instant, id: u16, ppid: u32, payload: Bytes) {
        if ppid == ppid::DCEP {
            match DcepMessage::parse(&payload) {
                Ok(DcepMessage::Open(open)) => self.handle_open(now, id, open),
                Ok(DcepMessage::Ack) => {
                    if let Some(c) = self.channels.get_mut(&id) {
                        if c.state == ChannelState::Connecting {
                            c.state = ChannelState::Open;
                            self.events.push_back(DataChannelEvent::Opened(id));
                        }
                    }
                }
                Err(e) => debug!(id, "bad DCEP message: {e}"),
            }
            return;
        }
        let Some(channel) = self.channels.get_mut(&id) else {
            debug!(id, "message on a stream with no channel");
            return;
        };
        // RFC 8832 §6: data before the ACK implies it.
        if channel.state == ChannelState::Connecting {
            channel.state = ChannelState::Open;
            self.events.push_back(DataChannelEvent::Opened(id));
        }
        if channel.state != ChannelState::Open {
            return;
        }
        let data = match ppid {
            ppid::STRING => match String::from_utf8(payload.to_vec()) {
                Ok(text) => ChannelData::Text(text),
                Err(_) => {
                    debug!(id, "dropping a text message that is not UTF-8");
                    return;
                }
            },
            ppid::STRING_EMPTY => ChannelData::Text(String::new()),
            ppid::BINARY_EMPTY => ChannelData::Binary(Bytes::new()),
            // 53, and the deprecated partial PPIDs 52/54 as whole messages.
            _ => ChannelData::Binary(payload),
        };
        self.events
            .push_back(DataChannelEvent::Message { channel: id, data });
    }

    fn handle_open(&mut self, now: Instant, id: u16, open: OpenMessage) {
        if self.channels.contains_key(&id) {
            debug!(id, "DATA_CHANNEL_OPEN for an id in use; ignored");
            return;
        }
        let (max_retransmits, max_packet_lifetime) = match open.channel_type {
            ChannelType::Reliable => (None, None),
            ChannelType::MaxRetransmits(n) => (Some(n.min(u32::from(u16::MAX)) as u16), None),
            ChannelType::MaxLifetime(ms) => (None, Some(ms.min(u32::from(u16::MAX)) as u16)),
        };
        let info = ChannelInfo {
            id,
            label: open.label,
            protocol: open.protocol,
            ordered: !open.unordered,
            max_retransmits,
            max_packet_lifetime,
            negotiated: false,
            priority: open.priority,
        };
        self.channels.insert(
            id,
            Channel {
                info: info.clone(),
                state: ChannelState::Open,
                open_pending: false,
                outgoing_reset: false,
                incoming_reset: false,
            },
        );
        if let Err(e) = self.sctp.send(
            now,
            id,
            ppid::DCEP,
            DcepMessage::Ack.to_bytes(),
            false,
            Reliability::Reliable,
        ) {
            debug!(id, "DATA_CHANNEL_ACK not sent: {e}");
        }
        self.events.push_back(DataChannelEvent::Incoming(info));
    }

    /// The peer reset its stream: it closed the channel; reset ours too.
    fn incoming_reset(&mut self, now: Instant, id: u16) {
        let Some(channel) = self.channels.get_mut(&id) else {
            return;
        };
        channel.incoming_reset = true;
        if channel.state != ChannelState::Closing {
            channel.state = ChannelState::Closing;
            self.sctp.reset_streams(now, &[id]);
        }
        self.maybe_closed(id);
    }

    fn maybe_closed(&mut self, id: u16) {
        let done = self
            .channels
            .get(&id)
            .is_some_and(|c| c.incoming_reset && c.outgoing_reset);
        if done {
            self.channels.remove(&id);
            self.events.push_back(DataChannelEvent::Closed(id));
        }
    }
}
