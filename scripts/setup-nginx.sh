#!/bin/sh
# Puts nginx in .cache/nginx/ for the reverse-proxy test (tests/deploy.rs), from
# Debian's nginx and nginx-common packages: downloaded with apt and unpacked, not
# installed, so no nginx service is set up or started. A no-op once there. Prints the
# path of the nginx binary.
set -eu
cd "$(dirname "$0")/.."
dir=.cache/nginx
if [ ! -x "$dir/usr/sbin/nginx" ]; then
    mkdir -p "$dir/deb"
    if ! (cd "$dir/deb" && apt-get download nginx nginx-common >/dev/null 2>&1); then
        apt-get update >/dev/null
        (cd "$dir/deb" && apt-get download nginx nginx-common >/dev/null)
    fi
    for deb in "$dir"/deb/*.deb; do
        dpkg-deb -x "$deb" "$dir"
    done
    rm -rf "$dir/deb"
fi
echo "$PWD/$dir/usr/sbin/nginx"
