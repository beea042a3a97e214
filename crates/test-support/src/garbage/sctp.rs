//! Feeds arbitrary packets to an established association: shared by the
//! `sctp_association` fuzz target and `crates/sctp/tests/garbage.rs`. Packets get the
//! right verification tag and checksum, so the chunk handlers see them.

use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer_sctp::{Association, Reliability, SctpConfig};

fn pump(a: &mut Association, b: &mut Association, now: Instant) {
    for _ in 0..64 {
        let mut moved = false;
        while let Some(p) = a.poll_transmit() {
            b.handle_packet(now, &p);
            moved = true;
        }
        while let Some(p) = b.poll_transmit() {
            a.handle_packet(now, &p);
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

/// The verification tag `b` expects: read from a packet `a` sends it.
fn tag_of(packet: &Bytes) -> [u8; 4] {
    let mut tag = [0u8; 4];
    tag.copy_from_slice(&packet[4..8]);
    tag
}

/// Each chunk of `data` is `[flags, len_hi, len_lo, bytes...]`: a packet body
/// (chunks after the common header), sent to the established side.
pub fn drive(data: &[u8], start: Instant) {
    let config = |seed| SctpConfig {
        seed,
        ..SctpConfig::default()
    };
    let mut a = Association::new(config(1), start);
    let mut b = Association::new(config(2), start);
    a.connect(start);
    pump(&mut a, &mut b, start);
    // A packet from a carries the tag b wants.
    let _ = a.send(
        start,
        1,
        51,
        Bytes::from_static(b"hello"),
        false,
        Reliability::Reliable,
    );
    let Some(probe) = a.poll_transmit() else {
        return;
    };
    let tag = tag_of(&probe);
    b.handle_packet(start, &probe);
    let mut now = start;
    let mut rest = data;
    while rest.len() >= 3 {
        let flags = rest[0];
        let len = (usize::from(rest[1]) << 8 | usize::from(rest[2])).min(rest.len() - 3);
        let body = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let mut packet = vec![0x13, 0x88, 0x13, 0x88];
        packet.extend_from_slice(&tag);
        packet.extend_from_slice(&[0; 4]);
        packet.extend_from_slice(body);
        let crc = crc32c::crc32c(&packet);
        packet[8..12].copy_from_slice(&crc.to_le_bytes());
        b.handle_packet(now, &Bytes::from(packet));
        now += Duration::from_millis(u64::from(flags));
        b.handle_timeout(now);
        if flags & 1 == 1 {
            let _ = b.send(
                now,
                u16::from(flags),
                53,
                Bytes::from(vec![flags; usize::from(flags) * 10]),
                flags & 2 == 2,
                Reliability::Reliable,
            );
        }
        while b.poll_transmit().is_some() {}
        while b.poll_event().is_some() {}
        let _ = b.poll_timeout();
    }
}
