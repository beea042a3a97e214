// A C face for WebRTC's AudioProcessing module as Debian packages it
// (libwebrtc-audio-processing 0.3): one instance per call, 10 ms frames of
// interleaved 16-bit PCM, the far end (what is played) through the reverse
// stream and the microphone through the forward one. src/apm.rs is the only
// caller; every function takes what rt_apm_new returned.
#include <cstdint>
#include <cstring>
#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

namespace {
struct Apm {
  webrtc::AudioProcessing* apm;
  webrtc::AudioFrame frame;
  int sample_rate;
  int channels;
};

// Copies `pcm` in, runs `step`, copies the result back; the frame's fields
// say what the samples are.
template <typename Step>
int run(Apm* a, int16_t* pcm, size_t samples_per_channel, Step step) {
  const size_t n = samples_per_channel * static_cast<size_t>(a->channels);
  if (n > webrtc::AudioFrame::kMaxDataSizeSamples) return -100;
  a->frame.sample_rate_hz_ = a->sample_rate;
  a->frame.num_channels_ = a->channels;
  a->frame.samples_per_channel_ = samples_per_channel;
  std::memcpy(a->frame.data_, pcm, n * sizeof(int16_t));
  const int err = step(&a->frame);
  std::memcpy(pcm, a->frame.data_, n * sizeof(int16_t));
  return err;
}
}  // namespace

extern "C" {

// A new instance; nullptr when the module cannot be made. Echo
// cancellation is delay-agnostic (it estimates the render-to-capture delay
// itself) with the extended filter, as Chrome runs it on desktops.
void* rt_apm_new(int sample_rate, int channels, int echo, int noise, int gain) {
  webrtc::Config config;
  config.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(true));
  config.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(true));
  config.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
  webrtc::AudioProcessing* apm = webrtc::AudioProcessing::Create(config);
  if (apm == nullptr) return nullptr;
  // The int16 interface wants the forward and reverse rates equal and set
  // before the first frame of either.
  const webrtc::AudioProcessing::ChannelLayout layout =
      channels == 2 ? webrtc::AudioProcessing::kStereo : webrtc::AudioProcessing::kMono;
  int err = apm->Initialize(sample_rate, sample_rate, sample_rate, layout, layout, layout);
  err |= apm->high_pass_filter()->Enable(true);
  err |= apm->echo_cancellation()->enable_drift_compensation(false);
  err |= apm->echo_cancellation()->set_suppression_level(webrtc::EchoCancellation::kHighSuppression);
  err |= apm->echo_cancellation()->Enable(echo != 0);
  err |= apm->noise_suppression()->set_level(webrtc::NoiseSuppression::kHigh);
  err |= apm->noise_suppression()->Enable(noise != 0);
  err |= apm->gain_control()->set_mode(webrtc::GainControl::kAdaptiveDigital);
  err |= apm->gain_control()->Enable(gain != 0);
  if (err != 0) {
    delete apm;
    return nullptr;
  }
  Apm* a = new Apm;
  a->apm = apm;
  a->sample_rate = sample_rate;
  a->channels = channels;
  return a;
}

// The far end's next 10 ms, as played.
int rt_apm_render(void* handle, int16_t* pcm, size_t samples_per_channel) {
  Apm* a = static_cast<Apm*>(handle);
  return run(a, pcm, samples_per_channel,
             [a](webrtc::AudioFrame* f) { return a->apm->ProcessReverseStream(f); });
}

// The microphone's next 10 ms, processed in place; `delay_ms` is the
// caller's guess of render-to-capture delay (a hint: the filter is
// delay-agnostic).
int rt_apm_capture(void* handle, int16_t* pcm, size_t samples_per_channel, int delay_ms) {
  Apm* a = static_cast<Apm*>(handle);
  return run(a, pcm, samples_per_channel, [a, delay_ms](webrtc::AudioFrame* f) {
    a->apm->set_stream_delay_ms(delay_ms);
    return a->apm->ProcessStream(f);
  });
}

void rt_apm_free(void* handle) {
  Apm* a = static_cast<Apm*>(handle);
  delete a->apm;
  delete a;
}
}
