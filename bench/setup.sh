#!/bin/bash
# bench/setup.sh — installs what bench/run.sh compares kiln with, from
# Debian's archive: buildah (with runc, fuse-overlayfs, the uidmap helpers),
# Charliecloud's ch-image and ch-run, and the floors' tools (pigz, zstd).
# Run as root.  kiln's own dependencies: scripts/install-deps.sh.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends buildah runc fuse-overlayfs uidmap \
    charliecloud-builders charliecloud-runtime python3 pigz zstd time >/dev/null
echo "setup.sh: $(buildah --version); ch-image $(env -i USER=root PATH=/usr/bin:/bin ch-image --version 2>&1 | tail -1)"
