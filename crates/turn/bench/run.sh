#!/usr/bin/env bash
# (Copy of the shared TURN benchmark; crates/turn/bench/turn.sh drives it.)
# TURN relay throughput anchor: coturn (or any TURN server on loopback) driven
# by coturn's own load generator, turnutils_uclient.  See README.md.
#
#   ./run.sh                       # start a throwaway coturn, run all scenarios x3
#   ./run.sh --runs 1 --scenarios "single many"
#   TURN_ADDR=127.0.0.1:3479 TURN_USER=u TURN_PASS=p [TURN_PID=1234] ./run.sh --external
#
# Traffic goes to loopback only.  Every run is bounded (RUN_TIMEOUT seconds).
# Only processes started here are stopped, by PID.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MON="$HERE/uclient_mon.py"

EXTERNAL=0
RUNS=3
SCENARIOS="single pair many load60k load100k load120k"
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --external) EXTERNAL=1 ;;
    --runs) RUNS="$2"; shift ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

MSG_LEN="${MSG_LEN:-1000}"          # payload bytes per message
RUN_TIMEOUT="${RUN_TIMEOUT:-60}"    # hard limit per uclient run (s)
OTHER_CPU_MAX="${OTHER_CPU_MAX:-15}"  # % CPU of foreign processes tolerated
QUIET_WAIT="${QUIET_WAIT:-60}"     # max seconds to wait for a quiet machine
RETRIES="${RETRIES:-2}"             # extra tries for a run disturbed by others
TURN_USER="${TURN_USER:-bench}"
TURN_PASS="${TURN_PASS:-benchpass}"
TURN_REALM="${TURN_REALM:-bench.local}"

for b in turnutils_uclient turnutils_peer python3 ss; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y coturn python3 iproute2)" >&2; exit 1; }
done
[ "$EXTERNAL" = 1 ] || command -v turnserver >/dev/null || { echo "missing turnserver (apt-get install -y coturn)" >&2; exit 1; }

port_free() { [ -z "$(ss -Hlun "sport = :$1" 2>/dev/null)" ]; }
free_port() { local p="$1"; while ! port_free "$p" || ! port_free $((p + 1)); do p=$((p + 2)); done; echo "$p"; }
pid_on_port() { ss -Hlunp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1; }

WORK="$(mktemp -d -t turn-bench.XXXXXX)"
[ -n "$OUT" ] || OUT="$HERE/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
SERVER_PID=""
PEER_PID=""

stop_pid() {  # stop one process we started, by PID
  local pid="$1"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  if [ "$EXTERNAL" = 0 ]; then stop_pid "$SERVER_PID"; fi
  stop_pid "$PEER_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$EXTERNAL" = 1 ]; then
  : "${TURN_ADDR:?--external needs TURN_ADDR=host:port (loopback)}"
  TURN_HOST="${TURN_ADDR%:*}"; TURN_PORT="${TURN_ADDR##*:}"
  case "$TURN_HOST" in 127.*|::1|localhost) ;; *) echo "TURN_ADDR must be on loopback" >&2; exit 2 ;; esac
  SERVER_PID="${TURN_PID:-$(pid_on_port "$TURN_PORT")}"
  [ -n "$SERVER_PID" ] || echo "warning: TURN server PID unknown: no CPU/RSS figures (set TURN_PID)" >&2
else
  TURN_HOST=127.0.0.1
  TURN_PORT="$(free_port "${TURN_PORT:-3478}")"
fi
PEER_PORT="$(free_port "${PEER_PORT:-3480}")"

start_coturn() {  # fresh server per run: no stale allocations, per-run RSS
  cat > "$WORK/turnserver.conf" <<EOF
listening-ip=127.0.0.1
listening-port=$TURN_PORT
relay-ip=127.0.0.1
min-port=20000
max-port=29999
lt-cred-mech
user=$TURN_USER:$TURN_PASS
realm=$TURN_REALM
userdb=$WORK/turndb
allow-loopback-peers
no-tls
no-dtls
no-cli
fingerprint
pidfile=$WORK/turnserver.pid
log-file=$WORK/turnserver.log
simple-log
EOF
  turnserver -c "$WORK/turnserver.conf" >"$WORK/turnserver.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 50); do
    port_free "$TURN_PORT" || return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "turnserver did not start:" >&2; tail -20 "$WORK/turnserver.out" "$WORK"/turnserver*.log >&2 || true
  exit 1
}

wait_quiet() {  # wait (bounded) until foreign processes use < OTHER_CPU_MAX %
  local waited=0 o
  while :; do
    o="$(python3 "$MON" --other-cpu 2 $SERVER_PID $PEER_PID $$)"
    if python3 -c "import sys; sys.exit(0 if float('$o') < float('$OTHER_CPU_MAX') else 1)"; then return 0; fi
    if [ "$waited" -ge "$QUIET_WAIT" ]; then echo "  (machine still busy: other CPU ${o}%, running anyway)" >&2; return 0; fi
    echo "  other processes use ${o}% CPU; waiting..." >&2
    sleep 8; waited=$((waited + 10))
  done
}

# scenario -> sessions, uclient args (besides auth/addresses)
scenario_args() {
  case "$1" in
    # 1 allocation -> echo peer, as fast as uclient sends (about 50 msgs per
    # ~4 ms timer tick per session: uclient caps one session near 12.5k msg/s)
    single) echo "1|-c -m 1 -z 0 -n 250000 -e 127.0.0.1 -r $PEER_PORT" ;;
    # 2 allocations relaying to each other (client A -> relay A -> relay B -> client B), flood
    pair)   echo "2|-y -c -m 2 -z 0 -n 250000" ;;
    # 200 allocations in 100 pairs, 100 msg/s each (10 ms): 20k msg/s offered.
    # (uclient cannot do ~1000: its leaked probe allocations collide with new
    # sessions' ephemeral ports -> endless 437 retries; see README)
    many)   echo "200|-y -c -m 200 -z 10 -n 2000" ;;
    many100) echo "100|-y -c -m 100 -z 20 -n 1000" ;;
    # paced offered load, 1 ms interval per session: N sessions -> N k msg/s
    load20k) echo "20|-y -c -m 20 -z 1 -n 20000" ;;
    load40k) echo "40|-y -c -m 40 -z 1 -n 20000" ;;
    load60k) echo "60|-y -c -m 60 -z 1 -n 20000" ;;
    load80k) echo "80|-y -c -m 80 -z 1 -n 20000" ;;
    load100k) echo "100|-y -c -m 100 -z 1 -n 20000" ;;
    load120k) echo "120|-y -c -m 120 -z 1 -n 20000" ;;
    load140k) echo "140|-y -c -m 140 -z 1 -n 20000" ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
}

NEED_PEER=0
for s in $SCENARIOS; do [ "$s" = single ] && NEED_PEER=1; done
if [ "$NEED_PEER" = 1 ]; then
  turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$WORK/peer.out" 2>&1 &
  PEER_PID=$!
  sleep 0.3
fi

{
  echo "date: $(date -Is)"
  echo "mode: $([ "$EXTERNAL" = 1 ] && echo external || echo "managed coturn $(turnserver --version 2>/dev/null | head -1)")"
  echo "server: $TURN_HOST:$TURN_PORT pid=${SERVER_PID:-?}  peer: 127.0.0.1:$PEER_PORT"
  echo "cpus: $(nproc)  kernel: $(uname -r)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "msg_len: $MSG_LEN  runs: $RUNS  scenarios: $SCENARIOS"
} | tee "$OUT/meta.txt"

RUNS_FILE="$OUT/runs.jsonl"
: > "$RUNS_FILE"
n=0
for sc in $SCENARIOS; do
  IFS='|' read -r SESS ARGS <<<"$(scenario_args "$sc")"
  for rep in $(seq "$RUNS"); do
    fails=0; noisy=0; try=-1
    while [ "$fails" -le 3 ] && [ "$noisy" -le "$RETRIES" ]; do
      try=$((try + 1))
      n=$((n + 1))
      [ "$EXTERNAL" = 1 ] || start_coturn
      wait_quiet
      # fresh loopback source address per run: a stale allocation from an
      # earlier run (same 5-tuple) would make uclient loop on error 437
      LOCAL="127.0.$(( (n / 250) % 250 + 1 )).$(( n % 250 + 2 ))"
      echo "[$sc run $rep try $try] turnutils_uclient -u $TURN_USER -w *** -p $TURN_PORT -L $LOCAL $ARGS -l $MSG_LEN $TURN_HOST" >&2
      # shellcheck disable=SC2086
      res="$(python3 "$MON" --server-pid "${SERVER_PID:-0}" --peer-pid "$([ "$sc" = single ] && echo "${PEER_PID:-0}" || echo 0)" \
              --msg-len "$MSG_LEN" --sessions "$SESS" --timeout "$RUN_TIMEOUT" \
              --raw-log "$OUT/$sc.$rep.$try.uclient.log" -- \
              turnutils_uclient -u "$TURN_USER" -w "$TURN_PASS" -p "$TURN_PORT" -L "$LOCAL" $ARGS -l "$MSG_LEN" "$TURN_HOST")" || true
      [ "$EXTERNAL" = 1 ] || { stop_pid "$SERVER_PID"; SERVER_PID=""; }
      [ -n "$res" ] || res='{"error":"monitor produced no output"}'
      echo "$res" | python3 -c "
import json,sys; d=json.load(sys.stdin); d.update(scenario='$sc', rep=$rep, attempt=$try)
print(json.dumps(d))" >> "$RUNS_FILE"
      other="$(echo "$res" | python3 -c "import json,sys; d=json.load(sys.stdin); print(-1 if 'error' in d else d.get('window',{}).get('other_cpu_pct',0))")"
      echo "$res" | python3 -c "
import json,sys; d=json.load(sys.stdin); w=d.get('window',{}); f=d.get('uclient_final',{})
print('   ', d.get('error') or '', 'recv %s msg/s, loss(window) %s%%, loss(uclient) %s%%, server %s%% CPU, client %s%%, other %s%%, %s' % (
  w.get('recv_msgs_per_s'), w.get('loss_pct'), f.get('lost_pct'), w.get('server_cpu_pct'), w.get('client_cpu_pct'), w.get('other_cpu_pct'), d.get('window_note')))" >&2
      if [ "$other" = "-1" ]; then fails=$((fails + 1)); echo "    failed; retrying with a fresh server" >&2; continue; fi
      if python3 -c "import sys; sys.exit(0 if float('$other') < float('$OTHER_CPU_MAX') else 1)"; then break; fi
      noisy=$((noisy + 1))
      echo "    disturbed by other processes (${other}% CPU)" >&2
    done
  done
done

python3 "$HERE/summarize.py" "$RUNS_FILE" "$OTHER_CPU_MAX" | tee "$OUT/summary.md"
echo "results: $OUT" >&2
