#!/bin/bash
# Starts and stops Debian's docker-registry (Distribution 2.8) for tests, on
# a free port of 127.0.0.1.
#
#   registry.sh start DIR [--tls] [--auth USER:PASSWORD]
#       DIR/port, DIR/pid, DIR/registry.log, DIR/data (storage);
#       with --tls: DIR/ca.crt (a CA made here) signs DIR/server.crt for
#       127.0.0.1 and localhost; with --auth: htpasswd Basic auth;
#       with --token-auth USER:PASSWORD: bearer tokens from tokenserver.py
#       (DIR/token.port, DIR/token.log: one line per token request).
#   registry.sh stop DIR
set -euo pipefail

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

make_certs() {
    local d=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/ca.key" -out "$d/ca.crt" -days 2 -subj "/CN=kiln test CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
        "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -out "$d/server.crt" -days 2 -extfile "$d/server.ext" 2>/dev/null
    chmod 644 "$d/ca.crt"
}

make_htpasswd() {
    local file=$1 user=${2%%:*} pass=${2#*:}
    if command -v htpasswd >/dev/null; then
        htpasswd -Bbn "$user" "$pass" >"$file"
    else
        # bcrypt through libcrypt (the registry accepts only bcrypt)
        python3 -W ignore -c 'import crypt,sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
            "$user" "$pass" >"$file"
    fi
}

start_token_server() {
    local d=$1 user=$2
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/token.key" -out "$d/token.crt" \
        -days 2 -subj "/CN=kiln test token issuer" 2>/dev/null
    rm -f "$d/token.port"
    setsid python3 "$(dirname "$0")/tokenserver.py" --port-file "$d/token.port" \
        --key "$d/token.key" --cert "$d/token.crt" --issuer kiln-test-issuer \
        --service kiln-test-registry --user "$user" --log "$d/token.log" \
        </dev/null >"$d/token.out" 2>&1 3>&- &
    echo $! >"$d/token.pid"
    for _ in $(seq 100); do
        [ -s "$d/token.port" ] && return 0
        sleep 0.05
    done
    echo "registry.sh: the token server did not start" >&2
    cat "$d/token.out" >&2
    return 1
}

start() {
    local d=$1
    shift
    local tls=0 auth= token=
    while [ $# -gt 0 ]; do
        case $1 in
        --tls) tls=1 ;;
        --auth) auth=$2; shift ;;
        --token-auth) token=$2; shift ;;
        *) echo "registry.sh: unknown flag $1" >&2; return 2 ;;
        esac
        shift
    done
    mkdir -p "$d/data"
    local port
    port=$(free_port)
    if [ -n "$token" ]; then
        start_token_server "$d" "$token"
    fi
    {
        echo "version: 0.1"
        echo "log: {level: info, accesslog: {disabled: false}}"
        echo "storage: {filesystem: {rootdirectory: $d/data}, delete: {enabled: true}}"
        echo "http:"
        echo "  addr: 127.0.0.1:$port"
        echo "  secret: kiln-test-secret"
        if [ $tls = 1 ]; then
            make_certs "$d"
            echo "  tls: {certificate: $d/server.crt, key: $d/server.key}"
        fi
        if [ -n "$auth" ]; then
            make_htpasswd "$d/htpasswd" "$auth"
            echo "auth: {htpasswd: {realm: kiln-test, path: $d/htpasswd}}"
        fi
        if [ -n "$token" ]; then
            echo "auth:"
            echo "  token:"
            echo "    realm: http://127.0.0.1:$(cat "$d/token.port")/token"
            echo "    service: kiln-test-registry"
            echo "    issuer: kiln-test-issuer"
            echo "    rootcertbundle: $d/token.crt"
        fi
    } >"$d/config.yml"
    setsid docker-registry serve "$d/config.yml" </dev/null >"$d/registry.log" 2>&1 3>&- &
    echo $! >"$d/pid"
    echo "$port" >"$d/port"
    local scheme=http curl_ca=()
    if [ $tls = 1 ]; then
        scheme=https
        curl_ca=(--cacert "$d/ca.crt")
    fi
    for _ in $(seq 100); do
        local code
        code=$(curl -s -o /dev/null -w '%{http_code}' "${curl_ca[@]}" "$scheme://127.0.0.1:$port/v2/" || true)
        if [ "$code" = 200 ] || [ "$code" = 401 ]; then
            return 0
        fi
        if ! kill -0 "$(cat "$d/pid")" 2>/dev/null; then
            echo "registry.sh: docker-registry exited:" >&2
            cat "$d/registry.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "registry.sh: docker-registry did not answer on port $port" >&2
    cat "$d/registry.log" >&2
    stop "$d"
    return 1
}

stop() {
    local d=$1
    if [ -f "$d/token.pid" ]; then
        kill "$(cat "$d/token.pid")" 2>/dev/null || true
        rm -f "$d/token.pid"
    fi
    [ -f "$d/pid" ] || return 0
    local pid
    pid=$(cat "$d/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$d/pid"
}

case ${1:-} in
start) shift; start "$@" ;;
stop) shift; stop "$@" ;;
*) echo "usage: registry.sh start DIR [--tls] [--auth USER:PASS] | stop DIR" >&2; exit 2 ;;
esac
