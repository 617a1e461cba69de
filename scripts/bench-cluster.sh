#!/usr/bin/env bash
# The cluster fan-out bench (scripts/bench.sh cluster runs this): one redis-server (free
# port, no persistence) and 3 release turntable nodes (2 shards each, --pin false) on
# loopback; the fanout scenario with SUBSCRIBERS subscribers spread round robin over
# the 3 nodes and the publisher on node 0. The v1 room `bench` is `turntable:bench` to
# placement, owned by node 2 (crc32 % 3 = 2): a publication crosses to its owner, which
# sends it on to nodes 0 and 1, three cross-node messages.
# In the same run, for comparison: one turntable node alone (2 shards, no Redis) with
# the same subscribers, and (unless SOCKETIO=off) 3 Socket.IO servers with the Redis
# adapter (scripts/peer-socketio.mjs; installed by scripts/setup-socketio.sh) against
# the same redis-server and the same load. CPU per delivery is summed over the 3 server
# processes, redis-server's apart. Then the presence storm on one node and on the 3
# nodes: USERS users connecting over RAMP seconds, round robin over the nodes, each
# watching 50 friends (so two thirds of every watcher's friends are on other nodes).
# Everything is stopped by PID at the end.
# Environment: SUBSCRIBERS (default 1000), DURATION (seconds, default 8), SOCKETIO (on/off),
# USERS (default 6000), RAMP (default 6).
# Writes reports/bench/cluster-<run>.json (the loadgen JSON lines) and prints two tables.
set -euo pipefail
cd "$(dirname "$0")/.."
# The load generator is one client address opening thousands of connections: the
# per-address connection_rate (a guard against one abusive address) is turned off.
export TURNTABLE_CONNECTION_RATE=0
subscribers="${SUBSCRIBERS:-1000}" duration="${DURATION:-8}"
users="${USERS:-6000}" ramp="${RAMP:-6}"
redis_server="$(scripts/setup-redis.sh)"
[[ "${SOCKETIO:-on}" == off ]] || scripts/setup-socketio.sh
cargo build --release --quiet --bin turntable --bin loadgen
bin="${CARGO_TARGET_DIR:-target}/release"
logs="$(mktemp -d "${TMPDIR:-/tmp}/turntable-bench-cluster.XXXXXX")"
mkdir -p reports/bench
pids=()

# stop [PID...]: SIGTERM, then SIGKILL after 5 s; all started processes without arguments.
stop() {
  local list=("$@")
  ((${#list[@]})) || list=("${pids[@]}")
  ((${#list[@]})) || return 0
  kill "${list[@]}" 2>/dev/null || true
  for pid in "${list[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap 'trap - EXIT; stop; rm -rf "$logs"' EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start LOG COMMAND...: runs COMMAND in the background until LOG has a "listening on" line.
start() {
  local log="$1"
  shift
  "$@" >"$log" 2>&1 </dev/null &
  pids+=($!)
  for _ in $(seq 300); do
    grep -q '^listening on' "$log" && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "did not start: $*; the end of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
}
# measure NAME PIDS ADDRS SCENARIO [options]: one loadgen run, its JSON kept as NAME.
measure() {
  local name="$1" server_pids="$2" addrs="$3"
  shift 3
  local args=(--addr "$addrs" --redis-pid "$redis_pid")
  for p in $server_pids; do args+=(--server-pid "$p"); done
  echo "== $name ($(uptime | sed 's/.*load/load/'))"
  "$bin/loadgen" "${args[@]}" "$@" | tee "$logs/$name.txt"
  sed -n 's/^JSON //p' "$logs/$name.txt" >"reports/bench/cluster-$name.json"
}
fanout() { measure "$1" "$2" "$3" fanout --subscribers "$subscribers" --duration "$duration" "${@:4}"; }
presence() { measure "$1" "$2" "$3" presence --users "$users" --ramp "$ramp"; }

redis_port="$(free_port)"
redis_cli="$(dirname "$redis_server")/redis-cli"
"$redis_server" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$logs" --logfile "$logs/redis.log" </dev/null &
pids+=($!)
redis_pid=$!
until [[ "$("$redis_cli" -p "$redis_port" ping 2>/dev/null)" == PONG ]]; do
  kill -0 "$redis_pid" 2>/dev/null || { tail "$logs/redis.log" >&2; exit 1; }
  sleep 0.1
done
redis="redis://127.0.0.1:$redis_port"
echo "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); redis-server pid $redis_pid on $redis_port"

# One node alone, the single-node figure.
port="$(free_port)"
start "$logs/single.log" "$bin/turntable" serve --listen "127.0.0.1:$port" --shards 2 \
  --pin false --log-level warn
single=${pids[-1]}
fanout single "$single" "127.0.0.1:$port"
stop "$single"
port="$(free_port)"
start "$logs/single-presence.log" "$bin/turntable" serve --listen "127.0.0.1:$port" --shards 2 \
  --pin false --log-level warn
single=${pids[-1]}
presence presence-single "$single" "127.0.0.1:$port"
stop "$single"

# Three nodes over Redis.
# start_nodes: 3 fresh nodes over the redis-server, on new ports; sets node_pids, addrs.
start_nodes() {
  local ports=("$(free_port)" "$(free_port)" "$(free_port)")
  local nodes
  nodes="$(printf 'http://127.0.0.1:%s\n' "${ports[@]}" | paste -sd,)"
  addrs="$(printf '127.0.0.1:%s\n' "${ports[@]}" | paste -sd,)"
  node_pids=()
  for i in 0 1 2; do
    start "$logs/node-$i.log" "$bin/turntable" serve --listen "127.0.0.1:${ports[$i]}" \
      --shards 2 --pin false --log-level warn --nodes "$nodes" --node-id "$i" --redis "$redis"
    node_pids+=("${pids[-1]}")
  done
  # Until every node sees the other two alive.
  for _ in $(seq 100); do
    alive="$(curl -sf "http://127.0.0.1:${ports[0]}/cluster" | grep -o '"alive":true' | wc -l)"
    [[ "$alive" == 3 ]] && break
    sleep 0.1
  done
}
start_nodes
fanout turntable "${node_pids[*]}" "$addrs"
stop "${node_pids[@]}"
start_nodes
presence presence-cluster "${node_pids[*]}" "$addrs"
stop "${node_pids[@]}"

if [[ "${SOCKETIO:-on}" != off ]]; then
  ports=("$(free_port)" "$(free_port)" "$(free_port)")
  addrs="$(printf '127.0.0.1:%s\n' "${ports[@]}" | paste -sd,)"
  sio_pids=()
  for i in 0 1 2; do
    start "$logs/socketio-$i.log" node scripts/peer-socketio.mjs "${ports[$i]}" "$redis"
    sio_pids+=("${pids[-1]}")
  done
  fanout socketio "${sio_pids[*]}" "$addrs" --dialect socketio
  stop "${sio_pids[@]}"
fi

echo
echo "fan-out, $subscribers subscribers, 1 publisher x 8 in flight, ${duration} s; $(nproc) cores, $(uptime | sed 's/.*load/load/')"
node - reports/bench <<'EOF'
const fs = require("fs");
const dir = process.argv[2];
const read = (n) => { try { return JSON.parse(fs.readFileSync(`${dir}/cluster-${n}.json`, "utf8")); } catch { return null; } };
const [single, tt, sio] = ["single", "turntable", "socketio"].map(read);
const f = (v, d) => (v == null ? "—" : Number(v).toFixed(d));
console.log("| run | deliveries/s | server CPU/delivery (µs, all nodes) | redis CPU/delivery (µs) | p50 / p99 (ms) | shard msgs / Redis PUBLISHes per publication |");
console.log("|---|---|---|---|---|---|");
for (const [name, r] of [["turntable, 1 node", single], ["turntable, 3 nodes", tt], ["Socket.IO + Redis adapter, 3 nodes", sio]]) {
  if (!r) continue;
  const per = r.cluster_messages_per_publication == null ? "—" : `${f(r.cluster_messages_per_publication, 2)} / ${f(r.redis_publishes_per_publication, 2)}`;
  console.log(`| ${name} | ${f(r.delivered_per_s, 0)} | ${f(r.server_cpu_us_per_delivery, 3)} | ${name.endsWith("1 node") ? "—" : f(r.redis_cpu_us_per_delivery, 3)} | ${f(r.p50_us / 1000, 2)} / ${f(r.p99_us / 1000, 2)} | ${per} |`);
}
if (single && tt) console.log(`turntable 3 nodes / 1 node, CPU per delivery: ${f(tt.server_cpu_us_per_delivery / single.server_cpu_us_per_delivery, 2)}×`);
if (sio && tt) console.log(`Socket.IO / turntable (3 nodes), CPU per delivery: ${f(sio.server_cpu_us_per_delivery / tt.server_cpu_us_per_delivery, 1)}×`);
console.log();
console.log("| presence storm | watchers right | statuses delivered | server CPU/status (µs, all nodes, connects included) | redis CPU/status (µs) |");
console.log("|---|---|---|---|---|");
for (const [name, r] of [["turntable, 1 node", read("presence-single")], ["turntable, 3 nodes", read("presence-cluster")]]) {
  if (!r) continue;
  console.log(`| ${name} | ${r.correct_watchers} of ${r.users} | ${r.notifications} | ${f(r.server_cpu_us_per_notification, 3)} | ${r.nodes > 1 ? f(r.redis_cpu_us_per_notification, 3) : "—"} |`);
}
EOF
