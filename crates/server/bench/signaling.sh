#!/usr/bin/env bash
# Signaling benchmark: 10,000 Socket.IO clients (WebSocket transport, the
# codelab protocol) in 5,000 rooms relaying offer/answer/candidate messages,
# against `realtimer serve` and, in the same run, the Node socket.io 4
# reference server, with the load generator of shared/bench/signaling.
# Prints p50/p99 relay latency, msgs/s and server RSS for both (medians of
# RUNS runs). Loopback only; every run is bounded by RUN_TIMEOUT_S.
#
#   crates/server/bench/signaling.sh                  paced: 5,000 msg/s offered
#   MSGS=30 INTERVAL_MS=0 crates/server/bench/signaling.sh   burst
#   RUNS=3 CLIENTS=10000 ...                          more runs
#   PIN=1 ...      each server on CPU 0, the load generator on CPU 1 (taskset)
#
# Besides the generator's figures (whose latency includes its own event-loop
# delay), realtimer's own relay latency (request in -> relayed event handed
# to the receiver's socket, logged by the server) is printed per run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
bench_src=${BENCH_SRC:-$root/../shared/bench/signaling}
[ -d "$bench_src" ] || { echo "no load generator at $bench_src (set BENCH_SRC)"; exit 1; }

# 10,000 sockets per side: the default limit of 1024 open files is far too low.
ulimit -n "$(ulimit -Hn)"
echo "open-file limit: $(ulimit -n)"

target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release --quiet -p realtimer-cli --bin realtimer)
bin="$target/release/realtimer"

# shared/ is read-only: run the generator from a copy.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$bench_src/." "$work/"
(cd "$work" && npm ci --no-audit --no-fund --loglevel=error)

export CLIENTS=${CLIENTS:-10000} MSGS=${MSGS:-10} INTERVAL_MS=${INTERVAL_MS:-2000}
export RUNS=${RUNS:-1} MAX_EXTRA=${MAX_EXTRA:-1} RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-130}
export QUIET_WAIT_S=${QUIET_WAIT_S:-20}

# PIN=1: the generator (run.sh and its children) on CPU 1, each server on
# CPU 0 (taskset execs the server, so run.sh still has its PID).
gen=() server_pin=""
if [ "${PIN:-0}" = 1 ]; then
  gen=(taskset -c 1) server_pin="taskset -c 0"
  echo "pinned: servers on CPU 0, load generator on CPU 1"
fi

echo
echo "==> realtimer serve ($CLIENTS clients, MSGS=$MSGS, INTERVAL_MS=$INTERVAL_MS)"
(cd "$work" && TAG=realtimer PORT=3300 OUTDIR=results \
  SERVER_CMD="$server_pin env RUST_LOG=warn,realtimer_server::latency=info $bin serve --listen 127.0.0.1:\$PORT --stun-listen 127.0.0.1:0" \
  "${gen[@]}" ./run.sh)
echo "realtimer's own relay latency (last report of each run's server):"
for log in "$work"/results/realtimer-server-*.log; do
  echo "  $(basename "$log"): $(grep 'relay latency' "$log" | tail -1 | sed 's/.*relay latency inside the server: //')"
done

echo
echo "==> Node socket.io 4 reference (server.js, same load)"
(cd "$work" && TAG=node-sio4 PORT=3400 OUTDIR=results SERVER_CMD="$server_pin node server.js" \
  "${gen[@]}" ./run.sh)

echo
echo "==> both"
(cd "$work" && node summarize.js results/*.json)

# realtimer / Node, medians of the undisturbed runs of each (disturbed ones
# are kept as *.disturbed.json and left out, as summarize.js does).
(cd "$work" && node -e '
const fs = require("fs");
const runs = (tag) => fs.readdirSync("results")
  .filter((f) => f.startsWith(tag + "-") && /-\d+\.json$/.test(f))
  .map((f) => JSON.parse(fs.readFileSync("results/" + f, "utf8")));
const median = (xs) => { const a = xs.filter((x) => typeof x === "number").sort((p, q) => p - q);
  return a.length ? (a.length % 2 ? a[a.length >> 1] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2) : NaN; };
const get = (o, path) => path.split(".").reduce((x, k) => (x == null ? undefined : x[k]), o);
const [ours, ref] = [runs("realtimer"), runs("node-sio4")];
if (!ours.length || !ref.length) { console.log("ratios: no undisturbed run of one side"); process.exit(0); }
const figures = [["p50 latency", "relay.latencyMs.p50"], ["p99 latency", "relay.latencyMs.p99"],
  ["RSS after join", "server.rssMiB.afterJoin"], ["RSS peak", "server.rssMiB.vmHWM"],
  ["server CPU per message", "relay.serverCpuUsPerMsg"], ["server CPU per connection", "connect.serverCpuUsPerConn"]];
console.log("realtimer / Node reference (lower is better):");
for (const [name, path] of figures) {
  const a = median(ours.map((r) => get(r, path))), b = median(ref.map((r) => get(r, path)));
  console.log(`  ${name.padEnd(26)} ${a.toFixed(2)} / ${b.toFixed(2)} = ${(a / b).toFixed(2)}`);
}')
