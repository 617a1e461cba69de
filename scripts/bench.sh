#!/usr/bin/env bash
# Runs a fresh release server and the load generator against it, then prints the
# summary and writes reports/bench/<scenario>-<shards>shards.json (floor: no server).
#
# Usage: scripts/bench.sh SCENARIO [loadgen options...]
#   fanout   1000 subscribers in one channel, 1 publisher, 8 messages in flight
#   rooms    100 channels x 100 subscribers, one paced publisher per channel at RATE
#            publishes/s in all; latency percentiles, losses, and an SVG latency chart
#   keepalive the rooms scenario (RATE publishes/s, 100 x 100) with 2000 idle SocketCluster
#            sockets and 1000 idle SockJS WebSockets beside it, all opened at once
#            (--reconnect-storm), and the server's keepalive short enough that the window
#            holds several rounds of each kind (#1 every 2 s, WebSocket pings after 2 s
#            of silence, SockJS heartbeats every 2 s); KEEPALIVE=off gives the same run
#            with every interval an hour long, for comparison. Against another server:
#            run target/release/loadgen --addr HOST:PORT keepalive --socketcluster 0
#            --sockjs 0 (the rooms' own dialect, turntable v1, and that server's pings)
#   presence 10000 users connecting over 10 s, each watching 50 friends who connect too
#   connect  10000 connections opened, identified and closed (CPU per connection,
#            connect->identified latency)
#   idle     10000 identified connections watching one user each (memory, accept CPU)
#   floor    no server: the kernel's own cost and latency for the rooms shape (one
#            thread writing to groups of 100 of 9000 loopback connections at RATE,
#            one reading with epoll), the floor under the rooms figures
#   cluster  3 nodes over one redis-server, 1000 subscribers spread over them, the
#            publisher on node 0; beside it one node alone and 3 Socket.IO servers with the
#            Redis adapter under the same load (scripts/bench-cluster.sh; SOCKETIO=off skips them)
#   all      every scenario above in turn (fan-out on 1 and 2 shards, rooms at 200 and
#            1000/s, keepalive on and off), then one table of the results (`loadgen summary`); ~2 minutes (the two keepalive runs add ~35 s).
#            Deletes the previous reports/bench results first; takes no loadgen options.
# Environment: SHARDS (default 2), DURATION (fanout/rooms/floor seconds, default 10),
#              RATE (rooms/keepalive/floor, default 200), KEEPALIVE (on or off),
#              CONNECTIONS (idle and connect, default 10000,
#              at most ~15000 here).
set -euo pipefail
cd "$(dirname "$0")/.."
# The load generator is one client address opening thousands of connections: the
# per-address connection_rate (a guard against one abusive address) is turned off.
export TURNTABLE_CONNECTION_RATE=0
scenario="${1:?usage: scripts/bench.sh fanout|rooms|cluster|keepalive|presence|connect|idle|floor|all [loadgen options]}"
shift
shards="${SHARDS:-2}"

[[ "$scenario" != cluster ]] || exec scripts/bench-cluster.sh "$@"
cargo build --release --quiet --bin turntable --bin loadgen
mkdir -p reports/bench
if [[ "$scenario" == all ]]; then
  [[ $# -eq 0 ]] || { echo "bench.sh all takes no loadgen options (got: $*)"; exit 2; }
  rm -f reports/bench/*.json reports/bench/*.svg
  run() { echo "== $*"; env "$@" >/dev/null; }
  run SHARDS=1 DURATION=8 "$0" fanout
  run SHARDS=2 DURATION=8 "$0" fanout
  run RATE=200 DURATION=8 "$0" rooms
  run RATE=1000 DURATION=8 "$0" rooms
  run KEEPALIVE=on "$0" keepalive
  run KEEPALIVE=off "$0" keepalive
  run "$0" presence
  run CONNECTIONS=15000 "$0" connect
  run CONNECTIONS=15000 "$0" idle
  run RATE=200 DURATION=8 "$0" floor
  echo
  target/release/loadgen summary --dir reports/bench
  exit 0
fi
server=()
keepalive=()
if [[ "$scenario" == keepalive ]]; then
  case "${KEEPALIVE:-on}" in
    on) keepalive=(--socketcluster-ping-interval 2s --socketcluster-ping-timeout 5s
                   --idle-timeout 4s --sockjs-heartbeat-interval 2s) ;;
    off) keepalive=(--socketcluster-ping-interval 1h --socketcluster-ping-timeout 1d
                    --idle-timeout 1d --sockjs-heartbeat-interval 1h) ;;
    *) echo "KEEPALIVE is on or off"; exit 2 ;;
  esac
fi
if [[ "$scenario" != floor ]]; then
  source scripts/server.sh
  start_server --listen 127.0.0.1:0 --shards "$shards" --log-level warn "${keepalive[@]}"
  echo "server pid $SERVER_PID on $SERVER_ADDR, $shards shards ($(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  server=(--addr "$SERVER_ADDR" --server-pid "$SERVER_PID")
fi

case "$scenario" in
  fanout)
    args=(fanout --duration "${DURATION:-10}") ;;
  rooms)
    args=(rooms --rate "${RATE:-200}" --duration "${DURATION:-10}"
          --plot "reports/bench/rooms-${RATE:-200}-${shards}shards.svg") ;;
  keepalive)
    args=(keepalive --rate "${RATE:-200}" --duration "${DURATION:-10}" --reconnect-storm
          --plot "reports/bench/keepalive-${KEEPALIVE:-on}-${shards}shards.svg") ;;
  presence)
    args=(presence) ;;
  connect)
    args=(connect --connections "${CONNECTIONS:-10000}") ;;
  idle)
    args=(idle --connections "${CONNECTIONS:-10000}") ;;
  floor)
    args=(floor --rate "${RATE:-200}" --duration "${DURATION:-10}") ;;
  *)
    echo "unknown scenario $scenario"; exit 2 ;;
esac
out="$(mktemp)"
target/release/loadgen "${server[@]}" "${args[@]}" "$@" | tee "$out"
name="${scenario}-${shards}shards"
[[ "$scenario" != rooms ]] || name="rooms-${RATE:-200}-${shards}shards"
[[ "$scenario" != floor ]] || name="floor-${RATE:-200}"
[[ "$scenario" != keepalive ]] || name="keepalive-${KEEPALIVE:-on}-${shards}shards"
grep '^JSON ' "$out" | sed 's/^JSON //' >"reports/bench/${name}.json"
rm -f "$out"
echo "wrote reports/bench/${name}.json"
