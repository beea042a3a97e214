#!/usr/bin/env bash
# SFU benchmark (issue 16): `realtimer serve` (release) forwarding RTP to
# load clients of our own (benches/sfu_load: sans-IO Rtc connections on
# loopback UDP with ICE, DTLS and SRTP, signaled by WHIP and WHEP; see its
# header for every knob). Scenarios, each with a fresh server:
#
#   broadcast  1 room: 1 publisher -> VIEWERS_BROADCAST (1000) viewers
#   rooms4     100 rooms of 4 publishers, each watched by 4 viewers
#   rooms25    10 rooms of 25 publishers, each watched by 25 viewers
#
# A "room of N" is N WHIP publishers (audio + video each) and N WHEP
# viewers receiving all N publishers: every packet goes out N times (a
# group-call participant would get N-1).
#
#   crates/server/bench/sfu.sh                       every scenario
#   SCENARIOS=broadcast VIEWERS_BROADCAST=200 ...    a quick look
#
# PIN=1 (default) puts the server on CPU 0 and the generator on CPU 1.
# The rates (AUDIO_PPS, VIDEO_PPS, ...) and WARMUP_S/SECONDS pass through
# to the generator. Results (one JSON line per run, server logs) stay in
# OUTDIR. REALTIMER_BIN=path skips building the server.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)

# 1,000 sockets in the generator.
ulimit -n "$(ulimit -Hn)"

target=${CARGO_TARGET_DIR:-$root/target}
bin=${REALTIMER_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release --quiet -p realtimer-cli --bin realtimer)
  bin="$target/release/realtimer"
fi
generator=${GENERATOR_BIN:-$(cd "$root" && cargo bench -p realtimer-server --bench sfu_load --no-run 2>&1 |
  sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -1)}
[ -x "$generator" ] || { echo "could not build the load generator"; exit 1; }

SCENARIOS=${SCENARIOS:-broadcast rooms4 rooms25}
OUTDIR=${OUTDIR:-$target/sfu-bench/$(date -u +%Y%m%dT%H%M%S)}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-400}
port=${PORT:-3400}
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

for s in $SCENARIOS; do
  case $s in
    broadcast) rooms=1 publishers=1 viewers=${VIEWERS_BROADCAST:-1000} ;;
    rooms4) rooms=100 publishers=4 viewers=4 ;;
    rooms25) rooms=10 publishers=25 viewers=25 ;;
    *) echo "unknown scenario $s"; exit 1 ;;
  esac
  port=$((port + 1))
  log="$OUTDIR/$s.server.log"
  echo
  echo "==> $s: $rooms room(s) x ($publishers publishers + $viewers viewers); load average $(cut -d' ' -f1-3 /proc/loadavg)"
  env RUST_LOG=warn $server_cpu "$bin" serve --listen "127.0.0.1:$port" \
    --stun-listen 127.0.0.1:0 --turn-tcp false --sfu-udp 127.0.0.1:0 \
    --sfu-room-size $((publishers + viewers)) >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  LABEL=$s ROOMS=$rooms PUBLISHERS=$publishers VIEWERS=$viewers SERVER_PID=$server_pid \
    URL="http://127.0.0.1:$port" JSON_OUT="$OUTDIR/results.json" \
    timeout "$RUN_TIMEOUT_S" $generator_cpu "$generator" || echo "the generator failed ($s)"
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  sleep 2
done
echo
echo "==> results in $OUTDIR/results.json"
