//! Packet groups (draft-ietf-rmcat-gcc-02 §5.2): packets sent within a
//! burst time of each other form a group; the delay-based estimator
//! compares the arrival spacing of consecutive groups with their send
//! spacing.

use std::time::{Duration, Instant};

use crate::micros;

/// §5.2: packets sent less than this apart are one group.
const BURST_TIME: Duration = Duration::from_millis(5);
/// libwebrtc: packets arriving within the burst time, with a negative
/// propagation delta, join the group they follow (they queued together),
/// unless the group would span more than this.
const MAX_BURST_SPAN_MICROS: i64 = 100_000;
/// An arrival delta further than this from the send delta is a jump of
/// the receiver's clock or a route change: start over.
const RESET_DELTA_MICROS: i64 = 3_000_000;

#[derive(Debug, Clone, Copy)]
struct Group {
    first_send: Instant,
    last_send: Instant,
    first_arrival: i64,
    last_arrival: i64,
    size: usize,
}

impl Group {
    fn new(send_time: Instant, arrival: i64, size: usize) -> Self {
        Self {
            first_send: send_time,
            last_send: send_time,
            first_arrival: arrival,
            last_arrival: arrival,
            size,
        }
    }
}

/// The spacing of two consecutive groups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GroupDelta {
    /// Send time of the newer group's last packet minus the older's, ms.
    pub(crate) send_ms: f64,
    /// Arrival time difference of the same packets, ms.
    pub(crate) arrival_ms: f64,
    /// The newer group's last arrival, µs in the receiver's time base.
    pub(crate) arrival_time: i64,
}

/// Builds groups from received packets in send order.
#[derive(Debug, Clone, Default)]
pub(crate) struct InterArrival {
    previous: Option<Group>,
    current: Option<Group>,
}

impl InterArrival {
    /// A received packet; the spacing of the last two complete groups when
    /// this packet starts a new one.
    pub(crate) fn on_packet(
        &mut self,
        send_time: Instant,
        arrival: i64,
        size: usize,
    ) -> Option<GroupDelta> {
        let Some(current) = self.current.as_mut() else {
            self.current = Some(Group::new(send_time, arrival, size));
            return None;
        };
        if send_time < current.first_send {
            // Sent before the group: reordered by the pacer's numbering.
            return None;
        }
        if belongs_to_group(current, send_time, arrival) {
            current.last_send = current.last_send.max(send_time);
            current.last_arrival = current.last_arrival.max(arrival);
            current.size += size;
            return None;
        }
        let done = *current;
        let delta = self.previous.and_then(|previous| {
            let send_ms = micros(done.last_send.duration_since(previous.last_send)) as f64 / 1000.0;
            let arrival_us = done.last_arrival - previous.last_arrival;
            let jump = (arrival_us - (send_ms * 1000.0) as i64).abs() > RESET_DELTA_MICROS;
            (arrival_us >= 0 && !jump).then_some(GroupDelta {
                send_ms,
                arrival_ms: arrival_us as f64 / 1000.0,
                arrival_time: done.last_arrival,
            })
        });
        self.previous = Some(done);
        self.current = Some(Group::new(send_time, arrival, size));
        delta
    }
}

fn belongs_to_group(group: &Group, send_time: Instant, arrival: i64) -> bool {
    if send_time.duration_since(group.first_send) <= BURST_TIME {
        return true;
    }
    // A burst: arrived right after the group, faster than it was sent.
    let arrival_delta = arrival - group.last_arrival;
    let send_delta = micros(send_time.saturating_duration_since(group.last_send));
    arrival_delta >= 0
        && arrival_delta < micros(BURST_TIME)
        && arrival_delta - send_delta < 0
        && arrival - group.first_arrival < MAX_BURST_SPAN_MICROS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_burst_and_measures_spacing() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut ia = InterArrival::default();
        // Group 1: sent at 0, 2 ms; group 2: 20, 21 ms; group 3: 40 ms.
        assert_eq!(ia.on_packet(ms(0), 50_000, 100), None);
        assert_eq!(ia.on_packet(ms(2), 52_000, 100), None);
        assert_eq!(ia.on_packet(ms(20), 71_000, 100), None);
        assert_eq!(ia.on_packet(ms(21), 73_000, 100), None);
        let delta = ia.on_packet(ms(40), 95_000, 100).unwrap();
        assert_eq!(delta.send_ms, 19.0);
        assert_eq!(delta.arrival_ms, 21.0);
        assert_eq!(delta.arrival_time, 73_000);
    }
}
