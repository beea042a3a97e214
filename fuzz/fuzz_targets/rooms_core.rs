//! Drives the signaling rooms core with arbitrary client actions (connect,
//! join any name, relay any size, leave, disconnect, time passing): no
//! sequence may panic it, and a room never holds more than its capacity.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use realtimer_server::{ClientId, Rooms, RoomsConfig};

fuzz_target!(|data: &[u8]| {
    let config = RoomsConfig {
        max_rooms: 8,
        max_clients: 12,
        max_room_name: 16,
        max_message_bytes: 512,
        rate_burst: 20,
        rate_per_second: 10,
        room_idle_timeout: Duration::from_secs(30),
        ..RoomsConfig::default()
    };
    let capacity = config.capacity;
    let mut rooms = Rooms::new(config);
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let mut rest = data;
    while let [op, arg, tail @ ..] = rest {
        rest = tail;
        let id = ClientId(u64::from(arg % 16));
        match op % 7 {
            0 => {
                let _ = rooms.connect(id, now);
            }
            1 => {
                // A room name from the next bytes, valid UTF-8 or not.
                let len = usize::from(arg >> 4).min(rest.len());
                let name = String::from_utf8_lossy(&rest[..len]).into_owned();
                rest = &rest[len..];
                let _ = rooms.join(id, &name, now);
            }
            2 => {
                let _ = rooms.relay(id, usize::from(*arg) * 8, now);
            }
            3 => {
                let _ = rooms.leave(id);
            }
            4 => {
                let _ = rooms.disconnect(id);
            }
            5 => now += Duration::from_millis(u64::from(*arg) * 250),
            _ => {
                let _ = rooms.expire(now);
            }
        }
        for name in rooms.room_names().map(str::to_owned).collect::<Vec<_>>() {
            assert!(rooms.members(&name).len() <= capacity, "room over capacity");
        }
    }
    let _ = rooms.stats();
});
