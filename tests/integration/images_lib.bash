# Setup shared by images*.bats and interop*.bats, on top of helpers.bash:
# every test gets its own store ($KILN_ROOT = $KILN_TEST_STORE, so both
# "$KILN" and helpers.bash's `kiln` use it), and `kiln system check` must pass
# on it when the test ends.
#
# Fixture images are made once per file with umoci and skopeo from
# busybox-static, so no network is needed:
#   $FX/base.tar  docker-archive (skopeo's shape) of base:1, one layer
#   $FX/app.tar   oci-archive of app:1: base + a layer that adds
#                 /app/hello.txt and deletes /etc/gone (a whiteout);
#                 Env A=1, label org.example.tier=web, WorkingDir /app,
#                 Cmd ["/bin/cat", "/app/hello.txt"]
#   $FX/layout    the OCI layout both come from (tags base, app)

# shellcheck shell=bash
load helpers

fixtures_setup_file() {
    export FX=$BATS_FILE_TMPDIR/fx
    local L=$FX/layout
    mkdir -p "$FX"
    umoci init --layout "$L"
    umoci new --image "$L:base"
    umoci unpack --rootless --image "$L:base" "$FX/b" >/dev/null
    mkdir -p "$FX/b/rootfs/bin" "$FX/b/rootfs/etc"
    cp /bin/busybox "$FX/b/rootfs/bin/busybox"
    local x
    for x in sh cat ls echo; do ln -s busybox "$FX/b/rootfs/bin/$x"; done
    echo base >"$FX/b/rootfs/etc/motd"
    echo gone >"$FX/b/rootfs/etc/gone"
    umoci repack --image "$L:base" --history.created_by 'COPY busybox /bin/' "$FX/b"
    umoci config --image "$L:base" --config.cmd /bin/sh --history.created_by 'CMD ["/bin/sh"]'
    umoci unpack --rootless --image "$L:base" "$FX/a" >/dev/null
    mkdir -p "$FX/a/rootfs/app"
    echo hello >"$FX/a/rootfs/app/hello.txt"
    rm "$FX/a/rootfs/etc/gone"
    umoci repack --image "$L:app" --history.created_by 'COPY hello.txt /app/' "$FX/a"
    umoci config --image "$L:app" --config.env A=1 --config.label org.example.tier=web \
        --config.workingdir /app --config.cmd /bin/cat --config.cmd /app/hello.txt \
        --history.created_by 'CMD ["/bin/cat","/app/hello.txt"]'
    skopeo copy -q "oci:$L:base" "docker-archive:$FX/base.tar:base:1"
    skopeo copy -q "oci:$L:app" "oci-archive:$FX/app.tar:app:1"
}

store_setup() {
    export KILN_TEST_STORE=$BATS_TEST_TMPDIR/store
    export KILN_ROOT=$KILN_TEST_STORE
}

# After every test: the store passes validation.
store_teardown() {
    if [ -d "$KILN_ROOT" ]; then
        run "$KILN" system check
        if [ "${status:-1}" -ne 0 ]; then
            echo "kiln system check failed after the test:" >&2
            echo "${output:-}" >&2
            return 1
        fi
    fi
}

load_fixtures() {
    "$KILN" load -q -i "$FX/base.tar"
    "$KILN" load -q -i "$FX/app.tar"
}

nblobs() {
    find "$KILN_ROOT/blobs/sha256" -type f | wc -l
}

# The JSON value of a jq filter over `kiln inspect`.
inspect_jq() {
    "$KILN" inspect "$1" | jq -r "$2"
}
