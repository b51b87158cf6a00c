#!/usr/bin/env bats
# The command line's contract: help and version on stdout with status 0;
# usage errors on stderr with status 2, naming what was wrong, and nothing on
# stdout (it carries only machine output).

load helpers
bats_require_minimum_version 1.5.0

@test "kiln --version prints the version on stdout" {
    run --separate-stderr kiln --version
    assert_status 0
    assert_output_matches '^kiln version [0-9]+\.[0-9]+\.[0-9]+'
    assert_stderr_empty
}

@test "kiln --help prints usage listing the commands, status 0" {
    run --separate-stderr kiln --help
    assert_status 0
    assert_output_contains "Usage: kiln"
    assert_output_matches $'\n  build '
    assert_output_matches $'\n  import '
    assert_stderr_empty
}

@test "kiln build --help documents -t, status 0" {
    run --separate-stderr kiln build --help
    assert_status 0
    assert_output_contains "Usage: kiln build"
    assert_output_matches '(^|[[:space:]])-t[ ,]'
    assert_stderr_empty
}

@test "an unknown global flag: status 2, message names the flag" {
    run --separate-stderr kiln --no-such-flag
    assert_status 2
    assert_stdout_empty
    assert_stderr_contains "--no-such-flag"
}

@test "an unknown build flag: status 2, message names the flag" {
    run --separate-stderr kiln build --no-such-flag .
    assert_status 2
    assert_stdout_empty
    assert_stderr_contains "--no-such-flag"
}

@test "an unknown command: status 2, message names it" {
    run --separate-stderr kiln frobnicate
    assert_status 2
    assert_stdout_empty
    assert_stderr_contains "frobnicate"
}

@test "no command: usage on stderr, status 2" {
    run --separate-stderr kiln
    assert_status 2
    assert_stdout_empty
    assert_stderr_contains "Usage: kiln"
}

@test "a global flag without its value: status 2, message names the flag" {
    run --separate-stderr kiln --root
    assert_status 2
    assert_stdout_empty
    assert_stderr_contains "--root"
}

@test "kiln build without a context: status 2" {
    run --separate-stderr kiln build
    assert_status 2
    assert_stdout_empty
    assert_stderr_contains "kiln build"
}

@test "kiln build -t without its value: status 2, message names the flag" {
    run --separate-stderr kiln build -t
    assert_status 2
    assert_stdout_empty
    assert_stderr_matches '(^|[^[:alnum:]-])-t([^[:alnum:]-]|$)'
}

@test "help and usage errors leave no store behind" {
    local store=$BATS_TEST_TMPDIR/untouched
    KILN_TEST_STORE=$store run kiln --help
    KILN_TEST_STORE=$store run kiln build --help
    KILN_TEST_STORE=$store run kiln build --no-such-flag .
    KILN_TEST_STORE=$store run kiln frobnicate
    [ ! -e "$store" ] || fail "$store was created by help or a usage error"
}

# As with docker: flags may follow the arguments (`docker build . -t app`),
# except after `kiln run IMAGE`, where everything is the container's command.
@test "flags after the arguments work, as with docker; after run's IMAGE they are the command's" {
    use_bases busybox
    ctx=$(make_context <<'EOF2'
FROM busybox
RUN echo hi >/hi
EOF2
)
    kiln_ok build "$ctx" -q -t late:1 --build-arg UNUSED=1
    assert_output_matches '^sha256:[0-9a-f]{64}$'
    image_digest late:1 >/dev/null || fail "late:1 was not tagged"
    kiln_ok tag late:1 late:2
    kiln_ok history late:2 --no-trunc --format '{{.CreatedBy}}'
    assert_output_contains "RUN /bin/sh -c echo hi >/hi # buildkit"
    kiln_ok images late --format '{{.Tag}}'
    assert_equal "$(echo "$output" | sort | tr '\n' ' ')" "1 2 "
    kiln_ok inspect late:1 --format '{{.Os}}'
    assert_equal "$output" linux
    kiln_ok run --rm late:1 ls -1 -a /hi
    assert_equal "$output" /hi
    kiln_ok rmi late:2 late:1 -f
    ! image_digest late:1 >/dev/null 2>&1 || fail "late:1 is still there"
}
