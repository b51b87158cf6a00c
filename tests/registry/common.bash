# Shared setup of the registry integration tests (tests/integration/registry*.bats).
# shellcheck shell=bash
#
#   KILN        the kiln binary (default: build/kiln of this checkout)
# Each test gets its own store, HOME and XDG directories under
# $BATS_TEST_TMPDIR, so that nothing of the user running the tests is read
# or written.

REGTOOLS=$(cd "$BATS_TEST_DIRNAME/../registry" && pwd)
: "${KILN:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build/kiln}"
OCI="python3 $REGTOOLS/oci.py"
export KILN_REGISTRY_BACKOFF_MS=${KILN_REGISTRY_BACKOFF_MS:-50}

reg_fail() {
    printf '%s\n' "$@" >&2
    return 1
}

# Per-test environment: HOME, XDG_CONFIG_HOME, XDG_RUNTIME_DIR, a store.
reg_test_env() {
    export HOME=$BATS_TEST_TMPDIR/home
    export XDG_CONFIG_HOME=$HOME/.config
    export XDG_RUNTIME_DIR=$BATS_TEST_TMPDIR/run
    unset REGISTRY_AUTH_FILE DOCKER_CONFIG KILN_INSECURE_REGISTRIES
    mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
    chmod 700 "$XDG_RUNTIME_DIR"
    STORE=$BATS_TEST_TMPDIR/store
}

# kin [--store DIR] ARGS...: kiln on a store (default $STORE).
kin() {
    local store=$STORE
    if [ "${1:-}" = --store ]; then
        store=$2
        shift 2
    fi
    KILN_ROOT=$store "$KILN" "$@"
}

# start_registry DIR [--tls] [--auth U:P]; sets REG_PORT.
start_registry() {
    local dir=$1
    shift
    "$REGTOOLS/registry.sh" start "$dir" "$@" 3>&-
    REG_PORT=$(cat "$dir/port")
}

stop_registry() {
    "$REGTOOLS/registry.sh" stop "$1" 3>&- || true
}

# start_proxy DIR UPSTREAM_PORT [proxy flags]; sets PROXY_PORT, log in DIR/log.
start_proxy() {
    local dir=$1 up=$2
    shift 2
    mkdir -p "$dir"
    rm -f "$dir/port" "$dir/log"
    python3 "$REGTOOLS/proxy.py" --upstream "http://127.0.0.1:$up" --port-file "$dir/port" \
        --log "$dir/log" "$@" </dev/null >"$dir/proxy.out" 2>&1 3>&- &
    echo $! >"$dir/pid"
    for _ in $(seq 100); do
        [ -s "$dir/port" ] && break
        sleep 0.05
    done
    PROXY_PORT=$(cat "$dir/port")
    touch "$dir/log"
}

stop_proxy() {
    local dir=$1
    [ -f "$dir/pid" ] || return 0
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    wait "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
}

# Bytes the client sent in blob uploads (PATCH/PUT/POST under /blobs/uploads/).
upload_bytes() {
    awk '$2 ~ /\/blobs\/uploads\// && ($1 == "PATCH" || $1 == "PUT" || $1 == "POST") { n += $4 } END { print n + 0 }' "$1"
}

blob_count() {
    find "$1/blobs/sha256" -type f 2>/dev/null | wc -l
}

# The index.json entry digest for NAME in a store.
store_digest() {
    $OCI digest "$1" "$2"
}
