//! The client-to-mixer audio level header extension (RFC 6464): the
//! sender's measure of each packet's loudness, which an SFU reads to find
//! who speaks without decoding.

/// The `a=extmap` URI of the audio level extension (RFC 6464 §4).
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// One packet's audio level (RFC 6464 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioLevel {
    /// The level in -dBov, 0 (the loudest a sender can encode) to 127
    /// (silence, or quieter than -127 dBov).
    pub level: u8,
    /// The V bit: the sender's voice activity detection says the packet
    /// holds speech (meaningful unless `vad=off` was negotiated, §4).
    pub voice: bool,
}

impl AudioLevel {
    /// Reads the extension element's data: one byte, the V bit then
    /// the 7-bit level (§3). Senders may pad the element in the two-byte
    /// form; the first byte is the level either way. `None` for an empty
    /// element.
    pub fn parse(data: &[u8]) -> Option<AudioLevel> {
        let &byte = data.first()?;
        Some(AudioLevel {
            level: byte & 0x7f,
            voice: byte & 0x80 != 0,
        })
    }

    /// The element's one byte (§3).
    pub fn to_byte(self) -> u8 {
        u8::from(self.voice) << 7 | self.level.min(127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_v_bit_and_the_level() {
        assert_eq!(
            AudioLevel::parse(&[0xff]),
            Some(AudioLevel {
                level: 127,
                voice: true
            })
        );
        let speech = AudioLevel {
            level: 30,
            voice: true,
        };
        assert_eq!(AudioLevel::parse(&[speech.to_byte(), 0, 0]), Some(speech));
        assert_eq!(AudioLevel::parse(&[0x1e]).map(|l| l.voice), Some(false));
        assert_eq!(AudioLevel::parse(&[]), None);
    }
}
