//! Runs the RFC 8867 scenario suite and prints, per scenario: time to 90%
//! of capacity, utilization, 95th percentile queuing delay and loss (and,
//! where the capacity drops, recovery and loss after the drop); writes an
//! SVG plot per scenario to `target/bwe-scenarios/`. Virtual time: the
//! figures do not depend on the machine.
//!
//! `cargo bench -p realtimer-bwe-sim --bench scenarios [-- NAME]`; with
//! `BWE_TRACE=1` it also prints each 100 ms of the first flow.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use realtimer_bwe_sim::{run, svg, Scenario};

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let dir = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("bwe-scenarios");
    let _ = std::fs::create_dir_all(&dir);
    println!(
        "{:<12} {:>9} {:>8} {:>9} {:>7} {:>10} {:>10} {:>9}",
        "scenario", "to 90%", "util", "p95 queue", "loss", "recovery", "drop loss", "fairness"
    );
    for scenario in Scenario::all() {
        if filter
            .as_ref()
            .is_some_and(|f| !scenario.name.contains(f.as_str()))
        {
            continue;
        }
        let outcome = run(&scenario);
        let m = outcome.metrics();
        let opt_ms = |d: Option<std::time::Duration>| {
            d.map_or("-".to_owned(), |d| format!("{} ms", d.as_millis()))
        };
        println!(
            "{:<12} {:>9} {:>7.1}% {:>6} ms {:>6.2}% {:>10} {:>10} {:>9}",
            scenario.name,
            opt_ms(m.time_to_90),
            m.utilization * 100.0,
            m.p95_queuing.as_millis(),
            m.loss * 100.0,
            opt_ms(m.recovery_after_drop),
            m.loss_after_drop
                .map_or("-".to_owned(), |l| format!("{:.2}%", l * 100.0)),
            m.fairness.map_or("-".to_owned(), |f| format!("{f:.2}")),
        );
        if std::env::var_os("BWE_TRACE").is_some() {
            print_trace(&outcome);
        }
        let path = dir.join(format!("{}.svg", scenario.name));
        if let Err(e) = std::fs::write(&path, svg(&outcome)) {
            println!("  could not write {}: {e}", path.display());
        }
    }
    println!("plots in {}", dir.display());
}

/// Each 100 ms of the first flow: capacity, target, sent and received
/// rate (kbit/s) and the largest one-way delay (ms).
fn print_trace(outcome: &realtimer_bwe_sim::Outcome) {
    let flow = &outcome.flows[0];
    let kbps = |bytes: u64| bytes * 8 / 100;
    for (i, sent) in flow.sent.iter().enumerate() {
        let at = realtimer_bwe_sim::BIN * i as u32;
        let received = flow.received.get(i).copied().unwrap_or_default();
        println!(
            "  {:>6.1}s cap {:>5} target {:>5} sent {:>5} recv {:>5} delay {:>4}",
            at.as_secs_f64(),
            outcome.scenario.capacity_at(at).as_bps() / 1000,
            sent.target.as_bps() / 1000,
            kbps(sent.sent_bytes),
            kbps(received.bytes),
            received.max_delay.as_millis()
        );
    }
}
