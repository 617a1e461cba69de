#!/usr/bin/env bash
# The test suite, as the README gives it: formatting, lints, unit and integration
# tests, then the Autobahn TestSuite against the server's WebSocket framing (installed
# into .cache/ on first use by scripts/setup-autobahn.sh).
# Usage: scripts/test.sh              (everything; ~8 minutes on 2 cores from clean)
#        AUTOBAHN=0 scripts/test.sh   (skip Autobahn, e.g. offline)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
if [[ "${AUTOBAHN:-1}" != "0" ]]; then
  scripts/autobahn.sh
fi
