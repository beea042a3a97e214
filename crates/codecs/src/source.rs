//! Media sources for tests and demos, and the checks that read them back.
//!
//! [`TestPattern`] draws its frame counter as two rows of 16 blocks (the
//! counter's bits, then their complement) across the top of each frame, big
//! enough to survive lossy coding at ordinary bitrates from 128 pixels of
//! width; [`read_frame_counter`] reads it from a decoded frame, and a page
//! can read the same blocks from a canvas. [`Tone`] is a sine wave;
//! [`tone_power`] measures a frequency in PCM (Goertzel), so a receiver can
//! tell the tone arrived.

use crate::I420Frame;

/// Bits of the frame counter.
const COUNTER_BITS: u32 = 16;
/// Luma of a set and a clear bit (BT.601 limited range white and black).
const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// Geometry of the counter band in a frame: block width and row height.
fn counter_blocks(width: u32, height: u32) -> (u32, u32) {
    (width / COUNTER_BITS, (height / 12).max(8))
}

/// A moving test picture with a frame counter.
#[derive(Debug, Clone)]
pub struct TestPattern {
    width: u32,
    height: u32,
    frame: u32,
}

impl TestPattern {
    /// A pattern of `width` x `height` (at least 128 wide for a readable
    /// counter), starting at frame 0.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            frame: 0,
        }
    }

    /// The counter the next frame will carry.
    pub fn next_counter(&self) -> u32 {
        self.frame & 0xFFFF
    }

    /// Draws the next frame into `frame` (reusing its buffer when it has the
    /// pattern's size) and advances the counter.
    pub fn draw(&mut self, frame: &mut I420Frame) {
        if (frame.width(), frame.height()) != (self.width, self.height) {
            *frame = I420Frame::new(self.width, self.height);
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let counter = self.next_counter();
        let (block_w, row_h) = counter_blocks(self.width, self.height);
        let (block_w, row_h) = (block_w as usize, row_h as usize);
        // A square that crosses the frame every 64 frames, below the band.
        let side = (h / 6).max(4);
        let square_x = (self.frame as usize % 64) * w.saturating_sub(side) / 63;
        let square_y = 2 * row_h + (h - 2 * row_h).saturating_sub(side) / 2;
        let (y, u, v) = frame.planes_mut();
        for row in 0..h {
            let line = &mut y[row * w..(row + 1) * w];
            if row < 2 * row_h {
                let complement = row >= row_h;
                for (col, px) in line.iter_mut().enumerate() {
                    let bit = (col / block_w.max(1)) as u32;
                    *px = if bit >= COUNTER_BITS {
                        BLACK
                    } else if ((counter >> (COUNTER_BITS - 1 - bit)) & 1 == 1) != complement {
                        WHITE
                    } else {
                        BLACK
                    };
                }
            } else {
                for (col, px) in line.iter_mut().enumerate() {
                    let in_square = (square_x..square_x + side).contains(&col)
                        && (square_y..square_y + side).contains(&row);
                    // A diagonal ramp scrolling behind the square, so
                    // every part of the picture moves.
                    let ramp = (col + row + 4 * self.frame as usize) % (w + h);
                    *px = if in_square {
                        WHITE
                    } else {
                        (48 + ramp * 128 / (w + h)) as u8
                    };
                }
            }
        }
        u.fill(128);
        // A tint that follows the square's position, so chroma moves too.
        v.fill(96 + (self.frame % 64) as u8);
        self.frame = self.frame.wrapping_add(1);
    }

    /// The next frame in a new buffer.
    pub fn next_frame(&mut self) -> I420Frame {
        let mut frame = I420Frame::new(self.width, self.height);
        self.draw(&mut frame);
        frame
    }
}

/// Reads the frame counter a [`TestPattern`] drew, from a frame as decoded
/// (possibly scaled to another size); `None` when the blocks do not read as
/// a counter and its complement.
pub fn read_frame_counter(frame: &I420Frame) -> Option<u32> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (block_w, row_h) = counter_blocks(frame.width(), frame.height());
    let (block_w, row_h) = (block_w as usize, row_h as usize);
    if block_w < 4 {
        return None;
    }
    let y = frame.y();
    // The mean luma of the middle half of a block.
    let level = |bit: usize, row: usize| -> u32 {
        let (x0, y0) = (bit * block_w + block_w / 4, row * row_h + row_h / 4);
        let (bw, bh) = (block_w / 2, row_h / 2);
        let mut sum = 0u32;
        for yy in y0..y0 + bh {
            sum += y[yy * w + x0..yy * w + x0 + bw]
                .iter()
                .map(|&p| u32::from(p))
                .sum::<u32>();
        }
        sum / (bw * bh) as u32
    };
    debug_assert!(2 * row_h <= h);
    let mid = u32::from((WHITE + BLACK) / 2);
    let mut counter = 0;
    for bit in 0..COUNTER_BITS as usize {
        let (set, complement) = (level(bit, 0) > mid, level(bit, 1) > mid);
        if set == complement {
            return None;
        }
        counter = counter << 1 | u32::from(set);
    }
    Some(counter)
}

/// A sine tone as interleaved 16-bit PCM.
#[derive(Debug, Clone)]
pub struct Tone {
    frequency: f64,
    sample_rate: u32,
    channels: usize,
    amplitude: f64,
    /// Samples per channel produced so far.
    position: u64,
}

impl Tone {
    /// A tone of `frequency` Hz at `sample_rate`, the same on every channel,
    /// at a third of full scale.
    pub fn new(frequency: f64, sample_rate: u32, channels: usize) -> Self {
        Self {
            frequency,
            sample_rate,
            channels: channels.max(1),
            amplitude: f64::from(i16::MAX) / 3.0,
            position: 0,
        }
    }

    /// Fills `pcm` (whole frames of `channels` samples) with the next samples.
    pub fn fill(&mut self, pcm: &mut [i16]) {
        let step = std::f64::consts::TAU * self.frequency / f64::from(self.sample_rate);
        for frame in pcm.chunks_mut(self.channels) {
            let value = (self.amplitude * (step * self.position as f64).sin()) as i16;
            frame.fill(value);
            self.position += 1;
        }
    }
}

/// Power of `frequency` in the first channel of interleaved PCM, relative to
/// a full-scale sine (1.0), by the Goertzel algorithm.
pub fn tone_power(pcm: &[i16], channels: usize, sample_rate: u32, frequency: f64) -> f64 {
    let samples = pcm.iter().step_by(channels.max(1));
    let n = samples.len();
    if n == 0 {
        return 0.0;
    }
    let coeff = 2.0 * (std::f64::consts::TAU * frequency / f64::from(sample_rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / f64::from(i16::MAX) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A full-scale sine of n samples gives (n/2)^2.
    power / (n as f64 / 2.0).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_reads_back_from_the_pixels() {
        let mut pattern = TestPattern::new(320, 240);
        for expected in 0..70 {
            let frame = pattern.next_frame();
            assert_eq!(read_frame_counter(&frame), Some(expected));
        }
        // A frame without the pattern reads as nothing.
        assert_eq!(read_frame_counter(&I420Frame::new(320, 240)), None);
    }

    #[test]
    fn goertzel_finds_the_tone_and_not_others() {
        let mut tone = Tone::new(440.0, 48_000, 2);
        let mut pcm = vec![0i16; 2 * 4_800];
        tone.fill(&mut pcm);
        let at_440 = tone_power(&pcm, 2, 48_000, 440.0);
        // A third of full scale: power 1/9.
        assert!((at_440 - 1.0 / 9.0).abs() < 0.01, "{at_440}");
        for other in [300.0, 600.0, 1_000.0] {
            assert!(tone_power(&pcm, 2, 48_000, other) < at_440 / 100.0);
        }
    }
}
