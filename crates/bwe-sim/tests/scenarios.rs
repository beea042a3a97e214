//! The RFC 8867 scenarios' outcomes, with margins, on virtual time (these
//! are not timed tests: a run is a pure function of its scenario and seed).

use std::time::Duration;

use realtimer_bwe_sim::{run, Scenario};

#[test]
fn fixed_capacity_ramps_up_fast_and_keeps_the_queue_short() {
    let m = run(&Scenario::fixed()).metrics();
    eprintln!("{m:?}");
    assert!(
        m.time_to_90.is_some_and(|t| t <= Duration::from_secs(3)),
        "{m:?}"
    );
    assert!(m.utilization >= 0.90, "{m:?}");
    assert!(m.p95_queuing <= Duration::from_millis(50), "{m:?}");
}

#[test]
fn capacity_halving_drains_the_queue_within_two_seconds() {
    let m = run(&Scenario::halving()).metrics();
    eprintln!("{m:?}");
    assert!(
        m.recovery_after_drop
            .is_some_and(|t| t <= Duration::from_secs(2)),
        "{m:?}"
    );
    assert!(m.loss_after_drop.is_some_and(|l| l <= 0.02), "{m:?}");
}

#[test]
fn random_loss_is_not_congestion() {
    let m = run(&Scenario::random_loss()).metrics();
    eprintln!("{m:?}");
    assert!(m.utilization >= 0.70, "{m:?}");
}
