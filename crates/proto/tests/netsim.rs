//! Two `Rtc` cores on the simulated network: JSEP, trickle, ICE, DTLS,
//! SCTP and data channels end to end, on virtual time.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Pair;
use realtimer_netsim::{LinkConfig, Loss};
use realtimer_proto::{
    ArgumentError, ChannelData, DataChannelInit, DataChannelState, IceCandidateInit, JsepCall,
    ModificationError, PeerConnectionState, RtcError, RtcEvent, SdpError, SdpType,
    SessionDescription, SignalingState, StateError,
};

fn lan() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(5))
}

#[test]
fn offer_and_answer_carry_the_data_section() {
    let mut p = Pair::new(1, lan());
    let a = p.a;
    let offer = p.with(a, |rtc, _| rtc.create_offer().unwrap());
    assert_eq!(offer.sdp_type, SdpType::Offer);
    for line in [
        "a=group:BUNDLE 0",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 ",
        "a=setup:actpass",
        "a=mid:0",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
        "a=ice-ufrag:",
        "a=ice-pwd:",
    ] {
        assert!(
            offer.sdp.contains(line),
            "offer lacks {line}:\n{}",
            offer.sdp
        );
    }
    let b = p.b;
    p.with(b, |rtc, now| {
        rtc.set_remote_description(now, offer).unwrap()
    });
    assert_eq!(
        p.node(b).rtc.signaling_state(),
        SignalingState::HaveRemoteOffer
    );
    let answer = p.with(b, |rtc, _| rtc.create_answer().unwrap());
    assert!(answer.sdp.contains("a=setup:active"), "{}", answer.sdp);
    assert!(answer.sdp.contains("a=mid:0"));
}

#[test]
fn two_cores_connect_and_exchange_messages() {
    let mut p = Pair::new(2, lan());
    let (a, b) = (p.a, p.b);
    let chat = p.with(a, |rtc, now| {
        rtc.create_data_channel(now, "chat", &DataChannelInit::default())
            .unwrap()
    });
    assert!(p
        .node(a)
        .events
        .iter()
        .any(|(_, e)| *e == RtcEvent::NegotiationNeeded));
    p.negotiate();
    assert!(p.run_until(Duration::from_secs(10), |x, y| x.opened(chat)
        && !y.incoming().is_empty()));
    assert!(p.node(a).connected() && p.node(b).connected());
    // Both ends trickled candidates with sdpMid and sdpMLineIndex, then null.
    let cands: Vec<_> = p
        .node(a)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            RtcEvent::IceCandidate(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    let first = cands[0].as_ref().unwrap();
    assert!(first.candidate.starts_with("candidate:"));
    assert_eq!(first.sdp_mid.as_deref(), Some("0"));
    assert_eq!(first.sdp_m_line_index, Some(0));
    assert_eq!(cands.last().unwrap(), &None);

    let (remote_chat, info) = p.node(b).incoming()[0].clone();
    assert_eq!(info.label, "chat");
    assert_eq!(info.id, Some(1), "the DTLS server (offerer) uses odd ids");
    let big = Bytes::from(vec![7u8; 200_000]);
    p.with(a, |rtc, now| {
        rtc.send(now, chat, ChannelData::Text("héllo ☃".into()))
            .unwrap();
        rtc.send(now, chat, ChannelData::Binary(Bytes::new()))
            .unwrap();
        rtc.send(now, chat, ChannelData::Binary(big.clone()))
            .unwrap();
    });
    p.with(b, |rtc, now| {
        rtc.send(now, remote_chat, ChannelData::Text("back".into()))
            .unwrap()
    });
    assert!(p.run_until(Duration::from_secs(10), |x, y| {
        y.messages(remote_chat).len() == 3 && x.messages(chat).len() == 1
    }));
    assert_eq!(
        p.node(b).messages(remote_chat),
        vec![
            ChannelData::Text("héllo ☃".into()),
            ChannelData::Binary(Bytes::new()),
            ChannelData::Binary(big)
        ]
    );
    assert_eq!(
        p.node(a).messages(chat),
        vec![ChannelData::Text("back".into())]
    );

    // Close from the answerer's side reaches both.
    p.with(b, |rtc, now| rtc.close_channel(now, remote_chat));
    assert!(p.run_until(Duration::from_secs(5), |x, y| x.closed(chat)
        && y.closed(remote_chat)));
    assert_eq!(p.node(a).rtc.channel_state(chat), DataChannelState::Closed);
}

#[test]
fn negotiated_and_partially_reliable_channels_under_loss() {
    let mut p = Pair::new(3, lan().loss(Loss::Independent(0.05)));
    let (a, b) = (p.a, p.b);
    let negotiated = DataChannelInit {
        negotiated: true,
        id: Some(5),
        ..DataChannelInit::default()
    };
    let na = p.with(a, |rtc, now| {
        rtc.create_data_channel(now, "n", &negotiated).unwrap()
    });
    let nb = p.with(b, |rtc, now| {
        rtc.create_data_channel(now, "n", &negotiated).unwrap()
    });
    let unreliable = p.with(a, |rtc, now| {
        rtc.create_data_channel(
            now,
            "u",
            &DataChannelInit {
                ordered: false,
                max_retransmits: Some(0),
                ..DataChannelInit::default()
            },
        )
        .unwrap()
    });
    p.negotiate();
    assert!(p.run_until(Duration::from_secs(30), |x, y| x.opened(na)
        && y.opened(nb)
        && x.opened(unreliable)
        && !y.incoming().is_empty()));
    let (_, info) = p.node(b).incoming()[0].clone();
    assert!(!info.ordered);
    assert_eq!(info.max_retransmits, Some(0));
    assert_eq!(p.node(a).rtc.channel_info(na).unwrap().id, Some(5));
    for i in 0..50u32 {
        p.with(a, |rtc, now| {
            rtc.send(now, na, ChannelData::Text(format!("m{i}")))
                .unwrap()
        });
    }
    assert!(p.run_until(Duration::from_secs(30), |_, y| y.messages(nb).len() == 50));
    let got: Vec<_> = p.node(b).messages(nb);
    assert_eq!(
        got[49],
        ChannelData::Text("m49".into()),
        "reliable and in order"
    );
}

#[test]
fn signaling_errors_are_typed() {
    let mut p = Pair::new(4, lan());
    let (a, b) = (p.a, p.b);
    let err = p.with(a, |rtc, _| rtc.create_answer().unwrap_err());
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
    let err = p.with(a, |rtc, now| {
        rtc.add_ice_candidate(
            now,
            Some(&IceCandidateInit {
                candidate: "candidate:1 1 udp 1 10.0.0.9 9 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            }),
        )
        .unwrap_err()
    });
    assert!(
        matches!(err, RtcError::InvalidState(StateError::NoRemoteDescription)),
        "{err}"
    );
    let err = p.with(a, |rtc, now| {
        rtc.set_remote_description(
            now,
            SessionDescription::offer(
                "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=bogus\r\n",
            ),
        )
        .unwrap_err()
    });
    assert!(
        matches!(&err, RtcError::InvalidSdp(e @ SdpError::Parse(_)) if e.line() == 5),
        "{err}"
    );
    // An answer in stable is refused; an edited local offer too.
    let offer = p.with(a, |rtc, _| rtc.create_offer().unwrap());
    let err = p.with(b, |rtc, now| {
        rtc.set_remote_description(now, SessionDescription::answer(offer.sdp.clone()))
            .unwrap_err()
    });
    assert!(
        matches!(
            err,
            RtcError::InvalidState(StateError::Signaling {
                call: JsepCall::SetRemoteDescription(SdpType::Answer),
                state: SignalingState::Stable,
            })
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "invalid state: setRemoteDescription(answer) in signaling state stable"
    );
    let edited = SessionDescription::offer(offer.sdp.replace("a=ice-ufrag:", "a=ice-ufrag:x"));
    let err = p.with(a, |rtc, now| {
        rtc.set_local_description(now, edited).unwrap_err()
    });
    assert!(
        matches!(
            err,
            RtcError::InvalidModification(ModificationError::IceCredentials(SdpType::Offer))
        ),
        "{err}"
    );
    // Rollback returns to stable; the offer then goes through.
    p.with(a, |rtc, now| {
        rtc.set_local_description(now, offer.clone()).unwrap()
    });
    p.with(a, |rtc, now| {
        rtc.set_local_description(now, SessionDescription::rollback())
            .unwrap()
    });
    assert_eq!(p.node(a).rtc.signaling_state(), SignalingState::Stable);
    // Both limits at once is a TypeError.
    let err = p.with(a, |rtc, now| {
        rtc.create_data_channel(
            now,
            "x",
            &DataChannelInit {
                max_retransmits: Some(1),
                max_packet_life_time: Some(1),
                ..DataChannelInit::default()
            },
        )
        .unwrap_err()
    });
    assert!(
        matches!(
            err,
            RtcError::TypeError(ArgumentError::BothReliabilityLimits)
        ),
        "{err}"
    );
}

#[test]
fn fingerprint_mismatch_fails_the_connection() {
    let mut p = Pair::new(5, lan());
    let (a, b) = (p.a, p.b);
    let offer = p.with(a, |rtc, _| rtc.create_offer().unwrap());
    p.with(a, |rtc, now| {
        rtc.set_local_description(now, offer.clone()).unwrap()
    });
    p.with(b, |rtc, now| {
        rtc.set_remote_description(now, offer).unwrap()
    });
    let answer = p.with(b, |rtc, _| rtc.create_answer().unwrap());
    p.with(b, |rtc, now| {
        rtc.set_local_description(now, answer.clone()).unwrap()
    });
    // Flip one hex digit of b's fingerprint as a gets it.
    let i = answer.sdp.find("a=fingerprint:sha-256 ").unwrap() + 22;
    let mut sdp = answer.sdp.clone();
    let c = if &sdp[i..=i] == "A" { "B" } else { "A" };
    sdp.replace_range(i..=i, c);
    p.with(a, |rtc, now| {
        rtc.set_remote_description(now, SessionDescription::answer(sdp))
            .unwrap()
    });
    assert!(p.run_until(Duration::from_secs(40), |x, _| {
        x.rtc.connection_state() == PeerConnectionState::Failed
    }));
}

#[test]
fn close_ends_every_channel() {
    let mut p = Pair::new(6, lan());
    let (a, b) = (p.a, p.b);
    let (ch, remote) = p.open_channel("c", &DataChannelInit::default());
    p.with(a, |rtc, now| rtc.close(now));
    assert_eq!(
        p.node(a).rtc.connection_state(),
        PeerConnectionState::Closed
    );
    assert!(p.node(a).closed(ch));
    assert!(p.run_until(Duration::from_secs(5), |_, y| y.closed(remote)));
    let err = p.with(a, |rtc, _| rtc.create_offer().unwrap_err());
    assert!(matches!(err, RtcError::InvalidState(_)));
    // W3C §4.3.3: the peer's DTLS close_notify leaves b "connected" (a
    // closed DTLS transport counts as connected), never "connecting" again.
    p.run_until(Duration::from_secs(2), |_, _| false);
    let states: Vec<PeerConnectionState> = p
        .node(b)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            RtcEvent::ConnectionState(s) => Some(*s),
            _ => None,
        })
        .collect();
    let connected = states
        .iter()
        .position(|s| *s == PeerConnectionState::Connected)
        .expect("b connected");
    assert!(
        !states[connected..].contains(&PeerConnectionState::Connecting),
        "{states:?}"
    );
}
