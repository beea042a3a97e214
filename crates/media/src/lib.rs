//! The media pipeline of realtimer, sans-IO (time comes from the caller):
//!
//! - [`PayloadFormat`]: which RTP payload format a negotiated codec uses
//!   (Opus, VP8, VP9, H.264 in packetization mode 0 or 1).
//! - [`SampleWriter`]: samples (one encoded frame or audio packet and its
//!   duration) to RTP packets: payloads by format, timestamps from the
//!   durations, markers.
//! - [`FrameBuffer`]: received packets back to whole frames in decode
//!   order, waiting a bounded time for a retransmission, then asking for
//!   a keyframe and dropping what cannot be decoded.
//!
//! - [`AudioJitterBuffer`]: audio packets to a steady playout, the delay
//!   following measured jitter, losses rebuilt from FEC or concealed, with
//!   Chrome's statistics.
//! - [`parse_red`]: RED (RFC 2198) packets split into the primary and
//!   the redundant copies of earlier ones, for the jitter buffer;
//!   [`RedEncoder`] wraps Opus packets in it to send.
//! - [`LipSync`]: the sender reports of audio and video map both onto the
//!   sender's wallclock, so a frame is shown with its audio.
//!
//! The PeerConnection's `TrackLocal::write_sample` and
//! `TrackRemote::read_sample` are these on a track.

// Library code never unwraps: peer input gets typed errors.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod audio;
mod format;
mod frame_buffer;
mod lipsync;
mod opus_fec;
mod red;
mod writer;

pub use audio::{AudioJitterBuffer, AudioJitterConfig, AudioJitterStats, Playout};
pub use format::PayloadFormat;
pub use frame_buffer::{FrameBuffer, FrameBufferConfig, FrameBufferStats, ReceivedFrame};
pub use lipsync::LipSync;
pub use opus_fec::opus_has_fec;
pub use red::{parse_red, RedBlock, RedEncoder, RedError, RedPacket, MAX_REDUNDANT_BLOCKS};
pub use writer::{OutgoingPacket, SampleWriter, MAX_PAYLOAD};
