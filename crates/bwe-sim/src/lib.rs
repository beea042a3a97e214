//! The congestion control test cases of RFC 8867 for `realtimer-bwe`, run
//! on netsim's virtual time: a media sender (an encoder at the target
//! bitrate, the pacer, the estimator) and a receiver sending
//! transport-wide feedback, through a bottleneck whose capacity, loss and
//! jitter the scenario sets. Each run gives the RFC's metrics and a plot.
//!
//! Everything is virtual time and seeded: a run is a pure function of its
//! scenario, so tests can assert outcomes without timing anything.

mod nodes;
mod svg;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use realtimer_bwe::{Bitrate, BweConfig};
use realtimer_netsim::{GilbertElliott, LinkConfig, Loss, NatConfig, Network};

pub use nodes::{Receiver, ReceiverBin, Sender, SenderBin, BIN};
pub use svg::svg;

/// One RFC 8867 test case.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name (file names, table rows).
    pub name: &'static str,
    /// How long it runs.
    pub duration: Duration,
    /// The bottleneck capacity from each time on (the first at zero).
    pub capacity: Vec<(Duration, Bitrate)>,
    /// One-way propagation delay each way (RFC 8867 §4.1: 50 ms RTT).
    pub one_way_delay: Duration,
    /// Extra delay 0..=jitter per packet on the bottleneck (FIFO).
    pub jitter: Duration,
    /// Loss on the bottleneck.
    pub loss: Loss,
    /// Bottleneck queue, in time at the first capacity (RFC 8867 §4.1:
    /// 300 ms).
    pub queue: Duration,
    /// Media flows sharing the bottleneck (RFC 8867 §5.4 has several).
    pub flows: usize,
    /// Where the estimate starts.
    pub start: Bitrate,
    /// Netsim's seed.
    pub seed: u64,
}

impl Scenario {
    fn base(name: &'static str) -> Self {
        Self {
            name,
            duration: Duration::from_secs(60),
            capacity: vec![(Duration::ZERO, Bitrate::kbps(2500))],
            one_way_delay: Duration::from_millis(25),
            jitter: Duration::ZERO,
            loss: Loss::None,
            queue: Duration::from_millis(300),
            flows: 1,
            start: Bitrate::kbps(300),
            seed: 14,
        }
    }

    /// RFC 8867 §5.1-like: a fixed 2.5 Mbit/s bottleneck, 60 s.
    pub fn fixed() -> Self {
        Self::base("fixed")
    }

    /// Capacity halves at 20 s and comes back at 40 s.
    pub fn halving() -> Self {
        Self {
            capacity: vec![
                (Duration::ZERO, Bitrate::kbps(2500)),
                (Duration::from_secs(20), Bitrate::kbps(1250)),
                (Duration::from_secs(40), Bitrate::kbps(2500)),
            ],
            ..Self::base("halving")
        }
    }

    /// RFC 8867 §5.2-like: 1, 2.5, 0.6 then 1 Mbit/s.
    pub fn steps() -> Self {
        Self {
            duration: Duration::from_secs(80),
            capacity: vec![
                (Duration::ZERO, Bitrate::kbps(1000)),
                (Duration::from_secs(20), Bitrate::kbps(2500)),
                (Duration::from_secs(40), Bitrate::kbps(600)),
                (Duration::from_secs(60), Bitrate::kbps(1000)),
            ],
            ..Self::base("steps")
        }
    }

    /// 5% independent loss at 2.5 Mbit/s.
    pub fn random_loss() -> Self {
        Self {
            loss: Loss::Independent(0.05),
            ..Self::base("random-loss")
        }
    }

    /// Bursty loss (Gilbert: bursts of 4 packets on average, about 4%).
    pub fn bursty_loss() -> Self {
        Self {
            loss: Loss::GilbertElliott(GilbertElliott::new(0.01, 0.25)),
            ..Self::base("bursty-loss")
        }
    }

    /// Up to 30 ms of jitter (FIFO) at 2.5 Mbit/s.
    pub fn jitter() -> Self {
        Self {
            jitter: Duration::from_millis(30),
            ..Self::base("jitter")
        }
    }

    /// RFC 8867 §5.4-like: two flows share 2.5 Mbit/s, the second joins at
    /// 10 s.
    pub fn competing() -> Self {
        Self {
            flows: 2,
            ..Self::base("competing")
        }
    }

    /// Every scenario.
    pub fn all() -> Vec<Self> {
        vec![
            Self::fixed(),
            Self::halving(),
            Self::steps(),
            Self::random_loss(),
            Self::bursty_loss(),
            Self::jitter(),
            Self::competing(),
        ]
    }

    /// The capacity at `at`.
    pub fn capacity_at(&self, at: Duration) -> Bitrate {
        self.capacity
            .iter()
            .rev()
            .find(|(from, _)| *from <= at)
            .map_or(Bitrate::ZERO, |(_, c)| *c)
    }

    fn link(&self, capacity: Bitrate) -> LinkConfig {
        let queue_bytes = self.capacity_at(Duration::ZERO).bytes_in(self.queue) as usize;
        LinkConfig::default()
            .delay(self.one_way_delay)
            .jitter(self.jitter)
            .loss(self.loss)
            .bandwidth(capacity.as_bps(), queue_bytes.max(3000))
    }
}

/// One flow's record.
#[derive(Debug, Clone)]
pub struct FlowRecord {
    /// The sender's bins.
    pub sent: Vec<SenderBin>,
    /// The receiver's bins.
    pub received: Vec<ReceiverBin>,
    /// Every packet's arrival (since start) and one-way delay.
    pub delays: Vec<(Duration, Duration)>,
    /// Packets sent and received.
    pub packets: (u64, u64),
    /// When the flow started.
    pub starts: Duration,
}

/// What a run gives.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario.
    pub scenario: Scenario,
    /// Each flow.
    pub flows: Vec<FlowRecord>,
}

/// When the second and later flows of a scenario start.
const LATER_FLOW_START: Duration = Duration::from_secs(10);

/// Runs `scenario` to its end.
pub fn run(scenario: &Scenario) -> Outcome {
    // The origin of virtual time; nothing reads a clock after this.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut net = Network::new(scenario.seed, start);
    let public: IpAddr = "203.0.113.1"
        .parse()
        .unwrap_or(IpAddr::from([203, 0, 113, 1]));
    let nat = net.add_nat(NatConfig::new(public));
    net.set_uplink(nat, scenario.link(scenario.capacity_at(Duration::ZERO)));
    let config = BweConfig {
        start: scenario.start,
        ..BweConfig::default()
    };
    let mut pairs = Vec::new();
    for flow in 0..scenario.flows {
        let sender_ip = IpAddr::from([10, 0, 0, 1 + flow as u8]);
        let receiver_ip = IpAddr::from([198, 51, 100, 1 + flow as u8]);
        let sender_host = net.add_host(&[sender_ip], Some(nat));
        let receiver_host = net.add_host(&[receiver_ip], None);
        net.set_uplink(
            receiver_host,
            LinkConfig::default().delay(scenario.one_way_delay),
        );
        let receiver_addr = SocketAddr::new(receiver_ip, 6000);
        let receiver = net.attach(receiver_host, Receiver::new(start, receiver_addr));
        pairs.push((
            sender_host,
            SocketAddr::new(sender_ip, 5000),
            receiver_addr,
            receiver,
            flow,
        ));
    }
    // Capacity changes and later flows are events on the timeline.
    let mut events: Vec<Duration> = scenario.capacity.iter().map(|(at, _)| *at).collect();
    if scenario.flows > 1 {
        events.push(LATER_FLOW_START);
    }
    events.push(scenario.duration);
    events.sort();
    events.dedup();
    let mut senders = vec![None; scenario.flows];
    for at in events {
        net.run_until(start + at);
        if at >= scenario.duration {
            break;
        }
        net.set_uplink(nat, scenario.link(scenario.capacity_at(at)));
        for &(host, local, remote, _, flow) in &pairs {
            let begins = if flow == 0 {
                Duration::ZERO
            } else {
                LATER_FLOW_START
            };
            if senders[flow].is_none() && begins == at {
                let sender = Sender::new(start, start + at, local, remote, config);
                senders[flow] = Some(net.attach(host, sender));
            }
        }
    }
    let flows = pairs
        .iter()
        .filter_map(|&(_, _, _, receiver, flow)| {
            let sender = net.node::<Sender>(senders[flow]?);
            let receiver = net.node::<Receiver>(receiver);
            let starts = if flow == 0 {
                Duration::ZERO
            } else {
                LATER_FLOW_START
            };
            Some(FlowRecord {
                sent: sender.bins.clone(),
                received: receiver.bins.clone(),
                delays: receiver.delays.clone(),
                packets: (sender.packets_sent, receiver.packets_received),
                starts,
            })
        })
        .collect();
    Outcome {
        scenario: scenario.clone(),
        flows,
    }
}

/// The RFC 8867 metrics of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// When the first flow's target first reached 90% of the capacity.
    pub time_to_90: Option<Duration>,
    /// Bytes delivered (all flows) over what the capacity allowed.
    pub utilization: f64,
    /// 95th percentile of queuing delay (one-way delay above the least
    /// seen), all packets of all flows.
    pub p95_queuing: Duration,
    /// Packets lost over packets sent, all flows.
    pub loss: f64,
    /// After the first capacity drop: how long until queuing delay stays
    /// under 100 ms.
    pub recovery_after_drop: Option<Duration>,
    /// Loss of the packets sent in the 2 s after the first capacity drop.
    pub loss_after_drop: Option<f64>,
    /// The share of the bottleneck each flow got over the last half of
    /// the run (two flows: the second's over the first's).
    pub fairness: Option<f64>,
}

impl Outcome {
    /// The metrics.
    pub fn metrics(&self) -> Metrics {
        let s = &self.scenario;
        let bin_secs = BIN.as_secs_f64();
        let bins = (s.duration.as_nanos() / BIN.as_nanos()) as usize;
        let first = &self.flows[0];
        let time_to_90 = first.sent.iter().enumerate().find_map(|(i, b)| {
            let at = BIN * i as u32;
            (b.target.as_f64() >= 0.9 * s.capacity_at(at).as_f64()).then_some(at)
        });
        let allowed: f64 = (0..bins)
            .map(|i| s.capacity_at(BIN * i as u32).as_f64() * bin_secs / 8.0)
            .sum();
        let delivered: u64 = self
            .flows
            .iter()
            .flat_map(|f| f.received.iter().take(bins))
            .map(|b| b.bytes)
            .sum();
        // Delivered bytes count the UDP payload; the link carries 28 more
        // per packet.
        let packets: u64 = self.flows.iter().map(|f| f.packets.1).sum();
        let utilization = (delivered + 28 * packets) as f64 / allowed;
        let base = self
            .flows
            .iter()
            .flat_map(|f| f.delays.iter().map(|(_, d)| *d))
            .min()
            .unwrap_or_default();
        let mut queuing: Vec<Duration> = self
            .flows
            .iter()
            .flat_map(|f| f.delays.iter().map(|(_, d)| d.saturating_sub(base)))
            .collect();
        queuing.sort();
        let p95_queuing = queuing
            .get(queuing.len() * 95 / 100)
            .copied()
            .unwrap_or_default();
        let (sent, received) = self
            .flows
            .iter()
            .fold((0, 0), |(s, r), f| (s + f.packets.0, r + f.packets.1));
        let loss = 1.0 - received as f64 / sent.max(1) as f64;
        let drop = s
            .capacity
            .windows(2)
            .find(|w| w[1].1 < w[0].1)
            .map(|w| w[1].0);
        let recovery_after_drop = drop.map(|at| {
            let last_high = first
                .delays
                .iter()
                .filter(|(t, d)| {
                    *t >= at
                        && *t < at + Duration::from_secs(10)
                        && d.saturating_sub(base) >= Duration::from_millis(100)
                })
                .map(|(t, _)| *t)
                .max();
            last_high.map_or(Duration::ZERO, |t| t - at)
        });
        let loss_after_drop = drop.map(|at| {
            let from = (at.as_nanos() / BIN.as_nanos()) as usize;
            let window = from..from + 20;
            let sent: u64 = first
                .sent
                .get(window.clone())
                .unwrap_or_default()
                .iter()
                .map(|b| b.packets)
                .sum();
            let received: u64 = first
                .received
                .get(window)
                .unwrap_or_default()
                .iter()
                .map(|b| b.packets_by_send_time)
                .sum();
            1.0 - received as f64 / sent.max(1) as f64
        });
        let fairness = (self.flows.len() == 2).then(|| {
            let half = bins / 2;
            let got = |f: &FlowRecord| {
                f.received
                    .iter()
                    .skip(half)
                    .take(bins - half)
                    .map(|b| b.bytes)
                    .sum::<u64>() as f64
            };
            got(&self.flows[1]) / got(&self.flows[0]).max(1.0)
        });
        Metrics {
            time_to_90,
            utilization,
            p95_queuing,
            loss,
            recovery_after_drop,
            loss_after_drop,
            fairness,
        }
    }
}
