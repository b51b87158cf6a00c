#!/usr/bin/env bats
# kiln pull / push against a real registry over plain HTTP: Debian's
# docker-registry (Distribution 2.8) on 127.0.0.1, started for this file.
# Images are written into stores by tests/registry/oci.py; a small proxy
# (tests/registry/proxy.py) counts uploaded bytes and plays a lying or
# flaky registry.

bats_require_minimum_version 1.5.0
load ../registry/common

setup_file() {
    command -v docker-registry >/dev/null || skip "docker-registry is not installed"
    start_registry "$BATS_FILE_TMPDIR/reg"
    export REG_PORT
    export REG=127.0.0.1:$REG_PORT
}

teardown_file() {
    stop_registry "$BATS_FILE_TMPDIR/reg"
}

setup() {
    reg_test_env
}

teardown() {
    stop_proxy "$BATS_TEST_TMPDIR/proxy"
}

@test "push, then pull into an empty store: the same manifest, config and layers" {
    dg=$($OCI image "$STORE" app:1 --file etc/a=1 --extra-layers 5 --random-layer 200000)
    run --separate-stderr kin push app:1 "$REG/t1/app:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$output" = "$dg" ] || reg_fail "push printed '$output', want $dg"
    [[ "$stderr" == *"Writing manifest"* ]]

    other=$BATS_TEST_TMPDIR/other
    run --separate-stderr kin --store "$other" pull "$REG/t1/app:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [[ "$output" == sha256:* ]]
    [ "$(store_digest "$other" "$REG/t1/app:1")" = "$dg" ]
    for b in "$other"/blobs/sha256/*; do
        cmp "$b" "$STORE/blobs/sha256/$(basename "$b")"
    done
    [ "$(blob_count "$other")" -eq 9 ]
    # nothing left behind in tmp/
    [ -z "$(ls -A "$other/tmp")" ]
    run kin --store "$other" images
    [[ "$output" == *"$REG/t1/app"*"1"* ]]
}

@test "docker:// references; push defaults to the image's own name" {
    $OCI image "$STORE" "$REG/t2/own:v2" --file x=y >/dev/null
    run --separate-stderr kin push "$REG/t2/own:v2"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o" pull "docker://$REG/t2/own:v2"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    $OCI image "$STORE" b:1 --file b=c >/dev/null
    run --separate-stderr kin push -q --digestfile "$BATS_TEST_TMPDIR/dg" b:1 "docker://$REG/t2/b:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ -z "$stderr" ]
    [ "$(cat "$BATS_TEST_TMPDIR/dg")" = "$output" ]
    [ "$output" = "$(store_digest "$STORE" b:1)" ]
}

@test "an image pushed by kiln reads back bit-identical with skopeo, and skopeo's with kiln" {
    dg=$($OCI image "$STORE" s:1 --file s=1 --random-layer 50000)
    kin push -q s:1 "$REG/t3/s:1"
    skopeo inspect --tls-verify=false --raw "docker://$REG/t3/s:1" >"$BATS_TEST_TMPDIR/raw"
    cmp "$BATS_TEST_TMPDIR/raw" "$STORE/blobs/sha256/${dg#sha256:}"
    skopeo copy -q --src-tls-verify=false "docker://$REG/t3/s:1" "oci:$BATS_TEST_TMPDIR/sk:s"
    for b in "$BATS_TEST_TMPDIR"/sk/blobs/sha256/*; do
        cmp "$b" "$STORE/blobs/sha256/$(basename "$b")"
    done
    # the other way: skopeo pushes (converting to a Docker v2 manifest), kiln pulls
    src=$BATS_TEST_TMPDIR/src
    $OCI image "$src" d:1 --file d=1 >/dev/null
    skopeo copy -q --format v2s2 --dest-tls-verify=false "oci:$src:d:1" "docker://$REG/t3/d:1"
    skopeo inspect --tls-verify=false --raw "docker://$REG/t3/d:1" >"$BATS_TEST_TMPDIR/draw"
    dd=sha256:$(sha256sum <"$BATS_TEST_TMPDIR/draw" | cut -d' ' -f1)
    run --separate-stderr kin pull "$REG/t3/d:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$(store_digest "$STORE" "$REG/t3/d:1")" = "$dd" ]
    cmp "$STORE/blobs/sha256/${dd#sha256:}" "$BATS_TEST_TMPDIR/draw"
    grep -q 'application/vnd.docker.distribution.manifest.v2+json' "$STORE/index.json"
    # and kiln pushes it on unchanged
    run --separate-stderr kin push "$REG/t3/d:1" "$REG/t3/d2:1"
    [ "$output" = "$dd" ] || reg_fail "$stderr"
}

@test "pull by digest: verified, recorded without a name, found by NAME@DIGEST" {
    dg=$($OCI image "$BATS_TEST_TMPDIR/src" p:1 --file p=1)
    kin --store "$BATS_TEST_TMPDIR/src" push -q p:1 "$REG/t4/p:1"
    run --separate-stderr kin pull "$REG/t4/p@$dg"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    grep -q "$dg" "$STORE/index.json"
    ! grep -q 'ref.name' "$STORE/index.json"
    run --separate-stderr kin push "$REG/t4/p@$dg" "$REG/t4/q:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    # a digest the repository does not have
    run --separate-stderr kin pull "$REG/t4/p@sha256:$(printf '%064d' 7)"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"not found"* ]]
}

@test "a manifest list with two platforms: the build machine's, or --platform's" {
    src=$BATS_TEST_TMPDIR/src
    amd=$($OCI image "$src" m:amd64 --arch amd64 --file arch=amd64)
    arm=$($OCI image "$src" m:arm64 --arch arm64 --variant v8 --file arch=arm64)
    $OCI index "$src" multi m:amd64 m:arm64 >/dev/null
    skopeo copy -q --all --dest-tls-verify=false "oci:$src:multi" "docker://$REG/t5/multi:1"
    host=$(uname -m)
    run --separate-stderr kin pull "$REG/t5/multi:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    if [ "$host" = x86_64 ]; then
        [ "$(store_digest "$STORE" "$REG/t5/multi:1")" = "$amd" ]
    fi
    run --separate-stderr kin pull --platform linux/arm64 "$REG/t5/multi:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$(store_digest "$STORE" "$REG/t5/multi:1")" = "$arm" ]
    [[ "$stderr" == *"linux/arm64"* ]]
    run --separate-stderr kin pull --platform linux/s390x "$REG/t5/multi:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"no image for platform linux/s390x"*"linux/amd64"*"linux/arm64"* ]]
    run --separate-stderr kin pull --platform linux "$REG/t5/multi:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"invalid platform"* ]]
    # by the list's digest
    list=$(skopeo inspect --tls-verify=false --raw "docker://$REG/t5/multi:1" | sha256sum | cut -d' ' -f1)
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o" pull --platform linux/amd64 "$REG/t5/multi@sha256:$list"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    grep -q "$amd" "$BATS_TEST_TMPDIR/o/index.json"
    # a single-platform image for another platform is refused with --platform
    run --separate-stderr kin pull --platform linux/ppc64le "$REG/t3/s:1"
    [ "$status" -ne 0 ]
}

@test "pushing an image whose layers the registry has uploads no layer bytes; mounts across repositories" {
    $OCI image "$STORE" big:1 --random-layer 400000 --file f=1 >/dev/null
    start_proxy "$BATS_TEST_TMPDIR/proxy" "$REG_PORT"
    P=127.0.0.1:$PROXY_PORT
    kin push -q big:1 "$P/t6/big:1"
    first=$(upload_bytes "$BATS_TEST_TMPDIR/proxy/log")
    [ "$first" -gt 400000 ] || reg_fail "first push uploaded only $first bytes"
    : >"$BATS_TEST_TMPDIR/proxy/log"
    run --separate-stderr kin push big:1 "$P/t6/big:2"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [[ "$stderr" == *"skipped: already exists"* ]]
    [ "$(upload_bytes "$BATS_TEST_TMPDIR/proxy/log")" -eq 0 ] || reg_fail "$(cat "$BATS_TEST_TMPDIR/proxy/log")"
    ! grep -q '^PATCH' "$BATS_TEST_TMPDIR/proxy/log"
    # another repository of the same registry: mounted, not uploaded
    : >"$BATS_TEST_TMPDIR/proxy/log"
    run --separate-stderr kin push big:1 "$P/t6/other:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [[ "$stderr" == *"mounted from t6/big"* ]]
    grep -q '^POST /v2/t6/other/blobs/uploads/?mount=sha256:.*&from=t6/big 201' "$BATS_TEST_TMPDIR/proxy/log"
    [ "$(upload_bytes "$BATS_TEST_TMPDIR/proxy/log")" -eq 0 ] || reg_fail "$(cat "$BATS_TEST_TMPDIR/proxy/log")"
}

@test "large blobs go up in PATCH chunks and come back identical" {
    dg=$($OCI image "$STORE" ch:1 --random-layer 300000)
    start_proxy "$BATS_TEST_TMPDIR/proxy" "$REG_PORT"
    KILN_REGISTRY_CHUNK_SIZE=65536 kin push -q ch:1 "127.0.0.1:$PROXY_PORT/t7/ch:1"
    [ "$(grep -c '^PATCH .* 202 65536$' "$BATS_TEST_TMPDIR/proxy/log")" -ge 4 ]
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o" pull "$REG/t7/ch:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    for b in "$BATS_TEST_TMPDIR"/o/blobs/sha256/*; do
        cmp "$b" "$STORE/blobs/sha256/$(basename "$b")"
    done
}

@test "a registry that returns a corrupted blob is refused and nothing lands in the store" {
    $OCI image "$BATS_TEST_TMPDIR/src" c:1 --file a=1 --random-layer 30000 >/dev/null
    kin --store "$BATS_TEST_TMPDIR/src" push -q c:1 "$REG/t8/c:1"
    start_proxy "$BATS_TEST_TMPDIR/proxy" "$REG_PORT" --corrupt-layers
    kin images >/dev/null # creates the empty store
    cp "$STORE/index.json" "$BATS_TEST_TMPDIR/index.before"
    run --separate-stderr kin pull "127.0.0.1:$PROXY_PORT/t8/c:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"digest mismatch"*"refusing"* ]] || reg_fail "$stderr"
    [ "$(blob_count "$STORE")" -eq 0 ]
    cmp "$STORE/index.json" "$BATS_TEST_TMPDIR/index.before"
    [ -z "$(ls -A "$STORE/tmp")" ]
}

@test "a registry that lies about a manifest digest is refused" {
    $OCI image "$BATS_TEST_TMPDIR/src" l:1 --file a=1 >/dev/null
    kin --store "$BATS_TEST_TMPDIR/src" push -q l:1 "$REG/t9/l:1"
    start_proxy "$BATS_TEST_TMPDIR/proxy" "$REG_PORT" --lie-digest
    run --separate-stderr kin pull "127.0.0.1:$PROXY_PORT/t9/l:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"refusing it"* ]] || reg_fail "$stderr"
    [ "$(blob_count "$STORE")" -eq 0 ]
}

@test "503s with Retry-After and dropped connections are retried; partial blobs start over" {
    dg=$($OCI image "$BATS_TEST_TMPDIR/src" r:1 --random-layer 100000)
    kin --store "$BATS_TEST_TMPDIR/src" push -q r:1 "$REG/t10/r:1"
    start_proxy "$BATS_TEST_TMPDIR/proxy" "$REG_PORT" --fail-blobs 2 --drop-blobs 1
    run --separate-stderr kin pull "127.0.0.1:$PROXY_PORT/t10/r:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [[ "$stderr" == *"503; retrying in 1.0s"* ]] || reg_fail "$stderr"
    [[ "$stderr" == *"retrying"* ]]
    grep -q ' dropped ' "$BATS_TEST_TMPDIR/proxy/log"
    [ "$(store_digest "$STORE" "127.0.0.1:$PROXY_PORT/t10/r:1")" = "$dg" ]
    for b in "$STORE"/blobs/sha256/*; do
        cmp "$b" "$BATS_TEST_TMPDIR/src/blobs/sha256/$(basename "$b")"
    done
    [ -z "$(ls -A "$STORE/tmp")" ]
}

@test "a registry that keeps failing: bounded attempts, then a clear error" {
    $OCI image "$BATS_TEST_TMPDIR/src" f:1 --file a=1 >/dev/null
    kin --store "$BATS_TEST_TMPDIR/src" push -q f:1 "$REG/t11/f:1"
    start_proxy "$BATS_TEST_TMPDIR/proxy" "$REG_PORT" --fail-blobs 100
    run --separate-stderr kin pull "127.0.0.1:$PROXY_PORT/t11/f:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"HTTP 503"* ]] || reg_fail "$stderr"
    [ "$(grep -c '^GET .*/blobs/sha256:.* 503' "$BATS_TEST_TMPDIR/proxy/log")" -eq 5 ]
}

@test "errors: unknown tag, unknown repository, no registry, bad flags" {
    run --separate-stderr kin pull "$REG/nothing/here:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"not found"* ]]
    run --separate-stderr kin pull "127.0.0.1:1/x:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"kiln: error:"*"127.0.0.1:1"* ]]
    run --separate-stderr kin pull
    [ "$status" -eq 2 ]
    run --separate-stderr kin pull --tls-verify=maybe x
    [ "$status" -eq 2 ]
    run --separate-stderr kin push
    [ "$status" -eq 2 ]
    run --separate-stderr kin pull "Bad/Name"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"invalid reference"* ]]
    run --separate-stderr kin push nosuch:1 "$REG/x:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"no such image"* ]]
    # --tls-verify=true forbids the plain-HTTP fallback of loopback registries
    run --separate-stderr kin pull --tls-verify=true "$REG/t1/app:1"
    [ "$status" -eq 1 ]
}

@test "pull and push also take oci:, oci-archive: and docker-archive: references" {
    dg=$($OCI image "$STORE" tr:1 --file t=1)
    run --separate-stderr kin push tr:1 "oci:$BATS_TEST_TMPDIR/layout:v1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ -z "$output" ]
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o" pull "oci:$BATS_TEST_TMPDIR/layout:v1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$(store_digest "$BATS_TEST_TMPDIR/o" layout:v1)" = "$dg" ]
    run --separate-stderr kin push tr:1 "docker-archive:$BATS_TEST_TMPDIR/a.tar:tr:2"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o2" pull "docker-archive:$BATS_TEST_TMPDIR/a.tar"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$(store_digest "$BATS_TEST_TMPDIR/o2" tr:2)" = "$dg" ]
    run --separate-stderr kin pull "oci:$BATS_TEST_TMPDIR/nothing:x"
    [ "$status" -eq 1 ]
}

@test "build cache: a second store builds fully cached from --cache-from type=registry" {
    $OCI image "$BATS_TEST_TMPDIR/base" base:1 --busybox /bin/busybox --file etc/os-release=test >/dev/null
    kin --store "$BATS_TEST_TMPDIR/base" push -q base:1 "$REG/t12/base:1"
    ctx=$BATS_TEST_TMPDIR/ctx
    mkdir -p "$ctx"
    printf 'FROM %s\nRUN date +%%s%%N >/stamp\nRUN cat /stamp >/copy\n' "$REG/t12/base:1" >"$ctx/Dockerfile"
    # (timeouts: a hung RUN fails this test instead of the whole run)
    run --separate-stderr timeout -k 10 300 env KILN_ROOT="$STORE" "$KILN" build --progress=plain \
        --cache-to "type=registry,ref=$REG/t12/cache:main,mode=max" -t app:1 "$ctx"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    # another store (another user, another machine): nothing but the registry
    second=$BATS_TEST_TMPDIR/second
    run --separate-stderr timeout -k 10 300 env KILN_ROOT="$second" "$KILN" build --progress=plain \
        --cache-from "type=registry,ref=$REG/t12/cache:main" -t app:1 "$ctx"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$(grep -c CACHED <<<"$stderr")" -ge 2 ] || reg_fail "$stderr"
    # no RUN ran again: the layers (with the timestamp) are the first build's
    [ "$($OCI layers "$STORE" app:1)" = "$($OCI layers "$second" app:1)" ]
    # type=local: the same through a directory
    run --separate-stderr timeout -k 10 300 env KILN_ROOT="$STORE" "$KILN" build --progress=plain \
        --cache-to "type=local,dest=$BATS_TEST_TMPDIR/cachedir" -t app:1 "$ctx"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    third=$BATS_TEST_TMPDIR/third
    run --separate-stderr timeout -k 10 300 env KILN_ROOT="$third" "$KILN" build --progress=plain \
        --cache-from "type=local,src=$BATS_TEST_TMPDIR/cachedir" -t app:1 "$ctx"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$($OCI layers "$STORE" app:1)" = "$($OCI layers "$third" app:1)" ]
}

# hostile_refused HOW STORE KIND — after a pull or load of a hostile image
# (tests/registry/oci.py --hostile KIND) that exited 1: the reason named,
# no name in STORE, nothing written outside, the store valid.
hostile_refused() {
    local how=$1 other=$2 kind=$3
    [ "$status" -eq 1 ] || reg_fail "$how of a '$kind' layer: status $status, want 1: $stderr"
    case $kind in
        dotdot) want="'..'" ;;
        hardlink) want="hard link to a missing file" ;;
        symlink) want="a parent is a symlink" ;;
        diffid) want="diff_id mismatch" ;;
    esac
    [[ "$stderr" == *"$want"* ]] || reg_fail "$how of a '$kind' layer: no '$want' in: $stderr"
    run kin --store "$other" images -q
    [ -z "$output" ] || reg_fail "$how of a '$kind' layer named an image: $output"
    [ -z "$(find "$BATS_TEST_TMPDIR" /tmp -maxdepth 3 -name escape 2>/dev/null)" ] ||
        reg_fail "$how of a '$kind' layer wrote outside its tree"
    run kin --store "$other" system check
    [ "$status" -eq 0 ] || reg_fail "$how of a '$kind' layer: $output"
    [ -z "$(ls -A "$other/tmp" | grep -v '\.lock$')" ] || reg_fail "$how left files in tmp/"
}

@test "hostile layers (.., hard link to nothing, write through a symlink, lying diff_id) are refused by pull and load before the image is named" {
    local kind other
    for kind in dotdot hardlink symlink diffid; do
        $OCI image "$STORE" "evil-$kind:1" --hostile "$kind" >/dev/null
        # kiln pushes what it is given: the registry holds the hostile image
        run --separate-stderr kin push "evil-$kind:1" "$REG/t13/evil-$kind:1"
        [ "$status" -eq 0 ] || reg_fail "$stderr"
        other=$BATS_TEST_TMPDIR/pull-$kind
        run --separate-stderr kin --store "$other" pull "$REG/t13/evil-$kind:1"
        hostile_refused pull "$other" "$kind"
        other=$BATS_TEST_TMPDIR/oci-$kind
        run --separate-stderr kin --store "$other" pull "oci:$STORE:evil-$kind:1"
        hostile_refused "pull oci:" "$other" "$kind"
        run --separate-stderr kin save -o "$BATS_TEST_TMPDIR/evil-$kind.tar" "evil-$kind:1"
        [ "$status" -eq 0 ] || reg_fail "$stderr"
        other=$BATS_TEST_TMPDIR/load-$kind
        run --separate-stderr kin --store "$other" load -i "$BATS_TEST_TMPDIR/evil-$kind.tar"
        hostile_refused load "$other" "$kind"
    done
    # an honest image from the same registry still comes in, its layers extracted
    $OCI image "$STORE" honest:1 --file etc/ok=yes >/dev/null
    kin push -q honest:1 "$REG/t13/honest:1"
    other=$BATS_TEST_TMPDIR/honest
    run --separate-stderr kin --store "$other" pull "$REG/t13/honest:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ -n "$(ls "$other/trees")" ] || reg_fail "pull extracted no layer tree"
}
