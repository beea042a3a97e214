//! Flood bench (issue 18): hostile peers against `realtimer serve`, and a
//! normal peer beside them, in one run. Driven by
//! `crates/server/bench/flood.sh`, which starts a release `serve` with a
//! TURN user and the forwarding unit's UDP port.
//!
//! The normal peer: a WHIP publisher (Opus-shaped 50 pkt/s, VP8-shaped
//! 100 pkt/s, each payload stamped with its send time) and a WHEP viewer
//! of the same room, through the server's forwarding unit; and a STUN
//! client sending a Binding every 10 ms to the STUN/TURN port. Figures:
//! media packets received, send-to-arrival p50/p99, STUN RTT p50/p99 and
//! answers lost.
//!
//! The floods (FLOODS, each FLOOD_PPS datagrams a second for SECONDS):
//! - `stun-binding`: 20-byte Binding requests at the STUN/TURN port from
//!   SOURCES addresses;
//! - `stun-signed`: Binding requests with the TURN user's valid
//!   long-term credentials (each source's own nonce);
//! - `turn-bad-auth`: Allocates signed with a wrong password (the
//!   failed-auth throttle);
//! - `ice-wrong`: ICE checks naming the hostile participant's ufrag with
//!   a wrong password, at the forwarding unit's port, from SOURCES
//!   addresses;
//! - `ice-valid`: the same with the right password (each source becomes
//!   a peer-reflexive candidate until the agent's bound);
//! - `hello-unrouted`: DTLS ClientHellos at the unit's port from SOURCES
//!   addresses no participant uses;
//!
//! and from the hostile participant's own connected address (a WHEP
//! viewer of the normal peer's room, ICE, DTLS and SRTP done):
//!
//! - `hello-routed`: DTLS ClientHellos onto its established association;
//! - `srtcp-garbage`: RTCP-shaped datagrams failing SRTCP authentication;
//! - `rtcp-nack`: valid SRTCP NACKs for the last 64 video packets it got;
//! - `rtcp-pli`: valid SRTCP PLIs for the video;
//!
//! and over HTTP:
//! - `whip-sessions`: WHIP offers that never connect, as fast as the
//!   server answers (each a participant until its ICE gives up): the
//!   memory per session and the bound (`MAX_SESSIONS`).
//!
//! Each flood's window comes right after a window without it (the
//! reference, same length, same run), and each window reports the
//! server's CPU (and how long it waited for one), its RSS before and
//! after (growth per flooding source), what the flood sent and what came
//! back (datagrams, bytes: the amplification), the normal peer's figures
//! and every `/metrics` counter that moved.
//!
//! ```text
//! URL=http://127.0.0.1:8080 STUN=127.0.0.1:3478 SERVER_PID=… TURN_USER=user:pass \
//!   cargo bench -p realtimer-server --bench flood
//! ```
//! Env (defaults): FLOODS (all of the above), FLOOD_PPS (20000), SOURCES
//! (64), SECONDS (5), JSON_OUT (a file to append one JSON object a
//! window to).
// A benchmark driver owns the clock and reports on stdout.
#![allow(clippy::disallowed_methods, clippy::print_stdout, clippy::print_stderr)]

#[path = "../common/mod.rs"]
mod common;
// Shared with the SFU load generator; not every part is used here.
#[allow(dead_code)]
#[path = "../sfu_load/client.rs"]
mod client;
mod hostile;
#[allow(dead_code)]
#[path = "../signaling_load/procfs.rs"]
mod procfs;
mod sources;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use realtimer_dtls::{Dtls, DtlsConfig, Role};
use realtimer_proto::Certificate;
use realtimer_server::latency::{LatencyHistogram, LatencySummary};
use realtimer_signaling::whip::{Method, WhipClient};
use serde_json::json;

use self::client::{Client, Rates, Recorder, Shared};
use self::common::{env, now};
use self::hostile::{Attack, Hostile};
use self::sources::{Datagram, Probe, SourceFlood};

const ALL_FLOODS: &str = "stun-binding stun-signed turn-bad-auth ice-wrong ice-valid \
    hello-unrouted hello-routed srtcp-garbage rtcp-nack rtcp-pli whip-sessions";

const ROOM: &str = "flood";

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    if std::env::args().nth(1).as_deref() == Some("amplification") {
        local.block_on(&runtime, amplification());
    } else {
        local.block_on(&runtime, run());
    }
}

/// `flood amplification`: the answers to unauthenticated requests of
/// every server in AMPLIFY (`name=host:port ...`), side by side.
async fn amplification() {
    let targets: String = env("AMPLIFY", String::new());
    println!("== amplification: bytes back for one unauthenticated request");
    for target in targets.split_whitespace() {
        let Some((name, address)) = target.split_once('=') else {
            continue;
        };
        let Ok(address) = address.parse() else {
            eprintln!("{target}: not name=host:port");
            continue;
        };
        match sources::amplification(address).await {
            Ok(rows) => {
                for (request, asked, answered) in rows {
                    println!(
                        "   {name:<10} {request:<30} {asked:>3} B -> {answered:>3} B  x{:.2}",
                        answered as f64 / asked as f64
                    );
                }
            }
            Err(e) => eprintln!("{name}: {e}"),
        }
    }
}

/// Every `realtimer_` sample of `/metrics` (name with labels → value).
async fn scrape(base: &str) -> BTreeMap<String, f64> {
    let Ok(client) = WhipClient::new(&format!("{base}/metrics"), None) else {
        return BTreeMap::new();
    };
    match client.request(Method::GET, "/metrics", None, "").await {
        Ok(r) if r.status == 200 => r
            .body
            .lines()
            .filter(|l| l.starts_with("realtimer_") && !l.contains("_bucket{"))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The bytes of a real DTLS 1.2 ClientHello.
fn client_hello(certificate: &Certificate) -> Vec<u8> {
    let other = Certificate::generate(SystemTime::now()).expect("a certificate");
    let mut dtls = Dtls::new(
        DtlsConfig::new(certificate.clone()),
        Role::Client,
        other.fingerprint().clone(),
        now(),
    )
    .expect("a DTLS client");
    dtls.poll_transmit().expect("a ClientHello").to_vec()
}

/// What one window measured.
struct Window {
    label: String,
    seconds: f64,
    server_cpu_s: f64,
    server_wait_s: f64,
    rss_before_mib: f64,
    rss_after_mib: f64,
    media: (u64, u64, LatencySummary),
    probe: (u64, u64, LatencySummary),
    flood_sent: (u64, u64),
    flood_answers: (u64, u64),
    metrics: Vec<(String, f64)>,
}

struct Bench {
    base: String,
    stun: SocketAddr,
    server_pid: String,
    window: Duration,
    pps: u32,
    sources: usize,
    turn_user: (String, String),
    shared: Shared,
    hostile: Hostile,
    client_hello: Vec<u8>,
}

impl Bench {
    /// One window: `flood` (none: the reference) for `self.window`, the
    /// normal peer measured beside it.
    async fn window(&self, label: &str, flood: Option<&str>) -> Window {
        let hostile_address = self.hostile.borrow().server;
        let sfu = hostile_address.unwrap_or(self.stun);
        let ice = self.hostile.borrow().ice.clone().unwrap_or_default();
        let username = format!("{}:{}", ice.0, ice.2);
        let (user, password) = self.turn_user.clone();
        let by_sources = |d: Datagram, target: SocketAddr| Some((d, target));
        let source_flood = match flood {
            Some("stun-binding") => by_sources(Datagram::Binding, self.stun),
            Some("stun-signed") => by_sources(Datagram::SignedBinding(user, password), self.stun),
            Some("turn-bad-auth") => by_sources(Datagram::BadAllocate(user), self.stun),
            Some("ice-wrong") => by_sources(
                Datagram::Check(username, "not-the-password-at-all".into()),
                sfu,
            ),
            Some("ice-valid") => by_sources(Datagram::Check(username, ice.1), sfu),
            Some("hello-unrouted") => by_sources(Datagram::Raw(self.client_hello.clone()), sfu),
            _ => None,
        };
        let attack = match flood {
            Some("hello-routed") => Some(Attack::ClientHello),
            Some("srtcp-garbage") => Some(Attack::SrtcpGarbage),
            Some("rtcp-nack") => Some(Attack::Nack),
            Some("rtcp-pli") => Some(Attack::Pli),
            _ => None,
        };
        let mut source_flood = match source_flood {
            Some((d, target)) => Some(
                SourceFlood::new(self.sources, target, d)
                    .await
                    .expect("flood sockets"),
            ),
            None => None,
        };
        let metrics_before = scrape(&self.base).await;
        let rss_before = procfs::memory(&self.server_pid).unwrap_or_default().rss_mib;
        let cpu_before = procfs::cpu_s(&self.server_pid).unwrap_or(f64::NAN);
        let wait_before = procfs::cpu_wait_s(&self.server_pid).unwrap_or(f64::NAN);
        let hostile_before = {
            let h = self.hostile.borrow();
            (h.sent, h.received)
        };
        {
            let mut r = self.shared.borrow_mut();
            r.received = 0;
            r.sent = 0;
            r.refused = 0;
            r.latency = LatencyHistogram::default();
            r.measuring = true;
        }
        if let Some(a) = attack {
            self.hostile.borrow_mut().attack = Some((a, self.pps));
        }
        let started = now();
        let probe = Probe::run(self.stun, self.window);
        let mut sessions = (0, 0);
        let (probe, ()) = match source_flood.as_mut() {
            Some(f) => tokio::join!(probe, f.run(self.pps, self.window)),
            None if flood == Some("whip-sessions") => {
                tokio::join!(probe, self.whip_sessions(&mut sessions))
            }
            None => (probe.await, ()),
        };
        let probe = probe.expect("the STUN probe");
        self.hostile.borrow_mut().attack = None;
        let seconds = now().duration_since(started).as_secs_f64();
        self.shared.borrow_mut().measuring = false;
        // What the flood left queued is the window's too.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cpu = procfs::cpu_s(&self.server_pid).unwrap_or(f64::NAN) - cpu_before;
        let wait = procfs::cpu_wait_s(&self.server_pid).unwrap_or(f64::NAN) - wait_before;
        let rss_after = procfs::memory(&self.server_pid).unwrap_or_default().rss_mib;
        let metrics_after = scrape(&self.base).await;
        let metrics = metrics_after
            .iter()
            .filter_map(|(k, v)| {
                let d = v - metrics_before.get(k).copied().unwrap_or(0.0);
                (d != 0.0 && !k.contains("_seconds") && !k.contains("latency"))
                    .then(|| (k.clone(), d))
            })
            .collect();
        let (flood_sent, flood_answers) = match (&source_flood, attack) {
            (Some(f), _) => (f.sent, f.answers),
            (None, Some(_)) => {
                let h = self.hostile.borrow();
                (
                    (
                        h.sent.0 - hostile_before.0 .0,
                        h.sent.1 - hostile_before.0 .1,
                    ),
                    (
                        h.received.0 - hostile_before.1 .0,
                        h.received.1 - hostile_before.1 .1,
                    ),
                )
            }
            _ => (sessions, (0, 0)),
        };
        let r = self.shared.borrow();
        Window {
            label: label.to_owned(),
            seconds,
            server_cpu_s: cpu,
            server_wait_s: wait,
            rss_before_mib: rss_before,
            rss_after_mib: rss_after,
            media: (r.sent, r.received, r.latency.summary()),
            probe: (probe.sent, probe.answered, probe.rtt.summary()),
            flood_sent,
            flood_answers,
            metrics,
        }
    }
}

impl Bench {
    /// WHIP offers one after another for the window; counts (sessions
    /// made, offer bytes).
    async fn whip_sessions(&self, made: &mut (u64, u64)) {
        let mut rtc = realtimer_proto::Rtc::new(
            realtimer_proto::RtcConfig::default(),
            Certificate::generate(SystemTime::now()).expect("a certificate"),
            now(),
        );
        rtc.add_local_address(now(), "127.0.0.1:9".parse().expect("an address"));
        let _ = rtc.add_transceiver(
            realtimer_proto::MediaKind::Audio,
            realtimer_proto::Direction::SendOnly,
        );
        let Ok(offer) = rtc.create_offer() else {
            return;
        };
        let started = now();
        while now().duration_since(started) < self.window {
            // A room each: a room holds at most 50.
            let url = format!("{}/whip/flood-{}", self.base, made.0);
            let Ok(mut whip) = WhipClient::new(&url, None) else {
                return;
            };
            match whip.offer(&offer.sdp).await {
                Ok(_) => {
                    made.0 += 1;
                    made.1 += offer.sdp.len() as u64;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(w: &Window, sources: usize) {
    let (sent, received, latency) = &w.media;
    let (probes, answered, rtt) = &w.probe;
    println!(
        "   {:<16} server CPU {:5.1}% of a core (waited {:4.1}%), RSS {:.1} -> {:.1} MiB; media {received}/{sent} p50 {:.3} p99 {:.3} ms; STUN {answered}/{probes} RTT p50 {:.3} p99 {:.3} ms",
        w.label,
        w.server_cpu_s / w.seconds * 100.0,
        w.server_wait_s / w.seconds * 100.0,
        w.rss_before_mib,
        w.rss_after_mib,
        ms(latency.p50),
        ms(latency.p99),
        ms(rtt.p50),
        ms(rtt.p99),
    );
    if w.flood_sent.0 > 0 {
        let cpu_us = w.server_cpu_s * 1e6 / w.flood_sent.0 as f64;
        println!(
            "   {:<16} flood {} datagrams ({:.0}/s, {} B), {} answers ({} B): x{:.2} bytes back; {:.2} us of server CPU per flood datagram (reference included); RSS {:+.1} KiB per source ({sources})",
            "",
            w.flood_sent.0,
            w.flood_sent.0 as f64 / w.seconds,
            w.flood_sent.1,
            w.flood_answers.0,
            w.flood_answers.1,
            w.flood_answers.1 as f64 / w.flood_sent.1.max(1) as f64,
            cpu_us,
            (w.rss_after_mib - w.rss_before_mib) * 1024.0 / sources as f64,
        );
    }
    if !w.metrics.is_empty() {
        let moved: Vec<String> = w
            .metrics
            .iter()
            .map(|(k, v)| format!("{} {v:+}", k.trim_start_matches("realtimer_")))
            .collect();
        println!("   {:<16} metrics: {}", "", moved.join(", "));
    }
}

fn to_json(w: &Window, flood: &str, pps: u32, sources: usize) -> serde_json::Value {
    json!({
        "flood": flood, "window": w.label, "pps": pps, "sources": sources, "seconds": w.seconds,
        "server_cpu_s": w.server_cpu_s, "server_wait_s": w.server_wait_s,
        "rss_before_mib": w.rss_before_mib, "rss_after_mib": w.rss_after_mib,
        "media_sent": w.media.0, "media_received": w.media.1,
        "media_p50_ms": ms(w.media.2.p50), "media_p99_ms": ms(w.media.2.p99),
        "stun_sent": w.probe.0, "stun_answered": w.probe.1,
        "stun_p50_ms": ms(w.probe.2.p50), "stun_p99_ms": ms(w.probe.2.p99),
        "flood_sent": w.flood_sent.0, "flood_sent_bytes": w.flood_sent.1,
        "flood_answers": w.flood_answers.0, "flood_answer_bytes": w.flood_answers.1,
        "metrics": w.metrics.iter().cloned().collect::<BTreeMap<_, _>>(),
    })
}

async fn run() {
    let base: String = env("URL", "http://127.0.0.1:8080".to_owned());
    let stun: SocketAddr = env("STUN", "127.0.0.1:3478".parse().expect("an address"));
    let server_pid: String = env("SERVER_PID", String::new());
    let floods: String = env("FLOODS", ALL_FLOODS.to_owned());
    let turn_user: String = env("TURN_USER", "flood:flood-password".to_owned());
    let turn_user = turn_user
        .split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
        .expect("TURN_USER is user:password");
    let pps: u32 = env("FLOOD_PPS", 20_000);
    let sources: usize = env("SOURCES", 64);
    let window = Duration::from_secs_f64(env("SECONDS", 5.0));
    let epoch = now();
    let certificate = Certificate::generate(SystemTime::now()).expect("a certificate");
    let shared: Shared = Rc::new(RefCell::new(Recorder::default()));
    let rates = Rates {
        audio_pps: 50,
        audio_bytes: 120,
        video_pps: 100,
        video_bytes: 1000,
    };

    // The normal peer: a publisher, then its viewer, then the hostile
    // viewer.
    let publisher = Client::new(&certificate, 11, Some(rates), 0, epoch, shared.clone())
        .await
        .expect("a socket");
    let publisher = client::connect(publisher, &base, "whip", ROOM)
        .await
        .expect("the publisher connects");
    tokio::task::spawn_local(publisher.run());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let viewer = Client::new(&certificate, 12, None, 1, epoch, shared.clone())
        .await
        .expect("a socket");
    let viewer = client::connect(viewer, &base, "whep", ROOM)
        .await
        .expect("the viewer connects");
    tokio::task::spawn_local(viewer.run());
    let hostile: Hostile = Rc::default();
    let hello = client_hello(&certificate);
    {
        let (certificate, base, hostile, hello) = (
            certificate.clone(),
            base.clone(),
            hostile.clone(),
            hello.clone(),
        );
        tokio::task::spawn_local(async move {
            if let Err(e) = hostile::run(certificate, base, ROOM.into(), hello, hostile).await {
                eprintln!("the hostile participant: {e}");
            }
        });
    }
    let until = now() + Duration::from_secs(30);
    while (shared.borrow().connected < 2 || !hostile.borrow().connected) && now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        shared.borrow().connected >= 2 && hostile.borrow().connected,
        "the normal peer and the hostile participant did not connect in 30 s"
    );
    // The viewers' first keyframe, the estimate's start.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let bench = Bench {
        base,
        stun,
        server_pid,
        window,
        pps,
        sources,
        turn_user,
        shared,
        hostile,
        client_hello: hello,
    };
    println!(
        "== flood bench: {pps} datagrams/s per flood for {:.0} s, {sources} sources; load average {:.1}",
        window.as_secs_f64(),
        procfs::loadavg()
    );
    let json_out = std::env::var("JSON_OUT").ok();
    for flood in floods.split_whitespace() {
        println!("-- {flood}");
        let reference = bench.window("reference", None).await;
        report(&reference, sources);
        let flooded = bench.window(flood, Some(flood)).await;
        report(&flooded, sources);
        if let Some(path) = &json_out {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("JSON_OUT writable");
            for w in [&reference, &flooded] {
                writeln!(file, "{}", to_json(w, flood, pps, sources)).expect("JSON_OUT written");
            }
        }
        if !bench.hostile.borrow().connected {
            println!("   the hostile participant is no longer connected");
        }
    }
}
