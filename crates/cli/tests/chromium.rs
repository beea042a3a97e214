//! Headless Chromium relays through `realtimer serve`'s TURN server: two
//! RTCPeerConnections in one page with `iceTransportPolicy: 'relay'` and
//! the iceServers of GET /api/ice-servers (no TURN flags: serve draws the
//! REST secret itself), over TURN/UDP and TURN/TCP; a data channel opens, a
//! message crosses both ways, and getStats shows the selected pairs' local
//! candidates are relayed (tests/browser/turn-relay.mjs). The video call
//! page, and libwebrtc, with the Rust echo peer (`realtimer echo`).
//! Firefox ESR on the web app's call and snap pages against Chromium,
//! against Firefox and against `realtimer echo`.

use std::path::PathBuf;

use realtimer_test_support::certificate::TestCertificate;
use realtimer_test_support::libwebrtc as wrtc_peer;
use realtimer_test_support::node;
use realtimer_test_support::process::Running;
use realtimer_test_support::serve;

const REALTIMER: &str = env!("CARGO_BIN_EXE_realtimer");

/// `realtimer serve` on ephemeral loopback ports, relays allowed to
/// loopback (where Chromium's relayed candidates are), plus `extra` flags;
/// returns its HTTP base.
fn serve(extra: &[&str]) -> (Running, String) {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let mut args = vec![
        "--relay-allow",
        "127.0.0.1/8",
        "--web-dir",
        web.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let serve = serve::serve_on_ephemeral_ports(REALTIMER, &args);
    (serve.process, serve.base)
}

#[test]
fn chromium_data_channel_relayed_through_our_turn_over_udp_and_tcp() {
    let (_server, base) = serve(&[]);
    let out = node::run_node("turn-relay.mjs", &[&base, "udp", "tcp"]);
    assert!(out.contains("tcp: b relays over tcp"), "{out}");
}

/// The same in Firefox ESR (puppeteer-core over BiDi), which has no
/// transport stats: its selected candidate pair says which is in use.
#[test]
fn firefox_data_channel_relayed_through_our_turn_over_udp_and_tcp() {
    let (_server, base) = serve(&[]);
    let out = node::run_node("turn-relay.mjs", &[&base, "udp", "tcp", "--firefox"]);
    assert!(out.contains("14 passed, 0 failed"), "{out}");
}

#[test]
fn chromium_data_channel_relayed_through_our_turn_over_tls() {
    let tls = TestCertificate::new();
    // The HTTPS certificate serves turns: too; the page is loaded over HTTPS.
    let (_server, base) = serve(&tls.serve_flags());
    let out = node::run_node("turn-relay.mjs", &[&base, "tls"]);
    assert!(out.contains("tls: b relays over tls"), "{out}");
}

/// The video call page (web/call.html) with `realtimer echo` in its room:
/// the page decodes its own video sent back by the Rust peer, and hanging
/// up makes the echo exit (tests/browser/echo-call.mjs). `order` says who
/// joins first: "answer" (the page offers) or "offer" (the echo offers).
fn echo_call(order: &str) {
    let (_server, base) = serve(&[]);
    let shots = std::env::temp_dir().join(format!("realtimer-echo-{}", std::process::id()));
    let out = node::run_node(
        "echo-call.mjs",
        &[&base, REALTIMER, shots.to_str().unwrap(), order],
    );
    assert!(out.contains("decodes the echoed video"), "{out}");
}

#[test]
fn chromium_call_page_with_the_rust_echo_peer_answering() {
    echo_call("answer");
}

#[test]
fn chromium_call_page_with_the_rust_echo_peer_offering() {
    echo_call("offer");
}

/// libwebrtc (Node's @roamhq/wrtc) calls `realtimer echo` through serve's
/// /ws signaling with a video track of synthetic frames and an audio track
/// of a 440 Hz tone; the echoed video decodes in libwebrtc, the echoed
/// audio plays the tone there, and bye makes the echo exit
/// (tests/wrtc/echo-call.cjs).
#[test]
fn libwebrtc_calls_the_rust_echo_peer() {
    let peer = wrtc_peer::install("echo").expect("no libwebrtc peer folder on this machine");
    let (_server, base) = serve(&[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/wrtc/echo-call.cjs");
    let output = std::process::Command::new("node")
        .arg(&script)
        .args([&base, REALTIMER])
        .env("NODE_PATH", peer.node_modules())
        .output()
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("4 passed, 0 failed"), "{stdout}");
}

/// Headless Firefox ESR on the web app's two-party pages
/// (tests/browser/webapp-firefox.mjs): the call page decodes video and
/// receives audio both ways, and the snap page sends a photo over the data
/// channel each way with every pixel equal; `pairing` is the other side
/// ("chromium" or "firefox"), or "echo" for `realtimer echo` on the call
/// page with the page offering and then answering. `checks`: how many
/// checks the script must pass.
fn firefox_pages(pairing: &str, checks: usize) {
    let (_server, base) = serve(&[]);
    let shots = std::env::temp_dir().join(format!("realtimer-firefox-{}", std::process::id()));
    let out = node::run_node(
        "webapp-firefox.mjs",
        &[&base, REALTIMER, shots.to_str().unwrap(), pairing],
    );
    assert!(out.contains(&format!("{checks} passed, 0 failed")), "{out}");
}

#[test]
fn firefox_and_chromium_call_and_send_photos_both_ways_on_the_web_app() {
    firefox_pages("chromium", 5);
}

/// FULL=1 only: Firefox against Chromium and against our echo run by
/// default.
#[test]
fn two_firefox_tabs_call_and_send_photos_both_ways_on_the_web_app() {
    if !realtimer_test_support::full_matrix("two_firefox_tabs") {
        return;
    }
    firefox_pages("firefox", 5);
}

#[test]
fn firefox_call_page_with_the_rust_echo_peer_offering_and_answering() {
    firefox_pages("echo", 4);
}

/// The CLI peers with the web app's pages (tests/browser/cli-peers.mjs):
/// `realtimer send` to the file page and the page to `realtimer recv`
/// (SHA-256 checked on both sides, the bytes on disk compared), and the
/// chat page with `realtimer chat` a line each way.
#[test]
fn chromium_pages_with_the_cli_peers() {
    let (_server, base) = serve(&[]);
    let work = std::env::temp_dir().join(format!("realtimer-cli-peers-{}", std::process::id()));
    let out = node::run_node("cli-peers.mjs", &[&base, REALTIMER, work.to_str().unwrap()]);
    assert!(out.contains("10 passed, 0 failed"), "{out}");
    let _ = std::fs::remove_dir_all(&work);
}

/// `realtimer play` into the video call page (the page decodes the file's
/// VP8 and receives its Opus) and `realtimer record` of the page's fake
/// camera and microphone to WebM, read back by ffprobe
/// (tests/browser/cli-media.mjs).
#[test]
fn chromium_call_page_with_play_and_record() {
    let (_server, base) = serve(&[]);
    let work = std::env::temp_dir().join(format!("realtimer-cli-media-{}", std::process::id()));
    let (video, audio) = realtimer_test_support::media::test_clips(&work);
    let out = cli_media(&base, &work, &video, &audio, &[]);
    assert!(out.contains("5 passed, 0 failed"), "{out}");
    let streams = ffprobe(
        &[
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
        ],
        &work.join("call.webm"),
    );
    println!("ffprobe: {streams}");
    let frames = |codec: &str| {
        streams
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{codec},")))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    assert!(frames("vp8") > 30, "{streams}");
    assert!(frames("opus") > 50, "{streams}");
    let _ = std::fs::remove_dir_all(&work);
}

/// Runs tests/browser/cli-media.mjs (play and record with the call page)
/// in `work` with these clips and `mode`; its output.
fn cli_media(
    base: &str,
    work: &std::path::Path,
    video: &std::path::Path,
    audio: &std::path::Path,
    mode: &[&str],
) -> String {
    let mut args = vec![
        base,
        REALTIMER,
        work.to_str().unwrap(),
        video.to_str().unwrap(),
        audio.to_str().unwrap(),
    ];
    args.extend_from_slice(mode);
    node::run_node("cli-media.mjs", &args)
}

/// ffprobe's `entries` of `file`, as CSV without keys.
fn ffprobe(entries: &[&str], file: &std::path::Path) -> String {
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error"])
        .args(entries)
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("cannot run ffprobe");
    String::from_utf8_lossy(&probe.stdout).into_owned()
}

/// VP9 both ways with the call page (tests/browser/cli-media.mjs `vp9`):
/// `realtimer play` of a VP9 file offers and accepts only VP9 (codec
/// preferences), so Chromium decodes VP9 although it prefers VP8; and
/// `realtimer record --video-codec vp9` records Chromium's VP9 camera to
/// IVF, whose header has the size read from the first keyframe's VP9
/// header, the size ffprobe decodes from the frames.
#[test]
fn chromium_vp9_with_play_and_record() {
    let (_server, base) = serve(&[]);
    let work = std::env::temp_dir().join(format!("realtimer-cli-vp9-{}", std::process::id()));
    let (_, audio) = realtimer_test_support::media::test_clips(&work);
    let video = realtimer_test_support::media::vp9_clip(&work);
    let out = cli_media(&base, &work, &video, &audio, &["vp9"]);
    assert!(out.contains("6 passed, 0 failed"), "{out}");
    let recorded = work.join("call-vp9.ivf");
    let file = std::fs::File::open(&recorded).unwrap();
    let header = *realtimer_media_files::ivf::IvfReader::new(std::io::BufReader::new(file))
        .unwrap()
        .header();
    assert_eq!(header.fourcc, realtimer_media_files::ivf::Fourcc::Vp9);
    let decoded = ffprobe(
        &[
            "-select_streams",
            "v",
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame=width,height",
        ],
        &recorded,
    );
    println!(
        "ffprobe: first frame {decoded}; IVF header {}x{}",
        header.width, header.height
    );
    assert!(header.width > 0 && header.height > 0, "{header:?}");
    assert_eq!(
        decoded.lines().next().unwrap_or_default().trim(),
        format!("{},{}", header.width, header.height)
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// TURN over TLS in Firefox ESR: Firefox checks a `turns:` server's
/// certificate against its own store, so its profile trusts the test CA
/// (certutil), and the page is loaded from `localhost` so that the TURN
/// URLs name a host (with `turns:127.0.0.1` it gathered no candidate,
/// the CA trusted or not); the same certificate serves HTTPS and `turns:`.
#[test]
fn firefox_data_channel_relayed_through_our_turn_over_tls() {
    let tls = TestCertificate::new();
    let ca = tls.cert.with_file_name("firefox-ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();
    let (_server, base) = serve(&tls.serve_flags());
    let base = base.replace("127.0.0.1", "localhost");
    let out = node::run_node(
        "turn-relay.mjs",
        &[&base, "tls", "--firefox", "--ca", ca.to_str().unwrap()],
    );
    assert!(out.contains("tls: b relays over tls"), "{out}");
}
