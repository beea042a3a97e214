//! CPU cost of data channels: DTLS + SCTP + DCEP on a lossless zero-delay
//! link in one process (no sockets), MB/s of payload per core; in the same
//! run, the same transfer with OpenSSL's record layer for application data
//! (`DtlsConfig::own_record_layer` off) as the reference.
//! Run with `cargo bench -p realtimer-datachannel`. For profiling,
//! `REALTIMER_BENCH_ONLY=direct` runs only our record layer without the
//! simulator, on 64 KiB messages.
#![allow(missing_docs, clippy::disallowed_methods, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use realtimer_datachannel::{ChannelData, ChannelInit, DataChannelEvent};
use realtimer_netsim::LinkConfig;

fn through_dtls(message_size: usize, total: usize) -> f64 {
    let mut l = Link::new(1, LinkConfig::default());
    l.connect();
    let (c, s) = (l.client, l.server);
    let id = l.open_channel("bench", Duration::from_secs(5));
    l.peer_mut(c)
        .channels
        .association_mut()
        .set_remote_max_message_size(message_size);
    let payload = Bytes::from(vec![0x5a; message_size]);
    let count = total / message_size;
    let t0 = CpuClock::start();
    let mut sent = 0;
    let mut received = 0;
    while received < count {
        let now = l.net.now();
        while sent < count && l.peer(c).channels.buffered_amount(id) < 4 * 1024 * 1024 {
            l.peer_mut(c)
                .channels
                .send(now, id, ChannelData::Binary(payload.clone()))
                .unwrap();
            sent += 1;
        }
        l.run_until(Duration::from_millis(5), |_, _| false);
        let peer = l.peer_mut(s);
        received += peer
            .events
            .iter()
            .filter(|(_, e)| matches!(e, DataChannelEvent::Message { .. }))
            .count();
        peer.events.clear();
    }
    (count * message_size) as f64 / t0.elapsed_secs()
}

/// Payload rates of [`direct`], per CPU-second: both ends on one core,
/// and each end alone (its share of that CPU time, split by the wall time
/// spent in each end's calls).
struct Direct {
    both: f64,
    sender: f64,
    receiver: f64,
}

/// Wall time spent in one end's calls.
#[derive(Default)]
struct Share(Duration);

impl Share {
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t0 = Instant::now();
        let out = f();
        self.0 += t0.elapsed();
        out
    }
}

/// The same without the simulator: datagrams move straight between the
/// two peers, so only DTLS, SCTP and DCEP are measured.
fn direct(message_size: usize, total: usize, own_record_layer: bool) -> Direct {
    use realtimer_netsim::Node;
    let mut now = Instant::now();
    let (mut a, mut b) = peers_with(1, now, own_record_layer);
    let (mut a_share, mut b_share) = (Share::default(), Share::default());
    let mut in_flight = Vec::new();
    // Moves datagrams both ways until both ends are quiet, timing each end.
    let mut exchange =
        |a: &mut Peer, b: &mut Peer, a_share: &mut Share, b_share: &mut Share, now| {
            let mut moved = false;
            loop {
                a_share.time(|| in_flight.extend(std::iter::from_fn(|| a.poll_transmit(now))));
                let mut any = !in_flight.is_empty();
                b_share.time(|| {
                    for d in in_flight.drain(..) {
                        b.handle_datagram(now, d);
                    }
                    in_flight.extend(std::iter::from_fn(|| b.poll_transmit(now)));
                });
                any |= !in_flight.is_empty();
                a_share.time(|| {
                    for d in in_flight.drain(..) {
                        a.handle_datagram(now, d);
                    }
                });
                if !any {
                    return moved;
                }
                moved = true;
            }
        };
    while !(a.saw(&DataChannelEvent::Connected) && b.saw(&DataChannelEvent::Connected)) {
        if !exchange(&mut a, &mut b, &mut a_share, &mut b_share, now) {
            now += Duration::from_millis(10);
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
    }
    assert_eq!(a.dtls.uses_own_record_layer(), own_record_layer);
    let id = a
        .channels
        .create_channel(now, "bench", &ChannelInit::default())
        .unwrap();
    a.channels
        .association_mut()
        .set_remote_max_message_size(message_size);
    let payload = Bytes::from(vec![0x5a; message_size]);
    let count = total / message_size;
    let (mut a_share, mut b_share) = (Share::default(), Share::default());
    let t0 = CpuClock::start();
    let (mut sent, mut received) = (0, 0);
    while received < count {
        a_share.time(|| {
            while sent < count && a.channels.buffered_amount(id) < 4 * 1024 * 1024 {
                if a.channels
                    .send(now, id, ChannelData::Binary(payload.clone()))
                    .is_err()
                {
                    break; // not open yet
                }
                sent += 1;
            }
        });
        let moved = exchange(&mut a, &mut b, &mut a_share, &mut b_share, now);
        received += b
            .events
            .iter()
            .filter(|(_, e)| matches!(e, DataChannelEvent::Message { .. }))
            .count();
        b.events.clear();
        a.events.clear();
        if !moved {
            now += Duration::from_millis(1);
            a_share.time(|| a.handle_timeout(now));
            b_share.time(|| b.handle_timeout(now));
        }
    }
    let cpu = t0.elapsed_secs();
    let bytes = (count * message_size) as f64;
    let (a_wall, b_wall) = (a_share.0.as_secs_f64(), b_share.0.as_secs_f64());
    let a_cpu = cpu * a_wall / (a_wall + b_wall);
    Direct {
        both: bytes / cpu,
        sender: bytes / a_cpu,
        receiver: bytes / (cpu - a_cpu),
    }
}

/// The ceiling the cipher alone sets: AES-128-GCM sealing and opening
/// the payload in records of the size SCTP fills at the default MTU
/// (1160-byte SCTP packets), with ring, in place, nothing else.
fn cipher_only(total: usize) -> f64 {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7; 16]).unwrap());
    let mut record = vec![0x5a; 1160];
    // Payload per packet: 1160 less the SCTP common and DATA chunk headers.
    let payload = 1160 - 12 - 16;
    let t0 = CpuClock::start();
    let mut moved = 0;
    let mut seq = 0u64;
    while moved < total {
        let mut nonce = [0; 12];
        nonce[4..].copy_from_slice(&seq.to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from([0; 13]),
                &mut record,
            )
            .unwrap();
        record.extend_from_slice(tag.as_ref());
        key.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from([0; 13]),
            &mut record,
        )
        .unwrap();
        record.truncate(1160);
        seq += 1;
        moved += payload;
    }
    moved as f64 / t0.elapsed_secs()
}

/// This thread's CPU time (`/proc/thread-self/schedstat`, nanoseconds on
/// a CPU), so that other load on the machine does not count against us;
/// wall time where that file does not exist.
struct CpuClock {
    cpu: Option<u64>,
    wall: Instant,
}

impl CpuClock {
    fn read() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        stat.split_whitespace().next()?.parse().ok()
    }

    fn start() -> Self {
        Self {
            cpu: Self::read(),
            wall: Instant::now(),
        }
    }

    fn elapsed_secs(&self) -> f64 {
        match (self.cpu, Self::read()) {
            (Some(start), Some(end)) => (end - start) as f64 / 1e9,
            _ => self.wall.elapsed().as_secs_f64(),
        }
    }
}

fn main() {
    println!(
        "data channel CPU cost, one process, lossless zero-delay link (both ends on one core), MB of payload per CPU-second:"
    );
    if std::env::var("REALTIMER_BENCH_ONLY").as_deref() == Ok("direct") {
        let rate = direct(64 * 1024, 1024 * 1024 * 1024, true).both;
        println!(
            "  DTLS+SCTP+DCEP, 65536 B messages: {:>7.0} MB/s direct",
            rate / 1e6
        );
        return;
    }
    for size in [1024usize, 16 * 1024, 64 * 1024] {
        let rate = through_dtls(size, 256 * 1024 * 1024);
        let ours = direct(size, 256 * 1024 * 1024, true);
        let openssl = direct(size, 128 * 1024 * 1024, false).both;
        println!(
            "  DTLS+SCTP+DCEP, {:>6} B messages: {:>5.0} MB/s direct ({:.2}x OpenSSL's record layer: {:.0} MB/s; sending end alone {:.0}, receiving end alone {:.0}), {:>5.0} MB/s through netsim",
            size,
            ours.both / 1e6,
            ours.both / openssl,
            openssl / 1e6,
            ours.sender / 1e6,
            ours.receiver / 1e6,
            rate / 1e6
        );
    }
    println!(
        "  ceiling: AES-128-GCM seal + open alone at this record size: {:.0} MB/s",
        cipher_only(1024 * 1024 * 1024) / 1e6
    );
}
