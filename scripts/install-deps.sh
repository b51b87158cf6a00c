#!/bin/bash
# install-deps.sh — install the Debian 12 packages that building, running and
# testing kiln need, and nothing when they are all present.
#
# Works as root, or as a user with sudo (apt-get runs through sudo then).
# Prints the packages it installs; silent when there is nothing to do.
#
# Usage: scripts/install-deps.sh [--check] [build|run|test]...
#   (no group = all three; --check lists what is missing and exits 1 if any)
set -euo pipefail

# Building kiln (gcc -static for tests/helpers needs libc6-dev).
build_pkgs=(gcc make pkg-config libc6-dev
    libarchive-dev libyajl-dev libseccomp-dev libcap-dev libssl-dev
    libcurl4-openssl-dev zlib1g-dev libzstd-dev libisal-dev)
# Running kiln rootless: newuidmap/newgidmap, the FUSE overlay driver.
run_pkgs=(uidmap fuse-overlayfs fuse3)
# Tests: bats; base images (busybox-static, debootstrap + keyring); image tools
# (umoci, skopeo, jq, python3); builders compared against (buildah, podman on
# runc: crun cannot run on hybrid cgroups); a local registry with htpasswd
# auth and a test CA; fuzzing (clang + its sanitizer runtimes, llvm-symbolizer);
# compressors the layer tests read and write; small tools the scripts use.
test_pkgs=(bats busybox-static debootstrap debian-archive-keyring
    umoci skopeo jq python3
    buildah podman runc
    docker-registry apache2-utils openssl curl ca-certificates
    clang libclang-rt-dev llvm
    pigz zstd xz-utils bzip2 gzip tar file attr libcap2-bin
    passwd procps kmod util-linux git strace openssh-client)

check_only=0
groups=()
for a in "$@"; do
    case "$a" in
        --check) check_only=1 ;;
        build | run | test) groups+=("$a") ;;
        -h | --help)
            sed -n '2,/^$/p' "$0" | sed -n 's/^# \{0,1\}//p'
            exit 0
            ;;
        *)
            echo "install-deps.sh: unknown argument '$a'" >&2
            exit 2
            ;;
    esac
done
[ ${#groups[@]} -gt 0 ] || groups=(build run test)

wanted=()
for g in "${groups[@]}"; do
    case "$g" in
        build) wanted+=("${build_pkgs[@]}") ;;
        run) wanted+=("${run_pkgs[@]}") ;;
        test) wanted+=("${test_pkgs[@]}") ;;
    esac
done

# A package counts as present when dpkg has it fully installed ("ii").
# (dpkg-query fails when it has never heard of a package: that one is missing.)
installed=" $({ dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${wanted[@]}" 2>/dev/null || true; } |
    awk '$1 == "ii" { printf "%s ", $2 }')"
missing=()
for p in "${wanted[@]}"; do
    [[ $installed == *" $p "* ]] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$check_only" = 1 ]; then
    echo "missing packages: ${missing[*]}"
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps.sh: need root or sudo to install: ${missing[*]}" >&2
    exit 1
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends "${missing[@]}"
