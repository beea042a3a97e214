//! Shared helpers: a server on an ephemeral loopback port, and the Node
//! scripts under `tests/browser/` (npm packages installed by `scripts/test`).
#![allow(dead_code, unreachable_pub, clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::thread;

use realtimer_server::{serve, ServerConfig};

/// Starts the server on 127.0.0.1:0 in a thread of its own; it runs until
/// the test process exits.
pub fn start_server(config: ServerConfig) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, config).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// The Node package with the browser and Socket.IO test scripts.
pub fn browser_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        dir.join("node_modules").is_dir(),
        "{} has no node_modules: run scripts/test (or npm ci there)",
        dir.display()
    );
    dir
}

/// Runs `node SCRIPT ARGS...` in `tests/browser`, prints its output, and
/// asserts it exits 0 with a "N passed, 0 failed" line; returns stdout.
pub fn run_node(script: &str, args: &[&str]) -> String {
    run_node_with_env(script, args, &[])
}

/// [`run_node`] with extra environment variables.
pub fn run_node_with_env(script: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let output = Command::new("node")
        .arg(script)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(browser_dir())
        .output()
        .expect("cannot run node (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "node {script} {args:?} failed: {}",
        output.status
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.ends_with(" passed, 0 failed") && !l.starts_with("0 passed")),
        "no passing summary line from {script}"
    );
    stdout
}

/// A free TCP port on 127.0.0.1 (bound and released: another process may
/// take it in between, which the callers' start-up checks would show).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts TCP connections on `addr` (10 s at most).
pub fn wait_for_port(addr: SocketAddr) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("nothing listens on {addr} after 10 s");
}

/// A child process killed (SIGKILL) when dropped.
pub struct Child(pub std::process::Child);

impl Child {
    /// Kills it now, as a crash would: no clean-up runs.
    pub fn crash(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.crash();
    }
}

/// `redis-server` on a free loopback port, without persistence (apt
/// package `redis-server`, installed by `scripts/test`).
pub fn start_redis() -> (Child, String) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("cannot run redis-server (apt-get install redis-server; scripts/test does)");
    let child = Child(child);
    wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)));
    (child, format!("redis://127.0.0.1:{port}"))
}

/// The `realtimer` binary, built (or found up to date) by cargo in this
/// test's target directory.
pub fn realtimer_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_owned();
    let target_dir = profile_dir.parent().unwrap();
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "realtimer-cli",
            "--bin",
            "realtimer",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cannot run cargo");
    assert!(status.success(), "building the realtimer binary failed");
    profile_dir.join("realtimer")
}

/// `realtimer serve` on `127.0.0.1:<free port>` (STUN on an ephemeral
/// loopback port) with extra arguments; returns once HTTP accepts.
pub fn start_serve(binary: &std::path::Path, extra: &[&str]) -> (Child, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let child = Command::new(binary)
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--stun-listen",
            "127.0.0.1:0",
            // TURN over TCP would take the ephemeral STUN port number on
            // TCP too, which another socket may hold: flaky start-ups.
            "--turn-tcp",
            "false",
        ])
        .args(extra)
        .env("RUST_LOG", "info")
        .spawn()
        .expect("cannot run realtimer serve");
    let child = Child(child);
    wait_for_port(addr);
    (child, addr)
}
