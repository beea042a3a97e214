//! The hub with a recording direct front: hand-over order, held events,
//! slow and gone clients.

use super::*;

/// A direct front that records what it is handed, answering `answer`.
#[derive(Debug, Default)]
struct Recorder {
    events: Mutex<Vec<Outbound>>,
    answer: Mutex<Option<Delivery>>,
    closed: Mutex<bool>,
}

impl Deliver for Recorder {
    fn deliver(&self, event: Outbound) -> Delivery {
        let answer = self.answer.lock().unwrap().unwrap_or(Delivery::Sent);
        if answer == Delivery::Sent {
            self.events.lock().unwrap().push(event);
        }
        answer
    }
    fn close(&self) {
        *self.closed.lock().unwrap() = true;
    }
}

/// A client on a recording direct front, not live yet.
fn direct(hub: &Hub, now: Instant) -> (Arc<Recorder>, ClientId) {
    let recorder = Arc::new(Recorder::default());
    let (id, _) = hub.connect_direct(None, now, recorder.clone()).unwrap();
    (recorder, id)
}

fn kinds(recorder: &Recorder) -> Vec<&'static str> {
    let events = recorder.events.lock().unwrap();
    events
        .iter()
        .filter_map(|e| match e {
            Outbound::Event(SignalingEvent::Created { .. }) => Some("created"),
            Outbound::Event(SignalingEvent::Join { .. }) => Some("join"),
            Outbound::Event(SignalingEvent::Joined { .. }) => Some("joined"),
            Outbound::Event(SignalingEvent::Ready { .. }) => Some("ready"),
            Outbound::Event(SignalingEvent::Message { .. }) => Some("message"),
            Outbound::Said(_) => Some("said"),
            _ => None,
        })
        .collect()
}

#[test]
fn a_direct_client_gets_what_came_before_it_went_live_first_and_in_order() {
    let hub = Hub::new(RoomsConfig::default());
    let now = crate::now();
    let ((a, a_id), (b, b_id)) = (direct(&hub, now), direct(&hub, now));
    hub.go_live(a_id);
    hub.create_or_join(a_id, "r", now);
    hub.create_or_join(b_id, "r", now);
    hub.message(a_id, Value::from("offer"), 7, true, now);
    // b is not live yet: nothing handed over, all held.
    assert!(kinds(&b).is_empty());
    hub.go_live(b_id);
    assert_eq!(kinds(&b), ["joined", "ready", "message"]);
    assert_eq!(kinds(&a), ["created", "join", "ready", "said"]);
    hub.message(b_id, Value::from("answer"), 8, false, now);
    assert_eq!(kinds(&a), ["created", "join", "ready", "said", "message"]);
    assert_eq!(hub.relay_latency().count, 0, "the front records relays");
}

#[test]
fn a_direct_client_whose_transport_is_full_is_dropped_and_closed() {
    let hub = Hub::new(RoomsConfig::default());
    let now = crate::now();
    let ((_a, a_id), (b, b_id)) = (direct(&hub, now), direct(&hub, now));
    hub.go_live(a_id);
    hub.go_live(b_id);
    hub.create_or_join(a_id, "r", now);
    hub.create_or_join(b_id, "r", now);

    // Gone (closing, its disconnect on the way): nothing changes.
    *b.answer.lock().unwrap() = Some(Delivery::Gone);
    hub.message(a_id, Value::from(1), 1, false, now);
    assert!(!*b.closed.lock().unwrap());
    assert_eq!(hub.stats().clients, 2);

    // Full: too slow, so dropped from its room and closed.
    *b.answer.lock().unwrap() = Some(Delivery::Full);
    hub.message(a_id, Value::from(2), 1, false, now);
    assert!(*b.closed.lock().unwrap());
    assert_eq!(hub.stats().clients, 1);
    assert_eq!(hub.stats().slow_clients_dropped, 1, "counted for /metrics");
    *b.answer.lock().unwrap() = None;
    hub.message(a_id, Value::from(3), 1, false, now);
    assert_eq!(kinds(&b), ["joined", "ready"]);
}

#[test]
fn a_direct_client_that_never_goes_live_holds_a_bounded_backlog() {
    let config = RoomsConfig {
        rate_burst: 10_000,
        ..RoomsConfig::default()
    };
    let hub = Hub::new(config);
    let now = crate::now();
    let ((_a, a_id), (b, b_id)) = (direct(&hub, now), direct(&hub, now));
    hub.go_live(a_id);
    hub.create_or_join(a_id, "r", now);
    hub.create_or_join(b_id, "r", now);
    for i in 0..OUTBOUND_QUEUE {
        hub.message(a_id, Value::from(i), 1, false, now);
    }
    assert!(*b.closed.lock().unwrap(), "over the bound: dropped");
    assert_eq!(hub.stats().clients, 1);
    assert_eq!(hub.stats().slow_clients_dropped, 1);
}
