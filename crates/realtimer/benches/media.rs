//! Media benchmark: RTP packets of 1,200 bytes from a `TrackLocal` of one
//! PeerConnection to the `TrackRemote` of another over loopback (SRTP
//! AES-GCM, both drivers and the UDP sockets in this process), as fast as
//! the receiver keeps up. Prints packets/s and CPU microseconds a packet;
//! the reference, measured in the same run, is the SRTP work alone
//! (protect + unprotect of the same packets with realtimer-srtp) plus one
//! UDP send and receive a packet on a blocking socket pair, the floor any
//! stack pays, and the ratio. The flow runs twice in the same process:
//! with transport-wide congestion control (the estimator and the pacer
//! on every packet, as in a call) and without it (packets leave as
//! written), and the ratio of the two is the cost of the estimator and
//! pacer. Each run's CPU wait (time its threads were runnable but not
//! running, /proc/self/task/*/schedstat) is printed: on a shared machine
//! it says how much the numbers were disturbed.
//!
//! `cargo bench -p realtimer --bench media`.
// A benchmark measures wall-clock time and reports on stdout.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer::{Bitrate, BweConfig, MediaKind, RtpPacket};
use realtimer_rtp::RtpHeader;
use realtimer_srtp::{ProtectionProfile, SrtpContext};
use tokio::sync::Notify;
use tokio::time::timeout;

use realtimer_test_support::cpu::{cpu_wait_seconds, process_cpu_seconds as cpu_seconds};
use realtimer_test_support::pair::{config, connect_track};

const PACKETS: u64 = 200_000;
const PAYLOAD: usize = 1200;
/// Packets in flight before the writer waits for the reader.
const WINDOW: u64 = 256;

fn packet(seq: u64) -> RtpPacket {
    RtpPacket {
        payload_type: 96,
        sequence_number: seq as u16,
        timestamp: (seq * 3000) as u32,
        marker: seq % 8 == 7,
        ssrc: 0,
        payload: Bytes::from(vec![(seq % 251) as u8; PAYLOAD]),
    }
}

/// One run's figures.
struct Run {
    seconds: f64,
    cpu: f64,
    cpu_wait: f64,
    received: u64,
}

/// Sends [`PACKETS`] packets from a to b, with transport-wide congestion
/// control (estimator and pacer) or without.
async fn realtimer_run(transport_cc: bool) -> Run {
    // With it, the estimator and the pacer run on every packet, as in a
    // call; held at a rate far above loopback's so they measure their
    // cost, not limit the flow.
    let mut sender = config(None);
    let unlimited = Bitrate::bps(100_000_000_000);
    sender.rtc.bwe = BweConfig {
        start: unlimited,
        min: unlimited,
        max: unlimited,
        initial_probing: false,
    };
    sender.rtc.transport_cc = transport_cc;
    let (a, b, local, remote) = connect_track(sender, MediaKind::Video).await;
    // Until SRTP runs on both ends, packets are refused: send until one
    // comes through.
    loop {
        local.write_rtp(packet(0)).await.unwrap();
        if timeout(Duration::from_millis(50), remote.read_rtp())
            .await
            .is_ok()
        {
            break;
        }
    }
    let received = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    let reader = {
        let (received, progress) = (received.clone(), progress.clone());
        tokio::spawn(async move {
            while let Ok(Some(_)) = timeout(Duration::from_secs(1), remote.read_rtp()).await {
                let n = received.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 32 == 0 {
                    progress.notify_one();
                }
                if n == PACKETS {
                    break;
                }
            }
        })
    };
    let (t0, cpu0, wait0) = (Instant::now(), cpu_seconds(), cpu_wait_seconds());
    for seq in 1..=PACKETS {
        // A lost packet must not stall the writer: wait 20 ms at most.
        if seq - received.load(Ordering::Relaxed) > WINDOW {
            let _ = timeout(Duration::from_millis(20), progress.notified()).await;
        }
        local.write_rtp(packet(seq)).await.unwrap();
    }
    let _ = reader.await;
    let (seconds, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let cpu_wait = cpu_wait_seconds() - wait0;
    a.close().await;
    b.close().await;
    Run {
        seconds,
        cpu,
        cpu_wait,
        received: received.load(Ordering::Relaxed),
    }
}

/// A second reference: the same datagrams (payload + RTP header + GCM
/// tag) through a blocking loopback UDP socket pair, one send and one
/// receive system call each, unbatched (realtimer's drivers batch with
/// sendmmsg/GSO and recvmmsg/GRO where the OS has them) (CPU seconds).
fn udp_reference() -> f64 {
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let datagram = vec![0x80u8; PAYLOAD + 12 + 16];
    let mut buf = vec![0u8; 2048];
    let cpu0 = cpu_seconds();
    for _ in 0..PACKETS {
        tx.send(&datagram).unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(n, datagram.len());
    }
    cpu_seconds() - cpu0
}

/// The reference: protect and unprotect the same packets (CPU seconds).
fn srtp_reference() -> f64 {
    let key = [7u8; 16];
    let salt = [9u8; 12];
    let mut tx = SrtpContext::new(ProtectionProfile::AeadAes128Gcm, &key, &salt).unwrap();
    let mut rx = SrtpContext::new(ProtectionProfile::AeadAes128Gcm, &key, &salt).unwrap();
    let (mut plain, mut protected, mut back) = (Vec::new(), Vec::new(), Vec::new());
    let cpu0 = cpu_seconds();
    for seq in 1..=PACKETS {
        let p = packet(seq);
        plain.clear();
        RtpHeader {
            payload_type: p.payload_type,
            sequence_number: p.sequence_number,
            timestamp: p.timestamp,
            ssrc: 0x1234_5678,
            ..RtpHeader::default()
        }
        .write_packet(&p.payload, 0, &mut plain)
        .unwrap();
        tx.protect_rtp(&plain, &mut protected).unwrap();
        rx.unprotect_rtp(&protected, &mut back).unwrap();
        assert_eq!(back.len(), plain.len());
    }
    cpu_seconds() - cpu0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let paced = runtime.block_on(realtimer_run(true));
    let unpaced = runtime.block_on(realtimer_run(false));
    let reference = srtp_reference();
    let udp = udp_reference();
    let per_packet = |cpu: f64| cpu / PACKETS as f64 * 1e6;
    println!("== RTP {PAYLOAD} B, {PACKETS} packets, TrackLocal -> TrackRemote over loopback (SRTP AES-128-GCM) ==");
    for (name, r) in [("realtimer", &paced), ("without tcc", &unpaced)] {
        println!(
            "{name:<14} {:>9.0} packets/s  {:>6.1} MB/s  {:>6.2} CPU-us a packet  ({} received, {:.2}% lost; waited {:.2} s for a CPU)",
            r.received as f64 / r.seconds,
            r.received as f64 * PAYLOAD as f64 / r.seconds / 1e6,
            per_packet(r.cpu),
            r.received,
            100.0 * (PACKETS - r.received.min(PACKETS)) as f64 / PACKETS as f64,
            r.cpu_wait,
        );
    }
    println!(
        "reference: SRTP protect + unprotect alone  {:>6.2} CPU-us a packet",
        per_packet(reference)
    );
    println!(
        "reference: UDP send + receive alone        {:>6.2} CPU-us a packet",
        per_packet(udp)
    );
    println!(
        "ratio realtimer / (SRTP + unbatched UDP alone): {:.2}x",
        paced.cpu / (reference + udp).max(1e-9)
    );
    println!(
        "ratio with / without transport-wide CC (estimator, pacer, feedback): {:.2}x",
        paced.cpu / unpaced.cpu.max(1e-9)
    );
}
