#!/bin/sh
# gen.sh DIR — the small context of steps, steps-cached and edit-rebuild.
set -eu
d=$1
mkdir -p "$d/conf/templates/nested"
echo "listen 9000" >"$d/conf/main.conf"
echo "workers 2" >"$d/conf/extra1.conf"
echo "timeout 30" >"$d/conf/extra2.conf"
n=0
while [ $n -lt 10 ]; do
    echo "template $n" >"$d/conf/templates/t$n.tmpl"
    n=$((n + 1))
done
echo "deep" >"$d/conf/templates/nested/deep.tmpl"
echo "tail v1" >"$d/conf/tail.txt"
