//! Negotiated format parameters (`a=fmtp`) that configure an encoder.

use realtimer_sdp::Fmtp;

fn parameters(params: &str) -> Fmtp {
    Fmtp {
        format: String::new(),
        params: params.to_owned(),
    }
}

/// Opus parameters (RFC 7587 §6.1) as the receiver declared them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusParams {
    /// `stereo=1`: the receiver prefers stereo.
    pub stereo: bool,
    /// `useinbandfec=1`: the receiver can use in-band FEC, so the encoder
    /// should add it.
    pub use_inband_fec: bool,
    /// `minptime`: the shortest packet the receiver wants, in ms.
    pub min_ptime_ms: u32,
    /// `maxaveragebitrate`, in bit/s.
    pub max_average_bitrate: Option<u32>,
    /// `usedtx=1`: the receiver takes discontinuous transmission.
    pub use_dtx: bool,
}

impl Default for OpusParams {
    /// RFC 7587 §6.1 defaults: mono, no FEC, no DTX, 10 ms packets allowed.
    fn default() -> Self {
        Self {
            stereo: false,
            use_inband_fec: false,
            min_ptime_ms: 10,
            max_average_bitrate: None,
            use_dtx: false,
        }
    }
}

impl OpusParams {
    /// Parses `key=value;...` (unknown keys and bad values are ignored, as
    /// RFC 7587 §6.1 leaves them at their defaults).
    pub fn from_fmtp(params: &str) -> Self {
        let fmtp = parameters(params);
        let flag = |key| fmtp.parameter(key) == Some("1");
        let defaults = Self::default();
        Self {
            stereo: flag("stereo"),
            use_inband_fec: flag("useinbandfec"),
            min_ptime_ms: fmtp
                .parameter("minptime")
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.min_ptime_ms),
            max_average_bitrate: fmtp
                .parameter("maxaveragebitrate")
                .and_then(|v| v.parse().ok()),
            use_dtx: flag("usedtx"),
        }
    }

    /// The packet duration to encode: 20 ms (what browsers send) unless
    /// `minptime` asks for more, in the steps Opus has (RFC 6716 §2.1.4).
    pub fn frame_ms(&self) -> u32 {
        [20, 40, 60]
            .into_iter()
            .find(|&ms| ms >= self.min_ptime_ms)
            .unwrap_or(60)
    }
}

/// H.264 profiles by `profile_idc` (H.264 Annex A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum H264Profile {
    /// 66, with constraint_set1 (RFC 6184 §8.1: `42e0xx`, `4240xx`): the
    /// profile WebRTC endpoints all decode.
    ConstrainedBaseline,
    /// 66.
    Baseline,
    /// 77.
    Main,
    /// 100.
    High,
    /// Any other `profile_idc`.
    Other(u8),
}

/// H.264 parameters (RFC 6184 §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Params {
    /// From `profile-level-id`'s first two bytes.
    pub profile: H264Profile,
    /// `level_idc` from `profile-level-id`'s last byte: 31 means 3.1.
    pub level_idc: u8,
    /// `packetization-mode`: 0 sends each NAL unit in a packet of its own,
    /// so NAL units must fit the MTU; 1 allows FU-A and STAP-A.
    pub packetization_mode: u8,
}

impl Default for H264Params {
    /// RFC 6184 §8.1 defaults: `profile-level-id=420010` (Baseline 1.0),
    /// `packetization-mode=0`.
    fn default() -> Self {
        Self {
            profile: H264Profile::Baseline,
            level_idc: 10,
            packetization_mode: 0,
        }
    }
}

impl H264Params {
    /// Parses `key=value;...`; a malformed `profile-level-id` leaves the
    /// default.
    pub fn from_fmtp(params: &str) -> Self {
        let fmtp = parameters(params);
        let mut out = Self::default();
        if let Some(id) = fmtp
            .parameter("profile-level-id")
            .filter(|v| v.len() == 6)
            .and_then(|v| u32::from_str_radix(v, 16).ok())
        {
            let [_, profile_idc, iop, level_idc] = id.to_be_bytes();
            out.profile = match profile_idc {
                66 if iop & 0x40 != 0 => H264Profile::ConstrainedBaseline,
                66 => H264Profile::Baseline,
                77 => H264Profile::Main,
                100 => H264Profile::High,
                other => H264Profile::Other(other),
            };
            out.level_idc = level_idc;
        }
        if let Some(mode) = fmtp
            .parameter("packetization-mode")
            .and_then(|v| v.parse().ok())
        {
            out.packetization_mode = mode;
        }
        out
    }

    /// The `profile_idc` byte.
    pub fn profile_idc(&self) -> u8 {
        match self.profile {
            H264Profile::ConstrainedBaseline | H264Profile::Baseline => 66,
            H264Profile::Main => 77,
            H264Profile::High => 100,
            H264Profile::Other(idc) => idc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_parameters_of_a_browser_offer() {
        let p = OpusParams::from_fmtp("minptime=10;useinbandfec=1");
        assert!(p.use_inband_fec && !p.stereo && !p.use_dtx);
        assert_eq!(p.frame_ms(), 20);
        let p = OpusParams::from_fmtp("stereo=1; minptime=30 ;maxaveragebitrate=40000");
        assert!(p.stereo && !p.use_inband_fec);
        assert_eq!((p.frame_ms(), p.max_average_bitrate), (40, Some(40_000)));
    }

    #[test]
    fn h264_parameters_of_a_browser_offer() {
        let p = H264Params::from_fmtp(
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        );
        assert_eq!(
            p,
            H264Params {
                profile: H264Profile::ConstrainedBaseline,
                level_idc: 31,
                packetization_mode: 1
            }
        );
        let p = H264Params::from_fmtp("profile-level-id=640c1f");
        assert_eq!((p.profile, p.packetization_mode), (H264Profile::High, 0));
        assert_eq!(
            H264Params::from_fmtp("profile-level-id=zz"),
            H264Params::default()
        );
    }
}
