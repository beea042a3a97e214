//! RTCDataChannel: a handle to one channel of a connection's driver.

use std::sync::Arc;

use bytes::Bytes;
use realtimer_datachannel::ChannelData;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

use crate::channel::{ChannelRef, DataChannelInfo, DataChannelState};
use crate::error::RtcError;

use super::{call, ChannelStatus, Command, DataChannelEvent};

/// RTCDataChannel. Clones share the channel (send from one task, receive
/// in another).
#[derive(Debug, Clone)]
pub struct DataChannel {
    pub(super) channel: ChannelRef,
    pub(super) info: DataChannelInfo,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) status: watch::Receiver<ChannelStatus>,
    pub(super) events: Arc<tokio::sync::Mutex<mpsc::Receiver<Inbound>>>,
}

/// An event on its way to the user, holding its share of the channel's
/// receive budget until it is taken.
#[derive(Debug)]
pub(super) struct Inbound {
    pub(super) event: DataChannelEvent,
    pub(super) _permit: Option<OwnedSemaphorePermit>,
}

impl DataChannel {
    /// label.
    pub fn label(&self) -> &str {
        &self.info.label
    }

    /// protocol.
    pub fn protocol(&self) -> &str {
        &self.info.protocol
    }

    /// id: the SCTP stream id, once the DTLS role is known.
    pub fn id(&self) -> Option<u16> {
        self.status.borrow().id.or(self.info.id)
    }

    /// ordered.
    pub fn ordered(&self) -> bool {
        self.info.ordered
    }

    /// maxRetransmits.
    pub fn max_retransmits(&self) -> Option<u16> {
        self.info.max_retransmits
    }

    /// maxPacketLifeTime (ms).
    pub fn max_packet_life_time(&self) -> Option<u16> {
        self.info.max_packet_life_time
    }

    /// negotiated.
    pub fn negotiated(&self) -> bool {
        self.info.negotiated
    }

    /// readyState.
    pub fn ready_state(&self) -> DataChannelState {
        self.status.borrow().state
    }

    /// bufferedAmount: bytes queued and not yet sent.
    pub fn buffered_amount(&self) -> usize {
        self.status.borrow().buffered_amount
    }

    /// bufferedAmountLowThreshold.
    pub fn buffered_amount_low_threshold(&self) -> usize {
        self.status.borrow().low_threshold
    }

    /// Sets bufferedAmountLowThreshold: `bufferedamountlow` fires when the
    /// buffered amount falls to it.
    pub async fn set_buffered_amount_low_threshold(&self, threshold: usize) {
        let _ = self
            .commands
            .send(Command::SetLowThreshold(self.channel, threshold))
            .await;
    }

    /// send: a text or binary message.
    pub async fn send(&self, data: ChannelData) -> Result<(), RtcError> {
        let r = self.channel;
        call(&self.commands, |reply| Command::Send(r, data, reply)).await
    }

    /// send(string).
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), RtcError> {
        self.send(ChannelData::Text(text.into())).await
    }

    /// send(ArrayBuffer).
    pub async fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), RtcError> {
        self.send(ChannelData::Binary(data.into())).await
    }

    /// close.
    pub async fn close(&self) {
        let _ = self
            .commands
            .send(Command::CloseChannel(self.channel))
            .await;
    }

    /// The next event (`open`, `message`, `bufferedamountlow`, `closing`,
    /// `error`, `close`); `None` after `close`.
    pub async fn next_event(&self) -> Option<DataChannelEvent> {
        self.events.lock().await.recv().await.map(|i| i.event)
    }

    /// The next message, skipping other events; `None` once closed.
    pub async fn recv(&self) -> Option<ChannelData> {
        let mut events = self.events.lock().await;
        loop {
            match events.recv().await?.event {
                DataChannelEvent::Message(m) => return Some(m),
                DataChannelEvent::Close => return None,
                _ => {}
            }
        }
    }

    /// Waits until the channel is open; false if it closed instead.
    pub async fn wait_open(&self) -> bool {
        let mut rx = self.status.clone();
        matches!(
            rx.wait_for(|s| s.state != DataChannelState::Connecting)
                .await
                .map(|s| s.state),
            Ok(DataChannelState::Open)
        )
    }

    /// Waits until the channel is closed.
    pub async fn wait_closed(&self) {
        let mut rx = self.status.clone();
        let _ = rx.wait_for(|s| s.state == DataChannelState::Closed).await;
    }

    /// Waits until bufferedAmount is at or below `level` (back-pressure
    /// for senders; the `bufferedamountlow` event without the threshold).
    pub async fn wait_buffered_amount_at_most(&self, level: usize) {
        let mut rx = self.status.clone();
        let _ = rx
            .wait_for(|s| s.buffered_amount <= level || s.state == DataChannelState::Closed)
            .await;
    }
}
