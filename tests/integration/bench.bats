#!/usr/bin/env bats
# bench.bats — bench/run.sh keeps working: its smoke run (kiln alone, the
# steps scenario, one run, no floors) prints the results table with a time
# for kiln.  The full benchmark is run by hand (bench/README.md).

load helpers

@test "bench/run.sh --smoke times one kiln build and prints the table" {
    local bench=$BATS_TEST_DIRNAME/../../bench
    [ -x "$bench/run.sh" ] || fail "no bench/run.sh at $bench"
    BENCH_WORK=$BATS_TEST_TMPDIR/work run "$bench/run.sh" --smoke
    [ "$status" -eq 0 ] || fail "bench/run.sh --smoke failed" "$(_kiln_show_output)"
    # the raw line and the table row of the one run
    [[ $output == *"run=1 builder=kiln scenario=steps status=ok seconds="* ]] ||
        fail "no successful run line" "$(_kiln_show_output)"
    [[ $output =~ \|\ steps\ \|\ [0-9]+\.[0-9]+\ \| ]] ||
        fail "no time for kiln in the table" "$(_kiln_show_output)"
    [[ $output == *"kiln peak RSS < 64 MiB on every scenario: largest"* ]] ||
        fail "no memory line" "$(_kiln_show_output)"
    # the store and state of the run are gone
    [ -z "$(ls -A "$BATS_TEST_TMPDIR/work/state" 2>/dev/null)" ] ||
        fail "state left behind: $(ls "$BATS_TEST_TMPDIR/work/state")"
}
