#!/usr/bin/env bats
# COPY and ADD: which files land where, with which owner, mode and links.

load helpers
bats_require_minimum_version 1.5.0

setup_file() { use_bases busybox; }

# A static HTTP server for DIR on 127.0.0.1 (ADD URL); sets HTTP_PORT.
start_http() {
    local dir=$1
    python3 - "$dir" "$BATS_TEST_TMPDIR/http.port" >"$BATS_TEST_TMPDIR/http.log" 2>&1 3>&- <<'EOF' &
import functools, http.server, os, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
EOF
    echo $! >"$BATS_TEST_TMPDIR/http.pid"
    for _ in $(seq 100); do
        [ -s "$BATS_TEST_TMPDIR/http.port" ] && break
        sleep 0.05
    done
    HTTP_PORT=$(cat "$BATS_TEST_TMPDIR/http.port")
}

teardown() {
    if [ -f "$BATS_TEST_TMPDIR/http.pid" ]; then
        kill "$(cat "$BATS_TEST_TMPDIR/http.pid")" 2>/dev/null || true
    fi
}

# ---- sources and destinations ----------------------------------------------------

@test "COPY several sources into a directory; wildcards" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY a.txt b.txt /multi/
COPY *.md /docs/
COPY src/*.c /csrc/
EOF
)
    echo a | add_file "$ctx" a.txt
    echo b | add_file "$ctx" b.txt
    echo r | add_file "$ctx" README.md
    echo c | add_file "$ctx" CHANGES.md
    echo m | add_file "$ctx" src/main.c
    echo h | add_file "$ctx" src/main.h
    build_ok -t app "$ctx"
    assert_equal "$(layer_listing app -3)" $'drwxr-xr-x 0:0 multi\n-rw-r--r-- 0:0 multi/a.txt\n-rw-r--r-- 0:0 multi/b.txt'
    assert_equal "$(layer_listing app -2)" $'drwxr-xr-x 0:0 docs\n-rw-r--r-- 0:0 docs/CHANGES.md\n-rw-r--r-- 0:0 docs/README.md'
    assert_equal "$(layer_listing app -1)" $'drwxr-xr-x 0:0 csrc\n-rw-r--r-- 0:0 csrc/main.c'
}

@test "several sources need a destination ending in /" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY a b /dest
EOF
)
    touch "$ctx/a" "$ctx/b"
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_contains "When using COPY with more than one source file, the destination must be a directory and end with a /"
}

@test "a directory source copies its contents, not itself" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY dir /target
EOF
)
    echo 1 | add_file "$ctx" dir/one
    echo 2 | add_file "$ctx" dir/sub/two
    build_ok -t app "$ctx"
    assert_equal "$(layer_listing app -1)" $'drwxr-xr-x 0:0 target\n-rw-r--r-- 0:0 target/one\ndrwxr-xr-x 0:0 target/sub\n-rw-r--r-- 0:0 target/sub/two'
}

@test "destination rules: a file name, a trailing slash, an existing directory, WORKDIR" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY f /renamed
COPY f /into/
COPY f /tmp
WORKDIR /w
COPY f rel
COPY f .
EOF
)
    echo f | add_file "$ctx" f
    build_ok -t app "$ctx"
    assert_layer_entry app "-rw-r--r-- 0:0 renamed" -6
    assert_layer_entry app "-rw-r--r-- 0:0 into/f" -5
    assert_layer_entry app "-rw-r--r-- 0:0 tmp/f" -4
    assert_layer_entry app "-rw-r--r-- 0:0 w/rel" -2
    assert_layer_entry app "-rw-r--r-- 0:0 w/f" -1
}

@test "missing parents of the destination are created 0755 root, or with --chmod and --chown" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY f /a/b/c/f
COPY --chmod=750 --chown=7:8 f /x/y/f
EOF
)
    echo f | add_file "$ctx" f
    build_ok -t app "$ctx"
    assert_equal "$(layer_listing app -2)" $'drwxr-xr-x 0:0 a\ndrwxr-xr-x 0:0 a/b\ndrwxr-xr-x 0:0 a/b/c\n-rw-r--r-- 0:0 a/b/c/f'
    # BuildKit (fsutil since 2025) gives new parents the --chmod mode
    assert_equal "$(layer_listing app -1)" $'drwxr-x--- 7:8 x\ndrwxr-x--- 7:8 x/y\n-rwxr-x--- 7:8 x/y/f'
}

@test "a missing source fails with its name, status 1" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY nothere /x
EOF
)
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_contains '"/nothere": not found'
    assert_stderr_contains "Dockerfile:2"
}

@test "COPY follows a symlinked directory of the image" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN mkdir /real && ln -s /real /link
COPY f /link/f
EOF
)
    echo f | add_file "$ctx" f
    build_ok -t app "$ctx"
    assert_layer_entry app "-rw-r--r-- 0:0 real/f" -1
    assert_no_layer_entry app link -1
}

# ---- .dockerignore ----------------------------------------------------------------

@test ".dockerignore'd files are invisible to COPY, wildcards and directory copies" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY . /ctx/
EOF
)
    printf '.git\nnode_modules\n*.log\ndist/\n.env\n!keep.log\n' | add_file "$ctx" .dockerignore
    for f in .git/HEAD node_modules/m/index.js app.log keep.log dist/out.js .env src/app.js; do
        echo x | add_file "$ctx" "$f"
    done
    build_ok -t app "$ctx"
    assert_equal "$(layer_listing app -1 | awk '{print $3}')" $'ctx\nctx/.dockerignore\nctx/Dockerfile\nctx/keep.log\nctx/src\nctx/src/app.js'
    ctx2=$(make_context <<'EOF'
FROM busybox
COPY *.log /logs/
EOF
)
    cp "$ctx/.dockerignore" "$ctx/app.log" "$ctx/keep.log" "$ctx2/"
    build_ok -t app2 "$ctx2"
    assert_equal "$(layer_listing app2 -1 | awk '{print $3}')" $'logs\nlogs/keep.log'
    ctx3=$(make_context <<'EOF'
FROM busybox
COPY .env /env
EOF
)
    cp "$ctx/.dockerignore" "$ctx/.env" "$ctx3/"
    run --separate-stderr kiln build "$ctx3"
    assert_status 1
    assert_stderr_contains '"/.env": not found'
}

@test "a Dockerfile-specific ignore file wins over .dockerignore" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY . /ctx/
EOF
)
    mkdir -p "$ctx/build"
    mv "$ctx/Dockerfile" "$ctx/build/app.Dockerfile"
    echo 'a' | add_file "$ctx" .dockerignore
    printf 'b\nbuild\n' | add_file "$ctx" build/app.Dockerfile.dockerignore
    touch "$ctx/a" "$ctx/b"
    build_ok -f "$ctx/build/app.Dockerfile" -t app "$ctx"
    assert_equal "$(layer_listing app -1 | awk '{print $3}')" $'ctx\nctx/.dockerignore\nctx/a'
}

# ---- --chown, --chmod -----------------------------------------------------------------

@test "--chown with names resolved in the image's passwd and group, and with numbers" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo 'app:x:1234:2345::/home/app:/bin/sh' >>/etc/passwd && echo 'app:x:2345:' >>/etc/group && echo 'grp:x:3456:' >>/etc/group
COPY --chown=app f /user-only
COPY --chown=app:grp f /user-group
COPY --chown=42:43 dir /numeric/
COPY --chown=bin f /bin-user
EOF
)
    echo f | add_file "$ctx" f
    echo g | add_file "$ctx" dir/g
    build_ok -t app "$ctx"
    assert_layer_entry app "-rw-r--r-- 1234:2345 user-only" -4
    assert_layer_entry app "-rw-r--r-- 1234:3456 user-group" -3
    assert_layer_entry app "drwxr-xr-x 42:43 numeric" -2
    assert_layer_entry app "-rw-r--r-- 42:43 numeric/g" -2
    assert_layer_entry app "-rw-r--r-- 2:2 bin-user" -1
}

@test "--chown with an unknown name: a clear error" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY --chown=nobody-here f /f
EOF
)
    touch "$ctx/f"
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_contains "nobody-here"
}

@test "--chmod in octal and symbolic form" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY --chmod=0750 f /octal
COPY --chmod=u+x,g-r,o= f /symbolic
COPY --chmod=a+X dir /dirx/
EOF
)
    echo f | add_file "$ctx" f 0644
    echo g | add_file "$ctx" dir/g 0644
    chmod 0750 "$ctx/dir"
    build_ok -t app "$ctx"
    assert_layer_entry app "-rwxr-x--- 0:0 octal" -3
    assert_layer_entry app "-rwx------ 0:0 symbolic" -2
    assert_layer_entry app "drwxr-x--x 0:0 dirx" -1
    assert_layer_entry app "-rw-r--r-- 0:0 dirx/g" -1
}

@test "--chmod with a bad value: a clear error" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY --chmod=99z f /f
EOF
)
    touch "$ctx/f"
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_contains "invalid chmod parameter"
}

# ---- --from, --link, --parents, --exclude ----------------------------------------

@test "COPY --from a stage by name and by index, and from an image" {
    ctx=$(make_context <<'EOF'
FROM busybox AS builder
RUN mkdir -p /out && echo built >/out/bin && chmod 755 /out/bin && chown 5:6 /out/bin
FROM scratch
COPY --from=builder /out/bin /by-name
COPY --from=0 /out /by-index
COPY --from=busybox /bin/busybox /from-image
EOF
)
    build_ok -t app "$ctx"
    assert_layer_entry app "-rwxr-xr-x 5:6 by-name" 0
    assert_layer_entry app "-rwxr-xr-x 5:6 by-index/bin" 1
    assert_layer_entry app "-rwxr-xr-x 0:0 from-image" 2
}

@test "COPY --link writes a layer that does not depend on the image below" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN mkdir -p /opt && mkdir -m 700 /opt/x
COPY --link f /opt/x/f
EOF
)
    echo f | add_file "$ctx" f
    build_ok -t app "$ctx"
    # the parents are new directories of the layer, not the image's /opt/x
    assert_equal "$(layer_listing app -1)" $'drwxr-xr-x 0:0 opt\ndrwxr-xr-x 0:0 opt/x\n-rw-r--r-- 0:0 opt/x/f'
    assert_config app '.history[-1].created_by' '"COPY f /opt/x/f # buildkit"'
}

@test "COPY --parents keeps the source paths, from a /./ pivot on" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY --parents a/b/f1 a/c/f2 /keep/
COPY --parents ./a/./b/f1 /pivot/
EOF
)
    touch "$ctx/a-b" && echo 1 | add_file "$ctx" a/b/f1 && echo 2 | add_file "$ctx" a/c/f2
    build_ok -t app "$ctx"
    assert_equal "$(layer_listing app -2 | awk '{print $3}')" $'keep\nkeep/a\nkeep/a/b\nkeep/a/b/f1\nkeep/a/c\nkeep/a/c/f2'
    assert_equal "$(layer_listing app -1 | awk '{print $3}')" $'pivot\npivot/b\npivot/b/f1'
}

@test "COPY --exclude leaves out what its patterns match" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY --exclude=*.tmp --exclude=secret/ . /app/
EOF
)
    for f in keep.c drop.tmp secret/key sub/also.tmp sub/ok.c; do echo x | add_file "$ctx" "$f"; done
    build_ok -t app "$ctx"
    assert_equal "$(layer_listing app -1 | awk '{print $3}')" $'app\napp/Dockerfile\napp/keep.c\napp/sub\napp/sub/also.tmp\napp/sub/ok.c'
}

# ---- ADD ------------------------------------------------------------------------------

@test "ADD extracts local tar archives: plain, gzip, bzip2, xz, zstd" {
    ctx=$(make_context <<'EOF'
FROM busybox
ADD plain.tar /plain/
ADD a.tar.gz /gz/
ADD a.tar.bz2 /bz2/
ADD a.tar.xz /xz/
ADD a.tar.zst /zst/
COPY a.tar.gz /copied.tar.gz
EOF
)
    src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src/d" && echo data >"$src/d/file" && ln -s file "$src/d/link" && ln "$src/d/file" "$src/d/hard"
    tar -C "$src" --owner=7 --group=8 --numeric-owner -cf "$ctx/plain.tar" d
    gzip -c "$ctx/plain.tar" >"$ctx/a.tar.gz"
    bzip2 -c "$ctx/plain.tar" >"$ctx/a.tar.bz2"
    xz -c "$ctx/plain.tar" >"$ctx/a.tar.xz"
    zstd -q -c "$ctx/plain.tar" >"$ctx/a.tar.zst"
    build_ok -t app "$ctx"
    for i in 1 2 3 4 5; do
        dir=$(layer_listing app "$i" | awk 'NR == 1 {print $3}')
        listing=$(layer_listing app "$i" | sed "s|$dir/|X/|g")
        assert_equal "$listing" $'drwxr-xr-x 0:0 '"$dir"$'\ndrwxr-xr-x 7:8 X/d\n-rw-r--r-- 7:8 X/d/file\nhrw-r--r-- 7:8 X/d/hard link to X/d/file\nlrwxrwxrwx 7:8 X/d/link -> file' "layer $i ($dir)"
    done
    assert_layer_entry app "-rw-r--r-- 0:0 copied.tar.gz" -1
}

@test "ADD of a URL: mode 0600, mtime from Last-Modified, --checksum" {
    www=$BATS_TEST_TMPDIR/www
    mkdir -p "$www" && echo payload >"$www/file.txt"
    touch -d '2020-02-03 04:05:06 UTC' "$www/file.txt"
    start_http "$www"
    sum=$(sha256sum "$www/file.txt" | cut -d' ' -f1)
    ctx=$(make_context <<EOF
FROM busybox
ADD http://127.0.0.1:$HTTP_PORT/file.txt /dl/
ADD --checksum=sha256:$sum http://127.0.0.1:$HTTP_PORT/file.txt /checked
EOF
)
    build_ok -t app "$ctx"
    assert_layer_entry app "-rw------- 0:0 dl/file.txt" -2
    assert_layer_entry app "-rw------- 0:0 checked" -1
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/checked")" payload
    assert_equal "$(TZ=UTC stat -c %y "$BATS_TEST_TMPDIR/root/dl/file.txt")" "2020-02-03 04:05:06.000000000 +0000" "mtime"
    bad=$(make_context <<EOF
FROM busybox
ADD --checksum=sha256:$(printf '0%.0s' $(seq 64)) http://127.0.0.1:$HTTP_PORT/file.txt /bad
EOF
)
    run --separate-stderr kiln build "$bad"
    assert_status 1
    assert_stderr_contains "digest mismatch"
}

@test "COPY of a URL is refused" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY http://127.0.0.1:9/x /x
EOF
)
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_contains "source can't be a URL for COPY"
}

@test "COPY heredoc sources become files" {
    ctx=$(make_context <<'EOF'
FROM busybox
ARG NAME=world
COPY <<EOT /greeting
hello ${NAME}
EOT
COPY <<one <<two /many/
first
one
second
two
EOF
)
    build_ok -t app "$ctx"
    assert_layer_entry app "-rw-r--r-- 0:0 greeting" -2
    assert_equal "$(layer_listing app -1 | awk '{print $3}')" $'many\nmany/one\nmany/two'
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/greeting")" "hello world"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/many/two")" "second"
}

# ---- links, odd files, the context's edges ------------------------------------------------

@test "hard links, symlinks, empty directories, sparse files and odd names survive" {
    ctx=$(make_context <<'EOF'
FROM busybox
COPY tree /tree
EOF
)
    t=$ctx/tree
    mkdir -p "$t/empty" "$t/dir"
    echo data >"$t/dir/file"
    ln "$t/dir/file" "$t/dir/hard"
    ln -s dir/file "$t/symlink"
    ln -s /etc/passwd "$t/absolute"
    echo s >"$t/with space"
    echo u >"$t/ünïcødé"
    truncate -s 4M "$t/sparse" && echo end >>"$t/sparse"
    build_ok -t app "$ctx"
    assert_equal "$(layer_listing app -1)" "drwxr-xr-x 0:0 tree
lrwxrwxrwx 0:0 tree/absolute -> /etc/passwd
drwxr-xr-x 0:0 tree/dir
-rw-r--r-- 0:0 tree/dir/file
hrw-r--r-- 0:0 tree/dir/hard link to tree/dir/file
drwxr-xr-x 0:0 tree/empty
-rw-r--r-- 0:0 tree/sparse
lrwxrwxrwx 0:0 tree/symlink -> dir/file
-rw-r--r-- 0:0 tree/with space
-rw-r--r-- 0:0 tree/ünïcødé"
    unpack_image app "$BATS_TEST_TMPDIR/root"
    cmp "$t/sparse" "$BATS_TEST_TMPDIR/root/tree/sparse"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/tree/ünïcødé")" u
}

@test "a symlink source is followed inside the context, never outside it" {
    secret=$BATS_TEST_TMPDIR/outside
    mkdir -p "$secret" && echo host-secret >"$secret/host-file"
    ctx=$(make_context <<'EOF'
FROM busybox
COPY inside /followed
COPY out /copied-link
EOF
)
    echo real | add_file "$ctx" real.txt
    ln -s real.txt "$ctx/inside"
    ln -s "$secret/host-file" "$ctx/out"
    run --separate-stderr kiln build -t app "$ctx"
    # BuildKit resolves a source's symlinks with the context as the root:
    # the host path does not exist there
    assert_status 1
    assert_stderr_contains '"/out": not found'
    ctx2=$(make_context <<'EOF'
FROM busybox
COPY inside /followed
COPY outdir/ /through/
EOF
)
    echo real | add_file "$ctx2" real.txt
    ln -s real.txt "$ctx2/inside"
    ln -s "$secret" "$ctx2/outdir"
    run --separate-stderr kiln build -t app "$ctx2"
    assert_status 1
    assert_stderr_contains '"/outdir": not found'
    ctx3=$(make_context <<'EOF'
FROM busybox
COPY inside /followed
COPY dir /dir
EOF
)
    echo real | add_file "$ctx3" real.txt
    ln -s real.txt "$ctx3/inside"
    mkdir "$ctx3/dir" && ln -s "$secret/host-file" "$ctx3/dir/link"
    build_ok -t app "$ctx3"
    assert_layer_entry app "-rw-r--r-- 0:0 followed" -2
    assert_equal "$(layer_listing app -1)" "drwxr-xr-x 0:0 dir
lrwxrwxrwx 0:0 dir/link -> $secret/host-file"
    for blob in "$(kiln_store)"/blobs/sha256/*; do
        ! zcat -f "$blob" 2>/dev/null | grep -qa host-secret || fail "the host file's content is in $blob"
    done
}

@test "a directory copied onto an existing directory leaves its mode and owner alone" {
    ctx=$(make_context <<'EOF2'
FROM busybox
COPY --chmod=700 d /tmp
COPY d /fresh
EOF2
)
    echo x | add_file "$ctx" d/x
    chmod 0750 "$ctx/d"
    build_ok -t app "$ctx"
    assert_equal "$(layer_listing app -2)" $'drwxrwxrwt 0:0 tmp\n-rwx------ 0:0 tmp/x' "onto /tmp"
    assert_equal "$(layer_listing app -1)" $'drwxr-x--- 0:0 fresh\n-rw-r--r-- 0:0 fresh/x' "to a new path"
}
