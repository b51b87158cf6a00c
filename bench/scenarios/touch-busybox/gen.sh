#!/bin/sh
# gen.sh DIR — the touch scenarios read nothing from their context.
set -eu
mkdir -p "$1"
echo "touch scenarios have an empty context" >"$1/NOTE"
