//! TCP allocations (RFC 6062): how fast bytes go through one, for
//! `realtimer serve` and coturn's `turnserver` with the same client in the
//! same run, against a direct loopback TCP connection as the reference.
//! Each run sends `BYTES` to a sink peer, which answers with the count once
//! it has read them all, so a run also proves the bytes got through (not
//! the half-close: coturn resets both sides on one). Prints MB/s and the server's CPU-seconds per
//! run, the medians and the ratios.
//!
//! `cargo bench -p realtimer-cli --bench turn_tcp_relay` (coturn is
//! skipped when `turnserver` is not installed).
#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use realtimer_stun::attributes::XorPeerAddress;
use realtimer_stun::Method;
use realtimer_test_support::coturn::Coturn;
use realtimer_test_support::ports::free_udp_and_tcp_port;
use realtimer_test_support::process::{spawn, Running};
use realtimer_test_support::turn_client::{connection_id, StreamClient, User};

const REALM: &str = "realtimer.test";
/// Bytes per run.
const BYTES: usize = 256 << 20;
const RUNS: usize = 5;
/// Linux's clock ticks per second in /proc/<pid>/stat (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// A peer that reads `BYTES` (or to the end) on each connection, then
/// writes the count (8 bytes, big-endian).
fn sink() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                let mut count = 0u64;
                while count < BYTES as u64 {
                    match stream.read(&mut buf) {
                        Ok(n @ 1..) => count += n as u64,
                        _ => break,
                    }
                }
                let _ = stream.write_all(&count.to_be_bytes());
            });
        }
    });
    address
}

/// Sends `BYTES` on `stream`; the time until the sink's count comes back.
fn transfer(stream: &mut TcpStream) -> Duration {
    let chunk = vec![0x5A_u8; 64 * 1024];
    #[allow(clippy::disallowed_methods)] // a benchmark reads the clock
    let start = Instant::now();
    let mut left = BYTES;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    let mut count = [0u8; 8];
    stream.read_exact(&mut count).unwrap();
    assert_eq!(
        u64::from_be_bytes(count),
        BYTES as u64,
        "every byte arrived"
    );
    start.elapsed()
}

/// A TURN server under test: the process and its TURN port.
struct Turn {
    name: &'static str,
    process: Process,
    port: u16,
}

/// The server's process, killed on drop.
enum Process {
    Realtimer(Running),
    Coturn(Coturn),
}

impl Process {
    fn pid(&self) -> u32 {
        match self {
            Process::Realtimer(process) => process.pid(),
            Process::Coturn(coturn) => coturn.pid(),
        }
    }
}

impl Turn {
    fn realtimer() -> Turn {
        let port = free_udp_and_tcp_port();
        let stun = format!("127.0.0.1:{port}");
        let process = spawn(
            env!("CARGO_BIN_EXE_realtimer"),
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--stun-listen",
                &stun,
                "--turn-realm",
                REALM,
                "--turn-user",
                "alice:secret",
                "--relay-allow",
                "127.0.0.1/32",
            ],
            &[("REALTIMER_LOG", "info")],
        );
        process.wait_for_line("HTTP server");
        Turn {
            name: "realtimer",
            process: Process::Realtimer(process),
            port,
        }
    }

    fn coturn() -> Option<Turn> {
        Command::new("turnserver").arg("--version").output().ok()?;
        let coturn = Coturn::start_for("alice:secret", &[], None);
        Some(Turn {
            name: "coturn",
            port: coturn.port,
            process: Process::Coturn(coturn),
        })
    }

    /// A data connection piped to `peer` through a TCP allocation (and the
    /// control connection, which must stay open).
    fn pipe_to(&self, peer: SocketAddr) -> (StreamClient, StreamClient) {
        let alice = User {
            name: "alice",
            password: "secret",
        };
        let mut control = StreamClient::connect(self.port, alice).unwrap();
        control.allocate_tcp().unwrap();
        let response = control
            .request_ok(Method::CONNECT, &|enc| {
                enc.add(&XorPeerAddress(peer)).map(|_| ())
            })
            .unwrap();
        let mut data = control.data_connection(self.port).unwrap();
        data.bind(connection_id(&response).unwrap()).unwrap();
        (control, data)
    }

    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.process.pid()))
            .unwrap_or_default();
        // Fields after the command's closing parenthesis; utime and stime
        // are the 14th and 15th of the line.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let ticks: u64 = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
        ticks as f64 / TICKS_PER_SECOND
    }
}

/// One measurement: MB/s and the server's CPU-seconds (0 for direct).
#[derive(Clone, Copy)]
struct Run {
    mb_per_s: f64,
    cpu: f64,
}

fn measure(turn: Option<&Turn>, peer: SocketAddr) -> Run {
    let (mut stream, _control, cpu_before) = match turn {
        Some(turn) => {
            let (control, data) = turn.pipe_to(peer);
            (data.stream, Some(control), turn.cpu_seconds())
        }
        None => (TcpStream::connect(peer).unwrap(), None, 0.0),
    };
    let elapsed = transfer(&mut stream);
    let cpu = turn.map_or(0.0, |t| t.cpu_seconds() - cpu_before);
    Run {
        mb_per_s: BYTES as f64 / 1e6 / elapsed.as_secs_f64(),
        cpu,
    }
}

fn median(runs: &[Run], of: impl Fn(&Run) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(of).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let peer = sink();
    let realtimer = Turn::realtimer();
    let coturn = Turn::coturn();
    if coturn.is_none() {
        println!("coturn's turnserver not found: measuring realtimer only");
    }
    let servers: Vec<&Turn> = std::iter::once(&realtimer).chain(coturn.as_ref()).collect();
    let mut direct = Vec::new();
    let mut relayed: Vec<Vec<Run>> = vec![Vec::new(); servers.len()];
    println!(
        "{} MiB through one TCP allocation, {RUNS} runs, alternating",
        BYTES >> 20
    );
    for run in 0..RUNS {
        let d = measure(None, peer);
        println!("run {run}: direct    {:8.0} MB/s", d.mb_per_s);
        direct.push(d);
        for (turn, runs) in servers.iter().zip(&mut relayed) {
            let r = measure(Some(turn), peer);
            println!(
                "run {run}: {:<9} {:8.0} MB/s, server {:.2} CPU-s",
                turn.name, r.mb_per_s, r.cpu
            );
            runs.push(r);
        }
    }
    let direct_mbps = median(&direct, |r| r.mb_per_s);
    println!("median: direct {direct_mbps:.0} MB/s");
    let mut per_cpu = Vec::new();
    for (turn, runs) in servers.iter().zip(&relayed) {
        let mbps = median(runs, |r| r.mb_per_s);
        let mb_per_cpu = median(runs, |r| BYTES as f64 / 1e6 / r.cpu.max(0.01));
        println!(
            "median: {} {mbps:.0} MB/s ({:.2}x direct), {mb_per_cpu:.0} MB per server CPU-s",
            turn.name,
            mbps / direct_mbps
        );
        per_cpu.push((mbps, mb_per_cpu));
    }
    if let [(ours, ours_cpu), (theirs, theirs_cpu)] = per_cpu[..] {
        println!(
            "realtimer / coturn: {:.2}x MB/s, {:.2}x MB per server CPU-s",
            ours / theirs,
            ours_cpu / theirs_cpu
        );
    }
}
