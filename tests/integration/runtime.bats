#!/usr/bin/env bats
# Issue 4, what a RUN step sees, on the busybox and debian:bookworm images:
# namespaces (pid 1 is the container's init, no host process visible, its
# own hostname, mount/pid/ipc/uts namespaces of its own), identity (id -u is
# 0), mounts (fresh /proc, minimal /dev, read-only /sys, /tmp of the image,
# /etc/hosts and /etc/resolv.conf bound but never in a layer), privileges
# (Docker's capability set, no_new_privs, the seccomp profile: EPERM),
# --network=none, --security-opt, and the process set-up (USER from the
# image's passwd and group, HOME, HOSTNAME, PATH, WORKDIR, SHELL, exit
# status, stdin).  Runs as kiln-range (range mode) and kiln-single
# (single-ID mode).
#
# setup_file builds one probe image per base: two RUN steps run
# runtime_probe.sh, which writes what they see into /facts; a last stage
# copies /facts alone into a small image the tests unpack.

load helpers
load runtime_lib
bats_require_minimum_version 1.5.0

IMAGES=(busybox debian)

setup_file() {
    use_bases busybox debian
    local ctx=$BATS_FILE_TMPDIR/probe
    mkdir -p "$ctx"
    cp "$BATS_TEST_DIRNAME/runtime_probe.sh" "$ctx/probe.sh"
    cp "$(helper_bin syscalls)" "$ctx/syscalls"
    cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE
FROM ${BASE} AS probe
COPY probe.sh syscalls /usr/local/bin/
RUN exec sh /usr/local/bin/probe.sh /facts/a
RUN exec sh /usr/local/bin/probe.sh /facts/b
RUN --network=none cat /proc/net/dev > /facts/netdev_none
RUN cat /proc/net/dev > /facts/netdev_host

FROM scratch
COPY --from=probe /facts /facts
EOF
    # a process of ours the containers must not see
    sleep 4242.4242 >/dev/null 2>&1 &
    local marker=$! img base out=$BATS_FILE_TMPDIR/build.out
    for img in "${IMAGES[@]}"; do
        base=$img
        [ "$img" = debian ] && base=debian:bookworm
        if ! KILN_ROOT=$(kiln_store) "$KILN" build --no-cache --progress=plain --build-arg "BASE=$base" \
            -t "facts-$img" "$ctx" >"$out" 2>&1 ||
            ! KILN_ROOT=$(kiln_store) "$KILN" build -q --build-arg "BASE=$base" --target probe \
                -t "probe-$img" "$ctx" >>"$out" 2>&1; then
            kill "$marker"
            fail "probe build on $img failed:" "$(cat "$out")"
            return 1
        fi
        python3 "$OCISTORE" unpack "$(kiln_store)" "facts-$img" "$BATS_FILE_TMPDIR/facts-$img"
    done
    kill "$marker"
    # our own namespaces, to compare
    local n
    for n in user mnt pid ipc uts net; do
        echo "$n $(readlink /proc/self/ns/$n)"
    done >"$BATS_FILE_TMPDIR/host_ns"
}

# fact IMAGE RUN NAME — a fact the probe wrote (RUN: a or b).
fact() { cat "$BATS_FILE_TMPDIR/facts-$1/facts/$2/$3"; }
ns_of() { awk -v n="$2" '$1 == n {print $2}' "$1"; }

# ---- namespaces ------------------------------------------------------------------------

@test "a RUN sees pid 1 as its own init (which reaps orphans) and none of our processes" {
    local img procs
    for img in "${IMAGES[@]}"; do
        assert_equal "$(fact "$img" a pid1_comm)" kiln-init "$img: /proc/1/comm"
        assert_equal "$(fact "$img" a ppid)" 1 "$img: the RUN shell's parent"
        procs=$(fact "$img" a procs)
        grep -q '^1 ' <<<"$procs" || fail "$img: pid 1 not in /proc:" "$procs"
        [ "$(wc -l <<<"$procs")" -le 6 ] || fail "$img: too many processes visible:" "$procs"
        ! grep -q 4242.4242 <<<"$procs" || fail "$img: a host process is visible:" "$procs"
        ! grep -Eq 'bats|kiln build' <<<"$procs" || fail "$img: host processes are visible:" "$procs"
        assert_equal "$(fact "$img" a zombies)" 0 "$img: zombies left after an orphan exited"
    done
}

@test "id -u is 0" {
    local img
    for img in "${IMAGES[@]}"; do
        assert_equal "$(fact "$img" a uid):$(fact "$img" a gid)" 0:0 "$img: id -u:id -g"
    done
}

@test "new mount, pid, ipc and uts namespaces for each RUN; kiln's user namespace; the host's network" {
    local img n h a b host=$BATS_FILE_TMPDIR/host_ns
    for img in "${IMAGES[@]}"; do
        local fa=$BATS_FILE_TMPDIR/facts-$img/facts/a/ns fb=$BATS_FILE_TMPDIR/facts-$img/facts/b/ns
        for n in mnt pid ipc uts; do
            h=$(ns_of "$host" $n) a=$(ns_of "$fa" $n) b=$(ns_of "$fb" $n)
            [ -n "$a" ] && [ "$a" != "$h" ] && [ "$b" != "$h" ] ||
                fail "$img: $n namespace: host $h, first RUN $a, second RUN $b"
        done
        # The first RUN's namespaces are gone when the second starts (their
        # inode numbers may be reused): each RUN finds them new instead.
        # pid: numbering starts again, the RUN shell is pid 2 each time
        assert_equal "$(fact "$img" a shell_pid) $(fact "$img" b shell_pid)" "2 2" "$img: pids of the RUN shells"
        # mount and ipc: nothing of the first RUN's /dev/shm or POSIX queues
        assert_equal "$(fact "$img" b inherited | grep -c left-by-run)" 0 "$img: the first RUN's marks seen by the second"
        ! grep -q "no mqueue" <<<"$(fact "$img" a inherited)" || fail "$img: cannot create a POSIX message queue"
        h=$(ns_of "$host" user) a=$(ns_of "$fa" user)
        [ -n "$a" ] && [ "$a" != "$h" ] || fail "$img: user namespace $a is the host's ($h)"
        assert_equal "$(ns_of "$fa" net)" "$(ns_of "$host" net)" "$img: network namespace (host network)"
    done
}

@test "hostname: the build's own name in every RUN, in /etc/hosts and HOSTNAME; another build, another name" {
    local img name
    for img in "${IMAGES[@]}"; do
        name=$(fact "$img" a hostname)
        [[ "$name" =~ ^kiln-[A-Za-z0-9]+$ ]] || fail "$img: hostname '$name'"
        assert_equal "$(fact "$img" b hostname)" "$name" "$img: hostname of the second RUN"
        assert_equal "$(fact "$img" a kernel_hostname)" "$name" "$img: /proc/sys/kernel/hostname"
        [ "$name" != "$(hostname)" ] || fail "$img: the host's hostname"
        grep -Eq "^127\.0\.0\.1[[:space:]].*\b$name\b" <<<"$(fact "$img" a hosts)" ||
            fail "$img: /etc/hosts does not name $name:" "$(fact "$img" a hosts)"
        grep -qx "HOSTNAME=$name" <<<"$(fact "$img" a env)" || fail "$img: HOSTNAME" "$(fact "$img" a env)"
    done
    [ "$(fact busybox a hostname)" != "$(fact debian a hostname)" ] ||
        fail "two builds had the same hostname $(fact busybox a hostname)"
}

@test "/etc/hosts and /etc/resolv.conf are the host's resolver, bound in, and never reach a layer" {
    local img want i n
    want=$(grep -E '^nameserver' /etc/resolv.conf || true)
    for img in "${IMAGES[@]}"; do
        [ -z "$want" ] || assert_equal "$(grep -E '^nameserver' <<<"$(fact "$img" a resolv)")" "$want" \
            "$img: nameservers in the RUN"
        grep -q localhost <<<"$(fact "$img" a hosts)" || fail "$img: no localhost in /etc/hosts"
        n=$(layer_count "probe-$img")
        for ((i = 1; i < n; i++)); do
            assert_no_layer_entry "probe-$img" etc/hosts "$i"
            assert_no_layer_entry "probe-$img" etc/resolv.conf "$i"
            assert_no_layer_entry "probe-$img" etc "$i"
        done
        # the bind mounts are read-only
        awk '$5 == "/etc/hosts" || $5 == "/etc/resolv.conf" {print $6}' \
            "$BATS_FILE_TMPDIR/facts-$img/facts/a/mountinfo" | grep -qv '^ro' &&
            fail "$img: /etc/hosts or /etc/resolv.conf is writable"
        true
    done
}

@test "--network=none has only lo" {
    local img
    for img in "${IMAGES[@]}"; do
        local none=$BATS_FILE_TMPDIR/facts-$img/facts/netdev_none
        assert_equal "$(awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' "$none")" lo "$img: interfaces with --network=none"
        assert_equal "$(awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' "$BATS_FILE_TMPDIR/facts-$img/facts/netdev_host" | sort)" \
            "$(awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' /proc/net/dev | sort)" "$img: interfaces by default"
    done
    # the same for the whole build
    ctx=$(make_context <<'EOF'
FROM busybox
RUN cat /proc/net/dev > /netdev
EOF
)
    build_ok -q --network none -t netnone "$ctx"
    mkdir "$BATS_TEST_TMPDIR/u"
    unpack_image netnone "$BATS_TEST_TMPDIR/u"
    assert_equal "$(awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' "$BATS_TEST_TMPDIR/u/netdev")" lo "kiln build --network none"
}

# ---- mounts ------------------------------------------------------------------------------

@test "fresh /proc, minimal /dev (devpts, ptmx, shm, fd links), read-only /sys, /tmp of the image" {
    local img mi
    for img in "${IMAGES[@]}"; do
        assert_equal "$(fact "$img" a dev_names | tr '\n' ' ')" \
            "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero " "$img: /dev"
        assert_equal "$(fact "$img" a devs | tr '\n' ' ')" \
            "null 1,3 zero 1,5 full 1,7 random 1,8 urandom 1,9 tty 5,0 " "$img: device nodes"
        assert_equal "$(fact "$img" a dev_links | tr '\n' ' ')" \
            "fd /proc/self/fd stdin /proc/self/fd/0 stdout /proc/self/fd/1 stderr /proc/self/fd/2 ptmx pts/ptmx " \
            "$img: /dev links"
        assert_equal "$(fact "$img" a dev_checks | tr '\n' ' ')" \
            "pts/ptmx char null writable zero reads zeros full is full urandom reads shm writable sys read-only proc mounted " \
            "$img: /dev, /sys and /proc checks"
        mi=$BATS_FILE_TMPDIR/facts-$img/facts/a/mountinfo
        # mount point, then the file system type after " - "
        _mount_type() { awk -v m="$1" '$5 == m { for (i = 7; $i != "-"; i++); print $(i + 1) }' "$mi" | tail -1; }
        assert_equal "$(_mount_type /proc)" proc "$img: /proc"
        assert_equal "$(_mount_type /dev)" tmpfs "$img: /dev"
        assert_equal "$(_mount_type /dev/pts)" devpts "$img: /dev/pts"
        assert_equal "$(_mount_type /dev/shm)" tmpfs "$img: /dev/shm"
        assert_equal "$(_mount_type /sys)" sysfs "$img: /sys"
        awk '$5 == "/sys" {print $6}' "$mi" | grep -q '^ro' || fail "$img: /sys is not read-only"
        assert_equal "$(_mount_type /tmp)" "" "$img: something is mounted on /tmp"
        assert_equal "$(fact "$img" a tmp_mode)" 1777 "$img: /tmp mode"
        # /tmp is the image's: what a RUN writes there is in its layer
        assert_layer_entry "probe-$img" "-rw-r--r-- 0:0 tmp/from-run" 2
    done
}

@test "mounts and temporary directories are gone after the builds" {
    ! grep -q "$(kiln_store)" /proc/self/mountinfo || fail "a mount of the store is in our namespace:" \
        "$(grep "$(kiln_store)" /proc/self/mountinfo)"
    store_tmp_empty
    ! pgrep -f "$(kiln_store)" >/dev/null || fail "processes of the store left:" "$(pgrep -af "$(kiln_store)")"
    store_check
}

# ---- privileges ---------------------------------------------------------------------------

@test "Docker's default capability bounding set, no_new_privs, the seccomp filter" {
    local img st
    for img in "${IMAGES[@]}"; do
        st=$(fact "$img" a status)
        # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
        # NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
        grep -qx 'CapBnd: 00000000a80425fb' <<<"$st" || fail "$img: bounding set" "$st"
        grep -qx 'CapEff: 00000000a80425fb' <<<"$st" || fail "$img: effective set" "$st"
        grep -qx 'CapInh: 0000000000000000' <<<"$st" || fail "$img: inheritable set" "$st"
        grep -qx 'CapAmb: 0000000000000000' <<<"$st" || fail "$img: ambient set" "$st"
        grep -qx 'NoNewPrivs: 1' <<<"$st" || fail "$img: no_new_privs" "$st"
        grep -qx 'Seccomp: 2' <<<"$st" || fail "$img: seccomp" "$st"
    done
}

@test "each denied system call returns EPERM (the static helper calls them all)" {
    local img out name e denied
    for img in "${IMAGES[@]}"; do
        out=$(fact "$img" a syscalls)
        denied=0
        while read -r name e; do
            case "$name" in
                personality:query | socket:unix | getpid | fork | thread)
                    assert_equal "$e" 0 "$img: $name (must work)" ;;
                clone3) assert_equal "$e" 38 "$img: clone3 (ENOSYS, so that libc falls back to clone)" ;;
                *)
                    assert_equal "$e" 1 "$img: errno of $name"
                    denied=$((denied + 1))
                    ;;
            esac
        done <<<"$out"
        [ "$denied" -ge 60 ] || fail "$img: only $denied denied calls were tried:" "$out"
    done
}

@test "--security-opt seccomp=unconfined lifts the denials; seccomp=PROFILE.json applies a Docker profile" {
    cat >"$BATS_TEST_TMPDIR/profile.json" <<'EOF'
{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
EOF
    ctx=$(make_context <<'EOF'
FROM busybox
COPY syscalls /usr/local/bin/
RUN syscalls keyctl bpf add_key > /result; if mkdir /made 2>/dev/null; then echo mkdir-ok; else echo mkdir-refused; fi >> /result
EOF
)
    cp "$(helper_bin syscalls)" "$ctx/"
    local conf
    for conf in default unconfined profile; do
        case $conf in
            default) build_ok -q --no-cache -t "sec-$conf" "$ctx" ;;
            unconfined) build_ok -q --no-cache --security-opt seccomp=unconfined -t "sec-$conf" "$ctx" ;;
            profile) build_ok -q --no-cache --security-opt "seccomp=$BATS_TEST_TMPDIR/profile.json" -t "sec-$conf" "$ctx" ;;
        esac
        mkdir "$BATS_TEST_TMPDIR/$conf"
        unpack_image "sec-$conf" "$BATS_TEST_TMPDIR/$conf"
    done
    local r
    r=$(cat "$BATS_TEST_TMPDIR/default/result")
    assert_equal "$(sort <<<"$r" | tr '\n' ' ')" "add_key 1 bpf 1 keyctl 1 mkdir-ok " "default profile"
    r=$(cat "$BATS_TEST_TMPDIR/unconfined/result")
    grep -q '^keyctl 1$' <<<"$r" && fail "unconfined: keyctl still EPERM" "$r"
    grep -q '^add_key 1$' <<<"$r" && fail "unconfined: add_key still EPERM" "$r"
    grep -qx mkdir-ok <<<"$r" || fail "unconfined: mkdir" "$r"
    r=$(cat "$BATS_TEST_TMPDIR/profile/result")
    grep -q '^keyctl 1$' <<<"$r" && fail "profile: keyctl is not in it, but EPERM" "$r"
    grep -qx mkdir-refused <<<"$r" || fail "profile: mkdir was allowed" "$r"
    # a profile that does not parse: a clear error, status 1
    echo '{"defaultAction": ' >"$BATS_TEST_TMPDIR/bad.json"
    run --separate-stderr kiln build --no-cache --security-opt "seccomp=$BATS_TEST_TMPDIR/bad.json" "$ctx"
    assert_failure
    assert_stderr_contains bad.json
}

# ---- process set-up ----------------------------------------------------------------------------

@test "environment: PATH when unset, HOME from the image's passwd, HOSTNAME; stdin is /dev/null" {
    local img env
    for img in "${IMAGES[@]}"; do
        env=$(fact "$img" a env)
        grep -qx 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' <<<"$env" || fail "$img: PATH" "$env"
        grep -qx 'HOME=/root' <<<"$env" || fail "$img: HOME" "$env"
        grep -q '^HOSTNAME=kiln-' <<<"$env" || fail "$img: HOSTNAME" "$env"
        assert_equal "$(fact "$img" a stdin)" /dev/null "$img: stdin"
        assert_equal "$(fact "$img" a stdin_data)" "" "$img: what stdin gave"
        assert_equal "$(fact "$img" a cwd)" / "$img: working directory"
    done
}

@test "USER from the image's passwd and group (never the host's), numeric ids, groups, HOME; WORKDIR; SHELL" {
    ctx=$(make_context <<'EOF'
FROM busybox
ENV KEEP=me
RUN echo 'u2k:x:2000:2000::/home/u2k:/bin/sh' >> /etc/passwd && \
    echo 'www-data:x:3333:3333::/home/www-data:/bin/false' >> /etc/passwd && \
    printf 'u2k:x:2000:\ngrp:x:3000:u2k\nother:x:3001:root,u2k\nwww-data:x:3333:\n' >> /etc/group && \
    mkdir -p /home/u2k && chown 2000:2000 /home/u2k && mkdir -m 1777 /out && \
    printf '#!/bin/sh\necho "custom shell got: $*" >> /out/shell\n' > /bin/myshell && chmod 755 /bin/myshell
USER u2k
RUN (id -u; id -g; id -G; echo "$HOME"; echo "$KEEP"; whoami) > /out/u2k
USER www-data
RUN (id -u; id -g; echo "$HOME") > /out/www
USER 4444:5555
RUN (id -u; id -g; echo "$HOME") > /out/numeric
USER u2k:other
RUN (id -u; id -g; id -G) > /out/u2k-other
USER 0
WORKDIR /does/not/exist/yet
RUN pwd > /out/pwd
SHELL ["/bin/myshell", "-x"]
RUN hello world
EOF
)
    build_ok -q -t users "$ctx"
    local u=$BATS_TEST_TMPDIR/u
    mkdir "$u"
    unpack_image users "$u"
    # the host has its own www-data (33) and no u2k: the image's passwd decides
    assert_equal "$(tr '\n' ' ' <"$u/out/u2k")" "2000 2000 2000 3000 3001 /home/u2k me u2k " "USER u2k"
    assert_equal "$(tr '\n' ' ' <"$u/out/www")" "3333 3333 /home/www-data " "USER www-data"
    assert_equal "$(tr '\n' ' ' <"$u/out/numeric")" "4444 5555 / " "USER 4444:5555"
    assert_equal "$(tr '\n' ' ' <"$u/out/u2k-other")" "2000 3001 3001 " "USER u2k:other"
    assert_equal "$(cat "$u/out/pwd")" /does/not/exist/yet "WORKDIR"
    [ -d "$u/does/not/exist/yet" ] || fail "WORKDIR was not created in the image"
    assert_equal "$(cat "$u/out/shell")" "custom shell got: -x hello world" "SHELL"
    assert_config users '.config.User' '"0"'
    # a user that exists on the host but not in the image
    ctx=$(make_context <<EOF
FROM busybox
USER $(id -un)
RUN true
EOF
)
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_contains "unable to find user $(id -un)"
}

@test "exit status: the RUN's code, or 128+N when killed, is reported and fails the build" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN exit 42
EOF
)
    run --separate-stderr kiln build --no-cache "$ctx"
    assert_status 1
    assert_stderr_contains "exit code: 42"
    ctx=$(make_context <<'EOF'
FROM busybox
RUN kill -KILL $$
EOF
)
    run --separate-stderr kiln build --no-cache "$ctx"
    assert_status 1
    assert_stderr_contains "exit code: 137"
    # a command that cannot start fails the build too: status 1, not 127
    ctx=$(make_context <<'EOF'
FROM busybox
RUN ["/no/such/program"]
EOF
)
    run --separate-stderr kiln build --no-cache "$ctx"
    assert_status 1
    assert_stderr_contains "/no/such/program"
    store_check
    store_tmp_empty
}
