#!/usr/bin/env bash
# A local turntable cluster to try by hand: one redis-server (from scripts/setup-redis.sh;
# no persistence, its own temp dir) and K turntable nodes that know each other and meet
# in that Redis. Prints each node's URL and PID, then waits; Ctrl-C (or any node exiting)
# stops everything it started, by PID.
# Usage: scripts/cluster.sh K                  nodes 0..K-1 on 127.0.0.1:8001..800K
#        REDIS_PORT=6400 scripts/cluster.sh 3  Redis on another port (default 6390)
# Logs (redis.log, node-I.log) are in a temp dir it prints, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
k="${1:-}"
[[ "$k" =~ ^[1-9][0-9]?$ ]] || { echo "usage: scripts/cluster.sh K   (1 <= K <= 99 nodes)" >&2; exit 2; }
redis_port="${REDIS_PORT:-6390}"
redis_server="$(scripts/setup-redis.sh)"
cargo build --release --quiet --bin turntable
turntable="${CARGO_TARGET_DIR:-target}/release/turntable"
logs="$(mktemp -d "${TMPDIR:-/tmp}/turntable-cluster.XXXXXX")"
pids=()

stop() {
  trap - EXIT
  trap '' INT TERM  # a second Ctrl-C (or timeout's second TERM) must not cut this short
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null || true
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$logs"
  echo "stopped" >&2
}
trap stop EXIT
trap 'exit 130' INT TERM
# Prints the end of a log and fails: something did not start.
fail() { echo "$1; the end of $2:" >&2; tail -n 20 "$2" >&2; exit 1; }

redis_cli="$(dirname "$redis_server")/redis-cli"
if "$redis_cli" -p "$redis_port" ping >/dev/null 2>&1; then
  echo "a Redis already answers on port $redis_port; choose another with REDIS_PORT" >&2; exit 1
fi
"$redis_server" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$logs" --logfile "$logs/redis.log" </dev/null &
pids+=($!)
until [[ "$("$redis_cli" -p "$redis_port" ping 2>/dev/null)" == PONG ]]; do
  kill -0 "${pids[0]}" 2>/dev/null || fail "redis-server did not start on port $redis_port" "$logs/redis.log"
  sleep 0.1
done
echo "redis  redis://127.0.0.1:$redis_port  pid ${pids[0]}"

nodes="$(for i in $(seq 0 $((k - 1))); do echo "http://127.0.0.1:$((8001 + i))"; done | paste -sd,)"
for i in $(seq 0 $((k - 1))); do
  log="$logs/node-$i.log"
  "$turntable" serve --listen "127.0.0.1:$((8001 + i))" --nodes "$nodes" --node-id "$i" \
    --redis "redis://127.0.0.1:$redis_port" >"$log" 2>&1 </dev/null &
  pids+=($!)
  until grep -q '^listening on' "$log"; do
    kill -0 "${pids[-1]}" 2>/dev/null || fail "node $i did not start" "$log"
    sleep 0.1
  done
  echo "node $i http://127.0.0.1:$((8001 + i))  pid ${pids[-1]}"
done
echo "logs in $logs; Ctrl-C stops all" >&2

# Waits until Ctrl-C, or until one of them exits (then says which, and stops the rest).
wait -n "${pids[@]}" || true
for i in "${!pids[@]}"; do
  kill -0 "${pids[$i]}" 2>/dev/null && continue
  if ((i == 0)); then fail "redis-server exited" "$logs/redis.log"; fi
  fail "node $((i - 1)) exited" "$logs/node-$((i - 1)).log"
done
