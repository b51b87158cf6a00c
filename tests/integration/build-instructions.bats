#!/usr/bin/env bats
# kiln build, instruction by instruction: the image config, history and
# layers each Dockerfile instruction gives, as BuildKit gives them.

load helpers
bats_require_minimum_version 1.5.0

setup_file() { use_bases busybox; }

# ---- FROM -------------------------------------------------------------------------

@test "FROM image:tag keeps the base's layers and platform" {
    ctx=$(make_context <<'EOF'
FROM busybox:latest
RUN echo hi >/greeting
EOF
)
    build_ok -t app "$ctx"
    assert_equal "$(layer_count app)" $(($(layer_count busybox) + 1)) "layer count"
    assert_config app '.os' '"linux"'
    assert_config app '.architecture' "\"$(image_config busybox | jq -r .architecture)\""
    assert_layer_entry app "-rw-r--r-- 0:0 greeting" -1
}

@test "FROM image@digest uses exactly that manifest" {
    digest=$(image_digest busybox)
    ctx=$(make_context <<EOF
FROM busybox@$digest
RUN true
EOF
)
    run --separate-stderr kiln build --progress=plain -t app "$ctx"
    assert_success
    assert_stderr_contains "FROM docker.io/library/busybox@$digest"
}

@test "FROM scratch: only the layers of the Dockerfile" {
    ctx=$(make_context <<'EOF'
FROM scratch
COPY hello /hello
EOF
)
    echo hi | add_file "$ctx" hello
    build_ok -t app "$ctx"
    assert_equal "$(layer_count app)" 1 "layer count"
    assert_equal "$(layer_listing app)" "-rw-r--r-- 0:0 hello" "layer"
    assert_config app '.config.Env' '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
}

@test "FROM a stage by name (any case) starts from that stage" {
    ctx=$(make_context <<'EOF'
FROM busybox AS Base
RUN echo base >/base
ENV FROM_BASE=1
FROM base
RUN cat /base >/copy
EOF
)
    build_ok -t app "$ctx"
    assert_layer_entry app "-rw-r--r-- 0:0 base" -2
    assert_layer_entry app "-rw-r--r-- 0:0 copy" -1
    assert_config app '.config.Env[1]' '"FROM_BASE=1"'
}

@test "FROM takes its image name from a global ARG" {
    ctx=$(make_context <<'EOF'
ARG BASE=nothing
FROM ${BASE}
RUN true
EOF
)
    build_ok --build-arg BASE=busybox -t app "$ctx"
    assert_equal "$(layer_count app)" $(($(layer_count busybox) + 1)) "layer count"
}

@test "FROM --platform=\$BUILDPLATFORM and the automatic platform ARGs" {
    ctx=$(make_context <<'EOF'
FROM --platform=$BUILDPLATFORM busybox
ARG TARGETPLATFORM TARGETOS TARGETARCH BUILDPLATFORM
RUN echo "$TARGETPLATFORM $TARGETOS $TARGETARCH $BUILDPLATFORM" >/platform
EOF
)
    build_ok -t app "$ctx"
    arch=$(image_config busybox | jq -r .architecture)
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/platform")" "linux/$arch linux $arch linux/$arch"
}

@test "FROM --platform of another architecture: a clear error, status 1" {
    ctx=$(make_context <<'EOF'
FROM --platform=linux/s390x busybox
RUN true
EOF
)
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_contains "Dockerfile:1: FROM --platform=linux/s390x: kiln builds for the machine it runs on"
}

# ---- ONBUILD ----------------------------------------------------------------------

@test "ONBUILD is stored in the config, with no history entry" {
    ctx=$(make_context <<'EOF'
FROM busybox
ONBUILD RUN echo triggered >/t
ONBUILD COPY a /a
EOF
)
    build_ok -t parent "$ctx"
    assert_config parent '.config.OnBuild' '["RUN echo triggered >/t","COPY a /a"]'
    assert_equal "$(image_config parent | jq '[.history[] | select((.created_by // "") | test("ONBUILD"))] | length')" 0 "ONBUILD history entries"
}

@test "ONBUILD triggers of the base run right after FROM, and are not inherited" {
    ctx=$(make_context <<'EOF'
FROM busybox
WORKDIR /app
ONBUILD COPY a /app/a
ONBUILD RUN cat /app/a >/app/b
EOF
)
    build_ok -t parent "$ctx"
    child=$(make_context <<'EOF'
FROM parent
RUN cat /app/b >/app/c
EOF
)
    echo from-child-context | add_file "$child" a
    run --separate-stderr kiln build --progress=plain -t child "$child"
    assert_success
    assert_stderr_contains "[2/4] ONBUILD COPY a /app/a"
    assert_stderr_contains "[3/4] ONBUILD RUN cat /app/a >/app/b"
    unpack_image child "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/app/c")" from-child-context
    assert_config child '.config.OnBuild' 'null'
}

@test "ONBUILD COPY --from names a stage of the child's Dockerfile" {
    ctx=$(make_context <<'EOF'
FROM busybox
ONBUILD COPY --from=assets /out /assets
EOF
)
    build_ok -t parent "$ctx"
    child=$(make_context <<'EOF'
FROM busybox AS assets
RUN mkdir /out && echo asset >/out/file
FROM parent
RUN cat /assets/file
EOF
)
    build_ok -t child "$child"
    assert_layer_entry child "-rw-r--r-- 0:0 assets/file" -2
}

# ---- RUN --------------------------------------------------------------------------

@test "RUN shell form runs /bin/sh -c, history says so" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo "$0" >/shell && echo ok >/ok
EOF
)
    build_ok -t app "$ctx"
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/shell")" /bin/sh
    assert_config app '.history[-1].created_by' '"RUN /bin/sh -c echo \"$0\" >/shell && echo ok >/ok # buildkit"'
}

@test "RUN exec form runs the program directly" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN ["/bin/sh", "-c", "echo exec >/exec"]
RUN ["touch", "/touched"]
EOF
)
    build_ok -t app "$ctx"
    assert_layer_entry app "-rw-r--r-- 0:0 exec" -2
    assert_layer_entry app "-rw-r--r-- 0:0 touched" -1
    assert_config app '.history[-1].created_by' '"RUN touch /touched # buildkit"'
}

@test "RUN heredoc: a script for the shell, and one with a shebang" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN <<EOT
set -e
echo line1 >/h
echo line2 >>/h
EOT
RUN <<EOT
#!/bin/sh -e
echo "shebang $0" >/s
EOT
EOF
)
    build_ok -t app "$ctx"
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/h")" $'line1\nline2'
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/s")" "shebang /dev/pipes/EOT"
    assert_no_layer_entry app dev/pipes -1
}

@test "a failing RUN: status 1, the instruction with file:line, exit code, output tail" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo first
RUN echo some output; echo to stderr >&2; exit 3
RUN echo never
EOF
)
    run --separate-stderr kiln build --progress=plain "$ctx"
    assert_status 1
    assert_stderr_contains '#6 ERROR: process "/bin/sh -c echo some output; echo to stderr >&2; exit 3" did not complete successfully: exit code: 3'
    assert_stderr_matches $'------\n > \\[3/4\\] RUN echo some output; echo to stderr >&2; exit 3:\n[0-9.]+ some output\n[0-9.]+ to stderr\n------'
    assert_stderr_contains $'Dockerfile:3\n--------------------\n   1 |     FROM busybox\n   2 |     RUN echo first\n   3 | >>> RUN echo some output; echo to stderr >&2; exit 3\n   4 |     RUN echo never'
    assert_stderr_contains "kiln: error: Dockerfile:3: RUN echo some output"
    [[ "$stderr" != *"[4/4] RUN echo never"* ]] || fail "the step after the failed one ran"
    assert_stdout_empty
}

@test "RUN exec form of a missing program: status 1 and the program named" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN ["/no/such/program"]
EOF
)
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_contains "/no/such/program"
}

# ---- ENV, ARG ---------------------------------------------------------------------

@test "ENV sets the config's Env and what RUN sees, in both syntaxes" {
    ctx=$(make_context <<'EOF'
FROM busybox
ENV A=1 B="two words"
ENV C three words
ENV D=${A}x
RUN echo "$A|$B|$C|$D" >/env
EOF
)
    build_ok -t app "$ctx"
    assert_config app '.config.Env' '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1","B=two words","C=three words","D=1x"]'
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/env")" "1|two words|three words|1x"
    assert_config app '.history[-4].created_by' '"ENV A=1 B=two words"'
}

@test "ARG: default, --build-arg, scope per stage, never in the config" {
    ctx=$(make_context <<'EOF'
ARG GLOBAL=g-default
FROM busybox
ARG GLOBAL
ARG LOCAL=l-default
ARG OVER=o-default
RUN echo "$GLOBAL $LOCAL $OVER" >/args
EOF
)
    build_ok --build-arg OVER=given -t app "$ctx"
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/args")" "g-default l-default given"
    assert_equal "$(image_config app | jq -r '.config.Env | map(select(startswith("LOCAL") or startswith("OVER") or startswith("GLOBAL"))) | length')" 0 "ARGs in Env"
    assert_config app '.history[-1].created_by' '"RUN |3 GLOBAL=g-default LOCAL=l-default OVER=given /bin/sh -c echo \"$GLOBAL $LOCAL $OVER\" >/args # buildkit"'
}

@test "a global ARG is not visible in a stage that does not declare it" {
    ctx=$(make_context <<'EOF'
ARG V=global
FROM busybox
RUN echo "[$V]" >/v
EOF
)
    build_ok -t app "$ctx"
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/v")" "[]"
}

@test "proxy ARGs reach RUN without a declaration but stay out of the history" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo "$HTTP_PROXY $no_proxy" >/proxy
EOF
)
    build_ok --build-arg HTTP_PROXY=http://proxy.invalid:3128 --build-arg no_proxy=local -t app "$ctx"
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/proxy")" "http://proxy.invalid:3128 local"
    run image_config app
    assert_output_not_contains proxy.invalid
}

# ---- metadata -------------------------------------------------------------------------

@test "LABEL and MAINTAINER set labels and author, with history entries" {
    ctx=$(make_context <<'EOF'
FROM busybox
LABEL org.example.a=1 "org.example.b"="two words"
LABEL c=3
MAINTAINER Jane Doe <jane@example.com>
EOF
)
    build_ok -t app "$ctx"
    assert_config app '.config.Labels' '{"c":"3","org.example.a":"1","org.example.b":"two words"}'
    assert_config app '.author' '"Jane Doe <jane@example.com>"'
    assert_config app '[.history[-3:][] | .created_by]' '["LABEL org.example.a=1 org.example.b=two words","LABEL c=3","MAINTAINER Jane Doe <jane@example.com>"]'
    assert_config app '[.history[-3:][] | .empty_layer]' '[true,true,true]'
}

@test "WORKDIR: relative to the previous one, created with the USER's owner" {
    ctx=$(make_context <<'EOF'
FROM busybox
WORKDIR /srv
USER 1000:1000
WORKDIR app/data
RUN pwd >/tmp/pwd && touch mine
EOF
)
    build_ok -t app "$ctx"
    assert_config app '.config.WorkingDir' '"/srv/app/data"'
    assert_layer_entry app "drwxr-xr-x 0:0 srv" -3
    assert_layer_entry app "drwxr-xr-x 1000:1000 srv/app" -2
    assert_layer_entry app "drwxr-xr-x 1000:1000 srv/app/data" -2
    assert_layer_entry app "-rw-r--r-- 1000:1000 srv/app/data/mine" -1
    assert_config app '.history[-2].created_by' '"WORKDIR /srv/app/data"'
}

@test "USER: in the config, RUN runs as that user, names resolved in the image" {
    ctx=$(make_context <<'EOF'
FROM busybox
USER daemon:bin
RUN id -u >/tmp/uid && id -g >/tmp/gid && touch /tmp/made
USER 65532:65532
EOF
)
    build_ok -t app "$ctx"
    assert_config app '.config.User' '"65532:65532"'
    assert_layer_entry app "-rw-r--r-- 1:2 tmp/made" -1
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/tmp/uid"):$(cat "$BATS_TEST_TMPDIR/root/tmp/gid")" "1:2"
}

@test "USER with an unknown name fails the RUN with Docker's message" {
    ctx=$(make_context <<'EOF'
FROM busybox
USER nosuchuser
RUN true
EOF
)
    run --separate-stderr kiln build "$ctx"
    assert_status 1
    assert_stderr_contains "unable to find user nosuchuser"
}

@test "SHELL changes the config and the shell of later RUNs" {
    ctx=$(make_context <<'EOF'
FROM busybox
SHELL ["/bin/ash", "-e", "-c"]
RUN echo "$0" >/shell
CMD echo hi
EOF
)
    build_ok -t app "$ctx"
    assert_config app '.config.Shell' '["/bin/ash","-e","-c"]'
    assert_config app '.config.Cmd' '["/bin/ash","-e","-c","echo hi"]'
    unpack_image app "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/shell")" /bin/ash
}

@test "EXPOSE: ports with protocols and ranges" {
    ctx=$(make_context <<'EOF'
FROM busybox
EXPOSE 80 443/tcp 53/udp 8000-8002
EOF
)
    build_ok -t app "$ctx"
    assert_config app '.config.ExposedPorts | keys' '["443/tcp","53/udp","80/tcp","8000/tcp","8001/tcp","8002/tcp"]'
    assert_config app '.history[-1].created_by' '"EXPOSE [80/tcp 443/tcp 53/udp 8000/tcp 8001/tcp 8002/tcp]"'
}

@test "VOLUME and STOPSIGNAL" {
    ctx=$(make_context <<'EOF'
FROM busybox
VOLUME /data /logs
VOLUME ["/cache"]
STOPSIGNAL SIGQUIT
EOF
)
    build_ok -t app "$ctx"
    assert_config app '.config.Volumes | keys' '["/cache","/data","/logs"]'
    assert_config app '.config.StopSignal' '"SIGQUIT"'
}

@test "HEALTHCHECK with every option is kept in the config" {
    ctx=$(make_context <<'EOF'
FROM busybox
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=2s --retries=4 CMD wget -q -O- http://localhost/ || exit 1
EOF
)
    build_ok -t app "$ctx"
    assert_config app '.config.Healthcheck' '{"Test":["CMD-SHELL","wget -q -O- http://localhost/ || exit 1"],"Interval":30000000000,"Timeout":5000000000,"StartPeriod":60000000000,"StartInterval":2000000000,"Retries":4}'
    # BuildKit's text: Go's %q of the HealthcheckConfig pointer
    assert_equal "$(image_config app | jq -r '.history[-1].created_by')" \
        "HEALTHCHECK &{[\"CMD-SHELL\" \"wget -q -O- http://localhost/ || exit 1\"] \"30s\" \"5s\" \"1m0s\" \"2s\" '\\x04'}"
}

@test "HEALTHCHECK NONE and the exec form" {
    ctx=$(make_context <<'EOF'
FROM busybox AS a
HEALTHCHECK CMD ["/bin/true", "x"]
FROM a
HEALTHCHECK NONE
EOF
)
    build_ok --target a -t a "$ctx"
    assert_config a '.config.Healthcheck.Test' '["CMD","/bin/true","x"]'
    build_ok -t b "$ctx"
    assert_config b '.config.Healthcheck.Test' '["NONE"]'
}

@test "ENTRYPOINT and CMD: shell and exec form, CMD reset by a new ENTRYPOINT" {
    ctx=$(make_context <<'EOF'
FROM busybox AS base
CMD ["base-cmd"]
FROM base AS ep
ENTRYPOINT ["/bin/echo"]
FROM ep AS both
CMD ["hello"]
FROM both
ENTRYPOINT exec /bin/echo shell
EOF
)
    build_ok --target ep -t ep "$ctx"
    assert_config ep '.config.Entrypoint' '["/bin/echo"]'
    assert_config ep '.config.Cmd' 'null'
    build_ok --target both -t both "$ctx"
    assert_config both '.config.Cmd' '["hello"]'
    assert_config both '.history[-1].created_by' '"CMD [\"hello\"]"'
    build_ok -t last "$ctx"
    assert_config last '.config.Entrypoint' '["/bin/sh","-c","exec /bin/echo shell"]'
    assert_config last '.config.Cmd' 'null'
}

# ---- history and times --------------------------------------------------------------

@test "history: one entry per instruction, empty_layer for metadata, every one dated" {
    ctx=$(make_context <<'EOF'
FROM busybox
ENV A=1
RUN echo a >/a
LABEL l=1
COPY f /f
WORKDIR /w
EOF
)
    echo f | add_file "$ctx" f
    build_ok -t app "$ctx"
    base=$(image_config busybox | jq '.history | length')
    assert_config app ".history[$base:] | map(.created_by)" '["ENV A=1","RUN /bin/sh -c echo a >/a # buildkit","LABEL l=1","COPY f /f # buildkit","WORKDIR /w"]'
    assert_config app ".history[$base:] | map(.empty_layer // false)" '[true,false,true,false,false]'
    assert_config app ".history[$base:] | map(.comment)" '["buildkit.dockerfile.v0","buildkit.dockerfile.v0","buildkit.dockerfile.v0","buildkit.dockerfile.v0","buildkit.dockerfile.v0"]'
    assert_config app '[.history[] | select(.created == null)] | length' '0'
    assert_config app '.created == .history[-1].created' 'true'
}

@test "SOURCE_DATE_EPOCH: config and history times, and the same digest in another store" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo a >/a && touch /b
COPY f /f
LABEL x=1
EOF
)
    echo f | add_file "$ctx" f
    SOURCE_DATE_EPOCH=1700000000 build_ok -t app "$ctx"
    assert_config app '.created' '"2023-11-14T22:13:20Z"'
    base=$(image_config busybox | jq '.history | length')
    assert_config app "[.history[$base:][] | .created] | unique" '["2023-11-14T22:13:20Z"]'
    assert_layer_entry app "-rw-r--r-- 0:0 a" -2
    first=$(image_digest app)
    other=$BATS_TEST_TMPDIR/other-store
    KILN_TEST_STORE=$other use_bases busybox
    KILN_TEST_STORE=$other run kiln build -q --timestamp 1700000000 -t app "$ctx"
    assert_success
    assert_equal "$(KILN_TEST_STORE=$other image_digest app)" "$first" "digest in another store"
}

@test "steps that change nothing give empty layers, even twice in a row" {
    ctx=$(make_context <<'EOF2'
FROM busybox
RUN true
RUN true
COPY nomatch* /empty/
RUN test -d /empty && echo ok >/ok
EOF2
)
    build_ok -t app "$ctx"
    assert_equal "$(layer_listing app -4)" "" "first RUN true"
    assert_equal "$(layer_listing app -3)" "" "second RUN true"
    assert_equal "$(layer_listing app -2)" "drwxr-xr-x 0:0 empty" "COPY of a wildcard that matches nothing"
    assert_layer_entry app "-rw-r--r-- 0:0 ok" -1
}
