//! The data channel registry: [`ChannelRef`]s, their SCTP streams and
//! their events.

use std::time::Instant;

use realtimer_datachannel::{ChannelData, ChannelError, ChannelInit, DataChannelEvent};

use crate::channel::{ChannelRef, DataChannelInfo, DataChannelInit, DataChannelState};
use crate::error::{ArgumentError, OperationError, RtcError, StateError};
use crate::event::RtcEvent;

use super::Rtc;

/// One data channel as the core sees it.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) info: DataChannelInfo,
    pub(super) init: ChannelInit,
    pub(super) state: DataChannelState,
    /// messagesSent, bytesSent, messagesReceived, bytesReceived.
    pub(super) counters: super::get_stats::ChannelCounters,
    /// Buffered-amount-low threshold set before the stream id was known.
    pub(super) low_threshold: usize,
}

/// The data channels as the application names them ([`ChannelRef`]),
/// mapped to their SCTP streams (RFC 8831 §6.5), with W3C's open/closed
/// counts.
#[derive(Debug)]
pub(super) struct ChannelTable {
    pub(super) slots: std::collections::BTreeMap<ChannelRef, Slot>,
    pub(super) by_stream: std::collections::HashMap<u16, ChannelRef>,
    pub(super) next_ref: u32,
    /// dataChannelsOpened / dataChannelsClosed.
    pub(super) channels_opened: u32,
    pub(super) channels_closed: u32,
    /// Bytes of `ChannelMessage` events queued and not yet polled: they
    /// count against SCTP's receive window (see [`Rtc::report_unread`]).
    pub(super) unread: usize,
}

impl Rtc {
    /// Creates the SCTP side of a slot; errors end it with ChannelError.
    pub(super) fn open_slot(&mut self, now: Instant, r: ChannelRef) {
        let (Some(channels), Some(slot)) = (&mut self.channels, self.data.slots.get_mut(&r)) else {
            return;
        };
        if slot.info.negotiated && self.data.by_stream.values().any(|x| *x == r) {
            return;
        }
        match channels.create_channel(now, &slot.info.label, &slot.init) {
            Ok(id) => {
                slot.info.id = Some(id);
                if slot.low_threshold > 0 {
                    channels.set_buffered_amount_low_threshold(id, slot.low_threshold);
                }
                self.data.by_stream.insert(id, r);
            }
            Err(e) => {
                slot.state = DataChannelState::Closed;
                self.data.slots.remove(&r);
                self.events.push_back(RtcEvent::ChannelError(r, e));
                self.events.push_back(RtcEvent::ChannelClosed(r));
            }
        }
        self.pump_channel_events(now);
    }

    /// createDataChannel. The channel opens once the connection is up (and,
    /// unless negotiated, the peer acknowledged it).
    pub fn create_data_channel(
        &mut self,
        now: Instant,
        label: &str,
        init: &DataChannelInit,
    ) -> Result<ChannelRef, RtcError> {
        self.check_open()?;
        let sctp_init = init.validate(label)?;
        if let Some(id) = sctp_init.negotiated {
            let taken = self
                .data
                .slots
                .values()
                .any(|s| s.info.id == Some(id) && s.state != DataChannelState::Closed);
            if taken {
                return Err(OperationError::ChannelIdInUse { id }.into());
            }
        }
        let r = ChannelRef(self.data.next_ref);
        self.data.next_ref = self.data.next_ref.wrapping_add(1);
        self.data.slots.insert(
            r,
            Slot {
                info: DataChannelInfo::from_init(label, &sctp_init),
                init: sctp_init,
                state: DataChannelState::Connecting,
                low_threshold: 0,
                counters: Default::default(),
            },
        );
        if self.channels.is_some() {
            self.open_slot(now, r);
        } else {
            self.update_negotiation_needed();
        }
        Ok(r)
    }

    /// What a channel is (None once it closed).
    pub fn channel_info(&self, channel: ChannelRef) -> Option<&DataChannelInfo> {
        self.data.slots.get(&channel).map(|s| &s.info)
    }

    /// A channel's readyState (`Closed` once it is gone).
    pub fn channel_state(&self, channel: ChannelRef) -> DataChannelState {
        self.data
            .slots
            .get(&channel)
            .map_or(DataChannelState::Closed, |s| s.state)
    }

    pub(super) fn stream_of(&self, channel: ChannelRef) -> Result<u16, RtcError> {
        let slot = self.data.slots.get(&channel).ok_or(StateError::Channel {
            channel,
            state: DataChannelState::Closed,
        })?;
        if slot.state != DataChannelState::Open {
            return Err(StateError::Channel {
                channel,
                state: slot.state,
            }
            .into());
        }
        slot.info.id.ok_or(StateError::NoStream { channel }.into())
    }

    /// RTCDataChannel.send.
    pub fn send(
        &mut self,
        now: Instant,
        channel: ChannelRef,
        data: ChannelData,
    ) -> Result<(), RtcError> {
        self.check_open()?;
        let id = self.stream_of(channel)?;
        let Some(channels) = &mut self.channels else {
            return Err(StateError::NoAssociation.into());
        };
        let len = super::get_stats::payload_len(&data);
        match channels.send(now, id, data) {
            Ok(()) => {
                if let Some(slot) = self.data.slots.get_mut(&channel) {
                    slot.counters.messages_sent += 1;
                    slot.counters.bytes_sent += len;
                }
                Ok(())
            }
            Err(ChannelError::Send(realtimer_sctp::SendError::TooLarge { size, max })) => {
                Err(ArgumentError::MessageTooLarge { size, max }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// What a message sent now may take: the peer's max-message-size and
    /// the room left in the SCTP send buffer (`None` before the
    /// association exists).
    pub fn send_room(&self) -> Option<(usize, usize)> {
        let a = self.channels.as_ref()?.association();
        Some((a.remote_max_message_size(), a.send_buffer_room()))
    }

    /// RTCDataChannel.bufferedAmount: bytes queued and not yet sent.
    pub fn buffered_amount(&self, channel: ChannelRef) -> usize {
        let id = self.data.slots.get(&channel).and_then(|s| s.info.id);
        match (id, &self.channels) {
            (Some(id), Some(c)) => c.buffered_amount(id),
            _ => 0,
        }
    }

    /// RTCDataChannel.bufferedAmountLowThreshold.
    pub fn set_buffered_amount_low_threshold(&mut self, channel: ChannelRef, threshold: usize) {
        let Some(slot) = self.data.slots.get_mut(&channel) else {
            return;
        };
        slot.low_threshold = threshold;
        if let (Some(id), Some(c)) = (slot.info.id, &mut self.channels) {
            c.set_buffered_amount_low_threshold(id, threshold);
        }
    }

    /// RTCDataChannel.close: queued data is sent, then the stream is reset
    /// (RFC 8831 §6.7) and both sides see `close`.
    pub fn close_channel(&mut self, now: Instant, channel: ChannelRef) {
        let Some(slot) = self.data.slots.get_mut(&channel) else {
            return;
        };
        if matches!(
            slot.state,
            DataChannelState::Closing | DataChannelState::Closed
        ) {
            return;
        }
        match (slot.info.id, &mut self.channels) {
            (Some(id), Some(c)) => {
                slot.state = DataChannelState::Closing;
                self.events.push_back(RtcEvent::ChannelClosing(channel));
                c.close(now, id);
                self.pump_channel_events(now);
            }
            _ => {
                self.data.slots.remove(&channel);
                self.events.push_back(RtcEvent::ChannelClosed(channel));
            }
        }
    }

    /// Tells SCTP how much of what it delivered the caller has not polled
    /// yet, before it takes more: the receive window it advertises shrinks
    /// by that much, so a peer can never queue more than the window
    /// (`SctpConfig::receive_window`) of messages here, however long the
    /// caller leaves them (RFC 9260 §6.2 flow control, end to end).
    pub(super) fn report_unread(&mut self, now: Instant) {
        if let Some(channels) = &mut self.channels {
            channels.set_unread(now, self.data.unread);
        }
    }

    pub(super) fn pump_channel_events(&mut self, now: Instant) {
        let _ = now;
        let Some(channels) = &mut self.channels else {
            return;
        };
        while let Some(event) = channels.poll_event() {
            match event {
                DataChannelEvent::Opened(id) => {
                    if let Some(r) = self.data.by_stream.get(&id).copied() {
                        if let Some(slot) = self.data.slots.get_mut(&r) {
                            slot.state = DataChannelState::Open;
                        }
                        self.events.push_back(RtcEvent::ChannelOpen(r, id));
                        self.data.channels_opened += 1;
                    }
                }
                DataChannelEvent::Incoming(info) => {
                    let r = ChannelRef(self.data.next_ref);
                    self.data.next_ref = self.data.next_ref.wrapping_add(1);
                    let info = DataChannelInfo::from_remote(&info);
                    let id = info.id.unwrap_or_default();
                    self.data.slots.insert(
                        r,
                        Slot {
                            init: ChannelInit::default(),
                            info: info.clone(),
                            state: DataChannelState::Open,
                            low_threshold: 0,
                            counters: Default::default(),
                        },
                    );
                    self.data.by_stream.insert(id, r);
                    self.events.push_back(RtcEvent::DataChannel(r, info));
                    self.events.push_back(RtcEvent::ChannelOpen(r, id));
                    self.data.channels_opened += 1;
                }
                DataChannelEvent::Message { channel, data } => {
                    if let Some(r) = self.data.by_stream.get(&channel).copied() {
                        if let Some(slot) = self.data.slots.get_mut(&r) {
                            slot.counters.messages_received += 1;
                            slot.counters.bytes_received += super::get_stats::payload_len(&data);
                        }
                        self.data.unread += super::get_stats::payload_len(&data) as usize;
                        self.events.push_back(RtcEvent::ChannelMessage(r, data));
                    }
                }
                DataChannelEvent::BufferedAmountLow(id) => {
                    if let Some(r) = self.data.by_stream.get(&id).copied() {
                        self.events.push_back(RtcEvent::ChannelBufferedAmountLow(r));
                    }
                }
                DataChannelEvent::Closed(id) => {
                    if let Some(r) = self.data.by_stream.remove(&id) {
                        self.data.slots.remove(&r);
                        self.data.channels_closed += 1;
                        self.events.push_back(RtcEvent::ChannelClosed(r));
                    }
                }
                _ => {}
            }
        }
    }
}
