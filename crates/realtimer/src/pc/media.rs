//! Tracks on the tokio side: [`TrackLocal`] (what we send, with the
//! peer's keyframe requests) and [`TrackRemote`] (what the peer sends).
//! realtimer never encodes or decodes: an application forwards or
//! produces RTP payloads.

use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

use crate::{Feedback, MediaKind, MediaRef, RtpPacket, TrackInfo};
use crate::{RtcError, StateError};

use super::{call, Command};

/// Received RTP packets a [`TrackRemote`] holds for its reader; past it
/// the newest are dropped (late media is useless; the reader asks for a
/// keyframe to recover).
pub(super) const TRACK_QUEUE: usize = 512;

/// Feedback messages a [`TrackLocal`] holds for its reader; past it the
/// newest are dropped (keyframe requests repeat).
pub(super) const FEEDBACK_QUEUE: usize = 16;

/// A track we send (MediaStreamTrack + RTCRtpSender): made with
/// [`TrackLocal::new`], given to [`super::PeerConnection::add_track`],
/// then fed RTP packets with [`TrackLocal::write_rtp`]. Clones share the
/// track.
#[derive(Debug, Clone)]
pub struct TrackLocal {
    inner: Arc<LocalInner>,
}

#[derive(Debug)]
struct LocalInner {
    kind: MediaKind,
    stream_id: String,
    track_id: String,
    binding: OnceLock<Binding>,
}

#[derive(Debug)]
struct Binding {
    media: MediaRef,
    commands: mpsc::Sender<Command>,
    feedback: tokio::sync::Mutex<mpsc::Receiver<Feedback>>,
}

impl TrackLocal {
    /// A track of `kind` with id `track_id`, in stream `stream_id` (the
    /// peer sees both in `a=msid`, RFC 8830 §2).
    pub fn new(kind: MediaKind, stream_id: &str, track_id: &str) -> TrackLocal {
        TrackLocal {
            inner: Arc::new(LocalInner {
                kind,
                stream_id: stream_id.to_owned(),
                track_id: track_id.to_owned(),
                binding: OnceLock::new(),
            }),
        }
    }

    /// Audio or video.
    pub fn kind(&self) -> MediaKind {
        self.inner.kind
    }

    /// The stream id.
    pub fn stream_id(&self) -> &str {
        &self.inner.stream_id
    }

    /// The track id.
    pub fn track_id(&self) -> &str {
        &self.inner.track_id
    }

    /// Binds the track to a connection's transceiver (once).
    pub(super) fn bind(
        &self,
        media: MediaRef,
        commands: mpsc::Sender<Command>,
        feedback: mpsc::Receiver<Feedback>,
    ) -> bool {
        self.inner
            .binding
            .set(Binding {
                media,
                commands,
                feedback: tokio::sync::Mutex::new(feedback),
            })
            .is_ok()
    }

    /// Sends an RTP packet: the payload type must be one of the
    /// negotiated codecs; the SSRC is the track's own (the packet's is
    /// ignored). Waits while the connection's command queue is full.
    /// Packets written before negotiation allows sending are dropped
    /// (with a debug log), as a browser's sender sends nothing then.
    pub async fn write_rtp(&self, packet: RtpPacket) -> Result<(), RtcError> {
        let b = self.binding()?;
        b.commands
            .send(Command::WriteRtp(b.media, packet))
            .await
            .map_err(|_| RtcError::from(StateError::Closed))
    }

    /// The next request of the peer's receiver: a keyframe (PLI or FIR);
    /// `None` once the connection is gone. Lost packets (NACK) are resent
    /// by the connection itself. One reader at a time.
    pub async fn feedback(&self) -> Option<Feedback> {
        let b = self.binding().ok()?;
        b.feedback.lock().await.recv().await
    }

    fn binding(&self) -> Result<&Binding, RtcError> {
        self.inner
            .binding
            .get()
            .ok_or(RtcError::from(StateError::TrackNotAdded))
    }
}

/// What [`super::PeerConnection::add_track`] returns (RTCRtpSender).
#[derive(Debug, Clone)]
pub struct RtpSender {
    pub(super) track: TrackLocal,
}

impl RtpSender {
    /// The track it sends.
    pub fn track(&self) -> &TrackLocal {
        &self.track
    }
}

/// A track the peer sends (the `track` event's MediaStreamTrack and
/// RTCRtpReceiver): read its RTP packets, ask for keyframes.
#[derive(Debug, Clone)]
pub struct TrackRemote {
    info: TrackInfo,
    media: MediaRef,
    commands: mpsc::Sender<Command>,
    packets: Arc<tokio::sync::Mutex<mpsc::Receiver<RtpPacket>>>,
}

impl TrackRemote {
    pub(super) fn new(
        info: TrackInfo,
        media: MediaRef,
        commands: mpsc::Sender<Command>,
        packets: mpsc::Receiver<RtpPacket>,
    ) -> TrackRemote {
        TrackRemote {
            info,
            media,
            commands,
            packets: Arc::new(tokio::sync::Mutex::new(packets)),
        }
    }

    /// Audio or video.
    pub fn kind(&self) -> MediaKind {
        self.info.kind
    }

    /// Its mid, stream ids, track id and negotiated codecs.
    pub fn info(&self) -> &TrackInfo {
        &self.info
    }

    /// The next RTP packet; `None` once the connection is gone. Clones
    /// share one queue.
    pub async fn read_rtp(&self) -> Option<RtpPacket> {
        self.packets.lock().await.recv().await
    }

    /// Asks the sender for a keyframe (a PLI, RFC 4585 §6.3.1).
    pub async fn request_keyframe(&self) -> Result<(), RtcError> {
        let media = self.media;
        call(&self.commands, |r| Command::RequestKeyframe(media, r)).await
    }

    /// Asks the sender to send these packets again (a generic NACK, RFC
    /// 4585 §6.2.1; at most [`crate::MAX_NACKED`]).
    pub async fn request_retransmission(&self, lost: Vec<u16>) -> Result<(), RtcError> {
        let media = self.media;
        call(&self.commands, |r| {
            Command::RequestRetransmission(media, lost, r)
        })
        .await
    }
}
