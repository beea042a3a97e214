//! Data channel throughput through a TURN relay, for the client side: one
//! reliable ordered channel, 64 KiB messages, 32 MiB, between two
//! `PeerConnection`s in this process with `iceTransportPolicy: relay`,
//! through coturn over UDP, TCP and TLS. A direct pair on loopback (host
//! candidates) is measured in the same run as the reference; ratios are
//! printed. (Our server against coturn is `realtimer serve`'s benchmark;
//! the in-process test server is a plain driver, not a fair opponent.)
//!
//! `cargo bench -p realtimer --bench turn` (coturn's `turnserver` must be
//! installed; `scripts/test` installs it).
#![allow(clippy::disallowed_methods, clippy::print_stdout)] // a benchmark reads the real clock and prints its figures

use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer::{ChannelData, DataChannelInit, PeerConnectionConfig};
use realtimer_test_support::certificate::TestCertificate;
use realtimer_test_support::coturn::{Coturn, PASSWORD};
use realtimer_test_support::relay_pair::{negotiate, relay_config, relay_pair};
use tokio::time::timeout;

const MESSAGE: usize = 64 * 1024;
const TOTAL: usize = 32 * 1024 * 1024;
/// Sender back-pressure: wait below this much buffered.
const HIGH: usize = 4 * 1024 * 1024;
const LOW: usize = 1024 * 1024;
/// No case may take longer.
const CASE_LIMIT: Duration = Duration::from_secs(60);

/// MB/s of one transfer, or why it did not finish.
async fn transfer(config: PeerConnectionConfig) -> Result<f64, String> {
    let mut pair = relay_pair(config).await;
    let dc = pair
        .a
        .create_data_channel("bulk", DataChannelInit::default())
        .await
        .map_err(|e| e.to_string())?;
    negotiate(&pair.a, &pair.b).await;
    timeout(Duration::from_secs(20), dc.wait_open())
        .await
        .map_err(|_| "the channel did not open")?;
    let remote = timeout(Duration::from_secs(5), pair.b_channels.recv())
        .await
        .map_err(|_| "no remote channel")?
        .ok_or("no remote channel")?;
    dc.set_buffered_amount_low_threshold(LOW).await;
    let receiver = tokio::spawn(async move {
        let mut got = 0usize;
        while got < TOTAL {
            match remote.recv().await {
                Some(ChannelData::Binary(b)) => got += b.len(),
                Some(_) => {}
                None => break,
            }
        }
        got
    });
    let payload = Bytes::from(vec![0x5a; MESSAGE]);
    let start = Instant::now();
    let sent = timeout(CASE_LIMIT, async {
        for _ in 0..TOTAL / MESSAGE {
            if dc.buffered_amount() > HIGH {
                dc.wait_buffered_amount_at_most(LOW).await;
            }
            dc.send_binary(payload.clone())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    })
    .await;
    sent.map_err(|_| "sending timed out")??;
    let got = timeout(CASE_LIMIT, receiver)
        .await
        .map_err(|_| "receiving timed out")?
        .map_err(|e| e.to_string())?;
    let elapsed = start.elapsed().as_secs_f64();
    pair.a.close().await;
    pair.b.close().await;
    if got < TOTAL {
        return Err(format!("only {got} of {TOTAL} bytes arrived"));
    }
    Ok(TOTAL as f64 / elapsed / 1e6)
}

fn show(name: &str, result: &Result<f64, String>, reference: Option<f64>) {
    match (result, reference) {
        (Ok(mbs), Some(r)) => println!("{name:<28} {mbs:8.1} MB/s   {:5.2}x direct", mbs / r),
        (Ok(mbs), None) => println!("{name:<28} {mbs:8.1} MB/s"),
        (Err(e), _) => println!("{name:<28} failed: {e}"),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        println!(
            "64 KiB reliable ordered messages, {} MiB per case, relay-only pairs",
            TOTAL >> 20
        );
        let mut direct = PeerConnectionConfig::default().with_loopback(true);
        direct.interfaces = vec!["127.0.0.1".parse().expect("an address")];
        let reference = transfer(direct).await;
        show("direct (host, reference)", &reference, None);
        let reference = reference.ok();

        let cert = TestCertificate::new();
        let files = (
            cert.cert.to_str().expect("a path"),
            cert.key.to_str().expect("a path"),
        );
        let coturn = Coturn::start(&[], Some(files));
        let tls_port = coturn.tls_port.expect("a TLS port");
        let cases = [
            (
                "coturn, UDP",
                format!("turn:127.0.0.1:{}", coturn.port),
                None,
            ),
            (
                "coturn, TCP",
                format!("turn:127.0.0.1:{}?transport=tcp", coturn.port),
                None,
            ),
            (
                "coturn, TLS",
                format!("turns:localhost:{tls_port}"),
                Some(cert.ca_pem.as_str()),
            ),
        ];
        for (name, url, ca) in cases {
            let result = transfer(relay_config(Some(&url), PASSWORD, ca)).await;
            show(name, &result, reference);
        }
    });
}
