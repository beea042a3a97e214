//! coturn's `turnserver` (Debian package `coturn`, installed by
//! `scripts/test`) started on loopback for a test: one long-term user,
//! relays on 127.0.0.1, loopback peers allowed, killed on drop. Shared by
//! the TURN interop tests of `realtimer-ice` and `realtimer` (the latter
//! includes this file by path).
#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The realm, user and password every coturn started here has.
pub const REALM: &str = "realtimer.test";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "wonderland";

/// A running `turnserver`.
pub struct Coturn {
    child: Child,
    /// UDP and TCP listening port.
    pub port: u16,
    /// TLS listening port, when started with a certificate.
    pub tls_port: Option<u16>,
    dir: PathBuf,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Coturn {
    /// Starts coturn with `extra` flags; with `tls` = (certificate,
    /// private key) PEM files, a TLS listener too.
    pub fn start(extra: &[&str], tls: Option<(&str, &str)>) -> Coturn {
        // A port found free may be taken by another test's server before
        // coturn binds it (tests start `realtimer serve` on ephemeral ports
        // too); then the STUN answer comes from that server, and a test
        // would talk to it instead: try another port.
        for _ in 0..5 {
            let coturn = Self::start_on_free_ports(extra, tls);
            if answers_as_coturn(coturn.address()) {
                return coturn;
            }
        }
        panic!("coturn did not come up on a port of its own in 5 tries");
    }

    fn start_on_free_ports(extra: &[&str], tls: Option<(&str, &str)>) -> Coturn {
        let port = free_port();
        let tls_port = tls.map(|_| free_port());
        let dir = std::env::temp_dir().join(format!("realtimer-coturn-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let user = format!("{USER}:{PASSWORD}");
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
            &user,
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
            child,
            port,
            tls_port,
            dir,
        }
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

/// A test CA and a server certificate it signed for `localhost` and
/// 127.0.0.1, made with the `openssl` command in a fresh directory.
pub struct TestCertificate {
    /// The CA certificate (PEM) clients trust.
    pub ca_pem: String,
    /// The server's certificate chain file.
    pub cert: PathBuf,
    /// The server's private key file.
    pub key: PathBuf,
    dir: PathBuf,
}

impl Drop for TestCertificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestCertificate {
    pub fn new() -> TestCertificate {
        let dir = std::env::temp_dir().join(format!(
            "realtimer-turn-cert-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).output().unwrap();
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let (ca_key, ca_cert) = (path("ca.key"), path("ca.pem"));
        let (key, csr, cert) = (path("server.key"), path("server.csr"), path("server.pem"));
        let ext = path("ext.cnf");
        std::fs::write(
            &ext,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca_cert,
            "-days",
            "2",
            "-subj",
            "/CN=realtimer test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
        TestCertificate {
            ca_pem: std::fs::read_to_string(&ca_cert).unwrap(),
            cert: cert.into(),
            key: key.into(),
            dir,
        }
    }
}
