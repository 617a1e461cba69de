#!/usr/bin/env bash
# The soak test: a fresh release server (default settings, 2 shards, a free loopback
# port) holds N connections for M minutes under churn while `loadgen soak` samples its
# RSS each second. Passes when the final RSS (median of the last 30 s) is within 5 % of
# the settled RSS (median of the warm-up's last 30 s; the warm-up is the first 2
# minutes), no stable member missed a message of its room (per-room `seq`), no churned
# member missed one while it was a member, every connect was served and the server
# closed no well-behaved connection. Shorter runs scale the warm-up (a third of the run)
# and the windows (half the warm-up). Stops by itself; stops only the server it started.
#
# Usage: scripts/soak.sh [--connections N] [--minutes M] [--out DIR] [--bin-dir DIR]
#                        [-- LOADGEN-SOAK-OPTIONS...]
#   --connections N  connections held (default 15000; at most ~15000 here: the
#                    generator's RLIMIT_NOFILE is 20000)
#   --minutes M      run time, warm-up included (default 10; fractions allowed)
#   --out DIR        where rss.csv (one line a second), soak.log and soak.json go
#                    (default reports/soak)
#   --bin-dir DIR    take turntable and loadgen from DIR instead of building release
#                    (the test suite's smoke run uses its debug build)
#   -- ...           passed on to `loadgen soak` (--warmup SECONDS, --window SECONDS,
#                    --churn, --room-size, --stable, --room-rate; see loadgen soak --help)
# Exit status 0 when the run passed, 1 when it failed, 2 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,/^# Exit status/s/^# \{0,1\}//p' "$0"; }
connections=15000 minutes=10 out=reports/soak bin_dir=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --) shift; break ;;
    --connections) connections="${2:?--connections needs a number}"; shift 2 ;;
    --minutes) minutes="${2:?--minutes needs a number}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --bin-dir) bin_dir="${2:?--bin-dir needs a directory}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "soak.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$connections" =~ ^[0-9]+$ ]] || { echo "soak.sh: --connections is a whole number" >&2; exit 2; }
[[ "$minutes" =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "soak.sh: --minutes is a number" >&2; exit 2; }
seconds="$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')"

# The generator is one client address opening thousands of connections: the
# per-address connection_rate (a guard against one abusive address) is turned off.
export TURNTABLE_CONNECTION_RATE=0
if [[ -z "$bin_dir" ]]; then
  cargo build --release --quiet --bin turntable --bin loadgen
  bin_dir="${CARGO_TARGET_DIR:-target}/release"
fi
export TURNTABLE="$bin_dir/turntable"
mkdir -p "$out"
source scripts/server.sh
start_server --listen 127.0.0.1:0 --shards 2 --log-level warn
echo "server pid $SERVER_PID on $SERVER_ADDR, 2 shards; $connections connections for $minutes min, results in $out"

status=0
# The run's own length plus time to connect and to check the rooms' last messages.
timeout "$((seconds + 120))" \
  "$bin_dir/loadgen" --addr "$SERVER_ADDR" --server-pid "$SERVER_PID" \
  soak --connections "$connections" --duration "$seconds" --csv "$out/rss.csv" "$@" \
  | tee "$out/soak.log" || status=$?
grep '^JSON ' "$out/soak.log" | sed 's/^JSON //' >"$out/soak.json" || true
kill -0 "$SERVER_PID" 2>/dev/null || { echo "soak: FAIL: the server exited during the run"; cat "$SERVER_LOG"; exit 1; }
if [[ "$status" -eq 0 ]] && grep -q '^verdict: PASS' "$out/soak.log"; then
  echo "soak: PASS ($out/soak.json, $out/rss.csv)"
else
  echo "soak: FAIL (loadgen exit status $status; $out/soak.log)"
  exit 1
fi
