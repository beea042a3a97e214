//! A data channel to a browser, through `realtimer serve`.
//!
//! Start the server, then this program in a room, then open a page that
//! joins the same room (any page speaking the server's `/ws` protocol,
//! `docs/signaling.md`; the test of this example uses a few lines of
//! JavaScript in headless Chromium):
//!
//! ```text
//! realtimer serve
//! browser-data-channel --server http://127.0.0.1:8080 --room demo
//! ```
//!
//! Whoever created the room offers once the other side arrives (the web
//! app's convention). When this program offers, it opens a channel named
//! `chat`; when it answers, it takes the browser's channel. Then it sends
//! `--count` greetings and prints every message that arrives, and hangs
//! up after `--count` of them.
#![allow(clippy::print_stdout)] // an example prints what it does

use clap::Parser;
use realtimer::{ChannelData, DataChannel, DataChannelInit, PeerConnectionEvent};
use tokio::sync::mpsc;

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// Where and which room.
    #[command(flatten)]
    room: realtimer_examples::RoomArgs,
    /// Messages to send, and to wait for.
    #[arg(long, default_value_t = 3)]
    count: usize,
}

/// Sends the greetings on `channel` and prints what comes back until
/// `count` messages arrived.
async fn talk(channel: DataChannel, count: usize) {
    if !channel.wait_open().await {
        return;
    }
    println!("channel {} open", channel.label());
    for n in 1..=count {
        if channel
            .send_text(format!("hello {n} from Rust"))
            .await
            .is_err()
        {
            return;
        }
    }
    for _ in 0..count {
        match channel.recv().await {
            Some(ChannelData::Text(text)) => println!("received: {text}"),
            Some(ChannelData::Binary(bytes)) => println!("received {} bytes", bytes.len()),
            None => return,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    realtimer_examples::init_logging();
    let args = Args::parse();
    let pc = args.room.peer_connection().await?;
    // Our own channel, in our offer if we make it. A channel made by an
    // answerer before the offer arrives would need a renegotiation, so
    // when the browser offers we use its channel instead.
    let ours = pc
        .create_data_channel("chat", DataChannelInit::default())
        .await?;
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let count = args.count;
    let start = |channel: DataChannel| {
        let done = done_tx.clone();
        tokio::spawn(async move {
            talk(channel, count).await;
            let _ = done.send(()).await;
        });
    };
    start(ours);
    let on_event = |event| {
        if let PeerConnectionEvent::DataChannel(theirs) = event {
            start(theirs);
        }
    };
    let until = async move {
        let _ = done_rx.recv().await;
    };
    realtimer_examples::run_in_room(&args.room, pc, on_event, until).await?;
    println!("done");
    Ok(())
}
