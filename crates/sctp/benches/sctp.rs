//! SCTP figures: goodput through the simulated network against a TCP-like
//! reference on the same link, and CPU cost per byte with no network.
//! Run with `cargo bench -p realtimer-sctp`.
#![allow(missing_docs, clippy::disallowed_methods, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use realtimer_netsim::{LinkConfig, Loss};
use realtimer_sctp::{Association, Reliability, SctpConfig, SctpEvent};

const LINK_BPS: u64 = 100_000_000;
const ONE_WAY: Duration = Duration::from_millis(50);

/// Bytes delivered per second between `warmup` and `warmup + window`.
fn goodput(loss: f64, seed: u64, warmup: Duration, window: Duration) -> f64 {
    // The bottleneck: 100 Mbit/s with a queue of one bandwidth-delay product.
    let bdp = (LINK_BPS / 8) as usize / 10;
    let link = LinkConfig::default()
        .delay(ONE_WAY)
        .bandwidth(LINK_BPS, bdp)
        .loss(if loss > 0.0 {
            Loss::Independent(loss)
        } else {
            Loss::None
        });
    let mut p = Pair::new(seed, link, true, true);
    p.connect();
    let chunk = message(0, 64 * 1024);
    let start = p.net.now();
    let mut mark: Option<(Instant, usize)> = None;
    loop {
        // Keep the send buffer topped up.
        let buffered = p.node(p.a).association.buffered_amount(0);
        if buffered < 8 * 1024 * 1024 {
            let batch: Vec<Bytes> = (0..32).map(|_| chunk.clone()).collect();
            p.send_from_a(&batch, 0, false, Reliability::Reliable);
        }
        p.run_until(Duration::from_millis(20), |_, _| false);
        let now = p.net.now();
        let received = p.node(p.b).received_bytes();
        if std::env::var("SCTP_BENCH_DEBUG").is_ok() && (now - start).as_millis() % 500 < 20 {
            println!(
                "{:?} recv {} {:?}",
                now - start,
                received,
                p.node(p.a).association.sender_stats()
            );
        }
        // Free what was checked: only the count matters here.
        p.node_mut(p.b).messages.clear();
        let total = mark.map_or(0, |(_, t)| t) + received;
        match mark {
            None if now - start >= warmup => mark = Some((now, 0)),
            None => {}
            Some((t0, _)) => {
                mark = Some((t0, total));
                if now - t0 >= window {
                    return total as f64 / (now - t0).as_secs_f64();
                }
            }
        }
    }
}

/// Mathis et al.: a Reno flow's rate ≈ MSS / RTT · sqrt(3/2) / sqrt(p).
fn mathis(mss: f64, rtt: f64, p: f64) -> f64 {
    mss / rtt * (1.5f64).sqrt() / p.sqrt()
}

fn cpu_cost(message_size: usize, total: usize) -> f64 {
    let start = Instant::now();
    let mut a = Association::new(
        SctpConfig {
            seed: 1,
            ..SctpConfig::default()
        },
        start,
    );
    let mut b = Association::new(
        SctpConfig {
            seed: 2,
            ..SctpConfig::default()
        },
        start,
    );
    a.set_remote_max_message_size(message_size);
    a.connect(start);
    let payload = Bytes::from(vec![7u8; message_size]);
    let mut delivered = 0usize;
    let mut now = start;
    let t0 = Instant::now();
    let mut queued = 0usize;
    while delivered < total {
        while queued < total && a.buffered_amount(0) < 4 * 1024 * 1024 {
            if a.send(now, 0, 53, payload.clone(), false, Reliability::Reliable)
                .is_err()
            {
                break;
            }
            queued += message_size;
        }
        let mut moved = false;
        while let Some(p) = a.poll_transmit() {
            b.handle_packet(now, &p);
            moved = true;
        }
        while let Some(p) = b.poll_transmit() {
            a.handle_packet(now, &p);
            moved = true;
        }
        while let Some(e) = b.poll_event() {
            if let SctpEvent::Message(m) = e {
                delivered += m.payload.len();
            }
        }
        if !moved {
            now += Duration::from_millis(1);
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
    }
    total as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    let mss = (SctpConfig::default().max_packet_size - 28) as f64;
    let rtt = 2.0 * ONE_WAY.as_secs_f64() + 0.002;
    let capacity =
        LINK_BPS as f64 / 8.0 * mss / (SctpConfig::default().max_packet_size + 28) as f64;
    println!("SCTP goodput, one reliable ordered stream, 100 Mbit/s, 102 ms RTT (virtual time)");
    println!(
        "{:<6} {:>14} {:>22} {:>7}",
        "loss", "goodput", "reference", "ratio"
    );
    let lossless = goodput(0.0, 1, Duration::from_secs(5), Duration::from_secs(10));
    println!(
        "{:<6} {:>11.2} Mbit/s {:>11.2} Mbit/s (link) {:>6.2}x",
        "0%",
        lossless * 8e-6,
        capacity * 8e-6,
        lossless / capacity
    );
    let mut lossy = Vec::new();
    for seed in 1..=3 {
        lossy.push(goodput(
            0.01,
            seed,
            Duration::from_secs(5),
            Duration::from_secs(30),
        ));
    }
    let mean = lossy.iter().sum::<f64>() / lossy.len() as f64;
    let reference = mathis(mss, rtt, 0.01).min(capacity);
    println!(
        "{:<6} {:>11.2} Mbit/s {:>11.2} Mbit/s (Mathis) {:>5.2}x  (mean of 3 seeds)",
        "1%",
        mean * 8e-6,
        reference * 8e-6,
        mean / reference
    );

    println!("\nSCTP CPU cost, no network, no DTLS (one core, both ends):");
    for size in [1024usize, 64 * 1024] {
        let rate = cpu_cost(size, 512 * 1024 * 1024);
        println!("  {:>6} B messages: {:>8.0} MB/s", size, rate / 1e6);
    }
}
