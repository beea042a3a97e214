//! Data channels between two Rust peers.
//!
//! Two `PeerConnection`s in one process, on loopback. The offerer opens a
//! channel, the two exchange the offer and answer (here through plain
//! function calls; between machines, any signaling carries them) and
//! trickle their ICE candidates to each other. Then each side sends
//! messages, and the offerer waits for its replies.
//!
//! ```sh
//! cargo run -p realtimer-examples --bin data-channels -- --messages 5
//! ```
//!
//! Prints one line per message received, then `done`.
#![allow(clippy::print_stdout)] // an example prints what it does

use std::time::Duration;

use clap::Parser;
use realtimer::{
    ChannelData, DataChannelInit, PeerConnection, PeerConnectionConfig, PeerConnectionEvent,
};

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// How many messages the offerer sends.
    #[arg(long, default_value_t = 3)]
    messages: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    realtimer_examples::init_logging();
    let args = Args::parse();
    // Loopback host candidates are off by default, as in browsers.
    let config = PeerConnectionConfig::default().with_loopback(true);
    let offerer = PeerConnection::new(config.clone()).await?;
    let answerer = PeerConnection::new(config).await?;

    // Candidates go to the other side as they are found (trickle ICE,
    // RFC 8838). The answerer also hears of the offerer's channel here.
    let mut offerer_events = offerer.events().expect("first call");
    let mut answerer_events = answerer.events().expect("first call");
    let to_answerer = answerer.clone();
    tokio::spawn(async move {
        while let Some(event) = offerer_events.recv().await {
            if let PeerConnectionEvent::IceCandidate(c) = event {
                let _ = to_answerer.add_ice_candidate(c).await;
            }
        }
    });
    let to_offerer = offerer.clone();
    let answering = tokio::spawn(async move {
        while let Some(event) = answerer_events.recv().await {
            match event {
                PeerConnectionEvent::IceCandidate(c) => {
                    let _ = to_offerer.add_ice_candidate(c).await;
                }
                // The answerer's end: reply to every message.
                PeerConnectionEvent::DataChannel(channel) => {
                    tokio::spawn(async move {
                        while let Some(message) = channel.recv().await {
                            if let ChannelData::Text(text) = message {
                                println!("answerer got: {text}");
                                let _ = channel.send_text(format!("re: {text}")).await;
                            }
                        }
                    });
                }
                _ => {}
            }
        }
    });

    // A channel made before the offer puts a data section in it.
    let channel = offerer
        .create_data_channel("chat", DataChannelInit::default())
        .await?;
    let offer = offerer.create_offer().await?;
    // Each description reaches the other side before its own side
    // starts gathering: a candidate that arrived before the description
    // it belongs to would be refused (addIceCandidate needs a remote
    // description, as in browsers).
    answerer.set_remote_description(offer.clone()).await?;
    offerer.set_local_description(offer).await?;
    let answer = answerer.create_answer().await?;
    offerer.set_remote_description(answer.clone()).await?;
    answerer.set_local_description(answer).await?;

    if !tokio::time::timeout(Duration::from_secs(20), channel.wait_open()).await? {
        return Err("the channel closed before it opened".into());
    }
    for n in 1..=args.messages {
        channel.send_text(format!("hello {n}")).await?;
    }
    for _ in 1..=args.messages {
        match tokio::time::timeout(Duration::from_secs(10), channel.recv()).await? {
            Some(ChannelData::Text(text)) => println!("offerer got: {text}"),
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
    offerer.close().await;
    answerer.close().await;
    answering.abort();
    println!("done");
    Ok(())
}
