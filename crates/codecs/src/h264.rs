//! H.264 through OpenH264 (the `openh264` crate, which builds Cisco's
//! source it bundles).
//!
//! The negotiated `profile-level-id` sets the profile and level the encoder
//! writes in its SPS; `packetization-mode=0` limits each NAL unit to
//! [`SINGLE_NAL_MAX`] bytes, so each fits an RTP packet alone (RFC 6184
//! §6.2). Encoded frames are access units in Annex B form.

use openh264::decoder::Decoder;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Level, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use crate::fmtp::{H264Params, H264Profile};
use crate::video::{
    check_frame_size, EncodedFrame, VideoCodec, VideoDecoder, VideoEncoder, VideoEncoderConfig,
};
use crate::{CodecError, I420Frame};

/// The largest NAL unit under `packetization-mode=0`: an RTP payload that
/// fits a 1,280-byte IPv6 minimum MTU after IP, UDP, RTP and SRTP headers.
pub const SINGLE_NAL_MAX: u32 = 1_100;

fn encode_error(e: openh264::Error) -> CodecError {
    CodecError::Encode {
        codec: "H.264",
        detail: e.to_string(),
    }
}

/// H.264 Table A-1 levels by `level_idc`.
fn level(level_idc: u8) -> Level {
    match level_idc {
        0..=10 => Level::Level_1_0,
        11 => Level::Level_1_1,
        12 => Level::Level_1_2,
        13 => Level::Level_1_3,
        14..=20 => Level::Level_2_0,
        21 => Level::Level_2_1,
        22 => Level::Level_2_2,
        23..=30 => Level::Level_3_0,
        31 => Level::Level_3_1,
        32 => Level::Level_3_2,
        33..=40 => Level::Level_4_0,
        41 => Level::Level_4_1,
        42 => Level::Level_4_2,
        43..=50 => Level::Level_5_0,
        51 => Level::Level_5_1,
        _ => Level::Level_5_2,
    }
}

/// The frame as OpenH264 reads it.
struct Planes<'a>(&'a I420Frame);

impl YUVSource for Planes<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width() as usize, self.0.height() as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let chroma = self.0.chroma_width() as usize;
        (self.0.width() as usize, chroma, chroma)
    }

    fn y(&self) -> &[u8] {
        self.0.y()
    }

    fn u(&self) -> &[u8] {
        self.0.u()
    }

    fn v(&self) -> &[u8] {
        self.0.v()
    }
}

/// An H.264 encoder.
pub struct H264Encoder {
    inner: Encoder,
    config: VideoEncoderConfig,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "H264Encoder({}x{})",
            self.config.width, self.config.height
        )
    }
}

impl H264Encoder {
    /// An encoder with `config`'s bitrate and frame rate and the profile,
    /// level and packetization mode of `config.h264`.
    pub fn new(config: &VideoEncoderConfig) -> Result<Self, CodecError> {
        if config.width % 2 != 0 || config.height % 2 != 0 || config.width == 0 {
            // OpenH264 takes even sizes only.
            return Err(CodecError::UnsupportedSize {
                codec: "H.264",
                width: config.width,
                height: config.height,
            });
        }
        Ok(Self {
            inner: Self::build(config)?,
            config: *config,
        })
    }

    fn build(config: &VideoEncoderConfig) -> Result<Encoder, CodecError> {
        let H264Params {
            profile,
            level_idc,
            packetization_mode,
        } = config.h264;
        let profile = match profile {
            H264Profile::ConstrainedBaseline | H264Profile::Baseline => Profile::Baseline,
            H264Profile::Main => Profile::Main,
            H264Profile::High => Profile::High,
            H264Profile::Other(idc) => {
                return Err(CodecError::UnsupportedProfile { profile_idc: idc })
            }
        };
        let mut settings = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(config.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(config.framerate as f32))
            .profile(profile)
            .level(level(level_idc))
            // Keyframes on request only (PLI/FIR).
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            // OpenH264 holds the bitrate only when it may skip frames.
            .skip_frames(true)
            .num_threads(1);
        if packetization_mode == 0 {
            settings = settings.max_slice_len(SINGLE_NAL_MAX);
        }
        Encoder::with_api_config(OpenH264API::from_source(), settings).map_err(|e| {
            CodecError::Setup {
                codec: "H.264",
                detail: e.to_string(),
            }
        })
    }
}

impl VideoEncoder for H264Encoder {
    fn codec(&self) -> VideoCodec {
        VideoCodec::H264
    }

    fn encode(
        &mut self,
        frame: &I420Frame,
        timestamp_90k: u64,
    ) -> Result<Option<EncodedFrame>, CodecError> {
        let _ = timestamp_90k;
        check_frame_size("H.264", frame, (self.config.width, self.config.height))?;
        let stream = self.inner.encode(&Planes(frame)).map_err(encode_error)?;
        let keyframe = matches!(stream.frame_type(), FrameType::IDR | FrameType::I);
        if matches!(stream.frame_type(), FrameType::Skip | FrameType::Invalid) {
            return Ok(None);
        }
        let data = stream.to_vec();
        Ok((!data.is_empty()).then_some(EncodedFrame { data, keyframe }))
    }

    /// OpenH264's wrapper has no way to change the bitrate of a running
    /// encoder, so this builds a new one: its first frame is an IDR. Change
    /// the bitrate in steps, not on every estimate.
    fn set_bitrate(&mut self, bps: u32) -> Result<(), CodecError> {
        if bps == self.config.bitrate_bps {
            return Ok(());
        }
        let config = VideoEncoderConfig {
            bitrate_bps: bps,
            ..self.config
        };
        self.inner = Self::build(&config)?;
        self.config = config;
        Ok(())
    }

    fn request_keyframe(&mut self) {
        self.inner.force_intra_frame();
    }
}

/// An H.264 decoder.
pub struct H264Decoder {
    inner: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("H264Decoder")
    }
}

impl H264Decoder {
    /// A decoder.
    pub fn new() -> Result<Self, CodecError> {
        let inner = Decoder::new().map_err(|e| CodecError::Setup {
            codec: "H.264",
            detail: e.to_string(),
        })?;
        Ok(Self { inner })
    }
}

impl VideoDecoder for H264Decoder {
    fn codec(&self) -> VideoCodec {
        VideoCodec::H264
    }

    fn decode(&mut self, frame: &[u8]) -> Result<Option<I420Frame>, CodecError> {
        let picture = self.inner.decode(frame).map_err(|e| CodecError::Decode {
            codec: "H.264",
            detail: e.to_string(),
        })?;
        let Some(yuv) = picture else {
            return Ok(None);
        };
        let (w, h) = yuv.dimensions();
        let (ys, us, vs) = yuv.strides();
        I420Frame::from_planes(w as u32, h as u32, yuv.y(), ys, yuv.u(), us, yuv.v(), vs).map(Some)
    }
}
