//! Figures of a run: per phase, what the clients saw (counts, latency
//! quantiles, msgs/s), what it cost the server (CPU, RSS) and the
//! generator (CPU, scheduling delay), and how busy the machine was
//! otherwise; and `compare`, a table of several runs' results with ratios
//! to a reference.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::front::Front;
use super::{Mark, Phase, Tally};

/// Quantiles of a sample, in milliseconds (nearest rank).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Quantiles {
    pub(crate) n: usize,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
}

impl Quantiles {
    fn of(mut ns: Vec<u64>) -> Self {
        ns.sort_unstable();
        let n = ns.len();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n.max(1));
            ns.get(rank - 1).map_or(f64::NAN, |&v| v as f64 / 1e6)
        };
        Self {
            n,
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }

    fn show(&self) -> String {
        format!(
            "p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} ms",
            self.p50, self.p99, self.p999, self.max
        )
    }
}

/// One phase's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PhaseResult {
    pub(crate) name: String,
    pub(crate) complete: bool,
    pub(crate) wall_s: f64,
    /// Connect: per client; join: per room (`create or join` to both
    /// `ready`); relay: per message (send to receive).
    pub(crate) latency_ms: Quantiles,
    pub(crate) expected: u64,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) foreign: u64,
    pub(crate) echoed: u64,
    pub(crate) log_events: u64,
    pub(crate) errors: u64,
    pub(crate) failed: u64,
    pub(crate) closed: u64,
    pub(crate) notes: Vec<String>,
    /// Relayed messages per second, first send to last receive.
    pub(crate) msgs_per_s: Option<f64>,
    pub(crate) generator_cpu_s: f64,
    /// How late the generator's runtime saw each 1 ms tick.
    pub(crate) generator_delay_ms: Quantiles,
    pub(crate) server_cpu_s: Option<f64>,
    /// Server CPU per relayed message (relay) or per connection (connect).
    pub(crate) server_cpu_us_per_unit: Option<f64>,
    pub(crate) server_rss_mib: Option<f64>,
    /// Time the server and the generator were runnable but waited for a
    /// CPU (other programs, or each other when not pinned), in % of the
    /// phase.
    pub(crate) server_cpu_wait_pct: Option<f64>,
    pub(crate) generator_cpu_wait_pct: f64,
    /// Busy share of all cores.
    pub(crate) machine_busy_pct: f64,
    /// CPU used by neither the server nor the generator, in % of one core.
    pub(crate) other_cpu_pct: f64,
}

impl PhaseResult {
    pub(crate) fn new(
        phase: Phase,
        clients: usize,
        tally: Tally,
        lag_ns: Vec<u64>,
        start: &Mark,
        end: &Mark,
        complete: bool,
    ) -> Self {
        let wall_s = (end.at - start.at).as_secs_f64();
        let generator_cpu_s = end.generator_cpu_s - start.generator_cpu_s;
        let server_cpu_s = end.server_cpu_s.zip(start.server_cpu_s).map(|(b, a)| b - a);
        let expected = match phase {
            Phase::Connect => clients as u64,
            Phase::Join => clients as u64 / 2,
            Phase::Relay { msgs, .. } => (clients * msgs) as u64,
        };
        let units = match phase {
            Phase::Connect => tally.samples_ns.len() as f64,
            Phase::Join => f64::NAN,
            Phase::Relay { .. } => tally.received as f64,
        };
        let busy = end.machine.busy_s - start.machine.busy_s;
        let total = end.machine.total_s - start.machine.total_s;
        let msgs_per_s = match (phase, tally.first_send, tally.last_receive) {
            (Phase::Relay { .. }, Some(first), Some(last)) if last > first => {
                Some(tally.received as f64 / (last - first).as_secs_f64())
            }
            _ => None,
        };
        Self {
            name: phase.name().into(),
            complete,
            wall_s,
            latency_ms: Quantiles::of(tally.samples_ns),
            expected,
            sent: tally.sent,
            received: tally.received,
            foreign: tally.foreign,
            echoed: tally.echoed,
            log_events: tally.logs,
            errors: tally.errors,
            failed: tally.failed,
            closed: tally.closed,
            notes: tally.notes,
            msgs_per_s,
            generator_cpu_s,
            generator_delay_ms: Quantiles::of(lag_ns),
            server_cpu_s,
            server_cpu_us_per_unit: server_cpu_s
                .map(|s| s * 1e6 / units)
                .filter(|v| v.is_finite()),
            server_rss_mib: end.server.map(|m| m.rss_mib),
            server_cpu_wait_pct: end
                .server_wait_s
                .zip(start.server_wait_s)
                .map(|(b, a)| 100.0 * (b - a) / wall_s),
            generator_cpu_wait_pct: 100.0 * (end.generator_wait_s - start.generator_wait_s)
                / wall_s,
            machine_busy_pct: if total > 0.0 {
                100.0 * busy / total
            } else {
                f64::NAN
            },
            other_cpu_pct: 100.0 * (busy - generator_cpu_s - server_cpu_s.unwrap_or(0.0)).max(0.0)
                / wall_s,
        }
    }

    /// One paragraph for the console.
    pub(crate) fn line(&self) -> String {
        let mut s = format!("{:8} {:.2} s", self.name, self.wall_s);
        let _ = match self.name.as_str() {
            "connect" => write!(s, ", {} connected, {} failed; per client {}", self.latency_ms.n, self.failed, self.latency_ms.show()),
            "join" => write!(s, ", {}/{} rooms ready, {} errors; per room {}", self.latency_ms.n, self.expected, self.errors, self.latency_ms.show()),
            _ => write!(
                s,
                ", {}/{} delivered ({} lost, {} foreign, {} echoed, {} log events, {} errors) = {:.0} msg/s\n         latency {}",
                self.received,
                self.expected,
                self.expected.saturating_sub(self.received),
                self.foreign,
                self.echoed,
                self.log_events,
                self.errors,
                self.msgs_per_s.unwrap_or(f64::NAN),
                self.latency_ms.show()
            ),
        };
        let per = if self.name == "connect" {
            "connection"
        } else {
            "message"
        };
        let _ = write!(
            s,
            "\n         server CPU {:.2} s ({}), RSS {} MiB; generator CPU {:.2} s, scheduling delay {}; \
             waiting for a CPU: server {:.1}%, generator {:.1}% of the phase; \
             machine {:.0}% busy, others {:.0}% of a core",
            self.server_cpu_s.unwrap_or(f64::NAN),
            self.server_cpu_us_per_unit.map_or("-".into(), |v| format!("{v:.1} µs per {per}")),
            self.server_rss_mib.map_or("-".into(), |v| format!("{v:.1}")),
            self.generator_cpu_s,
            self.generator_delay_ms.show(),
            self.server_cpu_wait_pct.unwrap_or(f64::NAN),
            self.generator_cpu_wait_pct,
            self.machine_busy_pct,
            self.other_cpu_pct,
        );
        for note in &self.notes {
            let _ = write!(s, "\n         e.g. {note}");
        }
        s
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunResult {
    pub(crate) label: String,
    pub(crate) front: Front,
    pub(crate) clients: usize,
    pub(crate) loadavg_start: f64,
    pub(crate) loadavg_end: f64,
    pub(crate) server_rss_idle_mib: Option<f64>,
    pub(crate) server_peak_mib: Option<f64>,
    pub(crate) phases: Vec<PhaseResult>,
    pub(crate) error: Option<String>,
}

impl RunResult {
    pub(crate) fn new(label: &str, front: Front, clients: usize, loadavg: f64) -> Self {
        Self {
            label: label.into(),
            front,
            clients,
            loadavg_start: loadavg,
            loadavg_end: f64::NAN,
            server_rss_idle_mib: None,
            server_peak_mib: None,
            phases: Vec::new(),
            error: None,
        }
    }

    fn phase(&self, name: &str) -> Option<&PhaseResult> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// How much the server and the generator waited for a CPU (% of the
    /// phase): what other programs took from them. In the paced phase,
    /// whose latency is the figure that matters, or else in the phase
    /// where they waited most.
    fn disturbance(&self) -> f64 {
        let waited =
            |p: &PhaseResult| p.server_cpu_wait_pct.unwrap_or(0.0) + p.generator_cpu_wait_pct;
        match self.phase("paced") {
            Some(paced) => waited(paced),
            None => self.phases.iter().map(waited).fold(0.0, f64::max),
        }
    }

    pub(crate) fn summary(&self) -> String {
        let mib = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        format!(
            "server RSS MiB: idle {}, after join {}, peak {}; load average {:.2} -> {:.2}{}",
            mib(self.server_rss_idle_mib),
            mib(self.phase("join").and_then(|p| p.server_rss_mib)),
            mib(self.server_peak_mib),
            self.loadavg_start,
            self.loadavg_end,
            self.error
                .as_ref()
                .map_or(String::new(), |e| format!("\nERROR: {e}")),
        )
    }
}

/// The figures a comparison shows, each with how to read it from a run.
type Figure = (&'static str, fn(&RunResult) -> Option<f64>);

fn relay(run: &RunResult, name: &str, f: fn(&PhaseResult) -> f64) -> Option<f64> {
    run.phase(name).map(f)
}

const FIGURES: &[Figure] = &[
    ("paced p50 ms", |r| relay(r, "paced", |p| p.latency_ms.p50)),
    ("paced p99 ms", |r| relay(r, "paced", |p| p.latency_ms.p99)),
    ("paced p99.9 ms", |r| {
        relay(r, "paced", |p| p.latency_ms.p999)
    }),
    ("paced max ms", |r| relay(r, "paced", |p| p.latency_ms.max)),
    ("paced generator delay p99 ms", |r| {
        relay(r, "paced", |p| p.generator_delay_ms.p99)
    }),
    ("paced server CPU µs/msg", |r| {
        r.phase("paced")?.server_cpu_us_per_unit
    }),
    ("paced generator CPU s", |r| {
        relay(r, "paced", |p| p.generator_cpu_s)
    }),
    ("paced server CPU s", |r| r.phase("paced")?.server_cpu_s),
    ("burst msgs/s (higher is better)", |r| {
        r.phase("burst")?.msgs_per_s
    }),
    ("burst p50 ms", |r| relay(r, "burst", |p| p.latency_ms.p50)),
    ("burst p99 ms", |r| relay(r, "burst", |p| p.latency_ms.p99)),
    ("burst server CPU µs/msg", |r| {
        r.phase("burst")?.server_cpu_us_per_unit
    }),
    ("burst generator CPU s", |r| {
        relay(r, "burst", |p| p.generator_cpu_s)
    }),
    ("connect all s", |r| relay(r, "connect", |p| p.wall_s)),
    ("connect server CPU µs/conn", |r| {
        r.phase("connect")?.server_cpu_us_per_unit
    }),
    ("join all s", |r| relay(r, "join", |p| p.wall_s)),
    ("server RSS after join MiB", |r| {
        r.phase("join")?.server_rss_mib
    }),
    ("server RSS peak MiB", |r| r.server_peak_mib),
    ("lost + failed + errors", |r| {
        Some(
            r.phases
                .iter()
                .map(|p| {
                    (p.expected.saturating_sub(p.received)
                        * u64::from(p.name != "connect" && p.name != "join")
                        + p.failed
                        + p.errors
                        + p.foreign
                        + p.echoed) as f64
                })
                .sum(),
        )
    }),
    ("waited for a CPU (paced, or worst phase), %", |r| {
        Some(r.disturbance())
    }),
    ("paced: server waited for a CPU, %", |r| {
        r.phase("paced")?.server_cpu_wait_pct
    }),
    ("paced: others' CPU, % of a core", |r| {
        relay(r, "paced", |p| p.other_cpu_pct)
    }),
    ("load average at start", |r| Some(r.loadavg_start)),
];

/// Prints the quietest run of each label (the one where the server and
/// the generator waited least for a CPU, see `disturbance`) side by side, and each label's ratio to
/// `reference`. Returns the process exit code.
pub(crate) fn compare(reference: &str, files: &[String]) -> i32 {
    let mut by_label: BTreeMap<String, Vec<RunResult>> = BTreeMap::new();
    for file in files {
        match std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str::<RunResult>(&s).map_err(|e| e.to_string()))
        {
            Ok(run) => by_label.entry(run.label.clone()).or_default().push(run),
            Err(e) => eprintln!("{file}: {e}"),
        }
    }
    let quietest: Vec<(String, usize, RunResult)> = by_label
        .into_iter()
        .filter_map(|(label, runs)| {
            let n = runs.len();
            let best = runs
                .into_iter()
                .filter(|r| r.error.is_none())
                .min_by(|a, b| a.disturbance().total_cmp(&b.disturbance()))?;
            Some((label, n, best))
        })
        .collect();
    if quietest.is_empty() {
        println!("no complete run to compare");
        return 1;
    }
    let width = 40;
    let mut header = format!("{:width$}", "quietest run of each (of n runs)");
    for (label, n, _) in &quietest {
        let _ = write!(header, " | {:>16}", format!("{label} ({n})"));
    }
    let reference_run = quietest
        .iter()
        .find(|(l, _, _)| l == reference)
        .map(|(_, _, r)| r);
    let others: Vec<&(String, usize, RunResult)> =
        quietest.iter().filter(|(l, _, _)| l != reference).collect();
    if reference_run.is_some() {
        for (label, _, _) in &others {
            let _ = write!(header, " | {:>16}", format!("{label} / {reference}"));
        }
    }
    println!("{header}");
    for (name, read) in FIGURES {
        let mut row = format!("{name:width$}");
        for (_, _, run) in &quietest {
            let _ = write!(
                row,
                " | {:>16}",
                read(run).map_or("-".into(), |v| format!("{v:.3}"))
            );
        }
        if let Some(reference_run) = reference_run {
            for (_, _, run) in &others {
                let ratio = read(run).zip(read(reference_run)).map(|(a, b)| a / b);
                let shown = ratio
                    .filter(|r| r.is_finite())
                    .map_or("-".into(), |r| format!("{r:.3}"));
                let _ = write!(row, " | {shown:>16}");
            }
        }
        println!("{row}");
    }
    0
}
