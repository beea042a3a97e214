//! Two `PeerConnection`s negotiated only through `PeerSession` and the
//! JSON of `SessionMessage`, as two peers in a room would: the offerer's
//! channel opens at both ends and a message crosses, then bye ends it.

use std::time::Duration;

use realtimer::{
    ChannelData, DataChannelInit, PeerConnection, PeerConnectionEvent, RtcError, StateError,
};
use realtimer_signaling::{Handled, PeerSession, SessionMessage, MAX_HELD_CANDIDATES};
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
                        Handled::Applied | Handled::Held => {}
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

/// A relay that delivers the offerer's candidates ahead of its offer:
/// the connection itself refuses them then (W3C InvalidStateError), the
/// session holds them and adds them with the offer, and the channel
/// opens.
#[tokio::test]
async fn candidates_before_the_offer_are_held_until_it_comes() {
    let a = PeerConnection::new(config(None)).await.unwrap();
    let b = PeerConnection::new(config(None)).await.unwrap();
    let chat = a
        .create_data_channel("chat", DataChannelInit::default())
        .await
        .unwrap();
    let a_session = PeerSession::new(a.clone());
    let mut a_events = a.events().unwrap();
    let offer = a_session.offer().await.unwrap();
    let mut early = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Some(PeerConnectionEvent::IceCandidate(c)) = a_events.recv().await {
                let end = c.is_none();
                early.push(c);
                if end {
                    break;
                }
            }
        }
    })
    .await
    .expect("a gathers within 15 s");
    assert!(early.len() >= 2, "a host candidate and the end: {early:?}");

    let refused = b.add_ice_candidate(early[0].clone()).await.unwrap_err();
    assert!(
        matches!(
            refused,
            RtcError::InvalidState(StateError::NoRemoteDescription)
        ),
        "{refused}"
    );
    let b_session = PeerSession::new(b.clone());
    for candidate in early {
        let handled = b_session
            .handle(PeerSession::candidate(candidate))
            .await
            .unwrap();
        assert_eq!(handled, Handled::Held);
    }
    let Handled::Reply(answer) = b_session.handle(offer).await.unwrap() else {
        panic!("an offer is answered");
    };
    assert_eq!(a_session.handle(answer).await.unwrap(), Handled::Applied);
    // b's own candidates are not given to a: only the held ones connect
    // the two (a learns b's address from b's checks, RFC 8445 §7.3.1.3).
    let mut b_events = b.events().unwrap();
    let to_a = tokio::spawn(async move { while b_events.recv().await.is_some() {} });
    let opened = tokio::time::timeout(Duration::from_secs(15), chat.wait_open()).await;
    assert_eq!(
        opened,
        Ok(true),
        "the channel opens with the held candidates"
    );
    to_a.abort();
    a.close().await;
    b.close().await;
}

/// What the other side can make a session hold before a description is
/// bounded: past `MAX_HELD_CANDIDATES`, a candidate is refused with the
/// connection's own InvalidStateError.
#[tokio::test]
async fn held_candidates_are_bounded() {
    let pc = PeerConnection::new(config(None)).await.unwrap();
    let session = PeerSession::new(pc.clone());
    let candidate = |port: usize| SessionMessage::Candidate {
        candidate: format!("candidate:1 1 udp 2122260223 127.0.0.1 {port} typ host"),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    };
    for port in 0..MAX_HELD_CANDIDATES {
        let handled = session.handle(candidate(10_000 + port)).await.unwrap();
        assert_eq!(handled, Handled::Held);
    }
    let refused = session.handle(candidate(9)).await.unwrap_err();
    assert!(
        matches!(
            refused,
            RtcError::InvalidState(StateError::NoRemoteDescription)
        ),
        "{refused}"
    );
    pc.close().await;
}
