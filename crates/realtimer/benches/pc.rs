//! PeerConnection benchmark: data channel open time, 64 KiB reliable,
//! 1 KiB reliable (messages/s) and 64 KiB unordered unreliable
//! (maxRetransmits 0) throughput, Rust ↔ Rust over loopback, measured the way
//! /work/shared/bench/libwebrtc's bench-core.js measures them; the
//! libwebrtc pair is run in the same invocation as the reference (loopback
//! figures are noisy, so only ratios from one run mean anything), one node
//! process per phase so that GNU time gives each phase's CPU time: MB per
//! CPU-second moves much less with the other load on a shared machine.
//!
//! `cargo bench -p realtimer --bench pc`. Env: `REALTIMER_BENCH_NO_REF=1`
//! skips the reference; `REALTIMER_BENCH_ONLY=reliable64k,small1k` runs
//! only those phases (keys: setup, reliable64k, small1k, unordered64k) and
//! no reference, for profiling.
// A benchmark measures wall-clock time and reports on stdout.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use realtimer::{Certificate, ChannelData, DataChannelInit};
use serde_json::Value;

use realtimer_test_support::cpu::process_cpu_seconds;
use realtimer_test_support::pair::{close, connect_pair};
use tokio::sync::watch;
use tokio::time::timeout;

const OPEN_RUNS: usize = 20;
const BULK_SIZE: usize = 64 * 1024;
/// bench-core.js defaults: 256 MiB or 10 s (a 64 MiB run lasted a quarter
/// second here, too short to average out the other load on the machine).
const BULK_MAX_BYTES: usize = 256 * 1024 * 1024;
const BULK_MAX_TIME: Duration = Duration::from_secs(10);
/// bench-core.js: stop sending above 4 MiB buffered, resume at 1 MiB.
const HIGH_WATER: usize = 4 * 1024 * 1024;
const LOW_WATER: usize = 1024 * 1024;
/// bench-core.js defaults for 1 KiB messages.
const SMALL_SIZE: usize = 1024;
const SMALL_MAX_MSGS: usize = 500_000;
const SMALL_MAX_TIME: Duration = Duration::from_secs(5);
/// Unreliable phases end when the receiver saw nothing for this long.
const IDLE: Duration = Duration::from_millis(300);
/// The longest wait for the receiver after the last send.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
const REF_DIR: &str = "/work/shared/bench/libwebrtc";
/// GNU time, for the reference's CPU time (Debian package `time`).
const GNU_TIME: &str = "/usr/bin/time";

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    }
}

/// Median open time in ms over `OPEN_RUNS`, after one discarded warm-up.
/// `certificate`: one both connections use (else each generates its own,
/// as browsers do).
async fn open_time_ms(certificate: Option<&Certificate>) -> (f64, Vec<f64>) {
    let mut samples = Vec::new();
    for i in 0..=OPEN_RUNS {
        let p = connect_pair("setup", DataChannelInit::default(), certificate).await;
        if i > 0 {
            samples.push(p.open_offerer.as_secs_f64() * 1e3);
        }
        close(p).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (median(samples.clone()), samples)
}

/// One throughput phase, as bench-core.js `phase` + `pump` run it.
struct Phase {
    key: &'static str,
    /// Its name in bench-core.js (`--only`).
    reference: &'static str,
    name: String,
    init: DataChannelInit,
    size: usize,
    max_bytes: usize,
    max_msgs: usize,
    max_time: Duration,
    reliable: bool,
}

fn phases() -> Vec<Phase> {
    vec![
        Phase {
            key: "reliable64k",
            reference: "bulk",
            name: format!("reliable ordered {BULK_SIZE} B"),
            init: DataChannelInit::default(),
            size: BULK_SIZE,
            max_bytes: BULK_MAX_BYTES,
            max_msgs: usize::MAX,
            max_time: BULK_MAX_TIME,
            reliable: true,
        },
        Phase {
            key: "small1k",
            reference: "small",
            name: format!("reliable ordered {SMALL_SIZE} B"),
            init: DataChannelInit::default(),
            size: SMALL_SIZE,
            max_bytes: usize::MAX,
            max_msgs: SMALL_MAX_MSGS,
            max_time: SMALL_MAX_TIME,
            reliable: true,
        },
        Phase {
            key: "unordered64k",
            reference: "unordered",
            name: format!("unordered maxRetransmits=0 {BULK_SIZE} B"),
            init: DataChannelInit {
                ordered: false,
                max_retransmits: Some(0),
                ..DataChannelInit::default()
            },
            size: BULK_SIZE,
            max_bytes: BULK_MAX_BYTES,
            max_msgs: usize::MAX,
            max_time: BULK_MAX_TIME,
            reliable: false,
        },
    ]
}

/// A phase's figures (bench-core.js `pump` result).
#[derive(Debug, Clone, Copy)]
struct Throughput {
    msgs_sent: usize,
    msgs_recv: usize,
    bytes: usize,
    seconds: f64,
    /// CPU time used for the phase: a figure that other load on the
    /// machine moves much less than MB/s.
    cpu_seconds: Option<f64>,
}

impl Throughput {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds
    }

    fn mb_per_cpu_s(&self) -> Option<f64> {
        self.cpu_seconds.map(|c| self.bytes as f64 / 1e6 / c)
    }

    fn msgs_per_s(&self) -> f64 {
        self.msgs_recv as f64 / self.seconds
    }

    fn loss_pct(&self) -> f64 {
        100.0 * self.msgs_sent.saturating_sub(self.msgs_recv) as f64 / self.msgs_sent.max(1) as f64
    }
}

/// What the receiver counted.
#[derive(Default)]
struct Received {
    msgs: usize,
    bytes: usize,
    last: Option<Instant>,
    order_errors: usize,
    max_seq: Option<usize>,
}

/// bench-core.js `pump`: fixed-size messages with a sequence number,
/// back-pressure between the water marks, bounded by bytes, count and
/// time; the rate is bytes received over first send to last receive.
/// Reliable phases wait for every message; unreliable ones until the
/// receiver is idle for `IDLE`.
async fn run_phase(phase: &Phase) -> Throughput {
    let p = connect_pair(phase.key, phase.init.clone(), None).await;
    // Messages sent, once the sender is done.
    let (done_tx, mut done) = watch::channel(None::<usize>);
    let reliable = phase.reliable;
    let receiver = tokio::spawn({
        let dc = p.dc_b.clone();
        async move {
            let mut rx = Received::default();
            loop {
                let sent = *done.borrow_and_update();
                if reliable && sent.is_some_and(|n| rx.msgs >= n) {
                    break;
                }
                let idle = if sent.is_some() && !reliable {
                    IDLE
                } else {
                    Duration::from_secs(3600)
                };
                tokio::select! {
                    m = timeout(idle, dc.recv()) => {
                        let Ok(Some(ChannelData::Binary(b))) = m else { break };
                        let seq = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                        let next = rx.max_seq.map_or(0, |m| m + 1);
                        if seq != next && (reliable || rx.max_seq.is_some_and(|m| seq < m)) {
                            rx.order_errors += 1;
                        }
                        rx.max_seq = Some(rx.max_seq.map_or(seq, |m| m.max(seq)));
                        rx.msgs += 1;
                        rx.bytes += b.len();
                        rx.last = Some(Instant::now());
                    }
                    _ = done.changed() => {}
                }
            }
            rx
        }
    });
    let mut buf: Vec<u8> = (0..phase.size).map(|i| i as u8).collect();
    let cpu0 = process_cpu_seconds();
    let t0 = Instant::now();
    let mut sent = 0usize;
    while sent * phase.size < phase.max_bytes
        && sent < phase.max_msgs
        && t0.elapsed() < phase.max_time
    {
        if p.dc_a.buffered_amount() > HIGH_WATER {
            p.dc_a.wait_buffered_amount_at_most(LOW_WATER).await;
            continue;
        }
        buf[..4].copy_from_slice(&(sent as u32).to_be_bytes());
        p.dc_a
            .send(ChannelData::Binary(Bytes::copy_from_slice(&buf)))
            .await
            .expect("send");
        sent += 1;
    }
    let _ = done_tx.send(Some(sent));
    let rx = timeout(DRAIN_TIMEOUT, receiver)
        .await
        .expect("receiver within the drain timeout")
        .unwrap();
    let cpu = Some(process_cpu_seconds() - cpu0);
    if reliable {
        assert_eq!(
            rx.order_errors, 0,
            "{}: reliable channel reordered",
            phase.key
        );
        assert_eq!(
            rx.msgs, sent,
            "{}: reliable channel lost messages",
            phase.key
        );
    }
    close(p).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Throughput {
        msgs_sent: sent,
        msgs_recv: rx.msgs,
        bytes: rx.bytes,
        seconds: rx.last.map_or(f64::NAN, |l| (l - t0).as_secs_f64()),
        cpu_seconds: cpu,
    }
}

/// The libwebrtc reference's figures.
struct Reference {
    open_ms: f64,
    phases: Vec<Option<Throughput>>,
    implementation: String,
}

/// A copy of the reference folder, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reference(phases: &[Phase]) -> Result<Reference, String> {
    for var in ["REALTIMER_BENCH_NO_REF", "REALTIMER_BENCH_ONLY"] {
        if std::env::var_os(var).is_some() {
            return Err(format!("{var} is set"));
        }
    }
    if !Path::new(REF_DIR).exists() {
        return Err(format!("{REF_DIR} does not exist"));
    }
    let dir =
        TempDir(std::env::temp_dir().join(format!("realtimer-bench-wrtc-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let run = |cmd: &mut Command, what: &str| -> Result<std::process::Output, String> {
        let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "{what}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            ))
        }
    };
    run(Command::new("cp").args(["-r", REF_DIR]).arg(&dir.0), "cp")?;
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir.0),
        "npm ci",
    )?;
    // The same bounds as ours; one node process per phase, so GNU time
    // (when installed) gives each phase's CPU time.
    let ms = |d: Duration| d.as_millis().to_string();
    let run_phase = |only: &str| -> Result<(Value, Option<f64>), String> {
        let json = dir.0.join(format!("{only}.json"));
        let cpu_file = dir.0.join(format!("{only}.cpu"));
        let timed = Path::new(GNU_TIME).exists();
        let mut cmd = if timed {
            let mut c = Command::new(GNU_TIME);
            c.args(["-f", "%U %S", "-o"])
                .arg(&cpu_file)
                .arg("./run-netns.sh");
            c
        } else {
            Command::new("./run-netns.sh")
        };
        cmd.args(["node", "wrtc-bench.js", "--only", only])
            .args(["--setupRuns", &OPEN_RUNS.to_string()])
            .args(["--bulkMaxBytes", &BULK_MAX_BYTES.to_string()])
            .args(["--bulkMaxMs", &ms(BULK_MAX_TIME)])
            .args(["--smallMaxMsgs", &SMALL_MAX_MSGS.to_string()])
            .args(["--smallMaxMs", &ms(SMALL_MAX_TIME)])
            .args(["--unorderedMaxBytes", &BULK_MAX_BYTES.to_string()])
            .args(["--unorderedMaxMs", &ms(BULK_MAX_TIME)])
            .arg("--json")
            .arg(&json)
            .env("DCB_TIMEOUT", "300")
            .current_dir(&dir.0);
        run(&mut cmd, "run-netns.sh node wrtc-bench.js")?;
        let text =
            std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
        let v = serde_json::from_str(&text).map_err(|e| format!("{only}.json: {e}"))?;
        let cpu = std::fs::read_to_string(&cpu_file).ok().and_then(|t| {
            let mut f = t.split_whitespace().map(|x| x.parse::<f64>().ok());
            Some(f.next()?? + f.next()??)
        });
        Ok((v, cpu))
    };
    let (setup, _) = run_phase("setup")?;
    let open_ms = setup
        .pointer("/setup/median_ms")
        .and_then(Value::as_f64)
        .ok_or("setup.json has no setup median")?;
    let implementation = setup["impl"].as_str().unwrap_or("?").to_owned();
    let mut results = Vec::new();
    for p in phases {
        let (v, cpu) = run_phase(p.reference)?;
        results.push(v.get(p.key).and_then(|r| {
            if r.get("complete") == Some(&Value::Bool(false)) {
                return None;
            }
            let n = |k: &str| r.get(k).and_then(Value::as_f64);
            Some(Throughput {
                msgs_sent: n("msgs_sent")? as usize,
                msgs_recv: n("msgs_recv")? as usize,
                bytes: n("bytes_recv")? as usize,
                seconds: n("seconds")?,
                cpu_seconds: cpu,
            })
        }));
    }
    Ok(Reference {
        open_ms,
        phases: results,
        implementation,
    })
}

fn print_phase(phase: &Phase, t: &Throughput) {
    println!(
        "{:<40} {:>9.2} MB/s {:>9.0} msgs/s   ({}/{} msgs in {:.2} s, loss {:.2}%)",
        phase.name,
        t.mb_per_s(),
        t.msgs_per_s(),
        t.msgs_recv,
        t.msgs_sent,
        t.seconds,
        t.loss_pct()
    );
    if let Some((cpu, per_cpu)) = t.cpu_seconds.zip(t.mb_per_cpu_s()) {
        println!(
            "{:<40} {per_cpu:>9.2} MB per CPU-second ({cpu:.2} CPU-s)",
            ""
        );
    }
}

/// Datagrams the kernel dropped for full receive buffers (all sockets):
/// loss the benchmark itself caused shows here.
fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let names = lines.next()?.split_whitespace();
    let values = lines.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("REALTIMER_BENCH_ONLY").ok();
    let wanted = |key: &str| only.as_ref().is_none_or(|o| o.split(',').any(|k| k == key));
    let phases: Vec<Phase> = phases().into_iter().filter(|p| wanted(p.key)).collect();
    let drops_before = udp_rcvbuf_errors();
    let certificate = Certificate::generate(SystemTime::now()).unwrap();
    let (open_ms, samples, reused_ms, reused) = if wanted("setup") {
        let (m, s) = rt.block_on(open_time_ms(None));
        let (rm, rs) = rt.block_on(open_time_ms(Some(&certificate)));
        (m, s, rm, rs)
    } else {
        (f64::NAN, vec![f64::NAN], f64::NAN, vec![f64::NAN])
    };
    let ours: Vec<Throughput> = phases.iter().map(|p| rt.block_on(run_phase(p))).collect();
    let drops_after = udp_rcvbuf_errors();
    drop(rt);
    println!("== realtimer (Rust <-> Rust, loopback, one process) ==");
    println!(
        "data channel open, median of {OPEN_RUNS} (ms)  {open_ms:.2}   min/max {:.2}/{:.2}",
        samples.iter().copied().fold(f64::INFINITY, f64::min),
        samples.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "  with a supplied certificate (ms)       {reused_ms:.2}   min/max {:.2}/{:.2}",
        reused.iter().copied().fold(f64::INFINITY, f64::min),
        reused.iter().copied().fold(0.0, f64::max),
    );
    for (p, t) in phases.iter().zip(&ours) {
        print_phase(p, t);
    }
    if let (Some(a), Some(b)) = (drops_before, drops_after) {
        println!(
            "UDP datagrams the kernel dropped for full receive buffers during the run (every socket on the machine): {}",
            b - a
        );
    }
    match reference(&phases) {
        Ok(r) => {
            println!(
                "== reference: {} (same bounds, same run) ==",
                r.implementation
            );
            println!(
                "data channel open, median of {OPEN_RUNS} (ms)  {:.2}",
                r.open_ms
            );
            for (p, t) in phases.iter().zip(&r.phases) {
                match t {
                    Some(t) => print_phase(p, t),
                    None => println!("{:<40} did not complete", p.name),
                }
            }
            println!("== ratios (realtimer / libwebrtc) ==");
            println!(
                "open time                                {:.2}x  (lower is better)",
                open_ms / r.open_ms
            );
            for ((p, ours), theirs) in phases.iter().zip(&ours).zip(&r.phases) {
                if let Some(theirs) = theirs {
                    println!(
                        "{:<40} {:.2}x  (higher is better)",
                        p.name,
                        ours.mb_per_s() / theirs.mb_per_s()
                    );
                    if let Some(per_cpu) = ours.mb_per_cpu_s().zip(theirs.mb_per_cpu_s()) {
                        println!(
                            "{:<40} {:.2}x  per CPU-second (the reference's includes node start-up and connecting)",
                            "",
                            per_cpu.0 / per_cpu.1
                        );
                    }
                }
            }
        }
        Err(why) => println!("== reference not run: {why} =="),
    }
}
