#!/usr/bin/env bats
# The bearer token flow (Docker Hub, GHCR, Harbor...): docker-registry with
# token auth, and tests/registry/tokenserver.py signing the JWTs it trusts.
# Anonymous clients get pull, authenticated ones pull and push.

bats_require_minimum_version 1.5.0
load ../registry/common

setup_file() {
    command -v docker-registry >/dev/null || skip "docker-registry is not installed"
    start_registry "$BATS_FILE_TMPDIR/reg" --token-auth "robot:t0ken-pw"
    export REG_PORT
    export REG=127.0.0.1:$REG_PORT
    export TOKLOG=$BATS_FILE_TMPDIR/reg/token.log
}

teardown_file() {
    stop_registry "$BATS_FILE_TMPDIR/reg"
}

setup() {
    reg_test_env
}

@test "push needs credentials: an anonymous token only reads" {
    $OCI image "$STORE" a:1 --file a=1 >/dev/null
    run --separate-stderr kin push a:1 "$REG/tok/a:1"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"HTTP 401"*"authentication required"* ]] || reg_fail "$stderr"
}

@test "login against the token server: wrong password refused, right one saved" {
    run --separate-stderr "$KILN" login -u robot --password-stdin "$REG" <<<"nope"
    [ "$status" -eq 1 ]
    [[ "$stderr" == *"invalid user name or password"* ]] || reg_fail "$stderr"
    [ ! -e "$XDG_RUNTIME_DIR/containers/auth.json" ]
    run --separate-stderr "$KILN" login -u robot --password-stdin "$REG" <<<"t0ken-pw"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ -s "$XDG_RUNTIME_DIR/containers/auth.json" ]
}

@test "push with a bearer token (cached per scope), anonymous pull, mount with two scopes" {
    printf 't0ken-pw' | "$KILN" login -u robot --password-stdin "$REG" 2>/dev/null
    dg=$($OCI image "$STORE" b:1 --file b=1 --random-layer 30000)
    before=$(wc -l <"$TOKLOG")
    run --separate-stderr kin push b:1 "$REG/tok/b:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$output" = "$dg" ]
    # one token for the whole push (3 blobs and a manifest)
    [ "$(tail -n +"$((before + 1))" "$TOKLOG" | grep -c 'repository:tok/b:pull,push')" -eq 1 ] ||
        reg_fail "$(cat "$TOKLOG")"
    # another repository: the blobs are mounted with a token for both
    run --separate-stderr kin push b:1 "$REG/tok/c:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [[ "$stderr" == *"mounted from tok/b"* ]] || reg_fail "$stderr"
    grep -q 'token repository:tok/c:pull,push repository:tok/b:pull ' "$TOKLOG"
    # anonymous reads
    rm -f "$XDG_RUNTIME_DIR/containers/auth.json"
    run --separate-stderr kin --store "$BATS_TEST_TMPDIR/o" pull "$REG/tok/c:1"
    [ "$status" -eq 0 ] || reg_fail "$stderr"
    [ "$(store_digest "$BATS_TEST_TMPDIR/o" "$REG/tok/c:1")" = "$dg" ]
}
