#!/usr/bin/env bash
# Runs the Autobahn TestSuite's fuzzing client against turntable's WebSocket framing
# (the /echo route) and fails if any case FAILED. Reports: reports/autobahn/index.html.
#
# Usage: scripts/autobahn.sh [CASES]   CASES is a JSON list, default: every case of
#        sections 1-7 and 10 (framing, pings, reserved bits, opcodes, fragmentation,
#        UTF-8, close handling, auto-fragmentation). Sections 9 (throughput) and
#        12-13 (permessage-deflate, not offered) are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-[\"1.*\",\"2.*\",\"3.*\",\"4.*\",\"5.*\",\"6.*\",\"7.*\",\"10.*\"]}"
# The full default set is 247 cases: fewer means cases silently did not run.
min_cases=0
[[ $# -eq 0 ]] && min_cases=247
wstest="$(scripts/setup-autobahn.sh)"
cargo build --release --quiet --bin turntable

source scripts/server.sh
start_server --listen 127.0.0.1:0 --shards 2 --echo --max-message-bytes 16777216 --log-level warn

rm -rf reports/autobahn
mkdir -p reports/autobahn
spec="$(pwd)/reports/autobahn/spec.json"
cat >"$spec" <<JSON
{
  "outdir": "$(pwd)/reports/autobahn",
  "servers": [{"agent": "turntable", "url": "ws://$SERVER_ADDR/echo"}],
  "cases": $cases,
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
JSON
(cd reports/autobahn && "$OLDPWD/$wstest" -m fuzzingclient -s "$spec") >reports/autobahn/wstest.log 2>&1 || {
  tail -20 reports/autobahn/wstest.log
  exit 1
}
kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server died during the run:"; cat "$SERVER_LOG"; exit 1; }

python3 - reports/autobahn/index.json "$min_cases" <<'PY'
import collections, json, sys
results = json.load(open(sys.argv[1]))["turntable"]
if len(results) < int(sys.argv[2]):
    print(f"autobahn: only {len(results)} cases ran, {sys.argv[2]} expected")
    sys.exit(1)
counts = collections.Counter()
failed = []
for case, result in sorted(results.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]):
    counts[result["behavior"]] += 1
    if "FAILED" in (result["behavior"], result["behaviorClose"]):
        failed.append(f'{case}: {result["behavior"]}/{result["behaviorClose"]}')
print("autobahn:", len(results), "cases,", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
if failed:
    print("FAILED cases (see reports/autobahn/index.html):")
    print("\n".join(failed))
    sys.exit(1)
PY
