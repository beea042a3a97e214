//! Errors of the codecs.

/// What went wrong encoding or decoding.
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
    /// A setting the codec cannot take.
    #[error("{codec}: {what}")]
    BadConfig {
        /// The codec.
        codec: &'static str,
        /// What is wrong.
        what: String,
    },
    /// Input of the wrong shape: a frame of another size, PCM of another
    /// length, an image format the codec does not take.
    #[error("{codec}: {what}")]
    BadInput {
        /// The codec.
        codec: &'static str,
        /// What is wrong.
        what: String,
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
