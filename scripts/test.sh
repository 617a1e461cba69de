#!/usr/bin/env bash
# The test suite, as the README gives it: formatting, lints, unit and integration tests.
# Usage: scripts/test.sh            (everything below; ~5 minutes on 2 cores)
#        AUTOBAHN=1 scripts/test.sh (also the Autobahn TestSuite against /echo)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
if [[ "${AUTOBAHN:-0}" == "1" ]]; then
  scripts/autobahn.sh
fi
