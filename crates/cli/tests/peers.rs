//! The CLI peers against each other through a spawned `realtimer serve`:
//! `send` → `recv` (files checked by SHA-256 on both sides), `chat` both
//! ways, `bench`'s table, and the exit codes scripts rely on (an
//! unreachable server, a full room, nobody coming, Ctrl-C); `wss://`
//! with a private CA, and a relay-only pair through serve's TURN.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use realtimer_test_support::certificate::TestCertificate;
use realtimer_test_support::process::Running;
use realtimer_test_support::serve;

const REALTIMER: &str = env!("CARGO_BIN_EXE_realtimer");

/// Long enough for a peer on a loaded 2-core machine; a hang fails.
const PEER_TIMEOUT: Duration = Duration::from_secs(120);

/// `realtimer serve` on ephemeral loopback ports; its base URL.
fn serve() -> (Running, String) {
    let (server, base, _) = serve_with(&[]);
    (server, base)
}

/// `realtimer serve` on ephemeral loopback ports with `extra` flags; its
/// base URL (`http://` or `https://`) and its STUN/TURN UDP port.
fn serve_with(extra: &[&str]) -> (Running, String, u16) {
    let mut args = vec!["--turn-tcp", "false"];
    args.extend_from_slice(extra);
    let serve = serve::serve_on_ephemeral_ports(REALTIMER, &args);
    (serve.process, serve.base, serve.stun_port)
}

/// A peer process: its stdin piped (for `chat`), its output collected.
struct PeerProcess {
    child: Child,
    name: String,
}

/// How a peer ended.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Starts `realtimer ARGS` in `dir` against `server` (loopback candidates
/// on, as both peers are on this host).
fn peer(server: &str, dir: &Path, args: &[&str]) -> PeerProcess {
    let child = Command::new(REALTIMER)
        .args(args)
        .current_dir(dir)
        .env("REALTIMER_SERVER", server)
        .env("REALTIMER_LOOPBACK", "1")
        .env("REALTIMER_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run realtimer");
    PeerProcess {
        child,
        name: args.join(" "),
    }
}

impl PeerProcess {
    fn write_stdin(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin is closed");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Waits for the exit ([`PEER_TIMEOUT`] at most: then it is killed and
    /// the test fails), prints and returns its output.
    fn finish(mut self) -> Finished {
        self.close_stdin();
        let name = self.name.clone();
        let pid = self.child.id();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(self.child.wait_with_output());
        });
        let output = match rx.recv_timeout(PEER_TIMEOUT) {
            Ok(output) => output.unwrap(),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("`realtimer {name}` did not exit within {PEER_TIMEOUT:?}");
            }
        };
        let finished = Finished {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        println!(
            "--- realtimer {name}: exit {:?}\n{}\n{}",
            finished.code, finished.stdout, finished.stderr
        );
        finished
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// A fresh folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("realtimer-peers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Bytes that do not repeat with any short period.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Waits for the server's next log line about a member of `room` (its
/// creation, a join), so that the next peer joins after it.
fn wait_until_in_room(server: &Running, room: &str) {
    server.wait_for_line(&format!("room={room}"));
}

#[test]
fn send_to_recv_checks_every_file() {
    let (server, base) = serve();
    let dir = temp_dir("files");
    let big = pseudo_random(3 << 20, 7);
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    std::fs::write(dir.join("notes.txt"), "meeting at 10\n").unwrap();
    std::fs::write(dir.join("empty"), "").unwrap();
    let recv = peer(&base, &dir, &["recv", "--room", "files-1", "received"]);
    wait_until_in_room(&server, "files-1");
    let send = peer(
        &base,
        &dir,
        &["send", "--room", "files-1", "big.bin", "notes.txt", "empty"],
    );
    let sent = send.finish();
    let received = recv.finish();
    assert_eq!(sent.code, Some(0), "{}", sent.stderr);
    assert_eq!(received.code, Some(0), "{}", received.stderr);
    assert_eq!(std::fs::read(dir.join("received/big.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read_to_string(dir.join("received/notes.txt")).unwrap(),
        "meeting at 10\n"
    );
    assert_eq!(std::fs::read(dir.join("received/empty")).unwrap(), b"");
    for name in ["big.bin", "notes.txt", "empty"] {
        assert!(
            sent.stdout.contains(&format!("sent {name} ("))
                && sent.stdout.contains("received and checked"),
            "{}",
            sent.stdout
        );
        assert!(
            received.stdout.contains(&format!("received {name} (")),
            "{}",
            received.stdout
        );
    }
    // Both sides print the same digest of the big file.
    let digest = sent
        .stdout
        .lines()
        .find(|l| l.starts_with("sent big.bin"))
        .and_then(|l| l.split("SHA-256 ").nth(1))
        .map(|d| d[..64].to_owned())
        .unwrap();
    assert!(received.stdout.contains(&digest), "{}", received.stdout);
    // A second transfer of the same name is saved beside the first.
    let recv = peer(
        &base,
        &dir,
        &["recv", "--room", "files-2", "--count", "1", "received"],
    );
    wait_until_in_room(&server, "files-2");
    assert_eq!(
        peer(&base, &dir, &["send", "--room", "files-2", "notes.txt"])
            .finish()
            .code,
        Some(0)
    );
    assert_eq!(recv.finish().code, Some(0));
    assert!(dir.join("received/notes.txt.1").exists());
}

/// serve with TLS (a CA and a certificate made here): one peer comes by
/// `wss://…/ws`, the other by `https://`, both trusting the CA through
/// `--ca-file`, and both take serve's STUN/TURN list from
/// `https://…/api/ice-servers`. Without `--ca-file` the server is refused
/// with the exit code of an unreachable one.
#[test]
fn send_over_wss_with_a_private_ca() {
    let cert = TestCertificate::new();
    let (server, base, _) =
        serve_with(&["--tls-cert", cert.cert_path(), "--tls-key", cert.key_path()]);
    assert!(base.starts_with("https://"), "{base}");
    let dir = temp_dir("wss");
    std::fs::write(dir.join("ca.pem"), &cert.ca_pem).unwrap();
    std::fs::write(dir.join("notes.txt"), "over TLS\n").unwrap();
    let wss = format!("{}/ws", base.replacen("https://", "wss://", 1));
    let recv = peer(
        &wss,
        &dir,
        &[
            "recv",
            "--room",
            "wss-1",
            "--ca-file",
            "ca.pem",
            "--count",
            "1",
            "got",
        ],
    );
    wait_until_in_room(&server, "wss-1");
    let sent = peer(
        &base,
        &dir,
        &[
            "send",
            "--room",
            "wss-1",
            "--ca-file",
            "ca.pem",
            "notes.txt",
        ],
    )
    .finish();
    let received = recv.finish();
    assert_eq!(sent.code, Some(0), "{}", sent.stderr);
    assert_eq!(received.code, Some(0), "{}", received.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("got/notes.txt")).unwrap(),
        "over TLS\n"
    );
    for side in [&sent, &received] {
        assert!(
            !side.stderr.contains("no STUN/TURN servers"),
            "/api/ice-servers over https: {}",
            side.stderr
        );
    }
    let untrusted = peer(&base, &dir, &["chat", "--room", "wss-2"]).finish();
    assert_eq!(untrusted.code, Some(3), "{}", untrusted.stderr);
}

/// Two relay-only peers (`--relay-only`) given serve's TURN by
/// `--ice-server` instead of `/api/ice-servers`: the file crosses, and
/// each side's route is a relayed candidate of serve's (127.0.0.1 is
/// allowed as a peer address for the test, RFC 8656 §21.1.2).
#[test]
fn relay_only_peers_through_an_ice_server_flag() {
    let (server, base, port) = serve_with(&[
        "--turn-user",
        "alice:wonderland",
        "--relay-allow",
        "127.0.0.0/8",
    ]);
    let dir = temp_dir("relay");
    let data = pseudo_random(256 << 10, 11);
    std::fs::write(dir.join("relayed.bin"), &data).unwrap();
    let turn = format!("turn:alice:wonderland@127.0.0.1:{port}");
    let flags = ["--relay-only", "--ice-server", turn.as_str()];
    let mut args = vec!["recv", "--room", "relay-1", "--count", "1", "got"];
    args.extend(flags);
    let recv = peer(&base, &dir, &args);
    wait_until_in_room(&server, "relay-1");
    let mut args = vec!["send", "--room", "relay-1", "relayed.bin"];
    args.extend(flags);
    let sent = peer(&base, &dir, &args).finish();
    let received = recv.finish();
    assert_eq!(sent.code, Some(0), "{}", sent.stderr);
    assert_eq!(received.code, Some(0), "{}", received.stderr);
    assert_eq!(std::fs::read(dir.join("got/relayed.bin")).unwrap(), data);
    for side in [&sent, &received] {
        let route = side
            .stderr
            .lines()
            .find(|l| l.contains("route"))
            .unwrap_or_else(|| panic!("no route line: {}", side.stderr));
        assert!(
            route.contains("\"relay udp 127.0.0.1:"),
            "the local end is a relayed candidate: {route}"
        );
    }
}

#[test]
fn chat_lines_cross_both_ways() {
    let (server, base) = serve();
    let dir = temp_dir("chat");
    let mut first = peer(&base, &dir, &["chat", "--room", "chat-1"]);
    wait_until_in_room(&server, "chat-1");
    let mut second = peer(&base, &dir, &["chat", "--room", "chat-1"]);
    first.write_stdin("hello from the first\n");
    second.write_stdin("hello from the second\nand a second line\n");
    // Lines typed before the channel opens wait for it; once the second
    // has sent its lines and ends its input, it hangs up after delivery.
    thread::sleep(Duration::from_secs(2));
    second.close_stdin();
    let second = second.finish();
    let first = first.finish();
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(first.stdout, "hello from the second\nand a second line\n");
    assert_eq!(second.stdout, "hello from the first\n");
}

#[test]
fn bench_prints_rtt_and_throughput() {
    let (server, base) = serve();
    let dir = temp_dir("bench");
    let measuring = peer(
        &base,
        &dir,
        &[
            "bench",
            "--room",
            "bench-1",
            "--seconds",
            "1",
            "--pings",
            "5",
        ],
    );
    wait_until_in_room(&server, "bench-1");
    let answering = peer(&base, &dir, &["bench", "--room", "bench-1"]);
    let measured = measuring.finish();
    let answered = answering.finish();
    assert_eq!(measured.code, Some(0), "{}", measured.stderr);
    assert_eq!(answered.code, Some(0), "{}", answered.stderr);
    for row in [
        "round trips                 5",
        "RTT median",
        "RTT p95",
        "throughput ",
    ] {
        assert!(
            measured.stdout.contains(row),
            "{row:?} in\n{}",
            measured.stdout
        );
    }
    // Every byte sent was counted on the other side.
    let sent = measured
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("sent"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(sent.parse::<u64>().unwrap() > 0);
    assert!(
        answered.stdout.contains(&format!(
            "received                    {sent} of {sent} bytes"
        )),
        "{}",
        answered.stdout
    );
}

#[test]
fn exit_codes_for_scripts() {
    let dir = temp_dir("exits");
    // Nothing listens on port 1: unreachable, 3.
    let unreachable = peer("http://127.0.0.1:1", &dir, &["chat", "--room", "x"]).finish();
    assert_eq!(unreachable.code, Some(3));
    assert!(
        unreachable
            .stderr
            .contains("cannot reach the signaling server"),
        "{}",
        unreachable.stderr
    );

    let (server, base) = serve();
    // Nobody comes within --wait: 5.
    let alone = peer(&base, &dir, &["recv", "--room", "alone", "--wait", "1"]).finish();
    assert_eq!(alone.code, Some(5), "{}", alone.stderr);
    assert!(
        alone.stderr.contains("nobody joined room \"alone\""),
        "{}",
        alone.stderr
    );

    // A third peer in a room of two: 4.
    let first = peer(&base, &dir, &["chat", "--room", "two"]);
    wait_until_in_room(&server, "two");
    let second = peer(&base, &dir, &["chat", "--room", "two"]);
    wait_until_in_room(&server, "two");
    let third = peer(&base, &dir, &["chat", "--room", "two"]).finish();
    assert_eq!(third.code, Some(4), "{}", third.stderr);
    assert!(third.stderr.contains("is full"), "{}", third.stderr);

    // Ctrl-C: the peer hangs up (the other side sees it leave and exits
    // 0) and exits 130.
    first.interrupt();
    let first = first.finish();
    assert_eq!(first.code, Some(130), "{}", first.stderr);
    let second = second.finish();
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        second.stderr.contains("the other side"),
        "{}",
        second.stderr
    );
}

#[test]
fn play_to_record_keeps_every_frame() {
    let (server, base) = serve();
    let dir = temp_dir("media");
    let (video, audio) = realtimer_test_support::media::test_clips(&dir);
    let record = peer(&base, &dir, &["record", "--room", "media-1", "call.webm"]);
    wait_until_in_room(&server, "media-1");
    let play = peer(
        &base,
        &dir,
        &[
            "play",
            "--room",
            "media-1",
            video.to_str().unwrap(),
            audio.to_str().unwrap(),
        ],
    );
    let played = play.finish();
    let recorded = record.finish();
    assert_eq!(played.code, Some(0), "{}", played.stderr);
    assert_eq!(recorded.code, Some(0), "{}", recorded.stderr);
    // Every frame and packet of the files, none lost on loopback.
    let packets = |file: &Path| {
        let probe = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_packets",
                "-show_entries",
                "stream=nb_read_packets",
                "-of",
                "csv=p=0",
            ])
            .arg(file)
            .output()
            .expect("cannot run ffprobe");
        String::from_utf8_lossy(&probe.stdout).trim().to_owned()
    };
    let expected = format!(
        "recorded {} video frames and {} audio packets",
        packets(&video),
        packets(&audio)
    );
    assert!(
        recorded.stdout.contains(&expected),
        "{expected:?} in {}",
        recorded.stdout
    );
    assert!(std::fs::metadata(dir.join("call.webm")).unwrap().len() > 50_000);
}

/// Every `sh` block of docs/guide/cli.md runs as it is (bash, `set -e`)
/// against a fresh server, with `realtimer` on the PATH: the guide's
/// commands work.
#[test]
fn guide_commands_run() {
    let guide = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/guide/cli.md");
    let text = std::fs::read_to_string(&guide).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(
        blocks.len() >= 5,
        "sh blocks in the guide: {}",
        blocks.len()
    );
    let (_server, base) = serve();
    let bin = Path::new(REALTIMER).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (i, block) in blocks.iter().enumerate() {
        let dir = temp_dir(&format!("guide-{i}"));
        let child = Command::new("bash")
            .args(["-e", "-c", block])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("REALTIMER_SERVER", &base)
            .env("REALTIMER_LOOPBACK", "1")
            .env("REALTIMER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let finished = PeerProcess {
            child,
            name: format!("guide block {i}"),
        }
        .finish();
        assert_eq!(
            finished.code,
            Some(0),
            "block {i}:\n{block}\n{}",
            finished.stderr
        );
    }
}
