//! `realtimer serve` and `realtimer stun` against each other and against
//! coturn (`turnserver`, `turnutils_stunclient`; Debian package `coturn`,
//! installed by `scripts/test`).

use std::net::SocketAddr;
use std::process::{Command, Output};

use realtimer_test_support::coturn::Coturn;
use realtimer_test_support::ports::free_udp_port;
use realtimer_test_support::process::{spawn, Running};

const REALTIMER: &str = env!("CARGO_BIN_EXE_realtimer");

/// Starts `realtimer serve` on ephemeral loopback ports and returns the
/// addresses it reports.
fn serve(listen: &str) -> (Running, Vec<SocketAddr>) {
    let server = spawn(
        REALTIMER,
        &["serve", "--stun-listen", listen],
        &[("REALTIMER_LOG", "debug")],
    );
    let mut addresses = Vec::new();
    for _ in listen.split(',') {
        let line = server.wait_for_line("STUN server listening on ");
        let address = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        addresses.push(address);
    }
    (server, addresses)
}

fn realtimer_stun(args: &[&str]) -> Output {
    Command::new(REALTIMER)
        .arg("stun")
        .args(args)
        .output()
        .unwrap()
}

/// The value of `name: value` in `realtimer stun`'s output.
fn field(output: &Output, name: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| {
            panic!(
                "no {name:?} in output:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .to_owned()
}

#[test]
fn our_client_gets_its_own_address_from_our_server_over_ipv4_and_ipv6() {
    let (_server, addresses) = serve("127.0.0.1:0,[::1]:0");
    for server in addresses {
        let bind = if server.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let output = realtimer_stun(&[&server.to_string(), "--bind", bind]);
        assert!(output.status.success(), "{output:?}");
        let local: SocketAddr = field(&output, "local address").parse().unwrap();
        let mapped: SocketAddr = field(&output, "mapped address").parse().unwrap();
        assert_eq!(mapped, local, "no NAT on loopback: mapped = local");
        // An unauthenticated answer names no software (no attribute it
        // does not need: see BindingServer).
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("server software"), "{stdout}");
    }
}

#[test]
fn coturn_stunclient_reads_our_mapped_address() {
    let (server, addresses) = serve("127.0.0.1:0");
    let port = addresses[0].port().to_string();
    let output = Command::new("turnutils_stunclient")
        .args(["-p", &port, "127.0.0.1"])
        .output()
        .expect("turnutils_stunclient (coturn) must be installed: run scripts/test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reported: SocketAddr = stdout
        .lines()
        .find_map(|l| l.split("UDP reflexive addr: ").nth(1))
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no reflexive address in coturn's output:\n{stdout}"));
    // The server logs the source of every request it answers; coturn's client
    // must decode exactly that address from our XOR-MAPPED-ADDRESS.
    let line = server.wait_for_line("answering a STUN request");
    let seen = line
        .split("source=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no source in {line:?}"));
    assert_eq!(reported, seen);
    assert_eq!(reported.ip().to_string(), "127.0.0.1");
    let _ = server.drain();
}

#[test]
fn our_client_against_coturn_turnserver() {
    let coturn = Coturn::start(&[], None);
    let server = format!("stun:{}", coturn.address());
    let output = realtimer_stun(&[
        &server,
        "--bind",
        "127.0.0.1:0",
        "--rto-ms",
        "200",
        "--max-transmissions",
        "5",
    ]);
    drop(coturn);
    assert!(output.status.success(), "{output:?}");
    let local: SocketAddr = field(&output, "local address").parse().unwrap();
    let mapped: SocketAddr = field(&output, "mapped address").parse().unwrap();
    assert_eq!(mapped, local);
    assert!(
        field(&output, "server software")
            .to_lowercase()
            .contains("coturn"),
        "the answer came from coturn"
    );
}

#[test]
fn timeouts_and_bad_urls_are_clear_errors() {
    // A port nobody listens on: the request is retransmitted, then fails.
    let port = free_udp_port().to_string();
    let output = realtimer_stun(&[
        &format!("127.0.0.1:{port}"),
        "--rto-ms",
        "20",
        "--max-transmissions",
        "3",
        "--final-wait",
        "2",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no response from 127.0.0.1:") && stderr.contains("after 3 transmissions"),
        "{stderr}"
    );

    for (url, expected) in [
        ("http://example.org", "unknown scheme \"http\""),
        ("stun:host:99999", "bad port \"99999\""),
        ("stuns:127.0.0.1", "only UDP STUN is supported"),
        ("stun:", "missing host"),
    ] {
        let output = realtimer_stun(&[url]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{url}: {stderr}");
    }
}
