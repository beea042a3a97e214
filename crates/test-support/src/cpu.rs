//! What the benchmarks say about the machine they ran on: this process'
//! CPU time, how long its threads waited for a CPU, and the load average
//! (the machine may be shared, and a figure says how much that disturbed
//! it).

/// CPU seconds (user and system) this process used so far
/// (/proc/self/stat fields 14 and 15, in clock ticks of 1/100 s).
pub fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let mut fields = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace();
    // After the command name: state is field 3, utime 14, stime 15.
    let utime: f64 = fields.nth(11).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    let stime: f64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0.0);
    (utime + stime) / 100.0
}

/// Seconds this process' threads waited for a CPU while runnable (the
/// second field of each thread's /proc/self/task/*/schedstat, in ns).
pub fn cpu_wait_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

/// The 1, 5 and 15 minute load averages (/proc/loadavg).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
