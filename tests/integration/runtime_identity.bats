#!/usr/bin/env bats
# Issue 4, identity modes and storage drivers.  In both modes (kiln-range:
# range, kiln-single: single-ID with root emulation) useradd, install -o,
# dpkg -i and apt-get install of a local .deb work, and the ownership they
# ask for reaches the layer (/home/app 1234:1234, /etc/shadow 0:42, the
# package's 1:1 directory); chown, set-id bits and privilege drops behave as
# in Docker; owners kept beside the files in single-ID mode (symlinks,
# fifos) come through COPY --from and -o type=tar; overlay, fuse-overlayfs
# and copy give the same layer, byte for byte; `kiln info` names the driver.

load helpers
load runtime_lib
bats_require_minimum_version 1.5.0

setup_file() {
    use_bases busybox debian
    # the acceptance build, shared by the tests that read it
    local ctx=$BATS_FILE_TMPDIR/deb
    mkdir -p "$ctx"
    cp "$KILN_TEST_FIXTURES/kiln-hello.deb" "$ctx/some.deb"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM debian:bookworm
COPY some.deb /tmp/some.deb
RUN useradd -u 1234 app && install -o app -g app -d /home/app && dpkg -i /tmp/some.deb
EOF
    KILN_ROOT=$(kiln_store) "$KILN" build -q -t deb-users "$ctx" >"$BATS_FILE_TMPDIR/build.out" 2>&1 ||
        fail "the acceptance build failed:" "$(cat "$BATS_FILE_TMPDIR/build.out")"
}

# ---- the acceptance build ------------------------------------------------------------

@test "useradd, install -o app -g app -d and dpkg -i: the layer records /home/app as 1234:1234" {
    assert_layer_entry deb-users "drwxr-xr-x 1234:1234 home/app" -1
    # the package's own owners: a directory 1:1 in the .deb, one its postinst chowned
    assert_layer_entry deb-users "drwxr-x--- 1:1 var/spool/kiln-hello" -1
    run --separate-stderr kiln run --rm deb-users sh -c 'getent passwd kiln-hello | cut -d: -f3,4; kiln-hello; dpkg-query -W -f="\${Status}\n" kiln-hello; id app'
    assert_success
    local ids=${lines[0]}
    [[ "$ids" =~ ^[0-9]+:[0-9]+$ ]] || fail "no kiln-hello user: $output"
    assert_layer_entry deb-users "drwxr-x--- $ids var/lib/kiln-hello" -1
    assert_equal "${lines[1]}" "hello from kiln-hello"
    assert_equal "${lines[2]}" "install ok installed"
    assert_equal "${lines[3]}" "uid=1234(app) gid=1234(app) groups=1234(app)"
    assert_layer_entry deb-users "-rwxr-xr-x 0:0 usr/bin/kiln-hello" -1
    # the runtime's mounts never reach the layer
    assert_no_layer_entry deb-users etc/hosts -1
    assert_no_layer_entry deb-users etc/resolv.conf -1
}

@test "useradd keeps /etc/shadow and /etc/gshadow root:shadow (0:42), as Docker does" {
    assert_layer_entry deb-users "-rw-r----- 0:42 etc/shadow" -1
    assert_layer_entry deb-users "-rw-r----- 0:42 etc/gshadow" -1
    assert_layer_entry deb-users "-rw-r--r-- 0:0 etc/passwd" -1
    # the base had them so too
    assert_layer_entry debian:bookworm "-rw-r----- 0:42 etc/shadow" 0
}

@test "apt-get install of a local .deb and su to another user work" {
    ctx=$(make_context <<'EOF'
FROM debian:bookworm
COPY some.deb /tmp/some.deb
RUN apt-get install -y /tmp/some.deb && su -s /bin/sh -c 'id -u; id -g' nobody > /tmp/su.out
EOF
)
    cp "$KILN_TEST_FIXTURES/kiln-hello.deb" "$ctx/some.deb"
    build_ok -q -t deb-apt "$ctx"
    assert_layer_entry deb-apt "drwxr-x--- 1:1 var/spool/kiln-hello" -1
    assert_layer_entry deb-apt "-rwxr-xr-x 0:0 usr/bin/kiln-hello" -1
    run --separate-stderr kiln run --rm deb-apt cat /tmp/su.out
    assert_equal "$(tr '\n' ' ' <<<"$output")" "65534 65534 " "ids after su nobody"
}

@test "chown, chmod u+s, privilege drops: as in Docker" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY syscalls /usr/local/bin/
RUN touch /f && chown 1000:1000 /f && chmod 4755 /f && \
    mkdir -p /d/sub && touch /d/sub/x && chown -R 1001:1002 /d && chmod 2775 /d && \
    touch /g && chown :50 /g && chmod g+s /g && \
    ln -s f /lnk && chown -h 1000:1001 /lnk && mkfifo /ff && chown 5:6 /ff && \
    mkdir -m 1777 /drop && syscalls drop 1000 1000 > /drop/out && \
    su -s /bin/sh -c 'id -u > /drop/su; touch /drop/by-nobody' nobody
EOF
)
    cp "$(helper_bin syscalls)" "$ctx/"
    build_ok -q -t owners "$ctx"
    assert_layer_entry owners "-rwsr-xr-x 1000:1000 f" -1
    assert_layer_entry owners "drwxrwsr-x 1001:1002 d" -1
    assert_layer_entry owners "drwxr-xr-x 1001:1002 d/sub" -1
    assert_layer_entry owners "-rw-r--r-- 1001:1002 d/sub/x" -1
    assert_layer_entry owners "-rw-r-Sr-- 0:50 g" -1
    # symlinks and fifos cannot carry user.kiln.owner: the owner log (single-ID mode)
    assert_layer_entry owners "lrwxrwxrwx 1000:1001 lnk -> f" -1
    assert_layer_entry owners "prw-r--r-- 5:6 ff" -1
    local u=$BATS_TEST_TMPDIR/u
    mkdir "$u"
    unpack_image owners "$u"
    # the drop worked, root cannot be regained, a child inherits the ids
    assert_equal "$(cat "$u/drop/out")" $'drop 0 0 0 uid=1000,1000,1000,1000,1000 gid=1000,1000,1000,1000,1000 groups=1:1000\nregain 1 1 1\nchild uid=1000 gid=1000' \
        "syscalls drop"
    assert_equal "$(cat "$u/drop/su")" 65534 "id -u after su"
    if in_range_mode; then
        assert_layer_entry owners "-rw-r--r-- 65534:65534 drop/by-nobody" -1
    else
        # one id mapped: the kernel creates files as it; the emulated ids of
        # the process are not recorded on files it makes
        assert_layer_entry owners "-rw-r--r-- 0:0 drop/by-nobody" -1
    fi
}

@test "single-ID mode owners beside the files (symlinks, fifos) survive COPY --from and -o type=tar" {
    local r=$BATS_TEST_TMPDIR/r
    mkdir -p "$r/d"
    echo x >"$r/target"
    ln -s target "$r/lnk"
    ln -s ../lnk "$r/d/l2"
    mkfifo "$r/fifo"
    tar -C "$r" --numeric-owner --owner=1000 --group=1001 -cf "$BATS_TEST_TMPDIR/owned.tar" .
    kiln_ok import "$BATS_TEST_TMPDIR/owned.tar" owned:1
    assert_layer_entry owned:1 "lrwxrwxrwx 1000:1001 d/l2 -> ../lnk"
    ctx=$(make_context <<'EOF'
FROM busybox
COPY --from=owned:1 /d /fifo /copied/
EOF
)
    build_ok -q -t copied "$ctx"
    assert_layer_entry copied "lrwxrwxrwx 1000:1001 copied/l2 -> ../lnk" -1
    assert_layer_entry copied "prw-r--r-- 1000:1001 copied/fifo" -1
    ctx=$(make_context <<'EOF'
FROM owned:1
LABEL exported=yes
EOF
)
    build_ok -q -o "type=tar,dest=$BATS_TEST_TMPDIR/out.tar" "$ctx"
    run tar -tvf "$BATS_TEST_TMPDIR/out.tar" --numeric-owner
    assert_success
    assert_output_matches 'lrwxrwxrwx 1000/1001 +0 [^ ]+ [^ ]+ (\./)?lnk -> target'
    assert_output_matches 'lrwxrwxrwx 1000/1001 +0 [^ ]+ [^ ]+ (\./)?d/l2 -> \.\./lnk'
    assert_output_matches 'prw-r--r-- 1000/1001 +0 [^ ]+ [^ ]+ (\./)?fifo'
}

@test "two RUN steps that change nothing, and the same COPY twice, in a row (one tree, two lowers)" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN true
RUN true
COPY f /f
RUN rm /f
COPY f /f
RUN cat /f
EOF
)
    echo same >"$ctx/f"
    local d
    for d in overlay fuse-overlayfs copy; do
        build_ok -q --no-cache --storage-driver "$d" -t "twice-$d" "$ctx"
    done
}

# ---- storage drivers ----------------------------------------------------------------------

@test "kiln info names the storage driver, the identity mode and the user; auto picks overlay here" {
    run --separate-stderr kiln info
    assert_success
    assert_output_matches $'\nstorage driver: +overlay\n'
    assert_output_matches $'\nidentity mode: +'"$(kiln_test_mode)"
    assert_output_matches "\\(user $(id -u):$(id -g) outside\\)"
    local d
    for d in overlay fuse-overlayfs copy; do
        run --separate-stderr kiln --storage-driver "$d" info
        assert_success
        assert_output_matches $'\nstorage driver: +'"$d"$'\n'
    done
    run --separate-stderr kiln --storage-driver nope info
    assert_status 2
    assert_stderr_contains nope
}

# build_with_drivers IMAGE-PREFIX CTX — builds CTX with each driver (no cache,
# fixed timestamps) and checks that the last layers are the same blob.
build_with_drivers() {
    local prefix=$1 ctx=$2 d first='' digest
    for d in overlay fuse-overlayfs copy; do
        build_ok -q --no-cache --timestamp 1700000000 --storage-driver "$d" -t "$prefix-$d" "$ctx"
        digest=$(image_manifest "$prefix-$d" | jq -r '.layers[-1].digest')
        if [ -z "$first" ]; then
            first=$digest
        elif [ "$digest" != "$first" ]; then
            fail "$d gives layer $digest, overlay $first:" \
                "$(diff <(layer_listing "$prefix-overlay" -1) <(layer_listing "$prefix-$d" -1))"
        fi
    done
    echo "$first"
}

@test "overlay, fuse-overlayfs and copy: the same RUN gives the same layer digest (busybox)" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN mkdir -p /new/dir && echo data > /new/dir/file && ln -s file /new/dir/link && \
    ln /new/dir/file /new/dir/hard && mkfifo /new/fifo && chown -R 1000:1000 /new/dir && \
    chmod 4755 /new/dir/file && rm /bin/vi && rm -rf /usr/sbin && mkdir /usr/sbin && touch /usr/sbin/new && \
    echo changed >> /etc/passwd && chmod 600 /etc/group && touch -d @1000000 /new/old && \
    rm -rf /home && mkdir /home && echo again > /tmp/t
EOF
)
    local digest
    digest=$(build_with_drivers bb "$ctx")
    # and the layer is what the RUN did
    assert_layer_entry bb-copy "-rwsr-xr-x 1000:1000 new/dir/file" -1
    assert_layer_entry bb-copy "hrwsr-xr-x 1000:1000 new/dir/hard link to new/dir/file" -1
    assert_layer_entry bb-copy "---------- 0:0 bin/.wh.vi" -1
    assert_layer_entry bb-copy "---------- 0:0 usr/sbin/.wh..wh..opq" -1
    assert_layer_entry bb-copy "-rw------- 0:0 etc/group" -1
}

@test "overlay, fuse-overlayfs and copy: the same RUN gives the same layer digest (debian, useradd)" {
    ctx=$(make_context <<'EOF'
FROM debian:bookworm
COPY some.deb /tmp/some.deb
RUN useradd -u 1234 app && install -o app -g app -d /home/app && dpkg -i /tmp/some.deb && rm /tmp/some.deb && \
    rm /var/log/dpkg.log
EOF
)
    # (dpkg.log holds the time of day: the builds do not run in the same second)
    cp "$KILN_TEST_FIXTURES/kiln-hello.deb" "$ctx/some.deb"
    build_with_drivers deb "$ctx" >/dev/null
    assert_layer_entry deb-fuse-overlayfs "drwxr-xr-x 1234:1234 home/app" -1
    assert_layer_entry deb-fuse-overlayfs "-rw-r----- 0:42 etc/shadow" -1
    store_tmp_empty
}
