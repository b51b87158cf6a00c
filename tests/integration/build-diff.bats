#!/usr/bin/env bats
# The buildah differential (tests/diff/README.md): each case of
# tests/diff/cases built by kiln and by buildah 1.28, the config fields and
# the unpacked file trees compared.  Cases that buildah can only build with
# a subordinate id range (other owners, Debian bases) are compared in range
# mode; in single-ID mode the test asserts that kiln builds them.

load helpers
bats_require_minimum_version 1.5.0

DIFF=$BATS_TEST_DIRNAME/../diff

setup_file() {
    command -v buildah >/dev/null || fail "buildah is not installed (scripts/install-deps.sh test)"
    export DIFF_WORK=$BATS_FILE_TMPDIR/diff
    # a vfs or overlay storage per file, removed with it
    KILN_TEST_MODE=$(kiln_test_mode) "$DIFF/diff.sh" setup "$DIFF_WORK" busybox
}

teardown_file() {
    # buildah's overlay storage holds files of subordinate ids: remove them
    # from inside its user namespace
    if [ -d "$DIFF_WORK/buildah" ]; then
        buildah unshare rm -rf "$DIFF_WORK/buildah" 2>/dev/null || rm -rf "$DIFF_WORK/buildah" 2>/dev/null || true
    fi
}

diff_case() {
    run env KILN_TEST_MODE="$(kiln_test_mode)" "$DIFF/diff.sh" run "$DIFF_WORK" "$DIFF/cases/$1"
    [ "$status" -eq 0 ] || fail "case $1 differs (or did not build):" "$output"
}

@test "differential 01: RUN files, modes, symlinks, fifos" { diff_case 01-run-files; }
@test "differential 02: ENV and ARG, --build-arg" { diff_case 02-env-arg; }
@test "differential 03: COPY sources, wildcards, destinations" { diff_case 03-copy-files; }
@test "differential 04: COPY --chown and --chmod" { diff_case 04-copy-chown-chmod; }
@test "differential 05: .dockerignore" { diff_case 05-dockerignore; }
@test "differential 06: WORKDIR" { diff_case 06-workdir; }
@test "differential 07: USER and what RUN makes as that user" { diff_case 07-user; }
@test "differential 08: CMD and ENTRYPOINT forms" { diff_case 08-cmd-entrypoint; }
@test "differential 09: LABEL EXPOSE VOLUME STOPSIGNAL MAINTAINER" { diff_case 09-metadata; }
@test "differential 10: HEALTHCHECK" { diff_case 10-healthcheck; }
@test "differential 11: ONBUILD in the config" { diff_case 11-onbuild; }
@test "differential 12: SHELL" { diff_case 12-shell; }
@test "differential 13: multi-stage COPY --from" { diff_case 13-multistage; }
@test "differential 14: ADD of tar archives" { diff_case 14-add-archives; }
@test "differential 15: links, empty directories, odd names" { diff_case 15-links-names; }
@test "differential 16: RUN chown and chmod" { diff_case 16-run-chown; }
@test "differential 17: deletions and opaque directories" { diff_case 17-whiteouts; }
@test "differential 18: COPY --from an image into scratch" { diff_case 18-copy-from-image; }
@test "differential 19: --target" { diff_case 19-target; }
@test "differential 20: Debian dpkg -i" { diff_case 20-debian-dpkg; }
@test "differential 21: Debian useradd and install -o" { diff_case 21-debian-useradd; }
@test "differential 22: variable expansion" { diff_case 22-expansion; }
@test "differential 23: ARG scope" { diff_case 23-arg-scope; }
@test "differential 24: exec forms" { diff_case 24-exec-forms; }
@test "differential 25: RUN --mount bind, tmpfs, cache" { diff_case 25-run-mounts; }
@test "differential 26: COPY through symlinked directories" { diff_case 26-copy-symlinked-dest; }
@test "differential 30: the 30-instruction Dockerfile" { diff_case 30-cached-rebuild; }
