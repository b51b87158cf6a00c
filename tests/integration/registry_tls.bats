#!/usr/bin/env bats
# kiln login / logout / pull / push against a registry with TLS (a CA made
# by the test) and htpasswd Basic auth: Debian's docker-registry on 127.0.0.1.

bats_require_minimum_version 1.5.0
load ../registry/common

setup_file() {
    command -v docker-registry >/dev/null || skip "docker-registry is not installed"
    start_registry "$BATS_FILE_TMPDIR/reg" --tls --auth "tester:s3cret-pw"
    export REG_PORT
    export REG=127.0.0.1:$REG_PORT
    export CA=$BATS_FILE_TMPDIR/reg/ca.crt
}

teardown_file() {
    stop_registry "$BATS_FILE_TMPDIR/reg"
}

setup() {
    reg_test_env
}

# Trust the test CA the way containers/image does: certs.d/HOST:PORT/*.crt.
trust_ca() {
    mkdir -p "$XDG_CONFIG_HOME/containers/certs.d/$REG"
    cp "$CA" "$XDG_CONFIG_HOME/containers/certs.d/$REG/ca.crt"
}

@test "TLS is verified by default: an unknown CA is refused, with no fallback to HTTP" {
    run --separate-stderr kin pull "$REG/x/y:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"certificate"* ]] || reg_fail "$stderr"
    run --separate-stderr "$KILN" login -u tester -p s3cret-pw "$REG"
    [ "$status" -eq 1 ]
    [ ! -e "$XDG_RUNTIME_DIR/containers/auth.json" ]
}

@test "without credentials: a clear authentication error, exit 1" {
    trust_ca
    $OCI image "$STORE" a:1 --file a=1 >/dev/null
    run --separate-stderr kin push a:1 "$REG/tls/a:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"authentication required"* ]] || reg_fail "$stderr"
}

@test "login with a wrong password: clear error, exit 1, nothing saved" {
    trust_ca
    run --separate-stderr "$KILN" login -u tester -p wrong "$REG"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"kiln: error:"*"invalid user name or password"* ]] || reg_fail "$stderr"
    [ ! -e "$XDG_RUNTIME_DIR/containers/auth.json" ]
}

@test "login saves credentials 0600 in the containers auth file; push and pull use them; logout forgets them" {
    trust_ca
    run --separate-stderr "$KILN" login -u tester -p s3cret-pw "$REG"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [[ "$stderr" == *"Login Succeeded"* ]]
    f=$XDG_RUNTIME_DIR/containers/auth.json
    [ "$(stat -c %a "$f")" = 600 ]
    [ "$(stat -c %a "$XDG_RUNTIME_DIR/containers")" = 700 ]
    want=$(printf 'tester:s3cret-pw' | base64)
    [ "$(jq -r --arg k "$REG" '.auths[$k].auth' "$f")" = "$want" ]

    dg=$($OCI image "$STORE" b:1 --file b=1 --random-layer 20000)
    run --separate-stderr kin push b:1 "$REG/tls/b:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$output" = "$dg" ]
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o" pull "$REG/tls/b:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$(store_digest "$BATS_TEST_TMPDIR/o" "$REG/tls/b:1")" = "$dg" ]

    run --separate-stderr "$KILN" logout "$REG"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$(jq -r --arg k "$REG" '.auths[$k] // "gone"' "$f")" = gone ]
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o2" pull "$REG/tls/b:1"
    [ "$status" -eq 1 ]
    run --separate-stderr "$KILN" logout "$REG"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"not logged in"* ]]
}

@test "--password-stdin and --authfile; other entries of the file are kept" {
    trust_ca
    af=$BATS_TEST_TMPDIR/conf/my-auth.json
    mkdir -p "$(dirname "$af")"
    echo '{"auths":{"other.example":{"auth":"YTpi"}},"credsStore":"keep-me"}' >"$af"
    run --separate-stderr "$KILN" login --authfile "$af" -u tester --password-stdin "$REG" <<<"s3cret-pw"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$(jq -r '.credsStore' "$af")" = keep-me ]
    [ "$(jq -r '.auths["other.example"].auth' "$af")" = YTpi ]
    [ "$(jq -r --arg k "$REG" '.auths[$k].auth' "$af")" = "$(printf 'tester:s3cret-pw' | base64)" ]
    [ ! -e "$XDG_RUNTIME_DIR/containers/auth.json" ]
    $OCI image "$STORE" c:1 --file c=1 >/dev/null
    run --separate-stderr kin push --authfile "$af" c:1 "$REG/tls/c:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    # $REGISTRY_AUTH_FILE too
    run --separate-stderr env REGISTRY_AUTH_FILE="$af" KILN_ROOT="$BATS_TEST_TMPDIR/o" "$KILN" pull "$REG/tls/c:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    run --separate-stderr "$KILN" logout --authfile "$af" --all
    [ "$status" -eq 0 ]
    [ "$(jq -r '.auths | length' "$af")" = 0 ]
    [ "$(jq -r '.credsStore' "$af")" = keep-me ]
}

@test "credentials from ~/.docker/config.json and from --creds" {
    trust_ca
    $OCI image "$STORE" d:1 --file d=1 >/dev/null
    run --separate-stderr kin push --creds tester:s3cret-pw d:1 "$REG/tls/d:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    run --separate-stderr kin push --creds tester:nope d:1 "$REG/tls/d:2"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"invalid user name or password"* ]] || reg_fail "$stderr"
    mkdir -p "$HOME/.docker"
    printf '{"auths":{"https://%s":{"auth":"%s"}}}' "$REG" "$(printf 'tester:s3cret-pw' | base64)" >"$HOME/.docker/config.json"
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o" pull "$REG/tls/d:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
}

@test "--cert-dir, --tls-verify=false and the insecure registries list" {
    $OCI image "$STORE" e:1 --file e=1 >/dev/null
    certs=$BATS_TEST_TMPDIR/certs
    mkdir -p "$certs"
    cp "$CA" "$certs/test-ca.crt"
    run --separate-stderr kin push --cert-dir "$certs" --creds tester:s3cret-pw e:1 "$REG/tls/e:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o" pull --tls-verify=false --creds tester:s3cret-pw "$REG/tls/e:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    run --separate-stderr env KILN_INSECURE_REGISTRIES="$REG" KILN_ROOT="$BATS_TEST_TMPDIR/o2" "$KILN" pull --creds tester:s3cret-pw "$REG/tls/e:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    mkdir -p "$XDG_CONFIG_HOME/kiln"
    printf '# test\ninsecure %s\n' "$REG" >"$XDG_CONFIG_HOME/kiln/registries.conf"
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o3" pull --creds tester:s3cret-pw "$REG/tls/e:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    # but an explicit --tls-verify=true still verifies
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o4" pull --tls-verify=true --creds tester:s3cret-pw "$REG/tls/e:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"certificate"* ]] || reg_fail "$stderr"
}
