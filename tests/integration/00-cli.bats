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
