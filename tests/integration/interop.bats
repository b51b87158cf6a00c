#!/usr/bin/env bats
# Other tools read kiln's store and archives, and kiln reads theirs:
# umoci and skopeo straight from the store, rootless podman from a skopeo
# copy and from `kiln save`, kiln from `podman save`.  Run as an ordinary
# user: podman keeps its storage under the test's temporary directory.

load images_lib

setup_file() { fixtures_setup_file; }

setup() {
    store_setup
    # podman wants a short run root (under 50 characters)
    PR=$(mktemp -d /tmp/kiln-podman.XXXXXX)
    PODMAN=(podman --root "$PR/root" --runroot "$PR/run" --storage-driver vfs
        --cgroup-manager cgroupfs --events-backend file)
    RUN=(run --rm --runtime runc --network host)
}

teardown() {
    store_teardown || return 1
    # podman's layers may hold files of subordinate ids
    if [ -d "$PR" ]; then
        unshare --map-auto --map-root-user rm -rf "$PR" 2>/dev/null || rm -rf "$PR"
    fi
}

# podman here runs rootless only (as root it cannot set the container's
# rlimits in this environment); the test runner runs these as the test users.
rootless_podman() {
    if [ "$(id -u)" = 0 ]; then
        skip "rootless podman: run as an ordinary user (kiln-range, kiln-single)"
    fi
}

@test "umoci unpacks an image straight from the store" {
    load_fixtures
    run umoci unpack --rootless --image "$KILN_ROOT:app:1" "$BATS_TEST_TMPDIR/bundle"
    [ "$status" -eq 0 ]
    [ "$(cat "$BATS_TEST_TMPDIR/bundle/rootfs/app/hello.txt")" = "hello" ]
    [ -x "$BATS_TEST_TMPDIR/bundle/rootfs/bin/busybox" ]
    [ ! -e "$BATS_TEST_TMPDIR/bundle/rootfs/etc/gone" ]
    jq -e '.process.args == ["/bin/cat", "/app/hello.txt"]' "$BATS_TEST_TMPDIR/bundle/config.json"
    # umoci's own listing of the store
    run umoci ls --layout "$KILN_ROOT"
    [[ "$output" == *"app:1"* && "$output" == *"base:1"* ]]
}

@test "skopeo inspects the store and agrees with kiln" {
    load_fixtures
    run skopeo inspect "oci:$KILN_ROOT:app:1"
    [ "$status" -eq 0 ]
    digest=$(inspect_jq app:1 '.[0].Descriptor.digest')
    echo "$output" | jq -e --arg d "$digest" '.Digest == $d and (.Layers | length) == 2'
    echo "$output" | jq -e '.Env | index("A=1") != null'
    # the config skopeo reads is the image id's blob
    id=$(inspect_jq app:1 '.[0].Id')
    skopeo inspect --raw --config "oci:$KILN_ROOT:app:1" | sha256sum | grep -q "^${id#sha256:} "
}

@test "skopeo copies from the store into containers-storage; rootless podman runs it" {
    rootless_podman
    load_fixtures
    run skopeo copy -q "oci:$KILN_ROOT:app:1" \
        "containers-storage:[vfs@$PR/root+$PR/run]localhost/app:1"
    [ "$status" -eq 0 ]
    run "${PODMAN[@]}" "${RUN[@]}" localhost/app:1
    [ "$status" -eq 0 ]
    [[ "$output" == *hello* ]]
    run "${PODMAN[@]}" "${RUN[@]}" localhost/app:1 /bin/sh -c 'echo "$A $(pwd)"; ls /etc'
    [[ "$output" == *"1 /app"* ]]
    [[ "$output" == *motd* && "$output" != *gone* ]]
    id=$(inspect_jq app:1 '.[0].Id')
    "${PODMAN[@]}" image inspect --format '{{.Id}}' localhost/app:1 | grep -qx "${id#sha256:}"
}

@test "kiln save (docker-archive) loads and runs with podman" {
    rootless_podman
    load_fixtures
    "$KILN" save -o "$BATS_TEST_TMPDIR/app.tar" app:1
    run "${PODMAN[@]}" load -i "$BATS_TEST_TMPDIR/app.tar"
    [ "$status" -eq 0 ]
    [[ "$output" == *"Loaded image: docker.io/library/app:1"* ]]
    run "${PODMAN[@]}" "${RUN[@]}" docker.io/library/app:1
    [[ "$output" == *hello* ]]
    # the oci-archive flavour too
    "$KILN" save --format oci-archive -o "$BATS_TEST_TMPDIR/base.tar" base:1
    run "${PODMAN[@]}" load -i "$BATS_TEST_TMPDIR/base.tar"
    [ "$status" -eq 0 ]
    # and skopeo reads kiln's archives under both transports
    skopeo inspect "docker-archive:$BATS_TEST_TMPDIR/app.tar" | jq -e '.Layers | length == 2'
    skopeo inspect "oci-archive:$BATS_TEST_TMPDIR/base.tar" | jq -e '.Layers | length == 1'
}

@test "kiln loads what podman saves" {
    load_fixtures
    skopeo copy -q "oci:$KILN_ROOT:app:1" \
        "containers-storage:[vfs@$PR/root+$PR/run]localhost/papp:7"
    "${PODMAN[@]}" save -o "$BATS_TEST_TMPDIR/p-docker.tar" localhost/papp:7
    "${PODMAN[@]}" save --format oci-archive -o "$BATS_TEST_TMPDIR/p-oci.tar" localhost/papp:7
    id=$(inspect_jq app:1 '.[0].Id')
    export KILN_ROOT=$BATS_TEST_TMPDIR/from-podman
    run "$KILN" load -i "$BATS_TEST_TMPDIR/p-docker.tar"
    [ "$status" -eq 0 ]
    [ "$output" = "Loaded image: localhost/papp:7" ]
    [ "$(inspect_jq localhost/papp:7 '.[0].Id')" = "$id" ]
    "$KILN" rmi localhost/papp:7 >/dev/null
    run "$KILN" load -i "$BATS_TEST_TMPDIR/p-oci.tar"
    [ "$status" -eq 0 ]
    [[ "$output" == *"localhost/papp:7"* ]]
    [ "$(inspect_jq localhost/papp:7 '.[0].Id')" = "$id" ]
    run "$KILN" export localhost/papp:7
    [ "$status" -eq 0 ]
    run "$KILN" system check
    [ "$status" -eq 0 ]
    export KILN_ROOT=$BATS_TEST_TMPDIR/store
}

@test "round trips keep the manifest digest: kiln -> docker-archive -> kiln, via skopeo too" {
    load_fixtures
    m=$(inspect_jq app:1 '.[0].Descriptor.digest')
    "$KILN" save -o "$BATS_TEST_TMPDIR/a.tar" app:1
    export KILN_ROOT=$BATS_TEST_TMPDIR/second
    "$KILN" load -q -i "$BATS_TEST_TMPDIR/a.tar"
    [ "$(inspect_jq app:1 '.[0].Descriptor.digest')" = "$m" ]
    # skopeo copies the store to an OCI layout without touching the manifest
    skopeo copy -q "oci:$KILN_ROOT:app:1" "oci-archive:$BATS_TEST_TMPDIR/s.tar:app:1"
    export KILN_ROOT=$BATS_TEST_TMPDIR/third
    "$KILN" load -q -i "$BATS_TEST_TMPDIR/s.tar"
    [ "$(inspect_jq app:1 '.[0].Descriptor.digest')" = "$m" ]
    run "$KILN" system check
    [ "$status" -eq 0 ]
    export KILN_ROOT=$BATS_TEST_TMPDIR/second
    run "$KILN" system check
    [ "$status" -eq 0 ]
    export KILN_ROOT=$BATS_TEST_TMPDIR/store
}
