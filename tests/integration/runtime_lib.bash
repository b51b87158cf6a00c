# runtime_lib.bash — helpers shared by foundation*.bats and runtime*.bats.
# shellcheck shell=bash

# store_tmp_empty — the store's tmp/ holds nothing but its lock files: no
# rootfs, upper directory or staging file survived.
store_tmp_empty() {
    local left
    left=$(ls -A "$(kiln_store)/tmp" 2>/dev/null | grep -v '\.lock$' || true)
    [ -z "$left" ] || fail "the store's tmp/ is not empty:" "$(ls -la "$(kiln_store)/tmp")"
}
