//! The audio jitter buffer behind a netsim link with 50 ms of jitter and
//! 5% loss: 20 s of 20 ms packets, played by a clock of its own.

#![allow(clippy::disallowed_methods)] // one start time for virtual time

use std::time::{Duration, Instant};

use realtimer_media::{AudioJitterBuffer, AudioJitterConfig, Playout};
use realtimer_netsim::{LinkConfig, Loss, Mailbox, Network};

const PACKETS: u32 = 1_000;
const FRAME: Duration = Duration::from_millis(20);

/// Each packet's (arrival, sequence number, timestamp) through the link.
fn arrivals(seed: u64, start: Instant) -> Vec<(Instant, u16, u32)> {
    let mut net = Network::new(seed, start);
    let sender = net.add_host(&["192.0.2.1".parse().unwrap()], None);
    let receiver = net.add_host(&["198.51.100.1".parse().unwrap()], None);
    net.set_uplink(
        sender,
        LinkConfig::default()
            .delay(Duration::from_millis(30))
            .jitter(Duration::from_millis(50))
            .loss(Loss::Independent(0.05)),
    );
    let a = net.attach(sender, Mailbox::bind(5000));
    let b = net.attach(receiver, Mailbox::bind(6000));
    for i in 0..PACKETS {
        let mut packet = (i as u16).wrapping_add(65_000).to_be_bytes().to_vec();
        packet.extend_from_slice(&(i * 960).wrapping_add(u32::MAX - 50_000).to_be_bytes());
        net.node_mut::<Mailbox>(a).send_at(
            start + FRAME * i,
            "198.51.100.1:6000".parse().unwrap(),
            packet,
        );
    }
    net.run_for(FRAME * (PACKETS + 100));
    net.node_mut::<Mailbox>(b)
        .take_received()
        .into_iter()
        .map(|r| {
            let d = &r.datagram.contents;
            (
                r.at,
                u16::from_be_bytes([d[0], d[1]]),
                u32::from_be_bytes([d[2], d[3], d[4], d[5]]),
            )
        })
        .collect()
}

#[test]
fn conceals_losses_and_keeps_its_delay_near_the_jitter() {
    let start = Instant::now();
    let arrived = arrivals(15, start);
    let lost = PACKETS as usize - arrived.len();
    assert!((25..=80).contains(&lost), "5% of 1,000 lost: {lost}");
    let mut buffer = AudioJitterBuffer::new(AudioJitterConfig::default());
    let mut next = arrived.iter().peekable();
    let (mut played, mut fec, mut concealed, mut silence) = (0u32, 0u32, 0u32, 0u32);
    // The sound card's clock: every 20 ms, 7 ms out of phase.
    for pull in 0..PACKETS + 20 {
        let now = start + Duration::from_millis(7) + FRAME * pull;
        while let Some(&&(at, seq, ts)) = next.peek() {
            if at > now {
                break;
            }
            buffer.insert(
                at,
                seq,
                ts,
                // An Opus SILK packet with its LBRR flag set (FEC).
                bytes::Bytes::from([[9 << 3, 0b0100_0000].as_slice(), &ts.to_be_bytes()].concat()),
            );
            next.next();
        }
        match buffer.pull(now) {
            Playout::Packet(_) => played += 1,
            Playout::Fec { samples, .. } => {
                assert_eq!(samples, 960);
                fec += 1
            }
            Playout::Conceal { .. } => concealed += 1,
            Playout::Silence { .. } => silence += 1,
        }
    }
    let stats = buffer.stats();
    let received = arrived.len() as u32;
    // Everything that came is played, skipped to catch up, or was late.
    let accelerated = (stats.removed_samples_for_acceleration / 960) as u32;
    assert_eq!(
        played + accelerated + stats.packets_discarded as u32,
        received,
        "{stats:?}"
    );
    assert!(stats.packets_discarded <= 15, "few late packets: {stats:?}");
    // Losses are made up, a lost packet mostly from the next one's FEC.
    assert!(
        fec + concealed >= lost as u32,
        "{fec} FEC + {concealed} concealed < {lost} lost"
    );
    assert!(
        fec * 2 >= lost as u32,
        "FEC for most losses: {fec} of {lost}"
    );
    let concealment = f64::from(fec + concealed) / f64::from(played + fec + concealed);
    assert!(
        concealment < 0.10,
        "concealed {:.1}% of frames",
        concealment * 100.0
    );
    // As Chromium counts: a packet rebuilt from FEC is emitted, not
    // concealed.
    assert_eq!(stats.concealed_samples, u64::from(concealed) * 960);
    assert_eq!(stats.fec_recovered, u64::from(fec));
    assert_eq!(
        stats.jitter_buffer_emitted_count,
        u64::from(played + fec) * 960
    );
    // The target follows the jitter: its 95th percentile of 0-50 ms.
    let target = buffer.target_delay();
    assert!(
        (Duration::from_millis(35)..=Duration::from_millis(60)).contains(&target),
        "{target:?}"
    );
    // And the buffer holds to it: played samples waited no more than the
    // target and a frame on average.
    let mean = stats.mean_delay();
    let mean_target = Duration::from_secs_f64(
        stats.jitter_buffer_target_delay / stats.jitter_buffer_emitted_count as f64,
    );
    assert!(
        mean <= mean_target + FRAME,
        "mean delay {mean:?}, target {mean_target:?}"
    );
    assert!(
        silence <= 10,
        "started within 200 ms: {silence} frames of silence"
    );
    eprintln!(
        "lost {lost}, played {played}, FEC {fec}, concealed {concealed}, accelerated {accelerated}, late {}, \
         target {target:?}, mean delay {mean:?} (target mean {mean_target:?})",
        stats.packets_discarded
    );
}
