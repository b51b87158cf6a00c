#!/usr/bin/env bats
# Issue 4.9: kiln inside a locked-down environment.  Simulated as an
# ordinary user can: kiln runs as root of a user namespace of our own
# (`unshare --user --map-root-user --mount`: one id mapped, setgroups denied,
# no newuidmap that could work) with /dev replaced by a tmpfs that has no
# fuse node, or with newuidmap/newgidmap out of PATH.  `kiln build` still
# works, in single-ID mode with the overlay or copy driver, and says which it
# chose; asking for what cannot work fails with a clear message.

load helpers
load runtime_lib
bats_require_minimum_version 1.5.0

setup_file() {
    use_bases busybox
    # locked.sh COMMAND... — runs COMMAND with a /dev without fuse (inside a
    # user and mount namespace that `unshare` made)
    cat >"$BATS_FILE_TMPDIR/locked.sh" <<'EOF'
#!/bin/sh
set -e
d=$(mktemp -d)
mount -n -t tmpfs -o mode=755 none "$d"
for n in null zero full random urandom tty; do
    touch "$d/$n"
    mount -n --bind "/dev/$n" "$d/$n"
done
mkdir "$d/pts" "$d/shm"
mount -n --rbind /dev/pts "$d/pts"
mount -n -t tmpfs -o mode=1777 none "$d/shm"
ln -s /proc/self/fd "$d/fd"
mount -n --move "$d" /dev
[ ! -e /dev/fuse ] || { echo "locked.sh: /dev/fuse is still there" >&2; exit 1; }
exec "$@"
EOF
    chmod +x "$BATS_FILE_TMPDIR/locked.sh"
    ctx=$BATS_FILE_TMPDIR/ctx
    mkdir -p "$ctx"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM busybox
RUN mkdir -p /srv/app && chown -R 1234:1234 /srv/app && echo data > /srv/app/f && chown 1234:50 /srv/app/f && \
    rm /etc/group && id -u > /id
EOF
}

# locked [ENV=V...] ARGS... — kiln ARGS in the simulated container, no /dev/fuse.
locked() {
    unshare --user --map-root-user --mount "$BATS_FILE_TMPDIR/locked.sh" \
        env KILN_ROOT="$(kiln_store)" "$@"
}

# no_uidmap_path — a PATH with everything but newuidmap and newgidmap.
no_uidmap_path() {
    local d=$BATS_FILE_TMPDIR/nouidmap f
    if [ ! -d "$d" ]; then
        mkdir -p "$d"
        for f in /usr/bin/* /bin/* /usr/sbin/* /sbin/*; do
            case ${f##*/} in newuidmap | newgidmap) continue ;; esac
            [ -e "$d/${f##*/}" ] || ln -s "$f" "$d/${f##*/}"
        done
    fi
    echo "$d"
}

check_layer() {
    assert_layer_entry "$1" "drwxr-xr-x 1234:1234 srv/app" -1
    assert_layer_entry "$1" "-rw-r--r-- 1234:50 srv/app/f" -1
    assert_layer_entry "$1" "---------- 0:0 etc/.wh.group" -1
}

@test "no /dev/fuse, one id mapped, setgroups denied: single-ID mode and overlay, and kiln info says so" {
    run locked "$KILN" info
    assert_success
    assert_output_matches $'\nidentity mode: +single'
    assert_output_matches $'\nstorage driver: +overlay\n'
    assert_output_matches $'\nids mapped: +1 uids, 1 gids'
}

@test "no /dev/fuse: kiln build works, with the ownership asked for, and says which mode and driver" {
    run locked "$KILN" --debug build --no-cache --timestamp 1700000000 -t locked-auto "$BATS_FILE_TMPDIR/ctx"
    assert_success
    assert_output_contains "single"
    assert_output_matches 'storage driver overlay'
    check_layer locked-auto
    run kiln run --rm locked-auto cat /id
    assert_equal "$output" 0
    # the copy driver works there too, and gives the same layer
    run locked "$KILN" --storage-driver copy build -q --no-cache --timestamp 1700000000 -t locked-copy \
        "$BATS_FILE_TMPDIR/ctx"
    assert_success
    check_layer locked-copy
    assert_equal "$(image_manifest locked-copy | jq -r '.layers[-1].digest')" \
        "$(image_manifest locked-auto | jq -r '.layers[-1].digest')" "layer digest, copy vs overlay"
    store_tmp_empty
}

@test "no /dev/fuse: --storage-driver fuse-overlayfs fails with a clear message, the store unharmed" {
    run --separate-stderr locked "$KILN" --storage-driver fuse-overlayfs build --no-cache -t nofuse "$BATS_FILE_TMPDIR/ctx"
    assert_failure
    [ "$status" -ne 2 ] || fail "a usage error for a driver that does not work here"
    assert_stderr_contains fuse
    ! image_digest nofuse >/dev/null 2>&1 || fail "an image was tagged"
    store_check
    store_tmp_empty
}

@test "no newuidmap in PATH: a user with a subordinate range gets single-ID mode, and the build works" {
    local p
    p=$(no_uidmap_path)
    run env PATH="$p" KILN_ROOT="$(kiln_store)" "$KILN" info
    assert_success
    assert_output_matches $'\nidentity mode: +single'
    run env PATH="$p" KILN_ROOT="$(kiln_store)" "$KILN" build -q --no-cache -t nouidmap "$BATS_FILE_TMPDIR/ctx"
    assert_success
    check_layer nouidmap
    # range mode cannot be had without the helpers: a clear error
    run --separate-stderr env PATH="$p" KILN_ROOT="$(kiln_store)" "$KILN" --userns range info
    assert_failure
    if in_range_mode; then
        assert_stderr_contains newuidmap
    else
        assert_stderr_contains subordinate
    fi
}

@test "everything missing at once (no fuse, no newuidmap, one id): the build still works" {
    local p
    p=$(no_uidmap_path)
    run locked PATH="$p" "$KILN" build -q --no-cache -t all-locked "$BATS_FILE_TMPDIR/ctx"
    assert_success
    check_layer all-locked
}

@test "--userns single works for everyone; --userns range only with a range" {
    run kiln --userns single info
    assert_success
    assert_output_matches $'\nidentity mode: +single'
    run kiln --userns single build -q --no-cache -t forced-single "$BATS_FILE_TMPDIR/ctx"
    assert_success
    check_layer forced-single
    run --separate-stderr kiln --userns range info
    if in_range_mode; then
        assert_success
        assert_output_matches $'\nidentity mode: +range'
    else
        assert_failure
        assert_stderr_contains subordinate
    fi
}
