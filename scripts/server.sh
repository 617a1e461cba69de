# Sourced by the scripts that run a release server: start_server ARGS... starts
# `target/release/turntable serve ARGS...` (or `$TURNTABLE serve ARGS...`) in the
# background, waits for its "listening on" line, sets SERVER_PID and SERVER_ADDR, and
# stops it when the script exits.
start_server() {
  SERVER_LOG="$(mktemp)"
  "${TURNTABLE:-target/release/turntable}" serve "$@" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; rm -f "$SERVER_LOG"' EXIT
  for _ in $(seq 1 300); do
    grep -q '^listening on' "$SERVER_LOG" && break
    sleep 0.1
  done
  SERVER_ADDR="$(sed -n 's/^listening on \([0-9.:]*\) .*/\1/p' "$SERVER_LOG")"
  [[ -n "$SERVER_ADDR" ]] || { echo "server did not start:"; cat "$SERVER_LOG"; exit 1; }
}
