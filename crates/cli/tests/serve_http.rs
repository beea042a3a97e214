//! `realtimer serve` runs the HTTP server: the log line with the bound
//! address, the embedded web app, `--web-dir`, and the codelab's Socket.IO
//! protocol through the real binary (npm socket.io-client 2; installed by
//! `scripts/test` in tests/browser).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;

use realtimer_test_support::serve::{self, EphemeralServe};

const REALTIMER: &str = env!("CARGO_BIN_EXE_realtimer");

struct Server {
    /// Killed when the test ends.
    _serve: EphemeralServe,
    address: SocketAddr,
}

fn serve(extra: &[&str]) -> Server {
    let serve = serve::serve_on_ephemeral_ports(REALTIMER, extra);
    let address = serve
        .base
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {:?}", serve.base));
    Server {
        _serve: serve,
        address,
    }
}

fn get(address: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_logs_its_http_address_and_serves_the_embedded_app() {
    let server = serve(&[]);
    let index = get(server.address, "/");
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert!(index.contains("snap.html"));
    let client = get(server.address, "/socket.io/socket.io.js");
    assert!(
        client.starts_with("HTTP/1.1 200") && client.contains("io.connect"),
        "{client}"
    );
    assert!(get(server.address, "/../Cargo.toml").starts_with("HTTP/1.1 404"));
}

#[test]
fn serve_web_dir_serves_pages_from_disk() {
    let dir = std::env::temp_dir().join(format!("realtimer-web-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<p>from disk</p>").unwrap();
    let server = serve(&["--web-dir", dir.to_str().unwrap()]);
    let index = get(server.address, "/");
    assert!(index.contains("<p>from disk</p>"), "{index}");
    // The folder has no socket.io/ of its own: the server's client is still
    // served, as a Socket.IO server does (the codelab's step folders rely on it).
    let client = get(server.address, "/socket.io/socket.io.js");
    assert!(
        client.starts_with("HTTP/1.1 200") && client.contains("io.connect"),
        "{client}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_web_dir_without_index_is_an_error() {
    let output = Command::new(REALTIMER)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--stun-listen",
            "127.0.0.1:0",
        ])
        .args(["--web-dir", "/nonexistent-realtimer-web"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("has no index.html"));
}

#[test]
fn serve_speaks_the_codelab_socket_io_protocol() {
    let server = serve(&[]);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        dir.join("node_modules").is_dir(),
        "run scripts/test (npm ci in tests/browser)"
    );
    let output = Command::new("node")
        .args([
            "socketio-wire.mjs",
            &format!("http://{}", server.address),
            "mixed",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains(" passed, 0 failed"));
}

/// `serve --print-config` prints the settings in force as a config file
/// that `--config` reads back to the same settings, flags included; the
/// commented example docs/realtimer.toml is such a file, with the defaults.
#[test]
fn print_config_round_trips_and_the_example_parses() {
    let print = |args: &[&str]| {
        let output = Command::new(REALTIMER)
            .args(["serve", "--print-config"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let printed = print(&[
        "--room-capacity",
        "3",
        "--stun-listen",
        "127.0.0.1:3478",
        "--turn-user",
        "alice:pw",
        "--relay-ports",
        "40000-40999",
        "--relay-deny",
        "198.51.100.0/24",
        "--turn-tcp",
        "false",
    ]);
    assert!(printed.contains("\ncapacity = 3\n"), "{printed}");
    for line in [
        "users = [\"alice:pw\"]",
        "relay_ports = \"40000-40999\"",
        "relay_deny = [\"198.51.100.0/24\"]",
        "tcp = false",
    ] {
        assert!(
            printed.contains(&format!("\n{line}\n")),
            "{line} in {printed}"
        );
    }
    assert!(
        printed.contains("listen = [\"127.0.0.1:3478\"]"),
        "{printed}"
    );
    let file = std::env::temp_dir().join(format!(
        "realtimer-print-config-{}.toml",
        std::process::id()
    ));
    std::fs::write(&file, &printed).unwrap();
    assert_eq!(print(&["--config", file.to_str().unwrap()]), printed);
    let _ = std::fs::remove_file(&file);
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/realtimer.toml");
    assert_eq!(print(&["--config", example.to_str().unwrap()]), print(&[]));
}

/// deploy/realtimer.service passes `systemd-analyze verify` (with its
/// ExecStart pointed at this build, as `install` would put it), and
/// deploy/realtimer.env's settings are ones `realtimer serve` takes.
/// Without systemd-analyze (no systemd) the unit part says so and passes.
#[test]
fn the_systemd_unit_verifies_and_its_environment_file_is_taken() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let env_file = std::fs::read_to_string(root.join("deploy/realtimer.env")).unwrap();
    let settings: Vec<(&str, &str)> = env_file
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    assert!(!settings.is_empty(), "{env_file}");
    let output = Command::new(REALTIMER)
        .args(["serve", "--print-config"])
        .envs(settings.iter().copied())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("listen = \"127.0.0.1:8080\""), "{printed}");

    let unit = std::fs::read_to_string(root.join("deploy/realtimer.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/realtimer serve"),
        "{unit}"
    );
    let dir = std::env::temp_dir().join(format!("realtimer-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("realtimer.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/realtimer", REALTIMER)).unwrap();
    let verify = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    {
        Ok(verify) => verify,
        Err(e) => {
            println!("systemd-analyze not run ({e}): no systemd here");
            return;
        }
    };
    let said = String::from_utf8_lossy(&verify.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    // verify exits 0 with warnings too (an unknown key is "ignoring"):
    // nothing may be said about the unit.
    assert!(
        verify.status.success() && !said.contains("realtimer.service"),
        "{said}"
    );
}
