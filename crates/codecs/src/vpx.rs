//! VP8 and VP9 through libvpx: a thin safe wrapper over the raw bindings of
//! `env-libvpx-sys`.
//!
//! The one module of the workspace that calls C directly besides the
//! system-call crates. Each `unsafe` block calls libvpx with a context this
//! module created and owns (boxed, so its address never moves), and with
//! buffers whose lengths are checked before the call; each block says why it
//! holds. The encoder's settings follow libwebrtc's real-time ones:
//! one pass, no lag, CBR, error resilient, keyframes only on request.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_long, c_uint, c_ulong, CStr};
use std::mem::MaybeUninit;
use std::ptr;

use vpx_sys::{
    vp8e_enc_control_id, vpx_codec_ctx_t, vpx_codec_cx_pkt_kind, vpx_codec_dec_cfg_t,
    vpx_codec_dec_init_ver, vpx_codec_decode, vpx_codec_destroy, vpx_codec_enc_cfg_t,
    vpx_codec_enc_config_default, vpx_codec_enc_config_set, vpx_codec_enc_init_ver,
    vpx_codec_encode, vpx_codec_err_t, vpx_codec_err_to_string, vpx_codec_error,
    vpx_codec_get_cx_data, vpx_codec_get_frame, vpx_codec_iface_t, vpx_codec_iter_t,
    vpx_codec_vp8_cx, vpx_codec_vp8_dx, vpx_codec_vp9_cx, vpx_codec_vp9_dx, vpx_enc_pass,
    vpx_image_t, vpx_img_fmt, vpx_img_wrap, vpx_kf_mode, vpx_rational, vpx_rc_mode,
    VPX_DECODER_ABI_VERSION, VPX_DL_REALTIME, VPX_EFLAG_FORCE_KF, VPX_ENCODER_ABI_VERSION,
    VPX_ERROR_RESILIENT_DEFAULT, VPX_FRAME_IS_KEY,
};

use crate::video::{
    check_frame_size, EncodedFrame, VideoCodec, VideoDecoder, VideoEncoder, VideoEncoderConfig,
};
use crate::{CodecError, I420Frame};

/// The RTP video clock: timestamps given to the encoder are in its ticks.
const TIMEBASE_HZ: c_int = 90_000;

fn name(codec: VideoCodec) -> &'static str {
    match codec {
        VideoCodec::Vp9 => "VP9",
        _ => "VP8",
    }
}

/// libvpx's words for a failure: the context's detail if it has one, else
/// the error code's text.
fn describe(ctx: *mut vpx_codec_ctx_t, err: vpx_codec_err_t) -> String {
    // SAFETY: both functions return pointers to static or context-owned
    // NUL-terminated strings (or null, checked), read before the context
    // is used again.
    unsafe {
        let detail = if ctx.is_null() {
            ptr::null()
        } else {
            vpx_codec_error(ctx)
        };
        let text = if detail.is_null() {
            vpx_codec_err_to_string(err)
        } else {
            detail
        };
        if text.is_null() {
            format!("{err:?}")
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    }
}

fn ok(err: vpx_codec_err_t) -> bool {
    err == vpx_codec_err_t::VPX_CODEC_OK
}

/// Encoder threads, as libwebrtc picks them: a second thread from VGA up,
/// and only with more than two cores. libvpx's VP8 threads spin while they
/// wait for each other, so on a busy two-core machine a second thread
/// costs ten times the CPU (measured with ffmpeg's libvpx at 720p: 83 ms of
/// CPU a frame with two threads, 8 ms with one).
fn threads(width: u32, height: u32) -> c_uint {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores > 2 && width * height >= 640 * 480 {
        2
    } else {
        1
    }
}

/// An owned, initialized libvpx context, destroyed on drop.
struct Context(Box<vpx_codec_ctx_t>);

impl Context {
    /// A zeroed context for `*_init_ver` to fill.
    fn zeroed() -> Box<vpx_codec_ctx_t> {
        // SAFETY: vpx_codec_ctx_t is a plain C struct of pointers and
        // integers, for which all-zero is the documented "not initialized"
        // state.
        Box::new(unsafe { MaybeUninit::<vpx_codec_ctx_t>::zeroed().assume_init() })
    }

    fn as_ptr(&mut self) -> *mut vpx_codec_ctx_t {
        &mut *self.0
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was initialized (Context is only built after a
        // successful *_init_ver) and is destroyed once.
        unsafe {
            vpx_codec_destroy(&mut *self.0);
        }
    }
}

/// A VP8 or VP9 encoder.
pub struct VpxEncoder {
    codec: VideoCodec,
    ctx: Context,
    cfg: vpx_codec_enc_cfg_t,
    frame_duration: c_ulong,
    force_keyframe: bool,
}

// SAFETY: a libvpx context has no thread affinity; `&mut self` on every
// call keeps it to one thread at a time.
unsafe impl Send for VpxEncoder {}

impl std::fmt::Debug for VpxEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VpxEncoder({}, {}x{})",
            name(self.codec),
            self.cfg.g_w,
            self.cfg.g_h
        )
    }
}

impl VpxEncoder {
    /// An encoder for VP8 or VP9 with `config`'s size, bitrate and frame
    /// rate.
    pub fn new(codec: VideoCodec, config: &VideoEncoderConfig) -> Result<Self, CodecError> {
        let codec_name = name(codec);
        let setup = |detail: String| CodecError::Setup {
            codec: codec_name,
            detail,
        };
        if config.width == 0
            || config.height == 0
            || config.width > 16_384
            || config.height > 16_384
        {
            return Err(CodecError::UnsupportedSize {
                codec: codec_name,
                width: config.width,
                height: config.height,
            });
        }
        // SAFETY: the interface getters return pointers to static tables.
        let iface: *mut vpx_codec_iface_t = unsafe {
            match codec {
                VideoCodec::Vp9 => vpx_codec_vp9_cx(),
                _ => vpx_codec_vp8_cx(),
            }
        };
        let mut cfg = MaybeUninit::<vpx_codec_enc_cfg_t>::zeroed();
        // SAFETY: cfg points to writable memory of the right type, which the
        // call fills; usage 0 is the only one.
        let err = unsafe { vpx_codec_enc_config_default(iface, cfg.as_mut_ptr(), 0) };
        if !ok(err) {
            return Err(setup(describe(ptr::null_mut(), err)));
        }
        // SAFETY: filled by the successful call above.
        let mut cfg = unsafe { cfg.assume_init() };
        cfg.g_w = config.width;
        cfg.g_h = config.height;
        cfg.g_timebase = vpx_rational {
            num: 1,
            den: TIMEBASE_HZ,
        };
        cfg.g_threads = threads(config.width, config.height);
        cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
        cfg.g_pass = vpx_enc_pass::VPX_RC_ONE_PASS;
        cfg.g_lag_in_frames = 0;
        cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = (config.bitrate_bps / 1_000).max(1);
        cfg.rc_dropframe_thresh = 0;
        cfg.rc_min_quantizer = 2;
        cfg.rc_max_quantizer = if codec == VideoCodec::Vp9 { 56 } else { 52 };
        cfg.rc_undershoot_pct = 50;
        cfg.rc_overshoot_pct = 50;
        cfg.rc_buf_initial_sz = 500;
        cfg.rc_buf_optimal_sz = 600;
        cfg.rc_buf_sz = 1_000;
        // Keyframes when asked for (PLI/FIR), and a safety net every 100 s.
        cfg.kf_mode = vpx_kf_mode::VPX_KF_AUTO;
        cfg.kf_max_dist = 3_000;

        let mut raw = Context::zeroed();
        // SAFETY: raw is a zeroed context, cfg a valid configuration, and the
        // ABI version the one the bindings were generated for.
        let err = unsafe {
            vpx_codec_enc_init_ver(&mut *raw, iface, &cfg, 0, VPX_ENCODER_ABI_VERSION as c_int)
        };
        if !ok(err) {
            return Err(setup(describe(&mut *raw, err)));
        }
        let mut ctx = Context(raw);
        // libwebrtc's real-time speeds: VP8 -6 (speed 6, real time), VP9 7.
        let controls: &[(vp8e_enc_control_id, c_int)] = match codec {
            VideoCodec::Vp9 => &[
                (vp8e_enc_control_id::VP8E_SET_CPUUSED, 7),
                // Cyclic refresh: spreads intra refresh over frames.
                (vp8e_enc_control_id::VP9E_SET_AQ_MODE, 3),
            ],
            _ => &[
                (vp8e_enc_control_id::VP8E_SET_CPUUSED, -6),
                (vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD, 1),
                (vp8e_enc_control_id::VP8E_SET_MAX_INTRA_BITRATE_PCT, 300),
            ],
        };
        for &(id, value) in controls {
            // SAFETY: the context is initialized; each of these controls
            // takes one int argument.
            let err = unsafe { vpx_sys::vpx_codec_control_(ctx.as_ptr(), id as c_int, value) };
            if !ok(err) {
                return Err(setup(format!(
                    "control {id:?}: {}",
                    describe(ctx.as_ptr(), err)
                )));
            }
        }
        Ok(Self {
            codec,
            ctx,
            cfg,
            frame_duration: (TIMEBASE_HZ as u32 / config.framerate.max(1)) as c_ulong,
            force_keyframe: false,
        })
    }
}

impl VideoEncoder for VpxEncoder {
    fn codec(&self) -> VideoCodec {
        self.codec
    }

    fn encode(
        &mut self,
        frame: &I420Frame,
        timestamp_90k: u64,
    ) -> Result<Option<EncodedFrame>, CodecError> {
        let codec = name(self.codec);
        check_frame_size(codec, frame, (self.cfg.g_w, self.cfg.g_h))?;
        let mut image = MaybeUninit::<vpx_image_t>::zeroed();
        // SAFETY: vpx_img_wrap only fills the image descriptor (it reads no
        // pixel); the buffer it points at is the frame's, which outlives the
        // encode call below and is only read by it.
        let image = unsafe {
            let wrapped = vpx_img_wrap(
                image.as_mut_ptr(),
                vpx_img_fmt::VPX_IMG_FMT_I420,
                frame.width(),
                frame.height(),
                1,
                frame.as_bytes().as_ptr().cast_mut(),
            );
            if wrapped.is_null() {
                return Err(CodecError::Encode {
                    codec,
                    detail: "libvpx refused the frame's layout".into(),
                });
            }
            image.assume_init()
        };
        let mut image = image;
        // Our chroma rows are half the width rounded up; libvpx's own
        // layout rounds down for odd widths, so give the planes exactly.
        let (y, u, v) = (frame.y(), frame.u(), frame.v());
        image.planes[0] = y.as_ptr().cast_mut();
        image.planes[1] = u.as_ptr().cast_mut();
        image.planes[2] = v.as_ptr().cast_mut();
        image.stride[0] = frame.width() as c_int;
        image.stride[1] = frame.chroma_width() as c_int;
        image.stride[2] = frame.chroma_width() as c_int;
        let flags = if std::mem::take(&mut self.force_keyframe) {
            VPX_EFLAG_FORCE_KF as c_long
        } else {
            0
        };
        // SAFETY: the context is initialized; the image describes planes of
        // the configured size inside the frame's buffer (checked above).
        let err = unsafe {
            vpx_codec_encode(
                self.ctx.as_ptr(),
                &image,
                timestamp_90k as i64,
                self.frame_duration,
                flags,
                VPX_DL_REALTIME as c_ulong,
            )
        };
        if !ok(err) {
            return Err(CodecError::Encode {
                codec,
                detail: describe(self.ctx.as_ptr(), err),
            });
        }
        let mut out = EncodedFrame {
            data: Vec::new(),
            keyframe: false,
        };
        let mut iter: vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: the context is initialized and iter starts null, as
            // the API asks; a packet stays valid until the next call.
            let packet = unsafe { vpx_codec_get_cx_data(self.ctx.as_ptr(), &mut iter) };
            // SAFETY: a non-null packet points at a packet libvpx owns.
            let Some(packet) = (unsafe { packet.as_ref() }) else {
                break;
            };
            if packet.kind != vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                continue;
            }
            // SAFETY: a frame packet's union holds `frame`, whose buffer
            // holds `sz` bytes.
            let (bytes, flags) = unsafe {
                let f = packet.data.frame;
                (
                    std::slice::from_raw_parts(f.buf.cast::<u8>(), f.sz as usize),
                    f.flags,
                )
            };
            out.data.extend_from_slice(bytes);
            out.keyframe |= flags & VPX_FRAME_IS_KEY != 0;
        }
        Ok((!out.data.is_empty()).then_some(out))
    }

    fn set_bitrate(&mut self, bps: u32) -> Result<(), CodecError> {
        self.cfg.rc_target_bitrate = (bps / 1_000).max(1);
        // SAFETY: the context is initialized and cfg is the configuration it
        // was created with, one field changed.
        let err = unsafe { vpx_codec_enc_config_set(self.ctx.as_ptr(), &self.cfg) };
        if ok(err) {
            Ok(())
        } else {
            Err(CodecError::Setup {
                codec: name(self.codec),
                detail: describe(self.ctx.as_ptr(), err),
            })
        }
    }

    fn request_keyframe(&mut self) {
        self.force_keyframe = true;
    }
}

/// A VP8 or VP9 decoder.
pub struct VpxDecoder {
    codec: VideoCodec,
    ctx: Context,
}

// SAFETY: as for the encoder.
unsafe impl Send for VpxDecoder {}

impl std::fmt::Debug for VpxDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VpxDecoder({})", name(self.codec))
    }
}

impl VpxDecoder {
    /// A decoder for VP8 or VP9.
    pub fn new(codec: VideoCodec) -> Result<Self, CodecError> {
        // SAFETY: the interface getters return pointers to static tables.
        let iface = unsafe {
            match codec {
                VideoCodec::Vp9 => vpx_codec_vp9_dx(),
                _ => vpx_codec_vp8_dx(),
            }
        };
        let cfg = vpx_codec_dec_cfg_t {
            threads: 1,
            w: 0,
            h: 0,
        };
        let mut raw = Context::zeroed();
        // SAFETY: raw is a zeroed context, cfg valid, the ABI version the
        // bindings'.
        let err = unsafe {
            vpx_codec_dec_init_ver(&mut *raw, iface, &cfg, 0, VPX_DECODER_ABI_VERSION as c_int)
        };
        if !ok(err) {
            return Err(CodecError::Setup {
                codec: name(codec),
                detail: describe(&mut *raw, err),
            });
        }
        Ok(Self {
            codec,
            ctx: Context(raw),
        })
    }
}

impl VideoDecoder for VpxDecoder {
    fn codec(&self) -> VideoCodec {
        self.codec
    }

    fn decode(&mut self, frame: &[u8]) -> Result<Option<I420Frame>, CodecError> {
        let codec = name(self.codec);
        let len = c_uint::try_from(frame.len()).map_err(|_| CodecError::FrameTooLarge {
            codec,
            len: frame.len(),
        })?;
        // SAFETY: the context is initialized; data and len describe the
        // caller's slice, which libvpx only reads during the call.
        let err =
            unsafe { vpx_codec_decode(self.ctx.as_ptr(), frame.as_ptr(), len, ptr::null_mut(), 0) };
        if !ok(err) {
            return Err(CodecError::Decode {
                codec,
                detail: describe(self.ctx.as_ptr(), err),
            });
        }
        let mut iter: vpx_codec_iter_t = ptr::null();
        let mut picture = None;
        loop {
            // SAFETY: the context is initialized and iter starts null.
            let image = unsafe { vpx_codec_get_frame(self.ctx.as_ptr(), &mut iter) };
            // SAFETY: a non-null image is libvpx's, valid until the next
            // decode call.
            let Some(image) = (unsafe { image.as_ref() }) else {
                break;
            };
            picture = Some(copy_image(codec, image)?);
        }
        Ok(picture)
    }
}

/// Copies a decoded I420 image out of libvpx's buffers.
fn copy_image(codec: &'static str, image: &vpx_image_t) -> Result<I420Frame, CodecError> {
    if image.fmt != vpx_img_fmt::VPX_IMG_FMT_I420 {
        return Err(CodecError::UnsupportedImageFormat {
            codec,
            format: image.fmt as u32,
        });
    }
    let (w, h) = (image.d_w, image.d_h);
    let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
    let stride = |i: usize| usize::try_from(image.stride[i]).unwrap_or(0);
    let plane = |i: usize, pw: usize, ph: usize| -> &[u8] {
        if image.planes[i].is_null() || ph == 0 || stride(i) < pw {
            return &[];
        }
        // SAFETY: libvpx's plane i holds ph rows of stride(i) bytes, the
        // last at least pw long; the image outlives this copy.
        unsafe { std::slice::from_raw_parts(image.planes[i], stride(i) * (ph - 1) + pw) }
    };
    I420Frame::from_planes(
        w,
        h,
        plane(0, w as usize, h as usize),
        stride(0),
        plane(1, cw, ch),
        stride(1),
        plane(2, cw, ch),
        stride(2),
    )
}
