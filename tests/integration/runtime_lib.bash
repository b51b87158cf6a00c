# runtime_lib.bash — helpers shared by foundation*.bats and runtime*.bats.
# shellcheck shell=bash

# store_tmp_empty — the store's tmp/ holds nothing but its lock files: no
# rootfs, upper directory or staging file survived.
store_tmp_empty() {
    local left
    left=$(ls -A "$(kiln_store)/tmp" 2>/dev/null | grep -v '\.lock$' || true)
    [ -z "$left" ] || fail "the store's tmp/ is not empty:" "$(ls -la "$(kiln_store)/tmp")"
}

# process_mark — digits no other process on the machine has in its command
# line (a RUN's `sleep 1$mark` is then found with pgrep).
process_mark() { echo "$((BATS_TEST_NUMBER * 1000 + $$ % 1000))$RANDOM"; }

# kill_test_kiln — for teardown: the kiln a test started in the background
# (its pid in $BATS_TEST_TMPDIR/kiln.pid), should the test have failed half-way.
kill_test_kiln() {
    local pid
    pid=$(cat "$BATS_TEST_TMPDIR/kiln.pid" 2>/dev/null) || return 0
    kill -KILL "$pid" 2>/dev/null || true
}
