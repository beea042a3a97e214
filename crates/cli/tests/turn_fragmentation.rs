//! Relayed datagrams larger than the path MTU are fragmented, not dropped
//! (RFC 8656 §14: the DF bit only when the client asked): in a network
//! namespace of the test's own, whose loopback has a 1280-byte MTU, a
//! 1400-byte ChannelData message goes through `realtimer serve` to an echo
//! peer and back, unless the client's Allocate asked for the DF bit
//! (DONT-FRAGMENT). Needs root and `ip` (skipped otherwise); the client half
//! runs in the namespace as this same test, started again by `ip netns
//! exec`.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use realtimer_test_support::netns;
use realtimer_test_support::turn_client::{allocate_and_bind, User};
use realtimer_turn::channel_data::{ChannelData, MIN_CHANNEL};

const REALTIMER: &str = env!("CARGO_BIN_EXE_realtimer");
const TEST: &str = "datagrams_past_the_mtu_are_fragmented_not_dropped";
/// Set in the run inside the namespace.
const INSIDE: &str = "TURN_FRAGMENTATION_INSIDE";
const MTU: &str = "1280";
const BIG: usize = 1400;

#[test]
fn datagrams_past_the_mtu_are_fragmented_not_dropped() {
    if std::env::var_os(INSIDE).is_some() {
        return inside();
    }
    if !netns::is_root() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let name = format!("rt-frag-{}", std::process::id());
    let _ns = netns::Namespaces::create(std::slice::from_ref(&name));
    netns::ip(&["-n", &name, "link", "set", "lo", "mtu", MTU]);
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &name])
        .arg(exe)
        .args(["--exact", TEST, "--nocapture"])
        .env(INSIDE, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "inside the namespace:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// In the namespace: our server, an echo peer, and a client whose
/// ChannelData of 100 and 1400 bytes must both come back.
fn inside() {
    let server_address: SocketAddr = "127.0.0.1:3478".parse().unwrap();
    let _server = Server(
        Command::new(REALTIMER)
            .args(["serve", "--listen", "127.0.0.1:0", "--stun-listen"])
            .arg(server_address.to_string())
            .args(["--turn-tcp", "false", "--turn-user", "alice:secret"])
            .args(["--relay-allow", "127.0.0.0/8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_address = peer.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = peer.recv_from(&mut buf) {
            let _ = peer.send_to(&buf[..n], from);
        }
    });
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    wait_for_stun(&socket, server_address);
    let user = User {
        name: "alice",
        password: "secret",
    };
    let channel = (MIN_CHANNEL, peer_address);
    allocate_and_bind(&socket, server_address, user, 1, channel, false).unwrap();
    for len in [100, BIG] {
        assert_eq!(echo(&socket, server_address, len), Some(len), "{len} bytes");
    }
    // A client that asked for the DF bit (DONT-FRAGMENT) gets it: past the
    // MTU its datagrams are not fragmented, so they do not go out.
    let asking = UdpSocket::bind("127.0.0.1:0").unwrap();
    allocate_and_bind(&asking, server_address, user, 2, channel, true).unwrap();
    assert_eq!(echo(&asking, server_address, 100), Some(100));
    assert_eq!(
        echo(&asking, server_address, BIG),
        None,
        "DF and {BIG} bytes"
    );
}

/// Waits (bounded) until the server answers a STUN Binding request.
fn wait_for_stun(socket: &UdpSocket, server: SocketAddr) {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    request.extend_from_slice(&[7; 12]);
    let mut buf = [0u8; 1500];
    for _ in 0..100 {
        socket.send_to(&request, server).unwrap();
        if socket.recv(&mut buf).is_ok_and(|n| n >= 20) {
            return;
        }
    }
    panic!("realtimer serve does not answer STUN");
}

/// Sends `len` bytes on the channel (up to 3 times) and returns the length
/// of the data that came back.
fn echo(socket: &UdpSocket, server: SocketAddr, len: usize) -> Option<usize> {
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut message = Vec::new();
    ChannelData::encode(MIN_CHANNEL, &vec![0xAB; len], false, &mut message);
    let mut buf = [0u8; 4096];
    for _ in 0..3 {
        socket.send_to(&message, server).unwrap();
        while let Ok(n) = socket.recv(&mut buf) {
            if let Ok(data) = ChannelData::decode(&buf[..n]) {
                return Some(data.data.len());
            }
        }
    }
    None
}
