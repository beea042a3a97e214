#!/usr/bin/env bash
# Flood bench (issue 18): hostile peers against `realtimer serve`
# (release), a normal peer beside them; see benches/flood/main.rs for the
# floods and the figures. The server runs with a TURN user (for the
# signed floods) and the forwarding unit on its own UDP port.
#
#   crates/server/bench/flood.sh                        every flood
#   FLOODS="rtcp-nack ice-valid" SECONDS=3 ...          a few
#
# PIN=1 (default) puts the server on CPU 0 and the generator on CPU 1.
# FLOOD_PPS, SOURCES, SECONDS pass through. Results (one JSON line per
# window, the server log) stay in OUTDIR. REALTIMER_BIN=path skips
# building the server.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
ulimit -n "$(ulimit -Hn)"

target=${CARGO_TARGET_DIR:-$root/target}
bin=${REALTIMER_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release --quiet -p realtimer-cli --bin realtimer)
  bin="$target/release/realtimer"
fi
generator=${GENERATOR_BIN:-$(cd "$root" && cargo bench -p realtimer-server --bench flood --no-run 2>&1 |
  sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -1)}
[ -x "$generator" ] || { echo "could not build the flood generator"; exit 1; }

OUTDIR=${OUTDIR:-$target/flood-bench/$(date -u +%Y%m%dT%H%M%S)}
port=${PORT:-3500}
stun_port=$((port + 1))
mkdir -p "$OUTDIR"
server_cpu="" generator_cpu=""
if [ "${PIN:-1}" = 1 ]; then
  server_cpu="taskset -c 0" generator_cpu="taskset -c 1"
fi

server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

env RUST_LOG=warn $server_cpu "$bin" serve --listen "127.0.0.1:$port" \
  --stun-listen "127.0.0.1:$stun_port" --turn-tcp false --sfu-udp 127.0.0.1:0 \
  --turn-user flood:flood-password >"$OUTDIR/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
SERVER_PID=$server_pid URL="http://127.0.0.1:$port" STUN="127.0.0.1:$stun_port" \
  TURN_USER=flood:flood-password JSON_OUT="$OUTDIR/results.json" \
  timeout "${RUN_TIMEOUT_S:-900}" $generator_cpu "$generator" || echo "the generator failed"
# The amplification factors, ours beside coturn's (same realm length),
# in the same run.
if command -v turnserver >/dev/null; then
  coturn_port=$((port + 2))
  turnserver -n --listening-ip 127.0.0.1 --listening-port "$coturn_port" --relay-ip 127.0.0.1 \
    --lt-cred-mech --user flood:flood-password --realm realtimer --no-dtls --no-tls --no-cli \
    --no-rfc5780 --log-file "$OUTDIR/coturn.log" --pidfile "$OUTDIR/coturn.pid" \
    --userdb "$OUTDIR/coturn.db" >/dev/null 2>&1 &
  coturn_pid=$!
  sleep 1
  AMPLIFY="realtimer=127.0.0.1:$stun_port coturn=127.0.0.1:$coturn_port" "$generator" amplification ||
    echo "the amplification run failed"
  kill "$coturn_pid" 2>/dev/null || true
  wait "$coturn_pid" 2>/dev/null || true
fi
echo "==> results in $OUTDIR/results.json; server log $OUTDIR/server.log"
