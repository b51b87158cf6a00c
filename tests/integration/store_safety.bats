#!/usr/bin/env bats
# The store survives what happens to builds: a prune while a build runs,
# SIGKILL at any moment, a full disk.  After each, the store validates
# (every reference resolves, every blob matches its digest, kiln's own
# check agrees), the images that were there still run, and the next build
# succeeds.

load helpers
load runtime_lib
bats_require_minimum_version 1.5.0

setup_file() { use_bases busybox; }

teardown() {
    kill_test_kiln
    # the full-disk test's store lives on a file system shared by the tests
    if [ -n "${KILN_TEST_SMALLFS:-}" ] && [ -d "$KILN_TEST_SMALLFS/store" ]; then
        KILN_ROOT=$KILN_TEST_SMALLFS/store "$KILN" system reset -f >/dev/null 2>&1 || true
    fi
}

# start_build ARGS... — `kiln build ARGS` in the background, output in
# $BATS_TEST_TMPDIR/build.out; its pid in $pid.
start_build() {
    KILN_ROOT=$(kiln_store) "$KILN" build "$@" >"$BATS_TEST_TMPDIR/build.out" 2>&1 &
    pid=$!
    echo "$pid" >"$BATS_TEST_TMPDIR/kiln.pid"
}

# wait_for_process PATTERN — until a process whose command line matches runs.
wait_for_process() {
    local i
    for ((i = 0; i < 300; i++)); do
        pgrep -f "$1" >/dev/null && return 0
        sleep 0.05
    done
    fail "no process matching '$1' started:" "$(cat "$BATS_TEST_TMPDIR/build.out")"
}

# store_valid WHEN — the store validates, by the independent checker and by kiln.
store_valid() {
    local out
    out=$(store_check 2>&1) || fail "$1: the store does not validate:" "$out" || return
    out=$(kiln system check 2>&1) || fail "$1: kiln system check:" "$out" || return
}

@test "a prune while a build runs is refused; the build finishes whole" {
    local mark status
    mark=$(process_mark)
    ctx=$(make_context <<EOF
FROM busybox
RUN head -c 300000 /dev/urandom >/payload && sleep 2.$mark
RUN echo second >/second
EOF
)
    start_build --no-cache -t guarded "$ctx"
    wait_for_process "^sleep 2\.$mark"
    run kiln image prune -f -a
    assert_status 1
    assert_output_contains "in use by a running build"
    run kiln system prune -f -a
    assert_status 1
    assert_output_contains "in use by a running build"
    status=0
    wait "$pid" || status=$?
    [ "$status" -eq 0 ] || fail "the build failed ($status):" "$(cat "$BATS_TEST_TMPDIR/build.out")"
    store_valid "after the build"
    run kiln run --rm guarded cat /second
    assert_success
    assert_equal "$output" second
    # with nothing running, the prune proceeds
    kiln_ok image prune -f
}

@test "SIGKILL at any moment of a build leaves a valid store; the next build succeeds" {
    local mark delay status left
    mark=$(process_mark)
    ctx=$(make_context <<EOF
FROM busybox
COPY data/ /data/
RUN head -c 12000000 /dev/urandom >/big && echo $mark >/mark
RUN cat /data/* | sha256sum >/data.sum && echo $mark
EOF
)
    local i
    for ((i = 0; i < 40; i++)); do
        head -c 200000 /dev/urandom | add_file "$ctx" "data/f$i"
    done
    for delay in 0.05 0.15 0.3 0.5 0.8 1.2 1.8; do
        start_build --no-cache -t killed "$ctx"
        sleep "$delay"
        kill -KILL "$pid" 2>/dev/null || true
        status=0
        wait "$pid" || status=$?
        # the RUN's processes died with kiln; its mounts were in kiln's namespace
        sleep 0.2
        left=$(pgrep -af "$mark" || true)
        [ -z "$left" ] || fail "killed at ${delay}s: processes survived:" "$left" || return
        ! grep -q "$(kiln_store)" /proc/self/mountinfo || fail "killed at ${delay}s: a mount leaked" || return
        store_valid "killed at ${delay}s (exit $status)" || return
    done
    # the store builds again, and the result is complete
    build_ok --no-cache -t after "$ctx"
    run kiln run --rm after sh -c 'cat /data/* | sha256sum | cmp - /data.sum && wc -c </big'
    assert_success
    assert_equal "$output" 12000000
    # what the killed builds left is in tmp/ only, and a prune sweeps it once it is old
    find "$(kiln_store)/tmp" -mindepth 1 -maxdepth 1 ! -name '*.lock' -exec touch -h -d '2 hours ago' {} +
    kiln_ok image prune -f
    store_tmp_empty
    store_valid "after the prune"
}

@test "a full disk fails the build with a clear error; the store and its images are intact" {
    [ -n "${KILN_TEST_SMALLFS:-}" ] ||
        skip "needs a size-limited file system: tests/run.sh mounts one (64 MiB) per test user when run as root"
    export KILN_TEST_STORE=$KILN_TEST_SMALLFS/store
    use_bases busybox
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo small >/small
EOF
)
    build_ok -t small "$ctx"
    local free_before
    free_before=$(df --output=avail -k "$KILN_TEST_SMALLFS" | tail -1)
    # the RUN fits (40 MB in its upper directory); its layer does not
    ctx=$(make_context <<'EOF'
FROM busybox
RUN head -c 40000000 /dev/urandom >/big
EOF
)
    build_fails --status 1 -t big "$ctx"
    assert_output_contains "No space left on device"
    assert_output_contains "RUN head -c 40000000"
    ! image_digest big >/dev/null 2>&1 || fail "the failed build tagged an image"
    store_tmp_empty
    store_valid "after the layer did not fit"
    # everything the failed build wrote is gone again
    assert_equal "$(df --output=avail -k "$KILN_TEST_SMALLFS" | tail -1)" "$free_before" "free space (KiB)"
    # a RUN that fills the disk itself fails as a RUN, with its output
    ctx=$(make_context <<'EOF'
FROM busybox
RUN dd if=/dev/zero of=/huge bs=1M count=100
EOF
)
    build_fails --status 1 -t huge "$ctx"
    assert_output_contains "No space left on device"
    assert_output_contains "did not complete successfully: exit code: 1"
    store_tmp_empty
    store_valid "after the RUN filled the disk"
    # what was there still runs, and the store still builds
    run kiln run --rm small cat /small
    assert_success
    assert_equal "$output" small
    ctx=$(make_context <<'EOF'
FROM small
RUN echo again >/again
EOF
)
    build_ok -t again "$ctx"
    store_valid "after the next build"
}
