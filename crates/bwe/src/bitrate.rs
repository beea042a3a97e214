//! Bits per second.

use std::fmt;
use std::time::Duration;

/// A rate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bitrate(u64);

impl Bitrate {
    /// Zero bits per second.
    pub const ZERO: Self = Self(0);
    /// The largest rate.
    pub const MAX: Self = Self(u64::MAX);

    /// `bps` bits per second.
    pub const fn bps(bps: u64) -> Self {
        Self(bps)
    }

    /// `kbps` thousand bits per second.
    pub const fn kbps(kbps: u64) -> Self {
        Self(kbps * 1000)
    }

    /// The rate in bits per second.
    pub const fn as_bps(self) -> u64 {
        self.0
    }

    /// The rate as a float, for the filters.
    pub fn as_f64(self) -> f64 {
        self.0 as f64
    }

    /// From a float (negative and NaN give zero).
    pub fn from_f64(bps: f64) -> Self {
        Self(if bps.is_finite() && bps > 0.0 {
            bps as u64
        } else {
            0
        })
    }

    /// The rate of `bytes` over `over` (zero when `over` is zero).
    pub fn from_bytes(bytes: u64, over: Duration) -> Self {
        if over.is_zero() {
            return Self::ZERO;
        }
        Self::from_f64(bytes as f64 * 8.0 / over.as_secs_f64())
    }

    /// Bytes this rate carries in `d`.
    pub fn bytes_in(self, d: Duration) -> f64 {
        self.0 as f64 * d.as_secs_f64() / 8.0
    }

    /// How long `bytes` take at this rate (`None` at zero).
    pub fn time_for(self, bytes: f64) -> Option<Duration> {
        (self.0 > 0).then(|| Duration::from_secs_f64((bytes.max(0.0) * 8.0) / self.0 as f64))
    }

    /// This rate times `factor`.
    pub fn scale(self, factor: f64) -> Self {
        Self::from_f64(self.0 as f64 * factor)
    }

    /// Adds, saturating.
    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Bitrate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} kbit/s", self.0 as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_time_agree() {
        let rate = Bitrate::kbps(800);
        assert_eq!(rate.bytes_in(Duration::from_millis(10)), 1000.0);
        assert_eq!(rate.time_for(1000.0), Some(Duration::from_millis(10)));
        assert_eq!(Bitrate::from_bytes(1000, Duration::from_millis(10)), rate);
        assert_eq!(Bitrate::ZERO.time_for(1.0), None);
        assert_eq!(Bitrate::from_f64(-3.0), Bitrate::ZERO);
        assert_eq!(rate.to_string(), "800.0 kbit/s");
    }
}
