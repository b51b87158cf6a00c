#!/bin/sh
# gen.sh DIR — the context of thirty-cached: a few small files.
set -eu
d=$1
mkdir -p "$d/lib" "$d/src"
echo "dep-a dep-b" >"$d/deps.txt"
echo lib >"$d/lib/one.sh"
echo main >"$d/src/main.c"
echo util >"$d/src/util.c"
echo "[app]" >"$d/config.ini"
echo readme >"$d/README"
