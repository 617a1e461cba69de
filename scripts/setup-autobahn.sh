#!/usr/bin/env bash
# Installs the Autobahn TestSuite (wstest) into .cache/autobahn, idempotently.
# wstest is Python 2 code: a Python 2.7 virtualenv is made with virtualenv 20.21.1 (the
# last release that can still create 2.7 environments), itself installed into a
# Python 3 venv so nothing outside the repository changes.
# Prints the path of wstest on success.
set -euo pipefail
cd "$(dirname "$0")/.."
root=.cache/autobahn
wstest="$root/py27/bin/wstest"
if [[ -x "$wstest" ]] && "$wstest" --autobahnversion >/dev/null 2>&1; then
  echo "$wstest"
  exit 0
fi

find_python2() {
  for candidate in "${PYTHON2:-}" "$HOME/.pyenv/versions/2.7.18/bin/python" python2.7 python2; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}
python2="$(find_python2)" || {
  echo "setup-autobahn: no Python 2.7 found (set PYTHON2=/path/to/python2.7)" >&2
  exit 1
}

rm -rf "$root"
mkdir -p "$root"
python3 -m venv "$root/tools" >&2
"$root/tools/bin/pip" install --quiet --disable-pip-version-check virtualenv==20.21.1 >&2
"$root/tools/bin/virtualenv" --quiet -p "$python2" "$root/py27" >&2
"$root/py27/bin/pip" install --quiet --disable-pip-version-check autobahntestsuite >&2
"$wstest" --autobahnversion >&2
echo "$wstest"
