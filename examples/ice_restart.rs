//! ICE restart (RFC 8445 §2.4, JSEP RFC 8829 §3.5.1): new ICE credentials,
//! new checks, and the data channel carries on.
//!
//! Two `PeerConnection`s in one process connect and open a channel. Then
//! the offerer calls `restart_ice` and negotiates again: the new offer
//! carries a new `ice-ufrag`, both agents check candidate pairs again,
//! and messages still flow on the same channel afterwards. A program does
//! this when the network changes (a new Wi-Fi, a VPN going up) or when
//! the connection state goes to `disconnected` or `failed`.
//!
//! ```sh
//! cargo run -p realtimer-examples --bin ice-restart
//! ```
#![allow(clippy::print_stdout)] // an example prints what it does

use std::time::Duration;

use realtimer::{
    ChannelData, DataChannel, DataChannelInit, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent,
};
use realtimer_examples::{negotiate, trickle};

type Error = Box<dyn std::error::Error>;

/// One offer/answer round; returns the offer's `a=ice-ufrag`.
async fn negotiate_ufrag(
    offerer: &PeerConnection,
    answerer: &PeerConnection,
) -> Result<String, Error> {
    negotiate(offerer, answerer).await?;
    let ufrag = offerer
        .current_local_description()
        .ok_or("no local description")?
        .sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .ok_or("no ice-ufrag in the offer")?
        .to_owned();
    Ok(ufrag)
}

/// Sends `text` on `from` and waits for it on `to`.
async fn round_trip(from: &DataChannel, to: &DataChannel, text: &str) -> Result<(), Error> {
    from.send_text(text).await?;
    match tokio::time::timeout(Duration::from_secs(10), to.recv()).await? {
        Some(ChannelData::Text(got)) if got == text => {
            println!("delivered: {got}");
            Ok(())
        }
        other => Err(format!("unexpected {other:?}").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    realtimer_examples::init_logging();
    let config = PeerConnectionConfig::default().with_loopback(true);
    let a = PeerConnection::new(config.clone()).await?;
    let b = PeerConnection::new(config).await?;
    let _a_events = trickle(&a, &b);
    let mut b_events = trickle(&b, &a);
    let ours = a
        .create_data_channel("chat", DataChannelInit::default())
        .await?;
    let first = negotiate_ufrag(&a, &b).await?;
    let theirs = loop {
        match tokio::time::timeout(Duration::from_secs(20), b_events.recv()).await? {
            Some(PeerConnectionEvent::DataChannel(dc)) => break dc,
            Some(_) => {}
            None => return Err("b closed".into()),
        }
    };
    if !ours.wait_open().await {
        return Err("the channel did not open".into());
    }
    println!("connected, ice-ufrag {first}");
    round_trip(&ours, &theirs, "before the restart").await?;

    // restartIce() marks the next offer as a restart; negotiate again.
    a.restart_ice().await?;
    let second = negotiate_ufrag(&a, &b).await?;
    if first == second {
        return Err("the restart kept the old credentials".into());
    }
    println!("restarted, ice-ufrag {second}");
    round_trip(&ours, &theirs, "after the restart").await?;
    round_trip(&theirs, &ours, "and back").await?;

    a.close().await;
    b.close().await;
    println!("done");
    Ok(())
}
