//! Two `PeerConnection`s in one process over loopback UDP, signaling
//! through in-process channels.

use std::time::Duration;

use bytes::Bytes;
use realtimer::{
    ChannelData, DataChannel, DataChannelEvent, DataChannelInit, DataChannelState, JsepCall,
    PeerConnection, PeerConnectionConfig, PeerConnectionEvent, PeerConnectionState, RtcError,
    SessionDescription, SignalingState, StateError,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

use realtimer_test_support::pair::{self, negotiate, pump};

fn config() -> PeerConnectionConfig {
    pair::config(None)
}

async fn pair() -> (
    PeerConnection,
    PeerConnection,
    mpsc::UnboundedReceiver<DataChannel>,
    mpsc::UnboundedReceiver<DataChannel>,
) {
    let a = PeerConnection::new(config()).await.unwrap();
    let b = PeerConnection::new(config()).await.unwrap();
    let (a_tx, a_rx) = mpsc::unbounded_channel();
    let (b_tx, b_rx) = mpsc::unbounded_channel();
    pump(a.events().unwrap(), b.clone(), a_tx);
    pump(b.events().unwrap(), a.clone(), b_tx);
    (a, b, a_rx, b_rx)
}

#[tokio::test]
async fn rust_to_rust_over_loopback() {
    let (a, b, _a_in, mut b_in) = pair().await;
    let chat = a
        .create_data_channel(
            "chat",
            DataChannelInit {
                protocol: "proto".into(),
                ..DataChannelInit::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(chat.ready_state(), DataChannelState::Connecting);
    negotiate(&a, &b).await;
    timeout(Duration::from_secs(10), chat.wait_open())
        .await
        .expect("channel opens");
    let remote = timeout(Duration::from_secs(5), b_in.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(remote.label(), "chat");
    assert_eq!(remote.protocol(), "proto");
    assert_eq!(a.connection_state(), PeerConnectionState::Connected);
    assert!(a.current_remote_description().is_some());

    chat.send_text("héllo ☃").await.unwrap();
    chat.send_binary(Bytes::new()).await.unwrap();
    chat.send_binary(vec![1u8]).await.unwrap();
    let big: Vec<u8> = (0..262_144u32).map(|i| (i % 251) as u8).collect();
    chat.send_binary(big.clone()).await.unwrap();
    let got = |m: Option<ChannelData>| m.expect("message");
    assert_eq!(
        got(remote.recv().await),
        ChannelData::Text("héllo ☃".into())
    );
    assert_eq!(got(remote.recv().await), ChannelData::Binary(Bytes::new()));
    assert_eq!(
        got(remote.recv().await),
        ChannelData::Binary(Bytes::from_static(&[1]))
    );
    assert_eq!(
        got(remote.recv().await),
        ChannelData::Binary(Bytes::from(big))
    );

    // getStats counts what went through.
    let stats = a.get_stats().await.unwrap();
    let dc = stats.data_channel("chat").unwrap();
    assert_eq!(dc.messages_sent, 4);
    assert_eq!(dc.bytes_sent, "héllo ☃".len() as u64 + 1 + 262_144);
    let pair = stats.selected_candidate_pair().unwrap();
    assert!(pair.bytes_sent >= 262_144);
    assert_eq!(
        stats.candidate(&pair.local_candidate_id).unwrap().address,
        "127.0.0.1"
    );

    // Too large for the peer's max-message-size: a TypeError.
    let err = chat.send_binary(vec![0u8; 262_145]).await.unwrap_err();
    assert!(matches!(err, RtcError::TypeError(_)), "{err}");

    // Back-pressure: 8 MiB in 64 KiB pieces, waiting for the low threshold.
    chat.set_buffered_amount_low_threshold(256 * 1024).await;
    let receiver = tokio::spawn({
        let remote = remote.clone();
        async move {
            let mut total = 0usize;
            while total < 8 * 1024 * 1024 {
                match remote.recv().await {
                    Some(ChannelData::Binary(b)) => total += b.len(),
                    other => panic!("unexpected {other:?}"),
                }
            }
            total
        }
    });
    for _ in 0..128 {
        if chat.buffered_amount() > 1024 * 1024 {
            chat.wait_buffered_amount_at_most(256 * 1024).await;
        }
        chat.send_binary(vec![9u8; 65536]).await.unwrap();
    }
    let total = timeout(Duration::from_secs(30), receiver)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(total, 8 * 1024 * 1024);

    // Close from the remote side reaches both.
    remote.close().await;
    timeout(Duration::from_secs(5), chat.wait_closed())
        .await
        .unwrap();
    timeout(Duration::from_secs(5), remote.wait_closed())
        .await
        .unwrap();
    let mut saw_close = false;
    while let Ok(Some(e)) = timeout(Duration::from_millis(100), chat.next_event()).await {
        saw_close |= e == DataChannelEvent::Close;
    }
    assert!(saw_close);

    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn negotiated_channel_and_answerer_offer() {
    let (a, b, mut a_in, _b_in) = pair().await;
    let init = DataChannelInit {
        negotiated: true,
        id: Some(5),
        ..DataChannelInit::default()
    };
    let na = a.create_data_channel("n", init.clone()).await.unwrap();
    let nb = b.create_data_channel("n", init).await.unwrap();
    // b offers this time.
    let dc = b
        .create_data_channel(
            "u",
            DataChannelInit {
                ordered: false,
                max_retransmits: Some(0),
                ..DataChannelInit::default()
            },
        )
        .await
        .unwrap();
    negotiate(&b, &a).await;
    assert!(timeout(Duration::from_secs(10), na.wait_open())
        .await
        .unwrap());
    assert!(timeout(Duration::from_secs(10), nb.wait_open())
        .await
        .unwrap());
    assert_eq!(na.id(), Some(5));
    na.send_text("to b").await.unwrap();
    assert_eq!(nb.recv().await, Some(ChannelData::Text("to b".into())));
    let incoming = timeout(Duration::from_secs(5), a_in.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!incoming.ordered());
    assert_eq!(incoming.max_retransmits(), Some(0));
    assert!(dc.wait_open().await);
    // Errors: a bad SDP and a call in the wrong state.
    let err = a
        .set_remote_description(SessionDescription::offer("v=0\r\nx"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RtcError::InvalidSdp(e) if e.line() == 2),
        "{err}"
    );
    let err = a.create_answer().await.unwrap_err();
    assert!(
        matches!(
            err,
            RtcError::InvalidState(StateError::Signaling {
                call: JsepCall::CreateAnswer,
                state: SignalingState::Stable,
            })
        ),
        "{err}"
    );
    b.close().await;
    timeout(Duration::from_secs(5), na.wait_closed())
        .await
        .unwrap();
    assert_eq!(b.connection_state(), PeerConnectionState::Closed);
}

/// `send` queues without waiting for the driver when the channel is open
/// and the message fits: thousands back to back arrive whole and in order,
/// bufferedAmount drains to zero, and a closed channel still refuses with
/// InvalidState.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_sends_arrive_in_order() {
    const COUNT: u32 = 20_000;
    let (a, b, _a_in, mut b_in) = pair().await;
    let dc = a
        .create_data_channel("burst", DataChannelInit::default())
        .await
        .unwrap();
    negotiate(&a, &b).await;
    assert!(timeout(Duration::from_secs(30), dc.wait_open())
        .await
        .unwrap());
    let remote = timeout(Duration::from_secs(30), b_in.recv())
        .await
        .unwrap()
        .unwrap();
    let receiver = tokio::spawn(async move {
        for i in 0..COUNT {
            let m = remote.recv().await;
            assert_eq!(
                m,
                Some(ChannelData::Binary(i.to_be_bytes().repeat(64).into()))
            );
        }
        remote
    });
    for i in 0..COUNT {
        dc.send_binary(i.to_be_bytes().repeat(64)).await.unwrap();
    }
    let remote = timeout(Duration::from_secs(30), receiver)
        .await
        .unwrap()
        .unwrap();
    timeout(Duration::from_secs(5), dc.wait_buffered_amount_at_most(0))
        .await
        .unwrap();
    assert_eq!(dc.buffered_amount(), 0);

    remote.close().await;
    timeout(Duration::from_secs(5), dc.wait_closed())
        .await
        .unwrap();
    let err = dc.send_text("late").await.unwrap_err();
    assert!(matches!(err, RtcError::InvalidState(_)), "{err}");
    a.close().await;
    b.close().await;
}

/// A user who takes the connection's events and stops reading them must
/// not stall the connection (a browser never holds its transport up for
/// an unhandled event): before, once 256 events waited, the driver
/// stopped reading the socket, and the soak fleet's calls hung mid-
/// exchange when bandwidth estimates piled up behind a reader that had
/// moved on to its data channel. Here the offerer's events are never read
/// while 150 renegotiations queue over 300 of them; messages still go
/// both ways, and the events are all there, in order, when read at last.
#[tokio::test]
async fn unread_events_do_not_stall_the_connection() {
    let a = PeerConnection::new(config()).await.unwrap();
    let b = PeerConnection::new(config()).await.unwrap();
    let mut a_events = a.events().unwrap();
    // Only the answerer's candidates are trickled: the answerer learns the
    // offerer's address from its checks (peer-reflexive).
    let (b_tx, mut b_rx) = mpsc::unbounded_channel();
    pump(b.events().unwrap(), a.clone(), b_tx);
    let chat = a
        .create_data_channel("chat", DataChannelInit::default())
        .await
        .unwrap();
    negotiate(&a, &b).await;
    timeout(Duration::from_secs(10), chat.wait_open())
        .await
        .expect("channel opens");
    let remote = timeout(Duration::from_secs(5), b_rx.recv())
        .await
        .unwrap()
        .unwrap();
    for _ in 0..150 {
        negotiate(&a, &b).await;
    }
    for i in 0..20 {
        chat.send_text(format!("to b {i}")).await.unwrap();
        remote.send_text(format!("to a {i}")).await.unwrap();
    }
    for i in 0..20 {
        let to_b = timeout(Duration::from_secs(10), remote.recv()).await;
        assert_eq!(
            to_b.expect("a message reaches the answerer"),
            Some(ChannelData::Text(format!("to b {i}")))
        );
        let to_a = timeout(Duration::from_secs(10), chat.recv()).await;
        assert_eq!(
            to_a.expect("a message reaches the offerer, whose events wait"),
            Some(ChannelData::Text(format!("to a {i}")))
        );
    }
    // Every event is still there: over the queue's 256, in order (each
    // renegotiation's have-local-offer then stable).
    let mut states = Vec::new();
    let mut count = 0;
    while let Ok(Some(e)) = timeout(Duration::from_millis(200), a_events.recv()).await {
        count += 1;
        if let PeerConnectionEvent::SignalingStateChange(s) = e {
            states.push(s);
        }
    }
    assert!(count > 300, "{count} events");
    assert_eq!(states.len(), 302, "{states:?}");
    assert!(states
        .chunks(2)
        .all(|c| c == [SignalingState::HaveLocalOffer, SignalingState::Stable]));
    a.close().await;
    b.close().await;
}
