//! Child processes for the CLI's integration tests: started, their stderr
//! read line by line, and killed when the test ends.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A child process killed when the test ends, pass or fail.
pub struct Running {
    child: Child,
    stderr_lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Waits for a stderr line containing `needle` and returns it.
    pub fn wait_for_line(&self, needle: &str) -> String {
        loop {
            match self.stderr_lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stderr line with {needle:?}: {e}"),
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stderr line received so far.
    pub fn drain(&self) -> Vec<String> {
        self.stderr_lines.try_iter().collect()
    }
}

pub fn spawn(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Running {
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e} (scripts/test installs it)"));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        child,
        stderr_lines: rx,
    }
}

/// A free UDP port on 127.0.0.1 (bound and released).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A self-signed certificate for `name` and its key, as PEM files in a
/// directory of their own, removed when the test ends.
pub struct TestCertificate {
    dir: std::path::PathBuf,
    /// The certificate's PEM file.
    pub cert: String,
    /// The private key's PEM file.
    pub key: String,
}

impl TestCertificate {
    /// `tag` names the directory (unique per test and process).
    pub fn new(tag: &str, name: &str) -> TestCertificate {
        let dir = std::env::temp_dir().join(format!("realtimer-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec![name.into()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
        TestCertificate {
            cert: path(cert),
            key: path(key),
            dir,
        }
    }

    /// `realtimer serve` flags for HTTPS and TURN over TLS (on an
    /// ephemeral port) with this certificate.
    pub fn serve_flags(&self) -> [&str; 6] {
        [
            "--tls-cert",
            &self.cert,
            "--tls-key",
            &self.key,
            "--turn-tls-port",
            "0",
        ]
    }
}

impl Drop for TestCertificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
