//! A test CA and a server certificate it signed, as PEM files in a
//! directory of their own, removed when the test ends. Clients trust
//! [`TestCertificate::ca_pem`] (rustls, our TURN client) or skip checks
//! (the browsers of the tests).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A server certificate for `localhost` and 127.0.0.1, signed by a CA
/// made for it.
#[derive(Debug)]
pub struct TestCertificate {
    /// The CA certificate (PEM) clients trust.
    pub ca_pem: String,
    /// The server's certificate file (PEM).
    pub cert: PathBuf,
    /// The server's private key file (PEM).
    pub key: PathBuf,
    dir: PathBuf,
}

impl Drop for TestCertificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Default for TestCertificate {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCertificate {
    /// A fresh CA and server certificate, in a fresh directory.
    pub fn new() -> TestCertificate {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "realtimer-test-cert-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "realtimer test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();

        let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        TestCertificate {
            ca_pem,
            cert: cert_path,
            key: key_path,
            dir,
        }
    }

    /// The certificate file's path, as text (for command lines).
    pub fn cert_path(&self) -> &str {
        self.cert.to_str().expect("a UTF-8 temp path")
    }

    /// The key file's path, as text (for command lines).
    pub fn key_path(&self) -> &str {
        self.key.to_str().expect("a UTF-8 temp path")
    }

    /// `realtimer serve` flags for HTTPS and TURN over TLS (on an
    /// ephemeral port) with this certificate.
    pub fn serve_flags(&self) -> [&str; 6] {
        [
            "--tls-cert",
            self.cert_path(),
            "--tls-key",
            self.key_path(),
            "--turn-tls-port",
            "0",
        ]
    }
}
