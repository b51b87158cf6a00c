#!/usr/bin/env bats
# The build cache: content-addressed, per user, in the store.  A full hit
# starts no container and writes no layer; what a change invalidates follows
# BuildKit's rules; independent stages build at the same time.

load helpers
bats_require_minimum_version 1.5.0

setup_file() { use_bases busybox; }

# The steps of the last plain-progress build ($stderr) that were CACHED,
# and those that ran, as "[i/n] TEXT" lines.
steps_that() {
    awk -v want="$1" '
        /^#[0-9]+ \[/ && !/^#[0-9]+ \[internal\]/ { id = $1; sub(/^#[0-9]+ /, ""); name[id] = $0; next }
        $2 == want && ($1 in name) { print name[$1] }' <<<"$stderr"
}
cached_steps() { steps_that CACHED; }
run_steps() { steps_that DONE; }

build_plain() {
    run --separate-stderr kiln build --progress=plain "$@"
    [ "$status" -eq 0 ] || fail "kiln build $* failed" "$(_kiln_show_output)"
}

# A Dockerfile of 30 instructions (COPY, RUN, metadata), dependencies first.
thirty() {
    local ctx
    ctx=$(make_context <<'EOF'
FROM busybox
ARG VERSION=1
ENV APP_HOME=/app LANG=C.UTF-8
ENV DEBUG=0
LABEL org.opencontainers.image.title=app
WORKDIR /app
COPY deps.txt ./
RUN cat deps.txt >/deps.installed
RUN --mount=type=cache,target=/var/cache/deps cp deps.txt /var/cache/deps/
COPY lib/ lib/
RUN ls lib >/lib.list
ENV PATH=/app/bin:$PATH
COPY src/ src/
RUN cat src/* >/app/built
RUN echo "$VERSION" >/app/version
USER 0
RUN mkdir -p /app/bin && ln -sf /bin/busybox /app/bin/tool
EXPOSE 8080
VOLUME /data
COPY config.ini /etc/app.ini
RUN chmod 600 /etc/app.ini
LABEL version=1
HEALTHCHECK --interval=30s CMD tool true
STOPSIGNAL SIGTERM
RUN echo done >/app/done
COPY README /app/README
RUN wc -c /app/README >/app/readme.size
WORKDIR /app/src
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/built"]
EOF
)
    echo "dep-a dep-b" | add_file "$ctx" deps.txt
    echo lib | add_file "$ctx" lib/one.sh
    echo main | add_file "$ctx" src/main.c
    echo util | add_file "$ctx" src/util.c
    echo "[app]" | add_file "$ctx" config.ini
    echo readme | add_file "$ctx" README
    echo "$ctx"
}

@test "a fully cached rebuild: every step CACHED, the same image id" {
    ctx=$(thirty)
    build_plain -t app "$ctx"
    first=$(image_manifest app | jq -r .config.digest)
    build_plain -t app "$ctx"
    assert_equal "$(run_steps)" "" "steps that ran"
    assert_equal "$(grep -c . "$ctx/Dockerfile")" 30 "instructions"
    assert_equal "$(cached_steps | wc -l)" 17 "CACHED steps (FROM and the 16 layer steps)"
    assert_equal "$(image_manifest app | jq -r .config.digest)" "$first" "image id"
}

@test "a fully cached rebuild starts no container, mounts nothing, writes no layer" {
    command -v strace >/dev/null || fail "strace is not installed (scripts/install-deps.sh test)"
    ctx=$(thirty)
    build_ok -t app "$ctx"
    store=$(kiln_store)
    blobs=$(ls "$store/blobs/sha256" | sort)
    trees=$(ls "$store/trees" | sort)
    log=$BATS_TEST_TMPDIR/strace.log
    # (LeakSanitizer cannot run under ptrace: an ASan build checks leaks elsewhere)
    KILN_ROOT=$store ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 run strace -f -qq -o "$log" \
        -e trace=clone,clone3,vfork,fork,execve,mount,fsmount,move_mount,mount_setattr,pivot_root \
        "$KILN" build -q -t app "$ctx"
    assert_success
    # namespaces of kiln's own (and newuidmap in range mode), but nothing of a container
    ! grep -E '(mount|fsmount|move_mount|mount_setattr|pivot_root)\(' "$log" | grep -v 'MS_REC\|MS_PRIVATE' ||
        fail "something was mounted" "$(grep -E 'mount' "$log")"
    ! grep -E 'CLONE_NEW(PID|NS|UTS|IPC|NET)' "$log" || fail "a container was started"
    ! grep -E 'execve\(' "$log" | grep -v -E "\"$KILN\"|newuidmap|newgidmap" ||
        fail "a program was started" "$(grep execve "$log")"
    assert_equal "$(ls "$store/blobs/sha256" | sort)" "$blobs" "blobs"
    assert_equal "$(ls "$store/trees" | sort)" "$trees" "layer trees"
    assert_equal "$(ls -A "$store/tmp")" "" "tmp/"
}

@test "editing one COPY source redoes that COPY and what follows, nothing before" {
    ctx=$(thirty)
    build_plain -t app "$ctx"
    echo "main v2" >"$ctx/src/main.c"
    build_plain -t app "$ctx"
    assert_equal "$(cached_steps | sed 's/^\[ *\([0-9]*\)\/.*/\1/' | tr '\n' ' ')" "1 2 3 4 5 6 7 " "cached steps"
    assert_equal "$(run_steps | head -1)" "[ 8/17] COPY src/ src/" "first step that ran"
    assert_equal "$(run_steps | wc -l)" 10 "steps that ran"
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/app/built")" $'main v2\nutil'
}

@test "the cache never looks at mtimes: touching sources keeps every step cached" {
    ctx=$(thirty)
    build_plain -t app "$ctx"
    find "$ctx" -exec touch -d '2001-01-01' {} +
    build_plain -t app "$ctx"
    assert_equal "$(run_steps)" "" "steps that ran"
}

@test "a changed build-arg invalidates from its first use on" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo before >/before
ARG MODE=dev
RUN echo "$MODE" >/mode
RUN echo after >/after
EOF
)
    build_plain -t app "$ctx"
    build_plain --build-arg MODE=production -t app "$ctx"
    assert_equal "$(cached_steps)" $'[1/4] FROM docker.io/library/busybox:latest@'"$(image_digest busybox)"$'\n[2/4] RUN echo before >/before'
    assert_equal "$(run_steps)" $'[3/4] RUN echo "production" >/mode\n[4/4] RUN echo after >/after'
}

@test "a LABEL or EXPOSE change does not invalidate later steps (BuildKit)" {
    ctx=$(make_context <<'EOF'
FROM busybox
LABEL version=1
RUN echo built >/built
EOF
)
    build_plain -t app "$ctx"
    sed -i 's/version=1/version=2/' "$ctx/Dockerfile"
    build_plain -t app "$ctx"
    assert_equal "$(run_steps)" "" "steps that ran"
    assert_config app .config.Labels.version '"2"'
}

@test "the cache is the user's store: another store builds everything again" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo x >/x
EOF
)
    build_plain -t app "$ctx"
    other=$BATS_TEST_TMPDIR/other
    KILN_TEST_STORE=$other use_bases busybox
    KILN_TEST_STORE=$other build_plain -t app "$ctx"
    assert_equal "$(run_steps)" "[2/2] RUN echo x >/x"
    [ "$(stat -c %a "$(kiln_store)")" = 700 ] || fail "the store is not 0700"
}

@test "independent stages build at the same time" {
    # each stage waits for the other to show up in a shared cache mount
    ctx=$(make_context <<'EOF'
FROM busybox AS one
RUN --mount=type=cache,id=meet,target=/m touch /m/one && \
    for i in $(seq 200); do [ -e /m/two ] && exit 0; sleep 0.05; done; exit 1
FROM busybox AS two
RUN --mount=type=cache,id=meet,target=/m touch /m/two && \
    for i in $(seq 200); do [ -e /m/one ] && exit 0; sleep 0.05; done; exit 1
FROM busybox
COPY --from=one /etc/hostname* /one/
COPY --from=two /etc/hostname* /two/
RUN echo joined >/joined
EOF
)
    build_ok -t app "$ctx"
}

@test "a failing stage stops the others at once: status 1, its error reported, not theirs" {
    ctx=$(make_context <<'EOF'
FROM busybox AS slow
RUN sleep 60 && echo slow >/slow
FROM busybox AS broken
RUN sleep 1 && echo breaking && exit 7
FROM busybox
COPY --from=slow /slow /slow
COPY --from=broken /etc/passwd /p
EOF
)
    start=$(date +%s)
    run --separate-stderr kiln build --progress=plain "$ctx"
    assert_status 1
    [ $(($(date +%s) - start)) -lt 20 ] || fail "the slow stage was not stopped"
    assert_stderr_contains "kiln: error: Dockerfile:4: RUN sleep 1 && echo breaking && exit 7"
    assert_stderr_contains "exit code: 7"
    assert_stderr_matches $'\[slow 2/2\] RUN sleep 60 && echo slow >/slow\n(#[0-9]+ .*\n)*#[0-9]+ CANCELED'
}

@test "SIGINT stops every running stage at once: status 130, nothing left in tmp/" {
    ctx=$(make_context <<'EOF2'
FROM busybox AS a
RUN sleep 60
FROM busybox AS b
RUN sleep 60
FROM busybox
COPY --from=a /etc/passwd /a
COPY --from=b /etc/passwd /b
EOF2
)
    KILN_ROOT=$(kiln_store) "$KILN" build --progress=plain "$ctx" >"$BATS_TEST_TMPDIR/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        [ "$(grep -c '] RUN sleep 60' "$BATS_TEST_TMPDIR/log")" -ge 2 ] && break
        sleep 0.1
    done
    sleep 0.5
    start=$(date +%s)
    kill -INT "$pid"
    status=0
    wait "$pid" || status=$?
    assert_equal "$status" 130 "exit status"
    [ $(($(date +%s) - start)) -lt 10 ] || fail "kiln took $(($(date +%s) - start)) s to stop"
    grep -q "interrupted by SIGINT" "$BATS_TEST_TMPDIR/log" || fail "no message" "$(cat "$BATS_TEST_TMPDIR/log")"
    assert_equal "$(ls "$(kiln_store)/tmp" | grep -v '\.lock$')" "" "tmp/"
}
