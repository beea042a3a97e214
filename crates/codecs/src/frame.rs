//! Raw video frames.

use crate::CodecError;

/// A picture in I420 (YUV 4:2:0, 8 bits, BT.601 limited range as cameras and
/// WebRTC use): a full-size luma plane, then quarter-size U and V planes,
/// packed (each row as wide as the plane) in one buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "I420Frame({}x{})", self.width, self.height)
    }
}

impl I420Frame {
    /// A black frame of `width` x `height` (both at least 1).
    pub fn new(width: u32, height: u32) -> Self {
        let (width, height) = (width.max(1), height.max(1));
        let luma = width as usize * height as usize;
        let chroma = chroma_len(width, height);
        let mut data = vec![16u8; luma + 2 * chroma];
        data[luma..].fill(128);
        Self {
            width,
            height,
            data,
        }
    }

    /// Copies planes laid out with the given strides (bytes from one row to
    /// the next), as decoders give them.
    #[allow(clippy::too_many_arguments)]
    pub fn from_planes(
        width: u32,
        height: u32,
        y: &[u8],
        y_stride: usize,
        u: &[u8],
        u_stride: usize,
        v: &[u8],
        v_stride: usize,
    ) -> Result<Self, CodecError> {
        let mut frame = Self::new(width, height);
        let (cw, ch) = (
            frame.chroma_width() as usize,
            frame.chroma_height() as usize,
        );
        let (w, h) = (width as usize, height as usize);
        let planes = [
            (y, y_stride, w, h),
            (u, u_stride, cw, ch),
            (v, v_stride, cw, ch),
        ];
        let mut at = 0;
        for (plane, stride, pw, ph) in planes {
            if stride < pw || plane.len() < stride * (ph - 1) + pw {
                return Err(CodecError::PlaneTooShort {
                    width: pw,
                    height: ph,
                    stride,
                    len: plane.len(),
                });
            }
            for row in 0..ph {
                frame.data[at..at + pw].copy_from_slice(&plane[row * stride..row * stride + pw]);
                at += pw;
            }
        }
        Ok(frame)
    }

    /// Converts an RGBA picture (8 bits a channel, `width * 4` bytes a
    /// row, alpha ignored) to I420 with the BT.601 limited-range matrix
    /// cameras and WebRTC use; each chroma sample is the mean of its 2x2
    /// block.
    pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<Self, CodecError> {
        let (w, h) = (width as usize, height as usize);
        if width == 0 || height == 0 || rgba.len() < w * h * 4 {
            return Err(CodecError::PlaneTooShort {
                width: w * 4,
                height: h,
                stride: w * 4,
                len: rgba.len(),
            });
        }
        let mut frame = Self::new(width, height);
        let cw = frame.chroma_width() as usize;
        let (y, u, v) = frame.planes_mut();
        let rgb = |x: usize, row: usize| {
            let at = (row * w + x) * 4;
            (
                i32::from(rgba[at]),
                i32::from(rgba[at + 1]),
                i32::from(rgba[at + 2]),
            )
        };
        for row in 0..h {
            for x in 0..w {
                let (r, g, b) = rgb(x, row);
                y[row * w + x] = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
            }
        }
        for row in 0..h.div_ceil(2) {
            for x in 0..cw {
                let (mut r, mut g, mut b, mut n) = (0, 0, 0, 0);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (px, py) = (2 * x + dx, 2 * row + dy);
                    if px < w && py < h {
                        let (pr, pg, pb) = rgb(px, py);
                        (r, g, b, n) = (r + pr, g + pg, b + pb, n + 1);
                    }
                }
                let (r, g, b) = (r / n, g / n, b / n);
                u[row * cw + x] = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
                v[row * cw + x] = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
            }
        }
        Ok(frame)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width of the U and V planes: half the width, rounded up.
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    /// Height of the U and V planes: half the height, rounded up.
    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    fn luma_len(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// The luma plane, `width` bytes a row.
    pub fn y(&self) -> &[u8] {
        &self.data[..self.luma_len()]
    }

    /// The U plane, `chroma_width` bytes a row.
    pub fn u(&self) -> &[u8] {
        let at = self.luma_len();
        &self.data[at..at + chroma_len(self.width, self.height)]
    }

    /// The V plane, `chroma_width` bytes a row.
    pub fn v(&self) -> &[u8] {
        &self.data[self.luma_len() + chroma_len(self.width, self.height)..]
    }

    /// The three planes, writable.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let luma = self.luma_len();
        let chroma = chroma_len(self.width, self.height);
        let (y, uv) = self.data.split_at_mut(luma);
        let (u, v) = uv.split_at_mut(chroma);
        (y, u, v)
    }

    /// All three planes, one after the other.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }
}

fn chroma_len(width: u32, height: u32) -> usize {
    width.div_ceil(2) as usize * height.div_ceil(2) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_of_odd_sizes_round_chroma_up() {
        let f = I420Frame::new(5, 3);
        assert_eq!((f.y().len(), f.u().len(), f.v().len()), (15, 6, 6));
        let (y, u, v) = (vec![1u8; 8 * 3], vec![2u8; 4 * 2], vec![3u8; 4 * 2]);
        let g = I420Frame::from_planes(5, 3, &y, 8, &u, 4, &v, 4).unwrap();
        assert!(g.y().iter().all(|&b| b == 1) && g.v().iter().all(|&b| b == 3));
        assert!(I420Frame::from_planes(5, 3, &y[..10], 8, &u, 4, &v, 4).is_err());
    }

    #[test]
    fn rgba_converts_with_the_bt601_limited_range_matrix() {
        // White, black, red, blue in a 2x2 picture, then a 3x1 of white.
        let rgba = [
            255, 255, 255, 255, 0, 0, 0, 255, 255, 0, 0, 255, 0, 0, 255, 255,
        ];
        let f = I420Frame::from_rgba(2, 2, &rgba).unwrap();
        assert_eq!(f.y(), [235, 16, 82, 41]);
        // The mean colour (127, 63, 127): U and V of that.
        assert_eq!((f.u(), f.v()), (&[147][..], &[152][..]));
        let white = I420Frame::from_rgba(3, 1, &[255; 12]).unwrap();
        assert_eq!(
            (white.y(), white.u(), white.v()),
            (&[235, 235, 235][..], &[128, 128][..], &[128, 128][..])
        );
        assert!(I420Frame::from_rgba(2, 2, &rgba[..15]).is_err());
    }
}
