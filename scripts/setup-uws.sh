#!/usr/bin/env bash
# Installs uWebSockets.js, the comparison peer of scripts/bench-peers.sh, into .cache/uws,
# idempotently. Inputs (committed): scripts/uws/package.json and package-lock.json, which pin
# @trufflesuite/uws-js-unofficial 20.30.0-unofficial.0 (uWebSockets.js v20.30.0 prebuilt for
# Node ABIs 93/108/115 = Node 16/18/20). Installed with `npm ci --ignore-scripts --omit=optional`:
# the optional packages only speed up the package's pure-JS fallback (built on `ws`), which
# this project refuses. A stamp (sha256 of both files plus the node ABI) makes later runs
# silent no-ops while nothing changed. Every run then loads the native addon
# (binaries/uws_<platform>_<arch>_<abi>.node) directly and fails loudly if it does not load,
# so a Node without a prebuilt binary is an error, never a silently slower server.
# Prints the addon's path on stderr once installed; npm's output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
src=scripts/uws
dest=.cache/uws
command -v node >/dev/null 2>&1 || { echo "setup-uws: node not found" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "setup-uws: npm not found" >&2; exit 1; }

want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1) abi$(node -p process.versions.modules)"
if ! [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$want" ]]; then
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "$src/package.json" "$src/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --no-audit --no-fund --ignore-scripts --omit=optional --loglevel=error >&2)
  echo "$want" >"$dest/.stamp"
  fresh=1
fi
# The check the peer makes too (scripts/peer-uws.mjs): the native addon itself, not src/uws.js,
# which on a failed load prints a warning and returns the fallback.
addon="$(cd "$dest" && node -e '
  const p = require.resolve("@trufflesuite/uws-js-unofficial/package.json").replace(/package\.json$/, "");
  const f = `${p}binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const u = require(f);
  if (typeof u.App !== "function" || typeof u.us_socket_local_port !== "function") throw new Error(f + ": not the uWS addon");
  console.log(f);')" || { echo "setup-uws: the uWebSockets.js native addon does not load on node $(node --version) (no fallback is used)" >&2; exit 1; }
[[ -z "${fresh:-}" ]] || echo "setup-uws: installed @trufflesuite/uws-js-unofficial $(cd "$dest" && node -p 'require("./package-lock.json").packages["node_modules/@trufflesuite/uws-js-unofficial"].version'), native addon $addon" >&2
