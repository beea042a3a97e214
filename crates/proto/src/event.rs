//! What the core tells its driver.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use realtimer_datachannel::ChannelData;
use realtimer_ice::{IceConnectionState, IceGatheringState};

use crate::channel::{ChannelRef, DataChannelInfo};
use crate::jsep::{IceCandidateInit, SignalingState};
use crate::track::{Feedback, MediaRef, RtpPacket, TrackInfo};

/// RTCPeerConnectionState (W3C webrtc-pc §4.3.3), from ICE and DTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerConnectionState {
    /// Nothing started.
    New,
    /// ICE checking or DTLS handshaking.
    Connecting,
    /// ICE connected and DTLS connected.
    Connected,
    /// ICE lost consent for a while.
    Disconnected,
    /// ICE or DTLS failed.
    Failed,
    /// `close()` was called.
    Closed,
}

impl PeerConnectionState {
    /// The W3C string value.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerConnectionState::New => "new",
            PeerConnectionState::Connecting => "connecting",
            PeerConnectionState::Connected => "connected",
            PeerConnectionState::Disconnected => "disconnected",
            PeerConnectionState::Failed => "failed",
            PeerConnectionState::Closed => "closed",
        }
    }
}

impl fmt::Display for PeerConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A datagram for the driver to send (UDP, from a candidate's base).
pub use realtimer_net::Transmit;

/// Something the driver should know or do, with the browser's event names
/// in the docs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcEvent {
    /// `icecandidate`: a local candidate to signal; `None` is the end of
    /// candidates (the browser's null candidate).
    IceCandidate(Option<IceCandidateInit>),
    /// `icegatheringstatechange`.
    IceGatheringState(IceGatheringState),
    /// `iceconnectionstatechange`.
    IceConnectionState(IceConnectionState),
    /// `connectionstatechange`.
    ConnectionState(PeerConnectionState),
    /// `signalingstatechange`.
    SignalingState(SignalingState),
    /// `negotiationneeded`: the first data channel needs a data section.
    NegotiationNeeded,
    /// `datachannel`: the peer opened a channel (it is open).
    DataChannel(ChannelRef, DataChannelInfo),
    /// A channel's `open`; its stream id is now known.
    ChannelOpen(ChannelRef, u16),
    /// A channel's `message`.
    ChannelMessage(ChannelRef, ChannelData),
    /// A channel's `bufferedamountlow`.
    ChannelBufferedAmountLow(ChannelRef),
    /// A channel's `closing` (the peer or we started closing it).
    ChannelClosing(ChannelRef),
    /// A channel's `close`.
    ChannelClosed(ChannelRef),
    /// A channel's `error` (it could not be created, e.g. its id was taken)
    /// before its `close`.
    ChannelError(ChannelRef, realtimer_datachannel::ChannelError),
    /// `track`: the peer sends a track on this transceiver (fired when
    /// the description saying so is applied, W3C webrtc-pc §5.1).
    Track(MediaRef, TrackInfo),
    /// An RTP packet of the peer's track on this transceiver.
    Rtp(MediaRef, RtpPacket),
    /// The audio level (RFC 6464) the peer's packet on this transceiver
    /// carried, told right before that packet's [`RtcEvent::Rtp`] where
    /// the extension is negotiated (realtimer offers it in audio
    /// sections; Chromium and Firefox send it on every audio packet).
    AudioLevel(MediaRef, realtimer_rtp::AudioLevel),
    /// The receiver of our track on this transceiver asks for a keyframe
    /// or for lost packets.
    Feedback(MediaRef, Feedback),
    /// The peer gave an mDNS `.local` host candidate: resolve the name and
    /// call [`crate::Rtc::resolve_mdns_name`].
    ResolveMdnsName(String),
    /// The send-side bandwidth estimate moved (bits per second): what all
    /// our tracks together may send now (encoders follow it). Sent after
    /// the peer's first transport-wide feedback, then when it changes by
    /// 5% or more, at most every 200 ms.
    BandwidthEstimate(u64),
    /// The target of our track on this transceiver moved with the
    /// estimate (bits per second, as [`crate::Rtc::target_bitrate`]
    /// gives it; for simulcast layers see [`crate::Rtc::layer_targets`]):
    /// what its encoder should produce now. One for each sending track
    /// right after each [`RtcEvent::BandwidthEstimate`].
    TargetBitrate(MediaRef, u64),
    /// A sender report of the peer's track on this transceiver: its
    /// RTP-to-wallclock mapping, for aligning audio and video.
    SenderReport(MediaRef, crate::SenderClock),
    /// Publish this mDNS name for our host address (only with
    /// `IceConfig::mdns_host_candidates`).
    RegisterMdnsName(String, IpAddr),
    /// Open a TCP or TLS connection to TURN server `server` (its index in
    /// `IceConfig::turn_servers`) at `address`, and report with
    /// [`crate::Rtc::turn_connected`] or [`crate::Rtc::turn_disconnected`];
    /// see [`realtimer_ice::IceEvent::OpenTurnConnection`].
    OpenTurnConnection {
        /// The server's index.
        server: usize,
        /// Where to connect.
        address: SocketAddr,
        /// TCP or TLS.
        transport: realtimer_ice::Transport,
    },
}
