//! Opus (RFC 6716) through libopus, by way of the `opus` crate.
//!
//! Audio is interleaved 16-bit PCM at 48 kHz, the rate WebRTC's Opus always
//! signals (RFC 7587 §4.1). The decoder conceals a lost packet (libopus's
//! packet loss concealment), or recovers it from the in-band FEC (LBRR) of
//! the packet after it when the sender added it.

use ::opus as libopus;

use crate::fmtp::OpusParams;
use crate::CodecError;

/// The sample rate of everything here.
pub const SAMPLE_RATE: u32 = 48_000;
/// RFC 6716 §3.2.1: the largest packet libopus writes for one frame is
/// 1,275 bytes a channel stream; this holds up to 60 ms.
const MAX_PACKET: usize = 4_000;
/// 120 ms at 48 kHz: the most one packet decodes to.
const MAX_FRAME_SAMPLES: usize = 5_760;

fn encode_error(e: libopus::Error) -> CodecError {
    CodecError::Encode {
        codec: "Opus",
        detail: e.to_string(),
    }
}

fn setup_error(e: libopus::Error) -> CodecError {
    CodecError::Setup {
        codec: "Opus",
        detail: e.to_string(),
    }
}

fn decode_error(e: libopus::Error) -> CodecError {
    CodecError::Decode {
        codec: "Opus",
        detail: e.to_string(),
    }
}

fn channels(count: u8) -> Result<libopus::Channels, CodecError> {
    match count {
        1 => Ok(libopus::Channels::Mono),
        2 => Ok(libopus::Channels::Stereo),
        channels => Err(CodecError::UnsupportedChannels { channels }),
    }
}

/// How to set up an Opus encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusEncoderConfig {
    /// 1 or 2.
    pub channels: u8,
    /// Target bitrate in bit/s.
    pub bitrate_bps: u32,
    /// Packet duration: 10, 20, 40 or 60 ms.
    pub frame_ms: u32,
    /// Add in-band FEC (LBRR) so the receiver can rebuild a lost packet
    /// from the next one.
    pub inband_fec: bool,
    /// Expected packet loss; libopus adds FEC only when this is above 0.
    pub expected_loss_percent: u8,
    /// Discontinuous transmission in silence.
    pub dtx: bool,
}

impl OpusEncoderConfig {
    /// The encoder the receiver's parameters ask for: stereo if `stereo=1`,
    /// FEC if `useinbandfec=1` (planned for 10% loss until loss is
    /// measured), packets of `minptime` or 20 ms, at most
    /// `maxaveragebitrate`.
    pub fn from_params(params: &OpusParams) -> Self {
        let channels = if params.stereo { 2 } else { 1 };
        let default_bitrate = if params.stereo { 64_000 } else { 32_000 };
        Self {
            channels,
            bitrate_bps: params
                .max_average_bitrate
                .map_or(default_bitrate, |max| max.min(default_bitrate)),
            frame_ms: params.frame_ms(),
            inband_fec: params.use_inband_fec,
            expected_loss_percent: if params.use_inband_fec { 10 } else { 0 },
            dtx: params.use_dtx,
        }
    }
}

/// An Opus encoder.
pub struct OpusEncoder {
    inner: libopus::Encoder,
    channels: usize,
    frame_samples: usize,
    packet: Box<[u8; MAX_PACKET]>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OpusEncoder({} ch, {} samples)",
            self.channels, self.frame_samples
        )
    }
}

impl OpusEncoder {
    /// An encoder for speech and music in calls (libopus's VoIP mode).
    pub fn new(config: &OpusEncoderConfig) -> Result<Self, CodecError> {
        if ![10, 20, 40, 60].contains(&config.frame_ms) {
            return Err(CodecError::UnsupportedPacketDuration {
                ms: config.frame_ms,
            });
        }
        let mut inner = libopus::Encoder::new(
            SAMPLE_RATE,
            channels(config.channels)?,
            libopus::Application::Voip,
        )
        .map_err(setup_error)?;
        inner
            .set_inband_fec(config.inband_fec)
            .and_then(|()| {
                inner.set_packet_loss_perc(i32::from(config.expected_loss_percent.min(100)))
            })
            .and_then(|()| inner.set_dtx(config.dtx))
            .map_err(setup_error)?;
        let mut encoder = Self {
            inner,
            channels: usize::from(config.channels),
            frame_samples: (SAMPLE_RATE * config.frame_ms / 1_000) as usize,
            packet: Box::new([0; MAX_PACKET]),
        };
        encoder.set_bitrate(config.bitrate_bps)?;
        Ok(encoder)
    }

    /// Samples per channel in each packet: what [`Self::encode`] takes.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Encodes one packet's worth of interleaved PCM
    /// ([`Self::frame_samples`] per channel).
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, CodecError> {
        if pcm.len() != self.frame_samples * self.channels {
            return Err(CodecError::PcmLength {
                expected: self.frame_samples * self.channels,
                got: pcm.len(),
            });
        }
        let len = self
            .inner
            .encode(pcm, &mut self.packet[..])
            .map_err(encode_error)?;
        Ok(self.packet[..len].to_vec())
    }

    /// Sets the target bitrate (6 to 510 kbit/s, RFC 6716 §2.1.1).
    pub fn set_bitrate(&mut self, bps: u32) -> Result<(), CodecError> {
        let bps = bps.clamp(6_000, 510_000) as i32;
        self.inner
            .set_bitrate(libopus::Bitrate::Bits(bps))
            .map_err(setup_error)
    }

    /// Sets the loss the encoder plans FEC for, from the receiver's reports.
    pub fn set_expected_loss(&mut self, percent: u8) -> Result<(), CodecError> {
        self.inner
            .set_packet_loss_perc(i32::from(percent.min(100)))
            .map_err(setup_error)
    }
}

/// An Opus decoder.
pub struct OpusDecoder {
    inner: libopus::Decoder,
    channels: usize,
    pcm: Box<[i16]>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpusDecoder({} ch)", self.channels)
    }
}

impl OpusDecoder {
    /// A decoder giving `channels` (1 or 2) at 48 kHz, whatever the sender
    /// encoded (libopus mixes or duplicates).
    pub fn new(channel_count: u8) -> Result<Self, CodecError> {
        let inner =
            libopus::Decoder::new(SAMPLE_RATE, channels(channel_count)?).map_err(setup_error)?;
        let channels = usize::from(channel_count);
        Ok(Self {
            inner,
            channels,
            pcm: vec![0; MAX_FRAME_SAMPLES * channels].into_boxed_slice(),
        })
    }

    /// Decodes `packet`, appending its PCM to `out`; the samples per channel.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        if packet.is_empty() {
            return Err(CodecError::EmptyPacket);
        }
        self.run(packet, MAX_FRAME_SAMPLES, false, out)
    }

    /// Conceals a lost packet of `samples` per channel (libopus's PLC),
    /// appending the PCM to `out`.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<usize, CodecError> {
        self.run(&[], samples, false, out)
    }

    /// Rebuilds a lost packet of `samples` per channel from the in-band FEC
    /// of `next_packet`, the packet after it (RFC 6716 §2.1.7), appending
    /// the PCM to `out`; without FEC in it, libopus conceals instead. Then
    /// decode `next_packet` itself as usual.
    pub fn decode_fec(
        &mut self,
        next_packet: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        self.run(next_packet, samples, true, out)
    }

    fn run(
        &mut self,
        packet: &[u8],
        samples: usize,
        fec: bool,
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        let len = samples.min(MAX_FRAME_SAMPLES) * self.channels;
        let got = self
            .inner
            .decode(packet, &mut self.pcm[..len], fec)
            .map_err(decode_error)?;
        out.extend_from_slice(&self.pcm[..got * self.channels]);
        Ok(got)
    }
}
