#!/usr/bin/env bats
# Issue 4.7: Ctrl-C (SIGINT) or SIGTERM on `kiln build` during a long RUN
# kills everything in the container, unmounts, removes the temporary upper
# directory and exits 130/143; no process, mount or temporary directory
# survives (counted), with each storage driver, on busybox and debian; the
# store stays valid and usable.

load helpers
load runtime_lib
bats_require_minimum_version 1.5.0

setup_file() { use_bases busybox debian; }

# A test that failed half-way leaves no kiln behind.
teardown() { kill_test_kiln; }

# interrupt SIGNAL BASE DRIVER — starts a build whose RUN leaves children in
# the background and sleeps, sends SIGNAL to kiln once the RUN runs, and
# checks what is left.
interrupt() {
    local sig=$1 base=$2 driver=$3 mark out ctx pid i status before_mounts
    mark=$(process_mark)
    ctx=$(make_context <<EOF
FROM $base
RUN echo started; sleep 1$mark & (sleep 2$mark &) ; sh -c 'sleep 3$mark' & sleep 4$mark; echo not-""interrupted
EOF
)
    out=$BATS_TEST_TMPDIR/build.out
    before_mounts=$(wc -l </proc/self/mountinfo)
    KILN_ROOT=$(kiln_store) "$KILN" build --no-cache --progress=plain --storage-driver "$driver" \
        -t "interrupted:$driver" "$ctx" >"$out" 2>&1 &
    pid=$!
    echo "$pid" >"$BATS_TEST_TMPDIR/kiln.pid"
    # the RUN's processes are all there
    for ((i = 0; i < 300; i++)); do
        [ "$(pgrep -cf "^sleep [1234]$mark")" -eq 4 ] && break
        sleep 0.1
    done
    [ "$(pgrep -cf "^sleep [1234]$mark")" -eq 4 ] ||
        fail "the RUN did not start its processes:" "$(pgrep -af "^sleep [1234]$mark")" "$(cat "$out")" || return
    kill "-$sig" "$pid"
    status=0
    wait "$pid" || status=$?
    case $sig in INT) want=130 ;; TERM) want=143 ;; HUP) want=129 ;; esac
    [ "$status" -eq "$want" ] || fail "SIG$sig: kiln exited $status, expected $want:" "$(cat "$out")" || return
    grep -q "interrupted by SIG$sig" "$out" || fail "no message naming SIG$sig:" "$(cat "$out")" || return
    ! grep -q not-interrupted "$out" || fail "the RUN went on" || return
    # nothing left: processes of the container, fuse-overlayfs on the store
    local left
    left=$(pgrep -af "sleep [1234]$mark|$(kiln_store)" || true)
    [ -z "$left" ] || fail "processes survived SIG$sig ($driver, $base):" "$left" || return
    # mounts: kiln's lived in its own namespace; none leaked into ours
    ! grep -q "$(kiln_store)" /proc/self/mountinfo || fail "a mount of the store is in our namespace" || return
    assert_equal "$(wc -l </proc/self/mountinfo)" "$before_mounts" "mount count"
    store_tmp_empty || return
    store_check || return
    # no image was tagged, and the store still builds
    ! image_digest "interrupted:$driver" >/dev/null 2>&1 || fail "the interrupted build tagged an image"
}

@test "SIGINT during a long RUN (busybox, overlay): exit 130, nothing left" {
    interrupt INT busybox overlay
}

@test "SIGINT during a long RUN (busybox, fuse-overlayfs): exit 130, nothing left" {
    interrupt INT busybox fuse-overlayfs
}

@test "SIGINT during a long RUN (busybox, copy): exit 130, nothing left" {
    interrupt INT busybox copy
}

@test "SIGINT during a long RUN (debian, overlay): exit 130, nothing left" {
    interrupt INT debian:bookworm overlay
}

@test "SIGTERM during a long RUN (debian, fuse-overlayfs): exit 143, nothing left" {
    interrupt TERM debian:bookworm fuse-overlayfs
}

@test "SIGTERM during a long RUN (busybox, overlay): exit 143, nothing left; the store builds again" {
    interrupt TERM busybox overlay
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo after > /after
EOF
)
    build_ok -q -t after "$ctx"
    assert_layer_entry after "-rw-r--r-- 0:0 after" -1
}
