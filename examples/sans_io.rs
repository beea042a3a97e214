//! Driving the sans-IO core, `Rtc`, with your own event loop: no tokio,
//! no async, just a UDP socket and a clock.
//!
//! `realtimer::Rtc` (crate `realtimer-proto`) is the whole peer
//! connection as a state machine: it never reads a clock or touches a
//! socket. The caller feeds it datagrams and the time, and polls it for
//! datagrams to send, events and the next timer (`Rtc`'s crate docs give
//! the order). `PeerConnection` is one such loop on tokio; this is
//! another, on blocking std sockets, one thread per peer. Signaling
//! (descriptions and candidates) crosses between the threads on std
//! channels.
//!
//! ```sh
//! cargo run -p realtimer-examples --bin sans-io
//! ```
#![allow(clippy::print_stdout)] // an example prints what it does
#![allow(clippy::disallowed_methods)] // the loop owns the clock: it is the driver

use std::net::UdpSocket;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant, SystemTime};

use realtimer::{
    Certificate, ChannelData, DataChannelInit, IceCandidateInit, Rtc, RtcConfig, RtcEvent,
    SessionDescription,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What one peer's thread tells the other's.
enum Signal {
    Description(SessionDescription),
    Candidate(Option<IceCandidateInit>),
}

/// The longest the loop blocks on its socket, so that signaling from the
/// other thread is picked up soon too.
const MAX_WAIT: Duration = Duration::from_millis(20);

/// One peer: an `Rtc`, its socket, and the loop around them. Returns the
/// messages received once `expect` have arrived.
fn run_peer(
    name: &'static str,
    offerer: bool,
    seed: u64,
    to_other: Sender<Signal>,
    from_other: Receiver<Signal>,
    expect: usize,
) -> Result<Vec<String>, Error> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let local = socket.local_addr()?;
    let start = Instant::now();
    let certificate = Certificate::generate(SystemTime::now())?;
    let config = RtcConfig::default().with_seed(seed).with_loopback(true);
    let mut rtc = Rtc::new(config, certificate, start);
    // Every local socket is announced before the description is set.
    rtc.add_local_address(start, local);

    let mut chat = None;
    if offerer {
        chat = Some(rtc.create_data_channel(start, "chat", &DataChannelInit::default())?);
        let offer = rtc.create_offer()?;
        rtc.set_local_description(start, offer.clone())?;
        to_other.send(Signal::Description(offer))?;
    }

    let mut buf = vec![0u8; 2048];
    let mut received = Vec::new();
    let deadline = start + Duration::from_secs(30);
    while received.len() < expect {
        let now = Instant::now();
        if now > deadline {
            return Err(format!("{name}: timed out").into());
        }
        // 1. Inputs: signaling from the other side, then the socket.
        while let Ok(signal) = from_other.try_recv() {
            match signal {
                Signal::Description(desc) => {
                    rtc.set_remote_description(now, desc.clone())?;
                    if !offerer {
                        let answer = rtc.create_answer()?;
                        rtc.set_local_description(now, answer.clone())?;
                        to_other.send(Signal::Description(answer))?;
                    }
                }
                Signal::Candidate(c) => rtc.add_ice_candidate(now, c.as_ref())?,
            }
        }
        let wait = rtc
            .poll_timeout()
            .map_or(MAX_WAIT, |at| at.saturating_duration_since(now))
            .clamp(Duration::from_millis(1), MAX_WAIT);
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut buf) {
            Ok((len, source)) => rtc.handle_receive(Instant::now(), source, local, &buf[..len]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        if rtc.poll_timeout().is_some_and(|at| at <= now) {
            rtc.handle_timeout(now);
        }
        // 2. Outputs: every datagram, then every event.
        while let Some(transmit) = rtc.poll_transmit() {
            socket.send_to(&transmit.contents, transmit.destination)?;
        }
        while let Some(event) = rtc.poll_event() {
            match event {
                RtcEvent::IceCandidate(c) => to_other.send(Signal::Candidate(c))?,
                RtcEvent::ConnectionState(state) => println!("{name}: connection {state}"),
                RtcEvent::ChannelOpen(channel, _) if chat == Some(channel) || !offerer => {
                    chat = Some(channel);
                    rtc.send(
                        now,
                        channel,
                        ChannelData::Text(format!("hello from {name}")),
                    )?;
                }
                RtcEvent::ChannelMessage(_, ChannelData::Text(text)) => {
                    println!("{name} received: {text}");
                    received.push(text);
                }
                _ => {}
            }
        }
        // 3. The timer is read again at the top of the loop, after the
        // outputs moved it.
    }
    // Flush what the last sends queued, then close.
    for _ in 0..5 {
        while let Some(transmit) = rtc.poll_transmit() {
            socket.send_to(&transmit.contents, transmit.destination)?;
        }
        std::thread::sleep(Duration::from_millis(10));
        rtc.handle_timeout(Instant::now());
    }
    rtc.close(Instant::now());
    Ok(received)
}

fn main() -> Result<(), Error> {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_nanos() as u64;
    let (to_b, from_a) = channel();
    let (to_a, from_b) = channel();
    let a = std::thread::spawn(move || run_peer("a", true, seed, to_b, from_b, 1));
    let b = std::thread::spawn(move || run_peer("b", false, seed ^ 0x5eed, to_a, from_a, 1));
    let got_a = a.join().map_err(|_| "a panicked")??;
    let got_b = b.join().map_err(|_| "b panicked")??;
    assert_eq!(got_a, ["hello from b"]);
    assert_eq!(got_b, ["hello from a"]);
    println!("done");
    Ok(())
}
