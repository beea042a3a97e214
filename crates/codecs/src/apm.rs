//! Echo cancellation, noise suppression and gain control through WebRTC's
//! AudioProcessing module (Debian's libwebrtc-audio-processing, the code
//! Chrome ran in 2016), the `apm` feature.
//!
//! Why our own binding: the maintained crate (`webrtc-audio-processing`)
//! generates its bindings with bindgen at build time, which needs libclang
//! on every machine; the module's C++ API needs a C face anyway, and four
//! functions (src/apm/shim.cpp) are all a call needs. This module is the
//! only caller, and the one place with `unsafe` around them.
//!
//! Use: give [`AudioProcessor::process_render`] each 10 ms the loudspeaker
//! plays (the far end) and [`AudioProcessor::process_capture`] each 10 ms
//! the microphone takes; the capture comes back with the far end's echo
//! removed (the filter finds the delay between the two itself), noise
//! suppressed and the level evened out, as configured.
#![allow(unsafe_code)]

use crate::CodecError;

/// What the processor does to the captured audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioProcessingConfig {
    /// Removes the far end's echo (the AEC, delay-agnostic, extended
    /// filter, high suppression).
    pub echo_cancellation: bool,
    /// Suppresses stationary noise (high level).
    pub noise_suppression: bool,
    /// Evens out the level (adaptive digital gain).
    pub gain_control: bool,
}

impl Default for AudioProcessingConfig {
    /// All three, as a browser's `getUserMedia` audio has them by default.
    fn default() -> Self {
        Self {
            echo_cancellation: true,
            noise_suppression: true,
            gain_control: true,
        }
    }
}

/// One call's audio processor: 48 kHz, 1 or 2 channels, 10 ms frames.
pub struct AudioProcessor {
    #[cfg(apm_linked)]
    handle: std::ptr::NonNull<std::ffi::c_void>,
    channels: u8,
    config: AudioProcessingConfig,
}

impl std::fmt::Debug for AudioProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioProcessor")
            .field("channels", &self.channels)
            .field("config", &self.config)
            .finish()
    }
}

/// The sample rate the processor runs at (the rate Opus decodes to).
pub const PROCESSING_RATE: u32 = 48_000;
/// Samples per channel of one frame: 10 ms.
pub const FRAME_SAMPLES: usize = PROCESSING_RATE as usize / 100;

#[cfg(apm_linked)]
mod ffi {
    use std::ffi::{c_int, c_void};
    // src/apm/shim.cpp, compiled and linked by build.rs.
    extern "C" {
        pub(super) fn rt_apm_new(
            sample_rate: c_int,
            channels: c_int,
            echo: c_int,
            noise: c_int,
            gain: c_int,
        ) -> *mut c_void;
        pub(super) fn rt_apm_render(handle: *mut c_void, pcm: *mut i16, samples: usize) -> c_int;
        pub(super) fn rt_apm_capture(
            handle: *mut c_void,
            pcm: *mut i16,
            samples: usize,
            delay_ms: c_int,
        ) -> c_int;
        pub(super) fn rt_apm_free(handle: *mut c_void);
    }
}

// SAFETY: the module's instance is used from one thread at a time
// (`&mut self` on every call) and keeps no thread-local state.
#[cfg(apm_linked)]
unsafe impl Send for AudioProcessor {}

impl AudioProcessor {
    /// Whether this build has the module (the `apm` feature, and the
    /// library found when it was built).
    pub const AVAILABLE: bool = cfg!(apm_linked);

    /// A processor for `channels` (1 or 2) of 48 kHz audio.
    pub fn new(config: AudioProcessingConfig, channels: u8) -> Result<Self, CodecError> {
        if !(1..=2).contains(&channels) {
            return Err(CodecError::UnsupportedChannels { channels });
        }
        #[cfg(apm_linked)]
        {
            // SAFETY: plain values in; the shim returns a new instance or null.
            let raw = unsafe {
                ffi::rt_apm_new(
                    PROCESSING_RATE as i32,
                    i32::from(channels),
                    i32::from(config.echo_cancellation),
                    i32::from(config.noise_suppression),
                    i32::from(config.gain_control),
                )
            };
            let handle = std::ptr::NonNull::new(raw).ok_or_else(|| CodecError::Setup {
                codec: "audio processing",
                detail: "the module could not be created".into(),
            })?;
            Ok(Self {
                handle,
                channels,
                config,
            })
        }
        #[cfg(not(apm_linked))]
        {
            let _ = config;
            Err(CodecError::NotBuilt {
                codec: "audio processing (webrtc-audio-processing)",
                feature: "apm",
            })
        }
    }

    /// Its configuration.
    pub fn config(&self) -> AudioProcessingConfig {
        self.config
    }

    /// Interleaved samples of one 10 ms frame.
    pub fn frame_len(&self) -> usize {
        FRAME_SAMPLES * usize::from(self.channels)
    }

    fn check_len(&self, pcm: &[i16]) -> Result<(), CodecError> {
        if pcm.len() == self.frame_len() {
            Ok(())
        } else {
            Err(CodecError::ProcessingLength {
                expected: self.frame_len(),
                got: pcm.len(),
            })
        }
    }

    /// The far end's next 10 ms as it is played: what echo cancellation
    /// looks for in the capture.
    pub fn process_render(&mut self, pcm: &[i16]) -> Result<(), CodecError> {
        self.check_len(pcm)?;
        #[cfg(apm_linked)]
        {
            // The module may write into the reverse frame; ours stays as given.
            let mut copy = [0i16; 2 * FRAME_SAMPLES];
            let copy = &mut copy[..pcm.len()];
            copy.copy_from_slice(pcm);
            // SAFETY: `handle` is live (dropped only in Drop); `copy` holds
            // FRAME_SAMPLES frames of `channels` samples, as the shim reads.
            let code = unsafe {
                ffi::rt_apm_render(self.handle.as_ptr(), copy.as_mut_ptr(), FRAME_SAMPLES)
            };
            if code != 0 {
                return Err(CodecError::Processing {
                    stream: "render",
                    code,
                });
            }
        }
        Ok(())
    }

    /// The microphone's next 10 ms, processed in place. `delay_ms` is the
    /// time from a sample's playout to its capture as far as the caller
    /// knows (0 when it does not: the filter estimates it).
    pub fn process_capture(&mut self, pcm: &mut [i16], delay_ms: u16) -> Result<(), CodecError> {
        self.check_len(pcm)?;
        #[cfg(apm_linked)]
        {
            // SAFETY: as in process_render; the shim writes back the same
            // number of samples it read.
            let code = unsafe {
                ffi::rt_apm_capture(
                    self.handle.as_ptr(),
                    pcm.as_mut_ptr(),
                    FRAME_SAMPLES,
                    i32::from(delay_ms),
                )
            };
            if code != 0 {
                return Err(CodecError::Processing {
                    stream: "capture",
                    code,
                });
            }
        }
        #[cfg(not(apm_linked))]
        let _ = delay_ms;
        Ok(())
    }
}

#[cfg(apm_linked)]
impl Drop for AudioProcessor {
    fn drop(&mut self) {
        // SAFETY: made by rt_apm_new, freed once.
        unsafe { ffi::rt_apm_free(self.handle.as_ptr()) }
    }
}

#[cfg(all(test, apm_linked))]
mod tests {
    use super::*;
    use crate::source::{tone_power, Tone};

    /// The far end plays a 440 Hz tone; the microphone hears it 30 ms
    /// later at half the level (a loudspeaker's echo). How far the tone is
    /// down in the processed capture after 3 s to converge, in dB.
    fn echo_reduction(config: AudioProcessingConfig) -> f64 {
        let mut apm = AudioProcessor::new(config, 1).unwrap();
        let mut tone = Tone::new(440.0, PROCESSING_RATE, 1);
        let delay = 3; // frames of 10 ms
        let mut played: Vec<Vec<i16>> = Vec::new();
        let (mut before, mut after) = (Vec::new(), Vec::new());
        for i in 0..400usize {
            let mut far = vec![0i16; FRAME_SAMPLES];
            tone.fill(&mut far);
            apm.process_render(&far).unwrap();
            played.push(far);
            let mut mic: Vec<i16> = match i.checked_sub(delay) {
                Some(j) => played[j].iter().map(|s| s / 2).collect(),
                None => vec![0; FRAME_SAMPLES],
            };
            if i >= 300 {
                before.extend_from_slice(&mic);
            }
            apm.process_capture(&mut mic, 30).unwrap();
            if i >= 300 {
                after.extend_from_slice(&mic);
            }
        }
        let (p_before, p_after) = (
            tone_power(&before, 1, PROCESSING_RATE, 440.0),
            tone_power(&after, 1, PROCESSING_RATE, 440.0),
        );
        10.0 * (p_before / p_after.max(1e-12)).log10()
    }

    /// Echo cancellation alone (no noise suppression, which would take a
    /// steady tone for noise) removes the echo; with nothing enabled the
    /// tone goes through.
    #[test]
    fn a_played_tone_captured_back_is_cancelled() {
        let aec_only = AudioProcessingConfig {
            echo_cancellation: true,
            noise_suppression: false,
            gain_control: false,
        };
        let db = echo_reduction(aec_only);
        assert!(db >= 20.0, "echo down {db:.1} dB with the AEC");
        let off = AudioProcessingConfig {
            echo_cancellation: false,
            ..aec_only
        };
        let db = echo_reduction(off);
        assert!(db.abs() < 3.0, "{db:.1} dB without processing");
    }

    #[test]
    fn frames_of_another_length_are_refused() {
        let mut apm = AudioProcessor::new(AudioProcessingConfig::default(), 2).unwrap();
        assert!(matches!(
            apm.process_render(&[0; 480]),
            Err(CodecError::ProcessingLength {
                expected: 960,
                got: 480
            })
        ));
    }
}
