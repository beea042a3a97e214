//! Simulcast in the PeerConnection API (RFC 8853): a `TrackLocal` made
//! with layers sends each on its own SSRC with its rid, the peer receives
//! them as layers of one track, and each layer's encoder target comes from
//! the estimate (`TrackLocal::layer_targets`).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use realtimer::{ArgumentError, MediaKind, RtcError, RtpPacket, Sample, SendLayerInit, TrackLocal};
use realtimer_test_support::pair::{config, connect_local_track};
use tokio::time::timeout;

/// Frames written on each layer.
const FRAMES: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulcast_track_arrives_as_layers_with_targets_from_the_estimate() {
    let layers = [
        SendLayerInit::new("q", 150_000),
        SendLayerInit::new("h", 500_000),
        SendLayerInit::new("f", 1_500_000),
    ];
    let local = TrackLocal::simulcast(MediaKind::Video, "s", "cam", &layers);
    assert_eq!(local.layers(), layers);
    let (a, b, remote) = connect_local_track(config(None), config(None), local.clone()).await;
    assert_eq!(remote.info().rids, ["q", "h", "f"]);
    let reader = tokio::spawn(async move {
        let mut by_ssrc: BTreeMap<u32, usize> = BTreeMap::new();
        while let Some(p) = remote.read_rtp().await {
            *by_ssrc.entry(p.ssrc).or_default() += 1;
        }
        by_ssrc
    });

    // A rid the track was not made with is refused.
    let packet = RtpPacket {
        payload_type: 96,
        sequence_number: 1,
        timestamp: 0,
        marker: true,
        ssrc: 0,
        payload: Bytes::from_static(b"x"),
    };
    let err = local.write_rtp_layer("x", packet).await.unwrap_err();
    assert!(
        matches!(err, RtcError::TypeError(ArgumentError::UnknownRid { .. })),
        "{err:?}"
    );

    // Each layer's frames, packetized by its own writer (two packets a
    // frame on the larger layers).
    for n in 0..FRAMES {
        for (rid, size) in [("q", 300), ("h", 1500), ("f", 2500)] {
            let frame = Sample::new(vec![n as u8; size], Duration::from_millis(33));
            local.write_sample_layer(rid, frame).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(33)).await;
    }

    // The estimate's first target splits over the layers, lowest first.
    let target = match local.target_bitrate() {
        Some(t) => t,
        None => timeout(Duration::from_secs(20), local.target_bitrate_changed())
            .await
            .expect("a target within 20 s")
            .expect("connected"),
    };
    let targets = local.layer_targets();
    let rids: Vec<&str> = targets.iter().map(|t| t.rid.as_str()).collect();
    assert_eq!(rids, ["q", "h", "f"], "{targets:?}");
    let q = targets[0].bitrate.expect("the lowest layer runs");
    assert!(q > 0 && q <= 150_000, "{targets:?}");
    let given: u64 = targets.iter().filter_map(|t| t.bitrate).sum();
    assert!(given <= target, "{targets:?} over the track's {target}");
    for (t, l) in targets.iter().zip(&layers) {
        assert!(t.bitrate.is_none_or(|b| b <= l.max_bitrate), "{targets:?}");
    }

    // Every layer arrived on its own SSRC, named by its rid.
    let stats = timeout(Duration::from_secs(10), async {
        loop {
            let report = b.get_stats().await.unwrap();
            let layers: BTreeMap<String, (u32, u64)> = report
                .inbound_rtp
                .iter()
                .filter_map(|s| Some((s.rid.clone()?, (s.ssrc, s.packets_received))))
                .collect();
            if layers.len() == 3 && layers.values().all(|(_, n)| *n >= FRAMES as u64) {
                return layers;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("every layer's packets counted within 10 s");
    let sent = a.get_stats().await.unwrap();
    for (rid, (ssrc, _)) in &stats {
        let out = sent
            .outbound_rtp
            .iter()
            .find(|s| s.rid.as_deref() == Some(rid.as_str()))
            .unwrap_or_else(|| panic!("outbound-rtp of {rid}"));
        assert_eq!(out.ssrc, *ssrc, "layer {rid}");
    }
    a.close().await;
    b.close().await;
    let by_ssrc = reader.await.unwrap();
    for (rid, (ssrc, _)) in &stats {
        let read = by_ssrc.get(ssrc).copied().unwrap_or(0);
        assert!(read >= FRAMES, "layer {rid}: {read} packets read");
    }
}
