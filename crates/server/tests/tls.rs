//! HTTPS and WSS with `TlsConfig` (`--tls-cert`/`--tls-key`): a self-signed
//! certificate made here with rcgen, and clients that trust exactly it.

use realtimer_test_support::server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtimer_server::{ServerConfig, TlsConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

struct Cert {
    dir: PathBuf,
    der: CertificateDer<'static>,
    tls: TlsConfig,
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn self_signed(tag: &str) -> Cert {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("realtimer-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, key.cert.pem()).unwrap();
    std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap();
    Cert {
        dir,
        der: key.cert.der().clone(),
        tls: TlsConfig {
            cert: cert_path,
            key: key_path,
        },
    }
}

fn connector(trusted: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_stream(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    connector(trusted).connect(name, tcp).await
}

#[tokio::test]
async fn https_and_wss_with_a_trusted_self_signed_certificate() {
    let cert = self_signed("ok");
    let addr = server::start_server(ServerConfig {
        tls: Some(cert.tls.clone()),
        ..ServerConfig::default()
    });

    // HTTPS: the web app's index.
    let mut stream = tls_stream(addr, &cert.der).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response:.200}");
    assert!(response.contains("<html"), "{response:.400}");

    // WSS: the JSON protocol, two clients in a room.
    let mut clients = Vec::new();
    for _ in 0..2 {
        let stream = tls_stream(addr, &cert.der).await.unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws", stream)
            .await
            .unwrap();
        let welcome = next(&mut ws).await;
        assert_eq!(welcome["type"], "welcome");
        ws.send(Message::text(
            json!({"type": "join", "room": "tls"}).to_string(),
        ))
        .await
        .unwrap();
        clients.push(ws);
    }
    assert_eq!(next(&mut clients[0]).await["type"], "created");
    assert_eq!(next(&mut clients[1]).await["type"], "joined");
    clients[1]
        .send(Message::text(
            json!({"type": "message", "data": "over TLS"}).to_string(),
        ))
        .await
        .unwrap();
    let mut got = next(&mut clients[0]).await;
    while got["type"] != "message" {
        got = next(&mut clients[0]).await;
    }
    assert_eq!(got["data"], "over TLS");
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let cert = self_signed("served");
    let other = self_signed("other");
    let addr = server::start_server(ServerConfig {
        tls: Some(cert.tls.clone()),
        ..ServerConfig::default()
    });
    assert!(tls_stream(addr, &other.der).await.is_err());
    // Plain HTTP on the TLS port gets no page.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(!String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
}

#[test]
fn a_missing_key_file_is_a_clear_error() {
    let cert = self_signed("missing");
    let tls = TlsConfig {
        key: cert.dir.join("nope.pem"),
        ..cert.tls.clone()
    };
    let e = tls.load().unwrap_err();
    assert!(e.to_string().contains("nope.pem"), "{e}");
}

async fn next<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no frame within 5 s")
            .expect("socket closed")
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}
