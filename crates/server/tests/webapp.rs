//! The web app's seven use cases in headless Chromium (playwright-core, Debian's
//! /usr/bin/chromium with fake media devices), served by the real server with
//! the embedded app. Screenshots go to `$CARGO_TARGET_TMPDIR/screenshots/`.

use realtimer_test_support::{node, serve, server};

use std::path::PathBuf;

use realtimer_server::ServerConfig;

fn run_case(case: &str) {
    let addr = server::start_server(ServerConfig::default());
    // localhost, not 127.0.0.1: a secure context, so getUserMedia works.
    let url = format!("http://localhost:{}/", addr.port());
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let out = node::run_node("webapp.mjs", &[&url, shots.to_str().unwrap(), case]);
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn uc1_camera_video_plays_and_errors_are_named() {
    run_case("uc1");
}

#[test]
fn uc2_local_call_remote_frames_decoded() {
    run_case("uc2");
}

#[test]
fn uc3_text_over_data_channel_with_options() {
    run_case("uc3");
}

#[test]
fn uc4_third_tab_gets_full() {
    run_case("uc4");
}

#[test]
fn uc5_call_through_the_server_frames_decoded_and_bye() {
    run_case("uc5");
}

#[test]
fn uc6_snap_and_send_pixels_equal() {
    run_case("uc6");
}

#[test]
fn uc7_five_megabyte_file_hashes_equal_and_stats_plot() {
    run_case("uc7");
}

/// `realtimer serve` killed (SIGKILL) and started again on the same ports
/// mid-call, under the call page in two Chromium tabs
/// (tests/browser/serve-restart.mjs): each tab's signaling reconnects by
/// itself (capped, jittered backoff) and rejoins the room, frames keep
/// being decoded after the restart, and neither page reloads. On host
/// candidates the call just continues; relay-only through serve's TURN
/// (whose allocations and secret die with it) the initiator restarts ICE
/// with fresh credentials and the call comes back relayed.
#[test]
fn a_call_survives_serve_restarting() {
    let binary = serve::realtimer_binary();
    node::run_node(
        "serve-restart.mjs",
        &[binary.to_str().unwrap(), "host", "relay"],
    );
}
