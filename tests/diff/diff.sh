#!/bin/bash
# diff.sh — builds one case of tests/diff/cases with kiln and with buildah,
# exports both images to OCI layouts and compares them (compare.py).
#
# Usage:
#   diff.sh setup WORK BASE...     import the base images (busybox, debian)
#                                  into WORK's kiln store and buildah storage
#   diff.sh run WORK CASE_DIR      build and compare one case; exit 1 on a
#                                  difference that the case does not document
#   diff.sh bench WORK CASE_DIR    cached-rebuild times of kiln and buildah
#
# Environment: KILN (the kiln binary), KILN_TEST_FIXTURES (base tarballs),
# BUILDAH_DRIVER (buildah's storage driver, default overlay).
#
# A case is a directory with a Dockerfile, its context files, and an
# optional case.conf (bash) setting:
#   BASES="busybox"          base images it needs (busybox, debian)
#   MODES="range single"     identity modes it runs in (buildah cannot
#                            chown to other ids without a subuid range)
#   ARGS=(...)               extra flags for both builders
#   IGNORE_CONFIG="F,..."    config fields not compared (documented in README.md)
#   IGNORE_PATHS=(REGEX...)  paths not compared (documented in README.md)
#   FIXTURES=(FILE...)       files of $KILN_TEST_FIXTURES copied into the context
# and an optional prepare.sh, run (bash) in the copied context before the
# builds: links, empty directories and archives that git does not keep.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
: "${KILN:?KILN must name the kiln binary}"
: "${KILN_TEST_FIXTURES:=/var/cache/kiln-tests}"
: "${BUILDAH_DRIVER:=overlay}"

# buildah as the tests run it: its own storage under WORK, runc (crun cannot
# run on hybrid cgroups), the host network (no /dev/net/tun), no SELinux label.
bah() {
    buildah --root "$work/buildah/root" --runroot "$work/buildah/run" \
        --storage-driver "$BUILDAH_DRIVER" "$@"
}
kln() { KILN_ROOT=$work/kiln "$KILN" "$@"; }

base_file() {
    case "$1" in
        busybox) echo "busybox.tar busybox:latest" ;;
        debian) echo "debian-bookworm.tar.gz debian:bookworm" ;;
        *) echo "diff.sh: unknown base '$1'" >&2; return 1 ;;
    esac
}

# setup [--kiln-only] BASE...: the bases in kiln's store, and the same
# images, byte for byte, in buildah's.
setup() {
    local with_buildah=1
    if [ "${1:-}" = --kiln-only ]; then
        with_buildah=0
        shift
    fi
    mkdir -p "$work/buildah" "$work/kiln" "$work/tmp"
    local b spec file ref
    for b in "$@"; do
        spec=$(base_file "$b")
        file=${spec% *} ref=${spec#* }
        if ! kln inspect "$ref" >/dev/null 2>&1; then
            kln import "$KILN_TEST_FIXTURES/$file" "$ref" >/dev/null
        fi
        if [ "$with_buildah" = 1 ] && ! bah inspect "docker.io/library/$ref" >/dev/null 2>&1; then
            kln push -q "$ref" "oci-archive:$work/tmp/$b.tar:$ref" >/dev/null
            bah pull -q "oci-archive:$work/tmp/$b.tar" >"$work/tmp/$b.id"
            bah tag "$(cat "$work/tmp/$b.id")" "docker.io/library/$ref"
            rm -f "$work/tmp/$b.tar"
        fi
    done
}

prepare_ctx() {
    local dir=$1 ctx=$2
    cp -a "$dir" "$ctx"
    rm -f "$ctx/case.conf" "$ctx/prepare.sh"
    local f
    for f in "${FIXTURES[@]}"; do
        cp "$KILN_TEST_FIXTURES/$f" "$ctx/"
    done
    if [ -f "$dir/prepare.sh" ]; then
        (cd "$ctx" && bash -e "$dir/prepare.sh")
    fi
}

load_case() {
    local dir=$1
    BASES=busybox MODES="range single" ARGS=() IGNORE_CONFIG="" IGNORE_PATHS=() FIXTURES=()
    # buildah leaves empty /etc/hostname, /etc/hosts and /etc/resolv.conf in
    # a RUN's layer when the image has none (its mount points); BuildKit and
    # kiln leave nothing (README.md)
    DEFAULT_IGNORE_PATHS=('^etc/(hostname|hosts|resolv\.conf)$')
    # shellcheck disable=SC1091
    [ ! -f "$dir/case.conf" ] || . "$dir/case.conf"
}

run_case() {
    local dir=$1 name
    name=$(basename "$dir")
    load_case "$dir"
    local buildah_too=1
    if [ -n "${KILN_TEST_MODE:-}" ] && [[ " $MODES " != *" $KILN_TEST_MODE "* ]]; then
        buildah_too=0
    fi
    if [ "$buildah_too" = 1 ]; then
        setup $BASES
    else
        setup --kiln-only $BASES
    fi
    local out=$work/cases/$name
    rm -rf "$out"
    mkdir -p "$out"
    prepare_ctx "$dir" "$out/ctx"
    local tag=localhost/diff-$name:latest
    if ! kln build --progress=plain "${ARGS[@]}" -t "$tag" "$out/ctx" >"$out/kiln.log" 2>&1; then
        echo "kiln build failed:"
        cat "$out/kiln.log"
        return 1
    fi
    if [ "$buildah_too" = 0 ]; then
        # what this mode's buildah cannot build (no subuid range): kiln can
        echo "$name: built by kiln in $KILN_TEST_MODE mode; buildah needs $MODES mode for it"
        return 0
    fi
    kln push -q "$tag" "oci:$out/kiln-oci:img" >/dev/null
    if ! bah build --runtime runc --network host --identity-label=false --format docker \
        --layers --pull=never "${ARGS[@]}" -t "$tag" "$out/ctx" >"$out/buildah.log" 2>&1; then
        echo "buildah build failed:"
        cat "$out/buildah.log"
        return 1
    fi
    # dir: keeps buildah's docker-format config (oci: would drop Healthcheck,
    # OnBuild and Shell)
    bah push -q "$tag" "dir:$out/buildah-dir" >/dev/null 2>&1
    local cargs=(--ignore-config "$IGNORE_CONFIG") p
    for p in "${DEFAULT_IGNORE_PATHS[@]}" "${IGNORE_PATHS[@]}"; do
        cargs+=(--ignore-path "$p")
    done
    python3 "$here/compare.py" "${cargs[@]}" "$out/kiln-oci" "$out/buildah-dir"
}

# Best wall-clock time (ms) of N runs of a command.
best_ms() {
    local n=$1 best=999999 start ms
    shift
    for _ in $(seq "$n"); do
        start=$(date +%s%N)
        "$@" >/dev/null 2>&1
        ms=$((($(date +%s%N) - start) / 1000000))
        [ "$ms" -lt "$best" ] && best=$ms
    done
    echo "$best"
}

bench_case() {
    local dir=$1 name out
    name=$(basename "$dir")
    load_case "$dir"
    setup $BASES
    out=$work/bench/$name
    rm -rf "$out"
    mkdir -p "$out"
    prepare_ctx "$dir" "$out/ctx"
    local tag=localhost/bench-$name:latest
    local bflags=(--runtime runc --network host --identity-label=false --format docker --layers
        --pull=never)
    # first builds, then the cached rebuilds
    kln build -q "${ARGS[@]}" -t "$tag" "$out/ctx" >/dev/null
    bah build -q "${bflags[@]}" "${ARGS[@]}" -t "$tag" "$out/ctx" >/dev/null 2>&1
    local k b
    k=$(best_ms 5 kln build -q "${ARGS[@]}" -t "$tag" "$out/ctx")
    b=$(best_ms 5 bah build -q "${bflags[@]}" "${ARGS[@]}" -t "$tag" "$out/ctx")
    echo "cached rebuild of $name: kiln ${k} ms, buildah ${b} ms (best of 5)"
    if [ -f "$out/ctx/src/main.c" ]; then
        # a one-file edit: the steps from its COPY on run again
        local i ke=999999 be=999999 t
        for i in 1 2 3; do
            echo "edit $i" >>"$out/ctx/src/main.c"
            t=$(best_ms 1 kln build -q "${ARGS[@]}" -t "$tag" "$out/ctx")
            [ "$t" -lt "$ke" ] && ke=$t
            t=$(best_ms 1 bah build -q "${bflags[@]}" "${ARGS[@]}" -t "$tag" "$out/ctx")
            [ "$t" -lt "$be" ] && be=$t
        done
        echo "one-file edit rebuild of $name: kiln ${ke} ms, buildah ${be} ms (best of 3)"
    fi
}

cmd=${1:?usage: diff.sh setup|run|bench WORK ...}
work=${2:?usage: diff.sh setup|run|bench WORK ...}
shift 2
mkdir -p "$work"
work=$(cd "$work" && pwd)
case "$cmd" in
    setup) setup "$@" ;;
    run) run_case "${1:?diff.sh run WORK CASE_DIR}" ;;
    bench) bench_case "${1:?diff.sh bench WORK CASE_DIR}" ;;
    *) echo "diff.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
