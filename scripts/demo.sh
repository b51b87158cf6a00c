#!/bin/sh
# The README's main job: install what kiln needs, build it, make a busybox
# base image offline, build the example image as the current user, run it.
# Works for root and for an ordinary user with sudo.
set -eu
cd "$(dirname "$0")/.."

scripts/install-deps.sh
make -s -j2 kiln

KILN=$PWD/build/kiln
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

# An offline base image: Debian's busybox-static with its applet links.
if ! "$KILN" images -q busybox:latest 2>/dev/null | grep -q .; then
    echo "==> making the busybox base image"
    tests/fixtures/make-busybox.sh "$work/busybox.tar"
    "$KILN" import "$work/busybox.tar" busybox:latest
fi

echo "==> kiln build -t kiln-example examples/hello"
"$KILN" build -t kiln-example examples/hello

echo "==> kiln images kiln-example"
"$KILN" images kiln-example

echo "==> kiln run --rm kiln-example"
"$KILN" run --rm kiln-example
