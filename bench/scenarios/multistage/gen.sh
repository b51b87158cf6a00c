#!/bin/sh
# gen.sh DIR — 200 small source-like files under src/.
set -eu
mkdir -p "$1/src"
n=0
while [ $n -lt 200 ]; do
    printf 'int unit_%d(int x)\n{\n    return x + %d;\n}\n' $n $n >"$1/src/unit$n.c"
    n=$((n + 1))
done
