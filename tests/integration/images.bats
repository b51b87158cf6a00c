#!/usr/bin/env bats
# kiln images / inspect / history / tag / rmi / image: output and effect on
# the store.  `kiln system check` runs after every test.

load images_lib

setup_file() { fixtures_setup_file; }
setup() { store_setup; }
teardown() { store_teardown; }

@test "images: an empty store shows only the header" {
    run "$KILN" images
    [ "$status" -eq 0 ]
    [ "$output" = "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE" ]
}

@test "images: docker's columns, 12-hex ids, sizes and times" {
    load_fixtures
    run "$KILN" images
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 3 ]
    [[ "${lines[0]}" =~ ^REPOSITORY\ +TAG\ +IMAGE\ ID\ +CREATED\ +SIZE$ ]]
    re='app +1 +[0-9a-f]{12} +[0-9A-Za-z ]+ ago +[0-9.]+[kM]B'
    [[ "$output" =~ $re ]]
    [[ "$output" =~ base\ +1\ +[0-9a-f]{12}\  ]]
    # the id column is the config digest
    id=$(inspect_jq app:1 '.[0].Id')
    [[ "$output" == *"${id:7:12}"* ]]
}

@test "images: -q, --no-trunc, --digests" {
    load_fixtures
    run "$KILN" images -q
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    [[ "${lines[0]}" =~ ^[0-9a-f]{12}$ ]]
    run "$KILN" images -q --no-trunc
    [[ "${lines[0]}" =~ ^sha256:[0-9a-f]{64}$ ]]
    run "$KILN" images --digests
    [[ "${lines[0]}" =~ ^REPOSITORY\ +TAG\ +DIGEST\ +IMAGE\ ID ]]
    digest=$(inspect_jq app:1 '.[0].Descriptor.digest')
    [[ "$output" == *"$digest"* ]]
}

@test "images: --format templates, table and json" {
    load_fixtures
    run "$KILN" images --format '{{.Repository}}:{{.Tag}} {{.Size}}'
    [ "$status" -eq 0 ]
    [[ "$output" == *"app:1 "* ]]
    [[ "$output" == *"base:1 "* ]]
    run "$KILN" images --format 'table {{.Repository}}\t{{.ID}}'
    [[ "${lines[0]}" =~ ^REPOSITORY\ +IMAGE\ ID$ ]]
    run "$KILN" images --format json
    [ "${#lines[@]}" -eq 2 ]
    echo "${lines[0]}" | jq -e '.Repository and .Tag and .ID and .Digest and .CreatedSince and .CreatedAt and .Size and .Containers == "N/A"'
    run "$KILN" images --format '{{json .}}'
    echo "${lines[1]}" | jq -e .ID
    run "$KILN" images --format '{{.Nope}}'
    [ "$status" -eq 1 ]
    [[ "$output" == *"Nope"* ]]
    run "$KILN" images --format '{{.Repository'
    [ "$status" -eq 1 ]
}

@test "images: filters and a repository argument" {
    load_fixtures
    "$KILN" tag base:1 other/base:2
    run "$KILN" images --format '{{.Repository}}:{{.Tag}}' --filter reference='b*'
    [ "$output" = "base:1" ]
    run "$KILN" images --format '{{.Repository}}:{{.Tag}}' --filter reference='*/base'
    [ "$output" = "other/base:2" ]
    run "$KILN" images --format '{{.Repository}}:{{.Tag}}' --filter label=org.example.tier=web
    [ "$output" = "app:1" ]
    run "$KILN" images --format '{{.Repository}}:{{.Tag}}' --filter label=org.example.tier=db
    [ -z "$output" ]
    run "$KILN" images --format '{{.Repository}}' base
    [ "$output" = "base" ]
    run "$KILN" images --format '{{.Repository}}' --filter dangling=true
    [ -z "$output" ]
    run "$KILN" images --filter bogus=1
    [ "$status" -eq 1 ]
    [[ "$output" == *"invalid filter 'bogus'"* ]]
    run "$KILN" images --nope
    [ "$status" -eq 2 ]
}

@test "images: an image that lost its name is listed as <none>" {
    load_fixtures
    # a second load under an existing name leaves the old image untagged
    "$KILN" tag base:1 app:1
    run "$KILN" images --format '{{.Repository}}:{{.Tag}}'
    [[ "$output" == *"<none>:<none>"* ]]
    run "$KILN" images --format '{{.Repository}}' --filter dangling=true
    [ "$output" = "<none>" ]
}

@test "inspect: docker's JSON shape" {
    load_fixtures
    run "$KILN" inspect app:1
    [ "$status" -eq 0 ]
    echo "$output" | jq -e 'type == "array" and length == 1'
    j=$(echo "$output" | jq '.[0]')
    echo "$j" | jq -e '.Id | test("^sha256:[0-9a-f]{64}$")'
    echo "$j" | jq -e '.RepoTags == ["app:1"]'
    echo "$j" | jq -e '.RepoDigests[0] | test("^app@sha256:")'
    echo "$j" | jq -e '.Architecture == "amd64" and .Os == "linux"'
    echo "$j" | jq -e '.Config.Env | index("A=1") != null'
    echo "$j" | jq -e '.Config.Labels["org.example.tier"] == "web"'
    echo "$j" | jq -e '.Config.WorkingDir == "/app"'
    echo "$j" | jq -e '.Config.Cmd == ["/bin/cat", "/app/hello.txt"]'
    echo "$j" | jq -e '.RootFS.Type == "layers" and (.RootFS.Layers | length) == 2'
    echo "$j" | jq -e '(.Size | type) == "number" and .Size > 0'
    echo "$j" | jq -e '.Created | test("^[0-9]{4}-")'
    echo "$j" | jq -e '.Metadata.LastTagTime'
    # indented like docker (4 spaces)
    [[ "${lines[1]}" == "    {" ]]
}

@test "inspect: --format, several images, errors" {
    load_fixtures
    run "$KILN" inspect --format '{{.Id}}' app:1
    [[ "$output" =~ ^sha256:[0-9a-f]{64}$ ]]
    run "$KILN" inspect -f '{{.Config.Env}}' app:1
    [[ "$output" == "["*"A=1"*"]" ]]
    run "$KILN" inspect -f '{{json .Config.Labels}}' app:1
    [ "$output" = '{"org.example.tier":"web"}' ]
    run "$KILN" inspect -f '{{index .RepoTags 0}}|{{.Config.WorkingDir}}|{{len .RootFS.Layers}}' app:1
    [ "$output" = "app:1|/app|2" ]
    run "$KILN" inspect -f '{{range .Config.Cmd}}<{{.}}>{{end}}' app:1
    [ "$output" = "</bin/cat></app/hello.txt>" ]
    run "$KILN" inspect -f '{{.Os}}' app:1 base:1
    [ "${#lines[@]}" -eq 2 ]
    run "$KILN" inspect app:1 base:1
    echo "$output" | jq -e 'length == 2'
    # by id prefix
    id=$(inspect_jq base:1 '.[0].Id')
    run "$KILN" inspect -f '{{.Id}}' "${id:7:8}"
    [ "$output" = "$id" ]
    run "$KILN" inspect -f '{{.Config.Nope}}' app:1
    [ "$status" -eq 1 ]
    [[ "$output" == *"can't evaluate field Nope"* ]]
    run "$KILN" inspect app:1 missing:1
    [ "$status" -eq 1 ]
    [[ "$output" == *"no such image: 'missing:1'"* ]]
    [[ "$output" == *'"Id"'* ]]
    run "$KILN" inspect
    [ "$status" -eq 2 ]
}

@test "history: docker's columns, newest first" {
    load_fixtures
    run "$KILN" history app:1
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" =~ ^IMAGE\ +CREATED\ +CREATED\ BY\ +SIZE\ +COMMENT$ ]]
    id=$(inspect_jq app:1 '.[0].Id')
    [[ "${lines[1]}" == "${id:7:12}"* ]]
    [[ "${lines[1]}" == *'CMD ["/bin/cat","/app/hello.txt"]'*"0B"* ]]
    [[ "${lines[2]}" == "<missing>"*"COPY hello.txt /app/"* ]]
    [[ "${lines[3]}" == "<missing>"*'CMD ["/bin/sh"]'*"0B"* ]]
    [[ "${lines[4]}" == "<missing>"*"COPY busybox /bin/"*[0-9]"MB"* ]]
    [ "${#lines[@]}" -eq 5 ]
    run "$KILN" history -q app:1
    [ "${lines[0]}" = "${id:7:12}" ]
    [ "${lines[1]}" = "<missing>" ]
    run "$KILN" history --no-trunc --format '{{.ID}}|{{.CreatedBy}}' app:1
    [ "${lines[0]}" = "$id|CMD [\"/bin/cat\",\"/app/hello.txt\"]" ]
    run "$KILN" history --format json base:1
    echo "${lines[0]}" | jq -e '.ID and .CreatedBy and .Size and .CreatedSince'
    run "$KILN" history -H=false --format '{{.Size}}' base:1
    [[ "$output" =~ [0-9]{6,} ]]
    run "$KILN" history nope:1
    [ "$status" -eq 1 ]
}

@test "history: long CREATED BY is cut to 45 characters" {
    load_fixtures
    cp -r "$FX/layout" "$BATS_TEST_TMPDIR/l"
    umoci config --image "$BATS_TEST_TMPDIR/l:app" --config.user 1000 \
        --history.created_by "RUN $(printf 'x%.0s' $(seq 1 80))"
    skopeo copy -q "oci:$BATS_TEST_TMPDIR/l:app" "oci-archive:$BATS_TEST_TMPDIR/long.tar:long:1"
    "$KILN" load -q -i "$BATS_TEST_TMPDIR/long.tar"
    run "$KILN" history --format '{{.CreatedBy}}' long:1
    [ "${#lines[0]}" -lt 50 ]
    [[ "${lines[0]}" == *"…" ]]
}

@test "tag: another name, same image" {
    load_fixtures
    run "$KILN" tag app:1 registry.example.com/team/app:2
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    a=$(inspect_jq app:1 '.[0].Id')
    b=$(inspect_jq registry.example.com/team/app:2 '.[0].Id')
    [ "$a" = "$b" ]
    inspect_jq app:1 '.[0].RepoTags | length' | grep -qx 2
    # the store's index carries the name for other tools
    jq -e '.manifests[].annotations["org.opencontainers.image.ref.name"] | select(. == "registry.example.com/team/app:2")' "$KILN_ROOT/index.json"
    run "$KILN" tag nope:1 x:1
    [ "$status" -eq 1 ]
    [[ "$output" == *"no such image"* ]]
    run "$KILN" tag app:1 "x@sha256:$(printf '0%.0s' $(seq 1 64))"
    [ "$status" -eq 1 ]
    [[ "$output" == *"digest"* ]]
    run "$KILN" tag app:1 Bad:1
    [ "$status" -eq 1 ]
    run "$KILN" tag app:1
    [ "$status" -eq 2 ]
}

@test "rmi: a name that another still holds is only untagged" {
    load_fixtures
    "$KILN" tag app:1 app:2
    before=$(nblobs)
    run "$KILN" rmi app:2
    [ "$status" -eq 0 ]
    [ "$output" = "Untagged: app:2" ]
    [ "$(nblobs)" -eq "$before" ]
    "$KILN" inspect app:1 >/dev/null
}

@test "rmi: the last name removes the image and its blobs" {
    load_fixtures
    before=$(nblobs)
    id=$(inspect_jq app:1 '.[0].Id')
    run "$KILN" rmi app:1
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "Untagged: app:1" ]
    [ "${lines[1]}" = "Deleted: $id" ]
    [[ "${lines[2]}" =~ ^Deleted:\ sha256: ]]
    [ "$(nblobs)" -lt "$before" ]
    [ ! -e "$KILN_ROOT/blobs/sha256/${id:7}" ]
    run "$KILN" images -q
    [ "${#lines[@]}" -eq 1 ]
    # base is untouched
    "$KILN" inspect base:1 >/dev/null
}

@test "rmi: an id named in several repositories needs -f" {
    load_fixtures
    "$KILN" tag app:1 other:1
    id=$(inspect_jq app:1 '.[0].Id')
    run "$KILN" rmi "${id:7:12}"
    [ "$status" -eq 1 ]
    [[ "$output" == *"conflict: unable to delete ${id:7:12} (must be forced) - image is referenced in multiple repositories"* ]]
    "$KILN" inspect app:1 other:1 >/dev/null
    run "$KILN" rmi -f "${id:7:12}"
    [ "$status" -eq 0 ]
    [[ "$output" == *"Untagged: app:1"* ]]
    [[ "$output" == *"Untagged: other:1"* ]]
    [[ "$output" == *"Deleted: $id"* ]]
    run "$KILN" inspect app:1
    [ "$status" -eq 1 ]
}

@test "rmi: an id with several tags of one repository goes without -f" {
    load_fixtures
    "$KILN" tag base:1 base:2
    id=$(inspect_jq base:1 '.[0].Id')
    run "$KILN" rmi "$id"
    [ "$status" -eq 0 ]
    [[ "$output" == *"Untagged: base:1"* && "$output" == *"Untagged: base:2"* ]]
}

@test "rmi: errors, and the others still go" {
    load_fixtures
    run "$KILN" rmi nope:1 base:1
    [ "$status" -eq 1 ]
    [[ "$output" == *"no such image: 'nope:1'"* ]]
    [[ "$output" == *"Untagged: base:1"* ]]
    run "$KILN" rmi
    [ "$status" -eq 2 ]
    id=$(inspect_jq app:1 '.[0].Id')
    before=$(nblobs)
    run "$KILN" rmi --no-prune app:1
    [ "$status" -eq 0 ]
    [ "$output" = "Untagged: app:1
Deleted: $id" ]
    [ "$(nblobs)" -eq "$before" ]
}

@test "image: docker's aliases" {
    load_fixtures
    run "$KILN" image ls --format '{{.Repository}}'
    [[ "$output" == *app* && "$output" == *base* ]]
    run "$KILN" image inspect -f '{{.Os}}' app:1
    [ "$output" = "linux" ]
    run "$KILN" image tag app:1 app:x
    [ "$status" -eq 0 ]
    run "$KILN" image history -q app:x
    [ "$status" -eq 0 ]
    run "$KILN" image rm app:x
    [ "$output" = "Untagged: app:x" ]
    run "$KILN" image nope
    [ "$status" -eq 2 ]
    run "$KILN" image
    [ "$status" -eq 2 ]
}
