#!/usr/bin/env bash
# Makes the Python environment of the interop harnesses (tests/interop/*.py, e.g. the
# backend-bus backend on redis-py): a venv in .cache/python with the pinned packages of
# tests/interop/requirements.txt, idempotently. A stamp (sha256 of the requirements plus
# the interpreter's version) makes later runs silent no-ops while nothing changed. Needs
# python3 >= 3.8 with its venv module (Debian's python3-venv, installed here if missing,
# with sudo when not root) and the network on first use.
# Prints the venv's interpreter as its last line on stdout; all else goes to stderr.
# Usage: PYTHON="$(scripts/setup-python.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/python
requirements=tests/interop/requirements.txt
command -v python3 >/dev/null 2>&1 || { echo "setup-python: python3 not found" >&2; exit 1; }

want="$(sha256sum <"$requirements" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
if [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$want" && -x "$dest/bin/python3" ]]; then
    echo "$PWD/$dest/bin/python3"
    exit 0
fi

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    install() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv >&2; }
    install || { $sudo apt-get update >&2 && install; }
fi
rm -rf "$dest"
python3 -m venv "$dest" >&2
"$dest/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
echo "$want" >"$dest/.stamp"
echo "setup-python: installed $("$dest/bin/python3" -c 'import redis; print("redis-py", redis.__version__)')" >&2
echo "$PWD/$dest/bin/python3"
