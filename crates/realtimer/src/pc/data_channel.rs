//! RTCDataChannel: a handle to one channel of a connection's driver.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use realtimer_datachannel::ChannelData;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

use crate::{ChannelRef, DataChannelInfo, DataChannelState};
use crate::{RtcError, StateError};
use realtimer_proto::payload_len;

use super::{call, ChannelStatus, Command, DataChannelEvent};

/// What the handles of one connection may send without asking the driver:
/// W3C `send()` fails at once for a closed channel, a message larger than
/// the peer takes, or a full send buffer; when the driver's last figures
/// show none of these, the message is queued without a reply (a round trip
/// per message cost more than the message). `room - queued` never exceeds
/// the room the core really has: the driver publishes the room before it
/// releases what it took from the queue.
#[derive(Debug, Default)]
pub(super) struct SendShared {
    /// The peer's max-message-size (0 until the association is up).
    max_message: AtomicUsize,
    /// Room in the send buffer as last published.
    room: AtomicUsize,
    /// Bytes queued by handles and not yet released by the driver.
    queued: AtomicUsize,
}

/// The driver's side of [`SendShared`].
#[derive(Debug, Default)]
pub(super) struct SendGate {
    pub(super) shared: Arc<SendShared>,
    /// Taken from the queue since the last publication.
    taken: usize,
}

impl SendGate {
    /// The driver took a checked message of `len` from the queue.
    pub(super) fn took(&mut self, len: usize) {
        self.taken += len;
    }

    /// Publishes the core's figures, then releases what was taken.
    pub(super) fn publish(&mut self, room: Option<(usize, usize)>) {
        let (max, room) = room.unwrap_or((0, 0));
        self.shared.max_message.store(max, Ordering::Release);
        self.shared.room.store(room, Ordering::Release);
        let taken = std::mem::take(&mut self.taken);
        if taken > 0 {
            self.shared.queued.fetch_sub(taken, Ordering::AcqRel);
        }
    }
}

/// RTCDataChannel. Clones share the channel (send from one task, receive
/// in another).
#[derive(Debug, Clone)]
pub struct DataChannel {
    pub(super) channel: ChannelRef,
    pub(super) info: DataChannelInfo,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) status: watch::Receiver<ChannelStatus>,
    pub(super) events: Arc<tokio::sync::Mutex<mpsc::Receiver<Inbound>>>,
    /// The connection's send gate.
    pub(super) gate: Arc<SendShared>,
    /// This channel's bytes queued to the driver and not yet in the core
    /// (part of bufferedAmount, which grows at `send()` as in browsers).
    pub(super) queued: Arc<AtomicUsize>,
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
        self.status.borrow().buffered_amount + self.queued.load(Ordering::Acquire)
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
        // RFC 8831 §6.6: an empty message travels as one byte.
        let len = usize::try_from(payload_len(&data))
            .unwrap_or(usize::MAX)
            .max(1);
        if self.ready_state() == DataChannelState::Open
            && len <= self.gate.max_message.load(Ordering::Acquire)
        {
            let queued = self.gate.queued.fetch_add(len, Ordering::AcqRel) + len;
            if queued <= self.gate.room.load(Ordering::Acquire) {
                self.queued.fetch_add(len, Ordering::AcqRel);
                if self
                    .commands
                    .send(Command::SendChecked(r, data, len))
                    .await
                    .is_ok()
                {
                    return Ok(());
                }
                self.queued.fetch_sub(len, Ordering::AcqRel);
                self.gate.queued.fetch_sub(len, Ordering::AcqRel);
                return Err(RtcError::from(StateError::Closed));
            }
            self.gate.queued.fetch_sub(len, Ordering::AcqRel);
        }
        // Anything else asks the core, which answers with the exact error.
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
        let queued = &self.queued;
        let _ = rx
            .wait_for(|s| {
                s.buffered_amount + queued.load(Ordering::Acquire) <= level
                    || s.state == DataChannelState::Closed
            })
            .await;
    }
}
