//! `realtimer bench --room R`: data-channel round-trip time and throughput
//! between two peers in a room (two `realtimer bench`, on one host or
//! two), printed as a table.
//!
//! The side that created the room measures; the other answers:
//! 1. `--pings` round trips, one at a time: `{"ping": N}` answered with
//!    `{"pong": N}` (text messages, so the time includes both peers'
//!    stacks and SCTP's delayed acknowledgement does not hold them);
//! 2. binary messages of `--message-size` bytes for `--seconds`, keeping
//!    the channel's buffer busy but bounded (`bufferedAmount`), then
//!    `{"done": BYTES}`; the answering side counts what arrived and
//!    replies `{"report": {"bytes", "micros"}}` (first byte to `done`).

use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use realtimer::{ChannelData, DataChannel};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::info;

use crate::peer::{close_channel, ctrl_c, rate, Ended, Peer, PeerArgs, PeerError};

const LABEL: &str = "bench";
/// Keep the sender's buffer under this much...
const HIGH_WATER: usize = 4 * 1024 * 1024;
/// ...refilling from this.
const LOW_WATER: usize = 1024 * 1024;

/// `realtimer bench` options.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// How long to send for, in seconds (measuring side).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Bytes per message (at most the peer's max-message-size; 256 KiB
    /// for browsers and realtimer).
    #[arg(long = "message-size", default_value_t = 64 * 1024)]
    message_size: usize,
    /// Round trips for the RTT figures.
    #[arg(long, default_value_t = 20)]
    pings: u32,
    #[command(flatten)]
    peer: PeerArgs,
}

/// The bench's text messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BenchMessage {
    Ping(u32),
    Pong(u32),
    Done(u64),
    Report { bytes: u64, micros: u64 },
}

impl BenchMessage {
    fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Runs `realtimer bench`.
pub(crate) async fn run(args: BenchArgs) -> Result<(), PeerError> {
    if args.message_size == 0 || args.message_size > 256 * 1024 {
        return Err(PeerError::Protocol(
            "--message-size must be 1 to 262144 bytes".into(),
        ));
    }
    let mut peer = Peer::join(&args.peer, LABEL).await?;
    let measuring = peer.created_room();
    let ended = peer.ended();
    // Biased: what the work already has (a receipt, a last line) is
    // taken before the other side's hang-up, which may overtake it.
    let result = tokio::select! {
        biased;
        result = async {
            let channel = peer.channel().await?;
            let result = if measuring {
                measure(&channel, &args).await
            } else {
                answer(&channel).await
            };
            close_channel(&channel).await;
            result
        } => result,
        ended = ended.wait() => Err(match ended {
            Ended::Failed => PeerError::ConnectionFailed { reason: "the connection failed".into() },
            _ => PeerError::Incomplete { what: "the bench was not over".into() },
        }),
        () = ctrl_c() => Err(PeerError::Interrupted),
    };
    peer.hang_up().await;
    result
}

/// The next bench message (binary messages are `Err(len)`).
async fn next(channel: &DataChannel) -> Result<Result<BenchMessage, usize>, PeerError> {
    match channel.recv().await {
        Some(ChannelData::Text(text)) => serde_json::from_str(&text)
            .map(Ok)
            .map_err(|_| PeerError::Protocol(format!("not a bench message: {text}"))),
        Some(ChannelData::Binary(bytes)) => Ok(Err(bytes.len())),
        None => Err(PeerError::Incomplete {
            what: "the channel closed mid-bench".into(),
        }),
    }
}

async fn measure(channel: &DataChannel, args: &BenchArgs) -> Result<(), PeerError> {
    let mut rtts = Vec::with_capacity(args.pings as usize);
    for n in 0..args.pings {
        let sent = Instant::now();
        channel.send_text(BenchMessage::Ping(n).text()).await?;
        match next(channel).await? {
            Ok(BenchMessage::Pong(m)) if m == n => {}
            other => {
                return Err(PeerError::Protocol(format!(
                    "expected pong {n}, got {other:?}"
                )))
            }
        }
        rtts.push(sent.elapsed());
    }
    info!("sending for {} s", args.seconds);
    let message = Bytes::from(vec![0x5a; args.message_size]);
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds.max(0.0));
    let mut bytes = 0u64;
    while Instant::now() < until {
        if channel.buffered_amount() > HIGH_WATER {
            channel.wait_buffered_amount_at_most(LOW_WATER).await;
        }
        channel.send_binary(message.clone()).await?;
        bytes += message.len() as u64;
    }
    channel.send_text(BenchMessage::Done(bytes).text()).await?;
    let (received, micros) = match next(channel).await? {
        Ok(BenchMessage::Report { bytes, micros }) => (bytes, micros),
        other => {
            return Err(PeerError::Protocol(format!(
                "expected the report, got {other:?}"
            )))
        }
    };
    let elapsed = started.elapsed();
    rtts.sort();
    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
    let pick = |q: f64| {
        rtts.get(((rtts.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    let mut rows: Vec<(&str, String)> = vec![("round trips", rtts.len().to_string())];
    if let (Some(min), Some(median), Some(p95), Some(max)) =
        (pick(0.0), pick(0.5), pick(0.95), pick(1.0))
    {
        rows.extend([
            ("RTT min", ms(min)),
            ("RTT median", ms(median)),
            ("RTT p95", ms(p95)),
            ("RTT max", ms(max)),
        ]);
    }
    let mbps =
        |b: u64, d: Duration| format!("{:.1} MB/s ({:.0} Mbit/s)", rate(b, d), rate(b, d) * 8.0);
    rows.extend([
        ("message size", format!("{} bytes", args.message_size)),
        (
            "sent",
            format!("{bytes} bytes in {:.2} s", elapsed.as_secs_f64()),
        ),
        (
            "received",
            format!("{received} bytes in {:.2} s", micros as f64 / 1e6),
        ),
        ("throughput", mbps(received, elapsed)),
        (
            "throughput at the receiver",
            mbps(received, Duration::from_micros(micros)),
        ),
    ]);
    print_table(&rows);
    if received != bytes {
        return Err(PeerError::Incomplete {
            what: format!("sent {bytes} bytes, the other side counted {received}"),
        });
    }
    Ok(())
}

async fn answer(channel: &DataChannel) -> Result<(), PeerError> {
    let mut bytes = 0u64;
    let mut first = None;
    loop {
        match next(channel).await? {
            Ok(BenchMessage::Ping(n)) => channel.send_text(BenchMessage::Pong(n).text()).await?,
            Err(len) => {
                first.get_or_insert_with(Instant::now);
                bytes += len as u64;
            }
            Ok(BenchMessage::Done(sent)) => {
                let elapsed = first.map(|t: Instant| t.elapsed()).unwrap_or_default();
                let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                channel
                    .send_text(BenchMessage::Report { bytes, micros }.text())
                    .await?;
                print_table(&[
                    (
                        "received",
                        format!("{bytes} of {sent} bytes in {:.2} s", elapsed.as_secs_f64()),
                    ),
                    (
                        "throughput at the receiver",
                        format!("{:.1} MB/s", rate(bytes, elapsed)),
                    ),
                ]);
                return Ok(());
            }
            Ok(other) => return Err(PeerError::Protocol(format!("unexpected {other:?}"))),
        }
    }
}

/// Two columns, the first padded.
fn print_table(rows: &[(&str, String)]) {
    let width = rows
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0)
        .max("metric".len());
    println!("{:width$}  value", "metric");
    for (key, value) in rows {
        println!("{key:width$}  {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_on_the_wire() {
        assert_eq!(BenchMessage::Ping(3).text(), r#"{"ping":3}"#);
        assert_eq!(BenchMessage::Done(10).text(), r#"{"done":10}"#);
        assert_eq!(
            serde_json::from_str::<BenchMessage>(r#"{"report":{"bytes":5,"micros":7}}"#).unwrap(),
            BenchMessage::Report {
                bytes: 5,
                micros: 7
            }
        );
    }
}
