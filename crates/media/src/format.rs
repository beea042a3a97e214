//! Which payload format a negotiated codec uses.

use realtimer_rtp::payload::h264::{self, H264Depacketizer, H264Packetizer};
use realtimer_rtp::payload::vp8::{self, Vp8Depacketizer, Vp8Packetizer};
use realtimer_rtp::payload::vp9::{self, Vp9Depacketizer, Vp9Packetizer};
use realtimer_rtp::payload::Depacketizer;
use realtimer_rtp::ParseError;

/// The RTP payload formats the pipeline packetizes and depacketizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PayloadFormat {
    /// Opus (RFC 7587): one packet is one payload.
    Opus,
    /// VP8 (RFC 7741).
    Vp8,
    /// VP9 (RFC 9628).
    Vp9,
    /// H.264 (RFC 6184) in the negotiated `packetization-mode`: 0 sends
    /// each NAL unit alone, 1 also fragments (FU-A) and aggregates
    /// (STAP-A).
    H264 {
        /// `packetization-mode`, 0 or 1.
        packetization_mode: u8,
    },
}

impl PayloadFormat {
    /// The format of an `a=rtpmap` encoding name with its `a=fmtp`
    /// parameters; `None` for a format the pipeline does not carry (AV1,
    /// RTX, RED, ...), or H.264 in mode 2 (interleaved, RFC 6184 §6.4).
    pub fn from_codec(name: &str, fmtp: Option<&str>) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "OPUS" => Some(Self::Opus),
            "VP8" => Some(Self::Vp8),
            "VP9" => Some(Self::Vp9),
            "H264" => {
                let mode = fmtp
                    .into_iter()
                    .flat_map(|f| f.split(';'))
                    .filter_map(|p| p.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("packetization-mode"))
                    .map_or(Some(0), |(_, v)| v.trim().parse().ok())?;
                (mode <= 1).then_some(Self::H264 {
                    packetization_mode: mode,
                })
            }
            _ => None,
        }
    }

    /// Whether this is audio: every packet is a whole frame, and a lost
    /// one is concealed rather than waited for.
    pub fn is_audio(self) -> bool {
        self == Self::Opus
    }

    /// Whether a whole frame of this format is one a decoder can start
    /// from (audio: always).
    pub fn is_keyframe(self, frame: &[u8]) -> bool {
        match self {
            Self::Opus => true,
            Self::Vp8 => vp8::is_keyframe(frame),
            Self::Vp9 => vp9::is_keyframe(frame),
            Self::H264 { .. } => h264::is_keyframe(frame),
        }
    }

    pub(crate) fn packetizer(self, picture_id: u16) -> Packetizer {
        match self {
            Self::Opus => Packetizer::Opus,
            Self::Vp8 => Packetizer::Vp8(Vp8Packetizer::new(picture_id)),
            Self::Vp9 => Packetizer::Vp9(Vp9Packetizer::new(picture_id)),
            Self::H264 {
                packetization_mode: 0,
            } => Packetizer::H264SingleNal,
            Self::H264 { .. } => Packetizer::H264,
        }
    }

    pub(crate) fn depacketizer(self) -> AnyDepacketizer {
        match self {
            Self::Opus => AnyDepacketizer::Whole,
            Self::Vp8 => AnyDepacketizer::Vp8(Vp8Depacketizer),
            Self::Vp9 => AnyDepacketizer::Vp9(Vp9Depacketizer),
            Self::H264 { .. } => AnyDepacketizer::H264(H264Depacketizer),
        }
    }
}

/// One packetizer per format.
#[derive(Debug, Clone)]
pub(crate) enum Packetizer {
    Opus,
    Vp8(Vp8Packetizer),
    Vp9(Vp9Packetizer),
    /// Mode 0 (RFC 6184 §6.2): one NAL unit a packet; the encoder was set
    /// up to keep them under the MTU.
    H264SingleNal,
    H264,
}

impl Packetizer {
    /// Appends the payloads of one frame to `out`.
    pub(crate) fn packetize(&mut self, frame: &[u8], max_payload: usize, out: &mut Vec<Vec<u8>>) {
        match self {
            Self::Opus => out.push(frame.to_vec()),
            Self::Vp8(p) => p.packetize(frame, max_payload, out),
            Self::Vp9(p) => p.packetize(frame, max_payload, out),
            Self::H264SingleNal => out.extend(h264::nal_units(frame).map(<[u8]>::to_vec)),
            Self::H264 => H264Packetizer.packetize(frame, max_payload, out),
        }
    }
}

/// One depacketizer per format.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AnyDepacketizer {
    /// The payload is the frame.
    Whole,
    Vp8(Vp8Depacketizer),
    Vp9(Vp9Depacketizer),
    H264(H264Depacketizer),
}

impl Depacketizer for AnyDepacketizer {
    fn depacketize(&mut self, payload: &[u8], frame: &mut Vec<u8>) -> Result<bool, ParseError> {
        match self {
            Self::Whole => {
                frame.extend_from_slice(payload);
                Ok(true)
            }
            Self::Vp8(d) => d.depacketize(payload, frame),
            Self::Vp9(d) => d.depacketize(payload, frame),
            Self::H264(d) => d.depacketize(payload, frame),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_of_negotiated_codecs() {
        assert_eq!(
            PayloadFormat::from_codec("opus", Some("minptime=10")),
            Some(PayloadFormat::Opus)
        );
        assert_eq!(
            PayloadFormat::from_codec("vp9", None),
            Some(PayloadFormat::Vp9)
        );
        assert_eq!(
            PayloadFormat::from_codec(
                "H264",
                Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")
            ),
            Some(PayloadFormat::H264 {
                packetization_mode: 1
            })
        );
        assert_eq!(
            PayloadFormat::from_codec("H264", Some("profile-level-id=42e01f")),
            Some(PayloadFormat::H264 {
                packetization_mode: 0
            })
        );
        for (name, fmtp) in [
            ("H264", Some("packetization-mode=2")),
            ("AV1", None),
            ("rtx", Some("apt=96")),
        ] {
            assert_eq!(PayloadFormat::from_codec(name, fmtp), None, "{name}");
        }
    }

    #[test]
    fn single_nal_mode_sends_each_nal_unit_alone() {
        let au = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 6,
        ];
        let mut out = Vec::new();
        PayloadFormat::H264 {
            packetization_mode: 0,
        }
        .packetizer(0)
        .packetize(&au, 2, &mut out);
        assert_eq!(
            out,
            vec![vec![0x67, 1, 2], vec![0x68, 3], vec![0x65, 4, 5, 6]]
        );
    }
}
