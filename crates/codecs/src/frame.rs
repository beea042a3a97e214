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
}
