//! Errors of the codecs.

/// What went wrong encoding or decoding, grouped by cause: a codec not
/// built in, a setting the codec cannot take, input of the wrong shape, or
/// the library itself failing (its own words kept).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The codec's library is not in this build (its cargo feature is off).
    #[error("{codec} support is not built in (cargo feature \"{feature}\")")]
    NotBuilt {
        /// The codec asked for.
        codec: &'static str,
        /// The feature that brings it.
        feature: &'static str,
    },

    /// A frame size the encoder cannot take.
    #[error("{codec} cannot encode {width}x{height} frames")]
    UnsupportedSize {
        /// The codec.
        codec: &'static str,
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// An H.264 profile OpenH264 does not encode.
    #[error("H.264 profile_idc {profile_idc} is not supported")]
    UnsupportedProfile {
        /// The negotiated `profile_idc`.
        profile_idc: u8,
    },
    /// An Opus packet duration other than 10, 20, 40 or 60 ms.
    #[error("Opus packets of {ms} ms are not supported (10, 20, 40 or 60)")]
    UnsupportedPacketDuration {
        /// The duration asked for.
        ms: u32,
    },
    /// A channel count other than 1 or 2.
    #[error("{channels} audio channels are not supported (1 or 2)")]
    UnsupportedChannels {
        /// The count asked for.
        channels: u8,
    },

    /// A frame of another size than the encoder was set up for.
    #[error("{codec} encoder set up for {expected:?}, given a {got:?} frame")]
    FrameSizeMismatch {
        /// The codec.
        codec: &'static str,
        /// (width, height) of the encoder.
        expected: (u32, u32),
        /// (width, height) of the frame.
        got: (u32, u32),
    },
    /// PCM of another length than one packet's worth.
    #[error("Opus encodes {expected} interleaved samples a packet, given {got}")]
    PcmLength {
        /// Samples (all channels) a packet takes.
        expected: usize,
        /// Samples given.
        got: usize,
    },
    /// Audio processing takes 10 ms at a time.
    #[error("audio processing takes {expected} interleaved samples (10 ms), given {got}")]
    ProcessingLength {
        /// Samples (all channels) of 10 ms.
        expected: usize,
        /// Samples given.
        got: usize,
    },
    /// WebRTC's AudioProcessing module refused a frame (its error code,
    /// `AudioProcessing::Error`).
    #[error("audio processing failed on the {stream} stream: error {code}")]
    Processing {
        /// `render` (far end) or `capture` (microphone).
        stream: &'static str,
        /// The module's error code.
        code: i32,
    },
    /// An empty packet given to decode (a lost packet is concealed instead).
    #[error("an empty Opus packet (conceal a lost packet instead)")]
    EmptyPacket,
    /// A plane shorter than its size and stride need.
    #[error("a {width}x{height} plane with stride {stride} needs more than {len} bytes")]
    PlaneTooShort {
        /// Plane width in bytes.
        width: usize,
        /// Plane height in rows.
        height: usize,
        /// Bytes from a row to the next.
        stride: usize,
        /// Bytes given.
        len: usize,
    },
    /// A compressed frame larger than the library takes.
    #[error("a {codec} frame of {len} bytes is larger than the decoder takes")]
    FrameTooLarge {
        /// The codec.
        codec: &'static str,
        /// Its length.
        len: usize,
    },
    /// A decoded picture in another format than I420 (VP9 profiles 1-3).
    #[error("{codec} decoded a picture in image format {format:#x}; only I420 is supported")]
    UnsupportedImageFormat {
        /// The codec.
        codec: &'static str,
        /// The library's format code.
        format: u32,
    },

    /// The library refused to set up or reconfigure a codec.
    #[error("{codec} setup: {detail}")]
    Setup {
        /// The codec.
        codec: &'static str,
        /// The library's own words.
        detail: String,
    },
    /// The library failed to encode.
    #[error("{codec} encoder: {detail}")]
    Encode {
        /// The codec.
        codec: &'static str,
        /// The library's own words.
        detail: String,
    },
    /// The library could not decode the input (corrupt, or missing its
    /// reference frames).
    #[error("{codec} decoder: {detail}")]
    Decode {
        /// The codec.
        codec: &'static str,
        /// The library's own words.
        detail: String,
    },
}
