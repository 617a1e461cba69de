#!/usr/bin/env bash
# Installs Socket.IO with its Redis adapter, the cluster comparison peer of
# scripts/bench.sh cluster (scripts/peer-socketio.mjs), into .cache/socketio, idempotently.
# Inputs (committed): scripts/socketio/package.json and package-lock.json, which pin
# socket.io 4.8.1, @socket.io/redis-adapter 8.3.0 and redis (node-redis) 4.7.1. Installed
# with `npm ci`; a stamp (sha256 of both files plus the node major version) makes later
# runs silent no-ops while nothing changed. npm's output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
src=scripts/socketio
dest=.cache/socketio
command -v node >/dev/null 2>&1 || { echo "setup-socketio: node not found" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "setup-socketio: npm not found" >&2; exit 1; }

want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1) node$(node -p 'process.versions.node.split(".")[0]')"
if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$want" && -d "$dest/node_modules/socket.io" ]]; then
  exit 0
fi
rm -rf "$dest"
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >&2)
echo "$want" >"$dest/.stamp"
echo "setup-socketio: installed $(cd "$dest" && node -p '
  const l = require("./package-lock.json").packages;
  ["socket.io","@socket.io/redis-adapter","redis"].map(n => n + "@" + l["node_modules/" + n].version).join(" ")')" >&2
