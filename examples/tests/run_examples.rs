//! Every example of this crate, built by cargo and run here as its user
//! would run it, with a bound on its time: the programs that stand alone
//! run once; the room examples run against `realtimer serve` with their
//! other end (a Rust peer in this test, headless Chromium, or another
//! example); custom signaling runs twice, piped into itself.
#![allow(clippy::print_stdout, clippy::print_stderr)]
#![allow(clippy::disallowed_methods)] // time limits on child processes are wall time

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use realtimer::{
    ChannelData, DataChannelInit, MediaKind, PeerConnection, PeerConnectionConfig,
    PeerConnectionEvent, RtpPacket, TrackLocal,
};
use realtimer_signaling::{Handled, PeerSession, SignalingClient, SignalingEvent};
use realtimer_test_support::serve::{realtimer_binary, start_serve};

/// The `realtimer` binary: `REALTIMER_BIN` when set (`scripts/test`
/// builds it just before the tests), else built here by cargo.
fn realtimer() -> std::path::PathBuf {
    std::env::var_os("REALTIMER_BIN").map_or_else(realtimer_binary, Into::into)
}

/// Generous: the machine that runs the tests may be busy.
const LIMIT: Duration = Duration::from_secs(120);

/// An example running as a child process: its stdout lines arrive on a
/// channel; killed when dropped.
struct Example {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Example {
    /// Starts example `name` (a binary of this crate) with `args`.
    fn start(name: &'static str, args: &[&str]) -> Example {
        let path = match name {
            "data-channels" => env!("CARGO_BIN_EXE_data-channels"),
            "browser-data-channel" => env!("CARGO_BIN_EXE_browser-data-channel"),
            "reflect" => env!("CARGO_BIN_EXE_reflect"),
            "save-to-disk" => env!("CARGO_BIN_EXE_save-to-disk"),
            "play-from-disk" => env!("CARGO_BIN_EXE_play-from-disk"),
            "broadcast" => env!("CARGO_BIN_EXE_broadcast"),
            "ice-restart" => env!("CARGO_BIN_EXE_ice-restart"),
            "custom-signaling" => env!("CARGO_BIN_EXE_custom-signaling"),
            "sans-io" => env!("CARGO_BIN_EXE_sans-io"),
            "embedded-turn" => env!("CARGO_BIN_EXE_embedded-turn"),
            other => panic!("no example {other}"),
        };
        let mut child = Command::new(path)
            .args(args)
            .env("REALTIMER_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Example {
            name,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Runs example `name` to its end and returns its stdout lines.
    fn run(name: &'static str, args: &[&str]) -> Vec<String> {
        Example::start(name, args).finish()
    }

    fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("stdin once")
    }

    /// Waits for a stdout line that contains `needle`.
    fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    println!("{}: {line}", self.name);
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "{}: no line with {needle:?} ({e}); saw {:?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Waits for the example to exit, asserts it succeeded and printed
    /// `done`, and returns every stdout line.
    fn finish(mut self) -> Vec<String> {
        self.wait_for_line("done");
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            thread::sleep(Duration::from_millis(20));
        };
        self.seen.extend(self.lines.try_iter());
        assert!(status.success(), "{} exited with {status}", self.name);
        std::mem::take(&mut self.seen)
    }
}

fn has(lines: &[String], wanted: &str) -> bool {
    lines.iter().any(|l| l == wanted)
}

#[test]
fn data_channels() {
    let lines = Example::run("data-channels", &["--messages", "4"]);
    for n in 1..=4 {
        assert!(
            has(&lines, &format!("answerer got: hello {n}")),
            "{lines:?}"
        );
        assert!(
            has(&lines, &format!("offerer got: re: hello {n}")),
            "{lines:?}"
        );
    }
}

#[test]
fn ice_restart() {
    let lines = Example::run("ice-restart", &[]);
    for wanted in [
        "delivered: before the restart",
        "delivered: after the restart",
        "delivered: and back",
    ] {
        assert!(has(&lines, wanted), "{lines:?}");
    }
    let ufrag = |prefix: &str| {
        let line = lines.iter().find(|l| l.starts_with(prefix)).expect(prefix);
        line.rsplit(' ').next().unwrap().to_owned()
    };
    assert_ne!(ufrag("connected, ice-ufrag"), ufrag("restarted, ice-ufrag"));
}

#[test]
fn sans_io() {
    let lines = Example::run("sans-io", &[]);
    assert!(has(&lines, "a received: hello from b"), "{lines:?}");
    assert!(has(&lines, "b received: hello from a"), "{lines:?}");
}

#[test]
fn embedded_turn() {
    let lines = Example::run("embedded-turn", &[]);
    assert!(has(&lines, "echoed: through the relay"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("selected local candidate: relay 127.0.0.1:")),
        "{lines:?}"
    );
    assert!(
        has(
            &lines,
            "metrics: realtimer_turn_allocations_created_total 2"
        ),
        "{lines:?}"
    );
}

#[test]
fn broadcast() {
    let lines = Example::run("broadcast", &["--viewers", "3", "--packets", "60"]);
    for n in 0..3 {
        assert!(
            has(&lines, &format!("viewer {n}: all 60 packets, in order")),
            "{lines:?}"
        );
    }
}

#[test]
fn custom_signaling_piped_into_itself() {
    let mut offerer = Example::start("custom-signaling", &["offer", "--loopback"]);
    let offer = offerer.wait_for_line("\"offer\"");
    let mut answerer = Example::start("custom-signaling", &["answer", "--loopback"]);
    writeln!(answerer.stdin(), "{offer}").unwrap();
    let answer = answerer.wait_for_line("\"answer\"");
    writeln!(offerer.stdin(), "{answer}").unwrap();
    let offerer = offerer.finish_without_done();
    let answerer = answerer.finish_without_done();
    assert!(
        has(&offerer, "received: hello from the answerer"),
        "{offerer:?}"
    );
    assert!(
        has(&answerer, "received: hello from the offerer"),
        "{answerer:?}"
    );
}

impl Example {
    /// [`Example::finish`] for an example that prints no `done`.
    fn finish_without_done(mut self) -> Vec<String> {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            self.seen.extend(self.lines.try_iter());
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            thread::sleep(Duration::from_millis(20));
        };
        // The reader thread may still hold the last lines.
        thread::sleep(Duration::from_millis(50));
        self.seen.extend(self.lines.try_iter());
        println!("{}: {:?}", self.name, self.seen);
        assert!(status.success(), "{} exited with {status}", self.name);
        std::mem::take(&mut self.seen)
    }
}

#[test]
fn browser_data_channel_with_chromium() {
    let (_serve, addr) = start_serve(&realtimer(), &[]);
    let url = format!("http://{addr}");
    let example = Example::start(
        "browser-data-channel",
        &[
            "--server",
            &url,
            "--room",
            "example-dc",
            "--count",
            "3",
            "--loopback",
        ],
    );
    // It joins first, so it creates the room and offers.
    thread::sleep(Duration::from_secs(1));
    realtimer_test_support::node::run_node("example-dc-peer.mjs", &[&url, "example-dc", "3"]);
    let lines = example.finish();
    for n in 1..=3 {
        assert!(
            has(&lines, &format!("received: echo: hello {n} from Rust")),
            "{lines:?}"
        );
    }
}

/// The test's own peer in a room: offers a data channel and a video
/// track, and checks that `reflect` sends both back.
#[tokio::test(flavor = "multi_thread")]
async fn reflect_returns_messages_and_rtp() {
    let (_serve, addr) = start_serve(&realtimer(), &[]);
    let url = format!("http://{addr}");
    let (signaling, mut room) = SignalingClient::connect(&format!("ws://{addr}/ws"), "reflect")
        .await
        .unwrap();
    assert!(room.created());
    let pc = PeerConnection::new(PeerConnectionConfig::default().with_loopback(true))
        .await
        .unwrap();
    let mut events = pc.events().unwrap();
    let session = PeerSession::new(pc.clone());
    let chat = pc
        .create_data_channel("chat", DataChannelInit::default())
        .await
        .unwrap();
    let video = TrackLocal::new(MediaKind::Video, "test", "video");
    pc.add_track(video.clone()).await.unwrap();
    let mut example = Example::start(
        "reflect",
        &["--server", &url, "--room", "reflect", "--loopback"],
    );

    let mut remote = None;
    let mut open = false;
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !open || remote.is_none() {
        tokio::select! {
            // The channel's opening is not a connection event: waited on
            // here, or the loop would sleep to its deadline when the track
            // and the last candidate came before the open (1 run in 6).
            opened = chat.wait_open(), if !open => {
                assert!(opened, "the chat channel closed before it opened");
                open = true;
            }
            event = room.next() => match event.unwrap() {
                SignalingEvent::Ready { .. } => {
                    signaling.send(session.offer().await.unwrap().to_value()).await.unwrap();
                }
                SignalingEvent::Message { data, .. } => {
                    if let Some(Handled::Reply(r)) = realtimer_test_support::session::apply(&session, &data).await {
                        signaling.send(r.to_value()).await.unwrap();
                    }
                }
                _ => {}
            },
            event = events.recv() => match event.unwrap() {
                PeerConnectionEvent::IceCandidate(c) => {
                    signaling.send(PeerSession::candidate(c).to_value()).await.unwrap();
                }
                PeerConnectionEvent::Track(track) => remote = Some(track),
                _ => {}
            },
            () = tokio::time::sleep_until(deadline) => panic!("reflect did not connect"),
        }
    }
    let remote = remote.unwrap();

    // Messages come back as they went.
    for text in ["one", "two", "three"] {
        chat.send_text(text).await.unwrap();
        let back = tokio::time::timeout(LIMIT, chat.recv()).await.unwrap();
        assert_eq!(back, Some(ChannelData::Text(text.into())));
    }
    // RTP payloads come back on the reflected track, with our payload type
    // (VP8 is 96 in our offer).
    let sent: Vec<Bytes> = (0u32..30)
        .map(|n| Bytes::from(n.to_be_bytes().to_vec()))
        .collect();
    let writer = {
        let (video, sent) = (video.clone(), sent.clone());
        tokio::spawn(async move {
            for (n, payload) in sent.into_iter().enumerate() {
                let packet = RtpPacket {
                    payload_type: 96,
                    sequence_number: n as u16,
                    timestamp: n as u32 * 3000,
                    marker: true,
                    ssrc: 0,
                    payload,
                };
                video.write_rtp(packet).await.unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut back = Vec::new();
    while back.len() < sent.len() {
        let packet = tokio::time::timeout(LIMIT, remote.read_rtp())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(packet.payload_type, 96);
        back.push(packet.payload);
    }
    writer.await.unwrap();
    assert_eq!(back, sent);

    signaling
        .send(realtimer_signaling::SessionMessage::Bye.to_value())
        .await
        .unwrap();
    pc.close().await;
    tokio::task::spawn_blocking(move || {
        example.wait_for_line("packets of video reflected");
        example.finish()
    })
    .await
    .unwrap();
}

/// Makes a 2-second VP8 video (IVF) and Opus audio (Ogg) with ffmpeg.
fn media_files(dir: &Path) -> (String, String) {
    let video = dir.join("in.ivf").display().to_string();
    let audio = dir.join("in.ogg").display().to_string();
    for args in [
        vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=15",
            "-t",
            "2",
            "-c:v",
            "libvpx",
            "-b:v",
            "200k",
            &video,
        ],
        vec![
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            &audio,
        ],
    ] {
        let status = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y"])
            .args(&args)
            .status()
            .expect("cannot run ffmpeg (scripts/test installs it)");
        assert!(status.success(), "ffmpeg {args:?}");
    }
    (video, audio)
}

#[test]
fn play_from_disk_into_save_to_disk() {
    use realtimer_media_files::ivf::IvfReader;
    use realtimer_media_files::ogg::OggOpusReader;

    let dir = std::env::temp_dir().join(format!("realtimer-examples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (video, audio) = media_files(&dir);
    let (out_video, out_audio) = (dir.join("out.ivf"), dir.join("out.ogg"));
    let (_serve, addr) = start_serve(&realtimer(), &[]);
    let url = format!("http://{addr}");
    // The player creates the room and offers its two tracks; the
    // recorder answers.
    let mut player = Example::start(
        "play-from-disk",
        &[
            "--server",
            &url,
            "--room",
            "disk",
            "--video",
            &video,
            "--audio",
            &audio,
            "--loopback",
        ],
    );
    thread::sleep(Duration::from_secs(1));
    let recorder = Example::start(
        "save-to-disk",
        &[
            "--server",
            &url,
            "--room",
            "disk",
            "--loopback",
            "--video",
            &out_video.display().to_string(),
            "--audio",
            &out_audio.display().to_string(),
        ],
    );
    player.wait_for_line("sent 30 video frames");
    player.finish();
    recorder.finish();

    // Every frame and packet arrives, byte for byte, in order.
    let frames = |path: &Path| {
        let mut reader = IvfReader::new(std::fs::File::open(path).unwrap()).unwrap();
        std::iter::from_fn(|| reader.next_frame().unwrap().map(|f| f.data)).collect::<Vec<_>>()
    };
    let packets = |path: &Path| {
        let mut reader = OggOpusReader::new(std::fs::File::open(path).unwrap()).unwrap();
        std::iter::from_fn(|| reader.next_packet().unwrap().map(|p| p.data))
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
    };
    let (sent, saved) = (frames(Path::new(&video)), frames(&out_video));
    assert_eq!(sent.len(), 30);
    assert_eq!(saved, sent, "video frames");
    let (sent, saved) = (packets(Path::new(&audio)), packets(&out_audio));
    assert!(sent.len() >= 90, "{} Opus packets", sent.len());
    assert_eq!(saved, sent, "Opus packets");
    let _ = std::fs::remove_dir_all(&dir);
}
