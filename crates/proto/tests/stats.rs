//! getStats after a known transfer: data-channel counters exact,
//! transport and selected-pair counters consistent with the bytes moved,
//! candidates and RTTs present, the JSON in the browser's shape.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Pair;
use realtimer_netsim::LinkConfig;
use realtimer_proto::{ChannelData, DataChannelInit};

#[test]
fn stats_after_a_known_transfer() {
    // 20 ms one way on each uplink: 40 ms RTT.
    let mut p = Pair::new(21, LinkConfig::default().delay(Duration::from_millis(10)));
    let (a, b) = (p.a, p.b);
    let (ch, remote) = p.open_channel(
        "stats",
        &DataChannelInit {
            protocol: "chat".into(),
            ..DataChannelInit::default()
        },
    );
    // 10 text messages of 5 bytes ("héllo" is 6 bytes in UTF-8) and 3
    // binary of 10,000 bytes; 2 back.
    p.with(a, |rtc, now| {
        for _ in 0..10 {
            rtc.send(now, ch, ChannelData::Text("héllo".into()))
                .unwrap();
        }
        for _ in 0..3 {
            rtc.send(now, ch, ChannelData::Binary(Bytes::from(vec![1u8; 10_000])))
                .unwrap();
        }
    });
    p.with(b, |rtc, now| {
        for _ in 0..2 {
            rtc.send(
                now,
                remote,
                ChannelData::Binary(Bytes::from(vec![2u8; 1000])),
            )
            .unwrap();
        }
    });
    assert!(
        p.run_until(Duration::from_secs(10), |x, y| y.messages(remote).len()
            == 13
            && x.messages(ch).len() == 2)
    );
    // Let consent checks measure the RTT of the selected pair.
    let _ = p.run_until(Duration::from_secs(8), |_, _| false);

    let now = p.net.now();
    let sa = p.node(a).rtc.stats(now);
    let sb = p.node(b).rtc.stats(now);

    let da = sa.data_channel("stats").expect("a's channel");
    assert_eq!(da.protocol, "chat");
    assert_eq!(da.data_channel_identifier, Some(1));
    assert_eq!(da.state, "open");
    assert_eq!((da.messages_sent, da.bytes_sent), (13, 10 * 6 + 30_000));
    assert_eq!((da.messages_received, da.bytes_received), (2, 2000));
    let db = sb.data_channel("stats").expect("b's channel");
    assert_eq!((db.messages_received, db.bytes_received), (13, 30_060));
    assert_eq!((db.messages_sent, db.bytes_sent), (2, 2000));
    assert_eq!(sa.peer_connection.data_channels_opened, 1);
    assert_eq!(sb.peer_connection.data_channels_opened, 1);

    // Transport: every datagram counted; what a sent, b received (no loss).
    for s in [&sa, &sb] {
        assert_eq!(s.transport.dtls_state, "connected");
        assert!(matches!(
            s.transport.ice_state.as_str(),
            "connected" | "completed"
        ));
    }
    assert!(sa.transport.bytes_sent > 30_060, "{:?}", sa.transport);
    assert!(sb.transport.bytes_sent > 2000, "{:?}", sb.transport);
    assert_eq!(sa.transport.packets_sent, sb.transport.packets_received);
    assert_eq!(sa.transport.bytes_sent, sb.transport.bytes_received);
    assert_eq!(sa.transport.ice_role, "controlling");
    assert_eq!(sb.transport.ice_role, "controlled");
    assert_eq!(sa.transport.dtls_role, "server");
    assert_eq!(sb.transport.dtls_role, "client");

    // The selected pair carried (nearly) all of it, and has a ~40 ms RTT.
    let pa = sa.selected_candidate_pair().expect("a selected pair");
    assert_eq!(
        sa.transport.selected_candidate_pair_id.as_deref(),
        Some(pa.id.as_str())
    );
    assert!(pa.bytes_sent > 30_060 && pa.bytes_sent <= sa.transport.bytes_sent);
    assert!(pa.bytes_received > 2000);
    assert!(pa.packets_sent > 0 && pa.packets_received > 0);
    let rtt = pa.current_round_trip_time.expect("an RTT");
    assert!((0.035..0.08).contains(&rtt), "{rtt}");
    let local = sa
        .candidate(&pa.local_candidate_id)
        .expect("local candidate");
    assert!(local.is_local);
    assert_eq!(
        (local.address.as_str(), local.port, local.protocol),
        ("10.0.0.1", 5000, "udp")
    );
    assert_eq!(local.candidate_type, "host");
    let remote_c = sa
        .candidate(&pa.remote_candidate_id)
        .expect("remote candidate");
    assert!(!remote_c.is_local);
    assert_eq!(
        (remote_c.address.as_str(), remote_c.port),
        ("10.0.0.2", 5000)
    );
    let sctp = sa.sctp.as_ref().expect("SCTP stats");
    let srtt = sctp.smoothed_round_trip_time.expect("SCTP srtt");
    assert!(srtt >= Duration::from_millis(35), "{srtt:?}");
    assert!(sctp.congestion_window > 0);

    // The browser's JSON shape.
    let json: serde_json::Value = serde_json::from_str(&sa.to_json()).expect("valid JSON");
    let arr = json.as_array().unwrap();
    let of = |t: &'static str| arr.iter().filter(move |o| o["type"] == t);
    let dc = of("data-channel").next().unwrap();
    assert_eq!(dc["label"], "stats");
    assert_eq!(dc["messagesSent"], 13);
    assert_eq!(dc["bytesReceived"], 2000);
    assert_eq!(dc["dataChannelIdentifier"], 1);
    let t = of("transport").next().unwrap();
    let cp = of("candidate-pair")
        .find(|o| o["id"] == t["selectedCandidatePairId"])
        .unwrap();
    assert!(cp["currentRoundTripTime"].as_f64().unwrap() > 0.0);
    let lc = of("local-candidate")
        .find(|o| o["id"] == cp["localCandidateId"])
        .unwrap();
    assert_eq!(lc["candidateType"], "host");
    assert_eq!(lc["port"], 5000);
    assert!(of("remote-candidate").count() >= 1);
    assert_eq!(
        of("peer-connection").next().unwrap()["dataChannelsOpened"],
        1
    );

    // Closing the channel counts it closed on both sides.
    p.with(a, |rtc, now| rtc.close_channel(now, ch));
    assert!(p.run_until(Duration::from_secs(5), |x, y| x.closed(ch)
        && y.closed(remote)));
    let now = p.net.now();
    assert_eq!(
        p.node(a)
            .rtc
            .stats(now)
            .peer_connection
            .data_channels_closed,
        1
    );
    assert_eq!(
        p.node(b)
            .rtc
            .stats(now)
            .peer_connection
            .data_channels_closed,
        1
    );
}
