//! Data channels over DTLS and SCTP on the simulated network.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use realtimer_datachannel::{ChannelData, ChannelInit, ChannelState, DataChannelEvent};
use realtimer_netsim::{LinkConfig, Loss};

fn clean() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(10))
}

fn binary(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

#[test]
fn dcep_open_messages_both_ways_and_close() {
    let mut l = Link::new(1, clean());
    l.connect();
    let now = l.net.now();
    let (c, s) = (l.client, l.server);
    let id = l
        .peer_mut(c)
        .channels
        .create_channel(
            now,
            "chat",
            &ChannelInit {
                protocol: "chat".into(),
                ..ChannelInit::default()
            },
        )
        .unwrap();
    assert_eq!(id % 2, 0, "the DTLS client uses even ids");
    assert!(l.run_until(Duration::from_secs(5), |c, s| {
        c.saw(&DataChannelEvent::Opened(id))
            && s.events
                .iter()
                .any(|(_, e)| matches!(e, DataChannelEvent::Incoming(info) if info.id == id))
    }));
    let info = l.peer(s).channels.info(id).unwrap().clone();
    assert_eq!(
        (info.label.as_str(), info.protocol.as_str(), info.ordered),
        ("chat", "chat", true)
    );

    let texts = ["héllo wörld ✓ 🚀", ""];
    let sizes = [0usize, 1, 64_000, 256 * 1024];
    let now = l.net.now();
    l.peer_mut(c)
        .channels
        .association_mut()
        .set_remote_max_message_size(256 * 1024);
    l.peer_mut(s)
        .channels
        .association_mut()
        .set_remote_max_message_size(256 * 1024);
    for t in texts {
        l.peer_mut(c)
            .channels
            .send(now, id, ChannelData::Text(t.into()))
            .unwrap();
    }
    for (i, n) in sizes.iter().enumerate() {
        l.peer_mut(c)
            .channels
            .send(now, id, ChannelData::Binary(binary(*n, i as u8)))
            .unwrap();
        l.peer_mut(s)
            .channels
            .send(now, id, ChannelData::Binary(binary(*n, i as u8 + 100)))
            .unwrap();
    }
    assert!(
        l.run_until(Duration::from_secs(10), |c, s| s.messages(id).len() == 6
            && c.messages(id).len() == 4)
    );
    let got = l.peer(s).messages(id);
    assert_eq!(got[0], ChannelData::Text(texts[0].into()));
    assert_eq!(got[1], ChannelData::Text(String::new()));
    for (i, n) in sizes.iter().enumerate() {
        assert_eq!(
            got[2 + i],
            ChannelData::Binary(binary(*n, i as u8)),
            "size {n}"
        );
        assert_eq!(
            l.peer(c).messages(id)[i],
            ChannelData::Binary(binary(*n, i as u8 + 100))
        );
    }

    // Close from the server side: both see Closed, the id is free again.
    let now = l.net.now();
    l.peer_mut(s).channels.close(now, id);
    assert!(l.run_until(Duration::from_secs(5), |c, s| c
        .saw(&DataChannelEvent::Closed(id))
        && s.saw(&DataChannelEvent::Closed(id))));
    assert_eq!(l.peer(c).channels.state(id), ChannelState::Closed);
    let now = l.net.now();
    let again = l
        .peer_mut(c)
        .channels
        .create_channel(now, "again", &ChannelInit::default())
        .unwrap();
    assert_eq!(again, id, "ids are reusable after close");
}

#[test]
fn negotiated_channel_and_option_validation() {
    let mut l = Link::new(2, clean());
    let now = l.net.now();
    let (c, s) = (l.client, l.server);
    let init = ChannelInit {
        negotiated: Some(5),
        ordered: false,
        max_retransmits: Some(0),
        ..ChannelInit::default()
    };
    assert_eq!(
        l.peer_mut(c)
            .channels
            .create_channel(now, "n", &init)
            .unwrap(),
        5
    );
    assert_eq!(
        l.peer_mut(s)
            .channels
            .create_channel(now, "n", &init)
            .unwrap(),
        5
    );
    assert!(l
        .peer_mut(c)
        .channels
        .create_channel(now, "dup", &init)
        .is_err());
    let both = ChannelInit {
        max_retransmits: Some(1),
        max_packet_lifetime: Some(100),
        ..ChannelInit::default()
    };
    assert!(l
        .peer_mut(c)
        .channels
        .create_channel(now, "bad", &both)
        .is_err());
    l.connect();
    assert!(l.run_until(Duration::from_secs(5), |c, s| c
        .saw(&DataChannelEvent::Opened(5))
        && s.saw(&DataChannelEvent::Opened(5))));
    let now = l.net.now();
    l.peer_mut(c)
        .channels
        .send(
            now,
            5,
            ChannelData::Text("over a negotiated channel".into()),
        )
        .unwrap();
    assert!(l.run_until(Duration::from_secs(5), |_, s| s.messages(5).len() == 1));
    // No DCEP for negotiated channels: nothing came as Incoming.
    assert!(!l
        .peer(s)
        .events
        .iter()
        .any(|(_, e)| matches!(e, DataChannelEvent::Incoming(_))));
}

#[test]
fn bulk_reliable_transfer_under_loss_reordering_and_duplication() {
    let link = LinkConfig::default()
        .delay(Duration::from_millis(50))
        .loss(Loss::Independent(0.1))
        .reorder(0.05, Duration::from_millis(20))
        .duplicate(0.02);
    let mut l = Link::new(3, link);
    l.connect();
    let (c, s) = (l.client, l.server);
    let id = l.open_channel("bulk", Duration::from_secs(10));
    let total_messages = std::env::var("REALTIMER_BULK_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(64)
        * 16;
    let mut sent = 0;
    while sent < total_messages {
        let now = l.net.now();
        while sent < total_messages && l.peer(c).channels.buffered_amount(id) < 4 * 1024 * 1024 {
            l.peer_mut(c)
                .channels
                .send(now, id, ChannelData::Binary(binary(64 * 1024, sent as u8)))
                .unwrap();
            sent += 1;
        }
        l.run_until(Duration::from_millis(500), |_, _| false);
    }
    assert!(
        l.run_until(Duration::from_secs(600), |_, s| s.messages(id).len()
            == total_messages),
        "got {}",
        l.peer(s).messages(id).len()
    );
    for (i, m) in l.peer(s).messages(id).iter().enumerate() {
        assert_eq!(
            *m,
            ChannelData::Binary(binary(64 * 1024, i as u8)),
            "message {i}"
        );
    }
}

#[test]
fn a_thousand_channels_open_and_close_concurrently() {
    let mut l = Link::new(4, clean());
    l.connect();
    let (c, s) = (l.client, l.server);
    let now = l.net.now();
    let ids: Vec<u16> = (0..1000)
        .map(|i| {
            l.peer_mut(c)
                .channels
                .create_channel(now, &format!("ch{i}"), &ChannelInit::default())
                .unwrap()
        })
        .collect();
    let count =
        |p: &Peer, f: fn(&DataChannelEvent) -> bool| p.events.iter().filter(|(_, e)| f(e)).count();
    assert!(
        l.run_until(Duration::from_secs(30), |c, _| count(c, |e| matches!(
            e,
            DataChannelEvent::Opened(_)
        )) == ids.len())
    );
    let now = l.net.now();
    for id in &ids {
        l.peer_mut(c)
            .channels
            .send(now, *id, ChannelData::Text(format!("on {id}")))
            .unwrap();
        l.peer_mut(c).channels.close(now, *id);
    }
    let closed = |e: &DataChannelEvent| matches!(e, DataChannelEvent::Closed(_));
    assert!(l.run_until(Duration::from_secs(60), |c, s| count(c, closed)
        == ids.len()
        && count(s, closed) == ids.len()));
    for id in &ids {
        assert!(
            l.peer(c).saw(&DataChannelEvent::Closed(*id))
                && l.peer(s).saw(&DataChannelEvent::Closed(*id))
        );
    }
    for id in &ids {
        assert_eq!(
            l.peer(s).messages(*id),
            vec![ChannelData::Text(format!("on {id}"))],
            "the last message arrived before the close"
        );
    }
}
