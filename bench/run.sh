#!/bin/bash
# bench/run.sh — times kiln beside buildah and ch-image on the scenarios in
# bench/scenarios, as unprivileged users, and prints a table of medians
# with kiln's speed-up over each builder, peak memory, and the floors
# (tar, pigz, zstd, sha256sum, cp -a on the same data).  See bench/README.md.
#
# Usage: bench/run.sh [OPTIONS]
#   -n RUNS         runs of each builder on each scenario (default 3)
#   -s "SCEN ..."   scenarios (default: all but the *-cached extras)
#   -b "BUILDER ..."  builders (default: every one that is installed):
#                   kiln          kiln as $BENCH_USER (range mode when it has
#                                 a subordinate id range)
#                   kiln-single   kiln as $BENCH_SINGLE_USER (no range:
#                                 single-ID mode); not root: --userns single
#                   buildah-overlay, buildah-fuse   buildah with kernel
#                                 overlayfs / fuse-overlayfs
#                   ch-image      Charliecloud's builder
#   -o DIR          where results go (default $BENCH_WORK/results/DATE)
#   --no-floors     skip the floor measurements
#   --smoke         one run of kiln on steps, no floors, no settling (the
#                   test suite's check that this script works)
#   -h, --help
#
# Run as root: each builder runs as an unprivileged user through runuser.
# Run as anyone else, everything runs as that user (kiln-single then means
# `kiln --userns single`).
#
# Environment: KILN (the kiln binary; default build/kiln of this checkout),
# BENCH_WORK (scratch: contexts, stores, results; default
# /var/tmp/kiln-bench), BENCH_USER (kiln-range), BENCH_SINGLE_USER
# (kiln-single), BENCH_SETTLE (seconds to wait after wiping a big scenario's
# state, default 65), BENCH_EXPORT (1: also time `buildah push` to an OCI
# layout, the compression buildah defers; default 1), KILN_TEST_FIXTURES
# (base image tarballs, default /var/cache/kiln-tests).
#
# Each run: fresh state (store, HOME, XDG dirs), base image imported
# (untimed), for MODE=cached|edit an untimed first build, then the timed
# build: wall time of the build command, peak RSS from /usr/bin/time.  Runs
# alternate builders: run 1 of every builder, then run 2, ...  One line per
# run goes to DIR/raw.txt; DIR/results.md is the summary (bench/summarize.py).
set -uo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$BENCH/.." && pwd)
SCEN_DIR=$BENCH/scenarios
ALL_BUILDERS="kiln kiln-single buildah-overlay buildah-fuse ch-image"
DEFAULT_SCENS="steps steps-cached thirty-cached edit-rebuild multistage multistage-target touch-busybox touch-debian debian-dpkg-only debian-dpkg bigcontext bigrun"

die() { echo "bench: $*" >&2; exit 2; }
usage() { sed -n '/^# Usage:/,/^#   -h, --help/p' "$0" | sed 's/^# \{0,1\}//'; }

runs=3 scens=$DEFAULT_SCENS builders='' out='' floors=1 smoke=0
while [ $# -gt 0 ]; do
    case "$1" in
        -n) runs=${2:?-n needs a value}; shift ;;
        -s) scens=${2:?-s needs a value}; shift ;;
        -b) builders=${2:?-b needs a value}; shift ;;
        -o) out=${2:?-o needs a value}; shift ;;
        --no-floors) floors=0 ;;
        --smoke) smoke=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
    shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "-n: expected a positive number, got '$runs'"

WORK=${BENCH_WORK:-/var/tmp/kiln-bench}
SETTLE=${BENCH_SETTLE:-65}
EXPORT=${BENCH_EXPORT:-1}
FIXTURES=${KILN_TEST_FIXTURES:-/var/cache/kiln-tests}
KILN_BIN=${KILN:-$TOP/build/kiln}
[ -x "$KILN_BIN" ] || die "no kiln binary at '$KILN_BIN' (run make, or set KILN)"
if [ "$smoke" = 1 ]; then
    runs=1 scens=steps floors=0 SETTLE=0 EXPORT=0
    [ -n "$builders" ] || builders=kiln
fi

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1
if [ "$IS_ROOT" = 1 ]; then
    RUSER=${BENCH_USER:-kiln-range}
    SUSER=${BENCH_SINGLE_USER:-kiln-single}
    id "$RUSER" >/dev/null 2>&1 || die "no user '$RUSER' (set BENCH_USER)"
    id "$SUSER" >/dev/null 2>&1 || die "no user '$SUSER' (set BENCH_SINGLE_USER)"
else
    RUSER=$(id -un) SUSER=$(id -un)
fi

have() { command -v "$1" >/dev/null 2>&1; }
installed() {
    case $1 in
        kiln | kiln-single) return 0 ;;
        buildah-overlay | buildah-fuse) have buildah ;;
        ch-image) have ch-image && have ch-run ;;
        *) return 1 ;;
    esac
}
if [ -z "$builders" ]; then
    for b in $ALL_BUILDERS; do installed "$b" && builders+="$b "; done
fi
for b in $builders; do
    case " $ALL_BUILDERS " in *" $b "*) ;; *) die "unknown builder '$b' ($ALL_BUILDERS)" ;; esac
    installed "$b" || die "builder '$b' is not installed"
done
for s in $scens; do
    [ -f "$SCEN_DIR/$s/scenario.conf" ] || die "unknown scenario '$s' (see $SCEN_DIR)"
done

mkdir -p "$WORK"
chmod 0755 "$WORK"
[ -n "$out" ] || out=$WORK/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
RAW=$out/raw.txt
LOGS=$out/logs
mkdir -p "$LOGS"
: >"$RAW"

# ---- set-up: binary, base images, contexts ---------------------------------

# The users may not read this checkout: they get their own copy of kiln.
mkdir -p "$WORK/bin"
cp "$KILN_BIN" "$WORK/bin/kiln.new" && mv "$WORK/bin/kiln.new" "$WORK/bin/kiln"
chmod 0755 "$WORK/bin" "$WORK/bin/kiln"
KILN=$WORK/bin/kiln

declare -A BASE_TAR=([busybox]=busybox.tar [debian]=debian-bookworm.tar.gz)
declare -A BASE_REF=([busybox]=busybox:latest [debian]=debian:bookworm)
needed_bases() {
    local s
    for s in $scens; do
        # shellcheck disable=SC1090
        (BASE='' && . "$SCEN_DIR/$s/scenario.conf" && echo "$BASE")
    done | sort -u
}
setup_bases() {
    local b names=()
    for b in $(needed_bases); do
        case $b in busybox) names+=(busybox) ;; debian) names+=(debian) ;; *) die "bad BASE '$b'" ;; esac
    done
    if [ "$IS_ROOT" = 1 ]; then
        "$TOP/tests/fixtures/make-fixtures.sh" --dir "$FIXTURES" "${names[@]}" >&2 ||
            die "making the base images failed"
    fi
    for b in $(needed_bases); do
        [ -r "$FIXTURES/${BASE_TAR[$b]}" ] ||
            die "missing $FIXTURES/${BASE_TAR[$b]} (as root: tests/fixtures/make-fixtures.sh)"
    done
    # buildah reads the bases from an OCI layout: a kiln store is one.
    if [[ " $builders " == *" buildah-"* ]]; then
        local layout=$WORK/bases
        for b in $(needed_bases); do
            if ! grep -q "\"${BASE_REF[$b]}\"" "$layout/index.json" 2>/dev/null; then
                KILN_ROOT=$layout "$KILN" import "$FIXTURES/${BASE_TAR[$b]}" "${BASE_REF[$b]}" \
                    >/dev/null || die "importing $b into $layout failed"
            fi
        done
        chmod 0755 "$layout" "$layout/blobs" "$layout/blobs/sha256"
        chmod 0644 "$layout/index.json" "$layout/oci-layout" "$layout"/blobs/sha256/*
    fi
}

# Contexts are made once by the scenario's gen.sh, again when it changes.
ctx_dir() {
    local gen=$SCEN_DIR/$1/gen.sh dir=$WORK/ctx/$1 key
    [ -f "$gen" ] || die "scenario $1 has no gen.sh"
    key=$(sha256sum <"$gen" | cut -c1-16)
    if [ ! -f "$dir.key" ] || [ "$(cat "$dir.key")" != "$key" ]; then
        rm -rf "$dir" "$dir.key"
        mkdir -p "$dir"
        sh "$gen" "$dir" >&2 || die "making the context of $1 failed"
        chmod -R a+rX "$dir"
        echo "$key" >"$dir.key"
    fi
    echo "$dir"
}

# ---- running as the users ---------------------------------------------------

user_of() { [ "$1" = kiln-single ] && echo "$SUSER" || echo "$RUSER"; }

# as_user USER STATE CMD... — CMD as USER with HOME and XDG dirs in STATE.
as_user() {
    local u=$1 st=$2 uid
    shift 2
    uid=$(id -u "$u")
    local env=(HOME="$st/home" USER="$u" LOGNAME="$u" LANG=C.UTF-8
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        XDG_RUNTIME_DIR="/run/user/$uid" XDG_DATA_HOME="$st/data"
        XDG_CONFIG_HOME="$st/config" XDG_CACHE_HOME="$st/cache" TMPDIR="$st/tmp"
        GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
        GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost)
    if [ "$IS_ROOT" = 1 ]; then
        runuser -u "$u" -- env -i "${env[@]}" "$@"
    else
        env "${env[@]}" "$@"
    fi
}

# The per-builder commands.  $ST is the run's state directory.
b_cmd() { # BUILDER -> the builder's base command line, one word a line
    local b=$1
    case $b in
        kiln) printf '%s\n' "$KILN" --root "$ST/store" ;;
        kiln-single)
            printf '%s\n' "$KILN" --root "$ST/store"
            [ "$IS_ROOT" = 1 ] || echo "--userns=single"
            ;;
        buildah-overlay) printf '%s\n' buildah --root "$ST/store" --runroot "$ST/runroot" --storage-driver overlay ;;
        buildah-fuse)
            printf '%s\n' buildah --root "$ST/store" --runroot "$ST/runroot" --storage-driver overlay \
                --storage-opt overlay.mount_program=/usr/bin/fuse-overlayfs
            ;;
        ch-image) printf '%s\n' ch-image -s "$ST/ch" ;;
    esac
}

b_import() { # BUILDER BASE -> echoes the reference builds use
    local b=$1 base=$2 cmd id
    mapfile -t cmd < <(b_cmd "$b")
    case $b in
        kiln*)
            as_user "$U" "$ST" "${cmd[@]}" import "$FIXTURES/${BASE_TAR[$base]}" "${BASE_REF[$base]}" >&2 || return 1
            echo "${BASE_REF[$base]}"
            ;;
        buildah-*)
            id=$(as_user "$U" "$ST" "${cmd[@]}" pull -q "oci:$WORK/bases:${BASE_REF[$base]}") || return 1
            as_user "$U" "$ST" "${cmd[@]}" tag "$id" "localhost/$base" >&2 || return 1
            echo "localhost/$base"
            ;;
        ch-image)
            as_user "$U" "$ST" "${cmd[@]}" import "$FIXTURES/${BASE_TAR[$base]}" "$base" >&2 || return 1
            echo "$base"
            ;;
    esac
}

b_build() { # BUILDER REF CTXDIR
    local b=$1 ref=$2 ctx=$3 cmd
    mapfile -t cmd < <(b_cmd "$b")
    local t=()
    [ -n "$TARGET" ] && t=(--target "$TARGET")
    case $b in
        kiln*) as_user "$U" "$ST" "${TIME[@]}" "${cmd[@]}" build --progress=plain --build-arg "BASE=$ref" \
            "${t[@]}" -t "bench-$SCEN" -f "$DF" "$ctx" ;;
        buildah-*) as_user "$U" "$ST" "${TIME[@]}" "${cmd[@]}" build --layers --pull=never --runtime runc \
            --network host --build-arg "BASE=$ref" "${t[@]}" -t "localhost/bench-$SCEN" -f "$DF" "$ctx" ;;
        ch-image)
            # ch-image 0.31 has no --target: not a failure of the run
            [ -z "$TARGET" ] || { echo "ch-image: no --target option" >&2; return 3; }
            as_user "$U" "$ST" "${TIME[@]}" "${cmd[@]}" build --build-arg "BASE=$ref" -t "bench-$SCEN" \
                -f "$DF" "$ctx"
            ;;
    esac
}

b_export() { # buildah only: the compression it leaves for push
    local b=$1 cmd
    mapfile -t cmd < <(b_cmd "$b")
    as_user "$U" "$ST" "${cmd[@]}" push -q --format oci "localhost/bench-$SCEN" "oci:$ST/export:latest"
}

# Compressed size of the layers a kiln build added (bytes), read from its
# store's OCI layout.
kiln_layer_bytes() {
    /usr/bin/python3 "$BENCH/summarize.py" --layer-bytes "$ST/store" "bench-$SCEN" "${BASE_REF[$BASE]}" 2>/dev/null ||
        echo NA
}

wipe() {
    [ -n "${ST:-}" ] && [ -d "$ST" ] || return 0
    # mounts live in the builders' own namespaces; none should be left here
    grep -F " $ST/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$ST" 2>/dev/null || { [ "$IS_ROOT" = 0 ] && unshare --map-auto --map-root-user rm -rf "$ST"; }
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# run_one BUILDER SCENARIO RUN — appends one line to raw.txt.
run_one() {
    local b=$1 rep=$3
    SCEN=$2
    U=$(user_of "$b")
    BASE='' CTX=$SCEN DOCKERFILE=$SCEN/Dockerfile MODE=cold TARGET='' BIG=0
    mutate() { :; }
    # shellcheck disable=SC1090
    . "$SCEN_DIR/$SCEN/scenario.conf"
    DF=$SCEN_DIR/$DOCKERFILE
    local ctx log line status=ok secs=NA rss=NA exp=NA bytes=NA err=''
    ctx=$(ctx_dir "$CTX") || exit 2
    ST=$WORK/state/$b
    wipe
    local uid
    uid=$(id -u "$U")
    mkdir -p "$ST"/{home,data,config,cache,tmp}
    if [ "$IS_ROOT" = 1 ]; then
        chown -R "$U:" "$ST"
        install -d -o "$U" -g "$(id -g "$U")" -m 0700 "/run/user/$uid"
    fi
    chmod 0755 "$ST"
    log=$LOGS/$SCEN.$b.$rep.log
    TIME=(/usr/bin/time -f 'bench-rss-kb %M' -o "$ST/tmp/rss")
    {
        echo "# $b $SCEN run $rep: $DESC ($(date -Is))"
        local ref
        if ! ref=$(b_import "$b" "$BASE"); then
            status=fail err="base import failed"
        fi
        if [ "$status" = ok ] && [ "$MODE" = edit ]; then
            cp -a "$ctx" "$ST/ctx" && chown -R "$U:" "$ST/ctx" 2>/dev/null
            ctx=$ST/ctx
        fi
        if [ "$status" = ok ] && [ "$MODE" != cold ]; then
            echo "# ---- first build (untimed)"
            b_build "$b" "$ref" "$ctx" || status=fail err="first build failed"
        fi
        [ "$status" = ok ] && [ "$MODE" = edit ] && mutate "$ctx"
        if [ "$status" = ok ]; then
            echo "# ---- timed build"
            sync
            local t0 t1
            t0=$(now)
            b_build "$b" "$ref" "$ctx"
            case $? in
                0) ;;
                3) status=unsupported err="the builder has no way to do this" ;;
                *) status=fail err="build failed" ;;
            esac
            t1=$(now)
            secs=$(elapsed "$t0" "$t1")
            rss=$(awk '/^bench-rss-kb/ { print $2 }' "$ST/tmp/rss" 2>/dev/null)
            echo "# ---- $status in $secs s, peak RSS ${rss:-?} kB"
        fi
        if [ "$status" = ok ] && [ "$EXPORT" = 1 ] && [[ $b == buildah-* ]]; then
            sync
            local e0
            e0=$(now)
            if b_export "$b"; then exp=$(elapsed "$e0" "$(now)"); else exp=fail; fi
            echo "# ---- push to an OCI layout: $exp s"
        fi
    } >"$log" 2>&1
    local payload=NA
    if [[ $b == kiln* ]] && [ "$status" = ok ]; then
        bytes=$(kiln_layer_bytes)
        # the time of the last line a RUN printed, from the start of its
        # step: in bigrun, the payload's own duration inside kiln
        payload=$(awk '/^# ---- timed build/ { t = 1 } t && /^#[0-9]+ [0-9]+\.[0-9]+ / { if ($2 > m) m = $2 } END { print m ? m : "NA" }' "$log")
    fi
    line="run=$rep builder=$b scenario=$SCEN status=$status seconds=$secs rss_kb=${rss:-NA} push_s=$exp layer_bytes=$bytes run_output_s=$payload"
    [ -n "$err" ] && line+=" err=\"$err; see $log\""
    echo "$line" | tee -a "$RAW"
    wipe
    if [ "$BIG" = 1 ] && [ "$SETTLE" -gt 0 ]; then
        # Give the file system the time to forget the inodes just freed: on
        # ext4 without a journal, creating files right after removing a big
        # tree is quadratic (see README); no builder should pay for the
        # previous one's state.
        sync
        sleep "$SETTLE"
    fi
}

# ---- floors -----------------------------------------------------------------

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# timed RUNS CMD — median wall seconds of `bash -c CMD`
timed() {
    local n=$1 i t0
    shift
    for ((i = 0; i < n; i++)); do
        t0=$(now)
        bash -c "$*" >/dev/null 2>&1
        elapsed "$t0" "$(now)"
        echo
    done | median
}
floor_row() { # DATA OPERATION SECONDS INPUT_BYTES [OUTPUT_BYTES]
    echo "floor data=$1 op=\"$2\" seconds=$3 in_bytes=$4 out_bytes=${5:-NA}" | tee -a "$RAW"
}
run_floors() {
    local f=$WORK/floor set dir runs parent base tarf in outb
    rm -rf "$f"
    mkdir -p "$f"
    echo "# floors" >&2
    # the steps context: what a full cache hit has to look at
    if [[ " $scens " == *" steps-cached "* ]]; then
        dir=$(ctx_dir steps)
        floor_row steps "stat walk of the context (find -printf)" \
            "$(timed 5 "find '$dir' -printf '%s %m %T@ %p\n'")" "$(du -sb "$dir" | cut -f1)"
    fi
    local sets=()
    [[ " $scens " == *" bigcontext "* ]] && sets+=(bigcontext)
    [[ " $scens " == *" bigrun "* ]] && sets+=(bigrun)
    for set in "${sets[@]}"; do
        if [ $set = bigcontext ]; then
            dir=$(ctx_dir bigcontext)/data runs=3
        else
            # the payload of bigrun, run on the host: its own cost
            (. "$SCEN_DIR/bigrun/scenario.conf" && declare -f payload >/dev/null) || continue
            mkdir -p "$f/bigrun-root"
            sync
            local t0 t1
            t0=$(now)
            (. "$SCEN_DIR/bigrun/scenario.conf" && payload "$f/bigrun-root")
            t1=$(now)
            dir=$f/bigrun-root runs=1
            floor_row bigrun "RUN payload on the host (busybox sh)" "$(elapsed "$t0" "$t1")" \
                "$(du -sb "$dir" | cut -f1)"
        fi
        parent=$(dirname "$dir") base=$(basename "$dir")
        in=$(du -sb --apparent-size "$dir" | cut -f1)
        tarf=$f/$set.tar
        tar -C "$parent" -cf "$tarf" "$base"
        local tb
        tb=$(stat -c %s "$tarf")
        floor_row $set "tar c (tree -> pipe)" "$(timed $runs "tar -C '$parent' -cf - '$base' | cat")" "$tb"
        floor_row $set "sha256sum of the tar" "$(timed $runs "sha256sum '$tarf'")" "$tb"
        outb=$(gzip -6 -c "$tarf" | wc -c)
        floor_row $set "gzip -6 (1 thread)" "$(timed 1 "gzip -6 -c '$tarf'")" "$tb" "$outb"
        if have pigz; then
            outb=$(pigz -6 -c "$tarf" | wc -c)
            floor_row $set "pigz -6 ($(nproc) threads)" "$(timed $runs "pigz -6 -c '$tarf'")" "$tb" "$outb"
            floor_row $set "tar -> sha256 -> pigz -6 -> sha256" \
                "$(timed $runs "tar -C '$parent' -cf - '$base' | tee >(sha256sum >/dev/null) | pigz -6 | sha256sum")" "$tb"
        fi
        if have zstd; then
            outb=$(zstd -q -3 -T0 -c "$tarf" | wc -c)
            floor_row $set "zstd -3 -T0" "$(timed $runs "zstd -q -3 -T0 -c '$tarf'")" "$tb" "$outb"
            floor_row $set "tar -> sha256 -> zstd -3 -T0 -> sha256" \
                "$(timed $runs "tar -C '$parent' -cf - '$base' | tee >(sha256sum >/dev/null) | zstd -q -3 -T0 | sha256sum")" "$tb"
        fi
        floor_row $set "cp -a of the tree (no sync)" \
            "$(timed $runs "rm -rf '$f/cp'; sync; cp -a '$dir' '$f/cp'")" "$in"
        # the same into a directory marked chattr +T, as kiln's tmp/ is
        rm -rf "$f/cp"
        mkdir -p "$f/top"
        if chattr +T "$f/top" 2>/dev/null; then
            floor_row $set "cp -a into a chattr +T directory (no sync)" \
                "$(timed $runs "rm -rf '$f/top/cp'; sync; cp -a '$dir' '$f/top/cp'")" "$in"
        fi
        rm -rf "$f/cp" "$f/top" "$tarf"
    done
    rm -rf "$f"
}

# ---- main -------------------------------------------------------------------

{
    echo "meta date=\"$(date -Is)\""
    echo "meta machine=\"$(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")\""
    echo "meta fs=\"$WORK on $(findmnt -no FSTYPE,OPTIONS -T "$WORK" | tr -s ' ' | cut -c1-60)\""
    echo "meta kiln=\"$("$KILN_BIN" --version 2>&1 | head -1)\""
    have buildah && echo "meta buildah=\"$(buildah --version 2>&1 | head -1)\""
    # ch-image is Python: run it with the system's python3, not a PATH's
    have ch-image && echo "meta ch-image=\"ch-image $(env -i USER=root PATH=/usr/bin:/bin ch-image --version 2>&1 | tail -1)\""
    have pigz && echo "meta pigz=\"$(pigz --version 2>&1 | head -1)\""
    have zstd && echo "meta zstd=\"$(zstd --version 2>&1 | head -1)\""
    echo "meta runs=$runs settle=$SETTLE users=\"$RUSER $SUSER\" builders=\"$builders\""
    echo "meta load_start=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
} >>"$RAW"

setup_bases
echo "bench: $runs run(s) of [$builders] on [$scens]; results in $out" >&2
for s in $scens; do
    for ((rep = 1; rep <= runs; rep++)); do
        for b in $builders; do
            run_one "$b" "$s" "$rep"
        done
    done
done
[ "$floors" = 1 ] && run_floors
echo "meta load_end=\"$(cut -d' ' -f1-3 /proc/loadavg)\"" >>"$RAW"

/usr/bin/python3 "$BENCH/summarize.py" "$RAW" >"$out/results.md" || die "summarize failed"
cat "$out/results.md"
