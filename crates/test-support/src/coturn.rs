//! coturn's `turnserver` (Debian package `coturn`, installed by
//! `scripts/test`) started on loopback for a test: one long-term user,
//! relays on 127.0.0.1, loopback peers allowed, killed on drop. Used by
//! the TURN and STUN interop tests and benchmarks of `realtimer-ice`,
//! `realtimer` and the CLI.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ports::free_udp_and_tcp_port;
use crate::process::Running;

/// The realm every coturn started here has.
pub const REALM: &str = "realtimer.test";
/// The long-term user of every coturn started here.
pub const USER: &str = "alice";
/// [`USER`]'s password.
pub const PASSWORD: &str = "wonderland";

/// A running `turnserver`.
#[derive(Debug)]
pub struct Coturn {
    process: Running,
    /// UDP and TCP listening port.
    pub port: u16,
    /// TLS listening port, when started with a certificate.
    pub tls_port: Option<u16>,
    dir: PathBuf,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        // Stopped before its folder goes.
        self.process.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Coturn {
    /// Starts coturn with `extra` flags; with `tls` = (certificate,
    /// private key) PEM files, a TLS listener too.
    pub fn start(extra: &[&str], tls: Option<(&str, &str)>) -> Coturn {
        Self::start_for(&format!("{USER}:{PASSWORD}"), extra, tls)
    }

    /// [`Coturn::start`] with another long-term `user` (`name:password`).
    pub fn start_for(user: &str, extra: &[&str], tls: Option<(&str, &str)>) -> Coturn {
        // A port found free may be taken by another test's server before
        // coturn binds it (tests start `realtimer serve` on ephemeral ports
        // too); then the STUN answer comes from that server, and a test
        // would talk to it instead: try another port.
        for _ in 0..5 {
            let coturn = Self::start_on_free_ports(user, extra, tls);
            if answers_as_coturn(coturn.address()) {
                return coturn;
            }
        }
        panic!("coturn did not come up on a port of its own in 5 tries");
    }

    fn start_on_free_ports(user: &str, extra: &[&str], tls: Option<(&str, &str)>) -> Coturn {
        let port = free_udp_and_tcp_port();
        let tls_port = tls.map(|_| free_udp_and_tcp_port());
        let dir = std::env::temp_dir().join(format!("realtimer-coturn-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let port_text = port.to_string();
        let pid = dir.join("turnserver.pid");
        let db = dir.join("turndb");
        let mut args: Vec<&str> = vec![
            "-n",
            "--listening-ip",
            "127.0.0.1",
            "--listening-port",
            &port_text,
            "--relay-ip",
            "127.0.0.1",
            "--min-port",
            "40000",
            "--max-port",
            "44999",
            "--lt-cred-mech",
            "--user",
            user,
            "--realm",
            REALM,
            "--allow-loopback-peers",
            "--no-dtls",
            "--no-cli",
            "--no-rfc5780",
            "--log-file",
            "stdout",
            "--pidfile",
            pid.to_str().unwrap(),
            "--userdb",
            db.to_str().unwrap(),
        ];
        let tls_port_text = tls_port.map(|p| p.to_string());
        match (tls, &tls_port_text) {
            (Some((cert, key)), Some(tls_port)) => {
                args.extend_from_slice(&["--tls-listening-port", tls_port, "--cert", cert]);
                args.extend_from_slice(&["--pkey", key]);
            }
            _ => args.push("--no-tls"),
        }
        args.extend_from_slice(extra);
        let child = Command::new("turnserver")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver (coturn) must be installed: scripts/test installs it");
        Coturn {
            process: Running::new(child),
            port,
            tls_port,
            dir,
        }
    }

    /// The process id (for its CPU time in /proc).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The UDP (and TCP) listener.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// Waits until a STUN Binding request to `server` is answered; true if
/// coturn answered (its SOFTWARE attribute names it), false if another
/// server did.
fn answers_as_coturn(server: SocketAddr) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Binding request, no attributes, magic cookie, a fixed transaction id.
    let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    request.extend_from_slice(&[7; 12]);
    let mut buf = [0u8; 1500];
    for _ in 0..50 {
        let _ = socket.send_to(&request, server);
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            if n >= 20 && buf[0] == 0x01 && buf[1] == 0x01 {
                return buf[..n].windows(6).any(|w| w == b"Coturn");
            }
        }
    }
    panic!("TURN server on {server} does not answer STUN");
}
