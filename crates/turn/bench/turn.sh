#!/usr/bin/env bash
# Our TURN server (`realtimer serve`, release build) against coturn, driven by
# the same load generator (coturn's turnutils_uclient, through run.sh, a copy
# of the shared TURN benchmark) in the same run: for each scenario and run,
# coturn then ours, each on a fresh server; then a table of both and ratios.
#
#   crates/turn/bench/turn.sh                         # pair, many, load60k; 1 run each
#   crates/turn/bench/turn.sh --runs 3 --scenarios "pair load60k load100k"
#
# Needs coturn (turnserver, turnutils_uclient, turnutils_peer) and python3.
# Traffic stays on loopback; every uclient run is bounded (RUN_TIMEOUT, 60 s).
# Results: $CARGO_TARGET_DIR/turn-bench/DATE/ (runs.jsonl per server,
# comparison.md). Only processes started here are stopped, by PID.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
RUNS=1
SCENARIOS="pair many load60k"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
(cd "$ROOT" && cargo build --release -q -p realtimer-cli --bin realtimer)
BIN="$TARGET/release/realtimer"
OUT="$TARGET/turn-bench/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

export TURN_USER=bench TURN_PASS=benchpass TURN_REALM=bench.local
# Other programs share the 2 cores: wait a little for quiet, then measure
# anyway (per-CPU-second efficiency is the figure least hurt by sharing).
export QUIET_WAIT="${QUIET_WAIT:-10}" RETRIES="${RETRIES:-0}"

OURS_PID=""
stop_ours() {
  [ -n "$OURS_PID" ] || return 0
  kill "$OURS_PID" 2>/dev/null || true
  wait "$OURS_PID" 2>/dev/null || true
  OURS_PID=""
}
trap stop_ours EXIT

port_free() { [ -z "$(ss -Hlun "sport = :$1" 2>/dev/null)" ]; }
start_ours() {
  PORT=3590
  while ! port_free "$PORT"; do PORT=$((PORT + 2)); done
  "$BIN" serve --listen 127.0.0.1:0 --stun-listen "127.0.0.1:$PORT" --turn-tcp false \
    --turn-user "$TURN_USER:$TURN_PASS" --turn-realm "$TURN_REALM" \
    --relay-allow 127.0.0.0/8 --relay-ports 40000-49999 --turn-bandwidth 0 \
    --turn-ip-quota 100000 --turn-user-quota 100000 --turn-total-quota 100000 \
    >"$OUT/ours.$1.log" 2>&1 &
  OURS_PID=$!
  for _ in $(seq 50); do
    port_free "$PORT" || return 0
    sleep 0.1
  done
  echo "realtimer serve did not start:" >&2; tail "$OUT/ours.$1.log" >&2; exit 1
}

for sc in $SCENARIOS; do
  for rep in $(seq "$RUNS"); do
    echo "== $sc run $rep: coturn" >&2
    "$HERE/run.sh" --runs 1 --scenarios "$sc" --out "$OUT/coturn/$sc.$rep" >/dev/null
    echo "== $sc run $rep: realtimer" >&2
    start_ours "$sc.$rep"
    TURN_ADDR="127.0.0.1:$PORT" TURN_PID="$OURS_PID" \
      "$HERE/run.sh" --external --runs 1 --scenarios "$sc" --out "$OUT/ours/$sc.$rep" >/dev/null
    stop_ours
  done
done

python3 "$HERE/compare.py" "$OUT" | tee "$OUT/comparison.md"
echo "results: $OUT" >&2
