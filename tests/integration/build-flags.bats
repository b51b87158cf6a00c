#!/usr/bin/env bats
# The flags of kiln build, docker build's meanings: where the Dockerfile and
# the context come from, names, arguments, targets, outputs, RUN settings,
# layer compression; and clear usage errors (status 2) for bad flags.

load helpers
bats_require_minimum_version 1.5.0

setup_file() { use_bases busybox; }

teardown() {
    local f
    for f in "$BATS_TEST_TMPDIR"/*.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
}

# A static HTTP server for DIR on 127.0.0.1; sets HTTP_PORT.
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

file_in() {
    local dir=$BATS_TEST_TMPDIR/unpack-$RANDOM
    unpack_image "$1" "$dir" >/dev/null
    cat "$dir/$2"
}

# ---- the Dockerfile and the context ---------------------------------------------

@test "-t several names; -f a Dockerfile outside the context" {
    ctx=$(make_context </dev/null)
    rm "$ctx/Dockerfile"
    echo data | add_file "$ctx" data
    df=$BATS_TEST_TMPDIR/elsewhere.Dockerfile
    printf 'FROM busybox\nCOPY data /data\n' >"$df"
    build_ok -t one -t two:2 -t localhost:5000/three/x:y -f "$df" "$ctx"
    d=$(image_digest one)
    assert_equal "$(image_digest two:2)" "$d"
    assert_equal "$(image_digest localhost:5000/three/x:y)" "$d"
    assert_layer_entry one "-rw-r--r-- 0:0 data" -1
}

@test "-f - reads the Dockerfile from stdin" {
    ctx=$(make_context </dev/null)
    echo data | add_file "$ctx" data
    run --separate-stderr kiln build -t app -f - "$ctx" <<'EOF'
FROM busybox
COPY data /from-stdin
EOF
    assert_success
    assert_layer_entry app "-rw-r--r-- 0:0 from-stdin" -1
}

@test "context '-': a tar on stdin, its Dockerfile inside" {
    src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src/sub"
    printf 'FROM busybox\nCOPY sub/f /f\n' >"$src/Dockerfile"
    echo tarred >"$src/sub/f"
    tar -C "$src" -czf "$BATS_TEST_TMPDIR/ctx.tar.gz" .
    run --separate-stderr kiln build -t app - <"$BATS_TEST_TMPDIR/ctx.tar.gz"
    assert_success
    assert_equal "$(file_in app f)" tarred
}

@test "context '-': a plain Dockerfile on stdin builds with an empty context" {
    run --separate-stderr kiln build -t app - <<'EOF'
FROM busybox
RUN echo piped >/piped
EOF
    assert_success
    assert_equal "$(file_in app piped)" piped
    # COPY has nothing to copy from
    run --separate-stderr kiln build - <<'EOF'
FROM busybox
COPY x /x
EOF
    assert_failure
    assert_stderr_contains '"/x": not found'
}

@test "the build says which identity mode and storage driver it uses" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN true
EOF
)
    run --separate-stderr kiln build --no-cache --progress=plain "$ctx"
    assert_success
    assert_stderr_contains "in $(kiln_test_mode) identity mode"
    assert_stderr_contains "storage driver: "
}

@test "context URL: a tar over http, with -f naming a file inside it" {
    src=$BATS_TEST_TMPDIR/src
    mkdir -p "$src/docker" "$BATS_TEST_TMPDIR/www"
    printf 'FROM busybox\nCOPY f /f\n' >"$src/docker/app.Dockerfile"
    echo from-url >"$src/f"
    tar -C "$src" -cf "$BATS_TEST_TMPDIR/www/ctx.tar" .
    start_http "$BATS_TEST_TMPDIR/www"
    build_ok -t app -f docker/app.Dockerfile "http://127.0.0.1:$HTTP_PORT/ctx.tar"
    assert_equal "$(file_in app f)" from-url
    run --separate-stderr kiln build "http://127.0.0.1:$HTTP_PORT/missing.tar"
    assert_status 1
    assert_stderr_contains "missing.tar"
}

# ---- arguments, targets, names --------------------------------------------------

@test "--build-arg K=V, and --build-arg K from the environment (dropped when unset)" {
    ctx=$(make_context <<'EOF'
FROM busybox
ARG A=default-a
ARG B=default-b
ARG C=default-c
RUN echo "$A $B $C" >/args
EOF
)
    B=env-b run --separate-stderr kiln build --build-arg A=given --build-arg B --build-arg C -t app "$ctx"
    assert_success
    assert_equal "$(file_in app args)" "given env-b default-c"
}

@test "an unused --build-arg is a warning, not an error" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN true
EOF
)
    run --separate-stderr kiln build --build-arg UNUSED=1 "$ctx"
    assert_success
    assert_stderr_contains "UNUSED"
}

@test "--target builds the stages that stage needs, and no others" {
    ctx=$(make_context <<'EOF'
FROM busybox AS deps
RUN echo deps >/deps
FROM busybox AS unrelated
RUN echo must-not-run && exit 1
FROM deps AS builder
RUN echo builder >/builder
FROM busybox
COPY --from=builder /builder /final
EOF
)
    run --separate-stderr kiln build --progress=plain --target builder -t app "$ctx"
    assert_success
    assert_stderr_contains "[builder 1/1] RUN echo builder"
    [[ "$stderr" != *must-not-run* ]] || fail "the unrelated stage ran"
    assert_layer_entry app "-rw-r--r-- 0:0 builder" -1
    run --separate-stderr kiln build --target nosuch "$ctx"
    assert_status 1
    assert_stderr_contains "nosuch"
}

@test "--label adds labels over the Dockerfile's; --iidfile; -q prints only the id" {
    ctx=$(make_context <<'EOF'
FROM busybox
LABEL a=dockerfile b=dockerfile
EOF
)
    run --separate-stderr kiln build -q --label b=flag --label c=flag --iidfile "$BATS_TEST_TMPDIR/iid" -t app "$ctx"
    assert_success
    [[ "$output" =~ ^sha256:[0-9a-f]{64}$ ]] || fail "stdout is not one image id: $output"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/iid")" "$output" "--iidfile"
    assert_equal "$(image_config app | jq -r .config.Labels.b)" flag
    assert_config app '.config.Labels' '{"a":"dockerfile","b":"flag","c":"flag"}'
    assert_equal "$(image_manifest app | jq -r .config.digest)" "$output" "image id = config digest"
    [[ "$stderr" != *"#1 "* ]] || fail "-q printed progress: $stderr"
}

@test "--no-cache rebuilds every step; --pull re-resolves the base from its registry" {
    command -v docker-registry >/dev/null || fail "docker-registry is not installed"
    "$BATS_TEST_DIRNAME/../registry/registry.sh" start "$BATS_TEST_TMPDIR/reg" 3>&-
    reg=127.0.0.1:$(cat "$BATS_TEST_TMPDIR/reg/port")
    cp "$BATS_TEST_TMPDIR/reg/pid" "$BATS_TEST_TMPDIR/registry.pid"
    kiln_ok push -q busybox "$reg/base:1"
    ctx=$(make_context <<EOF
FROM $reg/base:1
RUN ls /version 2>/dev/null >/seen || echo none >/seen
EOF
)
    run --separate-stderr kiln build --progress=plain -t app "$ctx"
    assert_success
    run --separate-stderr kiln build --progress=plain --no-cache -t app "$ctx"
    assert_success
    assert_equal "$(grep -c '^#[0-9]* CACHED' <<<"$stderr")" 1 "CACHED steps with --no-cache (the FROM)"
    v2=$(make_context <<'EOF'
FROM busybox
RUN echo 2 >/version
EOF
)
    build_ok -t v2 "$v2"
    kiln_ok push -q v2 "$reg/base:1"
    build_ok -t app "$ctx"
    assert_equal "$(file_in app seen)" none "without --pull: the base in the store"
    build_ok --pull -t app "$ctx"
    assert_equal "$(file_in app seen)" /version "with --pull: the registry's new base"
    "$BATS_TEST_DIRNAME/../registry/registry.sh" stop "$BATS_TEST_TMPDIR/reg" 3>&-
}

# ---- secrets, ssh ------------------------------------------------------------------

@test "--secret id=ID alone takes the environment variable ID" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=secret,id=MY_TOKEN test "$(cat /run/secrets/MY_TOKEN)" = from-env && echo ok >/ok
EOF
)
    MY_TOKEN=from-env build_ok --secret id=MY_TOKEN -t app "$ctx"
    assert_equal "$(file_in app ok)" ok
}

@test "malformed --secret and --ssh are usage errors" {
    run --separate-stderr kiln build --secret src=/x .
    assert_status 2
    assert_stderr_contains "--secret needs an id"
    run --separate-stderr kiln build --secret id=a,bogus=1 .
    assert_status 2
    assert_stderr_contains "unknown field 'bogus'"
    run --separate-stderr kiln build --ssh =x .
    assert_status 2
    assert_stdout_empty
}

# ---- outputs ---------------------------------------------------------------------------

@test "-o type=local and type=tar write the image's file system" {
    ctx=$(make_context <<'EOF'
FROM scratch
COPY --chmod=0755 tool /bin/tool
COPY data /share/data
EOF
)
    echo '#!/bin/sh' | add_file "$ctx" tool
    echo d | add_file "$ctx" data
    build_ok -o type=local,dest="$BATS_TEST_TMPDIR/out" -o type=tar,dest="$BATS_TEST_TMPDIR/out.tar" "$ctx"
    assert_file_mode "$BATS_TEST_TMPDIR/out/bin/tool" 0755
    assert_equal "$(cat "$BATS_TEST_TMPDIR/out/share/data")" d
    assert_equal "$(tar -tf "$BATS_TEST_TMPDIR/out.tar" | sort | tr '\n' ' ')" "bin/ bin/tool share/ share/data "
    kiln build -o - "$ctx" >"$BATS_TEST_TMPDIR/stdout.tar" 2>/dev/null || fail "kiln build -o - failed"
    assert_equal "$(tar -tf "$BATS_TEST_TMPDIR/stdout.tar" | sort | tr '\n' ' ')" "bin/ bin/tool share/ share/data " "the tar on stdout"
}

@test "-o type=oci and type=docker archives load with skopeo and podman" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo archived >/a
CMD ["cat", "/a"]
EOF
)
    build_ok -t app:1 -o type=oci,dest="$BATS_TEST_TMPDIR/oci.tar" -o type=docker,dest="$BATS_TEST_TMPDIR/docker.tar" "$ctx"
    id=$(image_manifest app:1 | jq -r .config.digest)
    run skopeo inspect --config "oci-archive:$BATS_TEST_TMPDIR/oci.tar"
    assert_success
    assert_equal "$(jq -c .config.Cmd <<<"$output")" '["cat","/a"]'
    run skopeo inspect "docker-archive:$BATS_TEST_TMPDIR/docker.tar"
    assert_success
    assert_equal "$(jq '.Layers | length' <<<"$output")" "$(layer_count app:1)"
    export CONTAINERS_STORAGE_CONF=$BATS_TEST_TMPDIR/storage.conf
    printf '[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' \
        "$BATS_TEST_TMPDIR/podman/root" "$BATS_TEST_TMPDIR/podman/run" >"$CONTAINERS_STORAGE_CONF"
    run podman load -i "$BATS_TEST_TMPDIR/docker.tar"
    assert_success
    assert_output_contains "app:1"
    run podman load -i "$BATS_TEST_TMPDIR/oci.tar"
    assert_success
    run podman image inspect --format '{{.Id}}' docker.io/library/app:1
    assert_success
    assert_equal "sha256:$output" "$id" "podman's image id"
}

@test "--build-context NAME=DIR for COPY --from and FROM; NAME=docker-image://REF" {
    dir=$BATS_TEST_TMPDIR/assets
    mkdir -p "$dir/img" && echo logo >"$dir/img/logo.svg"
    ctx=$(make_context <<'EOF'
FROM assets AS raw
FROM base
COPY --from=assets /img/logo.svg /logo.svg
COPY --from=raw /img /img-from-stage
EOF
)
    build_ok --build-context assets="$dir" --build-context base=docker-image://busybox -t app "$ctx"
    assert_equal "$(layer_count app)" $(($(layer_count busybox) + 2)) "layer count"
    assert_layer_entry app "-rw-r--r-- 0:0 logo.svg" -2
    assert_layer_entry app "-rw-r--r-- 0:0 img-from-stage/logo.svg" -1
}

@test "--timestamp clamps file times and the config's created" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN touch /new
COPY f /f
EOF
)
    echo f | add_file "$ctx" f
    build_ok --timestamp 1000000000 -t app "$ctx"
    assert_config app .created '"2001-09-09T01:46:40Z"'
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(stat -c %Y "$BATS_TEST_TMPDIR/root/new")" 1000000000
    assert_equal "$(stat -c %Y "$BATS_TEST_TMPDIR/root/f")" 1000000000
    run --separate-stderr kiln build --timestamp yesterday "$ctx"
    assert_status 2
}

# ---- RUN settings -----------------------------------------------------------------------

@test "--add-host, --shm-size and --ulimit reach RUN" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN grep myhost /etc/hosts >/hosts && df -k /dev/shm | tail -1 | awk '{print $2}' >/shm && ulimit -n >/nofile
EOF
)
    build_ok --add-host myhost:10.1.2.3 --shm-size 8m --ulimit nofile=512:1024 -t app "$ctx"
    assert_equal "$(file_in app hosts)" $'10.1.2.3\tmyhost'
    assert_equal "$(file_in app shm)" 8192
    assert_equal "$(file_in app nofile)" 512
    assert_no_layer_entry app etc/hosts -1
}

@test "--compression gzip, zstd, none and --compression-level" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN seq 1 20000 >/numbers
EOF
)
    for c in gzip zstd none; do
        build_ok --no-cache --compression "$c" --compression-level 3 -t "app-$c" "$ctx"
    done
    assert_equal "$(image_manifest app-gzip | jq -r '.layers[-1].mediaType')" application/vnd.oci.image.layer.v1.tar+gzip
    assert_equal "$(image_manifest app-zstd | jq -r '.layers[-1].mediaType')" application/vnd.oci.image.layer.v1.tar+zstd
    assert_equal "$(image_manifest app-none | jq -r '.layers[-1].mediaType')" application/vnd.oci.image.layer.v1.tar
    assert_equal "$(file_in app-zstd numbers | tail -1)" 20000
    store_check
}

# ---- usage errors --------------------------------------------------------------------------

@test "unknown and malformed flags: status 2, the flag named, nothing on stdout" {
    for args in "--no-such-flag ." "--network bogus ." "--compression lz4 ." "--compression-level x ." \
        "--progress fancy ." "--output type=weird,dest=x ." "--output type=tar ." "--ulimit nofile ." \
        "--ulimit nosuch=1 ." "--add-host nocolon ." "--shm-size lots ." "--label novalue ." \
        "--build-arg =x ." "-t UPPER:case ." "--timestamp -5 ." "--build-context novalue ."; do
        # shellcheck disable=SC2086
        run --separate-stderr kiln build $args
        [ "$status" -eq 2 ] || fail "kiln build $args: status $status, expected 2" "$stderr"
        [ -z "$output" ] || fail "kiln build $args wrote to stdout: $output"
        [[ "$stderr" == *"kiln"* ]] || fail "kiln build $args: no message"
    done
}
