//! The server's own relay latency: from a `message` request reaching a front
//! (parsed, on its way into the hub) to the relayed event being handed to
//! the receiver's transport (for `/ws`, written to its socket; for
//! Socket.IO, queued on the engine socket, which writes it next). A load
//! generator's latency adds its own queueing and the kernel's; this one is
//! what the server adds, so a benchmark can tell which side is slow.
//!
//! A log-linear histogram (8 buckets per power of two of nanoseconds, so a
//! quantile is within 12.5 % of the truth) of atomic counters: recording is
//! lock-free from every front's task.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two covered above the first `SUB` nanoseconds: up to 2^40 ns
/// (18 minutes); longer ones count in the last bucket.
const OCTAVES: usize = 38;
const BUCKETS: usize = SUB as usize * (OCTAVES + 1);

/// Relay latencies seen so far.
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    max_ns: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_ns: AtomicU64::new(0),
        }
    }
}

/// The bucket of `ns`: exact below `SUB`, then `SUB` per power of two.
fn bucket_of(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let exponent = 63 - ns.leading_zeros(); // >= SUB_BITS
    let mantissa = (ns >> (exponent - SUB_BITS)) & (SUB - 1);
    let index = SUB as usize * (exponent - SUB_BITS + 1) as usize + mantissa as usize;
    index.min(BUCKETS - 1)
}

/// The largest value that falls in bucket `index`.
fn upper_bound(index: usize) -> u64 {
    let sub = SUB as usize;
    if index < sub {
        return index as u64;
    }
    let exponent = (index / sub - 1) as u32 + SUB_BITS;
    let mantissa = (index % sub) as u64;
    ((SUB + mantissa + 1) << (exponent - SUB_BITS)) - 1
}

impl LatencyHistogram {
    /// Counts one relay that took `latency`.
    pub fn record(&self, latency: Duration) {
        self.record_many(latency, 1);
    }

    /// Counts `count` relays that each took `latency` (a batch sent
    /// together).
    pub fn record_many(&self, latency: Duration, count: u64) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(count, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// Count and quantiles of everything recorded so far.
    pub fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max = Duration::from_nanos(self.max_ns.load(Ordering::Relaxed));
        let quantile = |q: f64| {
            if count == 0 {
                return Duration::ZERO;
            }
            // The rank of the q-quantile, 1-based (nearest rank).
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (index, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Duration::from_nanos(upper_bound(index)).min(max);
                }
            }
            max
        };
        LatencySummary {
            count,
            p50: quantile(0.50),
            p99: quantile(0.99),
            p999: quantile(0.999),
            max,
        }
    }
}

impl LatencyHistogram {
    /// The histogram in the Prometheus text format (0.0.4) as metric
    /// `name` (in seconds): cumulative `le` buckets, each the upper bound
    /// of one of ours, up to the highest that holds a value, then `+Inf`,
    /// `_sum` (of bucket bounds: an upper bound) and `_count`. A scraper
    /// that diffs two scrapes gets the quantiles of the time between.
    pub fn prometheus(&self, name: &str, help: &str) -> String {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let highest = counts.iter().rposition(|n| *n > 0).unwrap_or(0);
        let mut out = format!("# HELP {name} {help}\n# TYPE {name} histogram\n");
        let mut cumulative = 0u64;
        let mut sum_ns = 0u128;
        for (index, n) in counts.iter().enumerate().take(highest + 1) {
            cumulative += n;
            sum_ns += u128::from(*n) * u128::from(upper_bound(index));
            let le = upper_bound(index) as f64 / 1e9;
            out.push_str(&format!("{name}_bucket{{le=\"{le:e}\"}} {cumulative}\n"));
        }
        let count: u64 = counts.iter().sum();
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {count}\n"));
        out.push_str(&format!("{name}_sum {:e}\n", sum_ns as f64 / 1e9));
        out.push_str(&format!("{name}_count {count}\n"));
        out
    }
}

/// Quantiles of the relay latency (each the upper bound of its bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencySummary {
    /// Relays recorded.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest seen (exact).
    pub max: Duration,
}

impl fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{} relayed, p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
            self.count,
            ms(self.p50),
            ms(self.p99),
            ms(self.p999),
            ms(self.max)
        )
    }
}

/// Logs the relay latency so far (at `info`, target
/// `realtimer_server::latency`) every `period` in which something was
/// relayed; the last line before a process stops covers its whole run.
pub(crate) async fn report(hub: crate::Hub, period: Duration) {
    let mut tick = tokio::time::interval(period);
    let mut logged = 0;
    loop {
        tick.tick().await;
        let summary = hub.relay_latency();
        if summary.count != logged {
            logged = summary.count;
            tracing::info!("relay latency inside the server: {summary}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_bound_their_values() {
        let mut last = 0;
        for ns in (0..20_000u64).chain([1 << 20, (1 << 30) + 12345, u64::MAX]) {
            let index = bucket_of(ns);
            assert!(index >= last, "{ns}");
            assert!(ns <= upper_bound(index) || index == BUCKETS - 1, "{ns}");
            if index > 0 && index < BUCKETS - 1 {
                // Within 12.5 % of the bucket's top.
                assert!(upper_bound(index) - ns <= ns / 8 + 1, "{ns}");
            }
            last = index;
        }
    }

    #[test]
    fn prometheus_buckets_are_cumulative_up_to_the_highest_value() {
        let histogram = LatencyHistogram::default();
        histogram.record(Duration::from_micros(100));
        histogram.record(Duration::from_micros(100));
        histogram.record(Duration::from_millis(5));
        let text = histogram.prometheus("x_seconds", "X.");
        assert!(text.starts_with("# HELP x_seconds X.\n# TYPE x_seconds histogram\n"));
        let buckets: Vec<(f64, u64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("x_seconds_bucket{le=\""))
            .filter(|l| !l.starts_with('+'))
            .map(|l| {
                let (le, n) = l.split_once("\"} ").unwrap();
                (le.parse().unwrap(), n.parse().unwrap())
            })
            .collect();
        assert!(buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        let at = |s: f64| buckets.iter().find(|(le, _)| *le >= s).unwrap().1;
        assert_eq!(at(100e-6), 2);
        assert_eq!(buckets.last().unwrap().1, 3);
        assert!(buckets.last().unwrap().0 >= 5e-3 && buckets.last().unwrap().0 < 6e-3);
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.ends_with("x_seconds_count 3\n"));
    }

    #[test]
    fn quantiles_of_a_known_spread() {
        let histogram = LatencyHistogram::default();
        assert_eq!(histogram.summary(), LatencySummary::default());
        // 990 relays of 100 µs, 10 of 5 ms.
        for _ in 0..990 {
            histogram.record(Duration::from_micros(100));
        }
        for _ in 0..10 {
            histogram.record(Duration::from_millis(5));
        }
        let s = histogram.summary();
        assert_eq!(s.count, 1000);
        let near = |d: Duration, want: Duration| d >= want && d <= want + want / 8;
        assert!(near(s.p50, Duration::from_micros(100)), "{s}");
        assert!(near(s.p99, Duration::from_micros(100)), "{s}");
        assert_eq!(s.p999, Duration::from_millis(5), "{s}");
        assert_eq!(s.max, Duration::from_millis(5));
        assert!(s.to_string().starts_with("1000 relayed, p50 0.1"), "{s}");
    }
}
