//! The server's `/metrics`, read by the generator: the forwarding unit's
//! counters and its dwell histogram, diffed over the measured window.

use std::time::Duration;

use realtimer_server::latency::LatencySummary;
use realtimer_signaling::whip::{Method, WhipClient};

/// One scrape of what the generator needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrape {
    pub(crate) forwarded: u64,
    pub(crate) dropped: u64,
    /// `realtimer_sfu_dwell_seconds`: (upper bound in seconds, cumulative
    /// count), ascending, `+Inf` left out.
    dwell: Vec<(f64, u64)>,
    dwell_count: u64,
}

fn value(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

impl Scrape {
    pub(crate) async fn get(base: &str) -> Scrape {
        let Ok(client) = WhipClient::new(&format!("{base}/metrics"), None) else {
            return Scrape::default();
        };
        match client.request(Method::GET, "/metrics", None, "").await {
            Ok(r) if r.status == 200 => Scrape::parse(&r.body),
            Ok(r) => {
                eprintln!("/metrics answered {}", r.status);
                Scrape::default()
            }
            Err(e) => {
                eprintln!("/metrics: {e}");
                Scrape::default()
            }
        }
    }

    pub(crate) fn parse(text: &str) -> Scrape {
        let dwell = text
            .lines()
            .filter_map(|l| l.strip_prefix("realtimer_sfu_dwell_seconds_bucket{le=\""))
            .filter_map(|l| {
                let (le, n) = l.split_once("\"} ")?;
                Some((le.parse().ok()?, n.trim().parse().ok()?))
            })
            .filter(|(le, _): &(f64, u64)| le.is_finite())
            .collect();
        Scrape {
            forwarded: value(text, "realtimer_sfu_forwarded_packets_total"),
            dropped: value(text, "realtimer_sfu_dropped_queue_full_total"),
            dwell,
            dwell_count: value(text, "realtimer_sfu_dwell_seconds_count"),
        }
    }

    /// Cumulative count at or below `le` (past the last bucket listed:
    /// everything).
    fn at(&self, le: f64) -> u64 {
        match self.dwell.iter().find(|(bound, _)| *bound >= le) {
            Some((_, n)) => *n,
            None => self.dwell_count,
        }
    }

    /// Quantiles of what was recorded between `earlier` and this scrape
    /// (each the upper bound of its bucket).
    pub(crate) fn dwell_since(&self, earlier: &Scrape) -> LatencySummary {
        let count = self.dwell_count.saturating_sub(earlier.dwell_count);
        let quantile = |q: f64| {
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count.max(1));
            self.dwell
                .iter()
                .find(|(le, n)| n.saturating_sub(earlier.at(*le)) >= rank)
                .map_or(Duration::ZERO, |(le, _)| Duration::from_secs_f64(*le))
        };
        LatencySummary {
            count,
            p50: quantile(0.5),
            p99: quantile(0.99),
            p999: quantile(0.999),
            max: quantile(1.0),
        }
    }
}
