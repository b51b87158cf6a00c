#!/usr/bin/env bats
# What kiln build prints: BuildKit-style progress on stderr (plain for CI and
# pipes, a redrawn block on a terminal, nothing when quiet), the image id on
# stdout only when asked.

load helpers
bats_require_minimum_version 1.5.0

setup_file() { use_bases busybox; }

@test "plain progress: numbered steps, RUN output with times, CACHED, DONE, the summary" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo hello from run && echo second line
EOF
)
    run --separate-stderr kiln build --progress=plain -t app:1 "$ctx"
    assert_success
    assert_stdout_empty
    assert_stderr_matches $'#1 \\[internal\\] load build definition from Dockerfile\n#1 transferring dockerfile: [0-9]+B done\n#1 DONE [0-9]+\\.[0-9]s'
    assert_stderr_matches $'#[0-9]+ \\[1/2\\] FROM docker.io/library/busybox:latest@sha256:[0-9a-f]{64}\n#[0-9]+ CACHED'
    assert_stderr_matches $'#([0-9]+) \\[2/2\\] RUN echo hello from run && echo second line\n#\\1 [0-9]+\\.[0-9]{3} hello from run\n#\\1 [0-9]+\\.[0-9]{3} second line\n#\\1 DONE [0-9]+\\.[0-9]s'
    id=$(image_manifest app:1 | jq -r .config.digest)
    assert_stderr_contains "writing image $id done"
    assert_stderr_contains "naming to docker.io/library/app:1 done"
    run --separate-stderr kiln build --progress=plain -t app:1 "$ctx"
    assert_stderr_matches $'\\[2/2\\] RUN echo hello from run && echo second line\n#[0-9]+ CACHED'
}

@test "progress auto is plain when stderr is not a terminal" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN true
EOF
)
    run --separate-stderr kiln build "$ctx"
    assert_success
    assert_stderr_contains "#1 [internal] load build definition"
    [[ "$stderr" != *$'\033['* ]] || fail "escape sequences in plain progress"
}

@test "tty progress redraws in place with a clock per step, under script(1)" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo tty-output && sleep 0.6
EOF
)
    log=$BATS_TEST_TMPDIR/typescript
    KILN_ROOT=$(kiln_store) TERM=xterm script -q -e -c "'$KILN' build --progress=tty -t app '$ctx'" "$log" >/dev/null
    out=$(cat "$log")
    [[ "$out" == *$'\033['*A* ]] || fail "no cursor-up: the block is not redrawn" "$out"
    [[ "$out" == *"[+] Building"*"FINISHED"* ]] || fail "no final header" "$out"
    [[ "$out" =~ "=> [2/2] RUN echo tty-output && sleep 0.6"\ +[0-9]+\.[0-9]s ]] || fail "no step with its clock" "$out"
    [[ "$out" == *"=> => # tty-output"* ]] || fail "the running step's output is not shown" "$out"
    [[ "$out" == *"=> => writing image sha256:"* ]] || fail "no summary row" "$out"
    # auto on a terminal is tty too
    KILN_ROOT=$(kiln_store) TERM=xterm script -q -e -c "'$KILN' build -t app '$ctx'" "$log" >/dev/null
    grep -q 'Building' "$log" || fail "--progress=auto on a terminal did not draw"
}

@test "tty progress of a failing step ends with the error block" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo before-failure && exit 4
EOF
)
    log=$BATS_TEST_TMPDIR/typescript
    ! KILN_ROOT=$(kiln_store) TERM=xterm script -q -e -c "'$KILN' build --progress=tty '$ctx'" "$log" >/dev/null
    out=$(tr -d '\r' <"$log")
    [[ "$out" == *"ERROR [2/2] RUN echo before-failure && exit 4"* ]] || fail "no ERROR row" "$out"
    [[ "$out" == *$'------\n > [2/2] RUN echo before-failure && exit 4:\n'*"before-failure"$'\n------'* ]] || fail "no error block" "$out"
    [[ "$out" == *"exit code: 4"* ]] || fail "no exit code" "$out"
}

@test "--progress=quiet and -q: the image id on stdout, nothing on stderr" {
    ctx=$(make_context <<'EOF'
FROM busybox
RUN echo noisy
EOF
)
    for flag in --progress=quiet -q; do
        run --separate-stderr kiln build "$flag" -t app "$ctx"
        assert_success
        assert_stderr_empty
        assert_equal "$output" "$(image_manifest app | jq -r .config.digest)" "stdout of $flag"
    done
}

@test "warnings are repeated at the end" {
    ctx=$(make_context <<'EOF'
FROM busybox AS a
FROM busybox as b
RUN true
EOF
)
    run --separate-stderr kiln build --progress=plain --build-arg NOT_USED=1 "$ctx"
    assert_success
    assert_stderr_matches $'\n [0-9]+ warnings? found:\n'
    assert_stderr_contains "NOT_USED"
    assert_stderr_contains "FromAsCasing"
}
