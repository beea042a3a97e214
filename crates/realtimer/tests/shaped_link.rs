//! Both directions of a video call with headless Chromium through a
//! 2.5 Mbit/s bottleneck: two network namespaces joined by a veth pair
//! whose ends are each shaped with `tc qdisc ... tbf` (the kernel has no
//! netem), Chromium (tests/browser/chromium-video-peer.mjs, its fake
//! camera at 1280x720) in one, our PeerConnection (this binary's ignored
//! `shaped_link_peer`) in the other, sending back VP8 at the track's
//! target bitrate of frames textured enough that only the estimate limits
//! it. The test relays
//! the offer and answer and reads both sides' stats every 500 ms:
//!
//! - Chromium → us: Chromium's availableOutgoingBitrate, fed only by our
//!   transport-wide feedback, must ramp towards the link's rate, and its
//!   sending stay under it;
//! - us → Chromium: our estimate must follow Chromium's feedback to the
//!   link's rate and not past it, while the round-trip time on the link
//!   (Chromium's STUN RTT; an empty link has well under 1 ms) stays
//!   bounded, and Chromium decodes what we send.
//!
//! A table of both over time is printed, then issue 14's figures for each
//! direction (when the estimate reached 90% of the link, the share of the
//! link sent, the queues' delay from the RTT), and the same figures read
//! off each bottleneck itself every 100 ms (tbf's counters: bytes it
//! carried against its capacity, bytes waiting over its rate as the
//! queuing delay, drops), so both kinds of sender are measured alike.
//! `SHAPED_SECONDS` sets the run's length (default 60);
//! `SHAPED_HALVE_AT=s` halves both links' rate s seconds in (`tc qdisc
//! change`) and prints how long each queue stayed over 100 ms and what
//! tbf dropped meanwhile; `SHAPED_LOSS=p` puts a relay before our
//! bottleneck that drops each RTP packet with probability p both ways,
//! and asserts that each side NACKed the other's losses and had its own
//! repaired (Chromium's nackCount and retransmittedBytesSent, ours);
//! `RUST_LOG=realtimer_proto::rtc::congestion=debug`
//! logs our estimator's inputs and decisions. It runs only with `FULL=1`
//! (60 s): in real time against a browser, its numbers are the machine's
//! as much as ours, and on a machine shared by many builds (load 20-28 on
//! 2 cores) runs ranged from our estimate settling at 1.4-1.6 Mbit/s to it
//! falling to 0.7 after a 400 ms CPU stall and climbing back by 60 kbit/s
//! a second. Needs root (namespaces and tc); prints why and passes
//! without.
//!
//! `TBF_BURST` sets tbf's bucket (default 10 kB). A bucket that size lets
//! a probe cluster (15 ms at a few Mbit/s) through at the veth's speed:
//! with it Chromium's estimate reads 5,146 kbit/s on the 2.5 Mbit/s link
//! (also with our feedback on the kernel's receive stamps), with
//! `TBF_BURST=1600` (one packet) 2,601 kbit/s, the link's rate.
#![allow(clippy::print_stdout, clippy::disallowed_methods)] // a test on the wall clock

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use realtimer::codecs::I420Frame;
use realtimer::{
    IceGatheringState, MediaKind, PeerConnection, PeerConnectionConfig, PeerConnectionEvent,
    SessionDescription, TrackLocal,
};
use realtimer_test_support::impaired_relay::{self, Impairment};
use realtimer_test_support::netns::{ip, is_root, Namespaces};
use realtimer_test_support::node::browser_dir;
use serde_json::{json, Value};

/// The bottleneck, each way.
const RATE_BPS: u64 = 2_500_000;
const ADDR_US: &str = "10.79.0.1";
const ADDR_CHROMIUM: &str = "10.79.0.2";

/// How long the call runs once answered, seconds, unless
/// `SHAPED_SECONDS` says.
const RUN_SECONDS: u64 = 60;

/// A number from the environment variable `name`.
fn env_number(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// One end of a veth pair whose egress is the bottleneck: tbf on `dev` in
/// namespace `ns`.
#[derive(Debug, Clone)]
struct Bottleneck {
    ns: String,
    dev: String,
}

impl Bottleneck {
    /// Shapes the link to `rate` bit/s (`verb`: `add` the first time,
    /// `change` after): a token bucket of `TBF_BURST` bytes (default
    /// 10 kB), and a queue of up to 300 ms, far more than the estimators
    /// should let build up, so the delay the test sees is theirs, not
    /// tbf's drops.
    fn shape(&self, verb: &str, rate: u64) {
        let burst = std::env::var("TBF_BURST").unwrap_or_else(|_| "10kb".to_owned());
        let status = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "tc", "qdisc", verb, "dev", &self.dev,
            ])
            .args(["root", "tbf", "rate", &format!("{rate}bit")])
            .args(["burst", &burst, "latency", "300ms"])
            .status()
            .expect("tc runs");
        assert!(
            status.success(),
            "tc qdisc {verb} on {}/{}",
            self.ns,
            self.dev
        );
    }

    /// What tbf counted so far: bytes and packets it let through (link
    /// layer, headers included: what the rate applies to), packets it
    /// dropped, bytes waiting.
    fn counters(&self) -> Option<LinkCounters> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "tc", "-s", "-j", "qdisc", "show"])
            .args(["dev", &self.dev])
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        let q = v.as_array()?.iter().find(|q| q["kind"] == "tbf")?;
        Some(LinkCounters {
            bytes: q["bytes"].as_u64()?,
            packets: q["packets"].as_u64()?,
            drops: q["drops"].as_u64()?,
            backlog: q["backlog"].as_u64()?,
        })
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct LinkCounters {
    bytes: u64,
    packets: u64,
    drops: u64,
    backlog: u64,
}

/// A bottleneck's counters at `t` seconds, when its rate was `rate`.
#[derive(Debug, Clone, Copy)]
struct LinkSample {
    t: f64,
    rate: u64,
    counters: LinkCounters,
}

impl LinkSample {
    /// The delay of the queue waiting at the bottleneck, seconds.
    fn queue_delay(&self) -> f64 {
        self.counters.backlog as f64 * 8.0 / self.rate as f64
    }
}

/// How often the bottlenecks' counters are read.
const LINK_SAMPLE: Duration = Duration::from_millis(100);

/// Reads `link`'s counters every [`LINK_SAMPLE`] from `started` until
/// `stop`, its rate `rate_at` the sample's time.
fn sample_link(
    link: Bottleneck,
    started: Instant,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    rate_at: impl Fn(f64) -> u64 + Send + 'static,
) -> std::thread::JoinHandle<Vec<LinkSample>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let t = started.elapsed().as_secs_f64();
            if let Some(counters) = link.counters() {
                samples.push(LinkSample {
                    t,
                    rate: rate_at(t),
                    counters,
                });
            }
            std::thread::sleep(LINK_SAMPLE);
        }
        samples
    })
}

/// Reads `child`'s stdout JSON lines into a channel; other lines printed.
fn json_lines(child: &mut Child, who: &'static str) -> mpsc::Receiver<Value> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v.is_object() => {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
                _ => println!("{who}: {line}"),
            }
        }
    });
    rx
}

fn first_with(rx: &mpsc::Receiver<Value>, key: &str, within: Duration) -> Value {
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let v = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no {key} within {within:?}: {e}"));
        if let Some(x) = v.get(key) {
            return x.clone();
        }
    }
}

/// A sample of one side: seconds since the answer on that side's clock
/// (the samples of a loaded process reach the test late and in bunches),
/// and the numbers.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    t: f64,
    /// Bytes this side sent (payload), cumulative.
    sent: f64,
    /// Its estimate (availableOutgoingBitrate), bits per second.
    available: Option<f64>,
    /// Chromium: the candidate pair's RTT, seconds.
    rtt: Option<f64>,
    /// Chromium: frames of ours decoded.
    decoded: f64,
}

/// The rate between two cumulative byte counts, bits per second.
fn rate(a: &Sample, b: &Sample) -> f64 {
    (b.sent - a.sent) * 8.0 / (b.t - a.t).max(1e-3)
}

fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(((xs.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

#[test]
fn chromium_and_realtimer_follow_a_shaped_link() {
    if std::env::var("FULL").as_deref() != Ok("1") {
        println!("skipped: FULL=1 runs it (60 s in real time)");
        return;
    }
    if !is_root() {
        println!("skipped: namespaces and tc need root");
        return;
    }
    let pid = std::process::id();
    let (us, chromium) = (format!("rt-us{pid}"), format!("rt-ch{pid}"));
    let _ns = Namespaces::create(&[us.clone(), chromium.clone()]);
    ip(&[
        "-n", &us, "link", "add", "veth-us", "type", "veth", "peer", "name", "veth-ch", "netns",
        &chromium,
    ]);
    let to_chromium = Bottleneck {
        ns: us.clone(),
        dev: "veth-us".to_owned(),
    };
    let to_us = Bottleneck {
        ns: chromium.clone(),
        dev: "veth-ch".to_owned(),
    };
    for (link, addr) in [(&to_chromium, ADDR_US), (&to_us, ADDR_CHROMIUM)] {
        ip(&[
            "-n",
            &link.ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &link.dev,
        ]);
        ip(&["-n", &link.ns, "link", "set", &link.dev, "up"]);
        link.shape("add", RATE_BPS);
    }
    let seconds = env_number("SHAPED_SECONDS").map_or(RUN_SECONDS, |s| s as u64);
    // SHAPED_HALVE_AT=s: both links drop to half their rate s seconds in.
    let halve_at = env_number("SHAPED_HALVE_AT");
    let rate_at = move |t: f64| match halve_at {
        Some(h) if t >= h => RATE_BPS / 2,
        _ => RATE_BPS,
    };
    let mut browser = Command::new("ip")
        .args([
            "netns",
            "exec",
            &chromium,
            "node",
            "chromium-video-peer.mjs",
        ])
        .current_dir(browser_dir())
        .env("STATS_MS", "500")
        .env("SECONDS_LIMIT", (seconds + 30).to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let mut peer = Command::new("ip")
        .args(["netns", "exec", &us])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "shaped_link_peer", "--ignored", "--nocapture"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the peer runs");
    let browser_lines = json_lines(&mut browser, "chromium");
    let peer_lines = json_lines(&mut peer, "peer");
    let mut browser_in = browser.stdin.take().unwrap();
    let mut peer_in = peer.stdin.take().unwrap();
    let offer = first_with(&browser_lines, "offer", Duration::from_secs(90));
    writeln!(peer_in, "{}", json!({ "offer": offer })).unwrap();
    let answer = first_with(&peer_lines, "answer", Duration::from_secs(30));
    writeln!(browser_in, "{}", json!({ "answer": answer })).unwrap();

    let started = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let samplers = [&to_chromium, &to_us]
        .map(|link| sample_link(link.clone(), started, stop.clone(), rate_at));
    let mut theirs: Vec<Sample> = Vec::new();
    let mut ours: Vec<Sample> = Vec::new();
    let mut halved = false;
    // Each side's last stats, for the retransmission counters.
    let (mut their_last, mut our_last) = (Value::Null, Value::Null);
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(100));
        let t = started.elapsed().as_secs_f64();
        if !halved && halve_at.is_some_and(|h| t >= h) {
            halved = true;
            for link in [&to_chromium, &to_us] {
                link.shape("change", RATE_BPS / 2);
            }
        }
        for v in browser_lines.try_iter() {
            let Some(s) = v.get("stats") else { continue };
            their_last = s.clone();
            let sent = s["layers"]
                .as_object()
                .map(|l| l.values().filter_map(|x| x["bytesSent"].as_f64()).sum())
                .unwrap_or(0.0);
            theirs.push(Sample {
                t: s["t"].as_f64().unwrap_or(t),
                sent,
                available: s["available"].as_f64(),
                rtt: s["rtt"].as_f64(),
                decoded: s["inbound"]["framesDecoded"].as_f64().unwrap_or(0.0),
            });
        }
        for v in peer_lines.try_iter() {
            let Some(s) = v.get("ours") else { continue };
            our_last = s.clone();
            ours.push(Sample {
                t: s["t"].as_f64().unwrap_or(t),
                sent: s["sent"].as_f64().unwrap_or(0.0),
                available: s["available"].as_f64(),
                ..Sample::default()
            });
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let [link_to_chromium, link_to_us] = samplers.map(|s| s.join().expect("sampler"));
    drop(browser_in);
    drop(peer_in);
    let _ = browser.wait();
    let _ = peer.wait();

    // The longest queue at each bottleneck in the half second to `t`, ms.
    let queue_ms = |samples: &[LinkSample], t: f64| {
        let longest = samples
            .iter()
            .filter(|s| s.t > t - 0.5 && s.t <= t)
            .map(LinkSample::queue_delay)
            .fold(0.0, f64::max);
        format!("{:.0}", longest * 1e3)
    };
    println!("   t | Chromium sends  est.  |  we send   est.  | RTT ms | queue ms to us, to Chromium | decoded");
    let kbps = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{:.0}", x / 1e3));
    // Rates over a second (two samples back): a loaded process reports
    // late, so shorter windows show its bunching, not its sending.
    for (i, c) in theirs.iter().enumerate().skip(2) {
        let o = ours.iter().rposition(|o| o.t <= c.t);
        let (our_rate, our_est) = match o {
            Some(k) if k > 1 => (Some(rate(&ours[k - 2], &ours[k])), ours[k].available),
            _ => (None, None),
        };
        println!(
            "{:5.1} | {:>6} {:>6} | {:>6} {:>6} | {:>6} | {:>5} {:>5} | {}",
            c.t,
            kbps(Some(rate(&theirs[i - 2], c))),
            kbps(c.available),
            kbps(our_rate),
            kbps(our_est),
            c.rtt.map_or("-".to_owned(), |r| format!("{:.0}", r * 1e3)),
            queue_ms(&link_to_us, c.t),
            queue_ms(&link_to_chromium, c.t),
            c.decoded
        );
    }
    assert!(theirs.len() > 10 && ours.len() > 10, "too few samples");
    print_goals(&theirs, &ours);
    for (who, samples) in [
        ("Chromium -> us", &link_to_us),
        ("us -> Chromium", &link_to_chromium),
    ] {
        print_link(who, samples, halve_at);
    }

    // After a ramp-up, both estimates at least half the link's rate (the
    // fake camera's content keeps Chromium's encoder under 1 Mbit/s, so
    // its estimate stops where its probes do: 1.85 Mbit/s in most runs,
    // 5 when probes passed in tbf's 10 kB burst), ours not past the link
    // by more than a tenth; each estimate against the link's rate when
    // it was read.
    let settled = |xs: &[Sample]| -> Vec<f64> {
        xs.iter()
            .filter(|s| s.t > 10.0)
            .filter_map(|s| Some(s.available? / rate_at(s.t) as f64))
            .collect()
    };
    let (their_est, our_est) = (settled(&theirs), settled(&ours));
    let their_median = percentile(their_est.clone(), 0.5);
    let our_median = percentile(our_est.clone(), 0.5);
    println!(
        "settled (t > 10 s): Chromium's estimate median {:.0}% of the link, ours {:.0}%",
        their_median * 100.0,
        our_median * 100.0,
    );
    assert!(their_median >= 0.5, "Chromium's estimate {their_median}");
    assert!(our_median >= 0.5, "our estimate {our_median}");
    assert!(our_median <= 1.1, "our estimate {our_median}");
    // What each side sends stays under the link (2-second windows; not
    // in the 2 s after a halving, which the estimators need to see).
    let settling = |t: f64| halve_at.is_some_and(|h| t >= h && t < h + 2.0);
    for (who, xs) in [("Chromium", &theirs), ("we", &ours)] {
        for w in xs
            .windows(5)
            .filter(|w| w[0].t > 5.0 && !settling(w[0].t) && !settling(w[4].t))
        {
            let r = rate(&w[0], &w[4]);
            let cap = rate_at(w[0].t) as f64;
            assert!(
                r <= 1.15 * cap,
                "{who} sent {r:.0} bit/s at {:.1} s",
                w[4].t
            );
        }
    }
    // The queues stay short: the RTT through both (Chromium's STUN
    // checks, every few seconds), which a sender ignoring the link would
    // hold near tbf's 300 ms each way. The median: on a loaded machine a
    // check now and then waits for a CPU, not for the link.
    let rtts: Vec<f64> = theirs
        .iter()
        .filter(|s| s.t > 5.0)
        .filter_map(|s| s.rtt)
        .collect();
    let (median, p95) = (percentile(rtts.clone(), 0.5), percentile(rtts, 0.95));
    println!(
        "RTT (t > 5 s): median {:.0} ms, p95 {:.0} ms",
        median * 1e3,
        p95 * 1e3
    );
    assert!(median <= 0.15, "RTT median {median} s");
    // Retransmissions both ways: Chromium asks for what it lost of ours
    // and we send it again on RTX; we ask for what we lost of Chromium's
    // and it sends it again.
    let number = |v: &Value| v.as_f64().unwrap_or(0.0);
    let chromium_asked = number(&their_last["inbound"]["nackCount"]);
    let we_resent = number(&our_last["retransmitted"]);
    let we_asked = number(&their_last["layers"]["-"]["nackCount"]);
    let chromium_resent = number(&their_last["layers"]["-"]["retransmittedBytesSent"]);
    println!(
        "retransmissions: Chromium sent {chromium_asked} NACKs, we resent {we_resent} bytes; we sent {we_asked} NACKs, Chromium resent {chromium_resent} bytes; the relay dropped {} (ours, Chromium's)",
        our_last["relay_dropped"]
    );
    if env_number("SHAPED_LOSS").is_some() {
        assert!(
            chromium_asked > 0.0 && we_resent > 0.0,
            "our loss unrepaired"
        );
        assert!(
            we_asked > 0.0 && chromium_resent > 0.0,
            "Chromium's loss unrepaired"
        );
    }
    // Chromium decodes what we send.
    let decoded = theirs.last().map_or(0.0, |s| s.decoded);
    assert!(decoded >= 10.0 * seconds as f64, "{decoded} frames decoded");
}

/// Issue 14's figures for each direction, printed (not asserted: in real
/// time on a shared machine they are the machine's as much as ours): when
/// the estimate first reached 90% of the link, what was sent over the
/// run as a share of the link, and the RTT's 95th percentile over its
/// least (the queues' delay, both ways).
fn print_goals(theirs: &[Sample], ours: &[Sample]) {
    let cap = RATE_BPS as f64;
    for (who, xs) in [("Chromium -> us", theirs), ("us -> Chromium", ours)] {
        let reached = xs
            .iter()
            .find(|s| s.available.is_some_and(|a| a >= 0.9 * cap))
            .map_or("never".to_owned(), |s| format!("{:.1} s", s.t));
        let utilization = match (xs.first(), xs.last()) {
            (Some(a), Some(b)) => rate(a, b) / cap,
            _ => f64::NAN,
        };
        println!(
            "{who}: estimate at 90% of the link after {reached}, sent {:.0}% of the link over {:.0} s",
            utilization * 100.0,
            xs.last().map_or(0.0, |s| s.t)
        );
    }
    let rtts: Vec<f64> = theirs.iter().filter_map(|s| s.rtt).collect();
    let least = rtts.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "queuing delay (RTT p95 - least, both ways): {:.0} ms",
        (percentile(rtts, 0.95) - least) * 1e3
    );
}

/// Issue 14's figures from the bottleneck itself (tbf's counters, not
/// either end's stats, so both directions and both kinds of sender are
/// measured alike): the share of the link's capacity carried over the
/// run (headers included, as the rate counts them), the queue's delay
/// (bytes waiting over the rate) at the 50th and 95th percentile of
/// 100 ms samples, and after a halving how long the queue stayed over
/// 100 ms and what tbf dropped until then (at least 2 s).
fn print_link(who: &str, samples: &[LinkSample], halve_at: Option<f64>) {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        println!("{who}: no counters from tc");
        return;
    };
    let capacity: f64 = samples
        .windows(2)
        .map(|w| w[0].rate as f64 * (w[1].t - w[0].t))
        .sum();
    let carried = (last.counters.bytes - first.counters.bytes) as f64 * 8.0;
    let delays: Vec<f64> = samples.iter().map(LinkSample::queue_delay).collect();
    let max = delays.iter().copied().fold(0.0, f64::max);
    println!(
        "{who} at the bottleneck: carried {:.0}% of its capacity over {:.0} s; queuing delay p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; {} packets dropped",
        100.0 * carried / capacity.max(1.0),
        last.t - first.t,
        percentile(delays.clone(), 0.5) * 1e3,
        percentile(delays, 0.95) * 1e3,
        max * 1e3,
        last.counters.drops - first.counters.drops,
    );
    let Some(h) = halve_at else { return };
    let over = samples
        .iter()
        .rev()
        .find(|s| s.t >= h && s.t < h + 10.0 && s.queue_delay() >= 0.1)
        .map_or(0.0, |s| s.t + LINK_SAMPLE.as_secs_f64() - h);
    let at = |t: f64| samples.iter().find(|s| s.t >= t).unwrap_or(last).counters;
    let (a, b) = (at(h), at(h + over.max(2.0)));
    let dropped = b.drops - a.drops;
    let lost = dropped as f64 / ((b.packets - a.packets) + dropped).max(1) as f64;
    println!(
        "{who}: after the halving at {h:.0} s the queue was over 100 ms for {over:.1} s; {:.1}% of packets dropped from the halving to {:.1} s after",
        lost * 100.0,
        over.max(2.0)
    );
}

/// Frames of a moving gradient under faint noise: at a coarse quantizer
/// the noise is gone and the frame costs little, at a fine one it costs
/// much, so the encoder can meet any target from a few hundred kbit/s to
/// the link's rate (pure noise overshoots every target; a plain pattern
/// never reaches the link).
fn textured_frames(width: u32, height: u32, count: usize) -> Vec<I420Frame> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let (w, h) = (width as usize, height as usize);
    (0..count)
        .map(|n| {
            let y: Vec<u8> = (0..w * h)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let base = (i % w + i / w + 6 * n) % 192 + 32;
                    (base as i64 + (x >> 60) as i64 - 8).clamp(16, 235) as u8
                })
                .collect();
            let chroma = vec![128u8; w * h / 4];
            I420Frame::from_planes(width, height, &y, w, &chroma, w / 2, &chroma, w / 2).unwrap()
        })
        .collect()
}

/// Our side, inside its namespace: answers the offer read on stdin,
/// sends VP8 at the track's target bitrate, and prints its
/// estimate and bytes sent every 500 ms until stdin closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by chromium_and_realtimer_follow_a_shaped_link inside a namespace"]
async fn shaped_link_peer() {
    if std::env::var_os("RUST_LOG").is_some() {
        // The estimator's inputs and decisions on the real link, with
        // RUST_LOG=realtimer_proto::rtc::congestion=debug.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line) {
                if lines_tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    let offer = lines.recv().await.expect("an offer");
    let offer = offer["offer"].as_str().expect("offer").to_owned();
    let mut config = PeerConnectionConfig::default();
    config.interfaces = vec![ADDR_US.parse().unwrap()];
    let pc = PeerConnection::new(config).await.unwrap();
    let mut events = pc.events().unwrap();
    let track = TrackLocal::new(MediaKind::Video, "s", "noise");
    // SHAPED_LOSS=p: Chromium reaches us only through a relay that drops
    // each RTP packet with probability p both ways, before the
    // bottleneck: we are told none of Chromium's candidates (it tells us
    // its address by its checks to the relay), it is told only the relay.
    let loss = env_number("SHAPED_LOSS");
    let offer = match loss {
        Some(_) => offer
            .lines()
            .filter(|l| !l.starts_with("a=candidate:"))
            .map(|l| l.to_owned() + "\r\n")
            .collect(),
        None => offer,
    };
    pc.set_remote_description(SessionDescription::offer(offer))
        .await
        .unwrap();
    pc.add_track(track.clone()).await.unwrap();
    let answer = pc.create_answer().await.unwrap();
    pc.set_local_description(answer).await.unwrap();
    // Our candidates, until the end of them.
    let mut ours = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Some(PeerConnectionEvent::IceCandidate(Some(c)))) => {
                ours = ours.or(impaired_relay::candidate_address(&c.candidate));
            }
            Ok(Some(PeerConnectionEvent::IceCandidate(None))) | Err(_) | Ok(None) => break,
            Ok(Some(PeerConnectionEvent::Track(t))) => {
                tokio::spawn(async move { while t.read_rtp().await.is_some() {} });
            }
            Ok(Some(_)) => {}
        }
    }
    assert_eq!(pc.ice_gathering_state(), IceGatheringState::Complete);
    let mut answer = pc.local_description().unwrap().sdp;
    let relay = match loss {
        Some(loss) => {
            let ours = ours.expect("a UDP candidate");
            let impairment = Impairment {
                loss,
                burst: 1,
                jitter: Duration::ZERO,
                seed: 14,
            };
            let relay =
                impaired_relay::start_on(ADDR_US.parse().unwrap(), ours, impairment, loss).await;
            let via = format!(
                "a=candidate:1 1 udp 2130706431 {} {} typ host",
                relay.address.ip(),
                relay.address.port()
            );
            answer = answer
                .lines()
                .filter(|l| !l.starts_with("a=candidate:"))
                .flat_map(|l| {
                    let candidate = l.starts_with("a=mid:").then(|| via.clone());
                    std::iter::once(l.to_owned()).chain(candidate)
                })
                .map(|l| l + "\r\n")
                .collect();
            Some(relay)
        }
        None => None,
    };
    println!("{}", json!({ "answer": answer }));
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if let PeerConnectionEvent::Track(t) = e {
                // Read what Chromium sends, so it is counted and NACKed.
                tokio::spawn(async move { while t.read_rtp().await.is_some() {} });
            }
        }
    });
    let sender = {
        let track = track.clone();
        tokio::spawn(async move {
            let frames = textured_frames(640, 360, 32);
            let interval = Duration::from_millis(33);
            let mut next = tokio::time::Instant::now();
            for frame in frames.iter().cycle() {
                if track.write_video_frame(frame, interval).await.is_err() {
                    // Not connected yet.
                    tokio::time::sleep(interval).await;
                }
                next += interval;
                tokio::time::sleep_until(next).await;
            }
        })
    };
    let mut report = tokio::time::interval(Duration::from_millis(500));
    let start = std::time::Instant::now();
    loop {
        tokio::select! {
            line = lines.recv() => if line.is_none() { break },
            _ = report.tick() => {
                let stats = pc.get_stats().await.unwrap();
                let sent: u64 = stats.outbound_rtp.iter().map(|s| s.bytes_sent).sum();
                let available = stats
                    .selected_candidate_pair()
                    .and_then(|p| p.available_outgoing_bitrate);
                let target = track.target_bitrate();
                let t = start.elapsed().as_secs_f64();
                let retransmitted: u64 =
                    stats.outbound_rtp.iter().map(|s| s.retransmitted_bytes_sent).sum();
                let dropped = relay.as_ref().map(|r| {
                    [&r.counts.dropped, &r.counts.reverse_dropped]
                        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
                });
                println!("{}", json!({ "ours": {
                    "t": t, "sent": sent, "available": available, "target": target,
                    "retransmitted": retransmitted, "relay_dropped": dropped,
                } }));
            }
        }
    }
    sender.abort();
    pc.close().await;
}
