//! One API over the video codecs.

use crate::fmtp::H264Params;
use crate::{CodecError, I420Frame};

/// A video codec WebRTC negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoCodec {
    /// VP8 (RFC 6386), through libvpx.
    Vp8,
    /// VP9, through libvpx.
    Vp9,
    /// H.264, through OpenH264.
    H264,
}

impl VideoCodec {
    /// The codec of an `a=rtpmap` encoding name (case-insensitive).
    pub fn from_encoding_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "VP8" => Some(Self::Vp8),
            "VP9" => Some(Self::Vp9),
            "H264" => Some(Self::H264),
            _ => None,
        }
    }
}

/// How to set up a video encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoEncoderConfig {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Target bitrate in bit/s (until the estimate sets another).
    pub bitrate_bps: u32,
    /// Frames per second the source sends.
    pub framerate: u32,
    /// The negotiated H.264 parameters (ignored by VP8 and VP9).
    pub h264: H264Params,
}

impl VideoEncoderConfig {
    /// `width` x `height` at 30 fps and 1 Mbit/s, H.264 as browsers offer
    /// it (Constrained Baseline 3.1, packetization-mode 1).
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            bitrate_bps: 1_000_000,
            framerate: 30,
            h264: H264Params::from_fmtp("packetization-mode=1;profile-level-id=42e01f"),
        }
    }
}

/// A compressed frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The frame (for H.264, an access unit in Annex B form).
    pub data: Vec<u8>,
    /// A decoder can start from it.
    pub keyframe: bool,
}

/// Encodes I420 frames.
pub trait VideoEncoder: Send {
    /// The codec.
    fn codec(&self) -> VideoCodec;

    /// Encodes `frame`, shown at `timestamp_90k` (90 kHz, the RTP video
    /// clock); `None` when the encoder dropped it to hold its bitrate.
    fn encode(
        &mut self,
        frame: &I420Frame,
        timestamp_90k: u64,
    ) -> Result<Option<EncodedFrame>, CodecError>;

    /// Sets the target bitrate, from the congestion controller's estimate.
    fn set_bitrate(&mut self, bps: u32) -> Result<(), CodecError>;

    /// Makes the next frame a keyframe (on PLI or FIR).
    fn request_keyframe(&mut self);
}

/// Decodes frames into I420.
pub trait VideoDecoder: Send {
    /// The codec.
    fn codec(&self) -> VideoCodec;

    /// Decodes one whole frame (for H.264, an access unit in Annex B form);
    /// `None` when it gives no picture yet.
    fn decode(&mut self, frame: &[u8]) -> Result<Option<I420Frame>, CodecError>;
}

/// An encoder for `codec`, or [`CodecError::NotBuilt`] when its library is
/// not in this build.
pub fn video_encoder(
    codec: VideoCodec,
    config: &VideoEncoderConfig,
) -> Result<Box<dyn VideoEncoder>, CodecError> {
    let _ = config;
    match codec {
        #[cfg(feature = "vpx")]
        VideoCodec::Vp8 | VideoCodec::Vp9 => {
            Ok(Box::new(crate::vpx::VpxEncoder::new(codec, config)?))
        }
        #[cfg(feature = "h264")]
        VideoCodec::H264 => Ok(Box::new(crate::h264::H264Encoder::new(config)?)),
        #[allow(unreachable_patterns)]
        other => Err(not_built(other)),
    }
}

/// A decoder for `codec`, or [`CodecError::NotBuilt`] when its library is
/// not in this build.
pub fn video_decoder(codec: VideoCodec) -> Result<Box<dyn VideoDecoder>, CodecError> {
    match codec {
        #[cfg(feature = "vpx")]
        VideoCodec::Vp8 | VideoCodec::Vp9 => Ok(Box::new(crate::vpx::VpxDecoder::new(codec)?)),
        #[cfg(feature = "h264")]
        VideoCodec::H264 => Ok(Box::new(crate::h264::H264Decoder::new()?)),
        #[allow(unreachable_patterns)]
        other => Err(not_built(other)),
    }
}

/// Checks that `frame` has the size an encoder was set up for.
#[allow(dead_code)]
pub(crate) fn check_frame_size(
    codec: &'static str,
    frame: &I420Frame,
    expected: (u32, u32),
) -> Result<(), CodecError> {
    let got = (frame.width(), frame.height());
    if got == expected {
        Ok(())
    } else {
        Err(CodecError::FrameSizeMismatch {
            codec,
            expected,
            got,
        })
    }
}

#[allow(dead_code)]
fn not_built(codec: VideoCodec) -> CodecError {
    let (codec, feature) = match codec {
        VideoCodec::Vp8 => ("VP8", "vpx"),
        VideoCodec::Vp9 => ("VP9", "vpx"),
        VideoCodec::H264 => ("H.264", "h264"),
    };
    CodecError::NotBuilt { codec, feature }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factories_make_what_is_built_in_and_say_what_is_not() {
        for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
            let built = match codec {
                VideoCodec::H264 => cfg!(feature = "h264"),
                _ => cfg!(feature = "vpx"),
            };
            let decoder = video_decoder(codec);
            let encoder = video_encoder(codec, &VideoEncoderConfig::new(64, 64));
            if built {
                assert_eq!(decoder.unwrap().codec(), codec);
                assert_eq!(encoder.unwrap().codec(), codec);
            } else {
                assert!(matches!(decoder, Err(CodecError::NotBuilt { .. })));
                assert!(matches!(encoder, Err(CodecError::NotBuilt { .. })));
            }
        }
        assert_eq!(
            VideoCodec::from_encoding_name("h264"),
            Some(VideoCodec::H264)
        );
        assert_eq!(VideoCodec::from_encoding_name("AV1"), None);
    }
}
