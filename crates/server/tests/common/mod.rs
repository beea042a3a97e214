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
    let output = Command::new("node")
        .arg(script)
        .args(args)
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
