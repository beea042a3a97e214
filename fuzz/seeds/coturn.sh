#!/usr/bin/env bash
# coturn talking to itself on loopback, for fuzz/seeds/capture.py: its
# turnserver answers its turnutils_uclient (UDP and TCP, UDP and TCP
# relays, channels and Send indications) and turnutils_stunclient.
#   fuzz/seeds/capture.py coturn -- fuzz/seeds/coturn.sh
set -euo pipefail
dir=$(mktemp -d)
port=34780
turnserver -n --listening-ip 127.0.0.1 --listening-port "$port" --relay-ip 127.0.0.1 \
  --min-port 45000 --max-port 45999 --lt-cred-mech --user u:p --realm realm \
  --allow-loopback-peers --no-dtls --no-tls --no-cli --log-file stdout \
  --pidfile "$dir/pid" --userdb "$dir/db" >"$dir/log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
sleep 1
turnutils_stunclient -p "$port" 127.0.0.1 >/dev/null || true
# Peers for the clients' relayed data: turnutils_peer echoes on 3480.
turnutils_peer -L 127.0.0.1 -p 34800 >/dev/null 2>&1 &
peer=$!
trap 'kill $server $peer 2>/dev/null; wait $server $peer 2>/dev/null; rm -rf "$dir"' EXIT
sleep 0.5
for flags in "" "-t" "-s" "-t -s" "-G" "-T" "-D"; do
  # shellcheck disable=SC2086
  timeout 10 turnutils_uclient $flags -u u -w p -p "$port" -e 127.0.0.1 -r 34800 \
    -n 5 -l 120 127.0.0.1 >/dev/null 2>&1 || true
done
