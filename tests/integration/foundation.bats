#!/usr/bin/env bats
# Issue 2's acceptance, at the user's level: a Dockerfile with RUN, COPY of a
# directory, ENV, WORKDIR and CMD builds, and tools that share no code with
# kiln (umoci, skopeo + tar, jq) find in the store exactly what it says; the
# command line answers like a command line; a failed build exits 1 and leaves
# the store valid; `kiln import` makes one-layer images from tarballs (plain,
# gzip, xz, zstd, bzip2, stdin) and directories.  Runs as kiln-range (range
# mode) and kiln-single (single-ID mode).

load helpers
load runtime_lib
bats_require_minimum_version 1.5.0

setup_file() {
    use_bases busybox
    # the issue's build, shared by the tests that read it back
    local ctx=$BATS_FILE_TMPDIR/app
    mkdir -p "$ctx/files/sub" "$ctx/files/bin"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM busybox
RUN echo hi > /hello && rm /etc/group
COPY files /opt/files
ENV GREETING="hello world" APP_HOME=/opt/app
WORKDIR /opt/app
CMD ["/opt/files/bin/tool.sh", "--greet", "two words"]
EOF
    printf '#!/bin/sh\necho "tool: $GREETING $*"\n' >"$ctx/files/bin/tool.sh"
    chmod 0755 "$ctx/files/bin/tool.sh"
    echo secret >"$ctx/files/sub/data.txt"
    chmod 0640 "$ctx/files/sub/data.txt"
    echo readme >"$ctx/files/README"
    chmod 0644 "$ctx/files/README"
    printf '#!/bin/sh\necho private\n' >"$ctx/files/bin/private"
    chmod 0700 "$ctx/files/bin/private"
    chmod 0750 "$ctx/files/sub"
    KILN_ROOT=$(kiln_store) "$KILN" build -q -t app:1 "$ctx" >"$BATS_FILE_TMPDIR/build.out" 2>&1 ||
        fail "the issue's build failed:" "$(cat "$BATS_FILE_TMPDIR/build.out")"
}

# ---- the build, read back by other tools ------------------------------------------

@test "umoci unpack --rootless finds /hello, no /etc/group, the copied files and their modes" {
    local b=$BATS_TEST_TMPDIR/bundle
    run umoci unpack --rootless --image "$(kiln_store):app:1" "$b"
    assert_success
    [ "$(cat "$b/rootfs/hello")" = hi ] || fail "/hello: '$(cat "$b/rootfs/hello" 2>&1)'"
    [ ! -e "$b/rootfs/etc/group" ] || fail "/etc/group is still there"
    [ -e "$b/rootfs/etc/passwd" ] || fail "/etc/passwd is gone with /etc/group"
    assert_file_mode "$b/rootfs/opt/files/bin/tool.sh" 0755
    assert_file_mode "$b/rootfs/opt/files/bin/private" 0700
    assert_file_mode "$b/rootfs/opt/files/sub/data.txt" 0640
    assert_file_mode "$b/rootfs/opt/files/sub" 0750
    assert_file_mode "$b/rootfs/opt/files/README" 0644
    [ "$(cat "$b/rootfs/opt/files/sub/data.txt")" = secret ]
    [ -d "$b/rootfs/opt/app" ] || fail "WORKDIR /opt/app was not created"
    # umoci's runtime config comes from the image config
    jq -e '.process.args == ["/opt/files/bin/tool.sh", "--greet", "two words"]' "$b/config.json"
    jq -e '.process.cwd == "/opt/app"' "$b/config.json"
    jq -e '.process.env | index("GREETING=hello world") != null and index("APP_HOME=/opt/app") != null' \
        "$b/config.json"
}

@test "skopeo copy to dir: the config has Env, WorkingDir and Cmd as written; the layers, read by tar" {
    local d=$BATS_TEST_TMPDIR/dir
    run skopeo copy -q "oci:$(kiln_store):app:1" "dir:$d"
    assert_success
    local cfg
    cfg=$(jq -r '.config.digest' "$d/manifest.json")
    cfg=$d/${cfg#sha256:}
    jq -e '.config.Env | index("GREETING=hello world") != null' "$cfg"
    jq -e '.config.Env | index("APP_HOME=/opt/app") != null' "$cfg"
    jq -e '.config.Env | map(select(startswith("PATH="))) | length == 1' "$cfg"
    [ "$(jq -r '.config.WorkingDir' "$cfg")" = /opt/app ]
    [ "$(jq -c '.config.Cmd' "$cfg")" = '["/opt/files/bin/tool.sh","--greet","two words"]' ]
    [ "$(jq -r '.architecture + "/" + .os' "$cfg")" = "amd64/linux" ] ||
        [ "$(jq -r '.os' "$cfg")" = linux ]
    # every layer's digest is what skopeo copied, and GNU tar reads them
    local listing='' l
    for l in $(jq -r '.layers[].digest' "$d/manifest.json"); do
        [ "$(sha256sum <"$d/${l#sha256:}" | cut -d' ' -f1)" = "${l#sha256:}" ] || fail "layer $l: bad digest"
        listing+=$(tar -tvzf "$d/${l#sha256:}" --numeric-owner)$'\n'
    done
    grep -Eq '^-rw-r--r-- 0/0 +3 .* hello$' <<<"$listing" || fail "no hello of 3 bytes" "$listing"
    grep -Eq '^-rwxr-xr-x 0/0 .* opt/files/bin/tool.sh$' <<<"$listing" || fail "tool.sh" "$listing"
    grep -Eq '^-rw-r----- 0/0 .* opt/files/sub/data.txt$' <<<"$listing" || fail "data.txt" "$listing"
    grep -Eq ' etc/\.wh\.group$' <<<"$listing" || fail "no whiteout for /etc/group" "$listing"
    # the diff_ids in the config are the uncompressed layers'
    local i=0
    for l in $(jq -r '.layers[].digest' "$d/manifest.json"); do
        [ "sha256:$(gzip -dc <"$d/${l#sha256:}" | sha256sum | cut -d' ' -f1)" = \
            "$(jq -r ".rootfs.diff_ids[$i]" "$cfg")" ] || fail "diff_id $i does not match layer $l"
        i=$((i + 1))
    done
}

@test "the layers hold exactly what the steps did, owned by root" {
    [ "$(layer_count app:1)" -eq 4 ] || fail "expected 4 layers (base, RUN, COPY, WORKDIR): $(layer_count app:1)"
    assert_layer_entry app:1 "-rw-r--r-- 0:0 hello" 1
    assert_layer_entry app:1 "---------- 0:0 etc/.wh.group" 1
    assert_layer_entry app:1 "-rwxr-xr-x 0:0 opt/files/bin/tool.sh" 2
    assert_layer_entry app:1 "-rwx------ 0:0 opt/files/bin/private" 2
    assert_layer_entry app:1 "drwxr-x--- 0:0 opt/files/sub" 2
    assert_layer_entry app:1 "-rw-r----- 0:0 opt/files/sub/data.txt" 2
    assert_layer_entry app:1 "drwxr-xr-x 0:0 opt/app" 3
    # the RUN layer holds its changes and nothing the runtime mounted
    run layer_listing app:1 1
    assert_equal "$(awk '{print $3}' <<<"$output" | sort | tr '\n' ' ')" "etc etc/.wh.group hello " "RUN layer entries"
    store_check
}

@test "the image runs: CMD with ENV in WORKDIR" {
    run --separate-stderr kiln run --rm app:1
    assert_success
    assert_equal "$output" "tool: hello world --greet two words"
    run --separate-stderr kiln run --rm app:1 sh -c 'pwd; cat /hello; ls /etc/group 2>&1 || true'
    assert_success
    [ "${lines[0]}" = /opt/app ] && [ "${lines[1]}" = hi ] || fail "$output"
    assert_output_contains "No such file"
}

@test "a rebuild is all cache hits and gives the same image" {
    local before
    before=$(image_digest app:1)
    run kiln build -t app:1 "$BATS_FILE_TMPDIR/app"
    assert_success
    assert_output_contains CACHED
    assert_equal "$(image_digest app:1)" "$before" "manifest digest after a rebuild"
}

# ---- the command line ----------------------------------------------------------------

@test "--version, --help and build --help print useful text on stdout" {
    run --separate-stderr kiln --version
    assert_status 0
    assert_output_matches '^kiln version [0-9]+\.[0-9]+\.[0-9]+'
    run --separate-stderr kiln --help
    assert_status 0
    local c
    for c in build run import images push pull info; do
        assert_output_matches $'\n  '"$c"' '
    done
    run --separate-stderr kiln build --help
    assert_status 0
    local f
    for f in '-t, --tag' '-f, --file' '--build-arg' '--target' '--no-cache' '--storage-driver' '--userns'; do
        assert_output_contains "$f"
    done
    run --separate-stderr kiln run --help
    assert_status 0
    assert_output_contains '--entrypoint'
    run --separate-stderr kiln import --help
    assert_status 0
    assert_output_contains 'SOURCE'
}

@test "usage errors: a clear message naming the problem, status 2, nothing on stdout" {
    local -a cases=(
        "--bogus|--bogus"
        "build --bogus .|--bogus"
        "build|context"
        "build -t|-t"
        "build --storage-driver nope .|nope"
        "--userns nope info|nope"
        "run|image"
        "run --bogus busybox|--bogus"
        "import|SOURCE"
        "import a b c|SOURCE"
    )
    local c args want
    for c in "${cases[@]}"; do
        args=${c%%|*}
        want=${c#*|}
        # shellcheck disable=SC2086
        run --separate-stderr kiln $args
        [ "$status" -eq 2 ] || fail "kiln $args: status $status, expected 2" "$(_kiln_show_output)"
        [ -z "$output" ] || fail "kiln $args: stdout is not empty" "$(_kiln_show_output)"
        [[ "$stderr" == *"$want"* ]] || fail "kiln $args: stderr does not name '$want'" "$(_kiln_show_output)"
        [[ "$stderr" == "kiln"* ]] || fail "kiln $args: message does not start with 'kiln'" "$(_kiln_show_output)"
    done
}

@test "a failed RUN: status 1, the step and its exit code named, the store valid and unchanged" {
    local before
    before=$(jq -S . "$(kiln_store)/index.json")
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo partial > /partial
RUN echo "about to fail" && exit 3
RUN echo never > /never
EOF
)
    run --separate-stderr kiln build --no-cache -t broken "$ctx"
    assert_status 1
    assert_stderr_contains "exit code: 3"
    assert_stderr_contains "Dockerfile:3"
    assert_stderr_contains "about to fail"
    store_check
    assert_equal "$(jq -S . "$(kiln_store)/index.json")" "$before" "index.json after a failed build"
    store_tmp_empty
    # nothing of the build is mounted in our namespace
    ! grep -q "$(kiln_store)" /proc/self/mountinfo || fail "a mount of the store survived"
    # the store still builds
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo ok > /ok
EOF
)
    build_ok -q --no-cache -t fixed "$ctx"
    assert_layer_entry fixed "-rw-r--r-- 0:0 ok" -1
}

@test "a bad Dockerfile and a missing base: status 1 with file:line, store valid" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN true
NOTANINSTRUCTION foo
EOF
)
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_matches 'Dockerfile:3'
    assert_stderr_contains NOTANINSTRUCTION
    # a registry nobody listens on: fails at once, without the network
    ctx=$(make_context <<'EOF'
FROM 127.0.0.1:9/no-such-image-here:1
RUN true
EOF
)
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_contains no-such-image-here
    store_check
}

# ---- kiln import -----------------------------------------------------------------

# A small rootfs with owners and modes a tarball can carry: files owned by
# 1000:1000 and 0:42, a setuid file, a symlink, a hard link, an empty dir.
_make_rootfs() {
    local r=$1
    mkdir -p "$r/bin" "$r/etc" "$r/home/app" "$r/empty" "$r/srv"
    cp "$(helper_bin syscalls)" "$r/bin/syscalls"
    cp /bin/busybox "$r/bin/busybox"
    ln -s busybox "$r/bin/sh"
    ln -s busybox "$r/bin/cat"
    ln -s busybox "$r/bin/stat"
    printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' >"$r/etc/passwd"
    printf 'root:x:0:\nshadow:x:42:\napp:x:1000:\n' >"$r/etc/group"
    echo 'root:*:1::::::' >"$r/etc/shadow"
    chmod 0640 "$r/etc/shadow"
    echo "hello from import" >"$r/srv/hello"
    ln "$r/srv/hello" "$r/srv/hello-link"
    echo app >"$r/home/app/notes"
    cp /bin/busybox "$r/bin/suid"
    chmod 4755 "$r/bin/suid"
}

# _tar DIR OUT — a tarball of DIR with chosen numeric owners (GNU tar's
# --owner-map/--group-map, so no root is needed).
_tar() {
    local dir=$1 out=$2 map=$BATS_TEST_TMPDIR/owners.map gmap=$BATS_TEST_TMPDIR/groups.map
    printf '+%d +0\n' "$(id -u)" >"$map"
    printf '+%d +0\n' "$(id -g)" >"$gmap"
    # everything 0:0, then the exceptions (appended entries replace earlier ones on extraction;
    # instead, exclude them from the first pass)
    tar -C "$dir" --numeric-owner --owner-map="$map" --group-map="$gmap" --sort=name \
        --exclude=./home/app --exclude=./etc/shadow -cf "$out" .
    tar -C "$dir" --numeric-owner --owner=1000 --group=1000 --no-recursion -rf "$out" ./home/app ./home/app/notes
    tar -C "$dir" --numeric-owner --owner=0 --group=42 -rf "$out" ./etc/shadow
}

_check_imported() {
    local img=$1
    [ "$(layer_count "$img")" -eq 1 ] || fail "$img: $(layer_count "$img") layers, expected 1"
    assert_layer_entry "$img" "-rw-r--r-- 0:0 srv/hello"
    assert_layer_entry "$img" "hrw-r--r-- 0:0 srv/hello-link link to srv/hello"
    assert_layer_entry "$img" "drwxr-xr-x 1000:1000 home/app"
    assert_layer_entry "$img" "-rw-r--r-- 1000:1000 home/app/notes"
    assert_layer_entry "$img" "-rw-r----- 0:42 etc/shadow"
    assert_layer_entry "$img" "-rwsr-xr-x 0:0 bin/suid"
    assert_layer_entry "$img" "lrwxrwxrwx 0:0 bin/sh -> busybox"
    assert_layer_entry "$img" "drwxr-xr-x 0:0 empty"
    image_config "$img" | jq -e '.os == "linux" and (.rootfs.diff_ids | length) == 1' >/dev/null ||
        fail "$img: bad config" "$(image_config "$img")"
    # and it runs, with the owners as recorded
    run --separate-stderr kiln run --rm "$img" /bin/sh -c 'cat /srv/hello; stat -c "%u:%g %a" /home/app/notes /etc/shadow /bin/suid'
    assert_success
    assert_equal "${lines[0]}" "hello from import"
    if in_range_mode; then
        assert_equal "${lines[1]} ${lines[2]} ${lines[3]}" "1000:1000 644 0:42 640 0:0 4755"
    else
        # one id mapped: the files belong to it (the layer keeps the owners)
        assert_equal "${lines[1]} ${lines[2]} ${lines[3]}" "0:0 644 0:0 640 0:0 4755"
    fi
}

@test "import: a rootfs tarball, plain, gzip, xz, zstd and bzip2, and from stdin" {
    local r=$BATS_TEST_TMPDIR/rootfs t=$BATS_TEST_TMPDIR/rootfs.tar
    _make_rootfs "$r"
    _tar "$r" "$t"
    gzip -c "$t" >"$t.gz"
    xz -c "$t" >"$t.xz"
    zstd -q -c "$t" >"$t.zst"
    bzip2 -c "$t" >"$t.bz2"
    local f n=0 ids=()
    for f in "$t" "$t.gz" "$t.xz" "$t.zst" "$t.bz2"; do
        n=$((n + 1))
        run --separate-stderr kiln import "$f" "imported:$n"
        assert_success
        assert_output_matches '^sha256:[0-9a-f]{64}$'
        _check_imported "imported:$n"
        ids+=("$(image_config "imported:$n" | jq -c .rootfs.diff_ids)")
    done
    # the same layer whatever the compression of the source
    for f in "${ids[@]}"; do assert_equal "$f" "${ids[0]}" "diff_ids"; done
    run --separate-stderr kiln import - from-stdin:latest <"$t.zst"
    assert_success
    _check_imported from-stdin
    assert_config from-stdin '.rootfs.diff_ids' "${ids[0]}"
    store_check
}

@test "import: a directory; names without a tag get :latest" {
    local r=$BATS_TEST_TMPDIR/rootfs
    _make_rootfs "$r"
    run --separate-stderr kiln import "$r" dirimg
    assert_success
    [ "$(layer_count dirimg:latest)" -eq 1 ]
    # our own files: owned by root in the image
    assert_layer_entry dirimg "-rw-r--r-- 0:0 srv/hello"
    assert_layer_entry dirimg "hrw-r--r-- 0:0 srv/hello-link link to srv/hello"
    assert_layer_entry dirimg "-rw-r----- 0:0 etc/shadow"
    assert_layer_entry dirimg "-rwsr-xr-x 0:0 bin/suid"
    assert_layer_entry dirimg "lrwxrwxrwx 0:0 bin/cat -> busybox"
    run --separate-stderr kiln run --rm dirimg /bin/cat /srv/hello-link
    assert_success
    assert_equal "$output" "hello from import"
}

@test "import: errors exit 1 with a message and leave the store valid" {
    local before
    before=$(jq -S . "$(kiln_store)/index.json")
    run --separate-stderr kiln import "$BATS_TEST_TMPDIR/no-such-file.tar" x:1
    assert_status 1
    assert_stderr_contains no-such-file.tar
    head -c 5000 /dev/urandom >"$BATS_TEST_TMPDIR/garbage.tar.gz"
    printf '\037\213' | cat - "$BATS_TEST_TMPDIR/garbage.tar.gz" >"$BATS_TEST_TMPDIR/bad.tar.gz"
    run --separate-stderr kiln import "$BATS_TEST_TMPDIR/bad.tar.gz" x:1
    assert_status 1
    [ -n "$stderr" ]
    # a tarball with '..' is refused
    mkdir -p "$BATS_TEST_TMPDIR/evil/sub"
    echo x >"$BATS_TEST_TMPDIR/evil/x"
    tar -C "$BATS_TEST_TMPDIR/evil/sub" -cf "$BATS_TEST_TMPDIR/evil.tar" --absolute-names ../x
    run --separate-stderr kiln import "$BATS_TEST_TMPDIR/evil.tar" x:1
    assert_status 1
    assert_stderr_contains ".."
    run --separate-stderr kiln import "$BATS_TEST_TMPDIR/evil/x" "Bad Name"
    [ "$status" -eq 1 ] || [ "$status" -eq 2 ] || fail "bad name: status $status"
    assert_equal "$(jq -S . "$(kiln_store)/index.json")" "$before" "index.json after failed imports"
    store_check
    store_tmp_empty
}
