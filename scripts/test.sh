#!/bin/bash
# scripts/test.sh — THE test command: sets the machine up and runs every test.
#
#   1. installs the packages (scripts/install-deps.sh; apt-get only if needed)
#   2. builds kiln, the unit tests and the helper programs (make)
#   3. as root (itself, or through sudo): makes /dev/fuse usable, lets
#      unprivileged users create user namespaces, creates the test users
#      kiln-range (a 65536-id /etc/subuid and /etc/subgid range) and
#      kiln-single (no range), and makes the base image fixtures (cached in
#      /var/cache/kiln-tests)
#   4. as root: tests/run.sh, which runs the unit tests and every integration
#      test as kiln-range and as kiln-single, and prints the closing line
#      "N passed, N failed[, N skipped]"
#
# Works for root and for a user with sudo.  Options are tests/run.sh's
# (e.g. -f REGEX, --unit-only, -j).  Exit status non-zero on any failure.
set -eEuo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

say() { echo "test.sh: $*"; }

# A failure before the tests run still ends with the closing line.
setup_failed() {
    say "$*" >&2
    echo "0 passed, 1 failed"
    exit 1
}
step="starting"
trap 'setup_failed "$step failed (at: $BASH_COMMAND)"' ERR

# ---- step 3: the machine (root) ---------------------------------------------

setup_fuse() {
    if [ ! -e /dev/fuse ]; then
        modprobe fuse 2>/dev/null || true
        [ -e /dev/fuse ] || mknod -m 0666 /dev/fuse c 10 229
    fi
    chmod 0666 /dev/fuse
}

# Debian's kernel.unprivileged_userns_clone and user.max_user_namespaces.
setup_userns() {
    local f=/proc/sys/kernel/unprivileged_userns_clone
    if [ -f "$f" ] && [ "$(cat "$f")" = 0 ]; then
        say "enabling unprivileged user namespaces"
        echo 1 >"$f"
    fi
    f=/proc/sys/user/max_user_namespaces
    if [ -f "$f" ] && [ "$(cat "$f")" = 0 ]; then
        say "allowing user namespaces (user.max_user_namespaces=15000)"
        echo 15000 >"$f"
    fi
}

# A start for a new range: 100000, or past every range in /etc/subuid and
# /etc/subgid.
next_free_range() {
    awk -F: 'NF >= 3 && $2 + $3 > max { max = $2 + $3 }
        END { print (max > 100000 ? max : 100000) }' /etc/subuid /etc/subgid
}

setup_users() {
    touch /etc/subuid /etc/subgid
    chmod 0644 /etc/subuid /etc/subgid
    if ! id kiln-range >/dev/null 2>&1; then
        say "creating user kiln-range"
        useradd --create-home --shell /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 kiln-range
    fi
    local uid start
    uid=$(id -u kiln-range)
    if ! grep -qE "^(kiln-range|$uid):" /etc/subuid || ! grep -qE "^(kiln-range|$uid):" /etc/subgid; then
        start=$(next_free_range)
        say "giving kiln-range the subordinate ids $start-$((start + 65535))"
        grep -qE "^(kiln-range|$uid):" /etc/subuid || echo "kiln-range:$start:65536" >>/etc/subuid
        grep -qE "^(kiln-range|$uid):" /etc/subgid || echo "kiln-range:$start:65536" >>/etc/subgid
    fi
    if ! id kiln-single >/dev/null 2>&1; then
        say "creating user kiln-single"
        useradd --create-home --shell /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 kiln-single
    fi
    uid=$(id -u kiln-single)
    if grep -qE "^(kiln-single|$uid):" /etc/subuid /etc/subgid; then
        say "removing kiln-single's subordinate id ranges (it must have none)"
        sed -i -E "/^(kiln-single|$uid):/d" /etc/subuid /etc/subgid
    fi
}

# Step 3 and 4, as root.
root_phase() {
    local start=$SECONDS
    step="setting up /dev/fuse"
    setup_fuse
    step="enabling user namespaces"
    setup_userns
    step="setting up the test users"
    setup_users
    step="making the fixtures"
    "$top/tests/fixtures/make-fixtures.sh"
    say "machine set up in $((SECONDS - start))s"
    trap - ERR
    KILN_BUILD=${KILN_BUILD:-$top/build} exec "$top/tests/run.sh" "$@"
}

if [ "${1:-}" = --root-phase ]; then
    shift
    [ "$(id -u)" -eq 0 ] || setup_failed "--root-phase needs root"
    root_phase "$@"
fi

# ---- steps 1 and 2: packages and build (as the caller) --------------------------

start=$SECONDS
step="installing the packages"
"$top/scripts/install-deps.sh"
say "packages ready ($((SECONDS - start))s)"

start=$SECONDS
step="the build"
make -j2 kiln unit helpers
say "built in $((SECONDS - start))s"

if [ "$(id -u)" -eq 0 ]; then
    root_phase "$@"
fi
command -v sudo >/dev/null || setup_failed "not root and no sudo: the test users and fixtures need root"
trap - ERR
# sudo resets the environment: pass on what the tests read.
pass=(KILN_BUILD="$top/build")
for v in KILN_TEST_FIXTURES KILN_CONFORMANCE KILN_TEST_TIMEOUT KILN_UNIT_TIMEOUT \
    KILN_SUITE_TIMEOUT KILN_DEBUG KILN_DEBIAN_MIRROR ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
    [ -z "${!v:-}" ] || pass+=("$v=${!v}")
done
exec sudo env "${pass[@]}" bash "$top/scripts/test.sh" --root-phase "$@"
