#!/bin/bash
# tests/run.sh — run kiln's unit and integration tests; the last line of the
# output is "N passed, N failed[, N skipped]" over all of them, and the exit
# status is non-zero when anything failed.  `make check` calls it; so does
# scripts/test.sh after setting the machine up.  See tests/README.md.
#
# Usage: tests/run.sh [OPTIONS] [FILE.bats...]
#   --unit-only          only the unit tests (tests/unit/test_*.c, built in
#                        $KILN_BUILD/tests/)
#   --integration-only   only the integration tests (tests/integration/*.bats,
#                        or the FILE.bats given)
#   -f, --filter REGEX   only the bats tests whose name matches (bats -f)
#   --user USER          as root: run the integration tests as this test user
#                        only (kiln-range or kiln-single)
#   -j, --jobs           as root: run the two test users' suites side by side
#   --keep               keep the temporary directory (its path is printed)
#   -h, --help
#
# As root, unit tests run as root, except those whose source carries the tag
# `kiln-test: as-users`, which run once as each test user; integration tests
# run once as kiln-range (subordinate id range: range mode) and once as
# kiln-single (no range: single-ID mode).  As anyone else, everything runs
# once as that user, in the mode kiln picks for them.
#
# Environment: KILN_BUILD (build directory, default build), KILN_TEST_FIXTURES
# (default /var/cache/kiln-tests), KILN_CONFORMANCE (default
# ../shared/conformance), KILN_TEST_TIMEOUT (seconds per bats test, default
# 900), KILN_UNIT_TIMEOUT (seconds per unit test binary, default 600).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

build=${KILN_BUILD:-build}
[[ $build == /* ]] || build=$top/$build
fixtures=${KILN_TEST_FIXTURES:-/var/cache/kiln-tests}
conformance=${KILN_CONFORMANCE:-$top/../shared/conformance}
test_users=(kiln-range kiln-single)

do_unit=1 do_integration=1 filter='' only_user='' jobs=0 keep=0
bats_files=()
usage() { sed -n '/^# Usage:/,/^#   -h, --help/p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --unit-only) do_integration=0 ;;
        --integration-only) do_unit=0 ;;
        -f | --filter) filter=${2:?$1 needs a value}; shift ;;
        --user) only_user=${2:?--user needs a value}; shift ;;
        -j | --jobs) jobs=1 ;;
        --keep) keep=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
        *) bats_files+=("$(realpath "$1")") ;;
    esac
    shift
done

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1
if [ -n "$only_user" ]; then
    [ "$is_root" = 1 ] || { echo "run.sh: --user needs root" >&2; exit 2; }
    case "$only_user" in
        kiln-range | kiln-single) test_users=("$only_user") ;;
        *) echo "run.sh: --user: '$only_user' is not a test user (kiln-range, kiln-single)" >&2; exit 2 ;;
    esac
fi
[ ${#bats_files[@]} -gt 0 ] || bats_files=("$top"/tests/integration/*.bats)

passed=0 failed=0 skipped=0

tmp=$(mktemp -d /tmp/kiln-test.XXXXXX) || exit 1
chmod 0755 "$tmp"
failures=$tmp/failures.txt
skips=$tmp/skips.txt
: >"$failures"
: >"$skips"

# Removes the temporary tree.  Range-mode stores hold files owned by
# subordinate ids, which only root (or the user inside its own user namespace)
# can delete.
cleanup() {
    local m
    for m in "$tmp"/u-*/smallfs; do
        mountpoint -q "$m" 2>/dev/null && umount "$m"
    done
    if [ "$keep" = 1 ]; then
        echo "run.sh: kept $tmp"
        return
    fi
    rm -rf "$tmp" 2>/dev/null && return
    if [ "$is_root" = 0 ] && unshare --map-auto --map-root-user rm -rf "$tmp" 2>/dev/null; then
        return
    fi
    echo "run.sh: could not remove all of $tmp" >&2
}

record_failure() { # TITLE, then the details on stdin
    {
        echo "--- $1"
        cat
        echo
    } >>"$failures"
}

# ---- the users tests run as ---------------------------------------------------

# Per-user directories under $tmp: HOME, XDG dirs, TMPDIR, a work directory.
user_dirs() {
    local u=$1 d=$tmp/u-$1
    mkdir -p "$d"/{home,data,config,cache,run,tmp,work}
    chmod 0700 "$d"/{home,data,config,cache,run,tmp,work}
    if [ "$is_root" = 1 ]; then
        chown -R "$u:" "$d"
        # A small file system for the full-disk tests (store_safety.bats).
        mkdir -p "$d/smallfs"
        mountpoint -q "$d/smallfs" ||
            mount -t tmpfs -o "size=64m,mode=0700,uid=$(id -u "$u"),gid=$(id -g "$u")" \
                kiln-smallfs "$d/smallfs"
    fi
    chmod 0755 "$d"
}

mode_of() { # the identity mode kiln should pick for user $1
    local u=$1 uid
    uid=$(id -u "$u")
    if command -v newuidmap >/dev/null && command -v newgidmap >/dev/null &&
        grep -qE "^($u|$uid):" /etc/subuid 2>/dev/null && grep -qE "^($u|$uid):" /etc/subgid 2>/dev/null; then
        echo range
    else
        echo single
    fi
}

# The environment of a test process for user $1: nothing from ours but what
# the tests need, so that no run touches the user's real home.
user_env() {
    local u=$1 d=$tmp/u-$1 v
    echo "HOME=$d/home"
    echo "USER=$u"
    echo "LOGNAME=$u"
    echo "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    echo "LANG=C.UTF-8"
    echo "TMPDIR=$d/tmp"
    echo "XDG_DATA_HOME=$d/data"
    echo "XDG_CONFIG_HOME=$d/config"
    echo "XDG_CACHE_HOME=$d/cache"
    echo "XDG_RUNTIME_DIR=$d/run"
    echo "KILN=$tmp/bin/kiln"
    echo "KILN_TEST_FIXTURES=$fixtures"
    echo "KILN_TEST_HELPERS=$tmp/helpers"
    echo "KILN_TEST_BASES=$d/data/kiln-bases"
    echo "KILN_TEST_MODE=$(mode_of "$u")"
    echo "KILN_TEST_USER=$u"
    if mountpoint -q "$d/smallfs" 2>/dev/null; then echo "KILN_TEST_SMALLFS=$d/smallfs"; fi
    echo "KILN_CONFORMANCE=$tmp/conformance"
    echo "BATS_TEST_TIMEOUT=${KILN_TEST_TIMEOUT:-900}"
    for v in KILN_DEBUG ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
        [ -z "${!v:-}" ] || echo "$v=${!v}"
    done
}

# as_user USER DIR COMMAND... — runs COMMAND in DIR as USER with user_env
# (as root: through runuser; as the user itself: directly).
as_user() {
    local u=$1 dir=$2
    shift 2
    local env_list=()
    mapfile -t env_list < <(user_env "$u")
    if [ "$is_root" = 1 ]; then
        runuser -u "$u" -- env -i "${env_list[@]}" env -C "$dir" "$@"
    else
        env "${env_list[@]}" env -C "$dir" "$@"
    fi
}

check_test_users() {
    local u bad=0
    for u in kiln-range kiln-single; do
        id "$u" >/dev/null 2>&1 || { echo "run.sh: test user '$u' is missing" >&2; bad=1; }
    done
    [ "$bad" = 0 ] || return 1
    if [ "$(mode_of kiln-range)" != range ]; then
        echo "run.sh: kiln-range has no /etc/subuid and /etc/subgid range (or newuidmap is missing)" >&2
        bad=1
    fi
    if grep -qE "^(kiln-single|$(id -u kiln-single)):" /etc/subuid /etc/subgid 2>/dev/null; then
        echo "run.sh: kiln-single must have no /etc/subuid or /etc/subgid entry" >&2
        bad=1
    fi
    [ "$bad" = 0 ] || echo "run.sh: scripts/test.sh sets the test users up" >&2
    return "$bad"
}

# ---- what the users get to read ------------------------------------------------

# Everything a test process reads is copied under $tmp: the users may not be
# able to read the checkout.
stage() {
    mkdir -p "$tmp/bin" "$tmp/helpers" "$tmp/unit" "$tmp/tests"
    if [ "$do_integration" = 1 ]; then
        if [ ! -x "$build/kiln" ]; then
            echo "run.sh: $build/kiln is missing: run make" >&2
            return 1
        fi
        cp "$build/kiln" "$tmp/bin/kiln"
        cp -r "$top/tests/integration" "$tmp/tests/integration"
        # support files the bats files load (registry scripts, ...)
        local d
        for d in "$top"/tests/*/; do
            case ${d%/} in */unit | */fuzz | */bench | */integration) continue ;; esac
            cp -r "${d%/}" "$tmp/tests/"
        done
        local f
        for f in "${bats_files[@]}"; do
            [ -f "$f" ] || { echo "run.sh: no such test file: $f" >&2; return 1; }
            [[ $f == "$top"/tests/integration/* ]] || cp "$f" "$tmp/tests/integration/"
        done
    fi
    if compgen -G "$build/tests/helpers/*" >/dev/null; then
        cp "$build"/tests/helpers/* "$tmp/helpers/"
    fi
    if [ -d "$conformance" ]; then
        cp -r "$conformance" "$tmp/conformance"
    elif [ "$do_unit" = 1 ]; then
        echo "run.sh: no conformance data at $conformance: the parser, expansion and" \
            ".dockerignore unit tests read it there (beside the checkout, or KILN_CONFORMANCE=DIR)" \
            "and will fail" >&2
    fi
    # The examples, where a bats file finds them in a checkout
    # ($BATS_TEST_DIRNAME/../../examples).
    [ ! -d "$top/examples" ] || cp -r "$top/examples" "$tmp/examples"
    # The benchmark, for bench.bats's smoke run ($BATS_TEST_DIRNAME/../../bench).
    [ ! -d "$top/bench" ] || cp -r "$top/bench" "$tmp/bench"
    chmod -R a+rX "$tmp"
}

# ---- unit tests ------------------------------------------------------------------

# A unit test binary ends its output with "N passed, N failed[, N skipped]".
# No such line, or a non-zero exit with no failure counted (a crash, a
# sanitizer report at exit), counts as one failure.
count_unit() { # TITLE LOG STATUS SECONDS
    local title=$1 log=$2 rc=$3 secs=$4 line p f s=0
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "unit  $title: no result line, exit status $rc (${secs}s)"
        failed=$((failed + 1))
        record_failure "$title: exit status $rc, no result line" <"$log"
        return
    fi
    p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
    [[ $line == *skipped ]] && s=$(sed -E 's/.*, ([0-9]+) skipped$/\1/' <<<"$line")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        line="$line, but exit status $rc"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    echo "unit  $title: $line (${secs}s)"
    [ "$f" -eq 0 ] || record_failure "$title: $line" <"$log"
    grep -E '^SKIP ' "$log" | sed "s|^|$title: |" >>"$skips"
}

run_units() {
    local bin name src u log rc start ns
    for src in "$top"/tests/unit/test_*.c; do
        [ -f "$src" ] || continue
        name=${src##*/}
        name=${name%.c}
        bin=$build/tests/$name
        if [ ! -x "$bin" ]; then
            echo "unit  $name: not built"
            failed=$((failed + 1))
            echo "--- $name: $bin is missing: run make unit" >>"$failures"
            continue
        fi
        ns=0
        grep -q 'kiln-test: as-users' "$src" && ns=1
        if [ "$ns" = 1 ] && [ "$is_root" = 1 ]; then
            cp "$bin" "$tmp/unit/$name"
            chmod 0755 "$tmp/unit/$name"
            for u in "${test_users[@]}"; do
                log=$tmp/unit-$name-$u.log
                start=$SECONDS
                as_user "$u" "$tmp/u-$u/work" timeout -k 10 "${KILN_UNIT_TIMEOUT:-600}" \
                    "$tmp/unit/$name" >"$log" 2>&1
                rc=$?
                count_unit "$name [$u]" "$log" "$rc" $((SECONDS - start))
            done
        else
            log=$tmp/unit-$name.log
            start=$SECONDS
            timeout -k 10 "${KILN_UNIT_TIMEOUT:-600}" "$bin" >"$log" 2>&1
            rc=$?
            count_unit "$name" "$log" "$rc" $((SECONDS - start))
        fi
    done
}

# ---- integration tests ---------------------------------------------------------------

# Runs the bats files as user $1 (TAP into $tmp/bats-USER.tap), printing
# each result line as it comes.
run_bats() {
    local u=$1 args=(--tap --no-tempdir-cleanup) f files=()
    [ -z "$filter" ] || args+=(-f "$filter")
    for f in "${bats_files[@]}"; do
        files+=("$tmp/tests/integration/${f##*/}")
    done
    as_user "$u" "$tmp/tests/integration" \
        timeout -k 30 "${KILN_SUITE_TIMEOUT:-3600}" bats "${args[@]}" "${files[@]}" \
        2>"$tmp/bats-$u.err" | tee "$tmp/bats-$u.tap" |
        grep --line-buffered -E '^(ok|not ok) ' | sed -u "s/^/[$u] /"
    echo "${PIPESTATUS[0]}" >"$tmp/bats-$u.rc"
}

# Counts a user's TAP: "ok", "not ok" (with the "#" lines after it), "ok ... #
# skip"; tests the plan announced but that never reported (a setup_file
# failure, a killed run) count as failed, and so does a bats failure without
# any failed test.
count_bats() {
    local u=$1 tap=$tmp/bats-$1.tap rc plan p f s seen
    rc=$(cat "$tmp/bats-$u.rc" 2>/dev/null || echo 1)
    read -r plan p f s < <(awk '
        /^1\.\.[0-9]+$/ { plan = substr($0, 4) }
        /^ok .* # skip/ { s++; next }
        /^ok / { p++ }
        /^not ok / { f++ }
        END { print plan + 0, p + 0, f + 0, s + 0 }' "$tap")
    seen=$((p + f + s))
    awk -v u="$u" '
        /^(ok|not ok) / { inblock = 0 }
        /^not ok / { inblock = 1; print "--- [" u "] " substr($0, 8); next }
        inblock && /^#/ { print "  " substr($0, 3); next }' "$tap" >>"$failures"
    grep -E '^ok .* # skip' "$tap" | sed -E "s/^ok [0-9]+ /[$u] /" >>"$skips"
    if [ "$plan" -gt "$seen" ]; then
        echo "--- [$u] $((plan - seen)) of $plan tests never reported (bats exit status $rc)" >>"$failures"
        f=$((f + plan - seen))
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        {
            echo "--- [$u] bats exited with status $rc"
            sed 's/^/  /' "$tmp/bats-$u.err"
        } >>"$failures"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    echo "integration [$u]: $p passed, $f failed$([ "$s" -eq 0 ] || echo ", $s skipped")"
}

run_integration() {
    local users=() u
    if [ "$is_root" = 1 ]; then
        users=("${test_users[@]}")
    else
        users=("$(id -un)")
        echo "run.sh: not root: integration tests run once, as $(id -un), in $(mode_of "$(id -un)") mode" \
            "(as root they run as kiln-range and as kiln-single)"
    fi
    [ -r "$fixtures/busybox.tar" ] ||
        echo "run.sh: no fixtures in $fixtures: tests that need base images will fail (scripts/test.sh makes them)"
    for u in "${users[@]}"; do
        user_dirs "$u"
    done
    if [ "$jobs" = 1 ] && [ ${#users[@]} -gt 1 ]; then
        echo "== integration: ${users[*]} side by side"
        for u in "${users[@]}"; do
            run_bats "$u" &
        done
        wait
    else
        for u in "${users[@]}"; do
            echo "== integration as $u ($(mode_of "$u") mode)"
            run_bats "$u"
        done
    fi
    for u in "${users[@]}"; do
        count_bats "$u"
    done
}

# ---- main ----------------------------------------------------------------------------

main() {
    local start=$SECONDS
    if [ "$is_root" = 1 ] && ! check_test_users; then
        failed=$((failed + 1))
        return
    fi
    if ! stage; then
        failed=$((failed + 1))
        return
    fi
    if [ "$do_unit" = 1 ]; then
        echo "== unit tests"
        if [ "$is_root" = 1 ]; then
            for u in "${test_users[@]}"; do user_dirs "$u"; done
        else
            user_dirs "$(id -un)"
        fi
        run_units
    fi
    [ "$do_integration" = 0 ] || run_integration
    if [ -s "$skips" ]; then
        echo "== skipped"
        cat "$skips"
    fi
    if [ -s "$failures" ]; then
        echo "== failures"
        cat "$failures"
    fi
    echo "== tests took $((SECONDS - start))s"
}

trap 'echo "run.sh: interrupted"; cleanup; exit 130' INT TERM
main
cleanup
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
