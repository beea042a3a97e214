//! SFU load generator (issue 16): ROOMS rooms of `realtimer serve`'s
//! forwarding unit, each with PUBLISHERS WHIP publishers (an audio and a
//! video track each) and VIEWERS WHEP viewers receiving every publisher
//! of their room, all through the real signaling (HTTP POST of the offer,
//! PATCH of our candidate) and real UDP with ICE, DTLS and SRTP. Every
//! connection is our own sans-IO `Rtc` on its own loopback socket, driven
//! by a task of one current-thread runtime (the generator is one thread:
//! pin it to a core of its own). Driven by `crates/server/bench/sfu.sh`.
//!
//! Publishers send at fixed rates; each payload ends in its send time;
//! viewers record send-to-arrival. A direct pair (a publisher straight to
//! a viewer on loopback, no server) runs beside them at the same rates,
//! so end-to-end minus direct is what the server adds as the generator
//! sees it. The server's own figure is its `realtimer_sfu_dwell_seconds`
//! histogram (socket read to send, per datagram sent), scraped from
//! `/metrics` before and after the measured window and diffed.
//!
//! Figures over the window (after WARMUP_S): forwarded packets per server
//! CPU-second (`realtimer_sfu_forwarded_packets_total` over the CPU of
//! /proc/SERVER_PID), dwell p50/p99/p99.9, end-to-end and direct
//! latency, server RSS per viewer (after all viewers connected minus
//! before any), and how long server and generator waited for a CPU
//! (/proc/PID/task/*/schedstat).
//!
//! Env (defaults): URL (http://127.0.0.1:8080), SERVER_PID, ROOMS (1),
//! PUBLISHERS (1), VIEWERS (1000) per room, AUDIO_PPS (50), AUDIO_BYTES
//! (120), VIDEO_PPS (100), VIDEO_BYTES (1000), WARMUP_S (5), SECONDS
//! (10), CONNECT_CONCURRENCY (16: viewers signaling or in their ICE
//! and DTLS handshakes at once), CONNECT_TIMEOUT_S (180), LABEL,
//! JSON_OUT (a file to append the result to, one JSON object a line).
// A benchmark driver owns the clock and reports on stdout.
#![allow(clippy::disallowed_methods, clippy::print_stdout, clippy::print_stderr)]

mod client;
#[path = "../common/mod.rs"]
mod common;
mod metrics;
#[path = "../signaling_load/procfs.rs"]
mod procfs;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use realtimer_proto::Certificate;
use serde_json::json;

use self::client::{Client, Rates, Recorder, Shared};
use self::common::{env, now};
use self::metrics::Scrape;

/// Longest a viewer holds its connect permit waiting for ICE and DTLS
/// (a slower one goes on connecting without it).
const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);

/// What a process cost so far.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    cpu_s: f64,
    wait_s: f64,
}

fn cost(pid: &str) -> Cost {
    Cost {
        cpu_s: procfs::cpu_s(pid).unwrap_or(f64::NAN),
        wait_s: procfs::cpu_wait_s(pid).unwrap_or(f64::NAN),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run());
}

async fn run() {
    let base: String = env("URL", "http://127.0.0.1:8080".to_owned());
    let server_pid: String = env("SERVER_PID", String::new());
    let rooms: usize = env("ROOMS", 1);
    let publishers: usize = env("PUBLISHERS", 1);
    let viewers: usize = env("VIEWERS", 1000);
    let rates = Rates {
        audio_pps: env("AUDIO_PPS", 50),
        audio_bytes: env("AUDIO_BYTES", 120),
        video_pps: env("VIDEO_PPS", 100),
        video_bytes: env("VIDEO_BYTES", 1000),
    };
    let warmup = Duration::from_secs_f64(env("WARMUP_S", 5.0));
    let window = Duration::from_secs_f64(env("SECONDS", 10.0));
    let concurrency: usize = env("CONNECT_CONCURRENCY", 16);
    let connect_timeout = Duration::from_secs_f64(env("CONNECT_TIMEOUT_S", 180.0));
    let label: String = env("LABEL", format!("{rooms}x({publishers}+{viewers})"));

    let epoch = now();
    let certificate = Certificate::generate(std::time::SystemTime::now()).expect("a certificate");
    let shared: Shared = Rc::new(RefCell::new(Recorder::default()));
    let mut seed = 1u64;
    let mut next_seed = || {
        seed += 1;
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    };

    // Publishers first: a WHEP viewer gets the tracks that exist when it
    // joins.
    let started = now();
    for r in 0..rooms {
        for _ in 0..publishers {
            let c = Client::new(
                &certificate,
                next_seed(),
                Some(rates),
                0,
                epoch,
                shared.clone(),
            )
            .await
            .expect("a socket");
            let c = client::connect(c, &base, "whip", &format!("load-{r}"))
                .await
                .unwrap_or_else(|e| panic!("publisher of room {r}: {e}"));
            tokio::task::spawn_local(c.run());
        }
    }
    let want = rooms * publishers;
    wait_connected(&shared, want, connect_timeout).await;
    // Give their first packets time to publish the tracks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = procfs::memory(&server_pid).unwrap_or_default().rss_mib;

    // Viewers, CONNECT_CONCURRENCY connecting at a time.
    let semaphore = Rc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let refused = Rc::new(RefCell::new(Vec::<String>::new()));
    for r in 0..rooms {
        for _ in 0..viewers {
            let c = Client::new(
                &certificate,
                next_seed(),
                None,
                publishers,
                epoch,
                shared.clone(),
            )
            .await
            .expect("a socket");
            let base = base.clone();
            let semaphore = semaphore.clone();
            let refused = refused.clone();
            let shared = shared.clone();
            tokio::task::spawn_local(async move {
                let permit = semaphore.acquire().await;
                match client::connect(c, &base, "whep", &format!("load-{r}")).await {
                    Ok(mut c) => {
                        // The permit is held through ICE and DTLS too:
                        // a storm of handshakes beside a server already
                        // forwarding to hundreds starved some past their
                        // timeouts (963 of 1,001 connected, 40 failed).
                        let connected = c.connected();
                        tokio::task::spawn_local(c.run());
                        let _ = tokio::time::timeout(HANDSHAKE_WAIT, connected).await;
                        drop(permit);
                    }
                    Err(e) => {
                        shared.borrow_mut().failed += 1;
                        refused.borrow_mut().push(e);
                    }
                }
            });
        }
    }
    let want = rooms * (publishers + viewers);
    let connected = wait_connected(&shared, want, connect_timeout).await;
    let setup_s = now().duration_since(started).as_secs_f64();
    let refusals = refused.borrow().clone();
    if connected < want {
        eprintln!(
            "only {connected} of {want} connections connected in {setup_s:.1} s ({} failed; {} refused by signaling{})",
            shared.borrow().failed,
            refusals.len(),
            refusals.first().map(|e| format!(", first: {e}")).unwrap_or_default()
        );
    }

    // The direct reference: one publisher straight to one viewer.
    let direct: Shared = Rc::new(RefCell::new(Recorder::default()));
    let mut sender = Client::new(
        &certificate,
        next_seed(),
        Some(rates),
        0,
        epoch,
        direct.clone(),
    )
    .await
    .expect("a socket");
    let mut receiver = Client::new(&certificate, next_seed(), None, 1, epoch, direct.clone())
        .await
        .expect("a socket");
    let offer = sender.offer().expect("an offer");
    let answer = receiver.accept(offer).expect("an answer");
    sender.answer(answer.sdp).expect("the answer taken");
    for c in receiver.candidates() {
        sender.add_candidate(&c);
    }
    for c in sender.candidates() {
        receiver.add_candidate(&c);
    }
    tokio::task::spawn_local(sender.run());
    tokio::task::spawn_local(receiver.run());

    tokio::time::sleep(warmup).await;
    let rss_viewers = procfs::memory(&server_pid).unwrap_or_default().rss_mib;

    // The window.
    let scrape_before = Scrape::get(&base).await;
    let server_before = cost(&server_pid);
    let generator_before = cost("self");
    let load_before = procfs::loadavg();
    let machine_before = procfs::machine();
    let t0 = now();
    shared.borrow_mut().measuring = true;
    direct.borrow_mut().measuring = true;
    tokio::time::sleep(window).await;
    shared.borrow_mut().measuring = false;
    direct.borrow_mut().measuring = false;
    let elapsed = now().duration_since(t0).as_secs_f64();
    let server_after = cost(&server_pid);
    let generator_after = cost("self");
    let machine_after = procfs::machine();
    let scrape_after = Scrape::get(&base).await;
    let memory = procfs::memory(&server_pid).unwrap_or_default();

    let server_cpu = server_after.cpu_s - server_before.cpu_s;
    let server_wait = server_after.wait_s - server_before.wait_s;
    let generator_cpu = generator_after.cpu_s - generator_before.cpu_s;
    let generator_wait = generator_after.wait_s - generator_before.wait_s;
    let machine_busy = (machine_after.busy_s - machine_before.busy_s)
        / (machine_after.total_s - machine_before.total_s).max(1e-9);
    let forwarded = scrape_after
        .forwarded
        .saturating_sub(scrape_before.forwarded);
    let dropped = scrape_after.dropped.saturating_sub(scrape_before.dropped);
    let dwell = scrape_after.dwell_since(&scrape_before);
    let r = shared.borrow();
    let d = direct.borrow();
    let e2e = r.latency.summary();
    let reference = d.latency.summary();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let per_cpu_s = forwarded as f64 / server_cpu;
    let viewers_total = rooms * viewers;
    let rss_per_viewer_kib = (rss_viewers - rss_before) * 1024.0 / viewers_total.max(1) as f64;

    println!("== {label}: {rooms} room(s) x ({publishers} publishers + {viewers} viewers); {connected}/{want} connected in {setup_s:.1} s");
    println!(
        "   offered {:.0} pkt/s per publisher; window {elapsed:.1} s; load average {load_before:.1}; machine busy {:.0}%",
        f64::from(rates.audio_pps + rates.video_pps),
        machine_busy * 100.0
    );
    println!(
        "   forwarded {forwarded} ({:.0}/s), dropped queue-full {dropped}; server CPU {server_cpu:.2} s ({:.0}% of a core) -> {per_cpu_s:.0} forwarded pkts per server CPU-second",
        forwarded as f64 / elapsed,
        server_cpu / elapsed * 100.0
    );
    println!(
        "   viewers received {} ({:.0}/s; {:.1}% of forwarded); publishers wrote {}, refused {}",
        r.received,
        r.received as f64 / elapsed,
        r.received as f64 * 100.0 / forwarded.max(1) as f64,
        r.sent,
        r.refused
    );
    println!(
        "   server dwell (read to send): {} datagrams, p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms",
        dwell.count,
        ms(dwell.p50),
        ms(dwell.p99),
        ms(dwell.p999)
    );
    println!(
        "   end to end: p50 {:.3} ms, p99 {:.3} ms; direct pair: p50 {:.3} ms, p99 {:.3} ms ({} packets)",
        ms(e2e.p50),
        ms(e2e.p99),
        ms(reference.p50),
        ms(reference.p99),
        reference.count
    );
    println!(
        "   server RSS {:.1} MiB (peak {:.1}); before viewers {rss_before:.1} MiB, with them {rss_viewers:.1} MiB: {rss_per_viewer_kib:.1} KiB per viewer",
        memory.rss_mib, memory.peak_mib
    );
    println!(
        "   waited for a CPU: server {:.1}% of the window, generator {:.1}% (generator CPU {:.0}% of a core)",
        server_wait / elapsed * 100.0,
        generator_wait / elapsed * 100.0,
        generator_cpu / elapsed * 100.0
    );
    let result = json!({
        "label": label,
        "rooms": rooms, "publishers": publishers, "viewers": viewers,
        "audio_pps": rates.audio_pps, "video_pps": rates.video_pps,
        "audio_bytes": rates.audio_bytes, "video_bytes": rates.video_bytes,
        "connected": connected, "wanted": want, "setup_s": setup_s,
        "window_s": elapsed, "loadavg": load_before, "machine_busy": machine_busy,
        "forwarded": forwarded, "dropped_queue_full": dropped,
        "server_cpu_s": server_cpu, "forwarded_per_cpu_s": per_cpu_s,
        "received": r.received, "sent": r.sent, "refused": r.refused,
        "dwell_p50_ms": ms(dwell.p50), "dwell_p99_ms": ms(dwell.p99), "dwell_p999_ms": ms(dwell.p999),
        "e2e_p50_ms": ms(e2e.p50), "e2e_p99_ms": ms(e2e.p99),
        "direct_p50_ms": ms(reference.p50), "direct_p99_ms": ms(reference.p99),
        "rss_mib": memory.rss_mib, "rss_peak_mib": memory.peak_mib,
        "rss_per_viewer_kib": rss_per_viewer_kib,
        "server_wait_pct": server_wait / elapsed * 100.0,
        "generator_wait_pct": generator_wait / elapsed * 100.0,
        "generator_cpu_pct": generator_cpu / elapsed * 100.0,
    });
    if let Ok(path) = std::env::var("JSON_OUT") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("JSON_OUT writable");
        writeln!(file, "{result}").expect("JSON_OUT written");
    }
}

/// Waits until `want` connections connected or `limit` passed; how many did.
async fn wait_connected(shared: &Shared, want: usize, limit: Duration) -> usize {
    let until = now() + limit;
    loop {
        let (connected, failed) = {
            let r = shared.borrow();
            (r.connected, r.failed)
        };
        if connected >= want || now() >= until || connected + failed >= want {
            return connected;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
