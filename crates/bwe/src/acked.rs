//! The acknowledged bitrate: what the receiver got over the last 150 ms, by the arrival
//! times feedback reports. The delay-based controller backs off to a
//! fraction of it and never runs far ahead of it.

use std::collections::VecDeque;

use crate::Bitrate;

/// The window the rate is measured over, µs of arrival time (libwebrtc:
/// 150 ms once running): short enough that a back-off right after the
/// capacity drops starts from the new rate, not the old one.
const WINDOW_MICROS: i64 = 150_000;
/// Most arrivals kept (one window at 100 Mbit/s of 1200-byte packets is
/// about 1600).
const MAX_SAMPLES: usize = 8192;

/// A sliding window over arrivals.
#[derive(Debug, Clone, Default)]
pub(crate) struct AckedBitrate {
    arrivals: VecDeque<(i64, usize)>,
    bytes: usize,
    latest: Option<i64>,
    first: Option<i64>,
}

impl AckedBitrate {
    /// A packet of `size` bytes arrived at `arrival` µs (receiver's clock).
    pub(crate) fn on_received(&mut self, arrival: i64, size: usize) {
        let latest = self.latest.map_or(arrival, |l| l.max(arrival));
        self.latest = Some(latest);
        self.first.get_or_insert(arrival);
        self.arrivals.push_back((arrival, size));
        self.bytes += size;
        while let Some(&(at, size)) = self.arrivals.front() {
            if latest - at < WINDOW_MICROS && self.arrivals.len() <= MAX_SAMPLES {
                break;
            }
            self.arrivals.pop_front();
            self.bytes -= size;
        }
    }

    /// The rate over the last window; `None` until a window has passed.
    pub(crate) fn rate(&self) -> Option<Bitrate> {
        let (first, latest) = (self.first?, self.latest?);
        (latest - first >= WINDOW_MICROS)
            .then(|| Bitrate::from_f64(self.bytes as f64 * 8.0 * 1e6 / WINDOW_MICROS as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_last_150_ms() {
        let mut a = AckedBitrate::default();
        // 1000 bytes every 10 ms: 800 kbit/s.
        for i in 0..15 {
            a.on_received(i * 10_000, 1000);
            assert_eq!(a.rate(), None);
        }
        for i in 15..200 {
            a.on_received(i * 10_000, 1000);
        }
        assert_eq!(a.rate(), Some(Bitrate::kbps(800)));
    }
}
