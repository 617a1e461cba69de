#!/usr/bin/env bash
# Installs what the dashboard's browser test needs (tests/browser/dashboard.mjs, run by
# tests/dashboard.rs), idempotently:
#   * Debian's chromium package (apt-get, as root or with sudo, as scripts/setup-redis.sh
#     does; `apt-get update` only if the first try fails), a no-op when chromium is on PATH;
#   * playwright-core from npm into .cache/browser, pinned by tests/browser/package.json and
#     package-lock.json and installed with `npm ci` (it drives that chromium; it downloads
#     no browser of its own); a stamp (sha256 of the two files plus the node major version)
#     makes later runs no-ops while nothing changed.
# Needs node >= 20 and npm. Prints the path of chromium as its last line on stdout; all else
# to stderr.
# Usage: CHROMIUM="$(scripts/setup-chromium.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null 2>&1 || { echo "setup-chromium: node not found" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "setup-chromium: npm not found" >&2; exit 1; }

if ! command -v chromium >/dev/null 2>&1; then
    sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    install() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2; }
    if ! install; then
        $sudo apt-get update >&2
        install
    fi
fi

src=tests/browser
dest=.cache/browser
want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1) node$(node -p 'process.versions.node.split(".")[0]')"
if [[ ! -f "$dest/.stamp" || "$(cat "$dest/.stamp")" != "$want" || ! -d "$dest/node_modules/playwright-core" ]]; then
    rm -rf "$dest"
    mkdir -p "$dest"
    cp "$src/package.json" "$src/package-lock.json" "$dest/"
    (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$want" >"$dest/.stamp"
    echo "setup-chromium: installed playwright-core@$(cd "$dest" && node -p 'require("./node_modules/playwright-core/package.json").version')" >&2
fi
command -v chromium
