#!/bin/sh
# gen.sh DIR — bigrun reads nothing from its context.
set -eu
mkdir -p "$1"
echo "bigrun has an empty context" >"$1/NOTE"
