#!/usr/bin/env bash
# TURN relay throughput, our server against coturn in the same run: builds
# `realtimer` (release) and runs the relay_load benchmark, which starts
# coturn's turnserver and `realtimer serve` fresh for each measurement on
# loopback and drives them with its own load generator. See README.md.
#
#   crates/turn/bench/run.sh                                # single, many, 1k; 1 run
#   crates/turn/bench/run.sh --scenarios many,1k,load60k --runs 3 --seconds 5
#
# Needs coturn (apt-get install -y coturn; scripts/test installs it).
# Results: printed, and kept in $CARGO_TARGET_DIR/turn-bench/DATE.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
cd "$ROOT"
cargo build --release -q -p realtimer-cli --bin realtimer
mkdir -p "$TARGET/turn-bench"
OUT="$TARGET/turn-bench/$(date +%Y%m%d-%H%M%S).md"
REALTIMER_BIN="$TARGET/release/realtimer" \
  cargo bench -q -p realtimer-turn --bench relay_load -- "$@" | tee "$OUT"
echo "results: $OUT" >&2
