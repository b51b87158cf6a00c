#!/usr/bin/env bats
# The cases a `docker build` guide teaches, end to end, as an ordinary user:
# a multi-stage build of a static C program into scratch, a dependencies-first
# layout, .dockerignore, --target, --build-arg, a secret, a non-root USER,
# HEALTHCHECK; and a Debian image set up with dpkg and useradd.

load helpers
bats_require_minimum_version 1.5.0

setup_file() { use_bases busybox debian debian-gcc; }

# The C project of the guide: a Debian builder stage with gcc, the static
# binary alone in scratch.
c_project() {
    local ctx
    ctx=$(make_context <<'EOF'
# syntax=docker/dockerfile:1
FROM debian-gcc:bookworm AS builder
WORKDIR /src
COPY build.sh ./
COPY src/ src/
ARG CFLAGS=-O2
RUN sh build.sh "$CFLAGS" && strip hello

FROM scratch
COPY --from=builder /src/hello /usr/local/bin/hello
USER 65532:65532
EXPOSE 8080/tcp
HEALTHCHECK --interval=10s --timeout=2s CMD ["/usr/local/bin/hello", "--check"]
ENTRYPOINT ["/usr/local/bin/hello"]
CMD ["world"]
EOF
)
    add_file "$ctx" src/hello.c <<'EOF'
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--check") == 0)
        return 0;
    printf("hello, %s\n", argc > 1 ? argv[1] : "nobody");
    return 0;
}
EOF
    printf 'gcc -static $1 -o hello src/hello.c\n' | add_file "$ctx" build.sh
    printf '.git\n*.log\nbuild/\n' | add_file "$ctx" .dockerignore
    echo "$ctx"
}

@test "multi-stage: a static C program built in Debian, alone in scratch" {
    ctx=$(c_project)
    build_ok -t hello:1 "$ctx"
    assert_equal "$(layer_count hello:1)" 1 "layers of the final image"
    assert_equal "$(layer_listing hello:1)" $'drwxr-xr-x 0:0 usr\ndrwxr-xr-x 0:0 usr/local\ndrwxr-xr-x 0:0 usr/local/bin\n-rwxr-xr-x 0:0 usr/local/bin/hello'
    assert_config hello:1 .config.User '"65532:65532"'
    assert_config hello:1 .config.ExposedPorts '{"8080/tcp":{}}'
    assert_config hello:1 .config.Entrypoint '["/usr/local/bin/hello"]'
    assert_config hello:1 .config.Cmd '["world"]'
    assert_config hello:1 .config.Healthcheck '{"Test":["CMD","/usr/local/bin/hello","--check"],"Interval":10000000000,"Timeout":2000000000}'
    unpack_image hello:1 "$BATS_TEST_TMPDIR/root"
    run "$BATS_TEST_TMPDIR/root/usr/local/bin/hello" guide
    assert_success
    assert_equal "$output" "hello, guide"
    run file "$BATS_TEST_TMPDIR/root/usr/local/bin/hello"
    assert_output_contains "statically linked"
}

@test "--target builder stops at the builder stage" {
    ctx=$(c_project)
    build_ok --target builder -t hello:builder "$ctx"
    assert_layer_entry hello:builder "-rwxr-xr-x 0:0 src/hello" -1
    assert_config hello:builder .config.WorkingDir '"/src"'
    assert_equal "$(layer_count hello:builder)" $(($(layer_count debian-gcc:bookworm) + 4)) "layers"
}

@test "--build-arg changes the build; editing the source reuses the cached layers before it" {
    ctx=$(c_project)
    build_ok --target builder -t b1 "$ctx"
    run --separate-stderr kiln build --progress=plain --target builder --build-arg CFLAGS=-O0 -t b2 "$ctx"
    assert_success
    assert_stderr_matches $'\\[builder 4/5\\] COPY src/ src/\n#[0-9]+ CACHED'
    assert_stderr_contains 'RUN sh build.sh "-O0" && strip hello'
    sed -i 's/hello, %s/hi, %s/' "$ctx/src/hello.c"
    run --separate-stderr kiln build --progress=plain -t hello:2 "$ctx"
    assert_success
    assert_stderr_matches $'\\[builder 3/5\\] COPY build.sh ./\n#[0-9]+ CACHED'
    assert_stderr_matches $'\\[builder 4/5\\] COPY src/ src/\n#[0-9]+ DONE'
    unpack_image hello:2 "$BATS_TEST_TMPDIR/root"
    assert_equal "$("$BATS_TEST_TMPDIR/root/usr/local/bin/hello" x)" "hi, x"
}

@test "dependencies first: a source edit keeps the dependency layer" {
    ctx=$(make_context <<'EOF'
FROM busybox
WORKDIR /app
COPY package.json ./
RUN --mount=type=cache,target=/root/.cache mkdir -p node_modules && \
    for dep in $(cat package.json); do echo "module $dep" >node_modules/$dep.js; done
COPY . .
ARG NODE_ENV=development
ENV NODE_ENV=$NODE_ENV
RUN echo "built for $NODE_ENV" >dist.txt
CMD ["cat", "/app/dist.txt"]
EOF
)
    echo "left-pad lodash" | add_file "$ctx" package.json
    echo "console.log(1)" | add_file "$ctx" index.js
    printf '.git\nnode_modules\n*.log\ndist/\n.env\n' | add_file "$ctx" .dockerignore
    for f in .git/HEAD node_modules/stale.js debug.log dist/old.js .env; do echo junk | add_file "$ctx" "$f"; done
    build_ok --build-arg NODE_ENV=production -t app:1 "$ctx"
    deps=$(image_manifest app:1 | jq -r '.layers[-3].digest')
    assert_layer_entry app:1 "-rw-r--r-- 0:0 app/node_modules/lodash.js" -3
    assert_config app:1 '.config.Env[-1]' '"NODE_ENV=production"'
    [ -z "$(layer_listing app:1 -2 | grep -E 'stale|debug.log|dist/old|\.env|\.git')" ] ||
        fail "ignored files reached the image" "$(layer_listing app:1 -2)"
    echo "console.log(2)" >"$ctx/index.js"
    run --separate-stderr kiln build --progress=plain --build-arg NODE_ENV=production -t app:2 "$ctx"
    assert_success
    assert_stderr_matches $'\\[4/6\\] RUN --mount=type=cache,target=/root/.cache mkdir -p node_modules'
    assert_equal "$(image_manifest app:2 | jq -r '.layers[-3].digest')" "$deps" "dependency layer"
    assert_equal "$(grep -c '^#[0-9]* CACHED' <<<"$stderr")" 4 "CACHED: FROM, WORKDIR, COPY package.json, RUN install"
}

@test "a secret used by RUN (an npm token) is in no layer, config, history or cache" {
    token=npm_$RANDOM$RANDOM$RANDOM
    printf '//registry.npmjs.org/:_authToken=%s\n' "$token" >"$BATS_TEST_TMPDIR/npmrc"
    ctx=$(make_context <<'EOF'
FROM busybox
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc \
    grep -q _authToken /root/.npmrc && echo installed >/installed
EOF
)
    build_ok --secret id=npmrc,src="$BATS_TEST_TMPDIR/npmrc" -t app "$ctx"
    assert_layer_entry app "-rw-r--r-- 0:0 installed" -1
    assert_no_layer_entry app root/.npmrc -1
    ! grep -raF "$token" "$(kiln_store)" >/dev/null 2>&1 || fail "the token is in the store"
    for blob in "$(kiln_store)"/blobs/sha256/*; do
        ! zcat -f "$blob" 2>/dev/null | grep -qaF "$token" || fail "the token is in $blob"
    done
}

@test "Debian: dpkg -i and useradd + install -o give their owners in the layer" {
    cp "$KILN_TEST_FIXTURES/kiln-hello.deb" "$BATS_TEST_TMPDIR/"
    ctx=$(make_context <<'EOF'
FROM debian:bookworm
COPY kiln-hello.deb /tmp/
RUN dpkg -i /tmp/kiln-hello.deb && rm /tmp/kiln-hello.deb
RUN useradd -u 1234 -U -m app && install -d -o app -g app -m 0750 /srv/data
USER app
WORKDIR /home/app/work
RUN kiln-hello >hello.txt && id -un >whoami
EOF
)
    cp "$BATS_TEST_TMPDIR/kiln-hello.deb" "$ctx/"
    build_ok -t deb "$ctx"
    assert_layer_entry deb "-rwxr-xr-x 0:0 usr/bin/kiln-hello" -4
    assert_layer_entry deb "drwxr-x--- 1:1 var/spool/kiln-hello" -4
    assert_layer_entry deb "drwxr-x--- 1234:1234 srv/data" -3
    assert_layer_entry deb "drwxr-xr-x 1234:1234 home/app/work" -2
    assert_layer_entry deb "-rw-r--r-- 1234:1234 home/app/work/hello.txt" -1
    unpack_image deb "$BATS_TEST_TMPDIR/root"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/root/home/app/work/whoami")" app
    grep -q '^kiln-hello:' "$BATS_TEST_TMPDIR/root/etc/passwd" || fail "the postinst's user is missing"
}
