#!/bin/sh
# gen.sh DIR — pkg/ with Debian's small `hello` package, fetched with this
# machine's apt configuration (`apt-get download`; no archive is named here).
set -eu
mkdir -p "$1/pkg"
cd "$1/pkg"
apt-get download hello >/dev/null 2>&1 || apt-get download hello
ls ./*.deb >/dev/null
