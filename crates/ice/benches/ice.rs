//! ICE figures: virtual-time connect latency over many seeds (LAN, NAT with
//! STUN, 30 % loss), CPU time per connectivity check, and the memory of an
//! idle connected agent. Prints a table; run with `cargo bench -p realtimer-ice`.
#![allow(missing_docs, clippy::disallowed_methods, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

use common::*;
use realtimer_ice::{IceAgent, IceConfig, IceConnectionState};
use realtimer_netsim::NatConfig;

/// Counts heap bytes, to weigh an agent.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn live_bytes() -> isize {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize + stats.bytes_reallocated
}

enum Scenario {
    Lan,
    NatWithStun,
    Loss30,
}

/// Connect time (both sides connected) from the start, in virtual time;
/// `None` when it did not connect within 30 s.
fn connect_time(scenario: &Scenario, seed: u64) -> Option<Duration> {
    let mut s = match scenario {
        Scenario::Lan => lan(seed),
        Scenario::NatWithStun => behind_nats(
            seed,
            NatConfig::port_restricted_cone(ip("198.51.100.1")),
            NatConfig::port_restricted_cone(ip("198.51.100.2")),
            IceConfig::default(),
        ),
        Scenario::Loss30 => lossy(seed, 0.3),
    };
    s.signaling_delay = Duration::ZERO;
    if !s.both_connected(Duration::from_secs(30)) {
        if std::env::var("ICE_BENCH_DEBUG").is_ok() {
            println!(
                "seed {seed}: a {:?} {:?} b {:?} {:?}",
                s.node(s.a).state(),
                s.node(s.a).agent.failure_reason(),
                s.node(s.b).state(),
                s.node(s.b).agent.failure_reason()
            );
        }
        return None;
    }
    let a = s.node(s.a).connected_at()?;
    let b = s.node(s.b).connected_at()?;
    Some(a.max(b) - s.start)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn latency_table() {
    println!("connect latency, virtual time (both sides connected; signaling instant)");
    println!(
        "{:<14} {:>6} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "scenario", "seeds", "median", "p90", "p99", "max", "failed"
    );
    for (name, scenario, seeds) in [
        ("LAN", Scenario::Lan, 200u64),
        ("NAT+STUN", Scenario::NatWithStun, 200),
        ("30% loss", Scenario::Loss30, 1000),
    ] {
        let mut times = Vec::new();
        let mut failed = 0;
        for seed in 0..seeds {
            match connect_time(&scenario, seed) {
                Some(t) => times.push(t),
                None => failed += 1,
            }
        }
        times.sort();
        println!(
            "{:<14} {:>6} {:>10.1?} {:>10.1?} {:>10.1?} {:>10.1?} {:>7}",
            name,
            seeds,
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            percentile(&times, 0.99),
            times.last().copied().unwrap_or_default(),
            failed
        );
        if matches!(scenario, Scenario::Loss30) {
            // The distribution, in 250 ms buckets.
            let mut buckets = std::collections::BTreeMap::new();
            for t in &times {
                *buckets.entry(t.as_millis() / 250).or_insert(0u32) += 1;
            }
            let line: Vec<String> = buckets
                .iter()
                .map(|(b, n)| format!("{}-{}ms:{}", b * 250, (b + 1) * 250, n))
                .collect();
            println!("  30% loss histogram: {}", line.join(" "));
        }
    }
}

/// Two agents joined by an instant in-memory wire, pumped until idle.
fn pump(a: &mut IceAgent, b: &mut IceAgent, now: Instant) -> usize {
    let mut moved = 0;
    loop {
        let mut any = false;
        while let Some(t) = a.poll_transmit() {
            b.handle_receive(now, t.source, t.destination, &t.contents);
            any = true;
            moved += 1;
        }
        while let Some(t) = b.poll_transmit() {
            a.handle_receive(now, t.source, t.destination, &t.contents);
            any = true;
            moved += 1;
        }
        if !any {
            return moved;
        }
    }
}

fn connected_pair(now: Instant) -> (IceAgent, IceAgent) {
    let cfg = |seed| IceConfig {
        seed,
        ..IceConfig::default()
    };
    let mut a = IceAgent::new(cfg(1), true);
    let mut b = IceAgent::new(cfg(2), false);
    a.gather(now, &["192.0.2.1:5000".parse().unwrap()]);
    b.gather(now, &["192.0.2.2:6000".parse().unwrap()]);
    a.set_remote_credentials(b.local_credentials().clone());
    b.set_remote_credentials(a.local_credentials().clone());
    let ca: Vec<_> = a.local_candidates().map(|c| c.to_sdp(None)).collect();
    let cb: Vec<_> = b.local_candidates().map(|c| c.to_sdp(None)).collect();
    for c in &cb {
        a.add_remote_candidate(now, c).unwrap();
    }
    for c in &ca {
        b.add_remote_candidate(now, c).unwrap();
    }
    a.add_remote_end_of_candidates();
    b.add_remote_end_of_candidates();
    let mut t = now;
    for _ in 0..100 {
        a.handle_timeout(t);
        b.handle_timeout(t);
        pump(&mut a, &mut b, t);
        if a.connection_state() == IceConnectionState::Completed
            && b.connection_state() == IceConnectionState::Completed
        {
            break;
        }
        t += Duration::from_millis(10);
    }
    assert_eq!(a.connection_state(), IceConnectionState::Completed);
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    (a, b)
}

fn check_cost() {
    // One consent check round trip: request built and signed, answered with
    // integrity checked on both sides, response matched.
    let start = Instant::now();
    let (mut a, mut b) = connected_pair(start);
    let mut now = start;
    let rounds = 20_000u32;
    let mut exchanged = 0;
    let t0 = Instant::now();
    for _ in 0..rounds {
        now += Duration::from_secs(7); // past the next consent check
        a.handle_timeout(now);
        b.handle_timeout(now);
        exchanged += pump(&mut a, &mut b, now);
    }
    let elapsed = t0.elapsed();
    let per_check = elapsed / exchanged.max(1) as u32 * 2;
    black_box((&a, &b));
    println!("\nconnectivity/consent check CPU: {per_check:.2?} per request+response round trip ({exchanged} datagrams in {elapsed:.1?})");
}

fn idle_memory() {
    let now = Instant::now();
    let before = live_bytes();
    let (a, b) = connected_pair(now);
    let after = live_bytes();
    println!(
        "idle connected agent: {} bytes of heap each (two agents: {} bytes; plus {} bytes inline)",
        (after - before) / 2,
        after - before,
        std::mem::size_of::<IceAgent>()
    );
    drop((a, b));
}

fn main() {
    latency_table();
    check_cost();
    idle_memory();
}
