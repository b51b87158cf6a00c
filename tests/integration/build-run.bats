#!/usr/bin/env bats
# RUN --mount (cache, secret, ssh, bind, tmpfs) and RUN --network, as
# BuildKit gives them to a step: what the step sees, what is kept between
# builds, and what never reaches a layer.

load helpers
bats_require_minimum_version 1.5.0

setup_file() { use_bases busybox; }

teardown() {
    if [ -n "${AGENT_PID:-}" ]; then
        kill "$AGENT_PID" 2>/dev/null || true
    fi
}

# The content of FILE in image IMAGE.
file_in() {
    local dir=$BATS_TEST_TMPDIR/unpack-$RANDOM
    unpack_image "$1" "$dir" >/dev/null
    cat "$dir/$2"
}

# ---- type=cache -------------------------------------------------------------------

@test "a cache mount is kept between builds, and never in the layer" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=cache,target=/var/cache/app \
    n=$(cat /var/cache/app/count 2>/dev/null || echo 0); n=$((n + 1)); \
    echo $n >/var/cache/app/count; echo $n >/count
EOF
)
    build_ok -t app "$ctx"
    assert_equal "$(file_in app count)" 1
    build_ok --no-cache -t app "$ctx"
    assert_equal "$(file_in app count)" 2
    assert_no_layer_entry app var/cache/app/count -1
    assert_no_layer_entry app var/cache/app -1
}

@test "cache mounts with one id are shared, other ids are not" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=cache,id=shared,target=/a echo from-a >/a/file
RUN --mount=type=cache,id=shared,target=/b cat /b/file >/seen-b
RUN --mount=type=cache,id=other,target=/a ls /a >/seen-other
EOF
)
    build_ok -t app "$ctx"
    assert_equal "$(file_in app seen-b)" from-a
    assert_equal "$(file_in app seen-other)" ""
}

@test "sharing=locked and private keep parallel steps apart; shared does not" {
    # each step leaves its mark in the cache for 1.5 s and looks for the
    # other's: only steps that share the directory at the same time meet
    step='touch /c/$ME; for i in $(seq 30); do if [ -e /c/$OTHER ]; then echo CONFLICT; rm -f /c/$ME; exit 1; fi; sleep 0.05; done; rm -f /c/$ME'
    for sharing in locked private shared; do
        ctx=$(make_context <<EOF
FROM busybox AS one
ENV ME=one OTHER=two
RUN --mount=type=cache,id=lock-$sharing,sharing=$sharing,target=/c $step; echo one >/one
FROM busybox AS two
ENV ME=two OTHER=one
RUN --mount=type=cache,id=lock-$sharing,sharing=$sharing,target=/c $step; echo two >/two
FROM busybox
COPY --from=one /one /one
COPY --from=two /two /two
EOF
)
        if [ "$sharing" = shared ]; then
            build_fails --status 1 "$ctx"
            assert_output_contains CONFLICT
        else
            build_ok "$ctx"
        fi
    done
}

@test "a cache seeded from a stage starts with that stage's files" {
    ctx=$(make_context <<'EOF'
FROM busybox AS seed
RUN mkdir -p /deps && echo seeded >/deps/lib
FROM busybox
RUN --mount=type=cache,from=seed,source=/deps,target=/deps cat /deps/lib >/seen && echo added >/deps/new
RUN --mount=type=cache,from=seed,source=/deps,target=/deps ls /deps >/listing
EOF
)
    build_ok -t app "$ctx"
    assert_equal "$(file_in app seen)" seeded
    assert_equal "$(file_in app listing)" $'lib\nnew'
    assert_no_layer_entry app deps/lib -1
}

@test "a cache mount's mode, uid and gid apply when it is created" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=cache,id=owned,target=/c,uid=1000,gid=1001,mode=0710 stat -c '%u:%g %a' /c >/first
RUN --mount=type=cache,id=owned,target=/c,uid=1000,gid=1001,mode=0710 chmod 755 /c && stat -c %a /c >/second
RUN --mount=type=cache,id=owned,target=/c,uid=1000,gid=1001,mode=0710 stat -c %a /c >/third
EOF
)
    build_ok -t app "$ctx"
    if in_range_mode; then
        assert_equal "$(file_in app first)" "1000:1001 710"
    else
        # single-ID mode: one id, every file is root's in the container
        assert_equal "$(file_in app first)" "0:0 710"
    fi
    assert_equal "$(file_in app third)" 755 "mode after a step changed it"
}

# ---- type=secret ------------------------------------------------------------------------

@test "secrets from a file and from the environment, at their targets" {
    echo -n file-secret-value >"$BATS_TEST_TMPDIR/tok"
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=secret,id=tok test "$(cat /run/secrets/tok)" = file-secret-value && \
    ls -l /run/secrets/tok | cut -c1-10 >/mode
RUN --mount=type=secret,id=envsec,target=/etc/creds,mode=0440,uid=5,gid=6 \
    test "$(cat /etc/creds)" = env-secret-value && stat -c '%a %u:%g' /etc/creds >/creds-mode
RUN --mount=type=secret,id=tok,env=TOKEN test "$TOKEN" = file-secret-value && echo ok >/env-ok
EOF
)
    ENVSEC=env-secret-value build_ok --secret id=tok,src="$BATS_TEST_TMPDIR/tok" --secret id=envsec,env=ENVSEC -t app "$ctx"
    assert_equal "$(file_in app mode)" "-r--------"
    if in_range_mode; then
        assert_equal "$(file_in app creds-mode)" "440 5:6"
    else
        # single-ID mode: one id, every file is root's in the container
        assert_equal "$(file_in app creds-mode)" "440 0:0"
    fi
    assert_equal "$(file_in app env-ok)" ok
    assert_no_layer_entry app run/secrets -3
    assert_no_layer_entry app etc/creds -2
}

@test "a secret is in no blob, config, history or cache record" {
    value=kiln-secret-$RANDOM$RANDOM
    echo -n "$value" >"$BATS_TEST_TMPDIR/s"
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=secret,id=s cp /run/secrets/s /tmp/copy && rm /tmp/copy && echo used >/used
RUN --mount=type=secret,id=s,env=S echo "length ${#S}" >/len
EOF
)
    build_ok --secret id=s,src="$BATS_TEST_TMPDIR/s" -t app "$ctx"
    assert_equal "$(file_in app len)" "length ${#value}"
    store=$(kiln_store)
    for f in "$store"/blobs/sha256/* "$store"/cache/* "$store"/index.json; do
        [ -f "$f" ] || continue
        ! zcat -f "$f" 2>/dev/null | grep -qaF "$value" || fail "the secret is in $f"
    done
    ! grep -raF "$value" "$store" >/dev/null 2>&1 || fail "the secret is somewhere in the store"
    # and a changed secret does not invalidate the cache (its content is not in the key)
    echo -n other >"$BATS_TEST_TMPDIR/s"
    run --separate-stderr kiln build --progress=plain --secret id=s,src="$BATS_TEST_TMPDIR/s" "$ctx"
    assert_success
    assert_equal "$(grep -c '^#[0-9]* CACHED' <<<"$stderr")" 3 "cached steps"
}

@test "a required secret that is missing fails; an optional one is skipped" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=secret,id=opt test ! -e /run/secrets/opt && echo skipped >/opt
EOF
)
    build_ok -t app "$ctx"
    assert_equal "$(file_in app opt)" skipped
    ctx2=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=secret,id=needed,required=true true
EOF
)
    run --separate-stderr kiln build "$ctx2"
    assert_status 1
    assert_stderr_contains "secret needed: not found"
}

# ---- type=ssh ----------------------------------------------------------------------------

@test "type=ssh forwards an agent socket (--ssh default) and key files (--ssh ID=KEY)" {
    cp "$(helper_bin agent-ids)" "$BATS_TEST_TMPDIR/agent-ids"
    ctx=$(make_context <<'EOF'
FROM busybox
COPY agent-ids /usr/bin/agent-ids
RUN --mount=type=ssh agent-ids >/default-keys && test -S "$SSH_AUTH_SOCK"
RUN --mount=type=ssh,id=deploy,target=/agent.sock SSH_AUTH_SOCK=/agent.sock agent-ids >/deploy-keys
EOF
)
    cp "$BATS_TEST_TMPDIR/agent-ids" "$ctx/"
    ssh-keygen -q -t ed25519 -N '' -C agent-key -f "$BATS_TEST_TMPDIR/agent-key"
    ssh-keygen -q -t ed25519 -N '' -C deploy-key -f "$BATS_TEST_TMPDIR/deploy-key"
    eval "$(ssh-agent -s -a "$BATS_TEST_TMPDIR/agent.sock")" >/dev/null
    AGENT_PID=$SSH_AGENT_PID
    ssh-add -q "$BATS_TEST_TMPDIR/agent-key" 2>/dev/null
    build_ok --ssh default --ssh deploy="$BATS_TEST_TMPDIR/deploy-key" -t app "$ctx"
    assert_equal "$(file_in app default-keys)" $'1 keys\nagent-key'
    assert_equal "$(file_in app deploy-keys)" $'1 keys\ndeploy-key'
    assert_no_layer_entry app agent.sock -1
    assert_no_layer_entry app run/buildkit -2
}

@test "type=ssh,required without --ssh fails with a clear message" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=ssh,required=true true
EOF
)
    KILN_ROOT=$(kiln_store) run --separate-stderr env -u SSH_AUTH_SOCK "$KILN" build "$ctx"
    assert_status 1
    assert_stderr_contains "no SSH key default forwarded"
}

# ---- type=bind ------------------------------------------------------------------------------

@test "a bind of the context is read-only; rw writes reach neither the context nor the layer" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=bind,source=src,target=/src cat /src/input >/seen && ! touch /src/new 2>/dev/null
RUN --mount=type=bind,source=src,target=/src,rw echo changed >/src/input && cat /src/input >/seen-rw
EOF
)
    echo original | add_file "$ctx" src/input
    build_ok -t app "$ctx"
    assert_equal "$(file_in app seen)" original
    assert_equal "$(file_in app seen-rw)" changed
    assert_equal "$(cat "$ctx/src/input")" original "the context file"
    assert_no_layer_entry app src/input -1
}

@test "a bind's content is part of the step's cache key" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=bind,target=/ctx cat /ctx/input >/seen
EOF
)
    echo one | add_file "$ctx" input
    build_ok -t app "$ctx"
    echo two >"$ctx/input"
    build_ok -t app "$ctx"
    assert_equal "$(file_in app seen)" two
}

@test "a bind of the context hides .dockerignore'd files" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=bind,target=/ctx ls -A /ctx >/listing
EOF
)
    echo '*.secret' | add_file "$ctx" .dockerignore
    touch "$ctx/visible" "$ctx/hidden.secret"
    build_ok -t app "$ctx"
    assert_equal "$(file_in app listing)" $'.dockerignore\nDockerfile\nvisible'
}

@test "binds from a stage, an image and a named context" {
    named=$BATS_TEST_TMPDIR/named
    mkdir -p "$named" && echo from-named >"$named/file"
    ctx=$(make_context <<'EOF'
FROM busybox AS build
RUN echo from-stage >/artifact
FROM busybox
RUN --mount=type=bind,from=build,source=/artifact,target=/a cat /a >/stage
RUN --mount=type=bind,from=busybox,target=/img test -x /img/bin/busybox && echo yes >/image
RUN --mount=type=bind,from=extra,target=/n cat /n/file >/named
EOF
)
    build_ok --build-context extra="$named" -t app "$ctx"
    assert_equal "$(file_in app stage)" from-stage
    assert_equal "$(file_in app image)" yes
    assert_equal "$(file_in app named)" from-named
}

# ---- type=tmpfs, --network -------------------------------------------------------------------

@test "a tmpfs mount is empty, sized, and not in the layer" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=tmpfs,target=/scratch,size=2m df -k /scratch | tail -1 | awk '{print $2}' >/size && \
    echo x >/scratch/file && grep -q ' /scratch tmpfs' /proc/mounts
EOF
)
    build_ok -t app "$ctx"
    assert_equal "$(file_in app size)" 2048
    assert_no_layer_entry app scratch/file -1
}

@test "RUN --network=none and --network none give loopback only; the default is the host's" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN awk 'NR > 2 {print $1}' /proc/net/dev | sort | tr -d : >/default
RUN --network=none awk 'NR > 2 {print $1}' /proc/net/dev | tr -d : >/none
RUN --network=host awk 'NR > 2 {print $1}' /proc/net/dev | sort | tr -d : >/host
EOF
)
    build_ok -t app "$ctx"
    assert_equal "$(file_in app none)" lo
    host=$(awk 'NR > 2 {print $1}' /proc/net/dev | sort | tr -d :)
    assert_equal "$(file_in app default)" "$host"
    assert_equal "$(file_in app host)" "$host"
    ctx2=$(make_context <<'EOF'
FROM busybox
RUN awk 'NR > 2 {print $1}' /proc/net/dev | tr -d : >/flag
EOF
)
    build_ok --network none -t app2 "$ctx2"
    assert_equal "$(file_in app2 flag)" lo
}
