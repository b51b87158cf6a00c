# helpers.bash — shared setup and assertions for kiln's integration tests.
# Every .bats file starts with `load helpers`.  See tests/README.md.
#
# Environment (tests/run.sh sets all of it; the defaults let a developer run
# `bats tests/integration/FILE.bats` from the checkout):
#   KILN                absolute path of the kiln binary      (build/kiln)
#   KILN_TEST_FIXTURES  base image tarballs, .deb             (/var/cache/kiln-tests)
#   KILN_TEST_HELPERS   static helper programs                (build/tests/helpers)
#   KILN_TEST_BASES     per-user store holding the imported base images
#                       (run.sh: $XDG_DATA_HOME/kiln-bases; else in $BATS_RUN_TMPDIR)
#   KILN_TEST_MODE      identity mode kiln should pick here: range | single
#                       (worked out from /etc/subuid, /etc/subgid when unset)
#   KILN_TEST_STORE     the store `kiln` uses (default: one per .bats file)
# shellcheck shell=bash

_kiln_top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
: "${KILN:=$_kiln_top/build/kiln}"
: "${KILN_TEST_FIXTURES:=/var/cache/kiln-tests}"
: "${KILN_TEST_HELPERS:=$_kiln_top/build/tests/helpers}"
: "${KILN_TEST_BASES:=$BATS_RUN_TMPDIR/bases}"
OCISTORE=$BATS_TEST_DIRNAME/ocistore.py

# ---- failing with a message ---------------------------------------------------

# fail MESSAGE... — fails the test, printing MESSAGE.
fail() {
    printf '%s\n' "$@" >&2
    return 1
}

# The command, status and output of the last `run`, indented, for failure
# messages ($stderr too after `run --separate-stderr`).
_kiln_show_output() {
    printf 'command: %s\nstatus: %s\n' "${BATS_RUN_COMMAND:-?}" "${status:-?}"
    printf '%s:\n' "$([ -n "${stderr+x}" ] && echo stdout || echo output)"
    printf '%s\n' "${output:-}" | sed 's/^/  | /'
    if [ -n "${stderr+x}" ]; then
        printf 'stderr:\n'
        printf '%s\n' "$stderr" | sed 's/^/  | /'
    fi
}

# ---- running kiln ----------------------------------------------------------------

# The store `kiln` uses: $KILN_TEST_STORE, else one per .bats file.
kiln_store() {
    echo "${KILN_TEST_STORE:-$BATS_FILE_TMPDIR/store}"
}

# kiln ARGS... — the kiln under test, on this file's store.
kiln() {
    KILN_ROOT=$(kiln_store) "$KILN" "$@"
}

# True when the last `run` looks like a crash rather than an error kiln
# reported: killed by SIGILL, SIGABRT, SIGBUS, SIGFPE or SIGSEGV, or a
# sanitizer report (ASan/UBSan builds).
_kiln_crashed() {
    case "${status:-0}" in 132 | 134 | 135 | 136 | 139) return 0 ;; esac
    [[ "${output:-}" == *"ERROR: AddressSanitizer"* || "${output:-}" == *"ERROR: LeakSanitizer"* ]] ||
        [[ "${output:-}" =~ [^[:space:]]+:[0-9]+:[0-9]+:\ runtime\ error: ]]
}

# kiln_ok ARGS... — runs `kiln ARGS`; fails unless it exits 0.  $output and
# $status are those of the run.
kiln_ok() {
    run kiln "$@"
    if [ "$status" -ne 0 ] || _kiln_crashed; then
        fail "kiln $* failed" "$(_kiln_show_output)"
    fi
}

# kiln_fails [--status N] ARGS... — runs `kiln ARGS`; fails unless kiln exits
# non-zero (with status N when given) without crashing.
kiln_fails() {
    local want=
    if [ "${1:-}" = --status ]; then
        want=$2
        shift 2
    fi
    run kiln "$@"
    if [ "$status" -eq 0 ]; then
        fail "kiln $* succeeded; it should have failed" "$(_kiln_show_output)"
    elif _kiln_crashed; then
        fail "kiln $* crashed" "$(_kiln_show_output)"
    elif [ -n "$want" ] && [ "$status" -ne "$want" ]; then
        fail "kiln $* exited with status $status, expected $want" "$(_kiln_show_output)"
    fi
}

# build_ok ARGS...            = kiln_ok build ARGS...
# build_fails [--status N] ARGS...
build_ok() { kiln_ok build "$@"; }
build_fails() {
    if [ "${1:-}" = --status ]; then
        kiln_fails --status "$2" build "${@:3}"
    else
        kiln_fails build "$@"
    fi
}

# ---- build contexts ------------------------------------------------------------

# make_context — a fresh context directory (printed) whose Dockerfile is stdin:
#   ctx=$(make_context <<'EOF'
#   FROM busybox
#   RUN echo hi >/greeting
#   EOF
#   )
make_context() {
    local dir
    dir=$(mktemp -d "$BATS_TEST_TMPDIR/ctx.XXXXXX")
    cat >"$dir/Dockerfile"
    echo "$dir"
}

# add_file CTX PATH [MODE] — writes stdin to CTX/PATH (parents created).
add_file() {
    local path=$1/$2
    mkdir -p "$(dirname "$path")"
    cat >"$path"
    [ -z "${3:-}" ] || chmod "$3" "$path"
}

# helper_bin NAME — path of a static helper program (tests/helpers/NAME.c).
helper_bin() {
    local p=$KILN_TEST_HELPERS/$1
    [ -x "$p" ] || fail "helper program '$1' is missing at $p: run 'make helpers'"
    echo "$p"
}

# ---- base images ------------------------------------------------------------------

# Base images: name -> fixture file and tag.
#   busybox     busybox.tar              busybox:latest
#   debian      debian-bookworm.tar.gz   debian:bookworm
#   debian-gcc  debian-gcc.tar.gz        debian-gcc:bookworm
_kiln_base() {
    case "$1" in
        busybox) echo "busybox.tar busybox:latest" ;;
        debian) echo "debian-bookworm.tar.gz debian:bookworm" ;;
        debian-gcc) echo "debian-gcc.tar.gz debian-gcc:bookworm" ;;
        *) return 1 ;;
    esac
}

# use_bases NAME... — puts base images into this file's store (call it from
# setup_file, or from a test after pointing KILN_TEST_STORE somewhere).  Each
# base is imported with `kiln import` once per user into $KILN_TEST_BASES
# (under a lock, so parallel files wait for one import), then its blobs and
# tag are copied into the store.  Layer trees are not copied: kiln extracts
# them on first use.
use_bases() {
    local name spec file ref out
    mkdir -p "$KILN_TEST_BASES"
    for name in "$@"; do
        spec=$(_kiln_base "$name") || fail "use_bases: unknown base '$name' (busybox, debian, debian-gcc)" || return
        file=${spec% *}
        ref=${spec#* }
        [ -r "$KILN_TEST_FIXTURES/$file" ] ||
            fail "use_bases: fixture $KILN_TEST_FIXTURES/$file is missing: run scripts/test.sh (as root or with sudo) once to make it" ||
            return
        if ! out=$(
            exec 9>"$KILN_TEST_BASES.lock"
            flock 9
            if ! python3 "$OCISTORE" digest "$KILN_TEST_BASES" "$ref" >/dev/null 2>&1; then
                KILN_ROOT=$KILN_TEST_BASES "$KILN" import "$KILN_TEST_FIXTURES/$file" "$ref" 2>&1
            fi
        ); then
            fail "use_bases: kiln import $KILN_TEST_FIXTURES/$file $ref failed:" "$out" || return
        fi
        python3 "$OCISTORE" seed "$KILN_TEST_BASES" "$(kiln_store)" "$ref" || return
    done
}

# ---- reading images in the store ----------------------------------------------------
# IMAGE is a name as tagged (busybox, app:1) or a manifest digest.

image_digest() { python3 "$OCISTORE" digest "$(kiln_store)" "$1"; }
image_manifest() { python3 "$OCISTORE" manifest "$(kiln_store)" "$1"; }
# image_config IMAGE — the config JSON:  image_config app | jq -r '.config.User'
image_config() { python3 "$OCISTORE" config "$(kiln_store)" "$1"; }
# layer_count IMAGE
layer_count() { image_manifest "$1" | jq '.layers | length'; }

# layer_listing IMAGE [INDEX] — every entry of every layer (or of layer INDEX,
# 0 = first, -1 = last), one per line, as "MODE UID:GID PATH" with numeric
# owners from the tar headers, plus " -> TARGET" (symlink), " link to PATH"
# (hard link) or " MAJOR,MINOR" (device).  Paths have no leading "./" or "/";
# whiteouts appear as the ".wh." files they are.  E.g.
#   -rw-r--r-- 0:0 etc/passwd
#   drwxr-x--- 1000:1000 home/app
#   lrwxrwxrwx 0:0 bin/sh -> /bin/busybox
layer_listing() { python3 "$OCISTORE" layers "$(kiln_store)" "$@"; }

# unpack_image IMAGE DIR — applies the layers (whiteouts included) into DIR,
# with modes, symlinks, hard links and mtimes; not owners (the test user cannot
# chown: use layer_listing for them) nor device nodes.
unpack_image() { python3 "$OCISTORE" unpack "$(kiln_store)" "$1" "$2"; }

# store_check — the store is a valid OCI layout: every blob matches its digest
# and every blob a manifest references is present.
store_check() { python3 "$OCISTORE" check "$(kiln_store)"; }

# ---- identity mode --------------------------------------------------------------------

# The identity mode kiln should choose for this user: "range" when the user
# has /etc/subuid and /etc/subgid ranges and newuidmap/newgidmap exist, else
# "single".  Tests assert per mode rather than skip (CI skips nothing).
kiln_test_mode() {
    if [ -z "${KILN_TEST_MODE:-}" ]; then
        local u g
        u=$(id -un)
        g=$(id -u)
        if command -v newuidmap >/dev/null && command -v newgidmap >/dev/null &&
            grep -qE "^($u|$g):" /etc/subuid 2>/dev/null &&
            grep -qE "^($u|$g):" /etc/subgid 2>/dev/null; then
            KILN_TEST_MODE=range
        else
            KILN_TEST_MODE=single
        fi
    fi
    echo "$KILN_TEST_MODE"
}
in_range_mode() { [ "$(kiln_test_mode)" = range ]; }

# ---- assertions ----------------------------------------------------------------------

# assert_equal ACTUAL EXPECTED [WHAT]
assert_equal() {
    [ "$1" = "$2" ] || fail "${3:-value} is wrong" "  expected: '$2'" "  actual:   '$1'"
}

# After `run`: assert_success, assert_failure [STATUS], assert_status STATUS.
assert_success() {
    [ "$status" -eq 0 ] || fail "command failed; expected success" "$(_kiln_show_output)"
}
assert_failure() {
    if [ "$status" -eq 0 ]; then
        fail "command succeeded; expected failure" "$(_kiln_show_output)"
    elif [ -n "${1:-}" ] && [ "$status" -ne "$1" ]; then
        fail "exit status $status, expected $1" "$(_kiln_show_output)"
    fi
}
assert_status() {
    [ "$status" -eq "$1" ] || fail "exit status $status, expected $1" "$(_kiln_show_output)"
}

# assert_output_contains TEXT / assert_output_not_contains TEXT /
# assert_output_matches ERE — on $output of the last `run`.
assert_output_contains() {
    [[ "$output" == *"$1"* ]] || fail "output does not contain '$1'" "$(_kiln_show_output)"
}
assert_output_not_contains() {
    [[ "$output" != *"$1"* ]] || fail "output contains '$1'" "$(_kiln_show_output)"
}
assert_output_matches() {
    [[ "$output" =~ $1 ]] || fail "output does not match /$1/" "$(_kiln_show_output)"
}
# After `run --separate-stderr`: assert_stdout_empty, assert_stderr_empty,
# assert_stderr_contains TEXT, assert_stderr_matches ERE.
assert_stdout_empty() {
    [ -z "$output" ] || fail "stdout is not empty" "$(_kiln_show_output)"
}
assert_stderr_empty() {
    [ -z "${stderr:-}" ] || fail "stderr is not empty" "$(_kiln_show_output)"
}
assert_stderr_contains() {
    [[ "${stderr:-}" == *"$1"* ]] || fail "stderr does not contain '$1'" "$(_kiln_show_output)"
}
assert_stderr_matches() {
    [[ "${stderr:-}" =~ $1 ]] || fail "stderr does not match /$1/" "$(_kiln_show_output)"
}

# assert_file_mode PATH MODE — permission bits in octal (755, 0755, 4755).
assert_file_mode() {
    [ -e "$1" ] || [ -L "$1" ] || fail "$1: no such file" || return
    local have want
    have=$(stat -c %a "$1")
    want=$((8#$2))
    [ "$((8#$have))" -eq "$want" ] || fail "$1: mode $(printf %04o "$((8#$have))"), expected $(printf %04o "$want")"
}

# assert_owner PATH UID:GID — numeric owner as this user sees the file.
assert_owner() {
    [ -e "$1" ] || [ -L "$1" ] || fail "$1: no such file" || return
    local have
    have=$(stat -c %u:%g "$1")
    [ "$have" = "$2" ] || fail "$1: owner $have, expected $2"
}

# assert_layer_entry IMAGE "MODE UID:GID PATH[ -> TARGET]" [INDEX] — that exact
# line is in layer_listing (of layer INDEX when given).
assert_layer_entry() {
    local listing path
    listing=$(layer_listing "$1" ${3:+"$3"}) || return
    grep -qxF -- "$2" <<<"$listing" && return
    path=$(awk '{print $3}' <<<"$2")
    fail "image $1${3:+ layer $3}: no entry '$2'" \
        "entries for '$path':" "$(awk -v p="$path" '$3 == p' <<<"$listing" | sed 's/^/  | /')"
}

# assert_no_layer_entry IMAGE PATH [INDEX] — no entry for PATH.
assert_no_layer_entry() {
    local listing found
    listing=$(layer_listing "$1" ${3:+"$3"}) || return
    found=$(awk -v p="$2" '$3 == p' <<<"$listing")
    [ -z "$found" ] || fail "image $1${3:+ layer $3}: unexpected entry for '$2':" "$found"
}

# assert_config IMAGE JQ-FILTER EXPECTED — `jq -c FILTER` of the config.
#   assert_config app '.config.Cmd' '["/bin/sh","-c","echo hi"]'
assert_config() {
    local have
    have=$(image_config "$1" | jq -c "$2") || return
    [ "$have" = "$3" ] || fail "image $1: config $2 is $have, expected $3"
}
