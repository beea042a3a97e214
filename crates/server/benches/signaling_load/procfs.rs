//! What the load costs, read from /proc: CPU time and memory of a process
//! (the server, the generator itself) and how busy the whole machine was,
//! so a run disturbed by other programs can be told apart.

use std::fs;

use serde::{Deserialize, Serialize};

/// Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// CPU seconds (user + system, all threads) of process `pid` ("self" for
/// this one).
pub(crate) fn cpu_s(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3:
    // utime is field 14, stime field 15.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / TICKS_PER_S)
}

/// Seconds the threads of process `pid` spent runnable but waiting for a
/// CPU (the second field of each thread's schedstat): time a busy machine
/// took from it, which shows up in its latency.
pub(crate) fn cpu_wait_s(pid: &str) -> Option<f64> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let ns: u64 = tasks
        .filter_map(|task| {
            let stat = fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            stat.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum();
    Some(ns as f64 / 1e9)
}

/// Resident memory of process `pid` now and at its peak (VmRSS, VmHWM).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Memory {
    pub(crate) rss_mib: f64,
    pub(crate) peak_mib: f64,
}

pub(crate) fn memory(pid: &str) -> Option<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<f64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        rss_mib: kib("VmRSS:")? / 1024.0,
        peak_mib: kib("VmHWM:")? / 1024.0,
    })
}

/// The machine's CPU time so far, in seconds summed over its cores.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MachineTime {
    pub(crate) busy_s: f64,
    pub(crate) total_s: f64,
}

pub(crate) fn machine() -> MachineTime {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    // cpu  user nice system idle iowait irq softirq steal (guest is in user)
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    MachineTime {
        busy_s: (total - idle) / TICKS_PER_S,
        total_s: total / TICKS_PER_S,
    }
}

/// The 1-minute load average.
pub(crate) fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}
