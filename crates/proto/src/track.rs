//! Media tracks: kinds, codecs, RTP packets and keyframe requests as the
//! application sees them (RTCRtpTransceiver, RTCRtpCodec, RTCTrackEvent).

use std::fmt;

use bytes::Bytes;

pub use realtimer_sdp::Direction;

/// A track's kind (`MediaStreamTrack.kind`), the `m=` line's media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaKind {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
}

impl MediaKind {
    /// The W3C (and SDP) name.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transceiver of an [`crate::Rtc`]: one `m=` section carrying one track
/// each way (W3C webrtc-pc §5.4, RTCRtpTransceiver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaRef(pub(crate) u32);

impl MediaRef {
    /// The transceiver's place in the connection's list (in the order
    /// they were made), e.g. to name a track after it.
    pub fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Display for MediaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transceiver {}", self.0)
    }
}

/// An RTP payload format (RTCRtpCodec; RFC 8866 §6.6 `a=rtpmap` and §6.15
/// `a=fmtp`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Codec {
    /// The payload type. In an answer, the offerer's (RFC 8829 §5.3.1).
    pub payload_type: u8,
    /// The encoding name as in `a=rtpmap` (`opus`, `VP8`, `H264`...).
    pub name: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels (`2` for Opus), if any.
    pub channels: Option<u32>,
    /// The `a=fmtp` parameters, if any.
    pub fmtp: Option<String>,
}

impl Codec {
    /// A codec without format parameters.
    pub fn new(payload_type: u8, name: &str, clock_rate: u32, channels: Option<u32>) -> Codec {
        Codec {
            payload_type,
            name: name.to_owned(),
            clock_rate,
            channels,
            fmtp: None,
        }
    }

    /// Sets [`Codec::fmtp`].
    pub fn with_fmtp(mut self, fmtp: &str) -> Codec {
        self.fmtp = Some(fmtp.to_owned());
        self
    }

    /// Which kind of media this codec carries (by clock rate: 90 kHz is
    /// video, RFC 3551 §5 and every video payload format since).
    pub fn kind(&self) -> MediaKind {
        if self.clock_rate == 90_000 {
            MediaKind::Video
        } else {
            MediaKind::Audio
        }
    }

    /// One `a=fmtp` parameter.
    fn parameter(&self, key: &str) -> Option<&str> {
        self.fmtp.as_deref()?.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k.trim().eq_ignore_ascii_case(key)).then_some(v.trim())
        })
    }

    /// Whether an offered codec is this one: same name and clock rate, and
    /// the parameters that make payloads incompatible equal (H.264
    /// `packetization-mode`, RFC 6184 §8.2.2, with 0 when absent; VP9
    /// `profile-id`, 0 when absent).
    pub(crate) fn matches(&self, other: &Codec) -> bool {
        if !self.name.eq_ignore_ascii_case(&other.name) || self.clock_rate != other.clock_rate {
            return false;
        }
        ["packetization-mode", "profile-id"]
            .iter()
            .all(|k| self.parameter(k).unwrap_or("0") == other.parameter(k).unwrap_or("0"))
    }

    /// The codecs realtimer offers and accepts by default, most preferred
    /// first: Opus, VP8, VP9, H.264 (constrained baseline, mode 1) and AV1,
    /// with the payload types Chromium uses. realtimer never encodes: an
    /// application forwards or produces the payloads.
    pub fn defaults() -> Vec<Codec> {
        vec![
            Codec::new(111, "opus", 48_000, Some(2)).with_fmtp("minptime=10;useinbandfec=1"),
            Codec::new(96, "VP8", 90_000, None),
            Codec::new(98, "VP9", 90_000, None).with_fmtp("profile-id=0"),
            Codec::new(102, "H264", 90_000, None).with_fmtp(
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            ),
            Codec::new(45, "AV1", 90_000, None),
        ]
    }
}

/// What the peer sends on a transceiver (RTCTrackEvent): fired when a
/// description says the peer sends there (W3C webrtc-pc §5.1 "process
/// remote tracks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// Audio or video.
    pub kind: MediaKind,
    /// The section's `a=mid`.
    pub mid: String,
    /// The streams (`a=msid` stream ids) the track belongs to.
    pub stream_ids: Vec<String>,
    /// The track id of `a=msid`, if given.
    pub track_id: Option<String>,
    /// The negotiated codecs, the sender's preference first.
    pub codecs: Vec<Codec>,
    /// The rids of the simulcast layers the peer sends on this one track
    /// (RFC 8853), in its order (Chromium: lowest resolution first);
    /// empty without simulcast. Which layer a packet belongs to:
    /// [`crate::Rtc::remote_rid`] by its SSRC.
    pub rids: Vec<String>,
}

/// An RTP packet as an application reads or writes it (RFC 3550 §5.1),
/// without the header extensions realtimer handles itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// The payload type (a negotiated [`Codec::payload_type`]).
    pub payload_type: u8,
    /// The sequence number.
    pub sequence_number: u16,
    /// The RTP timestamp, in the codec's clock.
    pub timestamp: u32,
    /// The marker bit (for video: the last packet of a frame).
    pub marker: bool,
    /// The sender's SSRC. Ignored when writing: realtimer sets the
    /// transceiver's own.
    pub ssrc: u32,
    /// The payload (padding removed).
    pub payload: Bytes,
}

/// What the receiver of one of our tracks asks of its sender (RFC 4585
/// §6.1 feedback messages).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feedback {
    /// Send a keyframe.
    Keyframe(KeyframeRequest),
}

/// Most sequence numbers asked for in one NACK we send: a request naming
/// more is cut to its first ones (a receiver that lost that much needs a
/// keyframe instead). Generic NACKs about our tracks are answered by
/// [`crate::Rtc`] itself from the packets it sent.
pub const MAX_NACKED: usize = 256;

/// A request for a keyframe from the receiver of one of our tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyframeRequest {
    /// Picture Loss Indication (RFC 4585 §6.3.1).
    Pli,
    /// Full Intra Request (RFC 5104 §4.3.1).
    Fir,
}

/// The clock of a sender report (RFC 3550 §6.4.1): the sender's wallclock
/// as an NTP timestamp and the same instant in the stream's RTP clock.
/// Tracks of one sender share the wallclock, so their reports map their
/// timestamps onto one timeline (lip sync, RFC 3550 §6.4.1 and §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SenderClock {
    /// The wallclock, 64-bit NTP (seconds since 1900 in the high 32 bits).
    pub ntp_time: u64,
    /// The RTP timestamp of that instant.
    pub rtp_time: u32,
}
