#!/usr/bin/env bash
# Makes sure redis-server and redis-cli (for the cluster-over-Redis tests in
# tests/redis_harness.rs and scripts/cluster.sh) are on PATH, from Debian's redis-server
# package (which pulls in redis-tools for redis-cli). A no-op when both are already
# there. The package's own service is kept from starting (policy-rc.d says 101 while
# apt runs, and any redis-server it did start is stopped): the tests start their own
# servers on free ports and must not find a stray one on 6379. Uses sudo only when not
# root. Prints the path of redis-server as its last line on stdout; all else to stderr.
# Usage: REDIS_SERVER="$(scripts/setup-redis.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    command -v redis-server
    exit 0
fi
sudo=""
[[ "$(id -u)" == 0 ]] || sudo="sudo"
# Without a policy-rc.d (Docker images have one), invoke-rc.d would start the service.
policy=/usr/sbin/policy-rc.d
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
fi
install() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server >&2; }
if ! install; then
    $sudo apt-get update >&2
    install
fi
# Belt and braces: stop the packaged service if something started it anyway.
if [[ -s /run/redis/redis-server.pid ]]; then
    $sudo kill "$(cat /run/redis/redis-server.pid)" 2>/dev/null || true
fi
command -v redis-server
