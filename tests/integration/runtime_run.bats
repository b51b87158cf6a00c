#!/usr/bin/env bats
# Issue 4.8: `kiln run --rm [-i] [-t] [-e K=V] [--env-file F] [-v HOST:CTR[:ro]]
# [-w DIR] [-u USER] [--network host|none] [--entrypoint E] IMAGE [CMD...]`
# runs an image of the store as a RUN step runs, like `docker run --init`:
# the command's exit code is kiln's (125 when the container cannot start,
# 126 not executable, 127 not found), signals to kiln go to the command
# (SIGTERM stops a server reachable on the host network), -i passes stdin,
# -t gives a terminal, the container's changes are thrown away.

load helpers
load runtime_lib
bats_require_minimum_version 1.5.0

setup_file() {
    use_bases busybox debian
    local ctx=$BATS_FILE_TMPDIR/app
    mkdir -p "$ctx"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM busybox
RUN echo 'app:x:1500:1500::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1500:' >> /etc/group && \
    mkdir -p /home/app /srv && chown 1500:1500 /home/app && echo notexec > /srv/notexec
ENV GREETING=hello MODE=image
WORKDIR /srv
USER app
ENTRYPOINT ["/bin/sh", "-c", "echo \"$GREETING from $(id -u) in $(pwd): $0 $*\"", "entry"]
CMD ["default", "args"]
EOF
    KILN_ROOT=$(kiln_store) "$KILN" build -q -t app "$ctx" >"$BATS_FILE_TMPDIR/build.out" 2>&1 ||
        fail "build failed:" "$(cat "$BATS_FILE_TMPDIR/build.out")"
}

teardown() { kill_test_kiln; }

@test "ENTRYPOINT, CMD, ENV, WORKDIR and USER of the image; arguments replace CMD; --entrypoint drops it" {
    run --separate-stderr kiln run --rm app
    assert_success
    assert_equal "$output" "hello from 1500 in /srv: entry default args"
    run --separate-stderr kiln run --rm app one two
    assert_equal "$output" "hello from 1500 in /srv: entry one two"
    run --separate-stderr kiln run --rm --entrypoint /bin/echo app
    assert_equal "$output" ""
    run --separate-stderr kiln run --rm --entrypoint /bin/echo app x y
    assert_equal "$output" "x y"
    run --separate-stderr kiln run --rm busybox sh -c 'cat /proc/1/comm; echo $$; echo $PPID'
    assert_equal "$(tr '\n' ' ' <<<"$output")" "kiln-init 2 1 " "pid 1, the command, its parent"
}

@test "-e, --env-file, -w, -u (names from the image), --hostname, HOME and HOSTNAME" {
    printf 'A=1\n# a comment\nB=two words\n\nC\n' >"$BATS_TEST_TMPDIR/env"
    run --separate-stderr env C=from-our-env KILN_ROOT="$(kiln_store)" "$KILN" run --rm \
        --env-file "$BATS_TEST_TMPDIR/env" -e D=4 -e MODE=flag --entrypoint '' app \
        sh -c 'echo "$A|$B|$C|$D|$MODE|$GREETING"'
    assert_success
    assert_equal "$output" "1|two words|from-our-env|4|flag|hello"
    run --separate-stderr kiln run --rm -u 0 -w /tmp --entrypoint '' app sh -c 'id -u; pwd; echo $HOME'
    assert_equal "$(tr '\n' ' ' <<<"$output")" "0 /tmp /root "
    run --separate-stderr kiln run --rm -u app:0 busybox sh -c 'id -u; id -g; echo $HOME'
    assert_failure 125 # busybox has no user app
    assert_stderr_contains "unable to find user app"
    run --separate-stderr kiln run --rm -u 4321:4322 --entrypoint '' app sh -c 'id -u; id -g; echo $HOME'
    assert_equal "$(tr '\n' ' ' <<<"$output")" "4321 4322 / "
    run --separate-stderr kiln run --rm --hostname box busybox sh -c 'hostname; echo $HOSTNAME'
    assert_equal "$(tr '\n' ' ' <<<"$output")" "box box "
    run --separate-stderr kiln run --rm -w /new/dir busybox pwd
    assert_equal "$output" /new/dir
}

@test "-v HOST:CTR binds read-write, :ro read-only" {
    local v=$BATS_TEST_TMPDIR/vol
    mkdir -p "$v"
    echo from-host >"$v/in"
    run --separate-stderr kiln run --rm -v "$v:/vol" busybox sh -c 'cat /vol/in; echo from-container > /vol/out'
    assert_success
    assert_equal "$output" from-host
    assert_equal "$(cat "$v/out")" from-container
    assert_owner "$v/out" "$(id -u):$(id -g)"
    run --separate-stderr kiln run --rm -v "$v:/vol:ro" busybox sh -c 'cat /vol/in && echo x > /vol/out2'
    assert_failure
    assert_stderr_contains "Read-only file system"
    [ ! -e "$v/out2" ] || fail "wrote through a read-only volume"
    run --separate-stderr kiln run --rm -v "$v/no-such-dir:/vol" busybox true
    [ "$status" -eq 125 ] || [ "$status" -eq 2 ] || fail "a missing volume source: status $status"
}

@test "exit codes: the command's; 125 cannot start; 126 not executable; 127 not found" {
    run --separate-stderr kiln run --rm busybox sh -c 'exit 7'
    assert_status 7
    run --separate-stderr kiln run --rm busybox sh -c 'kill -TERM $$'
    assert_status 143
    run --separate-stderr kiln run --rm no-such-image true
    assert_status 125
    assert_stderr_contains no-such-image
    run --separate-stderr kiln run --rm --entrypoint '' app /srv/notexec
    assert_status 126
    assert_stderr_contains /srv/notexec
    run -127 --separate-stderr kiln run --rm busybox /no/such/program
    assert_status 127
    run -127 --separate-stderr kiln run --rm busybox no-such-command
    assert_status 127
    assert_stderr_contains no-such-command
    run --separate-stderr kiln run --rm -w /etc/passwd busybox true
    assert_status 125
}

@test "stdout and stderr kept apart; stdin only with -i; -t gives a terminal" {
    run --separate-stderr kiln run --rm busybox sh -c 'echo out; echo err >&2'
    assert_equal "$output" out
    assert_equal "$stderr" err
    run --separate-stderr sh -c 'echo piped | KILN_ROOT="$0" "$1" run --rm -i busybox cat' "$(kiln_store)" "$KILN"
    assert_success
    assert_equal "$output" piped
    run --separate-stderr sh -c 'echo piped | KILN_ROOT="$0" "$1" run --rm busybox cat' "$(kiln_store)" "$KILN"
    assert_success
    assert_equal "$output" ""
    # -t: a pty of the container's devpts for stdin, stdout and stderr
    run script -q -e -c "KILN_ROOT='$(kiln_store)' '$KILN' run --rm -t busybox sh -c 'tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; echo \$TERM; exit 3'" /dev/null
    assert_status 3
    assert_output_contains /dev/pts/0
    assert_output_contains all-tty
    assert_output_contains xterm
    run --separate-stderr kiln run --rm busybox sh -c '[ -t 1 ] || echo no-tty'
    assert_equal "$output" no-tty
}

@test "host network by default (a server answers on localhost); SIGTERM to kiln stops it; --network none" {
    local www=$BATS_TEST_TMPDIR/www port pid i status=0
    mkdir -p "$www"
    echo healthy >"$www/health"
    port=$((20000 + (RANDOM % 20000)))
    KILN_ROOT=$(kiln_store) "$KILN" run --rm -v "$www:/www:ro" busybox httpd -f -p "127.0.0.1:$port" -h /www \
        >"$BATS_TEST_TMPDIR/server.out" 2>&1 &
    pid=$!
    echo "$pid" >"$BATS_TEST_TMPDIR/kiln.pid"
    for ((i = 0; i < 100; i++)); do
        curl -fsS "http://127.0.0.1:$port/health" >"$BATS_TEST_TMPDIR/got" 2>/dev/null && break
        sleep 0.1
    done
    assert_equal "$(cat "$BATS_TEST_TMPDIR/got")" healthy "GET /health"
    kill -TERM "$pid"
    wait "$pid" || status=$?
    assert_equal "$status" 143 "kiln's status after SIGTERM (the server died of it)"
    ! curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null || fail "the server still answers"
    ! pgrep -f "httpd -f -p 127.0.0.1:$port" >/dev/null || fail "httpd survived"
    store_tmp_empty
    run --separate-stderr kiln run --rm --network none busybox sh -c 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "'
    assert_equal "$output" lo
}

@test "a command that handles SIGTERM exits as it likes; SIGINT too; the third signal kills" {
    local pid status=0 out=$BATS_TEST_TMPDIR/out
    KILN_ROOT=$(kiln_store) "$KILN" run --rm busybox sh -c \
        'trap "echo got TERM; exit 3" TERM; trap "echo got INT; exit 4" INT; echo ready; while :; do sleep 1; done' \
        >"$out" 2>&1 &
    pid=$!
    echo "$pid" >"$BATS_TEST_TMPDIR/kiln.pid"
    for ((i = 0; i < 100; i++)); do grep -q ready "$out" && break; sleep 0.1; done
    kill -INT "$pid"
    wait "$pid" || status=$?
    assert_equal "$status" 4 "status after SIGINT"
    grep -q "got INT" "$out" || fail "the command did not see SIGINT:" "$(cat "$out")"
    # a command that ignores them: the third one kills the container
    status=0
    out=$BATS_TEST_TMPDIR/out2
    KILN_ROOT=$(kiln_store) "$KILN" run --rm busybox sh -c 'trap "" TERM INT; echo ready; while :; do sleep 1; done' \
        >"$out" 2>&1 &
    pid=$!
    echo "$pid" >"$BATS_TEST_TMPDIR/kiln.pid"
    for ((i = 0; i < 100; i++)); do grep -q ready "$out" && break; sleep 0.1; done
    kill -TERM "$pid"
    sleep 0.3
    kill -0 "$pid" || fail "kiln stopped at the first ignored signal"
    kill -TERM "$pid"
    sleep 0.3
    kill -TERM "$pid"
    wait "$pid" || status=$?
    assert_equal "$status" 143 "status after three SIGTERMs"
    store_tmp_empty
}

@test "the container's changes are thrown away; the store is left as it was" {
    local before
    before=$(jq -S . "$(kiln_store)/index.json")
    run --separate-stderr kiln run --rm debian:bookworm sh -c 'rm -rf /usr/share/doc && touch /marker && useradd -u 999 tmpuser'
    assert_success
    run --separate-stderr kiln run --rm debian:bookworm sh -c 'ls /marker 2>&1; ls -d /usr/share/doc; id tmpuser 2>&1 || true'
    assert_output_contains "No such file"
    assert_output_contains /usr/share/doc
    assert_output_contains "no such user"
    assert_equal "$(jq -S . "$(kiln_store)/index.json")" "$before" "index.json"
    store_tmp_empty
    ! grep -q "$(kiln_store)" /proc/self/mountinfo || fail "a mount survived"
    store_check
}
