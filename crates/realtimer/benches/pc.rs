//! PeerConnection benchmark: data channel open time and 64 KiB reliable
//! throughput, Rust ↔ Rust over loopback, measured the way
//! /work/shared/bench/libwebrtc's bench-core.js measures them; the
//! libwebrtc pair is run in the same invocation as the reference (loopback
//! figures are noisy, so only ratios from one run mean anything).
//!
//! `cargo bench -p realtimer --bench pc`. Env: `REALTIMER_BENCH_NO_REF=1`
//! skips the reference.
// A benchmark measures wall-clock time and reports on stdout.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer::{
    ChannelData, DataChannel, DataChannelInit, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent, PeerConnectionEvents,
};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

const OPEN_RUNS: usize = 5;
const BULK_SIZE: usize = 64 * 1024;
const BULK_MAX_BYTES: usize = 64 * 1024 * 1024;
const BULK_MAX_TIME: Duration = Duration::from_secs(10);
/// bench-core.js: stop sending above 4 MiB buffered, resume at 1 MiB.
const HIGH_WATER: usize = 4 * 1024 * 1024;
const LOW_WATER: usize = 1024 * 1024;
const REF_DIR: &str = "/work/shared/bench/libwebrtc";

fn config() -> PeerConnectionConfig {
    let mut c = PeerConnectionConfig::default().with_loopback(true);
    c.interfaces = vec!["127.0.0.1".parse().unwrap()];
    c
}

/// Trickles `events`' candidates to `to`; hands out incoming channels.
fn pump(
    mut events: PeerConnectionEvents,
    to: PeerConnection,
    channels: mpsc::UnboundedSender<DataChannel>,
) {
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            match e {
                PeerConnectionEvent::IceCandidate(c) => {
                    let _ = to.add_ice_candidate(c).await;
                }
                PeerConnectionEvent::DataChannel(dc) => {
                    let _ = channels.send(dc);
                }
                _ => {}
            }
        }
    });
}

struct Connected {
    a: PeerConnection,
    b: PeerConnection,
    dc_a: DataChannel,
    dc_b: DataChannel,
    /// From just before the first `PeerConnection::new` to the offerer's
    /// channel open (bench-core.js `openOffererMs`).
    open_offerer: Duration,
}

/// bench-core.js `connectPair`: two PCs, one channel, offer/answer, until
/// both ends of the channel are open.
async fn connect_pair(label: &str) -> Connected {
    let t0 = Instant::now();
    let a = PeerConnection::new(config()).await.unwrap();
    let b = PeerConnection::new(config()).await.unwrap();
    let (a_tx, _a_rx) = mpsc::unbounded_channel();
    let (b_tx, mut b_rx) = mpsc::unbounded_channel();
    pump(a.events().unwrap(), b.clone(), a_tx);
    pump(b.events().unwrap(), a.clone(), b_tx);
    let dc_a = a
        .create_data_channel(label, DataChannelInit::default())
        .await
        .unwrap();
    let offer = a.create_offer().await.unwrap();
    // Remote first, so trickled candidates find the description there
    // (bench-core.js queues them instead).
    b.set_remote_description(offer.clone()).await.unwrap();
    a.set_local_description(offer).await.unwrap();
    let answer = b.create_answer().await.unwrap();
    a.set_remote_description(answer.clone()).await.unwrap();
    b.set_local_description(answer).await.unwrap();
    let open_a = async {
        assert!(dc_a.wait_open().await, "offerer channel closed");
        t0.elapsed()
    };
    let open_b = async {
        let dc = b_rx.recv().await.expect("datachannel event");
        assert!(dc.wait_open().await, "answerer channel closed");
        dc
    };
    let (open_offerer, dc_b) = timeout(Duration::from_secs(15), async {
        tokio::join!(open_a, open_b)
    })
    .await
    .expect("data channel open within 15 s");
    Connected {
        a,
        b,
        dc_a,
        dc_b,
        open_offerer,
    }
}

async fn close(p: Connected) {
    p.dc_a.close().await;
    p.a.close().await;
    p.b.close().await;
}

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
async fn open_time_ms() -> (f64, Vec<f64>) {
    let mut samples = Vec::new();
    for i in 0..=OPEN_RUNS {
        let p = connect_pair("setup").await;
        if i > 0 {
            samples.push(p.open_offerer.as_secs_f64() * 1e3);
        }
        close(p).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (median(samples.clone()), samples)
}

struct Throughput {
    mb_per_s: f64,
    bytes: usize,
    seconds: f64,
}

/// bench-core.js `pump` for the reliable phase: 64 KiB messages with a
/// sequence number, back-pressure between the water marks, bounded by bytes
/// and time; the rate is bytes received over first send to last receive.
async fn reliable_throughput() -> Throughput {
    let p = connect_pair("bulk").await;
    // How many bytes the receiver waits for: the byte bound, lowered to what
    // was sent when the time bound stops the sender first.
    let (target_tx, mut target) = watch::channel(BULK_MAX_BYTES);
    let receiver = tokio::spawn({
        let dc = p.dc_b.clone();
        async move {
            let (mut msgs, mut bytes, mut last) = (0usize, 0usize, None);
            let mut order_errors = 0usize;
            while bytes < *target.borrow_and_update() {
                tokio::select! {
                    m = dc.recv() => {
                        let Some(m) = m else { break };
                        let ChannelData::Binary(b) = m else { continue };
                        let seq = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                        order_errors += usize::from(seq != msgs);
                        msgs += 1;
                        bytes += b.len();
                        last = Some(Instant::now());
                    }
                    _ = target.changed() => {}
                }
            }
            (msgs, bytes, last, order_errors)
        }
    });
    let mut buf: Vec<u8> = (0..BULK_SIZE).map(|i| i as u8).collect();
    let t0 = Instant::now();
    let mut sent = 0usize;
    while sent * BULK_SIZE < BULK_MAX_BYTES && t0.elapsed() < BULK_MAX_TIME {
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
    let _ = target_tx.send(sent * BULK_SIZE);
    let result = timeout(Duration::from_secs(20), receiver).await;
    let (msgs, bytes, last, order_errors) = result.expect("receiver within 20 s").unwrap();
    assert_eq!(order_errors, 0, "reliable channel reordered");
    assert_eq!(msgs, sent, "reliable channel lost messages");
    let seconds = last.map_or(0.0, |l| (l - t0).as_secs_f64());
    close(p).await;
    Throughput {
        mb_per_s: bytes as f64 / 1e6 / seconds,
        bytes,
        seconds,
    }
}

/// The libwebrtc reference's figures: (open median ms, reliable 64 KiB MB/s).
struct Reference {
    open_ms: f64,
    mb_per_s: f64,
    bytes: u64,
    seconds: f64,
    implementation: String,
}

/// A copy of the reference folder, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reference() -> Result<Reference, String> {
    if std::env::var_os("REALTIMER_BENCH_NO_REF").is_some() {
        return Err("REALTIMER_BENCH_NO_REF is set".into());
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
    // The same bounds as ours: 5 open runs after a warm-up, 64 KiB reliable
    // up to 64 MiB or 10 s.
    let json = dir.0.join("ref.json");
    run(
        Command::new("./run-netns.sh")
            .args(["node", "wrtc-bench.js", "--only", "setup,bulk"])
            .args(["--setupRuns", &OPEN_RUNS.to_string()])
            .args(["--bulkMaxBytes", &BULK_MAX_BYTES.to_string()])
            .args(["--bulkMaxMs", &BULK_MAX_TIME.as_millis().to_string()])
            .arg("--json")
            .arg(&json)
            .env("DCB_TIMEOUT", "120")
            .current_dir(&dir.0),
        "run-netns.sh node wrtc-bench.js",
    )?;
    let text = std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("ref.json: {e}"))?;
    let num = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("ref.json has no number at {p}"))
    };
    if v.pointer("/reliable64k/complete") != Some(&Value::Bool(true)) {
        return Err("the reference's reliable transfer did not complete".into());
    }
    Ok(Reference {
        open_ms: num("/setup/median_ms")?,
        mb_per_s: num("/reliable64k/MBps")?,
        bytes: num("/reliable64k/bytes_recv")? as u64,
        seconds: num("/reliable64k/seconds")?,
        implementation: v["impl"].as_str().unwrap_or("?").to_owned(),
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (open_ms, samples) = rt.block_on(open_time_ms());
    let bulk = rt.block_on(reliable_throughput());
    drop(rt);
    println!("== realtimer (Rust <-> Rust, loopback, one process) ==");
    println!(
        "data channel open, median of {OPEN_RUNS} (ms)   {open_ms:.2}   samples {:?}",
        samples
            .iter()
            .map(|s| (s * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    println!(
        "reliable ordered {BULK_SIZE} B (MB/s)        {:.2}   ({} MiB in {:.2} s)",
        bulk.mb_per_s,
        bulk.bytes >> 20,
        bulk.seconds
    );
    match reference() {
        Ok(r) => {
            println!(
                "== reference: {} (same bounds, same run) ==",
                r.implementation
            );
            println!(
                "data channel open, median of {OPEN_RUNS} (ms)   {:.2}",
                r.open_ms
            );
            println!(
                "reliable ordered {BULK_SIZE} B (MB/s)        {:.2}   ({} MiB in {:.2} s)",
                r.mb_per_s,
                r.bytes >> 20,
                r.seconds
            );
            println!("== ratios (realtimer / libwebrtc) ==");
            println!(
                "open time       {:.2}x  (lower is better)",
                open_ms / r.open_ms
            );
            println!(
                "throughput      {:.2}x  (higher is better)",
                bulk.mb_per_s / r.mb_per_s
            );
        }
        Err(why) => println!("== reference not run: {why} =="),
    }
}
