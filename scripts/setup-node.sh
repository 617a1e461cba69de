#!/usr/bin/env bash
# Installs the npm packages of the interop harnesses (tests/interop/*.mjs) into .cache/node,
# idempotently. Inputs (committed): tests/interop/package.json and package-lock.json, which pin
#   sc14 = socketcluster-client@14.3.2, sc20 = socketcluster-client@20.0.2, jsonwebtoken,
#   sockjs-client@1.6.1, and, for validating the SocketCluster harness only,
#   scserver14 = socketcluster-server@14.7.2.
# Both files are copied to .cache/node and installed with `npm ci`; a stamp (sha256 of the two
# files plus the node major version) makes later runs silent no-ops while nothing changed.
# Needs only node >= 18 and npm. Prints nothing when already installed; npm's output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
src=tests/interop
dest=.cache/node
command -v node >/dev/null 2>&1 || { echo "setup-node: node not found" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "setup-node: npm not found" >&2; exit 1; }

want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1) node$(node -p 'process.versions.node.split(".")[0]')"
if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$want" && -d "$dest/node_modules/sc14" ]]; then
  exit 0
fi

rm -rf "$dest"
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >&2)
echo "$want" >"$dest/.stamp"
echo "setup-node: installed $(cd "$dest" && node -p '
  const l = require("./package-lock.json").packages;
  ["sc14","sc20","scserver14","jsonwebtoken","sockjs-client"].map(n => n + "@" + l["node_modules/" + n].version).join(" ")')" >&2
