//! Feeds arbitrary packets to an mDNS endpoint that publishes a name and
//! resolves another, from the mDNS port and from a legacy port: nothing
//! may panic, and every answer it sends parses.
#![no_main]
#![allow(clippy::disallowed_methods)] // one clock reading: the origin of virtual time

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use realtimer_mdns::{Mdns, MdnsConfig, Message};

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut mdns = Mdns::new(MdnsConfig::default());
    let _ = mdns.register("a.local", "192.0.2.1".parse().unwrap());
    let _ = mdns.register("b.local", "2001:db8::1".parse().unwrap());
    mdns.resolve(now, "peer.local", &["192.0.2.1".parse().unwrap()]);
    while mdns.poll_transmit().is_some() {}
    let _ = Message::parse(data);
    for source in ["192.0.2.9:5353", "192.0.2.9:40000"] {
        mdns.handle_input(now, source.parse().unwrap(), data);
        while let Some(t) = mdns.poll_transmit() {
            assert!(
                Message::parse(&t.contents).is_ok(),
                "we wrote something we cannot read"
            );
        }
        while mdns.poll_event().is_some() {}
    }
});
