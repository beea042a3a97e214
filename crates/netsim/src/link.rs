//! One direction of an access link: MTU, a bandwidth-limited drop-tail queue,
//! loss, delay, jitter, reordering and duplication.

use std::time::{Duration, Instant};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::stats::DropCause;

/// The default bound of a link's queue, in bytes (64 KiB), used when the
/// link has a bandwidth limit.
pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024;

/// Which way along a device's access link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// From the device towards the network: a host's sends, a NAT's
    /// datagrams to the internet.
    Outbound,
    /// From the network towards the device.
    Inbound,
}

/// How a link loses datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Loss {
    /// Nothing is lost.
    #[default]
    None,
    /// Each datagram is lost with this probability (0.0 to 1.0), on its own.
    Independent(f64),
    /// Losses come in bursts: a two-state Markov chain.
    GilbertElliott(GilbertElliott),
}

/// The Gilbert-Elliott burst loss model: a link is in a good or a bad state,
/// changes state before each datagram with probability `p` (good → bad) or
/// `r` (bad → good), and loses the datagram with the probability of the state
/// it is in. With `loss_bad = 1` and `loss_good = 0` (the Gilbert model),
/// bursts last 1/r datagrams on average and the loss rate is p / (p + r).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct GilbertElliott {
    /// Probability of going from the good to the bad state.
    pub p: f64,
    /// Probability of going from the bad to the good state.
    pub r: f64,
    /// Loss probability in the bad state (1 − h in the literature).
    pub loss_bad: f64,
    /// Loss probability in the good state (1 − k in the literature).
    pub loss_good: f64,
}

impl GilbertElliott {
    /// The Gilbert model: everything is lost in the bad state, nothing in the
    /// good one.
    pub fn new(p: f64, r: f64) -> Self {
        GilbertElliott {
            p,
            r,
            loss_bad: 1.0,
            loss_good: 0.0,
        }
    }

    /// Sets the loss probabilities in the bad and good states.
    pub fn with_loss(mut self, loss_bad: f64, loss_good: f64) -> Self {
        self.loss_bad = loss_bad;
        self.loss_good = loss_good;
        self
    }
}

/// What one direction of a link does to datagrams. The default is a perfect
/// link: no delay, no loss, no MTU, unlimited bandwidth.
///
/// A datagram goes through, in order: the MTU check, the bandwidth queue
/// (drop-tail; it waits for the datagrams ahead of it, then for its own
/// serialization), loss, then delay plus jitter, reordering and duplication.
/// Sizes count the IP and UDP headers (28 bytes over IPv4, 48 over IPv6).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from 0..=jitter per datagram. Jitter
    /// alone never reorders: a datagram never arrives before one sent
    /// earlier on the same link (it waits for it), so jitter is FIFO.
    pub jitter: Duration,
    /// How datagrams are lost.
    pub loss: Loss,
    /// Probability that a datagram gets `reorder_delay` added and may be
    /// overtaken by later ones.
    pub reorder_probability: f64,
    /// The extra delay of a reordered datagram.
    pub reorder_delay: Duration,
    /// Probability that a datagram arrives twice (both copies at the same
    /// time; the copy does not take bandwidth).
    pub duplicate_probability: f64,
    /// The largest IP packet the link carries; bigger ones are dropped
    /// (UDP over IP with DF set: no fragmentation).
    pub mtu: Option<usize>,
    /// Bits per second; `None` for unlimited.
    pub bandwidth: Option<u64>,
    /// The queue bound in bytes when `bandwidth` is set, counting the packet
    /// being serialized; a datagram that does not fit is dropped.
    pub queue_bytes: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: Loss::None,
            reorder_probability: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate_probability: 0.0,
            mtu: None,
            bandwidth: None,
            queue_bytes: DEFAULT_QUEUE_BYTES,
        }
    }
}

impl LinkConfig {
    /// Sets the one-way delay.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the jitter (uniform 0..=jitter, FIFO).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the loss model.
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Reorders a fraction `probability` of datagrams by delaying them
    /// `extra_delay` more.
    pub fn reorder(mut self, probability: f64, extra_delay: Duration) -> Self {
        self.reorder_probability = probability;
        self.reorder_delay = extra_delay;
        self
    }

    /// Duplicates a fraction `probability` of datagrams.
    pub fn duplicate(mut self, probability: f64) -> Self {
        self.duplicate_probability = probability;
        self
    }

    /// Drops IP packets bigger than `mtu` bytes.
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Limits the link to `bits_per_second`, queueing up to `queue_bytes`.
    pub fn bandwidth(mut self, bits_per_second: u64, queue_bytes: usize) -> Self {
        self.bandwidth = Some(bits_per_second);
        self.queue_bytes = queue_bytes;
        self
    }

    /// Panics with a message naming the bad field: a config is written by a
    /// test author, and a probability of 1.5 is their bug.
    pub(crate) fn validate(&self) {
        let probability = |name: &str, p: f64| {
            assert!(
                (0.0..=1.0).contains(&p),
                "LinkConfig: {name} must be a probability in 0.0..=1.0, got {p}"
            );
        };
        match self.loss {
            Loss::None => {}
            Loss::Independent(p) => probability("Loss::Independent", p),
            Loss::GilbertElliott(ge) => {
                probability("GilbertElliott::p", ge.p);
                probability("GilbertElliott::r", ge.r);
                probability("GilbertElliott::loss_bad", ge.loss_bad);
                probability("GilbertElliott::loss_good", ge.loss_good);
            }
        }
        probability("reorder_probability", self.reorder_probability);
        probability("duplicate_probability", self.duplicate_probability);
        assert!(
            self.bandwidth != Some(0),
            "LinkConfig: bandwidth must be above 0 bits/s (use None for unlimited)"
        );
    }
}

/// When a datagram that survived a link comes out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arrivals {
    pub(crate) first: Instant,
    /// The arrival of a duplicate, if the link made one.
    pub(crate) duplicate: Option<Instant>,
}

/// One direction of a link and its state.
#[derive(Debug, Clone)]
pub(crate) struct LinkState {
    config: LinkConfig,
    /// Gilbert-Elliott: in the bad state.
    bad: bool,
    /// When the serializer has sent everything queued so far.
    busy_until: Instant,
    /// The latest arrival of an in-order datagram (FIFO under jitter).
    last_arrival: Instant,
}

impl LinkState {
    pub(crate) fn new(start: Instant) -> Self {
        LinkState {
            config: LinkConfig::default(),
            bad: false,
            busy_until: start,
            last_arrival: start,
        }
    }

    /// A new config; the queue and the in-flight datagrams stay.
    pub(crate) fn configure(&mut self, config: LinkConfig) {
        config.validate();
        self.config = config;
    }

    /// Sends an IP packet of `ip_len` bytes into the link at `now`.
    pub(crate) fn transmit(
        &mut self,
        now: Instant,
        ip_len: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Arrivals, DropCause> {
        let config = &self.config;
        if config.mtu.is_some_and(|mtu| ip_len > mtu) {
            return Err(DropCause::Mtu);
        }
        let mut departure = now;
        if let Some(bps) = config.bandwidth {
            let backlog = bytes_in(self.busy_until.saturating_duration_since(now), bps);
            if backlog.saturating_add(ip_len) > config.queue_bytes {
                return Err(DropCause::Queue);
            }
            departure = self.busy_until.max(now) + serialization(ip_len, bps);
            self.busy_until = departure;
        }
        if self.lose(rng) {
            return Err(DropCause::Loss);
        }
        let config = &self.config;
        let mut arrival = departure + config.delay;
        if !config.jitter.is_zero() {
            let nanos = u64::try_from(config.jitter.as_nanos()).unwrap_or(u64::MAX);
            arrival += Duration::from_nanos(rng.random_range(0..=nanos));
        }
        if config.reorder_probability > 0.0 && rng.random::<f64>() < config.reorder_probability {
            // Not bound by FIFO, and later datagrams are not bound by it.
            arrival += config.reorder_delay;
        } else {
            arrival = arrival.max(self.last_arrival);
            self.last_arrival = arrival;
        }
        let duplicate = (config.duplicate_probability > 0.0
            && rng.random::<f64>() < config.duplicate_probability)
            .then_some(arrival);
        Ok(Arrivals {
            first: arrival,
            duplicate,
        })
    }

    fn lose(&mut self, rng: &mut ChaCha8Rng) -> bool {
        match self.config.loss {
            Loss::None => false,
            Loss::Independent(p) => p > 0.0 && rng.random::<f64>() < p,
            Loss::GilbertElliott(ge) => {
                let flip = if self.bad { ge.r } else { ge.p };
                if rng.random::<f64>() < flip {
                    self.bad = !self.bad;
                }
                let p = if self.bad { ge.loss_bad } else { ge.loss_good };
                rng.random::<f64>() < p
            }
        }
    }
}

/// How long `bytes` take to serialize at `bps` bits per second (rounded up
/// to the nanosecond).
fn serialization(bytes: usize, bps: u64) -> Duration {
    let bits = bytes as u128 * 8;
    let nanos = (bits * 1_000_000_000).div_ceil(u128::from(bps));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// How many bytes `d` of serialization at `bps` stands for (rounded up).
fn bytes_in(d: Duration, bps: u64) -> usize {
    let bits = d.as_nanos() * u128::from(bps);
    let bytes = bits.div_ceil(8 * 1_000_000_000);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn serialization_and_backlog_agree() {
        let bps = 1_000_000;
        let d = serialization(1250, bps);
        assert_eq!(d, Duration::from_millis(10));
        assert_eq!(bytes_in(d, bps), 1250);
        assert_eq!(bytes_in(Duration::ZERO, bps), 0);
    }

    #[test]
    fn bandwidth_queues_then_drops_tail() {
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut link = LinkState::new(start);
        link.configure(LinkConfig::default().bandwidth(8_000, 250));
        // 100 bytes at 1000 bytes/s: 100 ms each; the queue holds 2.
        let a = link.transmit(start, 100, &mut rng).unwrap();
        let b = link.transmit(start, 100, &mut rng).unwrap();
        assert_eq!(a.first, start + Duration::from_millis(100));
        assert_eq!(b.first, start + Duration::from_millis(200));
        assert_eq!(link.transmit(start, 100, &mut rng), Err(DropCause::Queue));
        let later = start + Duration::from_millis(100);
        let c = link.transmit(later, 100, &mut rng).unwrap();
        assert_eq!(c.first, start + Duration::from_millis(300));
    }

    #[test]
    #[should_panic(expected = "reorder_probability")]
    fn bad_probability_names_the_field() {
        LinkConfig::default()
            .reorder(1.5, Duration::ZERO)
            .validate();
    }
}
