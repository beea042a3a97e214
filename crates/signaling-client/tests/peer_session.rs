//! Two `PeerConnection`s negotiated only through `PeerSession` and the
//! JSON of `SessionMessage`, as two peers in a room would: the offerer's
//! channel opens at both ends and a message crosses, then bye ends it.

use std::time::Duration;

use realtimer::{ChannelData, DataChannelInit, PeerConnection, PeerConnectionEvent};
use realtimer_signaling::{Handled, PeerSession, SessionMessage};
use realtimer_test_support::pair::config;
use serde_json::Value;
use tokio::sync::mpsc;

/// Runs one side: relays its candidates out as JSON, applies what comes
/// in, sends replies; hands out the channels it is offered; stops at bye.
fn run_side(
    session: PeerSession,
    mut inbox: mpsc::UnboundedReceiver<Value>,
    outbox: mpsc::UnboundedSender<Value>,
    channels: mpsc::UnboundedSender<realtimer::DataChannel>,
) -> tokio::task::JoinHandle<bool> {
    let mut events = session.peer_connection().events().unwrap();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                message = inbox.recv() => {
                    let Some(message) = message else { return false };
                    let message = SessionMessage::from_value(&message).expect("a session message");
                    match session.handle(message).await.unwrap() {
                        Handled::Reply(reply) => outbox.send(reply.to_value()).unwrap(),
                        Handled::Applied => {}
                        Handled::Bye => return true,
                    }
                }
                event = events.recv() => match event {
                    Some(PeerConnectionEvent::IceCandidate(c)) => {
                        let _ = outbox.send(PeerSession::candidate(c).to_value());
                    }
                    Some(PeerConnectionEvent::DataChannel(dc)) => {
                        let _ = channels.send(dc);
                    }
                    Some(_) => {}
                    None => return false,
                },
            }
        }
    })
}

#[tokio::test]
async fn two_peers_negotiate_through_session_messages() {
    let a = PeerConnection::new(config(None)).await.unwrap();
    let b = PeerConnection::new(config(None)).await.unwrap();
    let (to_a, a_inbox) = mpsc::unbounded_channel();
    let (to_b, b_inbox) = mpsc::unbounded_channel();
    let (a_channels, _) = mpsc::unbounded_channel();
    let (b_channels, mut b_offered) = mpsc::unbounded_channel();
    let chat = a
        .create_data_channel("chat", DataChannelInit::default())
        .await
        .unwrap();
    let a_session = PeerSession::new(a.clone());
    let offer = a_session.offer().await.unwrap();
    assert!(matches!(&offer, SessionMessage::Offer { sdp } if sdp.starts_with("v=0")));
    to_b.send(offer.to_value()).unwrap();
    let a_side = run_side(a_session, a_inbox, to_b.clone(), a_channels);
    let b_side = run_side(
        PeerSession::new(b.clone()),
        b_inbox,
        to_a.clone(),
        b_channels,
    );

    let opened = tokio::time::timeout(Duration::from_secs(15), async {
        assert!(chat.wait_open().await, "the offerer's channel opens");
        let remote = b_offered.recv().await.expect("b is offered the channel");
        assert!(remote.wait_open().await);
        remote
    })
    .await
    .expect("the channel opens within 15 s");
    chat.send_text("hello").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), opened.recv())
        .await
        .unwrap();
    assert_eq!(got, Some(ChannelData::Text("hello".into())));

    // The codelab's bare "bye" ends the other side's loop.
    to_b.send(Value::from("bye")).unwrap();
    assert!(b_side.await.unwrap(), "b stopped at bye");
    a_side.abort();
    a.close().await;
    b.close().await;
}
