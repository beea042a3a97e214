//! `realtimer serve` and `redis-server` as child processes of a test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::ports::{free_tcp_port, wait_for_port};
use crate::process::Running;

/// The `realtimer` binary (for crates that cannot name it with
/// `CARGO_BIN_EXE_realtimer`): `REALTIMER_BIN` when set (`scripts/test`
/// sets it to the binary its workspace build just made), else built (or
/// found up to date) by cargo in this test's target directory. That build
/// is `-p realtimer-cli` alone, whose features differ from a workspace
/// build's, so it rebuilds dependencies: minutes on a loaded machine.
pub fn realtimer_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("REALTIMER_BIN") {
        return PathBuf::from(binary);
    }
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
pub fn start_serve(binary: &Path, extra: &[&str]) -> (Running, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
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
    let child = Running::new(child);
    wait_for_port(addr);
    (child, addr)
}

/// `redis-server` on a free loopback port, without persistence (apt
/// package `redis-server`, installed by `scripts/test`); returns it and
/// its `redis://` URL.
pub fn start_redis() -> (Running, String) {
    let port = free_tcp_port();
    (start_redis_on(port), format!("redis://127.0.0.1:{port}"))
}

/// `redis-server` on loopback `port` (again, for a test that restarts it),
/// empty, as a restart without persistence leaves it.
pub fn start_redis_on(port: u16) -> Running {
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
        .stdout(Stdio::null())
        .spawn()
        .expect("cannot run redis-server (apt-get install redis-server; scripts/test does)");
    let child = Running::new(child);
    wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)));
    child
}

/// `realtimer serve` processes sharing rooms through one Redis, with a
/// short node TTL (from a config file of their own) so that a crashed
/// node's slots and rooms are freed within a test.
pub struct Cluster {
    /// The processes and their HTTP addresses, in start order.
    pub nodes: Vec<(Running, SocketAddr)>,
    dir: PathBuf,
}

impl Cluster {
    /// `count` processes on the Redis at `redis_url`, each with `extra`
    /// arguments, silent nodes expiring after `node_ttl_ms`.
    pub fn start(redis_url: &str, count: usize, node_ttl_ms: u64, extra: &[&str]) -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "realtimer-cluster-{}-{}",
            std::process::id(),
            free_tcp_port()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let config = dir.join("serve.toml");
        std::fs::write(&config, format!("[redis]\nnode_ttl_ms = {node_ttl_ms}\n"))
            .expect("the config file");
        let config = config.to_str().expect("a UTF-8 temporary path").to_owned();
        let binary = realtimer_binary();
        let nodes = (0..count)
            .map(|_| {
                let mut args = vec!["--redis", redis_url, "--config", &config];
                args.extend_from_slice(extra);
                start_serve(&binary, &args)
            })
            .collect();
        Cluster { nodes, dir }
    }

    /// The HTTP address of node `i`.
    pub fn address(&self, i: usize) -> SocketAddr {
        self.nodes[i].1
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The processes stop before their config goes.
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `realtimer serve` on ephemeral loopback ports ([`serve_on_ephemeral_ports`]).
pub struct EphemeralServe {
    /// The process, stopped on drop.
    pub process: Running,
    /// Its HTTP base URL as it logged it (`http://127.0.0.1:PORT` or
    /// `https://…`).
    pub base: String,
    /// The UDP port of its STUN/TURN server.
    pub stun_port: u16,
}

/// `realtimer serve` (`binary`) with HTTP and STUN/TURN on ephemeral
/// loopback ports and `extra` flags, logging at info; returns once it has
/// logged both addresses (STUN's comes first).
pub fn serve_on_ephemeral_ports(binary: &str, extra: &[&str]) -> EphemeralServe {
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--stun-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let process = crate::process::spawn(binary, &args, &[("REALTIMER_LOG", "info")]);
    let stun = process.wait_for_line("STUN server listening on ");
    let stun_port = stun
        .split(" (UDP)")
        .next()
        .and_then(|s| s.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {stun:?}"));
    let marker = "HTTP server listening on ";
    let line = process.wait_for_line(marker);
    let base = line
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim()
        .to_owned();
    EphemeralServe {
        process,
        base,
        stun_port,
    }
}
