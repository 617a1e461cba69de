#!/usr/bin/env bash
# The test suite, as the README gives it: formatting, lints, unit and integration
# tests (tests/socketcluster_npm.rs runs the real socketcluster-client npm packages,
# installed into .cache/node by scripts/setup-node.sh first: needs node >= 18 and npm,
# and the network on first use; tests/backend_bus.rs runs a Python backend on redis-py,
# installed into .cache/python by scripts/setup-python.sh), then the Autobahn TestSuite against the server's
# WebSocket framing (installed into .cache/ on first use by scripts/setup-autobahn.sh).
# promtool and nginx are unpacked from Debian's packages into .cache/ by
# scripts/setup-promtool.sh and scripts/setup-nginx.sh (the network on first use);
# redis-server is installed from Debian's package by scripts/setup-redis.sh (root or sudo), and
# chromium (with playwright-core from npm into .cache/browser, for the dashboard's browser test
# in tests/dashboard.rs) by scripts/setup-chromium.sh.
# Then each fuzz target of fuzz/ for a few seconds (scripts/fuzz.sh --quick; cargo-fuzz
# is installed into .cache/ from crates.io on first use).
# Usage: scripts/test.sh              (everything; ~6 minutes on 2 cores from clean)
#        AUTOBAHN=0 scripts/test.sh   (skip Autobahn; the npm clients still need the
#                                      network on first use)
#        FUZZ=0 scripts/test.sh       (skip the fuzz targets)
set -euo pipefail
cd "$(dirname "$0")/.."
# A run from clean builds everything once: incremental caches would only add ~1 GB of disk.
export CARGO_INCREMENTAL=0
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
python3 scripts/check-layers.py
# vendor/glommio is upstream 0.9.0 + its patches/ (downloads the release on first use)
scripts/check-glommio-patches.sh
scripts/setup-node.sh
# redis-py in .cache/python for the Python backend of tests/backend_bus.rs.
scripts/setup-python.sh >/dev/null
# promtool checks /metrics in tests/operations.rs (from Debian's prometheus package).
PROMTOOL="$(scripts/setup-promtool.sh)"
# nginx serves a wss:// client through deploy/nginx.conf in tests/deploy.rs.
NGINX="$(scripts/setup-nginx.sh)"
# redis-server for the cluster-over-Redis tests (tests/common/redis.rs; Debian's package).
REDIS_SERVER="$(scripts/setup-redis.sh)"
# chromium and playwright-core for tests/browser/dashboard.mjs (tests/dashboard.rs runs it).
scripts/setup-chromium.sh >/dev/null
export PROMTOOL NGINX REDIS_SERVER
cargo test --all-targets
if [[ "${FUZZ:-1}" != "0" ]]; then
  scripts/fuzz.sh --quick 5
else
  # Said loudly: a green run without it has not fed the decoders arbitrary input.
  printf '\n*** SKIPPED: the fuzz targets (FUZZ=0); decoders not fuzzed ***\n\n' >&2
fi
if [[ "${AUTOBAHN:-1}" != "0" ]]; then
  scripts/autobahn.sh
else
  # Said loudly: a green run without it has not checked the WebSocket framing.
  printf '\n*** SKIPPED: the Autobahn TestSuite (AUTOBAHN=0); WebSocket framing not checked ***\n\n' >&2
fi
