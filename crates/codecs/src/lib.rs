//! Audio and video codecs through the libraries browsers use: Opus
//! (libopus), VP8 and VP9 (libvpx), H.264 (OpenH264), each behind a cargo
//! feature of the same name, on by default; the crate builds without any.
//!
//! - [`I420Frame`]: the raw video frame every encoder takes and every decoder
//!   gives; audio is interleaved 16-bit PCM at 48 kHz.
//! - [`VideoEncoder`] / [`VideoDecoder`]: one API for the three video
//!   codecs, made by [`video_encoder`] and [`video_decoder`] from the
//!   negotiated [`VideoCodec`]; target bitrate settable, keyframe on request.
//! - `opus::OpusEncoder` / `opus::OpusDecoder`: packets of 10-60 ms, in-band
//!   FEC and loss concealment.
//! - [`fmtp`]: the negotiated format parameters (Opus `useinbandfec`,
//!   `stereo`, `minptime`; H.264 `profile-level-id`, `packetization-mode`)
//!   that configure the encoders.
//! - `apm::AudioProcessor` (feature `apm`): echo cancellation, noise
//!   suppression and gain control through WebRTC's AudioProcessing module
//!   (Debian's libwebrtc-audio-processing, pkg-config); left out with a
//!   build warning where the library is missing.
//! - [`source`]: a test pattern whose frame counter a receiver reads back
//!   from the pixels, and a tone, with a Goertzel filter to find it.
//!
//! Which wrapper, and why: `opus` (safe, maintained, pkg-config against
//! Debian's libopus through `audiopus_sys`); `openh264` (safe, maintained,
//! bundles OpenH264's source so every machine has the same encoder); for
//! libvpx no safe wrapper covers encode and decode with runtime bitrate
//! changes, so `vpx` is a thin one of our own over `env-libvpx-sys`'s
//! bindings (pkg-config, pre-generated for Debian's 1.12).

// Library code never unwraps: codec errors are typed.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod error;
pub mod fmtp;
mod frame;
pub mod source;
mod video;

#[cfg(feature = "apm")]
pub mod apm;
#[cfg(feature = "h264")]
pub mod h264;
#[cfg(feature = "opus")]
pub mod opus;
#[cfg(feature = "vpx")]
pub mod vpx;

pub use error::CodecError;
pub use frame::I420Frame;
pub use video::{
    video_decoder, video_encoder, EncodedFrame, VideoCodec, VideoDecoder, VideoEncoder,
    VideoEncoderConfig,
};
