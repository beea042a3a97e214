//! Signaling load generator: N WebSocket clients in N/2 rooms of the
//! codelab's protocol (Socket.IO v4, or realtimer's `/ws` JSON) relaying
//! offer/answer/candidate messages, against any server on loopback
//! (`realtimer serve`, the Node codelab server). Driven by
//! `crates/server/bench/signaling.sh`, which runs both servers in one go.
//!
//! Phases, each measured on its own: connect (at most
//! CONNECT_CONCURRENCY handshakes at once), join (A `create or join`s, B
//! once A has `created`, until both have `ready`), then relay phases:
//! `paced` (each client one message per INTERVAL_MS, random phase) and
//! `burst` (each client BURST_MSGS messages back to back). Message k is an
//! offer/answer of ~SDP_BYTES when k % SDP_EVERY == 0, else a ~CAND_BYTES
//! candidate. Latency = receive − send, both ends of a pair in one task.
//!
//! The generator's own overhead is printed with every phase: its CPU
//! seconds and its scheduling delay (a thread ticks every millisecond and
//! the runtime records how late it sees each tick, as it would see a
//! socket become readable). The server's CPU and RSS come from
//! /proc/SERVER_PID.
//!
//! ```text
//! URL=http://127.0.0.1:8080 SERVER_PID=… cargo bench -p realtimer-server --bench signaling_load
//! signaling_load compare REF_LABEL results/*.json     # table of the quietest run per label
//! ```
//! Env (defaults): URL (http://127.0.0.1:8080), FRONT sio|ws (sio),
//! CLIENTS (10000), MSGS (10) INTERVAL_MS (2000) for the paced phase,
//! BURST_MSGS (30) for the burst (0 skips either), SDP_BYTES (4000), CAND_BYTES (200),
//! SDP_EVERY (10), CONNECT_CONCURRENCY (128), THREADS (1), SERVER_PID,
//! LABEL, JSON_OUT, TIME_LIMIT_S (150).
// A benchmark driver owns the clock and reports on stdout.
#![allow(clippy::disallowed_methods, clippy::print_stdout, clippy::print_stderr)]

pub(crate) mod front;
mod pair;
pub(crate) mod payload;
mod procfs;
pub(crate) mod report;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore};

use self::front::Front;
use self::payload::Payloads;
use self::report::{PhaseResult, RunResult};

/// The generator's clock.
fn now() -> Instant {
    Instant::now()
}

/// A phase of the run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Connect,
    Join,
    /// Every client sends `msgs` messages, one per `interval_ms` (0: all
    /// at once).
    Relay {
        msgs: usize,
        interval_ms: u64,
    },
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Join => "join",
            Phase::Relay { interval_ms: 0, .. } => "burst",
            Phase::Relay { .. } => "paced",
        }
    }

    /// How long the phase may take before the run gives up on it.
    fn limit(self) -> Duration {
        match self {
            Phase::Connect => Duration::from_secs(60),
            Phase::Join => Duration::from_secs(30),
            Phase::Relay { msgs, interval_ms } => {
                Duration::from_millis(msgs as u64 * interval_ms) + Duration::from_secs(45)
            }
        }
    }
}

/// What the coordinator tells the pairs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Command {
    /// Start phase `n`.
    Go(usize),
    /// Report what you have and close.
    Stop,
}

/// The run's settings.
#[derive(Debug)]
pub(crate) struct Config {
    /// host:port of the server.
    pub(crate) addr: String,
    pub(crate) front: Front,
    pub(crate) clients: usize,
    pub(crate) phases: Vec<Phase>,
    pub(crate) room_prefix: String,
    connect_concurrency: usize,
    threads: usize,
    server_pid: Option<String>,
    label: String,
    json_out: Option<String>,
    time_limit: Duration,
    sdp_bytes: usize,
    cand_bytes: usize,
    sdp_every: usize,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().unwrap_or_else(|_| {
            eprintln!("{name}={v}: not a valid value");
            std::process::exit(2)
        }),
        _ => default,
    }
}

impl Config {
    /// `clients` clients of `front` against the server at `addr`
    /// (host:port), through `phases`, with the defaults of every other knob.
    pub(crate) fn new(addr: String, front: Front, clients: usize, phases: Vec<Phase>) -> Self {
        Self {
            addr,
            front,
            clients,
            phases,
            room_prefix: format!("load-{}", std::process::id()),
            connect_concurrency: 128,
            threads: 1,
            server_pid: None,
            label: format!("{front:?}").to_lowercase(),
            json_out: None,
            time_limit: Duration::from_secs(150),
            sdp_bytes: 4000,
            cand_bytes: 200,
            sdp_every: 10,
        }
    }

    fn from_env() -> Self {
        let url: String = env("URL", "http://127.0.0.1:8080".to_string());
        let addr = url
            .trim_start_matches("http://")
            .trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_string();
        let front = match env("FRONT", "sio".to_string()).as_str() {
            "sio" => Front::Sio,
            "ws" => Front::Ws,
            other => {
                eprintln!("FRONT={other}: sio or ws");
                std::process::exit(2)
            }
        };
        let clients = env("CLIENTS", 10_000usize);
        if clients < 2 || clients % 2 == 1 {
            eprintln!("CLIENTS must be even and at least 2");
            std::process::exit(2);
        }
        let mut phases = vec![Phase::Connect, Phase::Join];
        let msgs = env("MSGS", 10usize);
        let interval_ms = env("INTERVAL_MS", 2000u64);
        if msgs > 0 && interval_ms > 0 {
            phases.push(Phase::Relay { msgs, interval_ms });
        }
        let burst = env("BURST_MSGS", 30usize);
        if burst > 0 {
            phases.push(Phase::Relay {
                msgs: burst,
                interval_ms: 0,
            });
        }
        let mut cfg = Self::new(addr, front, clients, phases);
        cfg.connect_concurrency = env("CONNECT_CONCURRENCY", cfg.connect_concurrency).max(1);
        cfg.threads = env("THREADS", cfg.threads).max(1);
        cfg.server_pid = std::env::var("SERVER_PID").ok().filter(|p| !p.is_empty());
        cfg.label = env("LABEL", cfg.label);
        cfg.json_out = std::env::var("JSON_OUT").ok().filter(|p| !p.is_empty());
        cfg.time_limit = Duration::from_secs(env("TIME_LIMIT_S", cfg.time_limit.as_secs()));
        cfg.sdp_bytes = env("SDP_BYTES", cfg.sdp_bytes);
        cfg.cand_bytes = env("CAND_BYTES", cfg.cand_bytes);
        cfg.sdp_every = env("SDP_EVERY", cfg.sdp_every);
        cfg
    }
}

/// What the pairs of one phase counted.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Connect: per client; join: per room; relay: per message latency.
    pub(crate) samples_ns: Vec<u64>,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    /// Relayed messages from another room, or back to their sender.
    pub(crate) foreign: u64,
    pub(crate) echoed: u64,
    pub(crate) logs: u64,
    /// Unexpected or refused events.
    pub(crate) errors: u64,
    /// Clients (connect) or pairs (later) that gave up.
    pub(crate) failed: u64,
    pub(crate) closed: u64,
    pub(crate) first_send: Option<Instant>,
    pub(crate) last_receive: Option<Instant>,
    /// A few error messages to show.
    pub(crate) notes: Vec<String>,
}

impl Tally {
    pub(crate) fn note(&mut self, note: String) {
        if self.notes.len() < 3 {
            self.notes.push(note);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.samples_ns.extend_from_slice(&other.samples_ns);
        self.sent += other.sent;
        self.received += other.received;
        self.foreign += other.foreign;
        self.echoed += other.echoed;
        self.logs += other.logs;
        self.errors += other.errors;
        self.failed += other.failed;
        self.closed += other.closed;
        self.first_send = self.first_send.into_iter().chain(other.first_send).min();
        self.last_receive = self
            .last_receive
            .into_iter()
            .chain(other.last_receive)
            .max();
        for note in other.notes {
            self.note(note);
        }
    }
}

/// State the pairs report into; the coordinator waits on it.
#[derive(Debug)]
pub(crate) struct Shared {
    tallies: Vec<Mutex<Tally>>,
    /// Pairs done with each phase.
    done: Vec<AtomicUsize>,
    progress: (Mutex<()>, Condvar),
    /// The phase under way, for the scheduling delay samples.
    current: AtomicUsize,
    lag_ns: Vec<Mutex<Vec<u64>>>,
}

impl Shared {
    fn new(phases: usize) -> Self {
        Self {
            tallies: (0..phases).map(|_| Mutex::default()).collect(),
            done: (0..phases).map(|_| AtomicUsize::new(0)).collect(),
            progress: (Mutex::new(()), Condvar::new()),
            current: AtomicUsize::new(0),
            lag_ns: (0..phases).map(|_| Mutex::default()).collect(),
        }
    }

    /// A pair is done with `phase`.
    pub(crate) fn report(&self, phase: usize, tally: Tally) {
        lock(&self.tallies[phase]).merge(tally);
        self.done[phase].fetch_add(1, Ordering::SeqCst);
        let _guard = lock(&self.progress.0);
        self.progress.1.notify_all();
    }

    /// A pair is done with `phase` and every later one.
    pub(crate) fn report_from(&self, phase: usize, tally: Tally) {
        if phase < self.done.len() {
            self.report(phase, tally);
            for later in phase + 1..self.done.len() {
                self.report(later, Tally::default());
            }
        }
    }

    /// Waits until `pairs` pairs are done with `phase` or `deadline` passes;
    /// true if they all are.
    fn wait(&self, phase: usize, pairs: usize, deadline: Instant) -> bool {
        let mut guard = lock(&self.progress.0);
        loop {
            if self.done[phase].load(Ordering::SeqCst) >= pairs {
                return true;
            }
            let left = deadline.saturating_duration_since(now());
            if left.is_zero() {
                return false;
            }
            guard = match self
                .progress
                .1
                .wait_timeout(guard, left.min(Duration::from_millis(100)))
            {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What every pair task shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) cfg: Config,
    pub(crate) shared: Shared,
    pub(crate) payloads: Payloads,
    pub(crate) connecting: Semaphore,
    /// Stamps are nanoseconds since this instant.
    pub(crate) epoch: Instant,
}

/// Records how late this runtime sees each tick of a thread that ticks
/// every millisecond: its scheduling delay, which every received frame
/// waits too.
async fn scheduling_delay(ctx: Arc<Ctx>) {
    let (tick, mut ticks) = mpsc::unbounded_channel::<Instant>();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(1));
        // Ends with the runtime that receives.
        if tick.send(now()).is_err() {
            break;
        }
    });
    while let Some(sent) = ticks.recv().await {
        let late = now().saturating_duration_since(sent);
        let phase = ctx.shared.current.load(Ordering::Relaxed);
        lock(&ctx.shared.lag_ns[phase]).push(u64::try_from(late.as_nanos()).unwrap_or(u64::MAX));
    }
}

/// One generator thread: a current-thread runtime driving its share of
/// the rooms.
fn worker(
    ctx: Arc<Ctx>,
    rooms: Vec<usize>,
    commands: watch::Receiver<Command>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        tokio::spawn(scheduling_delay(ctx.clone()));
        let tasks: Vec<_> = rooms
            .into_iter()
            .map(|room| tokio::spawn(pair::run(ctx.clone(), room, commands.clone())))
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
    Ok(())
}

/// Process readings at a phase boundary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    at: Instant,
    generator_cpu_s: f64,
    generator_wait_s: f64,
    server_cpu_s: Option<f64>,
    server_wait_s: Option<f64>,
    server: Option<procfs::Memory>,
    machine: procfs::MachineTime,
}

fn mark(cfg: &Config) -> Mark {
    let pid = cfg.server_pid.as_deref();
    Mark {
        at: now(),
        generator_cpu_s: procfs::cpu_s("self").unwrap_or(f64::NAN),
        generator_wait_s: procfs::cpu_wait_s("self").unwrap_or(f64::NAN),
        server_cpu_s: pid.and_then(procfs::cpu_s),
        server_wait_s: pid.and_then(procfs::cpu_wait_s),
        server: pid.and_then(procfs::memory),
        machine: procfs::machine(),
    }
}

/// Runs every phase against the server; bounded by `cfg.time_limit`.
pub(crate) fn run(cfg: Config) -> RunResult {
    let rooms = cfg.clients / 2;
    let payloads = Payloads::new(
        cfg.front.framing(),
        cfg.sdp_bytes,
        cfg.cand_bytes,
        cfg.sdp_every,
    );
    let ctx = Arc::new(Ctx {
        shared: Shared::new(cfg.phases.len()),
        payloads,
        connecting: Semaphore::new(cfg.connect_concurrency),
        epoch: now(),
        cfg,
    });
    let cfg = &ctx.cfg;
    let deadline = now() + cfg.time_limit;
    let mut result = RunResult::new(&cfg.label, cfg.front, cfg.clients, procfs::loadavg());
    let idle = mark(cfg);
    result.server_rss_idle_mib = idle.server.map(|m| m.rss_mib);
    let (commands, receiver) = watch::channel(Command::Go(0));
    let workers: Vec<_> = (0..cfg.threads)
        .map(|t| {
            let mine = (t..rooms).step_by(cfg.threads).collect();
            let (ctx, receiver) = (ctx.clone(), receiver.clone());
            std::thread::spawn(move || worker(ctx, mine, receiver))
        })
        .collect();
    let mut start = idle;
    for (index, &phase) in cfg.phases.iter().enumerate() {
        if index > 0 {
            ctx.shared.current.store(index, Ordering::Relaxed);
            start = mark(cfg);
            let _ = commands.send(Command::Go(index));
        }
        let complete = ctx
            .shared
            .wait(index, rooms, (start.at + phase.limit()).min(deadline));
        if !complete {
            // Ask for what every pair has, then give it a moment.
            let _ = commands.send(Command::Stop);
            ctx.shared
                .wait(index, rooms, now() + Duration::from_secs(5));
        }
        let end = mark(cfg);
        let tally = std::mem::take(&mut *lock(&ctx.shared.tallies[index]));
        let lag = std::mem::take(&mut *lock(&ctx.shared.lag_ns[index]));
        let phase_result = PhaseResult::new(phase, cfg.clients, tally, lag, &start, &end, complete);
        println!("{}", phase_result.line());
        result.phases.push(phase_result);
        if !complete {
            result.error = Some(format!("{} did not finish in time", phase.name()));
            break;
        }
        start = end;
    }
    let _ = commands.send(Command::Stop);
    result.server_peak_mib = cfg
        .server_pid
        .as_deref()
        .and_then(procfs::memory)
        .map(|m| m.peak_mib);
    result.loadavg_end = procfs::loadavg();
    // The pairs close their sockets on Stop; don't wait long for them.
    let until = now() + Duration::from_secs(5);
    for worker in workers {
        while !worker.is_finished() && now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    result
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("compare") {
        if args.len() < 3 {
            eprintln!("usage: signaling_load compare REF_LABEL RESULT.json...");
            std::process::exit(2);
        }
        std::process::exit(report::compare(&args[1], &args[2..]));
    }
    let cfg = Config::from_env();
    println!(
        "== {}: {} clients in {} rooms, front {:?}, server {}, phases {}",
        cfg.label,
        cfg.clients,
        cfg.clients / 2,
        cfg.front,
        cfg.addr,
        cfg.phases
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let json_out = cfg.json_out.clone();
    let result = run(cfg);
    println!("{}", result.summary());
    if let Some(path) = json_out {
        match serde_json::to_string_pretty(&result) {
            Ok(json) => {
                if let Err(e) = std::fs::write(&path, json + "\n") {
                    eprintln!("{path}: {e}");
                }
            }
            Err(e) => eprintln!("result: {e}"),
        }
    }
    if result.error.is_some() {
        std::process::exit(1);
    }
}
