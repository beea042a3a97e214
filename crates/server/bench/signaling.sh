#!/usr/bin/env bash
# Signaling benchmark (issue 7): 10,000 WebSocket clients in 5,000 rooms
# relaying offer/answer/candidate messages, against `realtimer serve`
# (Socket.IO front and /ws front) and, in the same run, the Node codelab
# server (socket.io 4, shared/bench/signaling/server.js) as the reference.
# The load comes from the Rust generator benches/signaling_load (one
# current-thread runtime; see its header for every knob), the same for all.
#
#   crates/server/bench/signaling.sh            RUNS rounds of every target
#   RUNS=1 CLIENTS=1000 crates/server/bench/signaling.sh    a quick look
#   TARGETS="realtimer-sio node-sio" ...        a subset
#
# Each round runs each target once with a fresh server: connect, join, a
# paced phase (MSGS per client, one per INTERVAL_MS: 5,000 msg/s offered at
# 10,000 clients), then a burst (BURST_MSGS per client at once). At the end
# `signaling_load compare` prints, per target, its quietest run (the one
# where other programs took the least CPU) and the ratios to node-sio.
#
# PIN=1 (default) puts every server on CPU 0 and the generator on CPU 1.
# Every run is bounded by RUN_TIMEOUT_S. Results (JSON per run, server logs)
# stay in OUTDIR. REALTIMER_BIN=path skips building the server.
#
# Other programs on the machine skew latency tails: each phase prints how
# long the server and the generator waited for a CPU (and the table picks
# the run where they waited least); compare figures only from runs where
# the server waited a few percent at most.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
node_src=${NODE_SERVER_SRC:-$root/../shared/bench/signaling}
[ -f "$node_src/server.js" ] || { echo "no Node reference server at $node_src (set NODE_SERVER_SRC)"; exit 1; }

# 10,000 sockets per process: the default limit of 1024 open files is far too low.
ulimit -n "$(ulimit -Hn)"

target=${CARGO_TARGET_DIR:-$root/target}
bin=${REALTIMER_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release --quiet -p realtimer-cli --bin realtimer)
  bin="$target/release/realtimer"
fi
generator=$(cd "$root" && cargo bench -p realtimer-server --bench signaling_load --no-run 2>&1 |
  sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$generator" ] || { echo "could not build the load generator"; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# shared/ is read-only: install the Node server's packages in a copy.
mkdir -p "$work/node"
cp "$node_src/server.js" "$node_src/package.json" "$node_src/package-lock.json" "$work/node/"
(cd "$work/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

export CLIENTS=${CLIENTS:-10000} MSGS=${MSGS:-10} INTERVAL_MS=${INTERVAL_MS:-2000}
export BURST_MSGS=${BURST_MSGS:-30}
RUNS=${RUNS:-3}
TARGETS=${TARGETS:-realtimer-sio realtimer-ws node-sio}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-170}
QUIET_PCT=${QUIET_PCT:-15} QUIET_WAIT_S=${QUIET_WAIT_S:-30}
OUTDIR=${OUTDIR:-$target/signaling-bench/$(date -u +%Y%m%dT%H%M%S)}
port=${PORT:-3300}
mkdir -p "$OUTDIR"

server_cpu="" generator_cpu=""
if [ "${PIN:-1}" = 1 ]; then
  server_cpu="taskset -c 0" generator_cpu="taskset -c 1"
fi

# Busy share of the whole machine over one second, in percent.
machine_busy_pct() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 1
  b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = 0;
    for (i = 2; i <= 9; i++) t += y[i] - x[i]; idle = (y[5] - x[5]) + (y[6] - x[6]);
    printf "%d", (t > 0 ? 100 * (t - idle) / t : 0) }'
}

# Other programs skew the figures: wait (bounded) for a quiet machine.
wait_quiet() {
  local waited=0 busy
  while busy=$(machine_busy_pct) && [ "$busy" -gt "$QUIET_PCT" ] && [ "$waited" -lt "$QUIET_WAIT_S" ]; do
    waited=$((waited + 1))
  done
  echo "machine ${busy}% busy before the run (load average $(cut -d' ' -f1-3 /proc/loadavg))"
}

# Starts target $1's server on $port; sets server_pid (the server's own PID:
# env, taskset and the subshell exec it).
start_server() {
  local log=$2
  case $1 in
    realtimer-*)
      env RUST_LOG=warn,realtimer_server::latency=info $server_cpu \
        "$bin" serve --listen "127.0.0.1:$port" --stun-listen 127.0.0.1:0 >"$log" 2>&1 &
      ;;
    node-*)
      (cd "$work/node" && exec env PORT="$port" LOG=1 WS_PATH= $server_cpu node server.js) >"$log" 2>&1 &
      ;;
  esac
  server_pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server $1 did not start on port $port:"
  cat "$log"
  exit 1
}

for run in $(seq 1 "$RUNS"); do
  for t in $TARGETS; do
    echo
    echo "==> round $run: $t ($CLIENTS clients, paced $MSGS x ${INTERVAL_MS} ms, burst $BURST_MSGS)"
    wait_quiet
    port=$((port + 1)) # a fresh port: no TIME_WAIT sockets of the last run
    log="$OUTDIR/$t-$run.server.log"
    start_server "$t" "$log"
    front=${t##*-}
    FRONT=$front LABEL=$t SERVER_PID=$server_pid URL="http://127.0.0.1:$port" \
      JSON_OUT="$OUTDIR/$t-$run.json" timeout "$RUN_TIMEOUT_S" $generator_cpu "$generator" ||
      echo "the generator failed (round $run, $t)"
    # realtimer logs its own relay latency every 5 s: let the last line
    # cover the whole run.
    [ "${t%%-*}" = realtimer ] && sleep 5.5
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    if [ "${t%%-*}" = realtimer ]; then
      echo "relay latency inside realtimer: $(grep -h 'relay latency' "$log" | tail -1 | sed 's/.*inside the server: //')"
    fi
    sleep 2
  done
done

echo
echo "==> results in $OUTDIR (ratios: target / node-sio; lower is better but for msgs/s)"
"$generator" compare node-sio "$OUTDIR"/*.json
