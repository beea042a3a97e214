//! Custom signaling: copy and paste. WebRTC leaves signaling to the
//! application; this example's "signaling server" is you (or a pipe).
//!
//! Run it twice, on one machine or two that can reach each other:
//!
//! ```text
//! custom-signaling offer     # prints one line: the offer and its candidates
//! custom-signaling answer    # paste that line; it prints the answer's line
//! ```
//!
//! and paste the answer's line into the first. Each line is a JSON array
//! of the messages the web app relays through a room (`{type: offer}` or
//! `{type: answer}`, then one `{type: candidate}` per ICE candidate,
//! `docs/signaling.md`), so no trickling is needed: each side waits until
//! it has gathered every candidate (RFC 8838 §4.4 end-of-candidates)
//! before printing. Once connected, the offerer sends a greeting on a
//! data channel, the answerer replies, and both exit.
//!
//! The test of this example pipes the two processes into each other.
#![allow(clippy::print_stdout, clippy::print_stderr)] // an example talks to its user

use std::io::BufRead;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use realtimer::{
    ChannelData, DataChannel, DataChannelInit, IceGatheringState, PeerConnection,
    PeerConnectionConfig, PeerConnectionEvent, PeerConnectionEvents,
};
use realtimer_signaling::{Handled, PeerSession, SessionMessage};
use serde_json::Value;

type Error = Box<dyn std::error::Error>;

/// Which side this process is.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Role {
    /// Makes the offer and the data channel.
    Offer,
    /// Answers.
    Answer,
}

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// `offer` or `answer`.
    role: Role,
    /// Offer loopback candidates too (both processes on one machine with
    /// no other interface up).
    #[arg(long)]
    loopback: bool,
}

/// Reads one line of stdin: the other side's messages.
fn read_line() -> Result<Vec<SessionMessage>, Error> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let values: Vec<Value> = serde_json::from_str(line.trim())?;
    values
        .iter()
        .map(|v| {
            SessionMessage::from_value(v)
                .ok_or_else(|| format!("not a session message: {v}").into())
        })
        .collect()
}

/// Waits for the end of gathering, collecting the candidates as
/// messages; also hands out an incoming data channel, if one comes first.
async fn gather(
    events: &mut PeerConnectionEvents,
    channel: &mut Option<DataChannel>,
) -> Result<Vec<SessionMessage>, Error> {
    let mut candidates = Vec::new();
    loop {
        match events.recv().await.ok_or("the connection closed")? {
            PeerConnectionEvent::IceCandidate(Some(c)) => {
                candidates.push(PeerSession::candidate(Some(c)));
            }
            PeerConnectionEvent::IceGatheringStateChange(IceGatheringState::Complete) => {
                return Ok(candidates)
            }
            PeerConnectionEvent::DataChannel(dc) => *channel = Some(dc),
            _ => {}
        }
    }
}

/// Prints `first` and `rest` as one JSON line.
fn print_line(first: SessionMessage, rest: Vec<SessionMessage>) {
    let all: Vec<Value> = std::iter::once(first)
        .chain(rest)
        .map(|m| m.to_value())
        .collect();
    println!("{}", Value::Array(all));
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    realtimer_examples::init_logging();
    let args = Args::parse();
    let pc =
        PeerConnection::new(PeerConnectionConfig::default().with_loopback(args.loopback)).await?;
    let mut events = pc.events().expect("first call");
    let session = PeerSession::new(pc.clone());
    let mut channel = None;
    match args.role {
        Role::Offer => {
            channel = Some(
                pc.create_data_channel("chat", DataChannelInit::default())
                    .await?,
            );
            let offer = session.offer().await?;
            print_line(offer, gather(&mut events, &mut None).await?);
            eprintln!("paste the answer's line:");
            for message in read_line()? {
                let _ = session.handle(message).await?;
            }
        }
        Role::Answer => {
            eprintln!("paste the offer's line:");
            let mut answer = None;
            for message in read_line()? {
                if let Handled::Reply(reply) = session.handle(message).await? {
                    answer = Some(reply);
                }
            }
            let answer = answer.ok_or("the line held no offer")?;
            print_line(answer, gather(&mut events, &mut channel).await?);
        }
    }
    // The answerer's channel arrives as an event once the offerer's opens.
    let channel = match channel {
        Some(channel) => channel,
        None => loop {
            let event = tokio::time::timeout(Duration::from_secs(30), events.recv()).await?;
            if let PeerConnectionEvent::DataChannel(dc) = event.ok_or("the connection closed")? {
                break dc;
            }
        },
    };
    if !tokio::time::timeout(Duration::from_secs(30), channel.wait_open()).await? {
        return Err("the channel closed before it opened".into());
    }
    if let Role::Offer = args.role {
        channel.send_text("hello from the offerer").await?;
    }
    match tokio::time::timeout(Duration::from_secs(10), channel.recv()).await? {
        Some(ChannelData::Text(text)) => println!("received: {text}"),
        other => return Err(format!("unexpected {other:?}").into()),
    }
    if let Role::Answer = args.role {
        channel.send_text("hello from the answerer").await?;
        // Closing right away could cut the reply off: wait for the
        // offerer to close the channel once it has it.
        let _ = tokio::time::timeout(Duration::from_secs(10), channel.wait_closed()).await;
    }
    pc.close().await;
    Ok(())
}
