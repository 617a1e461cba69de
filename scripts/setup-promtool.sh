#!/bin/sh
# Puts Prometheus's promtool (for `promtool check metrics`) in .cache/promtool/, from
# Debian's prometheus package: the .deb is downloaded with apt and unpacked, not
# installed, so no Prometheus server is set up or started. A no-op once there, or when
# promtool is already on PATH. Prints the path of the promtool to use.
set -eu
cd "$(dirname "$0")/.."
if command -v promtool >/dev/null 2>&1; then
    command -v promtool
    exit 0
fi
dir=.cache/promtool
if [ ! -x "$dir/usr/bin/promtool" ]; then
    mkdir -p "$dir/deb"
    if ! (cd "$dir/deb" && apt-get download prometheus >/dev/null 2>&1); then
        apt-get update >/dev/null
        (cd "$dir/deb" && apt-get download prometheus >/dev/null)
    fi
    dpkg-deb -x "$dir"/deb/prometheus_*.deb "$dir"
    rm -rf "$dir/deb"
fi
echo "$PWD/$dir/usr/bin/promtool"
