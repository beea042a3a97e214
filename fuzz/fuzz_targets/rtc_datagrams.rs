//! Feeds arbitrary datagrams to a connected `Rtc` (audio, video and a data
//! channel) as if they came from its peer's address: the RFC 7983
//! demultiplexing and everything behind it (ICE, DTLS records, SCTP in
//! DTLS, SRTP and SRTCP) may drop them, never panic. The real peer keeps
//! talking between them, so the state they land on is a live one.
//!
//! Input: datagrams, each a length byte then that many bytes (cut short
//! at the end); its first byte is steered into one of the RFC 7983 ranges
//! by the length byte's top two bits.
#![no_main]
#![allow(clippy::disallowed_methods)] // one clock reading: the origin of virtual time

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use realtimer_proto::{
    Certificate, ChannelData, ChannelRef, DataChannelInit, MediaKind, PeerConnectionState, Rtc,
    RtcConfig, RtcEvent,
};

fn fixture() -> &'static (Certificate, Certificate, Instant) {
    static FIXTURE: OnceLock<(Certificate, Certificate, Instant)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let wall = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        (
            Certificate::generate(wall).expect("certificate"),
            Certificate::generate(wall).expect("certificate"),
            Instant::now(),
        )
    })
}

const A: &str = "10.0.0.1:5000";
const B: &str = "10.0.0.2:5000";

/// Delivers what `from` sends and its candidates to `to`; whether anything
/// moved.
fn deliver(from: &mut Rtc, to: &mut Rtc, now: Instant) -> bool {
    let mut moved = false;
    while let Some(t) = from.poll_transmit() {
        to.handle_receive(now, t.source, t.destination, &t.contents);
        moved = true;
    }
    while let Some(event) = from.poll_event() {
        if let RtcEvent::IceCandidate(c) = event {
            let _ = to.add_ice_candidate(now, c.as_ref());
            moved = true;
        }
    }
    moved
}

/// Delivers both ways until both sides are quiet (or 64 rounds).
fn exchange(a: &mut Rtc, b: &mut Rtc, now: Instant) {
    for _ in 0..64 {
        let moved = deliver(a, b, now) | deliver(b, a, now);
        if !moved {
            return;
        }
    }
}

/// Two cores, negotiated with audio, video and a channel, and connected
/// on virtual time; `None` if they do not connect.
fn connected() -> Option<(Rtc, Rtc, ChannelRef, Instant)> {
    let (ca, cb, start) = fixture();
    let mut now = *start;
    let mut a = Rtc::new(RtcConfig::default().with_seed(1), ca.clone(), now);
    let mut b = Rtc::new(RtcConfig::default().with_seed(2), cb.clone(), now);
    a.add_local_address(now, A.parse().ok()?);
    b.add_local_address(now, B.parse().ok()?);
    a.add_track(MediaKind::Audio, "s", "a").ok()?;
    a.add_track(MediaKind::Video, "s", "v").ok()?;
    let channel = a
        .create_data_channel(now, "c", &DataChannelInit::default())
        .ok()?;
    let offer = a.create_offer().ok()?;
    a.set_local_description(now, offer.clone()).ok()?;
    b.set_remote_description(now, offer).ok()?;
    b.add_track(MediaKind::Video, "s", "v").ok()?;
    let answer = b.create_answer().ok()?;
    b.set_local_description(now, answer.clone()).ok()?;
    a.set_remote_description(now, answer).ok()?;
    for _ in 0..400 {
        exchange(&mut a, &mut b, now);
        if a.connection_state() == PeerConnectionState::Connected
            && b.connection_state() == PeerConnectionState::Connected
        {
            return Some((a, b, channel, now));
        }
        now = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now)
            .max(now + Duration::from_millis(1));
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Some((mut a, mut b, channel, mut now)) = connected() else {
        panic!("two cores on a perfect link connect");
    };
    let (from, to): (SocketAddr, SocketAddr) = (A.parse().unwrap(), B.parse().unwrap());
    let mut rest = data;
    let mut round = 0u32;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len & 0x3f).min(tail.len());
        let mut datagram = tail[..n].to_vec();
        rest = &tail[n..];
        if let Some(first) = datagram.first_mut() {
            // RFC 7983 §7: STUN, DTLS, TURN ChannelData, RTP/RTCP.
            *first = match len >> 6 {
                0 => *first & 0x03,
                1 => 20 + *first % 44,
                2 => 64 + *first % 16,
                _ => 128 + *first % 64,
            };
        }
        b.handle_receive(now, from, to, &datagram);
        round += 1;
        if round % 8 == 0 {
            let _ = a.send(now, channel, ChannelData::Text(format!("still {round}")));
            now += Duration::from_millis(5);
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        exchange(&mut a, &mut b, now);
    }
});
