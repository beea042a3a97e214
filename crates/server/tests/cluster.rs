//! Scale-out through Redis: two `realtimer serve` processes sharing rooms
//! via a `redis-server` started here on a loopback port; WebSocket clients
//! on different processes in one room; each process subscribed only to its
//! rooms' channels; a crashed process frees its slots.

use realtimer_test_support::{node, serve};

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open(addr: SocketAddr) -> (Ws, String) {
    let (mut ws, _) = connect_async(format!("ws://{addr}/ws")).await.unwrap();
    let welcome = next(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    let id = welcome["id"].as_str().unwrap().to_owned();
    (ws, id)
}

async fn next_within(ws: &mut Ws, limit: Duration) -> Value {
    loop {
        let frame = tokio::time::timeout(limit, ws.next())
            .await
            .expect("no frame in time")
            .expect("socket closed")
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn next(ws: &mut Ws) -> Value {
    next_within(ws, Duration::from_secs(5)).await
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

/// Both processes with a short node TTL, Redis from the flag.
fn two_servers(redis: &str) -> serve::Cluster {
    serve::Cluster::start(redis, 2, 900, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_a_room_through_redis() {
    let (_redis, url) = serve::start_redis();
    let servers = two_servers(&url);
    let (one, two) = (servers.address(0), servers.address(1));

    let (mut a, a_id) = open(one).await;
    let (mut b, b_id) = open(two).await;
    let (mut c, _) = open(one).await;
    assert_ne!(a_id, b_id, "client ids are unique across processes");

    send(&mut a, json!({"type": "join", "room": "shared"})).await;
    assert_eq!(
        next(&mut a).await,
        json!({"type": "created", "room": "shared", "id": a_id})
    );
    send(&mut b, json!({"type": "join", "room": "shared"})).await;
    assert_eq!(
        next(&mut b).await,
        json!({"type": "joined", "room": "shared", "id": b_id})
    );
    assert_eq!(
        next(&mut b).await,
        json!({"type": "ready", "room": "shared"})
    );
    assert_eq!(
        next(&mut a).await,
        json!({"type": "join", "room": "shared"})
    );
    assert_eq!(
        next(&mut a).await,
        json!({"type": "ready", "room": "shared"})
    );

    // Capacity holds across processes: a third client on either is refused.
    send(&mut c, json!({"type": "join", "room": "shared"})).await;
    assert_eq!(
        next(&mut c).await,
        json!({"type": "full", "room": "shared"})
    );

    // Offer, answer and candidates cross, in order.
    let offer = json!({"type": "offer", "sdp": "v=0\r\n"});
    send(&mut a, json!({"type": "message", "data": offer})).await;
    for i in 0..20 {
        let candidate = json!({"type": "candidate", "candidate": format!("candidate:{i}")});
        send(&mut a, json!({"type": "message", "data": candidate})).await;
    }
    assert_eq!(
        next(&mut b).await,
        json!({"type": "message", "from": a_id, "data": offer})
    );
    for i in 0..20 {
        let got = next(&mut b).await;
        assert_eq!(got["data"]["candidate"], format!("candidate:{i}"));
    }
    let answer = json!({"type": "answer", "sdp": "v=0\r\n"});
    send(&mut b, json!({"type": "message", "data": answer})).await;
    assert_eq!(
        next(&mut a).await,
        json!({"type": "message", "from": b_id, "data": answer})
    );

    // A clean leave is seen on the other process, and frees the slot.
    drop(a);
    assert_eq!(
        next(&mut b).await,
        json!({"type": "left", "room": "shared", "id": a_id})
    );
    send(&mut c, json!({"type": "join", "room": "shared"})).await;
    assert_eq!(next(&mut c).await["type"], "joined");
    assert_eq!(
        next(&mut b).await,
        json!({"type": "join", "room": "shared"})
    );
}

/// Subscribers of each room's event channel, as Redis counts them.
async fn subscribers(redis: &mut redis::aio::MultiplexedConnection, rooms: &[&str]) -> Vec<i64> {
    let mut command = redis::cmd("PUBSUB");
    command.arg("NUMSUB");
    for room in rooms {
        command.arg(format!("realtimer:events:{room}"));
    }
    let counts: Vec<(String, i64)> = command.query_async(redis).await.unwrap();
    counts.into_iter().map(|(_, n)| n).collect()
}

/// Waits (2 s at most) until the subscriber counts are `want`.
async fn until_subscribers(
    redis: &mut redis::aio::MultiplexedConnection,
    rooms: &[&str],
    want: &[i64],
) {
    let mut got = Vec::new();
    for _ in 0..40 {
        got = subscribers(redis, rooms).await;
        if got == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("subscribers of {rooms:?}: {got:?}, want {want:?}");
}

/// Each room has its own channel, and a process listens only to the rooms
/// it has members in: from the join on, until its last member there goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_hears_only_the_rooms_it_has_members_in() {
    let (_redis, url) = serve::start_redis();
    let servers = two_servers(&url);
    let (one, two) = (servers.address(0), servers.address(1));
    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let rooms = ["left", "right", "both"];
    until_subscribers(&mut redis, &rooms, &[0, 0, 0]).await;

    let (mut a, _) = open(one).await;
    let (mut b, _) = open(two).await;
    let (mut c, _) = open(one).await;
    let (mut d, _) = open(two).await;
    for (ws, room) in [(&mut a, "left"), (&mut b, "right"), (&mut c, "both")] {
        send(ws, json!({"type": "join", "room": room})).await;
        assert_eq!(next(ws).await["type"], "created");
    }
    // Subscribed before the join is decided, so already there.
    assert_eq!(subscribers(&mut redis, &rooms).await, [1, 1, 1]);
    send(&mut d, json!({"type": "join", "room": "both"})).await;
    assert_eq!(next(&mut d).await["type"], "joined");
    assert_eq!(subscribers(&mut redis, &rooms).await, [1, 1, 2]);

    // Messages of a room reach its members, from either side.
    send(&mut d, json!({"type": "message", "data": "to c"})).await;
    assert_eq!(next(&mut c).await["type"], "join");
    assert_eq!(next(&mut c).await["type"], "ready");
    assert_eq!(next(&mut c).await["data"], "to c");

    // The last member of a room on a process leaving unsubscribes it.
    send(&mut a, json!({"type": "leave"})).await;
    drop(d);
    assert_eq!(next(&mut c).await["type"], "left");
    until_subscribers(&mut redis, &rooms, &[0, 1, 1]).await;
    drop(b);
    until_subscribers(&mut redis, &rooms, &[0, 0, 1]).await;
    // A refused join leaves no subscription behind.
    let (mut p, _) = open(one).await;
    let (mut q, _) = open(one).await;
    let (mut r, _) = open(two).await;
    send(&mut p, json!({"type": "join", "room": "pair"})).await;
    assert_eq!(next(&mut p).await["type"], "created");
    send(&mut q, json!({"type": "join", "room": "pair"})).await;
    assert_eq!(next(&mut q).await["type"], "joined");
    send(&mut r, json!({"type": "join", "room": "pair"})).await;
    assert_eq!(next(&mut r).await["type"], "full");
    until_subscribers(&mut redis, &["pair"], &[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_server_frees_its_members_slots() {
    let (_redis, url) = serve::start_redis();
    let mut servers = two_servers(&url);
    let (one, two) = (servers.address(0), servers.address(1));

    let (mut a, a_id) = open(one).await;
    let (mut b, _) = open(two).await;
    let (mut c, _) = open(two).await;
    send(&mut a, json!({"type": "join", "room": "r"})).await;
    assert_eq!(next(&mut a).await["type"], "created");
    send(&mut b, json!({"type": "join", "room": "r"})).await;
    assert_eq!(next(&mut b).await["type"], "joined");
    assert_eq!(next(&mut b).await["type"], "ready");
    send(&mut c, json!({"type": "join", "room": "r"})).await;
    assert_eq!(next(&mut c).await["type"], "full");

    // Server one dies without a word: no leave reaches Redis.
    servers.nodes[0].0.crash();
    // Its node key expires after 0.9 s; the sweep of server two (every
    // node TTL) removes A and tells B.
    assert_eq!(
        next_within(&mut b, Duration::from_secs(5)).await,
        json!({"type": "left", "room": "r", "id": a_id})
    );
    send(&mut c, json!({"type": "join", "room": "r"})).await;
    assert_eq!(next(&mut c).await["type"], "joined");
    assert_eq!(next(&mut c).await["type"], "ready");
    assert_eq!(next(&mut b).await["type"], "join");
    assert_eq!(next(&mut b).await["type"], "ready");
}

/// No message within `quiet` (to show nothing comes twice).
async fn nothing_within(ws: &mut Ws, quiet: Duration) {
    if let Ok(frame) = tokio::time::timeout(quiet, ws.next()).await {
        panic!("expected silence, got {frame:?}");
    }
}

/// Redis killed and restarted empty (no persistence) under two servers: a
/// room inside one process keeps relaying meanwhile; the events a client
/// sends to a member on the other process wait and arrive once Redis is
/// back, each once and in order; the processes put their members back, so
/// new cross-process rooms work and the capacity still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_and_repeats_no_room_event() {
    let (mut redis, url) = serve::start_redis();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let servers = two_servers(&url);
    let (one, two) = (servers.address(0), servers.address(1));

    let (mut a, a_id) = open(one).await;
    let (mut b, b_id) = open(two).await;
    let (mut c, _) = open(one).await;
    let (mut d, _) = open(one).await;
    send(&mut a, json!({"type": "join", "room": "across"})).await;
    assert_eq!(next(&mut a).await["type"], "created");
    send(&mut b, json!({"type": "join", "room": "across"})).await;
    assert_eq!(next(&mut b).await["type"], "joined");
    assert_eq!(next(&mut b).await["type"], "ready");
    assert_eq!(next(&mut a).await["type"], "join");
    assert_eq!(next(&mut a).await["type"], "ready");
    send(&mut c, json!({"type": "join", "room": "inside"})).await;
    assert_eq!(next(&mut c).await["type"], "created");
    send(&mut d, json!({"type": "join", "room": "inside"})).await;
    assert_eq!(next(&mut d).await["type"], "joined");
    assert_eq!(next(&mut d).await["type"], "ready");
    assert_eq!(next(&mut c).await["type"], "join");
    assert_eq!(next(&mut c).await["type"], "ready");

    redis.crash();
    // Inside one process: relayed at once, Redis or not.
    for i in 0..5 {
        send(
            &mut c,
            json!({"type": "message", "data": format!("inside {i}")}),
        )
        .await;
        assert_eq!(next(&mut d).await["data"], format!("inside {i}"));
    }
    // Across: queued on server one while Redis is gone.
    for i in 0..10 {
        send(
            &mut a,
            json!({"type": "message", "data": format!("across {i}")}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis = serve::start_redis_on(port);
    for i in 0..10 {
        let got = next_within(&mut b, Duration::from_secs(15)).await;
        assert_eq!(
            got,
            json!({"type": "message", "from": a_id, "data": format!("across {i}")})
        );
    }
    // The other way, after the restart.
    send(&mut b, json!({"type": "message", "data": "back"})).await;
    assert_eq!(
        next_within(&mut a, Duration::from_secs(10)).await,
        json!({"type": "message", "from": b_id, "data": "back"})
    );
    // Nothing twice (a copy would come within the retries' two node TTLs).
    nothing_within(&mut b, Duration::from_secs(3)).await;
    nothing_within(&mut a, Duration::from_millis(100)).await;

    // Both processes are back in Redis's rooms: the room is full for a
    // third client on either, and a new room spans both.
    let (mut e, _) = open(two).await;
    send(&mut e, json!({"type": "join", "room": "across"})).await;
    assert_eq!(next(&mut e).await["type"], "full");
    send(&mut e, json!({"type": "join", "room": "new"})).await;
    assert_eq!(next(&mut e).await["type"], "created");
    let (mut f, _) = open(one).await;
    send(&mut f, json!({"type": "join", "room": "new"})).await;
    assert_eq!(next(&mut f).await["type"], "joined");
    assert_eq!(next(&mut f).await["type"], "ready");
    send(&mut f, json!({"type": "message", "data": "new room"})).await;
    assert_eq!(next(&mut e).await["type"], "join");
    assert_eq!(next(&mut e).await["type"], "ready");
    assert_eq!(next(&mut e).await["data"], "new room");
    drop(redis);
}

/// The issue's scale-out check: two servers, one browser tab on each, the
/// same room: the call connects and video decodes both ways.
#[test]
fn a_browser_on_each_server_calls_through_redis() {
    let (_redis, url) = serve::start_redis();
    let servers = two_servers(&url);
    // localhost, not 127.0.0.1: a secure context for getUserMedia.
    let first = format!("http://localhost:{}/", servers.address(0).port());
    let second = format!("http://localhost:{}/", servers.address(1).port());
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots-cluster");
    let out = node::run_node_with_env(
        "webapp.mjs",
        &[&first, shots.to_str().unwrap(), "uc5"],
        &[("SECOND_BASE", &second)],
    );
    assert!(!out.contains("FAIL"), "{out}");
}

/// `/ws` group calls placed through Redis (docs/sfu.md, protocol version
/// 2): a participant reaching the node its room does not live on is told
/// that node's URL, and joins the room there; a client of version 1 is
/// not redirected (it joins where it is, as before version 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_call_joined_on_the_wrong_node_is_redirected_to_its_home() {
    let (_redis, url) = serve::start_redis();
    let servers = serve::Cluster::start(&url, 2, 900, &["--sfu-udp", "127.0.0.1:0"]);
    let (one, two) = (servers.address(0), servers.address(1));
    let join = |version: u32| json!({"type": "sfu-join", "room": "call", "version": version});

    let (mut a, _) = open(one).await;
    send(&mut a, join(2)).await;
    let joined = next(&mut a).await;
    assert_eq!(joined["type"], "sfu-joined", "{joined}");
    assert_eq!(joined["version"], 2);
    let first = joined["participant"].clone();

    let (mut b, _) = open(two).await;
    send(&mut b, join(2)).await;
    let home = format!("http://{one}");
    assert_eq!(
        next(&mut b).await,
        json!({"type": "sfu-redirect", "room": "call", "url": home})
    );
    // Following it: the same room, with the first participant in it.
    let (mut b, _) = open(one).await;
    send(&mut b, join(2)).await;
    let joined = next(&mut b).await;
    assert_eq!(joined["type"], "sfu-joined", "{joined}");
    assert_eq!(joined["participants"], json!([first]));

    // Version 1 knows no redirect: it joins on the node it reached.
    let (mut c, _) = open(two).await;
    send(&mut c, join(1)).await;
    let joined = next(&mut c).await;
    assert_eq!(joined["type"], "sfu-joined", "{joined}");
    assert_eq!(
        (joined["version"].clone(), joined["participants"].clone()),
        (json!(1), json!([]))
    );
    send(&mut c, json!({"type": "sfu-leave"})).await;
    // A version from the future is refused.
    let (mut d, _) = open(two).await;
    send(&mut d, join(3)).await;
    let refused = next(&mut d).await;
    assert_eq!(refused["code"], "unsupported-version", "{refused}");
}
