//! Memory benchmark: 1,000 connected idle pairs in one process (RSS per
//! connection, from /proc/self/status VmRSS before and after), then 10,000
//! create/connect/close cycles (RSS before and after: it must stay flat).
//!
//! `cargo bench -p realtimer --bench scale`. Env: `REALTIMER_SCALE_PAIRS`
//! and `REALTIMER_SCALE_CYCLES` change the counts; each part runs in a
//! process of its own.
// A benchmark measures wall-clock time and reports on stdout.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use realtimer::{ChannelData, DataChannelInit};
use tokio::time::timeout;

use realtimer_test_support::pair::{close, connect_pair, Connected};

const PAIRS: usize = 1000;
const CYCLES: usize = 10_000;
/// Pairs connected (or cycled) at once.
const PARALLEL: usize = 16;
/// Cycles before the first RSS reading: allocator pools, thread-local
/// buffers and the runtime's own growth are not leaks.
const WARM_UP: usize = 200;
/// Bound on each part.
const MAX_TIME: Duration = Duration::from_secs(300);

/// VmRSS of this process in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn connect_many(n: usize) -> Vec<Connected> {
    join_all((0..n).map(|_| connect_pair("idle", DataChannelInit::default(), None))).await
}

/// Connects `pairs` pairs, lets them idle, checks each still carries a
/// message, and reports RSS per connection.
async fn idle_pairs(pairs: usize) {
    let before = rss_kib();
    let t0 = Instant::now();
    let mut all = Vec::with_capacity(pairs);
    while all.len() < pairs && t0.elapsed() < MAX_TIME {
        all.extend(connect_many(PARALLEL.min(pairs - all.len())).await);
    }
    let connected = t0.elapsed();
    // Idle long enough for the first ICE consent checks.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = rss_kib();
    let mut open_ms: Vec<f64> = all
        .iter()
        .map(|p| p.open_offerer.as_secs_f64() * 1e3)
        .collect();
    open_ms.sort_by(f64::total_cmp);
    let alive = join_all(all.iter().map(|p| async {
        let ping = ChannelData::Binary(Bytes::from_static(b"ping"));
        p.dc_a.send(ping.clone()).await.is_ok()
            && timeout(Duration::from_secs(5), p.dc_b.recv()).await == Ok(Some(ping))
    }))
    .await
    .into_iter()
    .filter(|ok| *ok)
    .count();
    let connections = 2 * all.len();
    println!(
        "{} idle pairs ({connections} connections) connected in {:.1} s, open median {:.1} ms; {alive} pairs still carry a message after 6 s idle",
        all.len(),
        connected.as_secs_f64(),
        open_ms.get(open_ms.len() / 2).copied().unwrap_or(f64::NAN),
    );
    println!(
        "RSS {before} KiB -> {after} KiB: {:.1} KiB per connection (goal < 100)",
        after.saturating_sub(before) as f64 / connections.max(1) as f64
    );
    for chunk in all.chunks(PARALLEL * 4) {
        join_all(chunk.iter().map(|p| async {
            p.dc_a.close().await;
            p.a.close().await;
            p.b.close().await;
        }))
        .await;
    }
    drop(all);
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("RSS after closing them: {} KiB", rss_kib());
}

/// Runs `n` create/connect/close cycles, `PARALLEL` at a time.
async fn cycle(n: usize, t0: Instant) -> usize {
    let mut done = 0;
    while done < n && t0.elapsed() < MAX_TIME {
        let batch = PARALLEL.min(n - done);
        for p in connect_many(batch).await {
            close(p).await;
        }
        done += batch;
    }
    done
}

async fn cycles(n: usize) {
    let t0 = Instant::now();
    cycle(WARM_UP, t0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let mut readings = vec![(0, before)];
    let mut done = 0;
    for quarter in 1..=4 {
        done += cycle(n * quarter / 4 - done, t0).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        readings.push((done, rss_kib()));
    }
    let after = rss_kib();
    println!(
        "{done} create/connect/close cycles in {:.1} s (after {WARM_UP} warm-up cycles)",
        t0.elapsed().as_secs_f64()
    );
    println!(
        "RSS before/after: {before} KiB -> {after} KiB ({:+} KiB, {:+.2} KiB per 1000 cycles); readings {readings:?}",
        after as i64 - before as i64,
        (after as f64 - before as f64) / done.max(1) as f64 * 1000.0
    );
}

/// Runs one part in this process (`REALTIMER_SCALE_PART` set), or each
/// part in a child process of its own, so one part's heap does not hide
/// the other's growth.
fn main() {
    let part = std::env::var("REALTIMER_SCALE_PART").ok();
    if part.is_none() {
        println!("== realtimer memory (Rust <-> Rust, loopback, one process per part) ==");
    }
    for name in ["pairs", "cycles"] {
        match &part {
            Some(p) if p == name => run_part(name),
            Some(_) => {}
            None => {
                let exe = std::env::current_exe().expect("own path");
                let status = std::process::Command::new(exe)
                    .env("REALTIMER_SCALE_PART", name)
                    .status()
                    .expect("part runs");
                assert!(status.success(), "part {name}: {status}");
            }
        }
    }
}

fn run_part(name: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if name == "pairs" {
        rt.block_on(idle_pairs(count("REALTIMER_SCALE_PAIRS", PAIRS)));
    } else {
        rt.block_on(cycles(count("REALTIMER_SCALE_CYCLES", CYCLES)));
    }
}
