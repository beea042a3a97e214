//! What the benchmarks say about the machine they ran on: this process'
//! CPU time, how long its threads waited for a CPU, and the load average
//! (the machine may be shared, and a figure says how much that disturbed
//! it).

/// CPU seconds (user and system) this process used so far, to the
/// nanosecond (`CLOCK_PROCESS_CPUTIME_ID`; /proc/self/stat counts ticks
/// of 10 ms, too coarse for a run of a few hundred CPU milliseconds).
pub fn process_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
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

/// Voluntary context switches of this process' live threads so far
/// (/proc/self/task/*/status): each is a thread that parked and a wakeup
/// later, how often the work was handed between threads or waited for.
/// (Involuntary ones, a thread preempted, say how busy the machine was.)
pub fn context_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|s| {
            s.lines()
                .filter(|l| l.starts_with("voluntary_ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}
