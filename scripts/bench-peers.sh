#!/usr/bin/env bash
# turntable and uWebSockets.js side by side: for each scenario, a fresh release turntable
# (defaults; SHARDS shards) and then a fresh uWebSockets.js peer (scripts/peer-uws.mjs, one
# thread) get the same load generator run, and one table shows both and the ratio
# turntable/uWS (below 1: turntable needs less, or is faster).
#
# Usage: scripts/bench-peers.sh [scenario...]   default: fanout idle connect rooms
#   fanout   1000 subscribers in one channel, 1 publisher, 8 in flight: server CPU per delivery
#   idle     CONNECTIONS identified connections watching one user each: RSS per connection,
#            server CPU per accepted + upgraded + identified + subscribed connection
#   connect  CONNECTIONS connections opened, identified and closed: server CPU per connection
#   rooms    100 channels x 100 subscribers at RATE publishes/s: p50/p99/p99.9, nothing lost
#   presence 10000 users connecting over 10 s, each watching 50 friends
# Environment: SHARDS (turntable's, default 2), DURATION (fanout/rooms seconds, default 8),
#   RATE (rooms, default 200), CONNECTIONS (idle/connect, default 15000; RLIMIT_NOFILE is
#   20000 per process here), REPEAT (runs of every scenario on both servers, default 1),
#   PERF=SECONDS: `perf record -g` each server for that long, PERF_DELAY (default 3) seconds
#   after the load generator starts, into reports/bench-peers/*.perf.data (the CPU figures
#   of such a run include perf's own cost; read them with `perf report -i FILE`).
# Server CPU is user + system time of the whole server process from /proc/PID/stat (all of
# turntable's shards; all of node's threads, V8's included), so "per delivery" and "per
# connection" are CPU time however many cores it was spread over; "server cores" is that CPU
# time over the measured seconds. The load generator shares the machine's cores with both.
# Installs uWebSockets.js first (scripts/setup-uws.sh; refuses its pure-JS fallback). Writes
# reports/bench-peers/<server>-<scenario>-<run>.json (the loadgen's JSON line), prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
# The load generator is one client address opening thousands of connections: the
# per-address connection_rate (a guard against one abusive address) is turned off.
export TURNTABLE_CONNECTION_RATE=0
scenarios=("$@")
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=(fanout idle connect rooms)
shards="${SHARDS:-2}" duration="${DURATION:-8}" rate="${RATE:-200}"
connections="${CONNECTIONS:-15000}" repeat="${REPEAT:-1}"
bin="${CARGO_TARGET_DIR:-target}/release"

scripts/setup-uws.sh
cargo build --release --quiet --bin turntable --bin loadgen
out=reports/bench-peers
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.perf.data

# start NAME COMMAND...: runs COMMAND in the background, waits for its "listening on" line;
# sets PEER_PID and PEER_ADDR. stop: SIGTERM and wait.
PEER_PID=
stop() {
  [[ -n "$PEER_PID" ]] || return 0
  kill "$PEER_PID" 2>/dev/null || true
  wait "$PEER_PID" 2>/dev/null || true
  PEER_PID=
}
trap 'stop; rm -f "${PEER_LOG:-}"' EXIT
start() {
  local name="$1"
  shift
  PEER_LOG="$(mktemp)"
  "$@" >"$PEER_LOG" 2>&1 &
  PEER_PID=$!
  for _ in $(seq 1 300); do
    grep -q '^listening on' "$PEER_LOG" && break
    kill -0 "$PEER_PID" 2>/dev/null || break
    sleep 0.1
  done
  PEER_ADDR="$(sed -n 's/^listening on \([0-9.:]*\) .*/\1/p' "$PEER_LOG")"
  [[ -n "$PEER_ADDR" ]] || { echo "$name did not start:"; cat "$PEER_LOG"; exit 1; }
  echo "  $name pid $PEER_PID: $(head -1 "$PEER_LOG")"
}

echo "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(uptime | sed 's/.*load/load/')"
for run in $(seq 1 "$repeat"); do
  for scenario in "${scenarios[@]}"; do
    case "$scenario" in
      fanout) args=(fanout --duration "$duration") ;;
      rooms) args=(rooms --rate "$rate" --duration "$duration") ;;
      idle) args=(idle --connections "$connections") ;;
      connect) args=(connect --connections "$connections") ;;
      presence) args=(presence) ;;
      *) echo "unknown scenario $scenario"; exit 2 ;;
    esac
    for server in turntable uws; do
      echo "== run $run: $scenario on $server ($(uptime | sed 's/.*load/load/'))"
      if [[ "$server" == turntable ]]; then
        start turntable "$bin/turntable" serve --listen 127.0.0.1:0 --shards "$shards" --log-level warn
      else
        start uws node scripts/peer-uws.mjs 0
      fi
      result="$out/$server-$scenario-$run.json"
      if [[ -n "${PERF:-}" ]]; then
        (sleep "${PERF_DELAY:-3}"; perf record -q -F 999 -g -p "$PEER_PID" -o "$out/$server-$scenario-$run.perf.data" -- sleep "$PERF" 2>/dev/null) &
      fi
      "$bin/loadgen" --addr "$PEER_ADDR" --server-pid "$PEER_PID" "${args[@]}" | tee "$result.txt"
      sed -n 's/^JSON //p' "$result.txt" >"$result"
      rm -f "$result.txt"
      stop
      [[ -s "$result" ]] || { echo "no result from $server $scenario"; exit 1; }
    done
  done
done

echo
echo "turntable ($shards shard(s), defaults) and uWebSockets.js (1 thread), $repeat run(s) each; loadgen $(IFS=' '; echo "${scenarios[*]}"); $(uptime | sed 's/.*load/load/')"
node - "$out" "$shards" "${scenarios[@]}" <<'EOF'
const fs = require("fs");
const [dir, shards, ...order] = process.argv.slice(2);
const runs = {}; // scenario -> server -> [result]
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
  const [server, scenario, run] = f.replace(/\.json$/, "").split("-");
  const r = JSON.parse(fs.readFileSync(`${dir}/${f}`, "utf8"));
  ((runs[scenario] ??= {})[server] ??= [])[Number(run) - 1] = r;
}
const ms = (us) => us / 1000;
const metrics = {
  fanout: [
    ["server CPU per delivery (µs)", (r) => r.server_cpu_us_per_delivery, 3],
    ["deliveries/s", (r) => r.delivered_per_s, 0],
    ["server cores busy", (r) => (r.server_cpu_us_per_delivery * r.delivered_per_s) / 1e6, 2],
    ["latency p99 (ms)", (r) => ms(r.p99_us), 1],
  ],
  idle: [
    ["RSS per idle connection (B)", (r) => r.rss_bytes_per_connection, 0],
    ["server CPU per accepted + identified + subscribed connection (µs)", (r) => r.server_cpu_us_per_connection, 1],
  ],
  connect: [
    ["server CPU per connection: accept, upgrade, identify, close (µs)", (r) => r.server_cpu_us_per_connection, 1],
    ["connections/s", (r) => r.connections_per_s, 0],
    ["connect→identified p99 (ms)", (r) => ms(r.p99_us), 2],
  ],
  rooms: [
    ["p50 (ms)", (r) => ms(r.p50_us), 2],
    ["p99 (ms)", (r) => ms(r.p99_us), 2],
    ["p99.9 (ms)", (r) => ms(r.p999_us), 2],
    ["server CPU per delivery (µs)", (r) => r.server_cpu_us_per_delivery, 2],
    ["lost", (r) => r.lost, 0],
  ],
  presence: [
    ["server CPU per status (µs)", (r) => r.server_cpu_us_per_notification, 2],
    ["watchers right", (r) => r.correct_watchers, 0],
  ],
};
const fmt = (v, d) => (v == null || Number.isNaN(v) ? "—" : v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }).replace(/,/g, " "));
const span = (vs, d) => {
  const ok = vs.filter((v) => v != null && !Number.isNaN(v));
  if (!ok.length) return "—";
  const [lo, hi] = [Math.min(...ok), Math.max(...ok)];
  return fmt(lo, d) === fmt(hi, d) ? fmt(lo, d) : `${fmt(lo, d)}–${fmt(hi, d)}`;
};
console.log(`| scenario | figure | turntable (${shards} shard${shards === "1" ? "" : "s"}) | uWebSockets.js | turntable / uWS |`);
console.log("|---|---|---|---|---|");
for (const scenario of [...new Set(order)]) {
  const servers = runs[scenario];
  const any = [...(servers.turntable ?? []), ...(servers.uws ?? [])].find(Boolean);
  const label = scenario === "rooms" ? `rooms ${any.rate}/s` : scenario === "idle" || scenario === "connect" ? `${scenario} ${any.connections}` : scenario;
  for (const [name, get, d] of metrics[scenario] ?? []) {
    const t = (servers.turntable ?? []).map((r) => (r ? get(r) : null));
    const u = (servers.uws ?? []).map((r) => (r ? get(r) : null));
    // The ratio of each run's pair (the two servers ran back to back), as a range.
    const ratios = t.map((v, i) => (v != null && u[i] ? v / u[i] : null));
    console.log(`| ${label} | ${name} | ${span(t, d)} | ${span(u, d)} | ${name === "lost" ? "" : span(ratios, 2)} |`);
  }
}
EOF
