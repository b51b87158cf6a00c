#!/usr/bin/env bats
# kiln save / load / export, image prune, builder prune, system
# df|prune|check|reset: output and effect on the store.  `kiln system
# check` runs after every test.

load images_lib

setup_file() { fixtures_setup_file; }
setup() { store_setup; }
teardown() { store_teardown; }

manifest_of() { inspect_jq "$1" '.[0].Descriptor.digest'; }

# A blob put in the store by hand; prints its digest.
put_blob() {
    local f=$BATS_TEST_TMPDIR/blob.$$
    printf '%s' "$1" >"$f"
    local h
    h=$(sha256sum "$f" | cut -d' ' -f1)
    mv "$f" "$KILN_ROOT/blobs/sha256/$h"
    echo "sha256:$h"
}

# A build-cache record KEY (64 hex) for a blob.
put_record() {
    local size
    size=$(stat -c %s "$KILN_ROOT/blobs/sha256/${2#sha256:}")
    printf '{"layer":{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s},"diff_id":"%s","created":"2024-01-01T00:00:00Z"}' \
        "$2" "$size" "$2" >"$KILN_ROOT/cache/$1"
}

key() { printf "$1%.0s" $(seq 1 64); }

# ---- save / load -----------------------------------------------------------

@test "save/load: docker-archive round trip keeps the manifest digest" {
    load_fixtures
    m=$(manifest_of app:1)
    run "$KILN" save -o "$BATS_TEST_TMPDIR/app.tar" app:1
    [ "$status" -eq 0 ]
    tar -tf "$BATS_TEST_TMPDIR/app.tar" | grep -qx manifest.json
    tar -tf "$BATS_TEST_TMPDIR/app.tar" | grep -qx oci-layout
    tar -xOf "$BATS_TEST_TMPDIR/app.tar" manifest.json |
        jq -e '.[0].RepoTags == ["docker.io/library/app:1"] and (.[0].Layers | length) == 2'
    "$KILN" rmi app:1 >/dev/null
    run "$KILN" load -i "$BATS_TEST_TMPDIR/app.tar"
    [ "$status" -eq 0 ]
    [ "$output" = "Loaded image: app:1" ]
    [ "$(manifest_of app:1)" = "$m" ]
    # the same save again is the same bytes
    "$KILN" save -o "$BATS_TEST_TMPDIR/again.tar" app:1
    cmp "$BATS_TEST_TMPDIR/app.tar" "$BATS_TEST_TMPDIR/again.tar"
}

@test "save/load: oci-archive of several images into another store" {
    load_fixtures
    ma=$(manifest_of app:1)
    mb=$(manifest_of base:1)
    run "$KILN" save --format oci-archive -o "$BATS_TEST_TMPDIR/both.tar" app:1 base:1
    [ "$status" -eq 0 ]
    tar -tf "$BATS_TEST_TMPDIR/both.tar" | grep -q '^blobs/sha256/'
    run bash -c "tar -tf '$BATS_TEST_TMPDIR/both.tar' | grep -cx manifest.json"
    [ "$output" = 0 ]
    export KILN_ROOT=$BATS_TEST_TMPDIR/other
    run "$KILN" load -i "$BATS_TEST_TMPDIR/both.tar"
    [ "$status" -eq 0 ]
    [[ "$output" == *"Loaded image: app:1"* && "$output" == *"Loaded image: base:1"* ]]
    [ "$(manifest_of app:1)" = "$ma" ]
    [ "$(manifest_of base:1)" = "$mb" ]
}

@test "save/load: stdout and stdin, compressed, by id" {
    load_fixtures
    export OTHER=$BATS_TEST_TMPDIR/other
    run bash -c "'$KILN' save app:1 | KILN_ROOT='$OTHER' '$KILN' load"
    [ "$status" -eq 0 ]
    [ "$output" = "Loaded image: app:1" ]
    "$KILN" save base:1 | gzip >"$BATS_TEST_TMPDIR/base.tar.gz"
    run env KILN_ROOT="$OTHER" "$KILN" load -i "$BATS_TEST_TMPDIR/base.tar.gz"
    [ "$output" = "Loaded image: base:1" ]
    id=$(inspect_jq base:1 '.[0].Id')
    "$KILN" save -o "$BATS_TEST_TMPDIR/byid.tar" "${id:7:12}"
    tar -xOf "$BATS_TEST_TMPDIR/byid.tar" manifest.json | jq -e '.[0].RepoTags == []'
    run env KILN_ROOT="$BATS_TEST_TMPDIR/third" "$KILN" load -i "$BATS_TEST_TMPDIR/byid.tar"
    [ "$output" = "Loaded image ID: $id" ]
    run env KILN_ROOT="$OTHER" "$KILN" system check
    [ "$status" -eq 0 ]
    run env KILN_ROOT="$BATS_TEST_TMPDIR/third" "$KILN" system check
    [ "$status" -eq 0 ]
}

@test "load: bad archives are refused and leave the store sound" {
    echo "not a tar" >"$BATS_TEST_TMPDIR/junk"
    run "$KILN" load -i "$BATS_TEST_TMPDIR/junk"
    [ "$status" -eq 1 ]
    [[ "$output" == *"kiln: error:"* ]]
    # flip a byte inside a layer blob of a saved archive
    mkdir "$BATS_TEST_TMPDIR/x"
    tar -xf "$FX/app.tar" -C "$BATS_TEST_TMPDIR/x"
    big=$(find "$BATS_TEST_TMPDIR/x/blobs/sha256" -type f -size +100k | head -1)
    printf 'X' | dd of="$big" bs=1 seek=5000 conv=notrunc 2>/dev/null
    tar -cf "$BATS_TEST_TMPDIR/bad.tar" -C "$BATS_TEST_TMPDIR/x" .
    run "$KILN" load -i "$BATS_TEST_TMPDIR/bad.tar"
    [ "$status" -eq 1 ]
    [[ "$output" == *"corrupt"* ]]
    run "$KILN" images -q
    [ -z "$output" ]
    run "$KILN" load -i "$BATS_TEST_TMPDIR/nonexistent.tar"
    [ "$status" -eq 1 ]
    run "$KILN" load extra-arg
    [ "$status" -eq 2 ]
}

@test "save: errors" {
    load_fixtures
    run "$KILN" save -o "$BATS_TEST_TMPDIR/x.tar" nope:1
    [ "$status" -eq 1 ]
    [[ "$output" == *"no such image: 'nope:1'"* ]]
    [ ! -e "$BATS_TEST_TMPDIR/x.tar" ]
    run "$KILN" save --format zip -o "$BATS_TEST_TMPDIR/x.tar" app:1
    [ "$status" -eq 2 ]
    run "$KILN" save -o "$BATS_TEST_TMPDIR/no/such/dir/x.tar" app:1
    [ "$status" -eq 1 ]
}

@test "load: skopeo's docker-archive and an oci-archive named by its file" {
    run "$KILN" load -i "$FX/base.tar"
    [ "$output" = "Loaded image: base:1" ]
    # skopeo's layers are plain tars: kept as they are, digest = diff_id
    inspect_jq base:1 '.[0].RootFS.Layers[0]' >"$BATS_TEST_TMPDIR/diff"
    jq -r '.layers[0].digest' "$KILN_ROOT/blobs/sha256/$(manifest_of base:1 | cut -c8-)" |
        cmp - "$BATS_TEST_TMPDIR/diff"
    skopeo copy -q "oci:$FX/layout:app" "oci-archive:$BATS_TEST_TMPDIR/webapp.tar:v3"
    run "$KILN" load -i "$BATS_TEST_TMPDIR/webapp.tar"
    [ "$output" = "Loaded image: webapp:v3" ]
}

# ---- export ------------------------------------------------------------

@test "export: the flattened file system, whiteouts applied" {
    load_fixtures
    run "$KILN" export -o "$BATS_TEST_TMPDIR/rootfs.tar" app:1
    [ "$status" -eq 0 ]
    tar -tf "$BATS_TEST_TMPDIR/rootfs.tar" >"$BATS_TEST_TMPDIR/list"
    grep -qx 'bin/busybox' "$BATS_TEST_TMPDIR/list"
    grep -qx 'app/hello.txt' "$BATS_TEST_TMPDIR/list"
    grep -qx 'etc/motd' "$BATS_TEST_TMPDIR/list"
    run grep -c -e 'etc/gone' -e '\.wh\.' "$BATS_TEST_TMPDIR/list"
    [ "$output" = 0 ]
    [ "$(tar -xOf "$BATS_TEST_TMPDIR/rootfs.tar" app/hello.txt)" = "hello" ]
    # to stdout; base still has the file app deletes
    "$KILN" export base:1 | tar -t | grep -qx 'etc/gone'
    run "$KILN" export nope:1
    [ "$status" -eq 1 ]
}

# ---- image prune ------------------------------------------------------------

make_dangling() {
    # naming another image app:1 leaves the old one untagged
    "$KILN" tag base:1 app:1
}

@test "image prune: asks, then removes untagged images and their blobs" {
    load_fixtures
    make_dangling
    before=$(nblobs)
    run bash -c "echo n | '$KILN' image prune"
    [ "$status" -eq 1 ]
    [[ "$output" == *"WARNING! This will remove all dangling images."* ]]
    [[ "$output" == *"cancelled"* ]]
    [ "$(nblobs)" -eq "$before" ]
    run bash -c "echo y | '$KILN' image prune"
    [ "$status" -eq 0 ]
    [[ "$output" == *"Deleted Images:"* ]]
    [[ "$output" =~ deleted:\ sha256:[0-9a-f]{64} ]]
    [[ "$output" =~ Total\ reclaimed\ space:\ [0-9.]+[kM]?B ]]
    [ "$(nblobs)" -lt "$before" ]
    run "$KILN" images --filter dangling=true -q
    [ -z "$output" ]
    "$KILN" inspect app:1 base:1 >/dev/null
    run "$KILN" image prune -f
    [ "$output" = "Total reclaimed space: 0B" ]
}

@test "image prune -a: every image; filters keep some" {
    load_fixtures
    run "$KILN" image prune -a -f --filter until=1h
    [ "$status" -eq 0 ]
    "$KILN" inspect app:1 >/dev/null
    run "$KILN" image prune -a -f --filter label=org.example.tier=web
    [[ "$output" == *"untagged: app:1"* ]]
    "$KILN" inspect base:1 >/dev/null
    run "$KILN" image prune -a -f
    [[ "$output" == *"untagged: base:1"* ]]
    [ "$(nblobs)" -eq 0 ]
    run "$KILN" image prune -f --filter nope=1
    [ "$status" -eq 2 ]
}

@test "image prune: unused layer trees go, also ones only kiln's namespace can delete" {
    load_fixtures
    diff=$(inspect_jq app:1 '.[0].RootFS.Layers[1]')
    used=$KILN_ROOT/trees/${diff#sha256:}
    orphan=$KILN_ROOT/trees/$(key a)
    mkdir -p "$used/app" "$orphan/d/sub"
    echo data >"$orphan/d/sub/f"
    if [ "$(id -u)" != 0 ] && grep -q "^$(id -un):" /etc/subuid; then
        # range mode: files owned by a subordinate id, as RUN steps leave them
        unshare --map-auto --map-root-user sh -c "chown -R 1:1 '$orphan/d' && chmod 500 '$orphan/d/sub' '$orphan/d'"
        [ "$(stat -c %u "$orphan/d")" != "$(id -u)" ]
        run rm -rf "$orphan"
        [ "$status" -ne 0 ]
    else
        chmod 500 "$orphan/d/sub" "$orphan/d"
    fi
    run "$KILN" image prune -f
    [ "$status" -eq 0 ]
    [ ! -e "$orphan" ]
    [ -d "$used" ]
    [[ "$output" != "Total reclaimed space: 0B" ]]
    run find "$KILN_ROOT/tmp" -name 'gc-*'
    [ -z "$output" ]
}

@test "image prune: tmp leftovers older than an hour go, newer ones stay" {
    mkdir -p "$KILN_ROOT/tmp/old-build" "$KILN_ROOT/tmp/new-build"
    "$KILN" images >/dev/null
    echo x >"$KILN_ROOT/tmp/old-build/f"
    touch -d '2 days ago' "$KILN_ROOT/tmp/old-build"
    run "$KILN" system check
    [ "$status" -eq 1 ]
    [[ "$output" == *"tmp/old-build: leftover"* ]]
    "$KILN" image prune -f
    [ ! -e "$KILN_ROOT/tmp/old-build" ]
    [ -d "$KILN_ROOT/tmp/new-build" ]
}

@test "gc: a running build (shared lock) keeps prune away; rmi still untags" {
    load_fixtures
    "$KILN" images >/dev/null
    # what a build holds while it runs (layers/gc.h)
    exec 9>"$KILN_ROOT/gc.lock"
    flock -s 9
    before=$(nblobs)
    run "$KILN" image prune -f -a
    [ "$status" -eq 1 ]
    [[ "$output" == *"in use by a running build"* ]]
    run "$KILN" rmi app:1
    [ "$status" -eq 0 ]
    [[ "$output" == *"Untagged: app:1"* ]]
    [[ "$output" == *"unused blobs stay until the next prune"* ]]
    [ "$(nblobs)" -eq "$before" ]
    exec 9>&-
    run "$KILN" image prune -f
    [ "$(nblobs)" -lt "$before" ]
}

# ---- builder prune --------------------------------------------------------------

@test "builder prune: unused records, cache mounts; -a: all records" {
    load_fixtures
    used=$(jq -r '.layers[1].digest' "$KILN_ROOT/blobs/sha256/$(manifest_of app:1 | cut -c8-)")
    unused=$(put_blob "a cached layer only")
    put_record "$(key 1)" "$used"
    put_record "$(key 2)" "$unused"
    mkdir -p "$KILN_ROOT/mounts/apt-cache"
    echo pkg >"$KILN_ROOT/mounts/apt-cache/p.deb"
    run bash -c "echo no | '$KILN' builder prune"
    [ "$status" -eq 1 ]
    [[ "$output" == *"WARNING! This will remove all dangling build cache."* ]]
    run "$KILN" builder prune -f
    [ "$status" -eq 0 ]
    [[ "$output" == *"Deleted build cache objects:"* ]]
    [[ "$output" == *"222222222222"* ]]
    [[ "$output" == *"mount:apt-cache"* ]]
    [[ "$output" != *"111111111111"* ]]
    [[ "$output" =~ Total\ reclaimed\ space:\ [0-9.]+[kM]?B ]]
    [ -e "$KILN_ROOT/cache/$(key 1)" ]
    [ ! -e "$KILN_ROOT/cache/$(key 2)" ]
    [ ! -e "$KILN_ROOT/blobs/sha256/${unused#sha256:}" ]
    [ ! -e "$KILN_ROOT/mounts/apt-cache" ]
    run "$KILN" builder prune -a -f
    [[ "$output" == *"111111111111"* ]]
    [ ! -e "$KILN_ROOT/cache/$(key 1)" ]
    # the image keeps its layer
    [ -e "$KILN_ROOT/blobs/sha256/${used#sha256:}" ]
}

@test "builder prune --keep-storage: oldest first" {
    "$KILN" images >/dev/null
    old=$(put_blob "0123456789")
    new=$(put_blob "abcdefghij")
    put_record "$(key 3)" "$old"
    put_record "$(key 4)" "$new"
    touch -d '3 days ago' "$KILN_ROOT/cache/$(key 3)"
    run "$KILN" builder prune -f --keep-storage 15
    [ "$status" -eq 0 ]
    [ ! -e "$KILN_ROOT/cache/$(key 3)" ]
    [ -e "$KILN_ROOT/cache/$(key 4)" ]
    run "$KILN" builder prune -f --keep-storage 10x
    [ "$status" -eq 2 ]
    run "$KILN" builder
    [ "$status" -eq 2 ]
}

# ---- system df / prune / check / reset ------------------------------------------

@test "system df: docker's rows and columns" {
    run "$KILN" system df
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" =~ ^TYPE\ +TOTAL\ +ACTIVE\ +SIZE\ +RECLAIMABLE$ ]]
    [[ "${lines[1]}" =~ ^Images\ +0\ +0\ +0B\ +0B$ ]]
    [[ "${lines[2]}" =~ ^Build\ Cache\ +0\ +0\ +0B\ +0B$ ]]
    [[ "${lines[3]}" =~ ^Cache\ mounts\ +0\ +0\ +0B\ +0B$ ]]
    load_fixtures
    make_dangling
    mkdir -p "$KILN_ROOT/mounts/m"
    echo 12345 >"$KILN_ROOT/mounts/m/f"
    put_record "$(key 5)" "$(put_blob "cache only")"
    run "$KILN" system df
    [[ "${lines[1]}" =~ ^Images\ +2\ +1\ +[0-9.]+MB\ +[0-9.]+[kM]?B\ \([0-9]+%\)$ ]]
    [[ "${lines[2]}" =~ ^Build\ Cache\ +1\ +0\ +10B\ +10B$ ]]
    [[ "${lines[3]}" =~ ^Cache\ mounts\ +1\ +0\ +6B\ +6B\ \(100%\)$ ]]
    run "$KILN" system df --format json
    echo "${lines[0]}" | jq -e '.Type == "Images" and .TotalCount == "2" and .Active == "1"'
    run "$KILN" system df --format '{{.Type}}={{.Size}}'
    [ "${lines[2]}" = "Cache mounts=6B" ]
}

@test "system prune: dangling images, unused cache, mounts; -a: everything" {
    load_fixtures
    make_dangling
    put_record "$(key 6)" "$(put_blob "unused cache")"
    mkdir -p "$KILN_ROOT/mounts/m"
    run bash -c "echo | '$KILN' system prune"
    [ "$status" -eq 1 ]
    run "$KILN" system prune -f
    [ "$status" -eq 0 ]
    [[ "$output" == *"Deleted Images:"* ]]
    [[ "$output" == *"Deleted build cache objects:"* ]]
    [[ "$output" == *"666666666666"* ]]
    [[ "$output" == *"Total reclaimed space:"* ]]
    [ ! -e "$KILN_ROOT/mounts/m" ]
    "$KILN" inspect app:1 base:1 >/dev/null
    run "$KILN" system prune -a -f
    [ "$(nblobs)" -eq 0 ]
    run "$KILN" images -q
    [ -z "$output" ]
}

@test "system check: finds corrupt and missing blobs, bad records, a broken index" {
    load_fixtures
    run "$KILN" system check
    [ "$status" -eq 0 ]
    [[ "$output" =~ ok\ \(2\ images,\ [0-9]+\ blobs,\ 0\ cache\ records\) ]]
    cp -a "$KILN_ROOT" "$BATS_TEST_TMPDIR/broken"
    export KILN_ROOT=$BATS_TEST_TMPDIR/broken
    cfg=$(inspect_jq app:1 '.[0].Id')
    layer=$(jq -r '.layers[0].digest' "$KILN_ROOT/blobs/sha256/$(manifest_of base:1 | cut -c8-)")
    chmod u+w "$KILN_ROOT/blobs/sha256/${cfg#sha256:}"
    echo '{}' >>"$KILN_ROOT/blobs/sha256/${cfg#sha256:}"
    rm "$KILN_ROOT/blobs/sha256/${layer#sha256:}"
    echo '{"layer":{}}' >"$KILN_ROOT/cache/$(key 7)"
    run "$KILN" system check
    [ "$status" -eq 1 ]
    [[ "$output" == *"blob $cfg: content hashes to"* ]]
    [[ "$output" == *"image 'base:1': blob $layer is missing"* ]]
    [[ "$output" == *"cache record 777777777777: missing or invalid fields"* ]]
    [[ "$output" =~ problems ]]
    echo garbage >"$KILN_ROOT/index.json"
    run "$KILN" system check
    [ "$status" -eq 1 ]
    [[ "$output" == *"index.json:"* ]]
    # gc refuses to run on such a store
    run "$KILN" image prune -f
    [ "$status" -eq 1 ]
    [[ "$output" == *"nothing removed"* ]]
    rm -rf "$BATS_TEST_TMPDIR/broken"
    export KILN_ROOT=$BATS_TEST_TMPDIR/store
}

@test "system reset: removes the store, and only a store" {
    load_fixtures
    run bash -c "echo n | '$KILN' system reset"
    [ "$status" -eq 1 ]
    [ -d "$KILN_ROOT/blobs" ]
    mkdir -p "$KILN_ROOT/trees/$(key b)/ro"
    chmod 500 "$KILN_ROOT/trees/$(key b)/ro" "$KILN_ROOT/trees/$(key b)"
    run "$KILN" system reset -f
    [ "$status" -eq 0 ]
    [[ "$output" == *"Removed the store '$KILN_ROOT'"* ]]
    [ ! -e "$KILN_ROOT" ]
    run "$KILN" system reset -f
    [ "$status" -eq 0 ]
    [[ "$output" == *"does not exist"* ]]
    mkdir -p "$BATS_TEST_TMPDIR/notastore"
    echo precious >"$BATS_TEST_TMPDIR/notastore/file"
    run "$KILN" --root "$BATS_TEST_TMPDIR/notastore" system reset -f
    [ "$status" -eq 1 ]
    [[ "$output" == *"does not look like a kiln store"* ]]
    [ -e "$BATS_TEST_TMPDIR/notastore/file" ]
    # a new store is made on next use
    run "$KILN" images -q
    [ "$status" -eq 0 ]
}

# ---- pull / push with local transports ---------------------------------------------

@test "pull: oci:, oci-archive: and docker-archive: sources, named as skopeo names them" {
    run "$KILN" pull "oci:$FX/layout:app"
    [ "$status" -eq 0 ]
    # a bare tag names the image after the directory
    "$KILN" inspect layout:app >/dev/null
    run "$KILN" pull "oci-archive:$FX/app.tar"
    [ "$status" -eq 0 ]
    "$KILN" inspect app:1 >/dev/null
    run "$KILN" pull "docker-archive:$FX/base.tar:base:1"
    [ "$status" -eq 0 ]
    "$KILN" inspect base:1 >/dev/null
    [ "$(inspect_jq layout:app '.[0].Id')" = "$(inspect_jq app:1 '.[0].Id')" ]
    run "$KILN" pull "oci:$FX/layout"
    [ "$status" -eq 1 ]
    [[ "$output" == *"holds 2 images"* ]]
    run "$KILN" pull "oci:$FX/layout:@0"
    [ "$status" -eq 0 ]
    run "$KILN" pull "docker-archive:$FX/base.tar:other:9"
    [ "$status" -eq 1 ]
    [[ "$output" == *"no image named 'other:9'"* ]]
    run "$KILN" pull "oci:$BATS_TEST_TMPDIR/missing:x"
    [ "$status" -eq 1 ]
    run "$KILN" pull "dir:$BATS_TEST_TMPDIR"
    [ "$status" -eq 1 ]
}

@test "push: into an OCI layout (added to, tags replaced) and archives" {
    load_fixtures
    m=$(inspect_jq app:1 '.[0].Descriptor.digest')
    L=$BATS_TEST_TMPDIR/out
    run "$KILN" push app:1 "oci:$L:v1"
    [ "$status" -eq 0 ]
    run "$KILN" push base:1 "oci:$L:v2"
    [ "$status" -eq 0 ]
    run "$KILN" push base:1 "oci:$L:v1"
    [ "$status" -eq 0 ]
    jq -e '.manifests | length == 2' "$L/index.json"
    [ "$(skopeo inspect "oci:$L:v1" | jq -r .Digest)" = "$(inspect_jq base:1 '.[0].Descriptor.digest')" ]
    umoci ls --layout "$L" | sort | tr '\n' ' ' | grep -qx 'v1 v2 '
    run "$KILN" push app:1 "docker-archive:$BATS_TEST_TMPDIR/d.tar:team/app:3"
    [ "$status" -eq 0 ]
    tar -xOf "$BATS_TEST_TMPDIR/d.tar" manifest.json | jq -e '.[0].RepoTags == ["docker.io/team/app:3"]'
    run "$KILN" push app:1 "oci-archive:$BATS_TEST_TMPDIR/o.tar:app:1"
    [ "$(skopeo inspect "oci-archive:$BATS_TEST_TMPDIR/o.tar:app:1" | jq -r .Digest)" = "$m" ]
    # and back
    export KILN_ROOT=$BATS_TEST_TMPDIR/back
    run "$KILN" pull "oci:$L:v2"
    [ "$status" -eq 0 ]
    run "$KILN" pull "docker-archive:$BATS_TEST_TMPDIR/d.tar"
    [ "$(inspect_jq team/app:3 '.[0].Descriptor.digest')" = "$m" ]
    run "$KILN" system check
    [ "$status" -eq 0 ]
    export KILN_ROOT=$BATS_TEST_TMPDIR/store
}

# ---- layer trees that kiln itself extracted -------------------------------------------

@test "rmi and prune remove the layer trees kiln run extracted, subordinate owners included" {
    # a root file system with a read-only directory owned by uid 1, as a
    # package manager leaves them
    python3 - "$BATS_TEST_TMPDIR/rootfs.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    def add(name, kind, mode, data=b"", uid=0, link=None):
        i = tarfile.TarInfo(name)
        i.type, i.mode, i.uid, i.gid = kind, mode, uid, uid
        if link:
            i.linkname = link
        i.size = len(data)
        t.addfile(i, io.BytesIO(data) if data else None)
    add("bin", tarfile.DIRTYPE, 0o755)
    add("bin/busybox", tarfile.REGTYPE, 0o755, open("/bin/busybox", "rb").read())
    add("bin/sh", tarfile.SYMTYPE, 0o777, link="busybox")
    add("locked", tarfile.DIRTYPE, 0o500, uid=1)
    add("locked/inner", tarfile.DIRTYPE, 0o500, uid=1)
    add("locked/inner/f", tarfile.REGTYPE, 0o400, b"secret\n", uid=1)
PY
    run "$KILN" import "$BATS_TEST_TMPDIR/rootfs.tar" locked:1
    [ "$status" -eq 0 ]
    run "$KILN" run --rm locked:1 /bin/sh -c 'echo ran'
    [ "$status" -eq 0 ]
    [[ "$output" == *ran* ]]
    n=$(find "$KILN_ROOT/trees" -mindepth 1 -maxdepth 1 -type d | wc -l)
    [ "$n" -ge 1 ]
    run "$KILN" system df --format '{{.Type}} {{.Size}}'
    [[ "${lines[0]}" =~ ^Images\ [0-9.]+MB$ ]]
    run "$KILN" rmi locked:1
    [ "$status" -eq 0 ]
    [[ "$output" == *"Deleted: sha256:"* ]]
    run find "$KILN_ROOT/trees" -mindepth 1 -maxdepth 1
    [ -z "$output" ]
    run find "$KILN_ROOT/tmp" -name 'gc-*'
    [ -z "$output" ]
    # the same through image prune -a
    "$KILN" import -q "$BATS_TEST_TMPDIR/rootfs.tar" locked:2 >/dev/null
    "$KILN" run --rm locked:2 /bin/sh -c true
    run "$KILN" image prune -a -f
    [ "$status" -eq 0 ]
    run find "$KILN_ROOT/trees" -mindepth 1 -maxdepth 1
    [ -z "$output" ]
}
