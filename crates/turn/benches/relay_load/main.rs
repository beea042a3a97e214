//! TURN relay throughput: our server (`realtimer serve`) against coturn's
//! `turnserver`, in the same run, with the same load generator (this
//! program), on loopback. Each server runs fresh for each measurement,
//! pinned to one CPU, the generator to the other; the figure that counts
//! is relayed datagrams per server CPU-second (issue 8: ≥ 1.5× coturn).
//! Memory per allocation is the server's RSS growth over the allocations.
//!
//! ```text
//! crates/turn/bench/run.sh [--scenarios single,many,1k] [--runs 1] [--seconds 5]
//! cargo bench -p realtimer-turn --bench relay_load -- --scenarios many
//! ```
//!
//! Options: `--scenarios` (comma-separated: `single`, `many`, `1k`,
//! `load60k`, `load100k`, or `NxR` = N allocations × R msg/s each, `Nxflood`),
//! `--runs`, `--seconds` (measured window), `--msg-len` (bytes of
//! application data, 1000), `--servers coturn,realtimer`, `--realtimer PATH`
//! (default: `realtimer` beside this benchmark's directory, as
//! `cargo build --release -p realtimer-cli` leaves it; `REALTIMER_BIN` too),
//! `--nice` (scheduling priority of the servers and the generator, -19:
//! other programs on the machine must not preempt them; 0 to leave it).
// A benchmark reads the real clock and prints its figures.
#![allow(clippy::disallowed_methods, clippy::print_stdout, clippy::print_stderr)]

mod load;
mod servers;

use realtimer_test_support::turn_client as client;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use load::{Load, Outcome, Plan};
use servers::{load_average, memory_kib, Kind, Placement, Server, USER};

/// A named load.
struct Scenario {
    name: String,
    allocations: usize,
    /// Messages per second per allocation; `None` floods.
    per_allocation: Option<f64>,
}

impl Scenario {
    fn parse(name: &str) -> Option<Scenario> {
        let (allocations, per_allocation) = match name {
            "single" => (1, None),
            "many" => (200, Some(100.0)),
            "1k" => (1000, Some(50.0)),
            "load60k" => (60, Some(1000.0)),
            "load100k" => (100, Some(1000.0)),
            custom => {
                let (n, r) = custom.split_once('x')?;
                let rate = match r {
                    "flood" => None,
                    r => Some(r.parse().ok()?),
                };
                (n.parse().ok()?, rate)
            }
        };
        Some(Scenario {
            name: name.to_owned(),
            allocations,
            per_allocation,
        })
    }
}

struct Options {
    scenarios: Vec<Scenario>,
    runs: usize,
    window: Duration,
    msg_len: usize,
    servers: Vec<Kind>,
    realtimer: PathBuf,
    nice: i32,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        scenarios: ["single", "many", "1k"]
            .iter()
            .filter_map(|s| Scenario::parse(s))
            .collect(),
        runs: 1,
        window: Duration::from_secs(5),
        msg_len: 1000,
        servers: vec![Kind::Coturn, Kind::Realtimer],
        nice: -19,
        realtimer: std::env::var_os("REALTIMER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                // target/release/deps/relay_load-HASH -> target/release/realtimer
                let exe = std::env::current_exe().unwrap_or_default();
                exe.parent()
                    .and_then(|d| d.parent())
                    .unwrap_or(&exe)
                    .join("realtimer")
            }),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--scenarios" => {
                o.scenarios = value()?
                    .split(',')
                    .map(|s| Scenario::parse(s).ok_or(format!("unknown scenario {s}")))
                    .collect::<Result<_, _>>()?
            }
            "--runs" => o.runs = value()?.parse().map_err(|_| "--runs takes a number")?,
            "--seconds" => {
                o.window = Duration::from_secs_f64(
                    value()?.parse().map_err(|_| "--seconds takes a number")?,
                )
            }
            "--msg-len" => o.msg_len = value()?.parse().map_err(|_| "--msg-len takes a number")?,
            "--servers" => {
                o.servers = value()?
                    .split(',')
                    .map(|s| match s {
                        "coturn" => Ok(Kind::Coturn),
                        "realtimer" => Ok(Kind::Realtimer),
                        s => Err(format!("unknown server {s}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--realtimer" => o.realtimer = value()?.into(),
            "--nice" => o.nice = value()?.parse().map_err(|_| "--nice takes a number")?,
            // `cargo bench` passes this to every benchmark.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// One row of the table.
struct Row {
    scenario: String,
    server: Kind,
    allocations: usize,
    offered: Option<f64>,
    outcome: Outcome,
    /// RSS growth over the allocations, KiB.
    rss_growth_kib: u64,
    rss_peak_kib: u64,
    load: String,
}

impl Row {
    /// Echoed messages per second over the window.
    fn msgs_per_s(&self) -> f64 {
        self.outcome.received_window as f64 / self.outcome.window.as_secs_f64()
    }

    /// Each echoed message is relayed twice: client → peer and back.
    fn relayed_per_s(&self) -> f64 {
        2.0 * self.msgs_per_s()
    }

    fn per_cpu_second(&self) -> f64 {
        let cpu = self.outcome.server_cpu / self.outcome.window.as_secs_f64();
        if cpu > 0.0 {
            self.relayed_per_s() / cpu
        } else {
            0.0
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn measure(o: &Options, scenario: &Scenario, kind: Kind, server: Placement) -> Result<Row, String> {
    let server = Server::start(kind, server, &o.realtimer)
        .map_err(|e| format!("starting {}: {e}", kind.name()))?;
    let pid = server.pid();
    let before = memory_kib(pid, "VmRSS");
    let mut load =
        Load::new(server.address, USER, scenario.allocations).map_err(|e| e.to_string())?;
    let after = memory_kib(pid, "VmRSS");
    let plan = Plan {
        rate: scenario
            .per_allocation
            .map(|r| r * scenario.allocations as f64),
        msg_len: o.msg_len,
        warmup: Duration::from_secs(1),
        window: o.window,
    };
    let outcome = load.run(&plan, pid).map_err(|e| e.to_string())?;
    Ok(Row {
        scenario: scenario.name.clone(),
        server: kind,
        allocations: scenario.allocations,
        offered: plan.rate,
        outcome,
        rss_growth_kib: after.saturating_sub(before),
        rss_peak_kib: memory_kib(pid, "VmHWM"),
        load: load_average(),
    })
}

fn print_table(rows: &[Row], msg_len: usize) {
    println!(
        "| scenario | server | allocs | offered msg/s | sent msg/s | echoed msg/s | relayed pkts/s | Mbit/s | loss % \
         | RTT p50/p99 ms | server CPU % | relayed pkts per server CPU-s | generator CPU % | KiB per alloc | RSS peak MiB | send errors | load |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let o = &r.outcome;
        let secs = o.window.as_secs_f64();
        let loss = if o.sent > 0 {
            100.0 * o.sent.saturating_sub(o.received) as f64 / o.sent as f64
        } else {
            0.0
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} | {:.2}/{:.2} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} |",
            r.scenario,
            r.server.name(),
            r.allocations,
            r.offered.map_or("flood".into(), |x| format!("{x:.0}")),
            o.sent_window as f64 / secs,
            r.msgs_per_s(),
            r.relayed_per_s(),
            r.relayed_per_s() * msg_len as f64 * 8.0 / 1e6,
            loss,
            percentile(&o.rtt_us, 0.5),
            percentile(&o.rtt_us, 0.99),
            100.0 * o.server_cpu / secs,
            r.per_cpu_second(),
            100.0 * o.generator_cpu / secs,
            r.rss_growth_kib as f64 / r.allocations as f64,
            r.rss_peak_kib as f64 / 1024.0,
            o.send_errors,
            r.load,
        );
    }
    println!();
    let mut names: Vec<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
    names.dedup();
    for name in names {
        let median = |kind: Kind, f: fn(&Row) -> f64| {
            let mut xs: Vec<f64> = rows
                .iter()
                .filter(|r| r.scenario == name && r.server == kind)
                .map(f)
                .collect();
            xs.sort_by(f64::total_cmp);
            xs.get(xs.len() / 2).copied()
        };
        if let (Some(ours), Some(theirs), Some(our_rate), Some(their_rate)) = (
            median(Kind::Realtimer, Row::per_cpu_second),
            median(Kind::Coturn, Row::per_cpu_second),
            median(Kind::Realtimer, Row::relayed_per_s),
            median(Kind::Coturn, Row::relayed_per_s),
        ) {
            println!(
                "{name}: realtimer / coturn = {:.2}x relayed packets per server CPU-second ({ours:.0} / {theirs:.0}), {:.2}x packets/s",
                ours / theirs,
                our_rate / their_rate
            );
        }
    }
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("relay_load: {e}");
            std::process::exit(2);
        }
    };
    let mut servers = o.servers.clone();
    if servers.contains(&Kind::Coturn)
        && Command::new("turnserver")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!("relay_load: coturn's turnserver is not installed (scripts/test installs it): measuring without it");
        servers.retain(|k| *k != Kind::Coturn);
    }
    if servers.contains(&Kind::Realtimer) && !o.realtimer.exists() {
        eprintln!(
            "relay_load: no {} (cargo build --release -p realtimer-cli, or --realtimer PATH): measuring without it",
            o.realtimer.display()
        );
        servers.retain(|k| *k != Kind::Realtimer);
    }
    // The server on CPU 0, the generator on CPU 1, when there are two.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let server = Placement {
        cpu: (cpus >= 2).then_some(0),
        nice: o.nice,
    };
    let _nice = Placement {
        cpu: (cpus >= 2).then_some(1),
        nice: o.nice,
    }
    .apply_to_self();
    println!(
        "relay_load: {} CPUs, {}-byte messages, {:.1} s windows, load average {}",
        cpus,
        o.msg_len,
        o.window.as_secs_f64(),
        load_average()
    );
    let mut rows = Vec::new();
    for scenario in &o.scenarios {
        for run in 0..o.runs {
            // Alternate which server goes first.
            let mut order = servers.clone();
            if run % 2 == 1 {
                order.reverse();
            }
            for kind in order {
                match measure(&o, scenario, kind, server) {
                    Ok(row) => {
                        eprintln!(
                            "{} {}: {:.0} relayed pkts/s, {:.0} per server CPU-s",
                            scenario.name,
                            kind.name(),
                            row.relayed_per_s(),
                            row.per_cpu_second()
                        );
                        rows.push(row);
                    }
                    Err(e) => eprintln!("{} {}: failed: {e}", scenario.name, kind.name()),
                }
            }
        }
    }
    print_table(&rows, o.msg_len);
}
